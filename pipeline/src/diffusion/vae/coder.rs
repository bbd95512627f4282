//! The encoder (image → Gaussian moments of the latent) and the decoder (latent → image).

use burn::module::Module;
use burn::tensor::{Tensor, backend::Backend};

use super::blocks::{EPS, MidBlock};
use super::config::VaeConfig;
use crate::diffusion::layers::{Conv2d, GroupNorm, silu};
use crate::diffusion::resnet::{Downsample, ResnetBlock, Upsample};

/// `DownEncoderBlock2D`.
#[derive(Module, Debug)]
pub struct DownBlock<B: Backend> {
    pub resnets: Vec<ResnetBlock<B>>,
    pub downsamplers: Vec<Downsample<B>>,
}

/// `UpDecoderBlock2D`.
#[derive(Module, Debug)]
pub struct UpBlock<B: Backend> {
    pub resnets: Vec<ResnetBlock<B>>,
    pub upsamplers: Vec<Upsample<B>>,
}

#[derive(Module, Debug)]
pub struct Encoder<B: Backend> {
    pub conv_in: Conv2d<B>,
    pub down_blocks: Vec<DownBlock<B>>,
    pub mid_block: MidBlock<B>,
    pub conv_norm_out: GroupNorm<B>,
    pub conv_out: Conv2d<B>,
}

impl<B: Backend> Encoder<B> {
    pub fn new(cfg: &VaeConfig, device: &B::Device) -> Self {
        let ch = &cfg.block_out_channels;
        let g = cfg.norm_num_groups;
        let mut c_prev = ch[0];
        let down_blocks = ch
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let resnets = (0..cfg.layers_per_block)
                    .map(|j| {
                        ResnetBlock::new(if j == 0 { c_prev } else { c }, c, g, EPS, None, device)
                    })
                    .collect();
                c_prev = c;
                let last = i + 1 == ch.len();
                DownBlock {
                    resnets,
                    downsamplers: if last {
                        Vec::new()
                    } else {
                        vec![Downsample::new(c, true, device)]
                    },
                }
            })
            .collect();
        let top = ch[ch.len() - 1];
        Self {
            conv_in: Conv2d::new(cfg.in_channels, ch[0], 3, 1, 1, device),
            down_blocks,
            mid_block: MidBlock::new(top, g, cfg.mid_block_add_attention, device),
            conv_norm_out: GroupNorm::new(g, top, EPS, device),
            conv_out: Conv2d::new(top, 2 * cfg.latent_channels, 3, 1, 1, device),
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut h = self.conv_in.forward(x);
        for block in &self.down_blocks {
            for r in &block.resnets {
                h = r.forward(h, None);
            }
            for d in &block.downsamplers {
                h = d.forward(h);
            }
        }
        h = self.mid_block.forward(h);
        self.conv_out.forward(silu(self.conv_norm_out.forward(h)))
    }
}

#[derive(Module, Debug)]
pub struct Decoder<B: Backend> {
    pub conv_in: Conv2d<B>,
    pub mid_block: MidBlock<B>,
    pub up_blocks: Vec<UpBlock<B>>,
    pub conv_norm_out: GroupNorm<B>,
    pub conv_out: Conv2d<B>,
}

impl<B: Backend> Decoder<B> {
    pub fn new(cfg: &VaeConfig, device: &B::Device) -> Self {
        let reversed: Vec<usize> = cfg.block_out_channels.iter().rev().copied().collect();
        let g = cfg.norm_num_groups;
        let mut c_prev = reversed[0];
        let up_blocks = reversed
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let resnets = (0..=cfg.layers_per_block)
                    .map(|j| {
                        ResnetBlock::new(if j == 0 { c_prev } else { c }, c, g, EPS, None, device)
                    })
                    .collect();
                c_prev = c;
                let last = i + 1 == reversed.len();
                UpBlock {
                    resnets,
                    upsamplers: if last {
                        Vec::new()
                    } else {
                        vec![Upsample::new(c, device)]
                    },
                }
            })
            .collect();
        let bottom = reversed[reversed.len() - 1];
        Self {
            conv_in: Conv2d::new(cfg.latent_channels, reversed[0], 3, 1, 1, device),
            mid_block: MidBlock::new(reversed[0], g, cfg.mid_block_add_attention, device),
            up_blocks,
            conv_norm_out: GroupNorm::new(g, bottom, EPS, device),
            conv_out: Conv2d::new(bottom, cfg.out_channels, 3, 1, 1, device),
        }
    }

    /// The decoder up to and including its mid block (a checkpoint for parity tests).
    pub fn mid(&self, z: Tensor<B, 4>) -> Tensor<B, 4> {
        self.mid_block.forward(self.conv_in.forward(z))
    }

    pub fn forward(&self, z: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut h = self.mid(z);
        for block in &self.up_blocks {
            for r in &block.resnets {
                h = r.forward(h, None);
            }
            for u in &block.upsamplers {
                h = u.forward(h);
            }
        }
        self.conv_out.forward(silu(self.conv_norm_out.forward(h)))
    }
}
