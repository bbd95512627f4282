//! REBNCONV (`conv3x3(dilation d, padding d)` → `BatchNorm2d` → ReLU) for inference: the
//! BatchNorm is folded into the convolution when the weights are loaded, as onnxruntime and
//! PyTorch's ONNX exporter both do, so a forward pass is one convolution and one ReLU.

use std::any::TypeId;

use burn::tensor::module::conv2d;
use burn::tensor::ops::{ConvOptions, PadMode};
use burn::tensor::{Tensor, TensorData, activation::relu, backend::Backend};

use super::config::ConvSpec;
use crate::tensor::CpuBackend;

/// `BatchNorm2d`'s default epsilon, which U²-Net never changes.
pub const BN_EPS: f64 = 1e-5;

/// The inference parameters of a `BatchNorm2d`.
#[derive(Debug, Clone, Copy)]
pub struct BatchNorm<'a> {
    pub gamma: &'a [f32],
    pub beta: &'a [f32],
    pub mean: &'a [f32],
    pub var: &'a [f32],
    pub eps: f64,
}

/// One convolution on the host, BatchNorm folded in: what every weight format is turned into.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldedConv {
    /// Our name for it (the state-dict prefix, `stage1.rebnconvin.conv_s1`).
    pub key: String,
    /// `[out, in, k, k]` row-major.
    pub weight: Vec<f32>,
    pub shape: [usize; 4],
    pub bias: Vec<f32>,
    pub padding: usize,
    pub dilation: usize,
    pub relu: bool,
    /// Number of equal channel groups the input arrives in ([`ConvSpec::inputs`]).
    pub inputs: usize,
}

impl FoldedConv {
    /// `conv` with bias `bias` (zeros when the file has none) followed by `bn`, folded:
    /// `s = γ / sqrt(σ² + ε)`, `W' = W · s[out]`, `b' = (b − μ) · s + β`, in f64 then rounded to
    /// f32 once. Lengths are checked by the callers against `spec`.
    pub fn fold(spec: &ConvSpec, weight: &[f32], bias: &[f32], bn: Option<BatchNorm>) -> Self {
        let out = spec.out_ch;
        let per_out = weight.len() / out.max(1);
        let (weight, bias) = match bn {
            None => (weight.to_vec(), bias.to_vec()),
            Some(bn) => {
                let mut w = Vec::with_capacity(weight.len());
                let mut b = Vec::with_capacity(out);
                for o in 0..out {
                    let s = f64::from(bn.gamma[o]) / (f64::from(bn.var[o]) + bn.eps).sqrt();
                    w.extend(
                        weight[o * per_out..(o + 1) * per_out]
                            .iter()
                            .map(|&v| (f64::from(v) * s) as f32),
                    );
                    b.push(
                        ((f64::from(bias[o]) - f64::from(bn.mean[o])) * s + f64::from(bn.beta[o]))
                            as f32,
                    );
                }
                (w, b)
            }
        };
        FoldedConv {
            key: spec.conv.clone(),
            weight,
            shape: spec.weight_shape(),
            bias,
            padding: spec.padding(),
            dilation: spec.dilation,
            relu: spec.relu(),
            inputs: spec.inputs(),
        }
    }

    /// Uploads the layer to `device`, its weight split along the input channels into one part
    /// per input tensor.
    pub fn to_device<B: Backend>(&self, device: &B::Device) -> Conv<B> {
        let [out, cin, kh, kw] = self.shape;
        let part = cin / self.inputs.max(1);
        let weights = (0..self.inputs.max(1))
            .map(|p| {
                let mut w = Vec::with_capacity(out * part * kh * kw);
                for o in 0..out {
                    let start = (o * cin + p * part) * kh * kw;
                    w.extend_from_slice(&self.weight[start..start + part * kh * kw]);
                }
                Tensor::from_data(TensorData::new(w, [out, part, kh, kw]), device)
            })
            .collect();
        Conv {
            weights,
            bias: Tensor::from_data(TensorData::new(self.bias.clone(), [out]), device),
            padding: self.padding,
            dilation: self.dilation,
            relu: self.relu,
        }
    }
}

/// A convolution with its folded bias, resident on a device; stride 1 and "same" padding
/// throughout U²-Net.
#[derive(Debug, Clone)]
pub struct Conv<B: Backend> {
    /// `[out, in / parts, k, k]` per input part (one part unless the PyTorch input is a
    /// concatenation, see [`ConvSpec::inputs`]).
    pub weights: Vec<Tensor<B, 4>>,
    pub bias: Tensor<B, 1>,
    pub padding: usize,
    pub dilation: usize,
    /// REBNCONV (conv + BN + ReLU) or a plain side/fusion conv.
    pub relu: bool,
}

impl<B: Backend> Conv<B> {
    /// `conv(cat(parts, dim 1))` as `Σ conv(part_i, W_i)`: burn-ndarray's concatenation costs
    /// about as much as a convolution at full resolution, and the sum needs none. The parts'
    /// channel counts must match the weight split (the model guarantees it).
    pub fn forward_parts(&self, parts: Vec<Tensor<B, 4>>) -> Tensor<B, 4> {
        if let Some(first) = parts.first() {
            let [_, c, h, w] = first.dims();
            if use_im2col::<B>(c, h, w) {
                return self.forward_im2col(parts);
            }
        }
        let options = ConvOptions::new(
            [1, 1],
            [self.padding, self.padding],
            [self.dilation, self.dilation],
            1,
        );
        let mut terms = parts
            .into_iter()
            .zip(&self.weights)
            .enumerate()
            .map(|(i, (x, w))| {
                let bias = (i == 0).then(|| self.bias.clone());
                conv2d(x, w.clone(), bias, options.clone())
            });
        let first = terms.next();
        let y = terms.fold(first, |acc, t| acc.map(|a| a + t));
        match y {
            Some(y) if self.relu => relu(y),
            Some(y) => y,
            // No input: an empty batch never reaches here (the session checks).
            None => Tensor::empty([0, 0, 0, 0], &self.bias.device()),
        }
    }

    /// The same convolution as one matrix product per part: `W[out, in·k²] × cols[in·k², H·W]`
    /// with `cols` gathered from 9 shifted slices of the zero-padded input.
    fn forward_im2col(&self, parts: Vec<Tensor<B, 4>>) -> Tensor<B, 4> {
        let (p, d) = (self.padding, self.dilation);
        let mut y: Option<Tensor<B, 3>> = None;
        let mut shape = [0; 4];
        for (x, w) in parts.into_iter().zip(&self.weights) {
            let [n, c, h, wd] = x.dims();
            let [o, _, kh, kw] = w.dims();
            shape = [n, o, h, wd];
            let xp = x.pad((p, p, p, p), PadMode::Constant(0.0));
            let mut taps = Vec::with_capacity(kh * kw);
            for ky in 0..kh {
                for kx in 0..kw {
                    let (y0, x0) = (ky * d, kx * d);
                    taps.push(xp.clone().slice([0..n, 0..c, y0..y0 + h, x0..x0 + wd]));
                }
            }
            // [n, c, k², h, w] → [n, c·k², h·w]: row c·k² + tap, the weight's flattening.
            let cols = Tensor::stack::<5>(taps, 2).reshape([n, c * kh * kw, h * wd]);
            let term = w.clone().reshape([1, o, c * kh * kw]).matmul(cols);
            y = Some(match y {
                None => term,
                Some(acc) => acc + term,
            });
        }
        let [n, o, h, w] = shape;
        match y {
            Some(y) => {
                let y = y.reshape([n, o, h, w]) + self.bias.clone().reshape([1, o, 1, 1]);
                if self.relu { relu(y) } else { y }
            }
            None => Tensor::empty([0, 0, 0, 0], &self.bias.device()),
        }
    }
}

/// Whether to convolve through im2col and a matrix product: on the CPU backend, for small maps
/// with many channels (U2NET's stages 4–6 and their decoders at 40² … 10²), where burn-ndarray's
/// direct convolution reaches 2–7 GMAC/s and the product 15–25 (measured by
/// `examples/u2net_bench.rs --profile`). Large maps stay direct: their im2col buffer would be
/// `9 × in` times the input.
fn use_im2col<B: Backend>(in_ch: usize, h: usize, w: usize) -> bool {
    TypeId::of::<B>() == TypeId::of::<CpuBackend>() && h * w <= 40 * 40 && in_ch >= 128
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_equals_conv_then_batchnorm() {
        let spec = ConvSpec {
            conv: "x.conv_s1".into(),
            bn: Some("x.bn_s1".into()),
            in_ch: 1,
            out_ch: 2,
            kernel: 1,
            dilation: 1,
        };
        let bn = BatchNorm {
            gamma: &[2.0, 0.5],
            beta: &[0.1, -0.2],
            mean: &[0.3, 1.0],
            var: &[4.0 - 1e-5, 0.25 - 1e-5],
            eps: 1e-5,
        };
        let f = FoldedConv::fold(&spec, &[1.5, -2.0], &[0.5, 0.0], Some(bn));
        // Channel 0: (1.5·x + 0.5 − 0.3) · 2/2 + 0.1 = 1.5·x + 0.3.
        // Channel 1: (−2·x − 1) · 0.5/0.5 − 0.2 = −2·x − 1.2.
        let close = |a: f32, b: f32| (a - b).abs() < 1e-6;
        assert!(close(f.weight[0], 1.5) && close(f.bias[0], 0.3), "{f:?}");
        assert!(close(f.weight[1], -2.0) && close(f.bias[1], -1.2), "{f:?}");
        assert!(f.relu);
    }
}
