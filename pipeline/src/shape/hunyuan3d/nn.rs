//! Building blocks shared by the conditioner, the DiT and the VAE, with PyTorch's parameter names
//! and layouts so that checkpoint keys and shapes map one to one (see `weights.rs`).
//!
//! Parameters are created lazily: a full-size model can be built (for the manifest test, or before
//! loading) without allocating its weights.

use burn::module::{Module, Param, ParamId};
use burn::tensor::module::attention as burn_attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{
    DType, Distribution, Int, Shape, Tensor, TensorData, activation, backend::Backend,
};

/// A parameter of the given shape whose value is only materialised if it is used before a
/// checkpoint replaces it: then N(0, 0.02²) random values, which is what benchmarks of unloaded
/// full-size models run on.
pub fn lazy_param<B: Backend, const D: usize>(
    shape: [usize; D],
    device: &B::Device,
) -> Param<Tensor<B, D>> {
    Param::uninitialized(
        ParamId::new(),
        move |device, _| Tensor::random(shape, Distribution::Normal(0.0, 0.02), device),
        device.clone(),
        false,
        Shape::new(shape),
    )
}

/// A lazy parameter of ones (norm scales of unloaded models, as PyTorch initialises them).
pub fn lazy_ones<B: Backend, const D: usize>(
    shape: [usize; D],
    device: &B::Device,
) -> Param<Tensor<B, D>> {
    Param::uninitialized(
        ParamId::new(),
        move |device, _| Tensor::ones(shape, device),
        device.clone(),
        false,
        Shape::new(shape),
    )
}

/// `torch.nn.Linear`. The weight is held as `[in, out]`, contiguous, because matrix products
/// against a transposed view cost the CPU backend a copy of the weight per call (2× slower
/// measured on a 4096² layer); the checkpoint's `[out, in]` tensor is transposed once while loading
/// (`weights.rs` recognises this struct's `weight`).
#[derive(Module, Debug)]
pub struct Linear<B: Backend> {
    pub weight: Param<Tensor<B, 2>>,
    pub bias: Option<Param<Tensor<B, 1>>>,
}

impl<B: Backend> Linear<B> {
    pub fn new(d_in: usize, d_out: usize, bias: bool, device: &B::Device) -> Self {
        Self {
            weight: lazy_param([d_in, d_out], device),
            bias: bias.then(|| lazy_param([d_out], device)),
        }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        burn::tensor::module::linear(x, self.weight.val(), self.bias.as_ref().map(|b| b.val()))
    }
}

/// `torch.nn.LayerNorm` with affine parameters (`weight`, `bias`). Statistics in fp32.
#[derive(Module, Debug)]
pub struct LayerNorm<B: Backend> {
    pub weight: Param<Tensor<B, 1>>,
    pub bias: Param<Tensor<B, 1>>,
    eps: f64,
}

impl<B: Backend> LayerNorm<B> {
    pub fn new(dim: usize, eps: f64, device: &B::Device) -> Self {
        Self {
            weight: lazy_ones([dim], device),
            bias: lazy_param([dim], device),
            eps,
        }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let normed = layer_norm(x, self.eps);
        let dims = [1; D];
        let mut shape = dims;
        shape[D - 1] = self.weight.lazy_shape()[0];
        normed * self.weight.val().reshape(shape) + self.bias.val().reshape(shape)
    }
}

/// LayerNorm without affine parameters over the last dimension, statistics in fp32 and the result
/// in the input's dtype (as PyTorch computes half-precision LayerNorm).
pub fn layer_norm<B: Backend, const D: usize>(x: Tensor<B, D>, eps: f64) -> Tensor<B, D> {
    let dtype = x.dtype();
    let x32 = to_f32(x);
    let (var, mean) = x32.clone().var_mean_bias(D - 1);
    let out = (x32 - mean) / (var + eps).sqrt();
    out.cast(dtype)
}

/// The DiT's RMSNorm over the head dimension: computed in fp32, cast back, then scaled by the
/// learnable `scale` in the compute dtype (`hunyuan3ddit.py` RMSNorm).
#[derive(Module, Debug)]
pub struct RmsNorm<B: Backend> {
    pub scale: Param<Tensor<B, 1>>,
}

impl<B: Backend> RmsNorm<B> {
    pub fn new(dim: usize, device: &B::Device) -> Self {
        Self {
            scale: lazy_ones([dim], device),
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let dtype = x.dtype();
        let x32 = to_f32(x);
        // A true division: burn-ndarray's `recip` is a SIMD approximation (12 bits on AVX2,
        // 14 on AVX-512, exact on the scalar tail), which moved results by 1e-4 and made a row's
        // value depend on where it sat in the batch.
        let rms = (x32.clone().square().mean_dim(3) + 1e-6).sqrt();
        let dim = self.scale.lazy_shape()[0];
        (x32 / rms).cast(dtype) * self.scale.val().reshape([1, 1, 1, dim])
    }
}

/// Casts to fp32 (a no-op for fp32 tensors).
pub fn to_f32<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    if x.dtype() == DType::F32 {
        x
    } else {
        x.cast(DType::F32)
    }
}

/// GELU with the tanh approximation (`nn.functional.gelu(approximate="tanh")`).
pub fn gelu_tanh<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let inner =
        (x.clone() + x.clone().powi_scalar(3) * 0.044715) * (2.0 / std::f64::consts::PI).sqrt();
    x * (inner.tanh() + 1.0) * 0.5
}

/// Exact (erf) GELU.
pub fn gelu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    activation::gelu(x)
}

/// Above this many score elements (B·H·Lq·Lk) attention runs in query chunks, so the CPU backend
/// (which has no fused kernel and materialises the score matrix) stays within memory.
const SCORE_BUDGET: usize = 1 << 26;

/// Scaled dot-product attention over `[B, H, L, D]` with scale 1/√D. Uses the backend's fused
/// kernel where it has one (flash attention on CUDA); on backends that materialise the score
/// matrix, long query sequences are processed in chunks.
pub fn attention<B: Backend>(q: Tensor<B, 4>, k: Tensor<B, 4>, v: Tensor<B, 4>) -> Tensor<B, 4> {
    let [b, h, lq, _] = q.dims();
    let lk = k.dims()[2];
    let per_row = b * h * lk;
    if per_row * lq <= SCORE_BUDGET || lq < 2 {
        return burn_attention(q, k, v, None, None, AttentionModuleOptions::default());
    }
    let rows = (SCORE_BUDGET / per_row.max(1)).max(1);
    let mut parts = Vec::with_capacity(lq.div_ceil(rows));
    let mut start = 0;
    while start < lq {
        let len = rows.min(lq - start);
        let qc = q.clone().narrow(2, start, len);
        parts.push(burn_attention(
            qc,
            k.clone(),
            v.clone(),
            None,
            None,
            AttentionModuleOptions::default(),
        ));
        start += len;
    }
    Tensor::cat(parts, 2)
}

/// The batch rows `rows` of `t`, in that order (`t` itself when that is all of it).
pub fn select_rows<B: Backend, const D: usize>(t: &Tensor<B, D>, rows: &[usize]) -> Tensor<B, D> {
    if rows.len() == t.dims()[0] && rows.iter().enumerate().all(|(k, &r)| k == r) {
        return t.clone();
    }
    let idx = rows.iter().map(|&r| r as i64).collect::<Vec<_>>();
    let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(idx, [rows.len()]), &t.device());
    t.clone().select(0, idx)
}

/// `[B, L, H·D]` → `[B, H, L, D]`.
pub fn split_heads<B: Backend>(x: Tensor<B, 3>, heads: usize) -> Tensor<B, 4> {
    let [b, l, c] = x.dims();
    x.reshape([b, l, heads, c / heads]).swap_dims(1, 2)
}

/// `[B, H, L, D]` → `[B, L, H·D]`.
pub fn merge_heads<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 3> {
    let [b, h, l, d] = x.dims();
    x.swap_dims(1, 2).reshape([b, l, h * d])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::tensor::CpuBackend;
    use burn::tensor::TensorData;

    type B = CpuBackend;

    fn naive_attention(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        lq: usize,
        lk: usize,
        d: usize,
    ) -> Vec<f32> {
        let mut out = vec![0f32; lq * d];
        for i in 0..lq {
            let scores: Vec<f32> = (0..lk)
                .map(|j| {
                    (0..d).map(|c| q[i * d + c] * k[j * d + c]).sum::<f32>() / (d as f32).sqrt()
                })
                .collect();
            let m = scores.iter().cloned().fold(f32::MIN, f32::max);
            let e: Vec<f32> = scores.iter().map(|s| (s - m).exp()).collect();
            let z: f32 = e.iter().sum();
            for j in 0..lk {
                for c in 0..d {
                    out[i * d + c] += e[j] / z * v[j * d + c];
                }
            }
        }
        out
    }

    #[test]
    fn chunked_attention_equals_the_definition() {
        let dev = Default::default();
        let (lq, lk, d) = (9000, 7500, 2);
        let make = |n: usize, s: f32| (0..n).map(|i| (i as f32 * s).sin()).collect::<Vec<f32>>();
        let (q, k, v) = (make(lq * d, 0.37), make(lk * d, 0.11), make(lk * d, 0.53));
        let t = |x: &Vec<f32>, l| {
            Tensor::<B, 4>::from_data(TensorData::new(x.clone(), [1, 1, l, d]), &dev)
        };
        // 9000 × 7500 scores exceed the budget, so this runs in chunks.
        assert!(lq * lk > SCORE_BUDGET);
        let got: Vec<f32> = attention(t(&q, lq), t(&k, lk), t(&v, lk))
            .into_data()
            .to_vec()
            .unwrap();
        let want = naive_attention(&q, &k, &v, lq, lk, d);
        for i in (0..lq * d).step_by(997) {
            assert!(
                (got[i] - want[i]).abs() < 1e-4,
                "{i}: {} vs {}",
                got[i],
                want[i]
            );
        }
    }

    #[test]
    fn lazy_params_are_not_materialised() {
        let lin = Linear::<B>::new(4096, 4096, true, &Default::default());
        assert!(!lin.weight.is_initialized());
        assert_eq!(lin.weight.lazy_shape().to_vec(), vec![4096, 4096]);
    }

    #[test]
    fn gelu_tanh_matches_formula() {
        let dev = Default::default();
        let x = Tensor::<B, 1>::from_data(
            TensorData::new(vec![-3.0f32, -0.5, 0.0, 0.7, 2.5], [5]),
            &dev,
        );
        let got: Vec<f32> = gelu_tanh(x).into_data().to_vec().unwrap();
        for (g, x) in got.iter().zip([-3.0f64, -0.5, 0.0, 0.7, 2.5]) {
            let want = 0.5
                * x
                * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh());
            assert!((*g as f64 - want).abs() < 1e-6);
        }
    }
}
