//! RSU-4F: the bottom stages' block, where the feature maps are already small, so the U shape
//! is made of dilations (1, 2, 4, 8 down; 4, 2, 1 up) at constant resolution instead of pooling.
//!
//! ```text
//! hxin = rebnconvin(x); hx1 = rebnconv1(hxin); hx2 = rebnconv2(hx1); hx3 = rebnconv3(hx2)
//! hx4  = rebnconv4(hx3)
//! hx3d = rebnconv3d(cat(hx4, hx3)); hx2d = rebnconv2d(cat(hx3d, hx2)); hx1d = rebnconv1d(cat(hx2d, hx1))
//! out  = hx1d + hxin
//! ```

use super::exec::Exec;

#[derive(Debug, Clone)]
pub struct Rsu4f<C> {
    conv_in: C,
    /// `rebnconv1` … `rebnconv4` (dilations 1, 2, 4, 8).
    encoder: Vec<C>,
    /// `rebnconv3d`, `rebnconv2d`, `rebnconv1d` (dilations 4, 2, 1).
    decoder: Vec<C>,
}

impl<C> Rsu4f<C> {
    /// Takes the block's 8 convolutions from `convs` in forward order.
    pub fn new(convs: &mut impl Iterator<Item = C>) -> Option<Self> {
        let conv_in = convs.next()?;
        let encoder: Vec<C> = convs.take(4).collect();
        let decoder: Vec<C> = convs.take(3).collect();
        (encoder.len() == 4 && decoder.len() == 3).then_some(Rsu4f {
            conv_in,
            encoder,
            decoder,
        })
    }

    /// The block on `cat(parts)` (one part, or the decoder stage's `[up, skip]`).
    pub fn forward<E: Exec<Conv = C>>(&self, e: &E, parts: &[&E::Map]) -> E::Map {
        let hxin = e.conv(&self.conv_in, parts);
        let mut skips: Vec<E::Map> = Vec::with_capacity(3);
        for conv in &self.encoder[..3] {
            let h = e.conv(conv, &[skips.last().unwrap_or(&hxin)]);
            skips.push(h);
        }
        let mut d = e.conv(&self.encoder[3], &[&skips[2]]);
        for (j, conv) in self.decoder.iter().enumerate() {
            d = e.conv(conv, &[&d, &skips[2 - j]]);
        }
        e.add(d, &hxin)
    }
}
