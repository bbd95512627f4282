//! A transformers `CLIPTextConfig` (`text_encoder/config.json`), the keys the encoder reads.

use serde::Deserialize;

/// The MLP's activation: exact GELU (Stable Diffusion 2.x's OpenCLIP encoder) or
/// `quick_gelu`, `x · σ(1.702 x)` (OpenAI CLIP, Stable Diffusion 1.x).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Gelu,
    QuickGelu,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct ClipTextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub max_position_embeddings: usize,
    pub hidden_act: Activation,
    pub layer_norm_eps: f64,
}

impl Default for ClipTextConfig {
    /// transformers' defaults (OpenAI CLIP ViT-B/32's text tower).
    fn default() -> Self {
        ClipTextConfig {
            vocab_size: 49408,
            hidden_size: 512,
            intermediate_size: 2048,
            num_hidden_layers: 12,
            num_attention_heads: 8,
            max_position_embeddings: 77,
            hidden_act: Activation::QuickGelu,
            layer_norm_eps: 1e-5,
        }
    }
}

impl ClipTextConfig {
    pub fn from_json(text: &str) -> Result<ClipTextConfig, String> {
        let cfg: ClipTextConfig = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if cfg.num_attention_heads == 0 || !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads)
        {
            return Err(format!(
                "hidden_size {} must divide by num_attention_heads {}",
                cfg.hidden_size, cfg.num_attention_heads
            ));
        }
        if cfg.num_hidden_layers == 0 || cfg.max_position_embeddings == 0 || cfg.vocab_size == 0 {
            return Err("layers, positions and vocabulary must be positive".into());
        }
        Ok(cfg)
    }
}
