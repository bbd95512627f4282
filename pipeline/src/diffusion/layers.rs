//! The layers the VAE and the UNet are built from, named as diffusers names their parameters so checkpoint
//! keys are module paths: 2-D convolutions, group normalisation, SiLU.

use burn::module::{Module, Param};
use burn::tensor::{Tensor, backend::Backend, module::conv2d, ops::ConvOptions};

use crate::shape::hunyuan3d::nn::lazy_param;

/// `torch.nn.Conv2d` (square kernel, stride, symmetric zero padding).
#[derive(Module, Debug)]
pub struct Conv2d<B: Backend> {
    pub weight: Param<Tensor<B, 4>>,
    pub bias: Param<Tensor<B, 1>>,
    stride: usize,
    padding: usize,
}

impl<B: Backend> Conv2d<B> {
    pub fn new(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        device: &B::Device,
    ) -> Self {
        Self {
            weight: lazy_param([c_out, c_in, kernel, kernel], device),
            bias: lazy_param([c_out], device),
            stride,
            padding,
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        conv2d(
            x,
            self.weight.val(),
            Some(self.bias.val()),
            ConvOptions::new(
                [self.stride, self.stride],
                [self.padding, self.padding],
                [1, 1],
                1,
            ),
        )
    }
}

/// `torch.nn.GroupNorm` with affine parameters; statistics are biased, as PyTorch's.
#[derive(Module, Debug)]
pub struct GroupNorm<B: Backend> {
    pub weight: Param<Tensor<B, 1>>,
    pub bias: Param<Tensor<B, 1>>,
    groups: usize,
    eps: f64,
}

impl<B: Backend> GroupNorm<B> {
    pub fn new(groups: usize, channels: usize, eps: f64, device: &B::Device) -> Self {
        Self {
            weight: lazy_param([channels], device),
            bias: lazy_param([channels], device),
            groups,
            eps,
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [b, c, h, w] = x.dims();
        let g = self.groups;
        let grouped = x.reshape([b, g, (c / g) * h * w]);
        let mean = grouped.clone().mean_dim(2);
        let centred = grouped - mean;
        let var = centred.clone().powi_scalar(2).mean_dim(2);
        let normed = centred / (var + self.eps).sqrt();
        normed.reshape([b, c, h, w]) * self.weight.val().reshape([1, c, 1, 1])
            + self.bias.val().reshape([1, c, 1, 1])
    }
}

pub fn silu<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    burn::tensor::activation::silu(x)
}
