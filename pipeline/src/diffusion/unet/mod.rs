//! Stable Diffusion 2.x's denoiser (diffusers `UNet2DConditionModel`) on burn: the base that
//! Hunyuan3D-Paint's multiview model widens. Loaded strictly from a diffusers folder
//! (`unet/config.json` and `diffusion_pytorch_model[.fp16].safetensors` or `.bin`); checkpoint
//! keys are the module paths, with `ff.net.0` / `ff.net.2` spelled as Rust fields allow.

mod blocks;
mod config;
mod transformer;

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::{Embedding, EmbeddingConfig};
use burn::tensor::{DType, Int, Tensor, backend::Backend};

pub use blocks::{DownBlock, MidBlock, UpBlock};
pub use config::UnetConfig;
pub use transformer::{Attention, Conditioning, Transformer2d, TransformerBlock, Views};

use super::layers::{Conv2d, GroupNorm, silu};
use super::weights::{DIFFUSERS, WeightsError, open_folder};
use crate::shape::hunyuan3d::nn::Linear;
use crate::shape::hunyuan3d::weights::{KeyRemap, manifest};
use blocks::{Dims, RESNET_EPS};

/// Our field names for the PyTorch names that are not Rust identifiers.
pub const REMAP: KeyRemap = KeyRemap(&[("net_0", "net.0"), ("net_2", "net.2")]);

/// `TimestepEmbedding`: two linear layers with SiLU between.
#[derive(Module, Debug)]
pub struct TimeEmbedding<B: Backend> {
    pub linear_1: Linear<B>,
    pub linear_2: Linear<B>,
}

#[derive(Module, Debug)]
pub struct Unet<B: Backend> {
    pub time_embedding: TimeEmbedding<B>,
    pub conv_in: Conv2d<B>,
    pub down_blocks: Vec<DownBlock<B>>,
    pub mid_block: MidBlock<B>,
    pub up_blocks: Vec<UpBlock<B>>,
    pub conv_norm_out: GroupNorm<B>,
    pub conv_out: Conv2d<B>,
    /// Hunyuan3D-Paint's multiview UNet: one embedding per camera, added to the time embedding.
    pub class_embedding: Option<Embedding<B>>,
    /// Hunyuan3D-Paint's multiview UNet keeps its learned text embeddings `[1, 77, context]`
    /// (for the views, and for the reference UNet) in place of a text encoder.
    pub learned_text_clip_gen: Option<Param<Tensor<B, 3>>>,
    pub learned_text_clip_ref: Option<Param<Tensor<B, 3>>>,
    base_channels: usize,
    flip_sin_to_cos: bool,
    freq_shift: f64,
}

/// What Hunyuan3D-Paint's `UNet2p5DConditionModel` changes in the UNet it wraps (`init_condition`,
/// `init_camera_embedding`, `init_attention(use_ma, use_ra)`), whatever its `config.json` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultiviewShape {
    /// `conv_in`'s input: the noisy latent, the normal map's and the position map's.
    pub in_channels: usize,
    /// Camera embeddings: 5 reference slots and 44 generated-view slots.
    pub cameras: usize,
    /// The learned text embeddings' tokens.
    pub text_tokens: usize,
}

impl MultiviewShape {
    pub const HUNYUAN3D_PAINT: MultiviewShape = MultiviewShape {
        in_channels: 12,
        cameras: 49,
        text_tokens: 77,
    };
}

impl<B: Backend> Unet<B> {
    /// A plain UNet as `cfg` describes it.
    pub fn new(cfg: &UnetConfig, device: &B::Device) -> Self {
        Self::build(cfg, None, device)
    }

    /// The multiview UNet that Hunyuan3D-Paint builds around a UNet of configuration `cfg`.
    pub fn multiview(cfg: &UnetConfig, shape: MultiviewShape, device: &B::Device) -> Self {
        Self::build(cfg, Some(shape), device)
    }

    fn build(cfg: &UnetConfig, multiview: Option<MultiviewShape>, device: &B::Device) -> Self {
        let ch = &cfg.block_out_channels;
        let n = ch.len();
        let temb = 4 * ch[0];
        let d = Dims {
            temb,
            groups: cfg.norm_num_groups,
            context: cfg.cross_attention_dim,
            multiview: multiview.is_some(),
        };
        let down_blocks = (0..n)
            .map(|i| {
                let c_in = if i == 0 { ch[0] } else { ch[i - 1] };
                DownBlock::new(
                    c_in,
                    ch[i],
                    cfg.layers_per_block,
                    cfg.down_attention[i].then_some(cfg.heads[i]),
                    i + 1 < n,
                    d,
                    device,
                )
            })
            .collect();
        let rev: Vec<usize> = ch.iter().rev().copied().collect();
        let rev_heads: Vec<usize> = cfg.heads.iter().rev().copied().collect();
        let up_blocks = (0..n)
            .map(|i| {
                let c_prev = if i == 0 { rev[0] } else { rev[i - 1] };
                let c_skip_last = rev[(i + 1).min(n - 1)];
                UpBlock::new(
                    c_prev,
                    rev[i],
                    c_skip_last,
                    cfg.layers_per_block + 1,
                    cfg.up_attention[i].then_some(rev_heads[i]),
                    i + 1 < n,
                    d,
                    device,
                )
            })
            .collect();
        Self {
            time_embedding: TimeEmbedding {
                linear_1: Linear::new(ch[0], temb, true, device),
                linear_2: Linear::new(temb, temb, true, device),
            },
            conv_in: Conv2d::new(
                multiview.map_or(cfg.in_channels, |m| m.in_channels),
                ch[0],
                3,
                1,
                1,
                device,
            ),
            down_blocks,
            mid_block: MidBlock::new(ch[n - 1], cfg.heads[n - 1], d, device),
            up_blocks,
            conv_norm_out: GroupNorm::new(cfg.norm_num_groups, ch[0], RESNET_EPS, device),
            conv_out: Conv2d::new(ch[0], cfg.out_channels, 3, 1, 1, device),
            class_embedding: multiview.map(|m| EmbeddingConfig::new(m.cameras, temb).init(device)),
            learned_text_clip_gen: multiview.map(|m| learned_text(m, cfg, device)),
            learned_text_clip_ref: multiview.map(|m| learned_text(m, cfg, device)),
            base_channels: ch[0],
            flip_sin_to_cos: cfg.flip_sin_to_cos,
            freq_shift: cfg.freq_shift,
        }
    }

    /// Loads a diffusers UNet folder onto `device`, converting weights to `dtype`.
    pub fn load(
        folder: &Path,
        device: &B::Device,
        dtype: DType,
    ) -> Result<(Self, UnetConfig), WeightsError> {
        let (text, checkpoint) = open_folder(folder, DIFFUSERS)?;
        let cfg = UnetConfig::from_json(&text).map_err(|message| WeightsError::Config {
            path: folder.join("config.json"),
            message,
        })?;
        let module = checkpoint.load(Self::new(&cfg, device), "", REMAP, dtype)?;
        Ok((module, cfg))
    }

    /// The checkpoint keys and shapes a configuration expects.
    pub fn manifest(cfg: &UnetConfig, device: &B::Device) -> BTreeMap<String, Vec<usize>> {
        manifest(&Self::new(cfg, device), "", REMAP)
    }

    /// The sinusoidal embedding of the timesteps (`Timesteps`): `[B, base channels]`, cosines
    /// first when `flip_sin_to_cos`.
    pub fn time_proj(&self, timesteps: Tensor<B, 1>) -> Tensor<B, 2> {
        let half = self.base_channels / 2;
        let device = timesteps.device();
        let freqs: Vec<f32> = (0..half)
            .map(|i| {
                let exponent =
                    -(10_000f32.ln()) * i as f32 / (half as f32 - self.freq_shift as f32);
                exponent.exp()
            })
            .collect();
        let freqs = Tensor::<B, 1>::from_floats(freqs.as_slice(), &device);
        let [b] = timesteps.dims();
        let args = timesteps.reshape([b, 1]) * freqs.reshape([1, half]);
        let (sin, cos) = (args.clone().sin(), args.cos());
        if self.flip_sin_to_cos {
            Tensor::cat(vec![cos, sin], 1)
        } else {
            Tensor::cat(vec![sin, cos], 1)
        }
    }

    /// The time embedding the resnets receive.
    pub fn embed_time(&self, timesteps: Tensor<B, 1>) -> Tensor<B, 2> {
        let t = self.time_proj(timesteps);
        let h = self.time_embedding.linear_1.forward(t);
        self.time_embedding
            .linear_2
            .forward(burn::tensor::activation::silu(h))
    }

    /// How many transformer blocks the UNet runs (one per attention).
    pub fn transformer_blocks(&self) -> usize {
        let down: usize = self.down_blocks.iter().map(|b| b.attentions.len()).sum();
        let up: usize = self.up_blocks.iter().map(|b| b.attentions.len()).sum();
        down + self.mid_block.attentions.len() + up
    }

    /// The time embedding plus, where the UNet has camera embeddings and `classes` are given,
    /// each row's camera embedding.
    pub fn embed(
        &self,
        timesteps: Tensor<B, 1>,
        classes: Option<Tensor<B, 1, Int>>,
    ) -> Tensor<B, 2> {
        let temb = self.embed_time(timesteps);
        match (&self.class_embedding, classes) {
            (Some(table), Some(ids)) => {
                let [rows] = ids.dims();
                let [_, width] = temb.dims();
                temb + table.forward(ids.reshape([rows, 1])).reshape([rows, width])
            }
            _ => temb,
        }
    }

    /// The noise (or v) prediction for `sample` `[B, C, H, W]` at `timesteps` `[B]`,
    /// conditioned on `context` `[B, S, cross_attention_dim]`.
    pub fn forward(
        &self,
        sample: Tensor<B, 4>,
        timesteps: Tensor<B, 1>,
        context: Tensor<B, 3>,
    ) -> Tensor<B, 4> {
        self.forward_with(sample, timesteps, None, &mut Conditioning::text(context))
    }

    /// [`Unet::forward`] with camera ids for the camera embedding and the multiview
    /// conditioning.
    pub fn forward_with(
        &self,
        sample: Tensor<B, 4>,
        timesteps: Tensor<B, 1>,
        classes: Option<Tensor<B, 1, Int>>,
        cond: &mut Conditioning<'_, B>,
    ) -> Tensor<B, 4> {
        let temb = self.embed(timesteps, classes);
        let mut x = self.conv_in.forward(sample);
        let mut skips = vec![x.clone()];
        for block in &self.down_blocks {
            x = block.forward(x, &temb, cond, &mut skips);
        }
        x = self.mid_block.forward(x, &temb, cond);
        for block in &self.up_blocks {
            x = block.forward(x, &temb, cond, &mut skips);
        }
        self.conv_out.forward(silu(self.conv_norm_out.forward(x)))
    }
}

fn learned_text<B: Backend>(
    shape: MultiviewShape,
    cfg: &UnetConfig,
    device: &B::Device,
) -> Param<Tensor<B, 3>> {
    Param::from_tensor(Tensor::zeros(
        [1, shape.text_tokens, cfg.cross_attention_dim],
        device,
    ))
}
