//! The conditioner: DINOv2 (HF `Dinov2Model` naming, SwiGLU FFN, layer-scale) as
//! `DinoImageEncoder` runs it: `(x+1)/2` → bilinear resize (antialiased, torchvision) of the short
//! side to `input_size` → centre crop → ImageNet normalisation → `last_hidden_state` (after the
//! final LayerNorm, CLS kept). The unconditional embedding for classifier-free guidance is all
//! zeros.

use burn::module::{Module, Param};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, TensorData, activation::silu, backend::Backend};

use super::config::DinoConfig;
use super::nn::{LayerNorm, Linear, attention, lazy_param, merge_heads, split_heads};

const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

#[derive(Module, Debug)]
pub struct Conv2dPatch<B: Backend> {
    pub weight: Param<Tensor<B, 4>>,
    pub bias: Param<Tensor<B, 1>>,
}

#[derive(Module, Debug)]
pub struct PatchEmbeddings<B: Backend> {
    pub projection: Conv2dPatch<B>,
}

#[derive(Module, Debug)]
pub struct Embeddings<B: Backend> {
    pub cls_token: Param<Tensor<B, 3>>,
    /// Unused at inference (masked pre-training only) but part of the checkpoint.
    pub mask_token: Param<Tensor<B, 2>>,
    pub position_embeddings: Param<Tensor<B, 3>>,
    pub patch_embeddings: PatchEmbeddings<B>,
}

#[derive(Module, Debug)]
pub struct SelfAttentionQkv<B: Backend> {
    pub query: Linear<B>,
    pub key: Linear<B>,
    pub value: Linear<B>,
}

#[derive(Module, Debug)]
pub struct AttentionOutput<B: Backend> {
    pub dense: Linear<B>,
}

#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    pub attention: SelfAttentionQkv<B>,
    pub output: AttentionOutput<B>,
}

#[derive(Module, Debug)]
pub struct LayerScale<B: Backend> {
    pub lambda1: Param<Tensor<B, 1>>,
}

#[derive(Module, Debug)]
pub struct SwiGlu<B: Backend> {
    pub weights_in: Linear<B>,
    pub weights_out: Linear<B>,
}

#[derive(Module, Debug)]
pub struct Layer<B: Backend> {
    pub norm1: LayerNorm<B>,
    pub attention: Attention<B>,
    pub layer_scale1: LayerScale<B>,
    pub norm2: LayerNorm<B>,
    pub mlp: SwiGlu<B>,
    pub layer_scale2: LayerScale<B>,
}

#[derive(Module, Debug)]
pub struct Encoder<B: Backend> {
    pub layer: Vec<Layer<B>>,
}

/// `Dinov2Model` (module paths equal the checkpoint's keys under
/// `conditioner.main_image_encoder.model.`).
#[derive(Module, Debug)]
pub struct Dinov2<B: Backend> {
    pub embeddings: Embeddings<B>,
    pub encoder: Encoder<B>,
    pub layernorm: LayerNorm<B>,
    heads: usize,
    patch: usize,
    positions_side: usize,
}

impl<B: Backend> Dinov2<B> {
    /// The module tree with lazy (unallocated) parameters.
    pub fn new(cfg: &DinoConfig, device: &B::Device) -> Self {
        let h = cfg.hidden_size;
        let side = cfg.image_size / cfg.patch_size;
        let ffn = cfg.swiglu_hidden();
        let layer = (0..cfg.num_hidden_layers)
            .map(|_| Layer {
                norm1: LayerNorm::new(h, cfg.layer_norm_eps, device),
                attention: Attention {
                    attention: SelfAttentionQkv {
                        query: Linear::new(h, h, cfg.qkv_bias, device),
                        key: Linear::new(h, h, cfg.qkv_bias, device),
                        value: Linear::new(h, h, cfg.qkv_bias, device),
                    },
                    output: AttentionOutput {
                        dense: Linear::new(h, h, true, device),
                    },
                },
                layer_scale1: LayerScale {
                    lambda1: lazy_param([h], device),
                },
                norm2: LayerNorm::new(h, cfg.layer_norm_eps, device),
                mlp: SwiGlu {
                    weights_in: Linear::new(h, 2 * ffn, true, device),
                    weights_out: Linear::new(ffn, h, true, device),
                },
                layer_scale2: LayerScale {
                    lambda1: lazy_param([h], device),
                },
            })
            .collect();
        Self {
            embeddings: Embeddings {
                cls_token: lazy_param([1, 1, h], device),
                mask_token: lazy_param([1, h], device),
                position_embeddings: lazy_param([1, side * side + 1, h], device),
                patch_embeddings: PatchEmbeddings {
                    projection: Conv2dPatch {
                        weight: lazy_param([h, 3, cfg.patch_size, cfg.patch_size], device),
                        bias: lazy_param([h], device),
                    },
                },
            },
            encoder: Encoder { layer },
            layernorm: LayerNorm::new(h, cfg.layer_norm_eps, device),
            heads: cfg.num_attention_heads,
            patch: cfg.patch_size,
            positions_side: side,
        }
    }

    /// `last_hidden_state` for normalised pixels `[B, 3, S, S]` (S a multiple of the patch size):
    /// `[B, 1 + (S/14)², hidden]`.
    pub fn forward(&self, pixels: Tensor<B, 4>) -> Tensor<B, 3> {
        let [b, _, hgt, wid] = pixels.dims();
        let dtype = self.embeddings.cls_token.val().dtype();
        let pixels = pixels.cast(dtype);
        let proj = &self.embeddings.patch_embeddings.projection;
        let patches = conv2d(
            pixels,
            proj.weight.val(),
            Some(proj.bias.val()),
            ConvOptions::new([self.patch, self.patch], [0, 0], [1, 1], 1),
        );
        let [_, c, gh, gw] = patches.dims();
        let patches = patches.reshape([b, c, gh * gw]).swap_dims(1, 2);
        let cls = self.embeddings.cls_token.val().expand([b, 1, c]);
        let x = Tensor::cat(vec![cls, patches], 1);
        let x = x + self.position_embeddings(hgt / self.patch, wid / self.patch);
        let mut x = x;
        for layer in &self.encoder.layer {
            x = layer.forward(x, self.heads);
        }
        self.layernorm.forward(x)
    }

    /// The position embeddings for a `gh × gw` patch grid: the checkpoint's own when the grid
    /// matches (and is square), else bicubically interpolated in fp32 (HF
    /// `interpolate_pos_encoding`).
    fn position_embeddings(&self, gh: usize, gw: usize) -> Tensor<B, 3> {
        let pos = self.embeddings.position_embeddings.val();
        let side = self.positions_side;
        if gh * gw == side * side && gh == gw {
            return pos;
        }
        let [_, n, c] = pos.dims();
        let dtype = pos.dtype();
        let device = pos.device();
        let cls = pos.clone().narrow(1, 0, 1);
        let grid: Vec<f32> = pos
            .narrow(1, 1, n - 1)
            .cast(burn::tensor::DType::F32)
            .into_data()
            .convert::<f32>()
            .to_vec()
            .expect("f32 position embeddings");
        let resized = bicubic_hwc(&grid, side, side, c, gh, gw);
        let patch = Tensor::<B, 3>::from_data(TensorData::new(resized, [1, gh * gw, c]), &device)
            .cast(dtype);
        Tensor::cat(vec![cls, patch], 1)
    }
}

impl<B: Backend> Layer<B> {
    fn forward(&self, x: Tensor<B, 3>, heads: usize) -> Tensor<B, 3> {
        let h = self.norm1.forward(x.clone());
        let qkv = &self.attention.attention;
        let q = split_heads(qkv.query.forward(h.clone()), heads);
        let k = split_heads(qkv.key.forward(h.clone()), heads);
        let v = split_heads(qkv.value.forward(h), heads);
        let a = self
            .attention
            .output
            .dense
            .forward(merge_heads(attention(q, k, v)));
        let x = x + scale(a, &self.layer_scale1);
        let h = self.mlp.weights_in.forward(self.norm2.forward(x.clone()));
        let mut halves = h.chunk(2, 2);
        let x2 = halves.pop().expect("two halves");
        let x1 = halves.pop().expect("two halves");
        let m = self.mlp.weights_out.forward(silu(x1) * x2);
        x + scale(m, &self.layer_scale2)
    }
}

fn scale<B: Backend>(x: Tensor<B, 3>, ls: &LayerScale<B>) -> Tensor<B, 3> {
    let c = ls.lambda1.lazy_shape()[0];
    x * ls.lambda1.val().reshape([1, 1, c])
}

/// The encoder's input transform on the host: images `[B, 3, H, W]` (row-major) in [-1, 1] →
/// normalised pixels `[B, 3, S, S]` with S = `input_size`: `(x+1)/2`, torchvision
/// `Resize(S, bilinear, antialias=True)` of the shorter side, `CenterCrop(S)`, ImageNet
/// mean/std.
pub fn transform(
    images: &[f32],
    batch: usize,
    height: usize,
    width: usize,
    size: usize,
) -> Vec<f32> {
    let (rh, rw) = if height <= width {
        (size, (size as f64 * width as f64 / height as f64) as usize)
    } else {
        ((size as f64 * height as f64 / width as f64) as usize, size)
    };
    let top = ((rh as f64 - size as f64) / 2.0).round() as usize;
    let left = ((rw as f64 - size as f64) / 2.0).round() as usize;
    let plane = height * width;
    let mut out = Vec::with_capacity(batch * 3 * size * size);
    for b in 0..batch {
        for c in 0..3 {
            let src: Vec<f32> = images[(b * 3 + c) * plane..(b * 3 + c + 1) * plane]
                .iter()
                .map(|v| (v + 1.0) / 2.0)
                .collect();
            let resized = resize_bilinear_aa(&src, height, width, rh, rw);
            for y in 0..size {
                for x in 0..size {
                    let v = resized[(y + top) * rw + x + left];
                    out.push((v - MEAN[c]) / STD[c]);
                }
            }
        }
    }
    out
}

/// Antialiased bilinear resampling of one plane (PyTorch `_upsample_bilinear2d_aa`, the kernel
/// behind torchvision's `antialias=True`): a triangle filter widened by the scale when
/// downsampling, weights normalised per output pixel, applied along x then y.
pub fn resize_bilinear_aa(src: &[f32], h: usize, w: usize, oh: usize, ow: usize) -> Vec<f32> {
    let wx = aa_weights(w, ow);
    let wy = aa_weights(h, oh);
    let mut tmp = vec![0f32; h * ow];
    for y in 0..h {
        for (x, (start, ws)) in wx.iter().enumerate() {
            tmp[y * ow + x] = ws
                .iter()
                .enumerate()
                .map(|(j, wt)| src[y * w + start + j] * wt)
                .sum();
        }
    }
    let mut out = vec![0f32; oh * ow];
    for (y, (start, ws)) in wy.iter().enumerate() {
        for x in 0..ow {
            out[y * ow + x] = ws
                .iter()
                .enumerate()
                .map(|(j, wt)| tmp[(start + j) * ow + x] * wt)
                .sum();
        }
    }
    out
}

fn aa_weights(input: usize, output: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = input as f64 / output as f64;
    let support = if scale >= 1.0 { scale } else { 1.0 };
    let invscale = if scale >= 1.0 { 1.0 / scale } else { 1.0 };
    (0..output)
        .map(|i| {
            let center = scale * (i as f64 + 0.5);
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(input as i64) as usize;
            let mut ws: Vec<f64> = (xmin..xmax)
                .map(|j| {
                    let t = ((j as f64 - center + 0.5) * invscale).abs();
                    if t < 1.0 { 1.0 - t } else { 0.0 }
                })
                .collect();
            let total: f64 = ws.iter().sum();
            if total != 0.0 {
                ws.iter_mut().for_each(|v| *v /= total);
            }
            (xmin, ws.into_iter().map(|v| v as f32).collect())
        })
        .collect()
}

/// Bicubic resampling (A = −0.75, align_corners = False, border-clamped taps; PyTorch
/// `upsample_bicubic2d`) of an `h × w × c` grid to `oh × ow × c`.
pub fn bicubic_hwc(src: &[f32], h: usize, w: usize, c: usize, oh: usize, ow: usize) -> Vec<f32> {
    fn taps(input: usize, output: usize, i: usize) -> ([usize; 4], [f64; 4]) {
        const A: f64 = -0.75;
        let scale = input as f64 / output as f64;
        let real = scale * (i as f64 + 0.5) - 0.5;
        let base = real.floor();
        let t = real - base;
        let cc1 = |x: f64| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
        let cc2 = |x: f64| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
        let weights = [cc2(t + 1.0), cc1(t), cc1(1.0 - t), cc2(2.0 - t)];
        let idx = std::array::from_fn(|k| {
            (base as i64 - 1 + k as i64).clamp(0, input as i64 - 1) as usize
        });
        (idx, weights)
    }
    let mut out = vec![0f32; oh * ow * c];
    for y in 0..oh {
        let (iy, wy) = taps(h, oh, y);
        for x in 0..ow {
            let (ix, wx) = taps(w, ow, x);
            for ch in 0..c {
                let mut acc = 0f64;
                for (a, ya) in iy.iter().enumerate() {
                    let mut row = 0f64;
                    for (b, xb) in ix.iter().enumerate() {
                        row += src[(ya * w + xb) * c + ch] as f64 * wx[b];
                    }
                    acc += row * wy[a];
                }
                out[(y * ow + x) * c + ch] = acc as f32;
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn upsampling_is_plain_bilinear_and_identity_is_exact() {
        let src: Vec<f32> = (0..16).map(|v| v as f32).collect();
        assert_eq!(resize_bilinear_aa(&src, 4, 4, 4, 4), src);
        // 4 → 8 along x on a ramp: half-pixel centres give 0, .25, .75, 1.25, ...; edges clamp.
        let row: Vec<f32> = vec![0.0, 1.0, 2.0, 3.0];
        let up = resize_bilinear_aa(&row, 1, 4, 1, 8);
        let want = [0.0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.0];
        for (g, w) in up.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{up:?}");
        }
    }

    #[test]
    fn downsampling_averages() {
        // 2× down with the widened triangle: each output mixes 4 inputs with weights 1,3,3,1 /8
        // (clipped and renormalised at the borders).
        let row: Vec<f32> = vec![0.0, 0.0, 8.0, 8.0, 0.0, 0.0];
        let down = resize_bilinear_aa(&row, 1, 6, 1, 3);
        assert!((down[1] - 6.0).abs() < 1e-5, "{down:?}");
        assert!((down[0] - 8.0 / 7.0).abs() < 1e-5, "{down:?}");
    }

    #[test]
    fn bicubic_identity_and_constant() {
        let src: Vec<f32> = (0..9).map(|v| v as f32).collect();
        let same = bicubic_hwc(&src, 3, 3, 1, 3, 3);
        for (a, b) in same.iter().zip(&src) {
            assert!((a - b).abs() < 1e-6);
        }
        let flat = bicubic_hwc(&[2.5; 4], 2, 2, 1, 5, 5);
        assert!(flat.iter().all(|v| (v - 2.5).abs() < 1e-6));
    }
}
