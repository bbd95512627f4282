//! `ShapeVAE`'s decoder half: `post_kl` and the self-attention transformer turn denoised latents
//! into the KV set, and the geometry decoder (Fourier features → one cross-attention block →
//! occupancy logit, positive inside) queries it at points.
//!
//! Both attention kinds use hy3dgen's per-head interleaved layouts (`view(B, N, H, 3·D)` split
//! into q, k, v; `view(B, M, H, 2·D)` split into k, v), not the DiT's `(K, H, D)` one, with
//! LayerNorm QK-norm and exact GELU. The latents' K/V projection for the geometry decoder is
//! computed once per shape ([`GeometryDecoder::prepare`]), not once per query chunk.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Tensor, TensorData, backend::Backend};
use serde::Deserialize;
use serde_yaml::Value;

use super::ModelError;
use super::nn::{LayerNorm, Linear, attention, gelu, merge_heads, select_rows};

/// `ShapeVAE` constructor parameters (`vae.params` of `config.yaml`), with its defaults.
#[derive(Config, Debug, PartialEq)]
pub struct VaeConfig {
    pub num_latents: usize,
    pub embed_dim: usize,
    pub width: usize,
    pub heads: usize,
    pub num_decoder_layers: usize,
    #[config(default = 1)]
    pub geo_decoder_downsample_ratio: usize,
    #[config(default = 4)]
    pub geo_decoder_mlp_expand_ratio: usize,
    #[config(default = true)]
    pub geo_decoder_ln_post: bool,
    #[config(default = 8)]
    pub num_freqs: usize,
    #[config(default = true)]
    pub include_pi: bool,
    #[config(default = true)]
    pub qkv_bias: bool,
    #[config(default = false)]
    pub qk_norm: bool,
    #[config(default = 1.0)]
    pub scale_factor: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VaeParams {
    num_latents: usize,
    embed_dim: usize,
    width: usize,
    heads: usize,
    num_decoder_layers: usize,
    #[serde(default = "one")]
    geo_decoder_downsample_ratio: usize,
    #[serde(default = "four")]
    geo_decoder_mlp_expand_ratio: usize,
    #[serde(default = "yes")]
    geo_decoder_ln_post: bool,
    #[serde(default = "eight")]
    num_freqs: usize,
    #[serde(default = "yes")]
    include_pi: bool,
    #[serde(default = "yes")]
    qkv_bias: bool,
    #[serde(default)]
    qk_norm: bool,
    #[serde(default = "one_f")]
    scale_factor: f64,
    #[serde(default)]
    label_type: Option<String>,
    #[serde(default)]
    drop_path_rate: Option<f64>,
}

const fn one() -> usize {
    1
}
const fn four() -> usize {
    4
}
const fn eight() -> usize {
    8
}
const fn one_f() -> f64 {
    1.0
}
const fn yes() -> bool {
    true
}

impl VaeConfig {
    /// The v2-0 VAE (`hunyuan3d-vae-v2-0/config.yaml`).
    pub fn v2_0() -> Self {
        VaeConfig::new(3072, 64, 1024, 16, 16)
            .with_include_pi(false)
            .with_qkv_bias(false)
            .with_qk_norm(true)
            .with_scale_factor(0.9990943042622529)
    }

    /// The mini VAE: 512 latents and its own scale factor.
    pub fn v2_mini() -> Self {
        let mut cfg = Self::v2_0().with_scale_factor(1.0188137142395404);
        cfg.num_latents = 512;
        cfg
    }

    /// Reads the `vae` section (`{target: ...ShapeVAE, params: {...}}`).
    pub fn from_section(section: &Value) -> Result<Self, ModelError> {
        let target = section.get("target").and_then(Value::as_str).unwrap_or("");
        if target.rsplit('.').next() != Some("ShapeVAE") {
            return Err(ModelError::Unsupported(format!(
                "VAE `{target}` (only ShapeVAE is implemented)"
            )));
        }
        let p: VaeParams =
            serde_yaml::from_value(section.get("params").cloned().unwrap_or_default())
                .map_err(|e| ModelError::Config(format!("vae.params: {e}")))?;
        if let Some(label) = p.label_type.as_deref().filter(|l| *l != "binary") {
            return Err(ModelError::Unsupported(format!("vae label_type `{label}`")));
        }
        let _ = p.drop_path_rate; // training only
        let ratio = p.geo_decoder_downsample_ratio;
        if p.heads == 0
            || ratio == 0
            || !p.width.is_multiple_of(p.heads)
            || !p.width.is_multiple_of(ratio)
            || !p.heads.is_multiple_of(ratio)
        {
            return Err(ModelError::Config(format!(
                "vae: width {} / heads {} / geo_decoder_downsample_ratio {ratio} do not divide",
                p.width, p.heads
            )));
        }
        if !(p.scale_factor.is_finite() && p.scale_factor != 0.0) {
            return Err(ModelError::Config(
                "vae: scale_factor must be finite and non-zero".into(),
            ));
        }
        Ok(VaeConfig {
            num_latents: p.num_latents,
            embed_dim: p.embed_dim,
            width: p.width,
            heads: p.heads,
            num_decoder_layers: p.num_decoder_layers,
            geo_decoder_downsample_ratio: ratio,
            geo_decoder_mlp_expand_ratio: p.geo_decoder_mlp_expand_ratio,
            geo_decoder_ln_post: p.geo_decoder_ln_post,
            num_freqs: p.num_freqs,
            include_pi: p.include_pi,
            qkv_bias: p.qkv_bias,
            qk_norm: p.qk_norm,
            scale_factor: p.scale_factor,
        })
    }

    /// Fourier feature width: 3·(2·freqs + 1).
    pub fn fourier_dim(&self) -> usize {
        3 * (2 * self.num_freqs + 1)
    }
}

/// `QKVMultiheadAttention`/`QKVMultiheadCrossAttention`'s optional LayerNorm QK-norm.
#[derive(Module, Debug)]
pub struct QkLayerNorm<B: Backend> {
    pub q_norm: Option<LayerNorm<B>>,
    pub k_norm: Option<LayerNorm<B>>,
}

impl<B: Backend> QkLayerNorm<B> {
    fn new(enabled: bool, head_dim: usize, device: &B::Device) -> Self {
        Self {
            q_norm: enabled.then(|| LayerNorm::new(head_dim, 1e-6, device)),
            k_norm: enabled.then(|| LayerNorm::new(head_dim, 1e-6, device)),
        }
    }
}

fn norm_opt<B: Backend>(norm: &Option<LayerNorm<B>>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    match norm {
        Some(n) => n.forward(x),
        None => x,
    }
}

/// `MLP`: `c_fc` → exact GELU → `c_proj`.
#[derive(Module, Debug)]
pub struct VaeMlp<B: Backend> {
    pub c_fc: Linear<B>,
    pub c_proj: Linear<B>,
}

impl<B: Backend> VaeMlp<B> {
    fn new(width: usize, ratio: usize, device: &B::Device) -> Self {
        Self {
            c_fc: Linear::new(width, width * ratio, true, device),
            c_proj: Linear::new(width * ratio, width, true, device),
        }
    }

    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        self.c_proj.forward(gelu(self.c_fc.forward(x)))
    }
}

#[derive(Module, Debug)]
pub struct MultiheadAttention<B: Backend> {
    pub c_qkv: Linear<B>,
    pub c_proj: Linear<B>,
    pub attention: QkLayerNorm<B>,
}

#[derive(Module, Debug)]
pub struct ResidualAttentionBlock<B: Backend> {
    pub attn: MultiheadAttention<B>,
    pub ln_1: LayerNorm<B>,
    pub ln_2: LayerNorm<B>,
    pub mlp: VaeMlp<B>,
}

impl<B: Backend> ResidualAttentionBlock<B> {
    fn forward(&self, x: Tensor<B, 3>, heads: usize) -> Tensor<B, 3> {
        let [b, n, w] = x.dims();
        let d = w / heads;
        let qkv = self
            .attn
            .c_qkv
            .forward(self.ln_1.forward(x.clone()))
            .reshape([b, n, heads, 3 * d]);
        let q = qkv.clone().narrow(3, 0, d);
        let k = qkv.clone().narrow(3, d, d);
        let v = qkv.narrow(3, 2 * d, d);
        let q = norm_opt(&self.attn.attention.q_norm, q).swap_dims(1, 2);
        let k = norm_opt(&self.attn.attention.k_norm, k).swap_dims(1, 2);
        let v = v.swap_dims(1, 2);
        let a = self.attn.c_proj.forward(merge_heads(attention(q, k, v)));
        let x = x + a;
        x.clone() + self.mlp.forward(self.ln_2.forward(x))
    }
}

#[derive(Module, Debug)]
pub struct VaeTransformer<B: Backend> {
    pub resblocks: Vec<ResidualAttentionBlock<B>>,
}

#[derive(Module, Debug)]
pub struct MultiheadCrossAttention<B: Backend> {
    pub c_q: Linear<B>,
    pub c_kv: Linear<B>,
    pub c_proj: Linear<B>,
    pub attention: QkLayerNorm<B>,
}

#[derive(Module, Debug)]
pub struct ResidualCrossAttentionBlock<B: Backend> {
    pub attn: MultiheadCrossAttention<B>,
    pub ln_1: LayerNorm<B>,
    pub ln_2: LayerNorm<B>,
    pub ln_3: LayerNorm<B>,
    pub mlp: VaeMlp<B>,
}

/// `CrossAttentionDecoder`.
#[derive(Module, Debug)]
pub struct GeometryDecoder<B: Backend> {
    pub query_proj: Linear<B>,
    pub latents_proj: Option<Linear<B>>,
    pub cross_attn_decoder: ResidualCrossAttentionBlock<B>,
    pub ln_post: Option<LayerNorm<B>>,
    pub output_proj: Linear<B>,
    heads: usize,
    num_freqs: usize,
    include_pi: bool,
}

/// A shape's keys and values for the geometry decoder, `[B, H, M, D]` each, computed once.
#[derive(Debug, Clone)]
pub struct DecoderKv<B: Backend> {
    pub k: Tensor<B, 4>,
    pub v: Tensor<B, 4>,
}

impl<B: Backend> DecoderKv<B> {
    pub fn batch(&self) -> usize {
        self.k.dims()[0]
    }

    /// The KV of the shapes at `rows` (in that order).
    pub fn select(&self, rows: &[usize]) -> Self {
        DecoderKv {
            k: select_rows(&self.k, rows),
            v: select_rows(&self.v, rows),
        }
    }
}

impl<B: Backend> GeometryDecoder<B> {
    /// `c_kv(ln_2(latents))` split per head into normed keys and values.
    pub fn prepare(&self, latents: Tensor<B, 3>) -> DecoderKv<B> {
        let latents = match &self.latents_proj {
            Some(p) => p.forward(latents),
            None => latents,
        };
        let blk = &self.cross_attn_decoder;
        let [b, m, _] = latents.dims();
        let kv = blk.attn.c_kv.forward(blk.ln_2.forward(latents));
        let w = kv.dims()[2] / 2;
        let d = w / self.heads;
        let kv = kv.reshape([b, m, self.heads, 2 * d]);
        let k = norm_opt(&blk.attn.attention.k_norm, kv.clone().narrow(3, 0, d)).swap_dims(1, 2);
        let v = kv.narrow(3, d, d).swap_dims(1, 2);
        DecoderKv { k, v }
    }

    /// Fourier features `[x, sin(x·f), cos(x·f)]` of points `[N, 3]` (host, fp32; frequencies
    /// 2^0..2^(F−1), times π if configured).
    pub fn embed(&self, points: &[[f32; 3]]) -> Vec<f32> {
        let f = self.num_freqs;
        let freqs: Vec<f32> = (0..f)
            .map(|i| {
                let v = 2f32.powi(i as i32);
                if self.include_pi {
                    v * std::f32::consts::PI
                } else {
                    v
                }
            })
            .collect();
        let dim = 3 * (2 * f + 1);
        let mut out = Vec::with_capacity(points.len() * dim);
        for p in points {
            out.extend_from_slice(p);
            for c in p {
                out.extend(freqs.iter().map(|fr| (c * fr).sin()));
            }
            for c in p {
                out.extend(freqs.iter().map(|fr| (c * fr).cos()));
            }
        }
        out
    }

    /// Occupancy logits `[B, N]` at the same `N` points for every shape of `kv`. The query side
    /// (embedding, projection, `c_q`) is computed once and shared by the batch.
    pub fn query_shared(&self, kv: &DecoderKv<B>, points: &[[f32; 3]]) -> Tensor<B, 2> {
        let device = kv.k.device();
        let dtype = kv.k.dtype();
        let n = points.len();
        let dim = 3 * (2 * self.num_freqs + 1);
        let emb =
            Tensor::<B, 3>::from_data(TensorData::new(self.embed(points), [1, n, dim]), &device)
                .cast(dtype);
        let x = self.query_proj.forward(emb);
        let b = kv.batch();
        let [_, _, w] = x.dims();
        self.finish(x.expand([b, n, w]), kv)
    }

    /// Occupancy logits `[B, N]` at per-shape points `[B, N, 3]` (row-major, B·N points).
    pub fn query_each(&self, kv: &DecoderKv<B>, points: &[[f32; 3]], n: usize) -> Tensor<B, 2> {
        let device = kv.k.device();
        let dtype = kv.k.dtype();
        let b = kv.batch();
        let dim = 3 * (2 * self.num_freqs + 1);
        let emb =
            Tensor::<B, 3>::from_data(TensorData::new(self.embed(points), [b, n, dim]), &device)
                .cast(dtype);
        let x = self.query_proj.forward(emb);
        self.finish(x, kv)
    }

    fn finish(&self, x: Tensor<B, 3>, kv: &DecoderKv<B>) -> Tensor<B, 2> {
        let blk = &self.cross_attn_decoder;
        let [b, n, w] = x.dims();
        let d = w / self.heads;
        let q = blk
            .attn
            .c_q
            .forward(blk.ln_1.forward(x.clone()))
            .reshape([b, n, self.heads, d]);
        let q = norm_opt(&blk.attn.attention.q_norm, q).swap_dims(1, 2);
        let a = blk
            .attn
            .c_proj
            .forward(merge_heads(attention(q, kv.k.clone(), kv.v.clone())));
        let x = x + a;
        let x = x.clone() + blk.mlp.forward(blk.ln_3.forward(x));
        let x = match &self.ln_post {
            Some(ln) => ln.forward(x),
            None => x,
        };
        self.output_proj.forward(x).reshape([b, n])
    }
}

/// The VAE decoder: latents → KV set (`ShapeVAE.forward`) and the geometry decoder.
#[derive(Module, Debug)]
pub struct ShapeVae<B: Backend> {
    pub post_kl: Linear<B>,
    pub transformer: VaeTransformer<B>,
    pub geo_decoder: GeometryDecoder<B>,
    heads: usize,
    scale_factor: f64,
}

impl<B: Backend> ShapeVae<B> {
    /// The module tree with lazy (unallocated) parameters.
    pub fn new(cfg: &VaeConfig, device: &B::Device) -> Self {
        let w = cfg.width;
        let hd = w / cfg.heads;
        let resblocks = (0..cfg.num_decoder_layers)
            .map(|_| ResidualAttentionBlock {
                attn: MultiheadAttention {
                    c_qkv: Linear::new(w, 3 * w, cfg.qkv_bias, device),
                    c_proj: Linear::new(w, w, true, device),
                    attention: QkLayerNorm::new(cfg.qk_norm, hd, device),
                },
                ln_1: LayerNorm::new(w, 1e-6, device),
                ln_2: LayerNorm::new(w, 1e-6, device),
                mlp: VaeMlp::new(w, 4, device),
            })
            .collect();
        let ratio = cfg.geo_decoder_downsample_ratio;
        let gw = w / ratio;
        let gh = cfg.heads / ratio;
        // Upstream disables the cross-attention's QK-norm when ln_post is off.
        let qk = cfg.qk_norm && cfg.geo_decoder_ln_post;
        let geo_decoder = GeometryDecoder {
            query_proj: Linear::new(cfg.fourier_dim(), gw, true, device),
            latents_proj: (ratio != 1).then(|| Linear::new(gw * ratio, gw, true, device)),
            cross_attn_decoder: ResidualCrossAttentionBlock {
                attn: MultiheadCrossAttention {
                    c_q: Linear::new(gw, gw, cfg.qkv_bias, device),
                    c_kv: Linear::new(gw, 2 * gw, cfg.qkv_bias, device),
                    c_proj: Linear::new(gw, gw, true, device),
                    attention: QkLayerNorm::new(qk, gw / gh, device),
                },
                ln_1: LayerNorm::new(gw, 1e-6, device),
                ln_2: LayerNorm::new(gw, 1e-6, device),
                ln_3: LayerNorm::new(gw, 1e-6, device),
                mlp: VaeMlp::new(gw, cfg.geo_decoder_mlp_expand_ratio, device),
            },
            // nn.LayerNorm(width): PyTorch's default eps.
            ln_post: cfg
                .geo_decoder_ln_post
                .then(|| LayerNorm::new(gw, 1e-5, device)),
            output_proj: Linear::new(gw, 1, true, device),
            heads: gh,
            num_freqs: cfg.num_freqs,
            include_pi: cfg.include_pi,
        };
        Self {
            post_kl: Linear::new(cfg.embed_dim, w, true, device),
            transformer: VaeTransformer { resblocks },
            geo_decoder,
            heads: cfg.heads,
            scale_factor: cfg.scale_factor,
        }
    }

    /// Denoised latents `[B, M, embed_dim]` (as the sampler returns them) → the KV set
    /// `[B, M, width]`: divided by `scale_factor`, `post_kl`, the transformer.
    pub fn decode(&self, latents: Tensor<B, 3>) -> Tensor<B, 3> {
        let dtype = self.post_kl.weight.val().dtype();
        // `1. / scale_factor * latents`: a multiplication by the reciprocal, as upstream.
        let x = latents.cast(dtype) * (1.0 / self.scale_factor);
        let mut x = self.post_kl.forward(x);
        for blk in &self.transformer.resblocks {
            x = blk.forward(x, self.heads);
        }
        x
    }
}
