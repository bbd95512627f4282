//! Layers shared by the DiT's blocks: the timestep embedder, adaLN modulation, the QK-normed
//! self-attention projections and the final layer.

use burn::module::Module;
use burn::tensor::{DType, Tensor, TensorData, activation::silu, backend::Backend};

use crate::shape::hunyuan3d::nn::{Linear, RmsNorm, layer_norm};

/// The sinusoidal embedding of `hunyuan3ddit.timestep_embedding(t, dim, max_period, time_factor)`
/// as the DiT calls it: `max_period` is the time factor (1000), so
/// `args_k = (factor·t) · exp(−ln(factor)·k/(dim/2))` and the embedding is `[cos(args), sin(args)]`
/// (cos first). Computed on the host in fp32 as PyTorch does. `half_t` reproduces the fp16
/// rounding of `time_factor * t` when the model runs in half precision.
pub fn timestep_embedding(t: &[f32], dim: usize, factor: f64, half_t: bool) -> Vec<f32> {
    let half = dim / 2;
    let log = -(factor.ln()) as f32;
    let freqs: Vec<f32> = (0..half)
        .map(|k| (log * k as f32 / half as f32).exp())
        .collect();
    let mut out = Vec::with_capacity(t.len() * dim);
    for &tv in t {
        let scaled = if half_t {
            half::f16::from_f32(half::f16::from_f32(tv).to_f32() * factor as f32).to_f32()
        } else {
            tv * factor as f32
        };
        let args: Vec<f32> = freqs.iter().map(|f| scaled * f).collect();
        out.extend(args.iter().map(|a| a.cos()));
        out.extend(args.iter().map(|a| a.sin()));
        if dim % 2 == 1 {
            out.push(0.0);
        }
    }
    out
}

/// `MLPEmbedder`: Linear → SiLU → Linear.
#[derive(Module, Debug)]
pub struct MlpEmbedder<B: Backend> {
    pub in_layer: Linear<B>,
    pub out_layer: Linear<B>,
}

impl<B: Backend> MlpEmbedder<B> {
    pub fn new(d_in: usize, hidden: usize, device: &B::Device) -> Self {
        Self {
            in_layer: Linear::new(d_in, hidden, true, device),
            out_layer: Linear::new(hidden, hidden, true, device),
        }
    }

    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.out_layer.forward(silu(self.in_layer.forward(x)))
    }

    /// Embeds per-sample scalars (timesteps or guidance scales) through the sinusoidal embedding.
    pub fn embed_scalars(
        &self,
        values: &[f32],
        factor: f64,
        dtype: DType,
        device: &B::Device,
    ) -> Tensor<B, 2> {
        let dim = self.in_layer.weight.lazy_shape()[0];
        let emb = timestep_embedding(values, dim, factor, dtype == DType::F16);
        let emb = Tensor::<B, 2>::from_data(TensorData::new(emb, [values.len(), dim]), device)
            .cast(dtype);
        self.forward(emb)
    }
}

/// One adaLN modulation triple, each `[B, 1, C]`.
#[derive(Debug, Clone)]
pub struct ModulationOut<B: Backend> {
    pub shift: Tensor<B, 3>,
    pub scale: Tensor<B, 3>,
    pub gate: Tensor<B, 3>,
}

impl<B: Backend> ModulationOut<B> {
    /// `(1 + scale) · x + shift`.
    pub fn modulate(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        (self.scale.clone() + 1.0) * x + self.shift.clone()
    }
}

/// `Modulation`: `lin(SiLU(vec))` chunked into (shift, scale, gate) × (2 if double else 1).
#[derive(Module, Debug)]
pub struct Modulation<B: Backend> {
    pub lin: Linear<B>,
    count: usize,
}

impl<B: Backend> Modulation<B> {
    pub fn new(dim: usize, double: bool, device: &B::Device) -> Self {
        let count = if double { 6 } else { 3 };
        Self {
            lin: Linear::new(dim, count * dim, true, device),
            count,
        }
    }

    pub fn forward(&self, vec: Tensor<B, 2>) -> Vec<ModulationOut<B>> {
        let out = self.lin.forward(silu(vec)).unsqueeze_dim::<3>(1);
        let parts = out.chunk(self.count, 2);
        parts
            .chunks(3)
            .map(|p| ModulationOut {
                shift: p[0].clone(),
                scale: p[1].clone(),
                gate: p[2].clone(),
            })
            .collect()
    }
}

/// `QKNorm`: RMSNorm on queries and keys over the head dimension.
#[derive(Module, Debug)]
pub struct QkNorm<B: Backend> {
    pub query_norm: RmsNorm<B>,
    pub key_norm: RmsNorm<B>,
}

/// `SelfAttention`'s parameters (the blocks run the attention jointly).
#[derive(Module, Debug)]
pub struct SelfAttention<B: Backend> {
    pub qkv: Linear<B>,
    pub norm: QkNorm<B>,
    pub proj: Linear<B>,
}

impl<B: Backend> SelfAttention<B> {
    pub fn new(dim: usize, heads: usize, qkv_bias: bool, device: &B::Device) -> Self {
        let hd = dim / heads;
        Self {
            qkv: Linear::new(dim, 3 * dim, qkv_bias, device),
            norm: QkNorm {
                query_norm: RmsNorm::new(hd, device),
                key_norm: RmsNorm::new(hd, device),
            },
            proj: Linear::new(dim, dim, true, device),
        }
    }

    /// q, k, v `[B, H, L, D]` from `[B, L, 3·H·D]` laid out `(K H D)`, with q and k normed.
    pub fn qkv(&self, x: Tensor<B, 3>, heads: usize) -> [Tensor<B, 4>; 3] {
        split_qkv(self.qkv.forward(x), heads, &self.norm)
    }
}

/// `rearrange(qkv, "B L (K H D) -> K B H L D", K=3)` then QK-norm.
pub fn split_qkv<B: Backend>(
    qkv: Tensor<B, 3>,
    heads: usize,
    norm: &QkNorm<B>,
) -> [Tensor<B, 4>; 3] {
    let [b, l, c] = qkv.dims();
    let d = c / (3 * heads);
    let qkv = qkv.reshape([b, l, 3, heads, d]);
    let take = |i: usize| {
        qkv.clone()
            .narrow(2, i, 1)
            .reshape([b, l, heads, d])
            .swap_dims(1, 2)
    };
    let (q, k, v) = (take(0), take(1), take(2));
    [norm.query_norm.forward(q), norm.key_norm.forward(k), v]
}

/// `LastLayer`: LayerNorm (no affine) modulated by `adaLN_modulation = [SiLU, Linear]`
/// (shift first), then `linear`.
#[derive(Module, Debug)]
pub struct LastLayer<B: Backend> {
    pub linear: Linear<B>,
    /// Checkpoint key `adaLN_modulation.1` (index 0 is the parameterless SiLU).
    pub ada_ln_modulation: Linear<B>,
}

impl<B: Backend> LastLayer<B> {
    pub fn new(hidden: usize, out: usize, device: &B::Device) -> Self {
        Self {
            linear: Linear::new(hidden, out, true, device),
            ada_ln_modulation: Linear::new(hidden, 2 * hidden, true, device),
        }
    }

    pub fn forward(&self, x: Tensor<B, 3>, vec: Tensor<B, 2>) -> Tensor<B, 3> {
        let m = self
            .ada_ln_modulation
            .forward(silu(vec))
            .unsqueeze_dim::<3>(1);
        let mut parts = m.chunk(2, 2);
        let scale = parts.pop().expect("two parts");
        let shift = parts.pop().expect("two parts");
        let x = (scale + 1.0) * layer_norm(x, 1e-6) + shift;
        self.linear.forward(x)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn timestep_embedding_is_cos_first_with_max_period_1000() {
        let e = timestep_embedding(&[0.5], 256, 1000.0, false);
        assert_eq!(e.len(), 256);
        // k = 0: args = 500 → cos(500), sin(500).
        assert!((e[0] - 500f32.cos()).abs() < 1e-6);
        assert!((e[128] - 500f32.sin()).abs() < 1e-6);
        // k = 64: freq = 1000^(-1/2).
        let a = 500.0 * 1000f64.powf(-0.5);
        assert!((e[64] as f64 - a.cos()).abs() < 1e-5);
    }
}
