//! The CLIP text encoder (transformers `CLIPTextModel`) on burn: what Stable Diffusion
//! pipelines turn a prompt into, here the empty prompt of Hunyuan3D-Paint's delight pipeline
//! (its multiview pipeline uses learned embeddings instead). Loaded strictly from a transformers
//! folder (`config.json` and `model.safetensors` or `pytorch_model.bin`); the special tokens
//! come from the checkpoint's `tokenizer/` folder.

mod config;
mod tokens;

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::{Module, Param};
use burn::tensor::{DType, Int, Tensor, activation, backend::Backend};

pub use config::{Activation, ClipTextConfig};
pub use tokens::{SpecialTokens, empty_prompt};

use super::weights::{TRANSFORMERS, WeightsError, open_folder};
use crate::shape::hunyuan3d::nn::{LayerNorm, Linear, lazy_param};
use crate::shape::hunyuan3d::weights::{KeyRemap, manifest};

/// A buffer older checkpoints saved beside the parameters (`position_ids`, `0..77`): not a
/// parameter, and the same for every model, so it is dropped before the strict check.
const POSITION_IDS: &str = "text_model.embeddings.position_ids";

/// A lookup table of row vectors.
#[derive(Module, Debug)]
pub struct Embedding<B: Backend> {
    pub weight: Param<Tensor<B, 2>>,
}

#[derive(Module, Debug)]
pub struct Embeddings<B: Backend> {
    pub token_embedding: Embedding<B>,
    pub position_embedding: Embedding<B>,
}

#[derive(Module, Debug)]
pub struct SelfAttention<B: Backend> {
    pub q_proj: Linear<B>,
    pub k_proj: Linear<B>,
    pub v_proj: Linear<B>,
    pub out_proj: Linear<B>,
    heads: usize,
}

#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    pub fc1: Linear<B>,
    pub fc2: Linear<B>,
}

#[derive(Module, Debug)]
pub struct Layer<B: Backend> {
    pub self_attn: SelfAttention<B>,
    pub layer_norm1: LayerNorm<B>,
    pub mlp: Mlp<B>,
    pub layer_norm2: LayerNorm<B>,
}

#[derive(Module, Debug)]
pub struct Encoder<B: Backend> {
    pub layers: Vec<Layer<B>>,
}

#[derive(Module, Debug)]
pub struct TextTransformer<B: Backend> {
    pub embeddings: Embeddings<B>,
    pub encoder: Encoder<B>,
    pub final_layer_norm: LayerNorm<B>,
}

#[derive(Module, Debug)]
pub struct ClipText<B: Backend> {
    pub text_model: TextTransformer<B>,
    quick_gelu: bool,
}

impl<B: Backend> SelfAttention<B> {
    /// Causal self-attention over `[B, L, D]`.
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, l, d] = x.dims();
        let h = self.heads;
        let hd = d / h;
        let split = |t: Tensor<B, 3>| t.reshape([b, l, h, hd]).swap_dims(1, 2);
        let q = split(
            self.q_proj
                .forward(x.clone())
                .mul_scalar(1.0 / (hd as f64).sqrt()),
        );
        let k = split(self.k_proj.forward(x.clone()));
        let v = split(self.v_proj.forward(x));
        let scores = q.matmul(k.swap_dims(2, 3));
        // Each token sees itself and the tokens before it.
        let future = Tensor::<B, 2, Int>::ones([l, l], &scores.device())
            .triu(1)
            .bool()
            .reshape([1, 1, l, l])
            .expand([b, h, l, l]);
        let weights = activation::softmax(scores.mask_fill(future, f32::NEG_INFINITY), 3);
        let out = weights.matmul(v).swap_dims(1, 2).reshape([b, l, d]);
        self.out_proj.forward(out)
    }
}

impl<B: Backend> ClipText<B> {
    pub fn new(cfg: &ClipTextConfig, device: &B::Device) -> Self {
        let d = cfg.hidden_size;
        let layer = || Layer {
            self_attn: SelfAttention {
                q_proj: Linear::new(d, d, true, device),
                k_proj: Linear::new(d, d, true, device),
                v_proj: Linear::new(d, d, true, device),
                out_proj: Linear::new(d, d, true, device),
                heads: cfg.num_attention_heads,
            },
            layer_norm1: LayerNorm::new(d, cfg.layer_norm_eps, device),
            mlp: Mlp {
                fc1: Linear::new(d, cfg.intermediate_size, true, device),
                fc2: Linear::new(cfg.intermediate_size, d, true, device),
            },
            layer_norm2: LayerNorm::new(d, cfg.layer_norm_eps, device),
        };
        Self {
            text_model: TextTransformer {
                embeddings: Embeddings {
                    token_embedding: Embedding {
                        weight: lazy_param([cfg.vocab_size, d], device),
                    },
                    position_embedding: Embedding {
                        weight: lazy_param([cfg.max_position_embeddings, d], device),
                    },
                },
                encoder: Encoder {
                    layers: (0..cfg.num_hidden_layers).map(|_| layer()).collect(),
                },
                final_layer_norm: LayerNorm::new(d, cfg.layer_norm_eps, device),
            },
            quick_gelu: cfg.hidden_act == Activation::QuickGelu,
        }
    }

    /// Loads a transformers `CLIPTextModel` folder onto `device`, converting to `dtype`.
    pub fn load(
        folder: &Path,
        device: &B::Device,
        dtype: DType,
    ) -> Result<(Self, ClipTextConfig), WeightsError> {
        let (text, mut checkpoint) = open_folder(folder, TRANSFORMERS)?;
        let cfg = ClipTextConfig::from_json(&text).map_err(|message| WeightsError::Config {
            path: folder.join("config.json"),
            message,
        })?;
        checkpoint.forget(POSITION_IDS);
        let module = checkpoint.load(Self::new(&cfg, device), "", KeyRemap::NONE, dtype)?;
        Ok((module, cfg))
    }

    /// The checkpoint keys and shapes a configuration expects.
    pub fn manifest(cfg: &ClipTextConfig, device: &B::Device) -> BTreeMap<String, Vec<usize>> {
        manifest(&Self::new(cfg, device), "", KeyRemap::NONE)
    }

    fn act(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        if self.quick_gelu {
            x.clone() * activation::sigmoid(x.mul_scalar(1.702))
        } else {
            activation::gelu(x)
        }
    }

    /// The token and position embeddings of `ids` `[B, L]`.
    pub fn embed(&self, ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let [b, l] = ids.dims();
        let e = &self.text_model.embeddings;
        let d = e.token_embedding.weight.dims()[1];
        let tokens = e
            .token_embedding
            .weight
            .val()
            .select(0, ids.reshape([b * l]))
            .reshape([b, l, d]);
        let positions = e
            .position_embedding
            .weight
            .val()
            .slice([0..l, 0..d])
            .reshape([1, l, d]);
        tokens + positions
    }

    /// `last_hidden_state`: every token's state after the final layer norm, `[B, L, D]`.
    pub fn forward(&self, ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let mut h = self.embed(ids);
        for layer in &self.text_model.encoder.layers {
            h = self.layer(layer, h);
        }
        self.text_model.final_layer_norm.forward(h)
    }

    /// One encoder layer: pre-norm causal attention, then the pre-norm MLP, each residual.
    pub fn layer(&self, layer: &Layer<B>, h: Tensor<B, 3>) -> Tensor<B, 3> {
        let h = layer
            .self_attn
            .forward(layer.layer_norm1.forward(h.clone()))
            + h;
        let m = layer
            .mlp
            .fc2
            .forward(self.act(layer.mlp.fc1.forward(layer.layer_norm2.forward(h.clone()))));
        m + h
    }
}
