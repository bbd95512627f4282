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

use super::exec::Exec;

#[derive(Debug, Clone)]
pub struct Rsu<C> {
    conv_in: C,
    /// `rebnconv1` … `rebnconvL`.
    encoder: Vec<C>,
    /// `rebnconv(L−1)d` … `rebnconv1d`.
    decoder: Vec<C>,
}

impl<C> Rsu<C> {
    /// Takes the block's `1 + L + (L − 1)` convolutions from `convs` in forward order (the order
    /// of `config::stage_convs`).
    pub fn new(levels: usize, convs: &mut impl Iterator<Item = C>) -> Option<Self> {
        let conv_in = convs.next()?;
        let encoder: Vec<C> = convs.take(levels).collect();
        let decoder: Vec<C> = convs.take(levels - 1).collect();
        (encoder.len() == levels && decoder.len() == levels - 1).then_some(Rsu {
            conv_in,
            encoder,
            decoder,
        })
    }

    /// The block on `cat(parts)` (one part, or the decoder stages' `[up, skip]`).
    pub fn forward<E: Exec<Conv = C>>(&self, e: &E, parts: &[&E::Map]) -> E::Map {
        let levels = self.encoder.len();
        let hxin = e.conv(&self.conv_in, parts);
        // hx1 … hx(L−1), each pooled before the next level except the last.
        let mut skips: Vec<E::Map> = Vec::with_capacity(levels - 1);
        for (i, conv) in self.encoder[..levels - 1].iter().enumerate() {
            let h = if i == 0 {
                e.conv(conv, &[&hxin])
            } else {
                e.conv(conv, &[&e.pool(&skips[i - 1])])
            };
            skips.push(h);
        }
        let last = skips.last().unwrap_or(&hxin);
        let mut d = e.conv(&self.encoder[levels - 1], &[last]);
        for (j, conv) in self.decoder.iter().enumerate() {
            let skip = &skips[levels - 2 - j];
            // The first decoder level runs at the bottom's own size: no resize needed there.
            d = if j == 0 {
                e.conv(conv, &[&d, skip])
            } else {
                e.conv(conv, &[&e.upsample_like(&d, skip), skip])
            };
        }
        e.add(d, &hxin)
    }
}
