//! RSU-L (`RSU7`, `RSU6`, `RSU5`, `RSU4`): a residual U-Net of height L inside one stage.
//!
//! ```text
//! hxin = rebnconvin(x)
//! hx1  = rebnconv1(hxin);  hx2 = rebnconv2(pool(hx1));  …  hx(L−1) = rebnconv(L−1)(pool(hx(L−2)))
//! hxL  = rebnconvL(hx(L−1))                       (dilation 2, no pool before it)
//! d    = rebnconv(L−1)d(cat(hxL, hx(L−1)));  d = rebnconv(k)d(cat(up(d → hxk), hxk)) for k = L−2 … 1
//! out  = hx1d + hxin
//! ```
//! `pool` is the 2×2 ceil-mode max pool and `up` the half-pixel bilinear resize to the skip's
//! size (which, with ceil-mode pooling, is not always exactly twice the size).

use burn::tensor::{Tensor, backend::Backend};

use super::ops::{max_pool_ceil, resize_bilinear};
use super::rebnconv::Conv;

#[derive(Debug, Clone)]
pub struct Rsu<B: Backend> {
    conv_in: Conv<B>,
    /// `rebnconv1` … `rebnconvL`.
    encoder: Vec<Conv<B>>,
    /// `rebnconv(L−1)d` … `rebnconv1d`.
    decoder: Vec<Conv<B>>,
}

impl<B: Backend> Rsu<B> {
    /// Takes the block's `1 + L + (L − 1)` convolutions from `convs` in forward order (the order
    /// of `config::stage_convs`).
    pub fn new(levels: usize, convs: &mut impl Iterator<Item = Conv<B>>) -> Option<Self> {
        let conv_in = convs.next()?;
        let encoder: Vec<Conv<B>> = convs.take(levels).collect();
        let decoder: Vec<Conv<B>> = convs.take(levels - 1).collect();
        (encoder.len() == levels && decoder.len() == levels - 1).then_some(Rsu {
            conv_in,
            encoder,
            decoder,
        })
    }

    /// The block on `cat(parts)` (one part, or the decoder stages' `[up, skip]`).
    pub fn forward(&self, parts: Vec<Tensor<B, 4>>) -> Tensor<B, 4> {
        let levels = self.encoder.len();
        let hxin = self.conv_in.forward_parts(parts);
        // hx1 … hx(L−1), each pooled before the next level except the last.
        let mut skips: Vec<Tensor<B, 4>> = Vec::with_capacity(levels - 1);
        let mut h = hxin.clone();
        for (i, conv) in self.encoder[..levels - 1].iter().enumerate() {
            let input = if i == 0 { h } else { max_pool_ceil(h) };
            h = conv.forward(input);
            skips.push(h.clone());
        }
        let mut d = self.encoder[levels - 1].forward(h);
        for (j, conv) in self.decoder.iter().enumerate() {
            let skip = &skips[levels - 2 - j];
            let [_, _, sh, sw] = skip.dims();
            let up = resize_bilinear(d, sh, sw);
            d = conv.forward_parts(vec![up, skip.clone()]);
        }
        d + hxin
    }
}
