//! GrabCut (Rother, Kolmogorov, Blake 2004) seeded by the saliency prior instead of a user
//! rectangle: colour mixtures for object and background are refitted from the current labels,
//! then a graph cut with a contrast-sensitive Potts term relabels the pixels, a few times over.
//! The saliency stays in the unary term as a weak prior, so the colour models cannot drift to a
//! region that merely happens to be colour-coherent.

use super::WorkImage;
use super::gmm::Gmm;
use super::maxflow::{Edge, GridGraph, HARD};

/// GrabCut tunables.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GrabCutParams {
    /// Mixture components per colour model.
    pub components: usize,
    /// Cut-and-refit rounds.
    pub iterations: usize,
    /// Weight of the smoothness term (GrabCut's γ).
    pub gamma: f32,
    /// Weight of the saliency prior in the unary term, in nats per unit of `-ln(prior)`.
    pub prior_weight: f32,
    /// Saliency is squashed into `[floor, 1 - floor]` before it becomes a prior.
    pub prior_floor: f32,
    /// Pixels with saliency below this fraction of the Otsu threshold are fixed background.
    pub sure_background: f32,
    /// The initial object is the saliency above this multiple of the Otsu threshold.
    pub initial_threshold: f32,
}

impl Default for GrabCutParams {
    fn default() -> Self {
        GrabCutParams {
            components: 5,
            iterations: 4,
            gamma: 15.0,
            prior_weight: 3.0,
            prior_floor: 0.05,
            sure_background: 0.3,
            initial_threshold: 1.0,
        }
    }
}

/// Graph costs are nats times this, rounded to integers for the max-flow.
const COST_SCALE: f32 = 32.0;

#[derive(Debug)]
pub(super) struct Cut {
    pub fg: Vec<bool>,
    /// Mean log-likelihood ratio of each side's pixels for their own colour model, the smaller
    /// of the two sides: near zero when the colours do not tell object from background.
    pub separation: f32,
}

pub(super) fn grabcut(img: &WorkImage, sal: &[f32], p: &GrabCutParams) -> Option<Cut> {
    let n = img.width * img.height;
    if n == 0 || sal.len() != n {
        return None;
    }
    let t = otsu(sal);
    if t <= 0.0 {
        return None;
    }
    let sure_bg: Vec<bool> = sal.iter().map(|&s| s < p.sure_background * t).collect();
    let fg: Vec<bool> = sal.iter().map(|&s| s > p.initial_threshold * t).collect();
    let prior = prior_costs(sal, p.prior_weight, p.prior_floor);
    let pair = pairwise(img, p.gamma);
    cut(img, fg, &sure_bg, &prior, &pair, p)
}

/// Unary costs `(object, background)` in nats of a saliency prior of the given weight.
pub(super) fn prior_costs(sal: &[f32], weight: f32, floor: f32) -> Vec<(f32, f32)> {
    let floor = floor.clamp(1e-4, 0.49);
    sal.iter()
        .map(|&s| {
            let s = floor + (1.0 - 2.0 * floor) * s.clamp(0.0, 1.0);
            (-s.ln() * weight, -(1.0 - s).ln() * weight)
        })
        .collect()
}

/// The GrabCut iterations from an initial object `fg`, with `sure_bg` pixels fixed to the
/// background, an extra unary `prior` and the pairwise weights of [`pairwise`].
pub(super) fn cut(
    img: &WorkImage,
    mut fg: Vec<bool>,
    sure_bg: &[bool],
    prior: &[(f32, f32)],
    pair: &[[i32; 4]],
    p: &GrabCutParams,
) -> Option<Cut> {
    let (w, h) = (img.width, img.height);
    let n = w * h;
    if n == 0 || fg.len() != n || sure_bg.len() != n || prior.len() != n || pair.len() != n {
        return None;
    }
    let mut models: Option<(Gmm, Gmm)> = None;
    for _ in 0..p.iterations.max(1) {
        let (fg_px, bg_px) = split(img, &fg);
        let (fm, bm) = match &models {
            None => (
                Gmm::fit(&fg_px, p.components)?,
                Gmm::fit(&bg_px, p.components)?,
            ),
            Some((f, b)) => (
                f.refit(&fg_px).or_else(|| Gmm::fit(&fg_px, p.components))?,
                b.refit(&bg_px).or_else(|| Gmm::fit(&bg_px, p.components))?,
            ),
        };
        let mut g = GridGraph::new(w, h);
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                if sure_bg[i] {
                    g.set_terminals(x, y, 0, HARD);
                    continue;
                }
                let c = img.px[i];
                let cost_fg = -fm.log_likelihood(c) + prior[i].0;
                let cost_bg = -bm.log_likelihood(c) + prior[i].1;
                g.set_terminals(x, y, to_cap(cost_bg), to_cap(cost_fg));
            }
        }
        for y in 0..h {
            for x in 0..w {
                let e = &pair[y * w + x];
                g.set_edge(x, y, Edge::East, e[0]);
                g.set_edge(x, y, Edge::South, e[1]);
                g.set_edge(x, y, Edge::SouthEast, e[2]);
                g.set_edge(x, y, Edge::SouthWest, e[3]);
            }
        }
        g.solve();
        let next: Vec<bool> = (0..n).map(|i| g.on_source_side(i % w, i / w)).collect();
        let changed = next.iter().zip(&fg).filter(|(a, b)| a != b).count();
        fg = next;
        models = Some((fm, bm));
        if !fg.iter().any(|&b| b) {
            return None;
        }
        // Converged: another round would refit the same models.
        if changed * 1000 < n {
            break;
        }
    }
    let (fg_px, bg_px) = split(img, &fg);
    let (f, b) = models?;
    let fg_model = f.refit(&fg_px).unwrap_or(f);
    let bg_model = b.refit(&bg_px).unwrap_or(b);
    let separation = separation(img, &fg, &fg_model, &bg_model);
    Some(Cut { fg, separation })
}

fn to_cap(cost: f32) -> i32 {
    let c = cost * COST_SCALE;
    if c.is_finite() {
        c.round().clamp(0.0, (HARD / 4) as f32) as i32
    } else {
        HARD / 4
    }
}

fn split(img: &WorkImage, fg: &[bool]) -> (Vec<[f32; 3]>, Vec<[f32; 3]>) {
    let mut f = Vec::new();
    let mut b = Vec::new();
    for (c, &m) in img.px.iter().zip(fg) {
        if m {
            f.push(*c);
        } else {
            b.push(*c);
        }
    }
    (f, b)
}

fn separation(img: &WorkImage, fg: &[bool], fm: &Gmm, bm: &Gmm) -> f32 {
    let (mut sf, mut nf, mut sb, mut nb) = (0f64, 0f64, 0f64, 0f64);
    for (c, &m) in img.px.iter().zip(fg) {
        // Clamped so that a few outliers cannot dominate the mean.
        let r = (fm.log_likelihood(*c) - bm.log_likelihood(*c)).clamp(-8.0, 8.0);
        if m {
            sf += f64::from(r);
            nf += 1.0;
        } else {
            sb -= f64::from(r);
            nb += 1.0;
        }
    }
    if nf == 0.0 || nb == 0.0 {
        return 0.0;
    }
    (sf / nf).min(sb / nb) as f32
}

/// Contrast-sensitive Potts weights `γ/dist · exp(-β‖zm − zn‖²)` towards the east, south,
/// south-east and south-west neighbours, with `β = 1 / (2⟨‖zm − zn‖²⟩)` over all pairs.
pub(super) fn pairwise(img: &WorkImage, gamma: f32) -> Vec<[i32; 4]> {
    let (w, h) = (img.width, img.height);
    let offs: [(isize, isize, f32); 4] = [
        (1, 0, 1.0),
        (0, 1, 1.0),
        (1, 1, std::f32::consts::FRAC_1_SQRT_2),
        (-1, 1, std::f32::consts::FRAC_1_SQRT_2),
    ];
    let mut diffs = vec![[f32::NAN; 4]; w * h];
    let (mut sum, mut count) = (0f64, 0f64);
    for y in 0..h {
        for x in 0..w {
            for (k, &(dx, dy, _)) in offs.iter().enumerate() {
                let (nx, ny) = (x as isize + dx, y as isize + dy);
                if nx < 0 || nx >= w as isize || ny >= h as isize {
                    continue;
                }
                let a = img.px[y * w + x];
                let b = img.px[ny as usize * w + nx as usize];
                let d = (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2);
                diffs[y * w + x][k] = d;
                sum += f64::from(d);
                count += 1.0;
            }
        }
    }
    let mean = if count > 0.0 { sum / count } else { 0.0 };
    let beta = if mean > 1e-9 {
        (0.5 / mean) as f32
    } else {
        0.0
    };
    diffs
        .iter()
        .map(|d| {
            std::array::from_fn(|k| {
                if d[k].is_nan() {
                    0
                } else {
                    to_cap(gamma * offs[k].2 * (-beta * d[k]).exp())
                }
            })
        })
        .collect()
}

/// Otsu's threshold of values in `[0, 1]` (256 bins); 0 when all values are equal.
pub(super) fn otsu(v: &[f32]) -> f32 {
    let mut hist = [0f64; 256];
    for &x in v {
        hist[(x.clamp(0.0, 1.0) * 255.0).round() as usize] += 1.0;
    }
    let total: f64 = hist.iter().sum();
    let sum_all: f64 = hist.iter().enumerate().map(|(i, c)| i as f64 * c).sum();
    let (mut w0, mut sum0, mut best, mut best_t) = (0f64, 0f64, 0f64, 0usize);
    for (t, &c) in hist.iter().enumerate() {
        w0 += c;
        sum0 += t as f64 * c;
        let w1 = total - w0;
        if w0 == 0.0 || w1 == 0.0 {
            continue;
        }
        let m0 = sum0 / w0;
        let m1 = (sum_all - sum0) / w1;
        let between = w0 * w1 * (m0 - m1) * (m0 - m1);
        if between > best {
            best = between;
            best_t = t;
        }
    }
    // Values above the threshold bin count as high.
    (best_t as f32 + 0.5) / 255.0 * f32::from(best > 0.0)
}
