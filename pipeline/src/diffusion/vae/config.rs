//! A diffusers `AutoencoderKL` configuration (`vae/config.json`). Only the encoder/decoder block
//! types Stable Diffusion's VAE uses are supported; any other is refused by name.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct VaeConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub down_block_types: Vec<String>,
    pub up_block_types: Vec<String>,
    pub block_out_channels: Vec<usize>,
    pub layers_per_block: usize,
    pub latent_channels: usize,
    pub norm_num_groups: usize,
    pub scaling_factor: f32,
    pub shift_factor: Option<f32>,
    pub mid_block_add_attention: bool,
    pub use_quant_conv: bool,
    pub use_post_quant_conv: bool,
}

impl Default for VaeConfig {
    /// diffusers' `AutoencoderKL` defaults.
    fn default() -> Self {
        VaeConfig {
            in_channels: 3,
            out_channels: 3,
            down_block_types: vec!["DownEncoderBlock2D".into()],
            up_block_types: vec!["UpDecoderBlock2D".into()],
            block_out_channels: vec![64],
            layers_per_block: 1,
            latent_channels: 4,
            norm_num_groups: 32,
            scaling_factor: 0.18215,
            shift_factor: None,
            mid_block_add_attention: true,
            use_quant_conv: true,
            use_post_quant_conv: true,
        }
    }
}

impl VaeConfig {
    /// Parses and checks a `config.json`.
    pub fn from_json(text: &str) -> Result<VaeConfig, String> {
        let cfg: VaeConfig = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let n = cfg.block_out_channels.len();
        if n == 0 || cfg.down_block_types.len() != n || cfg.up_block_types.len() != n {
            return Err(format!(
                "{n} block_out_channels, {} down and {} up block types: they must agree",
                cfg.down_block_types.len(),
                cfg.up_block_types.len()
            ));
        }
        if let Some(t) = cfg
            .down_block_types
            .iter()
            .find(|t| *t != "DownEncoderBlock2D")
        {
            return Err(format!("unsupported down block type `{t}`"));
        }
        if let Some(t) = cfg.up_block_types.iter().find(|t| *t != "UpDecoderBlock2D") {
            return Err(format!("unsupported up block type `{t}`"));
        }
        let g = cfg.norm_num_groups;
        if g == 0 || cfg.block_out_channels.iter().any(|c| c % g != 0) {
            return Err(format!(
                "norm_num_groups {g} must divide every block's channels"
            ));
        }
        if cfg.layers_per_block == 0 || cfg.latent_channels == 0 {
            return Err("layers_per_block and latent_channels must be positive".into());
        }
        Ok(cfg)
    }

    /// How many times the encoder halves the image's sides.
    pub fn downsampling(&self) -> usize {
        1 << (self.block_out_channels.len() - 1)
    }
}
