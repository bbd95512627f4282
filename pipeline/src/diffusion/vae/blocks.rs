//! The VAE's own blocks: the mid block (resnet, single-head self-attention over pixels,
//! resnet). Its resnets, downsamplers and upsamplers are the shared ones (`diffusion/resnet.rs`)
//! without a time embedding, with ε = 1e-6 and the downsampler's right/bottom-only padding.

use burn::module::Module;
use burn::tensor::{Tensor, activation::softmax, backend::Backend};

use crate::diffusion::layers::GroupNorm;
use crate::diffusion::resnet::ResnetBlock;
use crate::shape::hunyuan3d::nn::Linear;

/// diffusers' VAE normalisation epsilon.
pub const EPS: f64 = 1e-6;

/// Self-attention over the pixels of a feature map (one head of the full channel width), with
/// the residual added back.
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    pub group_norm: GroupNorm<B>,
    pub to_q: Linear<B>,
    pub to_k: Linear<B>,
    pub to_v: Linear<B>,
    pub to_out: Vec<Linear<B>>,
}

impl<B: Backend> Attention<B> {
    pub fn new(channels: usize, groups: usize, device: &B::Device) -> Self {
        Self {
            group_norm: GroupNorm::new(groups, channels, EPS, device),
            to_q: Linear::new(channels, channels, true, device),
            to_k: Linear::new(channels, channels, true, device),
            to_v: Linear::new(channels, channels, true, device),
            to_out: vec![Linear::new(channels, channels, true, device)],
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [b, c, h, w] = x.dims();
        let tokens = self
            .group_norm
            .forward(x.clone())
            .reshape([b, c, h * w])
            .swap_dims(1, 2);
        let q = self.to_q.forward(tokens.clone());
        let k = self.to_k.forward(tokens.clone());
        let v = self.to_v.forward(tokens);
        let scale = 1.0 / (c as f64).sqrt();
        let weights = softmax(q.matmul(k.swap_dims(1, 2)).mul_scalar(scale), 2);
        let mut out = weights.matmul(v);
        for layer in &self.to_out {
            out = layer.forward(out);
        }
        out.swap_dims(1, 2).reshape([b, c, h, w]) + x
    }
}

/// `UNetMidBlock2D` of the VAE: resnet, attention, resnet.
#[derive(Module, Debug)]
pub struct MidBlock<B: Backend> {
    pub resnets: Vec<ResnetBlock<B>>,
    pub attentions: Vec<Attention<B>>,
}

impl<B: Backend> MidBlock<B> {
    pub fn new(channels: usize, groups: usize, attention: bool, device: &B::Device) -> Self {
        Self {
            resnets: vec![
                ResnetBlock::new(channels, channels, groups, EPS, None, device),
                ResnetBlock::new(channels, channels, groups, EPS, None, device),
            ],
            attentions: if attention {
                vec![Attention::new(channels, groups, device)]
            } else {
                Vec::new()
            },
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut h = self.resnets[0].forward(x, None);
        for a in &self.attentions {
            h = a.forward(h);
        }
        self.resnets[1].forward(h, None)
    }
}
