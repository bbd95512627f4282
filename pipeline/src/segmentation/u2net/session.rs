//! rembg 2.x's `u2net` / `u2netp` session around the network, batched: the same masks as
//! `rembg.new_session("u2net").predict(img)[0]`, for several images in one forward pass.
//!
//! Preprocessing (`BaseSession.normalize`): `img.convert("RGB")` (alpha dropped, grey
//! replicated) → Pillow LANCZOS resize to 320×320 (aspect ratio not kept) → `/ max(max(all
//! pixels, all channels), 1e-6)` → `(x − mean[c]) / std[c]` with the ImageNet statistics, in f64
//! like numpy, then f32, CHW.
//! Postprocessing (`U2netSession.predict`): `pred = sigmoid(d0)[:, 0]` in f32, `(pred − min) /
//! (max − min)` over the image's own 320×320 map, `clip(0, 1) · 255` truncated to u8, then a
//! Pillow LANCZOS resize back to the image size.

use super::super::{SegmentationError, Segmenter, U2NetKind};
use super::U2Net;
use super::exec::Exec;
use super::weights::U2NetWeights;
use crate::image::pil_resize::resize_lanczos;
use crate::image::resize::Raster;

/// The network's input side.
pub const INPUT_SIZE: usize = 320;
pub const MEAN: [f64; 3] = [0.485, 0.456, 0.406];
pub const STD: [f64; 3] = [0.229, 0.224, 0.225];

/// `img.convert("RGB")` for 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA) channels: grey is replicated,
/// alpha is dropped without compositing.
pub fn to_rgb(img: &Raster) -> Result<Raster, SegmentationError> {
    if img.width == 0 || img.height == 0 {
        return Err(SegmentationError::Input(format!(
            "empty image ({}x{})",
            img.width, img.height
        )));
    }
    let c = img.channels;
    let pick: fn(&[u8]) -> [u8; 3] = match c {
        1 | 2 => |p| [p[0], p[0], p[0]],
        3 | 4 => |p| [p[0], p[1], p[2]],
        _ => {
            return Err(SegmentationError::Input(format!(
                "{c}-channel image (expected 1 to 4)"
            )));
        }
    };
    if c == 3 {
        return Ok(img.clone());
    }
    let data = img.data.chunks_exact(c).flat_map(pick).collect();
    Ok(Raster::from_data(img.width, img.height, 3, data))
}

/// The 320×320 RGB image rembg feeds (after `convert("RGB")` and the LANCZOS resize).
pub fn resized_input(img: &Raster) -> Result<Raster, SegmentationError> {
    Ok(resize_lanczos(&to_rgb(img)?, INPUT_SIZE, INPUT_SIZE))
}

/// rembg's normalised CHW input (3 × 320 × 320) for one image.
pub fn preprocess(img: &Raster) -> Result<Vec<f32>, SegmentationError> {
    let rgb = resized_input(img)?;
    let max = f64::from(rgb.data.iter().copied().max().unwrap_or(0)).max(1e-6);
    let plane = INPUT_SIZE * INPUT_SIZE;
    let mut out = vec![0f32; 3 * plane];
    for (i, px) in rgb.data.chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[c * plane + i] = ((f64::from(px[c]) / max - MEAN[c]) / STD[c]) as f32;
        }
    }
    Ok(out)
}

/// `sigmoid(d0)` of one image (320 × 320) → the 320×320 u8 mask before the final resize.
pub fn mask_320(pred: &[f32]) -> Vec<u8> {
    let (mut mi, mut ma) = (f32::INFINITY, f32::NEG_INFINITY);
    for &p in pred {
        mi = mi.min(p);
        ma = ma.max(p);
    }
    // numpy: float32 arithmetic throughout, `astype(uint8)` truncates. A flat prediction divides
    // by zero there (NaN, cast to 0); `as u8` maps NaN to 0 too.
    pred.iter()
        .map(|&p| (((p - mi) / (ma - mi)).clamp(0.0, 1.0) * 255.0) as u8)
        .collect()
}

/// The final mask at the image's size.
pub fn postprocess(pred: &[f32], width: usize, height: usize) -> Raster {
    let m = Raster::from_data(INPUT_SIZE, INPUT_SIZE, 1, mask_320(pred));
    resize_lanczos(&m, width, height)
}

/// U²-Net with rembg's pre- and postprocessing, run by one executor ([`super::HostExec`] on
/// the CPU, [`super::BurnExec`] on a burn device).
#[derive(Debug)]
pub struct U2NetSegmenter<E: Exec> {
    model: U2Net<E::Conv>,
    exec: E,
}

impl<E: Exec> U2NetSegmenter<E> {
    pub fn new(weights: &U2NetWeights, exec: E) -> Result<Self, SegmentationError> {
        Ok(U2NetSegmenter {
            model: U2Net::new(weights, &exec)?,
            exec,
        })
    }

    /// `sigmoid(d0)` for a batch of preprocessed inputs (`B × 3 × 320 × 320` values), one
    /// 320×320 map per image.
    pub fn predict(&self, inputs: Vec<f32>, batch: usize) -> Vec<Vec<f32>> {
        let x = self.exec.input(inputs, [batch, 3, INPUT_SIZE, INPUT_SIZE]);
        let d0 = self.model.forward(&self.exec, &x);
        self.exec
            .values(d0)
            .chunks_exact(INPUT_SIZE * INPUT_SIZE)
            .map(<[f32]>::to_vec)
            .collect()
    }
}

impl<E> Segmenter for U2NetSegmenter<E>
where
    E: Exec + Send + Sync,
    E::Conv: Send + Sync,
{
    fn kind(&self) -> U2NetKind {
        self.model.config.kind
    }

    fn masks(&self, images: &[&Raster]) -> Result<Vec<Raster>, SegmentationError> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let mut inputs = Vec::with_capacity(images.len() * 3 * INPUT_SIZE * INPUT_SIZE);
        for img in images {
            inputs.extend(preprocess(img)?);
        }
        // burn's backends panic on device errors (out of memory among them), and an allocation
        // failure on the host panics too: contain it.
        let preds = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.predict(inputs, images.len())
        }))
        .map_err(|p| {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            SegmentationError::Model(msg)
        })?;
        if preds.len() != images.len() {
            return Err(SegmentationError::Model(format!(
                "{} outputs for {} images",
                preds.len(),
                images.len()
            )));
        }
        Ok(preds
            .iter()
            .zip(images)
            .map(|(p, img)| postprocess(p, img.width, img.height))
            .collect())
    }
}
