//! A diffusers `UNet2DConditionModel` configuration (`unet/config.json`): the Stable Diffusion
//! 2.x family. Options outside it (class or addition embeddings, convolutional projections,
//! several transformer layers per block, other block types) are refused by name rather than
//! silently ignored.

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
struct Raw {
    in_channels: usize,
    out_channels: usize,
    down_block_types: Vec<String>,
    up_block_types: Vec<String>,
    mid_block_type: Option<String>,
    block_out_channels: Vec<usize>,
    layers_per_block: usize,
    attention_head_dim: Value,
    num_attention_heads: Value,
    cross_attention_dim: usize,
    norm_num_groups: usize,
    norm_eps: f64,
    use_linear_projection: bool,
    flip_sin_to_cos: bool,
    freq_shift: f64,
    transformer_layers_per_block: Value,
    only_cross_attention: Value,
    class_embed_type: Option<String>,
    addition_embed_type: Option<String>,
    time_embedding_type: String,
    conv_in_kernel: usize,
    conv_out_kernel: usize,
}

impl Default for Raw {
    fn default() -> Self {
        Raw {
            in_channels: 4,
            out_channels: 4,
            down_block_types: Vec::new(),
            up_block_types: Vec::new(),
            mid_block_type: Some("UNetMidBlock2DCrossAttn".into()),
            block_out_channels: vec![320, 640, 1280, 1280],
            layers_per_block: 2,
            attention_head_dim: Value::from(8),
            num_attention_heads: Value::Null,
            cross_attention_dim: 1280,
            norm_num_groups: 32,
            norm_eps: 1e-5,
            use_linear_projection: false,
            flip_sin_to_cos: true,
            freq_shift: 0.0,
            transformer_layers_per_block: Value::from(1),
            only_cross_attention: Value::from(false),
            class_embed_type: None,
            addition_embed_type: None,
            time_embedding_type: "positional".into(),
            conv_in_kernel: 3,
            conv_out_kernel: 3,
        }
    }
}

/// A checked configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct UnetConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub block_out_channels: Vec<usize>,
    /// Per down block: whether it has cross-attention.
    pub down_attention: Vec<bool>,
    /// Per up block (deepest first): whether it has cross-attention.
    pub up_attention: Vec<bool>,
    pub layers_per_block: usize,
    /// Attention heads per down block.
    pub heads: Vec<usize>,
    pub cross_attention_dim: usize,
    pub norm_num_groups: usize,
    pub flip_sin_to_cos: bool,
    pub freq_shift: f64,
}

fn per_block(v: &Value, n: usize, field: &str) -> Result<Vec<usize>, String> {
    match v {
        Value::Number(x) => x
            .as_u64()
            .map(|x| vec![x as usize; n])
            .ok_or_else(|| format!("`{field}` must be a positive integer")),
        Value::Array(a) if a.len() == n => a
            .iter()
            .map(|x| {
                x.as_u64()
                    .map(|x| x as usize)
                    .ok_or_else(|| format!("`{field}` must hold integers"))
            })
            .collect(),
        other => Err(format!(
            "`{field}`: expected a number or {n} numbers, got {other}"
        )),
    }
}

impl UnetConfig {
    pub fn from_json(text: &str) -> Result<UnetConfig, String> {
        let raw: Raw = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let n = raw.block_out_channels.len();
        if n == 0 || raw.down_block_types.len() != n || raw.up_block_types.len() != n {
            return Err(
                "block_out_channels, down_block_types and up_block_types must agree".into(),
            );
        }
        let down_attention = raw
            .down_block_types
            .iter()
            .map(|t| match t.as_str() {
                "CrossAttnDownBlock2D" => Ok(true),
                "DownBlock2D" => Ok(false),
                other => Err(format!("unsupported down block type `{other}`")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let up_attention = raw
            .up_block_types
            .iter()
            .map(|t| match t.as_str() {
                "CrossAttnUpBlock2D" => Ok(true),
                "UpBlock2D" => Ok(false),
                other => Err(format!("unsupported up block type `{other}`")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if raw.mid_block_type.as_deref() != Some("UNetMidBlock2DCrossAttn") {
            return Err(format!(
                "unsupported mid block type {:?}",
                raw.mid_block_type
            ));
        }
        if !raw.use_linear_projection {
            return Err(
                "only `use_linear_projection: true` (Stable Diffusion 2.x) is supported".into(),
            );
        }
        if per_block(
            &raw.transformer_layers_per_block,
            n,
            "transformer_layers_per_block",
        )?
        .iter()
        .any(|&l| l != 1)
        {
            return Err("only one transformer layer per block is supported".into());
        }
        if raw.only_cross_attention != false {
            return Err("`only_cross_attention` is not supported".into());
        }
        if let Some(t) = raw
            .class_embed_type
            .as_ref()
            .or(raw.addition_embed_type.as_ref())
        {
            return Err(format!("unsupported extra embedding `{t}`"));
        }
        if raw.time_embedding_type != "positional"
            || raw.conv_in_kernel != 3
            || raw.conv_out_kernel != 3
        {
            return Err(
                "only positional time embeddings and 3×3 in/out convolutions are supported".into(),
            );
        }
        if (raw.norm_eps - 1e-5).abs() > 1e-12 {
            return Err(format!("unsupported norm_eps {}", raw.norm_eps));
        }
        // diffusers reads `attention_head_dim` as the head count when `num_attention_heads` is
        // absent (a naming slip it keeps for compatibility).
        let heads_value = if raw.num_attention_heads.is_null() {
            &raw.attention_head_dim
        } else {
            &raw.num_attention_heads
        };
        let heads = per_block(heads_value, n, "num_attention_heads")?;
        if heads
            .iter()
            .zip(&raw.block_out_channels)
            .any(|(&h, &c)| h == 0 || c % h != 0)
        {
            return Err("each block's channels must divide by its head count".into());
        }
        let g = raw.norm_num_groups;
        if g == 0 || raw.block_out_channels.iter().any(|c| c % g != 0) {
            return Err(format!(
                "norm_num_groups {g} must divide every block's channels"
            ));
        }
        Ok(UnetConfig {
            in_channels: raw.in_channels,
            out_channels: raw.out_channels,
            block_out_channels: raw.block_out_channels,
            down_attention,
            up_attention,
            layers_per_block: raw.layers_per_block,
            heads,
            cross_attention_dim: raw.cross_attention_dim,
            norm_num_groups: g,
            flip_sin_to_cos: raw.flip_sin_to_cos,
            freq_shift: raw.freq_shift,
        })
    }
}
