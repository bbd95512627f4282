//! Stable Diffusion 2.x's denoiser (diffusers `UNet2DConditionModel`) on burn: the base that
//! Hunyuan3D-Paint's multiview model widens. Loaded strictly from a diffusers folder
//! (`unet/config.json` and `diffusion_pytorch_model[.fp16].safetensors` or `.bin`); checkpoint
//! keys are the module paths, with `ff.net.0` / `ff.net.2` spelled as Rust fields allow.

mod blocks;
mod config;
mod transformer;

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::Module;
use burn::tensor::{DType, Tensor, backend::Backend};

pub use blocks::{DownBlock, MidBlock, UpBlock};
pub use config::UnetConfig;
pub use transformer::{Attention, Transformer2d, TransformerBlock};

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
    base_channels: usize,
    flip_sin_to_cos: bool,
    freq_shift: f64,
}

impl<B: Backend> Unet<B> {
    pub fn new(cfg: &UnetConfig, device: &B::Device) -> Self {
        let ch = &cfg.block_out_channels;
        let n = ch.len();
        let temb = 4 * ch[0];
        let d = Dims {
            temb,
            groups: cfg.norm_num_groups,
            context: cfg.cross_attention_dim,
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
            conv_in: Conv2d::new(cfg.in_channels, ch[0], 3, 1, 1, device),
            down_blocks,
            mid_block: MidBlock::new(ch[n - 1], cfg.heads[n - 1], d, device),
            up_blocks,
            conv_norm_out: GroupNorm::new(cfg.norm_num_groups, ch[0], RESNET_EPS, device),
            conv_out: Conv2d::new(ch[0], cfg.out_channels, 3, 1, 1, device),
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

    /// The noise (or v) prediction for `sample` `[B, C, H, W]` at `timesteps` `[B]`,
    /// conditioned on `context` `[B, S, cross_attention_dim]`.
    pub fn forward(
        &self,
        sample: Tensor<B, 4>,
        timesteps: Tensor<B, 1>,
        context: Tensor<B, 3>,
    ) -> Tensor<B, 4> {
        let temb = self.embed_time(timesteps);
        let mut x = self.conv_in.forward(sample);
        let mut skips = vec![x.clone()];
        for block in &self.down_blocks {
            x = block.forward(x, &temb, &context, &mut skips);
        }
        x = self.mid_block.forward(x, &temb, &context);
        for block in &self.up_blocks {
            x = block.forward(x, &temb, &context, &mut skips);
        }
        self.conv_out.forward(silu(self.conv_norm_out.forward(x)))
    }
}
