//! `image_preprocessing`: background removal — the alpha channel, the U²-Net model when one is
//! loaded ([`MaskPlan`] says which images need it, so a batch is segmented in one call), else the
//! weights-free methods of [`super::photo`] — then the recentering of Hunyuan3D-2's
//! `ImageProcessorV2` (docs/hunyuan3d.md, preprocessing), whose output is the tensor the
//! neural engine consumes:
//!
//! 1. the mask's bounding box (max row/column excluded, as upstream slices it) is cropped and
//!    resized with `INTER_AREA` so its long side is `int(size·(1 − border_ratio))` of the square
//!    `size = max(H, W)`, pasted centred on a transparent square;
//! 2. alpha-composited over white in float32 and truncated to u8;
//! 3. resized to 512² with `INTER_CUBIC` (the mask with `INTER_NEAREST`);
//! 4. mapped to [-1, 1] as `x / 255 · 2 − 1`.

pub use orfeas_vocab::{BackgroundMode, Segmentation, SegmentationMethod};

use super::load::LoadedImage;
use super::photo::{PhotoSegmentParams, WeightsFreeMethod, segment_without_weights};
use super::resize::{Raster, resize_area, resize_cubic, resize_nearest};
use super::segment::SegmentParams;
use crate::error::PreprocessError;

#[derive(Debug, Clone, PartialEq)]
pub struct PreprocessOptions {
    pub background: BackgroundMode,
    /// Output side in pixels (512 for every released Hunyuan3D-2 config).
    pub size: usize,
    /// Empty margin around the object (0.15 in the released configs).
    pub border_ratio: f64,
    /// The border colour model (plain backgrounds).
    pub segment: SegmentParams,
    /// The weights-free photo method.
    pub photo: PhotoSegmentParams,
}

impl Default for PreprocessOptions {
    fn default() -> Self {
        PreprocessOptions {
            background: BackgroundMode::Auto,
            size: 512,
            border_ratio: 0.15,
            segment: SegmentParams::default(),
            photo: PhotoSegmentParams::default(),
        }
    }
}

/// The recentred image: `size²` RGB composited on white, and the object mask.
#[derive(Debug, Clone, PartialEq)]
pub struct PreprocessedImage {
    pub size: usize,
    /// Row-major RGB, `size * size * 3` bytes.
    pub rgb: Vec<u8>,
    /// Row-major mask, `size * size` bytes, 0 = background.
    pub mask: Vec<u8>,
    /// How the mask was found and how much of the input image it covers.
    pub segmentation: Segmentation,
}

impl PreprocessedImage {
    /// The network input: CHW float values `x / 255 · 2 − 1` in [-1, 1].
    pub fn to_chw(&self) -> Vec<f32> {
        let n = self.size * self.size;
        let mut out = vec![0f32; 3 * n];
        for (i, px) in self.rgb.chunks_exact(3).enumerate() {
            for c in 0..3 {
                out[c * n + i] = f32::from(px[c]) / 255.0 * 2.0 - 1.0;
            }
        }
        out
    }

    pub fn is_foreground(&self, x: usize, y: usize) -> bool {
        self.mask[y * self.size + x] != 0
    }
}

/// Alpha is "real" when a meaningful share of the pixels is actually transparent.
fn has_real_transparency(img: &LoadedImage) -> bool {
    if !img.source_has_alpha {
        return false;
    }
    let total = img.rgba.as_raw().len() / 4;
    let transparent = img.rgba.pixels().filter(|p| p.0[3] < 128).count();
    transparent * 1000 >= total
}

/// Where an image's mask will come from, decided before any segmentation runs (so a worker can
/// gather the images that need its segmentation model into one batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskPlan {
    /// The alpha channel.
    Alpha,
    /// No segmentation: the whole image.
    WholeImage,
    /// Segmentation of [`segmentation_input`]: by the model when one is loaded, else by the
    /// weights-free methods.
    Segment,
}

pub fn mask_plan(img: &LoadedImage, mode: BackgroundMode) -> MaskPlan {
    match (mode, has_real_transparency(img)) {
        (BackgroundMode::Auto | BackgroundMode::Never, true) => MaskPlan::Alpha,
        (BackgroundMode::Never, false) => MaskPlan::WholeImage,
        (BackgroundMode::Auto, false) | (BackgroundMode::Always, _) => MaskPlan::Segment,
    }
}

/// The RGB image segmentation sees: any alpha composited over white.
pub fn segmentation_input(img: &LoadedImage) -> Raster {
    let (w, h) = (img.rgba.width() as usize, img.rgba.height() as usize);
    composite_rgba_on_white(img.rgba.as_raw(), w, h)
}

/// Preprocessing without a segmentation model (the weights-free methods where needed).
pub fn preprocess(
    img: &LoadedImage,
    opts: &PreprocessOptions,
) -> Result<PreprocessedImage, PreprocessError> {
    preprocess_with(img, opts, None)
}

/// Preprocessing; `model_mask` is the segmentation model's mask (one channel, the image's size)
/// for an image whose [`mask_plan`] is [`MaskPlan::Segment`].
pub fn preprocess_with(
    img: &LoadedImage,
    opts: &PreprocessOptions,
    model_mask: Option<&Raster>,
) -> Result<PreprocessedImage, PreprocessError> {
    let (w, h) = (img.rgba.width() as usize, img.rgba.height() as usize);
    let (rgba, method) = match mask_plan(img, opts.background) {
        MaskPlan::Alpha => (
            Raster::from_data(w, h, 4, img.rgba.as_raw().clone()),
            SegmentationMethod::Alpha,
        ),
        MaskPlan::WholeImage => {
            let mut data = img.rgba.as_raw().clone();
            data.chunks_exact_mut(4).for_each(|p| p[3] = 255);
            (
                Raster::from_data(w, h, 4, data),
                SegmentationMethod::WholeImage,
            )
        }
        MaskPlan::Segment => {
            let rgb = segmentation_input(img);
            let (mask, method) = match model_mask {
                Some(m) if m.width == w && m.height == h && m.channels == 1 => {
                    (m.data.clone(), SegmentationMethod::U2net)
                }
                Some(m) => {
                    return Err(PreprocessError::NoForeground {
                        reason: format!(
                            "the segmentation model returned a {}x{}x{} mask for a {w}x{h} image",
                            m.width, m.height, m.channels
                        ),
                    });
                }
                None => {
                    let (mask, method) = segment_without_weights(&rgb, &opts.segment, &opts.photo);
                    let method = match method {
                        WeightsFreeMethod::PlainBackground => SegmentationMethod::PlainBackground,
                        WeightsFreeMethod::Classic => SegmentationMethod::Classic,
                    };
                    (mask.data, method)
                }
            };
            if !mask.iter().any(|&m| m >= 128) {
                return Err(PreprocessError::NoForeground {
                    reason: format!(
                        "background removal ({method}) found no object distinct from the background"
                    ),
                });
            }
            let mut data = Vec::with_capacity(w * h * 4);
            for (px, m) in rgb.data.chunks_exact(3).zip(&mask) {
                data.extend_from_slice(px);
                data.push(*m);
            }
            (Raster::from_data(w, h, 4, data), method)
        }
    };
    let inside = rgba.data.chunks_exact(4).filter(|p| p[3] >= 128).count();
    let segmentation = Segmentation {
        method,
        mask_share: inside as f32 / (w * h).max(1) as f32,
    };
    let (rgb, mask) = recenter(&rgba, opts.border_ratio)?;
    let rgb = resize_cubic(&rgb, opts.size, opts.size);
    let mask = resize_nearest(&mask, opts.size, opts.size);
    if !mask.data.iter().any(|&m| m != 0) {
        return Err(PreprocessError::NoForeground {
            reason: "the object vanished when resized to the network's input size".into(),
        });
    }
    Ok(PreprocessedImage {
        size: opts.size,
        rgb: rgb.data,
        mask: mask.data,
        segmentation,
    })
}

fn composite_rgba_on_white(rgba: &[u8], w: usize, h: usize) -> Raster {
    let mut out = Vec::with_capacity(w * h * 3);
    for p in rgba.chunks_exact(4) {
        let a = u32::from(p[3]);
        for c in 0..3 {
            out.push(((u32::from(p[c]) * a + 255 * (255 - a) + 127) / 255) as u8);
        }
    }
    Raster::from_data(w, h, 3, out)
}

/// `ImageProcessorV2.recenter`: returns the `max(H, W)`² RGB composite and its mask.
pub fn recenter(rgba: &Raster, border_ratio: f64) -> Result<(Raster, Raster), PreprocessError> {
    let (w, h) = (rgba.width, rgba.height);
    let (mut rmin, mut rmax, mut cmin, mut cmax) = (usize::MAX, 0, usize::MAX, 0);
    for y in 0..h {
        for x in 0..w {
            if rgba.data[(y * w + x) * 4 + 3] != 0 {
                rmin = rmin.min(y);
                rmax = rmax.max(y);
                cmin = cmin.min(x);
                cmax = cmax.max(x);
            }
        }
    }
    if rmin == usize::MAX {
        return Err(PreprocessError::NoForeground {
            reason: "the image is fully transparent".into(),
        });
    }
    let (bh, bw) = (rmax - rmin, cmax - cmin);
    if bh == 0 || bw == 0 {
        return Err(PreprocessError::NoForeground {
            reason: "the object is a single row or column of pixels".into(),
        });
    }
    let size = w.max(h);
    let desired = (size as f64 * (1.0 - border_ratio)) as usize;
    let scale = desired as f64 / bh.max(bw) as f64;
    let (h2, w2) = ((bh as f64 * scale) as usize, (bw as f64 * scale) as usize);
    if h2 == 0 || w2 == 0 {
        return Err(PreprocessError::NoForeground {
            reason: format!("the object ({bw}x{bh} pixels) is too thin to recenter"),
        });
    }
    let crop = rgba.crop(cmin, rmin, cmax, rmax);
    let scaled = resize_area(&crop, w2, h2);
    let (y0, x0) = ((size - h2) / 2, (size - w2) / 2);

    let mut rgb = Raster::from_data(size, size, 3, vec![255; size * size * 3]);
    let mut mask = Raster::new(size, size, 1);
    for y in 0..h2 {
        for x in 0..w2 {
            let s = scaled.pixel(x, y);
            let m = f32::from(s[3]) / 255.0;
            let d = (y + y0) * size + x + x0;
            for c in 0..3 {
                // float32 arithmetic and truncation exactly as numpy does it upstream.
                let v = f32::from(s[c]) * m + 255.0 * (1.0 - m);
                rgb.data[d * 3 + c] = v.clamp(0.0, 255.0) as u8;
            }
            mask.data[d] = (m * 255.0).clamp(0.0, 255.0) as u8;
        }
    }
    Ok((rgb, mask))
}
