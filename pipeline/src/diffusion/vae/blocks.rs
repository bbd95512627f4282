//! The VAE's blocks, as diffusers builds them: `ResnetBlock2D` (no time embedding), the stride-2
//! downsampler with its asymmetric padding, the nearest-neighbour upsampler, and the mid block
//! (resnet, single-head self-attention over pixels, resnet).

use burn::module::Module;
use burn::tensor::{Tensor, activation::softmax, backend::Backend};

use super::layers::{Conv2d, GroupNorm, silu};
use crate::shape::hunyuan3d::nn::Linear;

/// diffusers' VAE normalisation epsilon.
pub const EPS: f64 = 1e-6;

#[derive(Module, Debug)]
pub struct ResnetBlock<B: Backend> {
    pub norm1: GroupNorm<B>,
    pub conv1: Conv2d<B>,
    pub norm2: GroupNorm<B>,
    pub conv2: Conv2d<B>,
    /// A 1×1 convolution where the channel count changes.
    pub conv_shortcut: Option<Conv2d<B>>,
}

impl<B: Backend> ResnetBlock<B> {
    pub fn new(c_in: usize, c_out: usize, groups: usize, device: &B::Device) -> Self {
        Self {
            norm1: GroupNorm::new(groups, c_in, EPS, device),
            conv1: Conv2d::new(c_in, c_out, 3, 1, 1, device),
            norm2: GroupNorm::new(groups, c_out, EPS, device),
            conv2: Conv2d::new(c_out, c_out, 3, 1, 1, device),
            conv_shortcut: (c_in != c_out).then(|| Conv2d::new(c_in, c_out, 1, 1, 0, device)),
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let h = self.conv1.forward(silu(self.norm1.forward(x.clone())));
        let h = self.conv2.forward(silu(self.norm2.forward(h)));
        let shortcut = match &self.conv_shortcut {
            Some(conv) => conv.forward(x),
            None => x,
        };
        shortcut + h
    }
}

/// `Downsample2D(use_conv=True, padding=0)`: zero padding on the right and bottom only, then a
/// stride-2 3×3 convolution.
#[derive(Module, Debug)]
pub struct Downsample<B: Backend> {
    pub conv: Conv2d<B>,
}

impl<B: Backend> Downsample<B> {
    pub fn new(channels: usize, device: &B::Device) -> Self {
        Self {
            conv: Conv2d::new(channels, channels, 3, 2, 0, device),
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [b, c, h, w] = x.dims();
        let padded = Tensor::zeros([b, c, h + 1, w + 1], &x.device())
            .slice_assign([0..b, 0..c, 0..h, 0..w], x);
        self.conv.forward(padded)
    }
}

/// `Upsample2D(use_conv=True)`: nearest-neighbour 2× then a 3×3 convolution.
#[derive(Module, Debug)]
pub struct Upsample<B: Backend> {
    pub conv: Conv2d<B>,
}

impl<B: Backend> Upsample<B> {
    pub fn new(channels: usize, device: &B::Device) -> Self {
        Self {
            conv: Conv2d::new(channels, channels, 3, 1, 1, device),
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [b, c, h, w] = x.dims();
        // Each pixel repeated into a 2×2 block.
        let up = x
            .reshape([b, c, h, 1, w, 1])
            .expand([b, c, h, 2, w, 2])
            .reshape([b, c, 2 * h, 2 * w]);
        self.conv.forward(up)
    }
}

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
                ResnetBlock::new(channels, channels, groups, device),
                ResnetBlock::new(channels, channels, groups, device),
            ],
            attentions: if attention {
                vec![Attention::new(channels, groups, device)]
            } else {
                Vec::new()
            },
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut h = self.resnets[0].forward(x);
        for a in &self.attentions {
            h = a.forward(h);
        }
        self.resnets[1].forward(h)
    }
}
