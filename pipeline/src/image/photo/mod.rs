//! Weights-free foreground segmentation of ordinary photos.
//!
//! A plain backdrop is handled by the border colour model of [`super::segment`], but only when
//! that model demonstrably fits (low residual spread on the border, most of the border looks
//! like background, a sensibly sized mask). Everything else goes through the classic pipeline:
//! a minimum-barrier / border-contrast saliency prior with a centre prior ([`saliency`]), a
//! GrabCut refinement seeded by it ([`grabcut`], with its own max-flow in [`maxflow`] and colour
//! mixtures in [`gmm`]), competing against rectangle GrabCuts ([`candidates`]) in an objectness
//! vote ([`objectness`]), clean-up and an edge-aware upsampling ([`refine`]). All of it runs at a
//! reduced working resolution, which is what keeps a 1024² photo well under a third of a second
//! on one core.

mod candidates;
mod gmm;
mod grabcut;
mod maxflow;
mod objectness;
mod refine;
mod saliency;

pub use candidates::{CandidateKind, CandidateParams};
pub use grabcut::GrabCutParams;
pub use objectness::{Features, ObjectnessParams};
pub use refine::RefineParams;
pub use saliency::SaliencyParams;

use super::resize::{Raster, resize_area};
use super::segment::{Mask, SegmentParams, border_fit, segment_foreground};

/// Which weights-free method produced a mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsFreeMethod {
    /// The border colour model of `segment.rs` (product shots on a plain backdrop).
    PlainBackground,
    /// Saliency prior plus GrabCut.
    Classic,
}

/// When the plain-background result is trusted (judged on the working image).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlainCheckParams {
    /// Largest robust residual spread of the border fit (RGB units).
    pub max_border_spread: f32,
    /// Smallest share of the border that must look like the fitted background.
    pub min_border_background: f32,
    /// The mask must cover at least this share of the image...
    pub min_mask_share: f32,
    /// ...and at most this one.
    pub max_mask_share: f32,
}

impl Default for PlainCheckParams {
    fn default() -> Self {
        PlainCheckParams {
            max_border_spread: 8.0,
            min_border_background: 0.8,
            min_mask_share: 0.01,
            max_mask_share: 0.9,
        }
    }
}

/// Tunables of [`segment_without_weights`]; the defaults are the tuned values.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PhotoSegmentParams {
    pub plain: PlainCheckParams,
    pub work: WorkParams,
    pub saliency: SaliencyParams,
    pub grabcut: GrabCutParams,
    pub candidates: CandidateParams,
    pub objectness: ObjectnessParams,
    pub refine: RefineParams,
}

/// Working resolution and the "no distinct object" decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorkParams {
    /// Long side of the working image (images are never enlarged).
    pub long_side: usize,
    /// Smallest colour-model separation (nats) for the object to count as distinct.
    pub min_separation: f32,
    /// Smallest object, as a share of the image, that counts.
    pub min_object_share: f32,
}

impl Default for WorkParams {
    fn default() -> Self {
        WorkParams {
            long_side: 256,
            min_separation: 0.5,
            min_object_share: 0.003,
        }
    }
}

/// Working image: RGB as floats in 0..255.
#[derive(Debug, Clone)]
pub(crate) struct WorkImage {
    pub width: usize,
    pub height: usize,
    pub px: Vec<[f32; 3]>,
}

/// Mask (0/255 bytes, the image's size) of the main object of an RGB photo and the method that
/// produced it; an empty mask means the image has no distinct object.
pub fn segment_without_weights(
    img: &Raster,
    plain: &SegmentParams,
    params: &PhotoSegmentParams,
) -> (Mask, WeightsFreeMethod) {
    let (w, h) = (img.width, img.height);
    let to_mask = |fg: Option<Vec<bool>>| Mask {
        width: w,
        height: h,
        data: match fg {
            Some(fg) => fg.iter().map(|&b| if b { 255 } else { 0 }).collect(),
            None => vec![0; w * h],
        },
    };
    if w == 0 || h == 0 || img.channels == 0 || img.data.len() != w * h * img.channels {
        return (to_mask(None), WeightsFreeMethod::Classic);
    }
    let rgb = to_rgb(img);
    let small = working_image(&rgb, params.work.long_side);
    if let Some(mask) = plain_background(&rgb, &small, plain, &params.plain) {
        return (mask, WeightsFreeMethod::PlainBackground);
    }
    (
        to_mask(classic(&rgb, &small, params)),
        WeightsFreeMethod::Classic,
    )
}

/// The image area-averaged down to the working resolution (never enlarged).
fn working_image(rgb: &Raster, long_side: usize) -> Raster {
    let (w, h) = (rgb.width, rgb.height);
    let long = w.max(h);
    let side = long_side.max(8);
    if long <= side {
        return rgb.clone();
    }
    let s = side as f64 / long as f64;
    let ww = ((w as f64 * s).round() as usize).max(1);
    let wh = ((h as f64 * s).round() as usize).max(1);
    resize_area(rgb, ww, wh)
}

/// The plain-background mask when the border model is trustworthy for this image. The fit is
/// judged on the working image (cheap: photos fail here in a millisecond or two); only a pass
/// runs the full-resolution segmentation, whose own mask size is checked last.
fn plain_background(
    rgb: &Raster,
    small: &Raster,
    plain: &SegmentParams,
    p: &PlainCheckParams,
) -> Option<Mask> {
    let fit = border_fit(small, plain);
    if !(fit.spread <= p.max_border_spread && fit.background_share >= p.min_border_background) {
        return None;
    }
    let mask = segment_foreground(rgb, plain);
    let share = mask.count() as f32 / mask.data.len().max(1) as f32;
    (share >= p.min_mask_share && share <= p.max_mask_share).then_some(mask)
}

/// The saliency + GrabCut method on the working image; None when no distinct object was found.
fn classic(rgb: &Raster, small: &Raster, params: &PhotoSegmentParams) -> Option<Vec<bool>> {
    let (ww, wh) = (small.width, small.height);
    // Too small to hold an object apart from its surroundings.
    if ww < 4 || wh < 4 {
        return None;
    }
    let work = work_image(small);
    let best = scored_candidates(&work, params)
        .into_iter()
        .filter(|(c, _, _)| c.separation >= params.work.min_separation)
        .max_by(|a, b| a.2.total_cmp(&b.2))?;
    let fg = best.0.fg;
    let area = fg.iter().filter(|&&b| b).count();
    if (area as f32) < params.work.min_object_share * (ww * wh) as f32 {
        return None;
    }
    let grey: Vec<f32> = small.data.chunks_exact(3).map(refine::grey_of).collect();
    let full = refine::upsample(&fg, &grey, ww, wh, rgb, &params.refine);
    Some(refine::drop_specks(
        &full,
        rgb.width,
        rgb.height,
        params.refine.min_component_fraction,
    ))
}

fn work_image(small: &Raster) -> WorkImage {
    WorkImage {
        width: small.width,
        height: small.height,
        px: small
            .data
            .chunks_exact(3)
            .map(|c| [f32::from(c[0]), f32::from(c[1]), f32::from(c[2])])
            .collect(),
    }
}

/// Every candidate with its measurements and objectness score.
fn scored_candidates(
    work: &WorkImage,
    params: &PhotoSegmentParams,
) -> Vec<(candidates::Candidate, Features, f32)> {
    let sal = saliency::saliency(work, &params.saliency);
    let edges = objectness::edge_map(work);
    candidates::candidates(
        work,
        &sal,
        &params.grabcut,
        &params.candidates,
        &params.refine,
    )
    .into_iter()
    .map(|c| {
        let f = objectness::features(work, &edges, &sal, &c.fg);
        let bonus = if c.kind == CandidateKind::Global {
            params.objectness.global_bonus
        } else {
            0.0
        };
        let s = f.score(&params.objectness) + bonus;
        (c, f, s)
    })
    .collect()
}

/// One candidate at the working resolution, for the evaluation tool.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct DebugCandidate {
    pub kind: CandidateKind,
    pub fg: Vec<bool>,
    pub cut_separation: f32,
    pub features: Features,
    pub score: f32,
}

/// The working size and every candidate of the classic method.
#[doc(hidden)]
pub fn debug_candidates(
    img: &Raster,
    params: &PhotoSegmentParams,
) -> (usize, usize, Vec<DebugCandidate>) {
    if img.width == 0 || img.height == 0 || img.channels == 0 {
        return (0, 0, Vec::new());
    }
    let small = working_image(&to_rgb(img), params.work.long_side);
    let work = work_image(&small);
    let c = scored_candidates(&work, params)
        .into_iter()
        .map(|(c, f, s)| DebugCandidate {
            kind: c.kind,
            fg: c.fg,
            cut_separation: c.separation,
            features: f,
            score: s,
        })
        .collect();
    (small.width, small.height, c)
}

/// Intermediate maps of the classic method at the working resolution, for the evaluation tool.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct DebugMaps {
    pub width: usize,
    pub height: usize,
    pub saliency: Vec<f32>,
    /// The graph cut's labels before clean-up.
    pub cut: Vec<bool>,
    /// Colour separation of the cut (nats).
    pub separation: f32,
}

#[doc(hidden)]
pub fn debug_maps(img: &Raster, params: &PhotoSegmentParams) -> Option<DebugMaps> {
    if img.width == 0 || img.height == 0 || img.channels == 0 {
        return None;
    }
    let small = working_image(&to_rgb(img), params.work.long_side);
    let work = work_image(&small);
    let saliency = saliency::saliency(&work, &params.saliency);
    let cut = grabcut::grabcut(&work, &saliency, &params.grabcut);
    let (cut, separation) = cut
        .map(|c| (c.fg, c.separation))
        .unwrap_or((vec![false; saliency.len()], 0.0));
    Some(DebugMaps {
        width: small.width,
        height: small.height,
        saliency,
        cut,
        separation,
    })
}

/// The first three channels as RGB (grey replicated), alpha dropped.
fn to_rgb(img: &Raster) -> Raster {
    if img.channels == 3 {
        return img.clone();
    }
    let n = img.width * img.height;
    let mut out = Vec::with_capacity(n * 3);
    for c in img.data.chunks_exact(img.channels) {
        if c.len() >= 3 {
            out.extend_from_slice(&c[..3]);
        } else {
            out.extend_from_slice(&[c[0], c[0], c[0]]);
        }
    }
    Raster {
        width: img.width,
        height: img.height,
        channels: 3,
        data: out,
    }
}
