//! The convolutional blocks the VAE and the UNet share, as diffusers builds them:
//! `ResnetBlock2D` (with the UNet's time embedding where it has one), the stride-2 downsampler
//! and the nearest-neighbour upsampler.

use burn::module::Module;
use burn::tensor::{Tensor, backend::Backend};

use super::layers::{Conv2d, GroupNorm, silu};
use crate::shape::hunyuan3d::nn::Linear;

#[derive(Module, Debug)]
pub struct ResnetBlock<B: Backend> {
    pub norm1: GroupNorm<B>,
    pub conv1: Conv2d<B>,
    /// The UNet's: the time embedding, projected to this block's channels, is added after
    /// `conv1`.
    pub time_emb_proj: Option<Linear<B>>,
    pub norm2: GroupNorm<B>,
    pub conv2: Conv2d<B>,
    /// A 1×1 convolution where the channel count changes.
    pub conv_shortcut: Option<Conv2d<B>>,
}

impl<B: Backend> ResnetBlock<B> {
    /// `temb`: the time embedding's width, for a UNet block.
    pub fn new(
        c_in: usize,
        c_out: usize,
        groups: usize,
        eps: f64,
        temb: Option<usize>,
        device: &B::Device,
    ) -> Self {
        Self {
            norm1: GroupNorm::new(groups, c_in, eps, device),
            conv1: Conv2d::new(c_in, c_out, 3, 1, 1, device),
            time_emb_proj: temb.map(|t| Linear::new(t, c_out, true, device)),
            norm2: GroupNorm::new(groups, c_out, eps, device),
            conv2: Conv2d::new(c_out, c_out, 3, 1, 1, device),
            conv_shortcut: (c_in != c_out).then(|| Conv2d::new(c_in, c_out, 1, 1, 0, device)),
        }
    }

    /// `temb`: the time embedding `[B, width]`, for a UNet block.
    pub fn forward(&self, x: Tensor<B, 4>, temb: Option<Tensor<B, 2>>) -> Tensor<B, 4> {
        let mut h = self.conv1.forward(silu(self.norm1.forward(x.clone())));
        if let (Some(proj), Some(t)) = (&self.time_emb_proj, temb) {
            let t = proj.forward(burn::tensor::activation::silu(t));
            let [b, c] = t.dims();
            h = h + t.reshape([b, c, 1, 1]);
        }
        let h = self.conv2.forward(silu(self.norm2.forward(h)));
        let shortcut = match &self.conv_shortcut {
            Some(conv) => conv.forward(x),
            None => x,
        };
        shortcut + h
    }
}

/// `Downsample2D(use_conv=True)`: a stride-2 3×3 convolution, padded by one on every side (the
/// UNet) or, with `padding=0` (the VAE), by one zero column and row on the right and bottom only.
#[derive(Module, Debug)]
pub struct Downsample<B: Backend> {
    pub conv: Conv2d<B>,
    right_bottom_only: bool,
}

impl<B: Backend> Downsample<B> {
    pub fn new(channels: usize, right_bottom_only: bool, device: &B::Device) -> Self {
        let padding = usize::from(!right_bottom_only);
        Self {
            conv: Conv2d::new(channels, channels, 3, 2, padding, device),
            right_bottom_only,
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        if !self.right_bottom_only {
            return self.conv.forward(x);
        }
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

    /// Nearest-neighbour to `size` (PyTorch's rule: output index `i` reads input
    /// `⌊i · in / out⌋`), then the convolution: how the UNet meets a skip connection whose
    /// side was odd before downsampling.
    pub fn forward_to(&self, x: Tensor<B, 4>, size: [usize; 2]) -> Tensor<B, 4> {
        let [_, _, h, w] = x.dims();
        if size == [2 * h, 2 * w] {
            return self.forward(x);
        }
        let device = x.device();
        let pick = |len_in: usize, len_out: usize| {
            let idx: Vec<i64> = (0..len_out)
                .map(|i| {
                    ((i as f64 * len_in as f64 / len_out as f64).floor() as i64)
                        .min(len_in as i64 - 1)
                })
                .collect();
            Tensor::<B, 1, burn::tensor::Int>::from_data(
                burn::tensor::TensorData::new(idx, [len_out]),
                &device,
            )
        };
        let up = x.select(2, pick(h, size[0])).select(3, pick(w, size[1]));
        self.conv.forward(up)
    }
}
