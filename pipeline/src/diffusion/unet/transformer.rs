//! The UNet's attention: `Transformer2DModel` (group norm, linear projection in, transformer
//! blocks over the pixels, projection out, residual) and its `BasicTransformerBlock` (self-
//! attention, cross-attention to the conditioning tokens, GEGLU feed-forward, each pre-normed
//! with a residual).
//!
//! Hunyuan3D-Paint's multiview UNet wraps each block (`Basic2p5DTransformerBlock`) with two more
//! attentions, both fed the block's first layer norm of its input (the same tensor self-attention
//! sees), each added with a residual after self-attention, in this order:
//! - `attn_refview`: the view's tokens attend to the reference image's tokens at this block, which
//!   the reference UNet recorded ([`Views::Record`]), scaled per sample by `ref_scale`;
//! - `attn_multiview`: the tokens of all views of a sample attend to each other jointly.

use burn::module::Module;
use burn::tensor::{Tensor, backend::Backend};

use crate::diffusion::layers::GroupNorm;
use crate::shape::hunyuan3d::nn::{LayerNorm, Linear, attention, gelu, merge_heads, split_heads};

/// `Transformer2DModel`'s group norm ε.
const NORM_EPS: f64 = 1e-6;
/// The transformer blocks' layer norm ε.
const LAYER_EPS: f64 = 1e-5;

/// Multi-head attention without biases on q, k, v (`to_out.0` has one).
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    pub to_q: Linear<B>,
    pub to_k: Linear<B>,
    pub to_v: Linear<B>,
    pub to_out: Vec<Linear<B>>,
    heads: usize,
}

impl<B: Backend> Attention<B> {
    /// `context`: the width of the tokens attended to (the block's own width for self-attention).
    pub fn new(dim: usize, context: usize, heads: usize, device: &B::Device) -> Self {
        Self {
            to_q: Linear::new(dim, dim, false, device),
            to_k: Linear::new(context, dim, false, device),
            to_v: Linear::new(context, dim, false, device),
            to_out: vec![Linear::new(dim, dim, true, device)],
            heads,
        }
    }

    /// `x`: `[B, L, dim]`; `context`: `[B, S, context]` (or `x` itself).
    pub fn forward(&self, x: Tensor<B, 3>, context: Option<Tensor<B, 3>>) -> Tensor<B, 3> {
        let ctx = context.unwrap_or_else(|| x.clone());
        let q = split_heads(self.to_q.forward(x), self.heads);
        let k = split_heads(self.to_k.forward(ctx.clone()), self.heads);
        let v = split_heads(self.to_v.forward(ctx), self.heads);
        let mut out = merge_heads(attention(q, k, v));
        for layer in &self.to_out {
            out = layer.forward(out);
        }
        out
    }
}

/// `GEGLU`: a projection to twice the inner width, one half gating the other through GELU.
#[derive(Module, Debug)]
pub struct Geglu<B: Backend> {
    pub proj: Linear<B>,
}

/// `FeedForward` with GEGLU: `net.0` (GEGLU), `net.1` (dropout, no parameters), `net.2`.
#[derive(Module, Debug)]
pub struct FeedForward<B: Backend> {
    pub net_0: Geglu<B>,
    pub net_2: Linear<B>,
}

impl<B: Backend> FeedForward<B> {
    pub fn new(dim: usize, device: &B::Device) -> Self {
        let inner = 4 * dim;
        Self {
            net_0: Geglu {
                proj: Linear::new(dim, 2 * inner, true, device),
            },
            net_2: Linear::new(inner, dim, true, device),
        }
    }

    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let both = self.net_0.proj.forward(x);
        let [b, l, w] = both.dims();
        let half = w / 2;
        let hidden = both.clone().slice([0..b, 0..l, 0..half]);
        let gate = both.slice([0..b, 0..l, half..w]);
        self.net_2.forward(hidden * gelu(gate))
    }
}

/// How the transformer blocks see other images than their own.
#[derive(Debug)]
pub enum Views<'a, B: Backend> {
    /// Each image alone: a plain Stable Diffusion UNet.
    Alone,
    /// The reference UNet's pass: every block's `norm1` output is appended to `features`, in the
    /// order the blocks run, as `[samples, per_sample · L, C]`.
    Record {
        per_sample: usize,
        features: &'a mut Vec<Tensor<B, 3>>,
    },
    /// The multiview UNet's pass: `per_sample` consecutive rows are the views of one sample;
    /// `reference` holds the recorded features (consumed in order from `next`), weighted per
    /// sample by `ref_scale` `[samples]`.
    Attend {
        per_sample: usize,
        reference: &'a [Tensor<B, 3>],
        ref_scale: Tensor<B, 1>,
        next: usize,
    },
}

/// What the transformer blocks attend to besides their own tokens.
#[derive(Debug)]
pub struct Conditioning<'a, B: Backend> {
    /// The cross-attention tokens `[rows, S, context]`.
    pub text: Tensor<B, 3>,
    pub views: Views<'a, B>,
}

impl<B: Backend> Conditioning<'_, B> {
    /// Plain cross-attention conditioning.
    pub fn text(text: Tensor<B, 3>) -> Self {
        Conditioning {
            text,
            views: Views::Alone,
        }
    }
}

#[derive(Module, Debug)]
pub struct TransformerBlock<B: Backend> {
    pub norm1: LayerNorm<B>,
    pub attn1: Attention<B>,
    pub norm2: LayerNorm<B>,
    pub attn2: Attention<B>,
    pub norm3: LayerNorm<B>,
    pub ff: FeedForward<B>,
    /// Hunyuan3D-Paint's multiview UNet only.
    pub attn_multiview: Option<Attention<B>>,
    pub attn_refview: Option<Attention<B>>,
}

impl<B: Backend> TransformerBlock<B> {
    /// `multiview`: with the multiview UNet's two extra attentions.
    pub fn new(
        dim: usize,
        context: usize,
        heads: usize,
        multiview: bool,
        device: &B::Device,
    ) -> Self {
        let extra = || multiview.then(|| Attention::new(dim, dim, heads, device));
        Self {
            norm1: LayerNorm::new(dim, LAYER_EPS, device),
            attn1: Attention::new(dim, dim, heads, device),
            norm2: LayerNorm::new(dim, LAYER_EPS, device),
            attn2: Attention::new(dim, context, heads, device),
            norm3: LayerNorm::new(dim, LAYER_EPS, device),
            ff: FeedForward::new(dim, device),
            attn_multiview: extra(),
            attn_refview: extra(),
        }
    }

    pub fn forward(&self, x: Tensor<B, 3>, cond: &mut Conditioning<'_, B>) -> Tensor<B, 3> {
        let normed = self.norm1.forward(x.clone());
        let mut x = self.attn1.forward(normed.clone(), None) + x;
        x = self.other_views(x, normed, &mut cond.views);
        let x = self
            .attn2
            .forward(self.norm2.forward(x.clone()), Some(cond.text.clone()))
            + x;
        self.ff.forward(self.norm3.forward(x.clone())) + x
    }

    /// The reference and multiview attentions (or the reference UNet's recording).
    fn other_views(
        &self,
        mut x: Tensor<B, 3>,
        normed: Tensor<B, 3>,
        views: &mut Views<'_, B>,
    ) -> Tensor<B, 3> {
        let [rows, tokens, dim] = normed.dims();
        match views {
            Views::Alone => {}
            Views::Record {
                per_sample,
                features,
            } => features.push(normed.reshape([rows / *per_sample, *per_sample * tokens, dim])),
            Views::Attend {
                per_sample,
                reference,
                ref_scale,
                next,
            } => {
                let n = *per_sample;
                let samples = rows / n;
                if let Some(attn) = &self.attn_refview {
                    // The caller checked that every block has its features.
                    let Some(features) = reference.get(*next) else {
                        return x;
                    };
                    *next += 1;
                    let [_, seen, _] = features.dims();
                    // Every view of a sample attends to that sample's reference tokens.
                    let kv = features
                        .clone()
                        .unsqueeze_dim::<4>(1)
                        .expand([samples, n, seen, dim])
                        .reshape([rows, seen, dim]);
                    let scale = ref_scale
                        .clone()
                        .reshape([samples, 1])
                        .expand([samples, n])
                        .reshape([rows, 1, 1]);
                    x = x + attn.forward(normed.clone(), Some(kv)) * scale;
                }
                if let Some(attn) = self.attn_multiview.as_ref().filter(|_| n > 1) {
                    let joint = normed.reshape([samples, n * tokens, dim]);
                    x = x + attn.forward(joint, None).reshape([rows, tokens, dim]);
                }
            }
        }
        x
    }
}

/// `Transformer2DModel` with linear projections (`use_linear_projection`, SD 2.x).
#[derive(Module, Debug)]
pub struct Transformer2d<B: Backend> {
    pub norm: GroupNorm<B>,
    pub proj_in: Linear<B>,
    pub transformer_blocks: Vec<TransformerBlock<B>>,
    pub proj_out: Linear<B>,
}

impl<B: Backend> Transformer2d<B> {
    pub fn new(
        channels: usize,
        context: usize,
        heads: usize,
        groups: usize,
        multiview: bool,
        device: &B::Device,
    ) -> Self {
        Self {
            norm: GroupNorm::new(groups, channels, NORM_EPS, device),
            proj_in: Linear::new(channels, channels, true, device),
            transformer_blocks: vec![TransformerBlock::new(
                channels, context, heads, multiview, device,
            )],
            proj_out: Linear::new(channels, channels, true, device),
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>, cond: &mut Conditioning<'_, B>) -> Tensor<B, 4> {
        let [b, c, h, w] = x.dims();
        let mut tokens = self.proj_in.forward(
            self.norm
                .forward(x.clone())
                .reshape([b, c, h * w])
                .swap_dims(1, 2),
        );
        for block in &self.transformer_blocks {
            tokens = block.forward(tokens, cond);
        }
        self.proj_out
            .forward(tokens)
            .swap_dims(1, 2)
            .reshape([b, c, h, w])
            + x
    }
}
