//! RSU-4F: the bottom stages' block, where the feature maps are already small, so the U shape
//! is made of dilations (1, 2, 4, 8 down; 4, 2, 1 up) at constant resolution instead of pooling.
//!
//! ```text
//! hxin = rebnconvin(x); hx1 = rebnconv1(hxin); hx2 = rebnconv2(hx1); hx3 = rebnconv3(hx2)
//! hx4  = rebnconv4(hx3)
//! hx3d = rebnconv3d(cat(hx4, hx3)); hx2d = rebnconv2d(cat(hx3d, hx2)); hx1d = rebnconv1d(cat(hx2d, hx1))
//! out  = hx1d + hxin
//! ```

use burn::tensor::{Tensor, backend::Backend};

use super::rebnconv::Conv;

#[derive(Debug, Clone)]
pub struct Rsu4f<B: Backend> {
    conv_in: Conv<B>,
    /// `rebnconv1` … `rebnconv4` (dilations 1, 2, 4, 8).
    encoder: Vec<Conv<B>>,
    /// `rebnconv3d`, `rebnconv2d`, `rebnconv1d` (dilations 4, 2, 1).
    decoder: Vec<Conv<B>>,
}

impl<B: Backend> Rsu4f<B> {
    /// Takes the block's 8 convolutions from `convs` in forward order.
    pub fn new(convs: &mut impl Iterator<Item = Conv<B>>) -> Option<Self> {
        let conv_in = convs.next()?;
        let encoder: Vec<Conv<B>> = convs.take(4).collect();
        let decoder: Vec<Conv<B>> = convs.take(3).collect();
        (encoder.len() == 4 && decoder.len() == 3).then_some(Rsu4f {
            conv_in,
            encoder,
            decoder,
        })
    }

    /// The block on `cat(parts)` (one part, or the decoder stage's `[up, skip]`).
    pub fn forward(&self, parts: Vec<Tensor<B, 4>>) -> Tensor<B, 4> {
        let hxin = self.conv_in.forward_parts(parts);
        let mut skips = Vec::with_capacity(3);
        let mut h = hxin.clone();
        for conv in &self.encoder[..3] {
            h = conv.forward(h);
            skips.push(h.clone());
        }
        let mut d = self.encoder[3].forward(h);
        for (j, conv) in self.decoder.iter().enumerate() {
            d = conv.forward_parts(vec![d, skips[2 - j].clone()]);
        }
        d + hxin
    }
}
