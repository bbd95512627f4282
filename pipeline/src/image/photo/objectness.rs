//! Objectness of a candidate mask: an object has a strong, closed boundary (colour edges all
//! along its outline, against the image's typical edge strength), colours of its own (the
//! object and background mixtures separate), a compact outline, and it is neither a sliver nor
//! most of the frame; a face or an eye that is part of the background photo fails the boundary
//! test where it blends into the head around it.

use super::WorkImage;
use super::gmm::Gmm;

/// Weights of the objectness score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ObjectnessParams {
    /// Per unit of `ln(boundary edge / mean edge)`.
    pub edge: f32,
    /// Per nat of colour separation.
    pub separation: f32,
    /// Per unit of the share of the image border covered by the mask.
    pub border: f32,
    /// Per unit of `ln(perimeter² / (4π·area))` (0 for a disc).
    pub compactness: f32,
    /// Per unit of mean saliency inside less outside.
    pub saliency: f32,
    /// Per unit of `|ln(area share / typical share)|`.
    pub size: f32,
    /// Typical object share of the image.
    pub typical_share: f32,
    /// Added to the saliency-seeded whole-image cut: the other candidates must beat it clearly.
    pub global_bonus: f32,
}

impl Default for ObjectnessParams {
    fn default() -> Self {
        ObjectnessParams {
            edge: 1.0,
            separation: 0.5,
            border: 0.5,
            compactness: 0.5,
            saliency: 0.0,
            size: 2.0,
            typical_share: 0.2,
            global_bonus: 1.5,
        }
    }
}

/// Measurements of one candidate.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Features {
    pub area_share: f32,
    /// Mean edge strength on the outline over the image's mean edge strength.
    pub edge_ratio: f32,
    pub separation: f32,
    /// Share of the image border that is object.
    pub border_share: f32,
    /// `perimeter² / (4π·area)`.
    pub compactness: f32,
    pub saliency_contrast: f32,
}

impl Features {
    pub fn score(&self, p: &ObjectnessParams) -> f32 {
        p.edge * self.edge_ratio.max(1e-3).ln() + p.separation * self.separation
            - p.border * self.border_share
            - p.compactness * self.compactness.max(1.0).ln()
            + p.saliency * self.saliency_contrast
            - p.size * (self.area_share.max(1e-4) / p.typical_share).ln().abs()
    }
}

/// Colour edge strength per pixel (central differences, summed over channels), max-filtered
/// over 3×3 so that an outline one pixel off the true edge still sees it.
pub(super) fn edge_map(img: &WorkImage) -> Vec<f32> {
    let (w, h) = (img.width, img.height);
    let mut e = vec![0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let l = img.px[y * w + x.saturating_sub(1)];
            let r = img.px[y * w + (x + 1).min(w - 1)];
            let u = img.px[y.saturating_sub(1) * w + x];
            let d = img.px[(y + 1).min(h - 1) * w + x];
            let mut s = 0f32;
            for c in 0..3 {
                s += (r[c] - l[c]).powi(2) + (d[c] - u[c]).powi(2);
            }
            e[y * w + x] = s.sqrt();
        }
    }
    let mut m = vec![0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let mut v = 0f32;
            for yy in y.saturating_sub(1)..(y + 2).min(h) {
                for xx in x.saturating_sub(1)..(x + 2).min(w) {
                    v = v.max(e[yy * w + xx]);
                }
            }
            m[y * w + x] = v;
        }
    }
    m
}

pub(super) fn features(img: &WorkImage, edges: &[f32], sal: &[f32], fg: &[bool]) -> Features {
    let (w, h) = (img.width, img.height);
    let n = w * h;
    let area = fg.iter().filter(|&&b| b).count();
    if area == 0 || area == n {
        return Features::default();
    }
    let (mut perim, mut edge_sum) = (0usize, 0f64);
    let mut border = 0usize;
    let (mut sal_in, mut sal_out) = (0f64, 0f64);
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            if !fg[i] {
                sal_out += f64::from(sal[i]);
                continue;
            }
            sal_in += f64::from(sal[i]);
            if x == 0 || y == 0 || x + 1 == w || y + 1 == h {
                border += 1;
                continue;
            }
            if !fg[i - 1] || !fg[i + 1] || !fg[i - w] || !fg[i + w] {
                perim += 1;
                edge_sum += f64::from(edges[i]);
            }
        }
    }
    let mean_edge = edges.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
    let edge_ratio = if perim == 0 || mean_edge <= 1e-6 {
        0.0
    } else {
        (edge_sum / perim as f64 / mean_edge) as f32
    };
    let border_len = 2 * (w + h) - 4;
    let compactness =
        ((perim + border) as f32).powi(2) / (4.0 * std::f32::consts::PI * area as f32);
    Features {
        area_share: area as f32 / n as f32,
        edge_ratio,
        separation: separation(img, fg),
        border_share: border as f32 / border_len.max(1) as f32,
        compactness,
        saliency_contrast: (sal_in / area as f64 - sal_out / (n - area) as f64) as f32,
    }
}

/// Colour separation of the mask over the whole image: the smaller of the two sides' mean
/// log-likelihood ratios under three-component mixtures fitted to each side (nats).
fn separation(img: &WorkImage, fg: &[bool]) -> f32 {
    let (mut f, mut b) = (Vec::new(), Vec::new());
    // Every other pixel in each direction: plenty for three components.
    for (i, (c, &m)) in img.px.iter().zip(fg).enumerate() {
        if (i % img.width).is_multiple_of(2) && (i / img.width).is_multiple_of(2) {
            if m { f.push(*c) } else { b.push(*c) }
        }
    }
    let (Some(fm), Some(bm)) = (Gmm::fit(&f, 3), Gmm::fit(&b, 3)) else {
        return 0.0;
    };
    let side = |s: &[[f32; 3]], sign: f32| {
        s.iter()
            .map(|&c| (sign * (fm.log_likelihood(c) - bm.log_likelihood(c))).clamp(-8.0, 8.0))
            .sum::<f32>()
            / s.len().max(1) as f32
    };
    side(&f, 1.0).min(side(&b, -1.0))
}
