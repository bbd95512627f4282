//! The burn executor: U²-Net on any burn backend (burn-cuda on GPUs; on the CPU the host
//! executor is faster and is what [`crate::segmentation::segmenter_from_weights`] picks).

use burn::tensor::{Tensor, TensorData, activation::sigmoid, backend::Backend};

use super::exec::Exec;
use super::ops::{max_pool_ceil, resize_bilinear};
use super::rebnconv::{Conv, FoldedConv};

/// Runs the network with burn tensors on one device.
#[derive(Debug, Clone)]
pub struct BurnExec<B: Backend> {
    pub device: B::Device,
}

impl<B: Backend> BurnExec<B> {
    pub fn new(device: B::Device) -> Self {
        BurnExec { device }
    }
}

impl<B: Backend> Exec for BurnExec<B> {
    type Map = Tensor<B, 4>;
    type Conv = Conv<B>;

    fn input(&self, data: Vec<f32>, shape: [usize; 4]) -> Tensor<B, 4> {
        Tensor::from_data(TensorData::new(data, shape), &self.device)
    }

    fn values(&self, x: Tensor<B, 4>) -> Vec<f32> {
        x.into_data().convert::<f32>().to_vec().unwrap_or_default()
    }

    fn prepare(&self, conv: &FoldedConv) -> Conv<B> {
        conv.to_device::<B>(&self.device)
    }

    fn conv(&self, conv: &Conv<B>, parts: &[&Tensor<B, 4>]) -> Tensor<B, 4> {
        conv.forward_parts(parts.iter().map(|&p| p.clone()).collect())
    }

    fn pool(&self, x: &Tensor<B, 4>) -> Tensor<B, 4> {
        max_pool_ceil(x.clone())
    }

    fn upsample_like(&self, x: &Tensor<B, 4>, like: &Tensor<B, 4>) -> Tensor<B, 4> {
        let [_, _, h, w] = like.dims();
        resize_bilinear(x.clone(), h, w)
    }

    fn add(&self, a: Tensor<B, 4>, b: &Tensor<B, 4>) -> Tensor<B, 4> {
        a + b.clone()
    }

    fn sigmoid(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        sigmoid(x)
    }
}
