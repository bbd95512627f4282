//! U²-Net (Qin et al. 2020, "U²-Net: Going Deeper with Nested U-Structure for Salient Object
//! Detection"): the original `U2NET` and the small `U2NETP`, as rembg runs them for
//! background removal, on burn (any backend; CUDA on GPUs) and on the host CPU (packed GEMM
//! convolutions, see [`host`]). Architecture, weight formats and parity notes: `docs/u2net.md`.
//!
//! ```text
//! hx1 = stage1(x) ─pool─ stage2 ─pool─ stage3 ─pool─ stage4 ─pool─ stage5 ─pool─ stage6 = hx6
//! hx5d = stage5d(cat(up(hx6), hx5));  hx4d = stage4d(cat(up(hx5d), hx4));  …  hx1d = stage1d(…)
//! d1 = side1(hx1d); dk = up(side_k(hx_k d)) to d1's size (k = 2…5); d6 = up(side6(hx6))
//! d0 = outconv(cat(d1 … d6));  output sigmoid(d0)   (the model also returns sigmoid(d1…d6),
//!                                                   which rembg ignores; they are not computed)
//! ```

pub mod burn_exec;
pub mod config;
pub mod exec;
pub mod host;
pub mod onnx;
pub mod onnx_map;
pub mod ops;
pub mod pth;
pub mod rebnconv;
pub mod rsu;
pub mod rsu4f;
pub mod session;
pub mod weights;

use super::SegmentationError;

pub use burn_exec::BurnExec;
pub use config::{Block, ConvSpec, Stage, U2NetConfig};
pub use exec::Exec;
pub use host::HostExec;
pub use rebnconv::{Conv, FoldedConv};
pub use session::U2NetSegmenter;
pub use weights::{StateDict, U2NetWeights};

use rsu::Rsu;
use rsu4f::Rsu4f;

/// One stage's block.
#[derive(Debug, Clone)]
pub enum StageBlock<C> {
    Rsu(Rsu<C>),
    Rsu4f(Rsu4f<C>),
}

impl<C> StageBlock<C> {
    fn new(spec: &Stage, convs: &mut impl Iterator<Item = C>) -> Option<Self> {
        match spec.block {
            Block::Rsu(levels) => Rsu::new(levels, convs).map(StageBlock::Rsu),
            Block::Rsu4f => Rsu4f::new(convs).map(StageBlock::Rsu4f),
        }
    }

    fn forward<E: Exec<Conv = C>>(&self, e: &E, parts: &[&E::Map]) -> E::Map {
        match self {
            StageBlock::Rsu(b) => b.forward(e, parts),
            StageBlock::Rsu4f(b) => b.forward(e, parts),
        }
    }
}

/// The network's layers as an executor holds them (`C` is its convolution type).
#[derive(Debug, Clone)]
pub struct U2Net<C> {
    pub config: U2NetConfig,
    encoder: Vec<StageBlock<C>>,
    decoder: Vec<StageBlock<C>>,
    sides: Vec<C>,
    outconv: C,
}

impl<C> U2Net<C> {
    /// Prepares loaded (folded) weights for `exec`.
    pub fn new<E: Exec<Conv = C>>(
        weights: &U2NetWeights,
        exec: &E,
    ) -> Result<Self, SegmentationError> {
        let config = weights.config();
        let short = || {
            SegmentationError::Unsupported(format!(
                "{} convolutions for a {} model",
                weights.convs().len(),
                config.kind
            ))
        };
        let all = weights.convs();
        let (fusion, layers) = all.split_last().ok_or_else(short)?;
        let mut convs = layers.iter().map(|c| exec.prepare(c));
        let mut stages = |specs: &[Stage]| -> Option<Vec<StageBlock<C>>> {
            specs
                .iter()
                .map(|s| StageBlock::new(s, &mut convs))
                .collect()
        };
        let encoder = stages(&config.encoder).ok_or_else(short)?;
        let decoder = stages(&config.decoder).ok_or_else(short)?;
        let sides: Vec<C> = convs.by_ref().take(6).collect();
        if sides.len() != 6 || convs.next().is_some() {
            return Err(short());
        }
        // The fusion takes the six side maps as six parts instead of their concatenation.
        let outconv = exec.prepare(&FoldedConv {
            inputs: 6,
            ..fusion.clone()
        });
        Ok(U2Net {
            config,
            encoder,
            decoder,
            sides,
            outconv,
        })
    }

    /// `sigmoid(d0)`, `[B, 1, H, W]`, for normalised images `[B, 3, H, W]`.
    pub fn forward<E: Exec<Conv = C>>(&self, e: &E, x: &E::Map) -> E::Map {
        e.sigmoid(self.logits(e, x))
    }

    /// `d0` before the sigmoid.
    pub fn logits<E: Exec<Conv = C>>(&self, e: &E, x: &E::Map) -> E::Map {
        // Encoder: hx1 … hx6, a pool between consecutive stages.
        let mut enc: Vec<E::Map> = Vec::with_capacity(6);
        for (i, stage) in self.encoder.iter().enumerate() {
            let h = if i == 0 {
                stage.forward(e, &[x])
            } else {
                stage.forward(e, &[&e.pool(&enc[i - 1])])
            };
            enc.push(h);
        }
        // Decoder: stage5d … stage1d, each on cat(up(previous), skip).
        let mut dec: Vec<E::Map> = Vec::with_capacity(5);
        for (j, stage) in self.decoder.iter().enumerate() {
            let skip = &enc[4 - j];
            let previous = dec.last().unwrap_or(&enc[5]);
            let up = e.upsample_like(previous, skip);
            dec.push(stage.forward(e, &[&up, skip]));
        }
        // Side outputs from hx1d, hx2d, …, hx5d, hx6, all brought to d1's size.
        let side_inputs = [&dec[4], &dec[3], &dec[2], &dec[1], &dec[0], &enc[5]];
        let d1 = e.conv(&self.sides[0], &[side_inputs[0]]);
        let mut maps = Vec::with_capacity(5);
        for (side, input) in self.sides[1..].iter().zip(&side_inputs[1..]) {
            maps.push(e.upsample_like(&e.conv(side, &[*input]), &d1));
        }
        let mut parts = vec![&d1];
        parts.extend(maps.iter());
        e.conv(&self.outconv, &parts)
    }
}
