//! U²-Net (Qin et al. 2020, "U²-Net: Going Deeper with Nested U-Structure for Salient Object
//! Detection") on burn: the original `U2NET` and the small `U2NETP`, as rembg runs them for
//! background removal. Architecture, weight formats and parity notes: `docs/u2net.md`.
//!
//! ```text
//! hx1 = stage1(x) ─pool─ stage2 ─pool─ stage3 ─pool─ stage4 ─pool─ stage5 ─pool─ stage6 = hx6
//! hx5d = stage5d(cat(up(hx6), hx5));  hx4d = stage4d(cat(up(hx5d), hx4));  …  hx1d = stage1d(…)
//! d1 = side1(hx1d); dk = up(side_k(hx_k d)) to d1's size (k = 2…5); d6 = up(side6(hx6))
//! d0 = outconv(cat(d1 … d6));  output sigmoid(d0)   (the model also returns sigmoid(d1…d6),
//!                                                   which rembg ignores; they are not computed)
//! ```

pub mod config;
pub mod onnx;
pub mod onnx_map;
pub mod ops;
pub mod pth;
pub mod rebnconv;
pub mod rsu;
pub mod rsu4f;
pub mod session;
pub mod weights;

use burn::tensor::{Tensor, activation::sigmoid, backend::Backend};

use super::SegmentationError;

pub use config::{Block, ConvSpec, Stage, U2NetConfig};
pub use rebnconv::{Conv, FoldedConv};
pub use session::U2NetSegmenter;
pub use weights::{StateDict, U2NetWeights};

use ops::{max_pool_ceil, resize_bilinear};
use rsu::Rsu;
use rsu4f::Rsu4f;

/// One stage's block.
#[derive(Debug, Clone)]
pub enum StageBlock<B: Backend> {
    Rsu(Rsu<B>),
    Rsu4f(Rsu4f<B>),
}

impl<B: Backend> StageBlock<B> {
    fn new(spec: &Stage, convs: &mut impl Iterator<Item = Conv<B>>) -> Option<Self> {
        match spec.block {
            Block::Rsu(levels) => Rsu::new(levels, convs).map(StageBlock::Rsu),
            Block::Rsu4f => Rsu4f::new(convs).map(StageBlock::Rsu4f),
        }
    }

    fn forward(&self, parts: Vec<Tensor<B, 4>>) -> Tensor<B, 4> {
        match self {
            StageBlock::Rsu(b) => b.forward(parts),
            StageBlock::Rsu4f(b) => b.forward(parts),
        }
    }
}

/// The network, resident on a device.
#[derive(Debug, Clone)]
pub struct U2Net<B: Backend> {
    pub config: U2NetConfig,
    encoder: Vec<StageBlock<B>>,
    decoder: Vec<StageBlock<B>>,
    sides: Vec<Conv<B>>,
    outconv: Conv<B>,
}

impl<B: Backend> U2Net<B> {
    /// Uploads loaded (folded) weights to `device`.
    pub fn new(weights: &U2NetWeights, device: &B::Device) -> Result<Self, SegmentationError> {
        let config = weights.config();
        let short = || {
            SegmentationError::Unsupported(format!(
                "{} convolutions for a {} model",
                weights.convs().len(),
                config.kind
            ))
        };
        let mut convs = weights.convs().iter().map(|c| c.to_device::<B>(device));
        let mut stages = |specs: &[Stage]| -> Option<Vec<StageBlock<B>>> {
            specs
                .iter()
                .map(|s| StageBlock::new(s, &mut convs))
                .collect()
        };
        let encoder = stages(&config.encoder).ok_or_else(short)?;
        let decoder = stages(&config.decoder).ok_or_else(short)?;
        let sides: Vec<Conv<B>> = convs.by_ref().take(6).collect();
        let outconv = convs.next().ok_or_else(short)?;
        if sides.len() != 6 || convs.next().is_some() {
            return Err(short());
        }
        Ok(U2Net {
            config,
            encoder,
            decoder,
            sides,
            outconv,
        })
    }

    /// `sigmoid(d0)`, `[B, 1, H, W]`, for normalised images `[B, 3, H, W]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        sigmoid(self.logits(x))
    }

    /// `d0` before the sigmoid.
    pub fn logits(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        // Encoder: hx1 … hx6, a pool between consecutive stages.
        let mut enc: Vec<Tensor<B, 4>> = Vec::with_capacity(6);
        let mut h = x;
        for (i, stage) in self.encoder.iter().enumerate() {
            let input = if i == 0 { h } else { max_pool_ceil(h) };
            h = stage.forward(vec![input]);
            enc.push(h.clone());
        }
        // Decoder: stage5d … stage1d, each on cat(up(previous), skip).
        let mut dec: Vec<Tensor<B, 4>> = Vec::with_capacity(5);
        let mut d = h;
        for (j, stage) in self.decoder.iter().enumerate() {
            let skip = &enc[4 - j];
            let [_, _, sh, sw] = skip.dims();
            let up = resize_bilinear(d, sh, sw);
            d = stage.forward(vec![up, skip.clone()]);
            dec.push(d.clone());
        }
        // Side outputs from hx1d, hx2d, …, hx5d, hx6, all brought to d1's size.
        let side_inputs = [&dec[4], &dec[3], &dec[2], &dec[1], &dec[0], &enc[5]];
        let d1 = self.sides[0].forward(side_inputs[0].clone());
        let [_, _, h1, w1] = d1.dims();
        let mut maps = vec![d1];
        for (side, input) in self.sides[1..].iter().zip(&side_inputs[1..]) {
            maps.push(resize_bilinear(side.forward((*input).clone()), h1, w1));
        }
        self.outconv.forward(Tensor::cat(maps, 1))
    }
}
