//! Candidate objects for the objectness vote: the saliency-seeded GrabCut over the whole image,
//! one rectangle GrabCut (Rother et al. 2004) around each of the most salient regions, with a
//! ring of sure background around the box, and a classic centred-rectangle GrabCut for subjects
//! that fill the frame. A background photo's own salient content (a face, an eye) and the real
//! object then each get a cut of their own, and [`super::objectness`] picks between them.

use super::WorkImage;
use super::grabcut::{self, GrabCutParams, otsu};
use super::refine::{RefineParams, clean};

/// Candidate tunables.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CandidateParams {
    /// Most salient regions that each get a rectangle GrabCut of their own (0: none; on the
    /// tuning composites they never won the vote, so they are off by default and save ~80 ms).
    pub max_regions: usize,
    /// Regions are connected components of saliency above this multiple of its Otsu threshold.
    pub region_threshold: f32,
    /// Smallest region, as a share of the image.
    pub min_region_share: f32,
    /// A region's box is widened by this fraction of its size on every side...
    pub box_margin: f32,
    /// ...and surrounded by a ring of sure background this fraction of its size wide.
    pub ring: f32,
    /// Weight of the saliency prior inside a region's box (nats per unit of `-ln(prior)`).
    pub region_prior_weight: f32,
    /// Inset of the centred rectangle on every side, as a fraction of the image size.
    pub centre_inset: f32,
    /// Cut-and-refit rounds of the rectangle cuts (time: they are only candidates).
    pub iterations: usize,
}

impl Default for CandidateParams {
    fn default() -> Self {
        CandidateParams {
            max_regions: 0,
            region_threshold: 1.0,
            min_region_share: 0.003,
            box_margin: 0.15,
            ring: 0.15,
            region_prior_weight: 1.0,
            centre_inset: 0.06,
            iterations: 2,
        }
    }
}

/// How a candidate was seeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CandidateKind {
    /// Saliency prior over the whole image.
    Global,
    /// Rectangle around one salient region.
    Region,
    /// Centred rectangle, the image border as background.
    CentreBox,
}

/// One candidate object at the working resolution, already cleaned up.
#[derive(Debug, Clone)]
pub(super) struct Candidate {
    pub kind: CandidateKind,
    pub fg: Vec<bool>,
    /// Colour separation of its cut (nats).
    pub separation: f32,
}

/// Inclusive-exclusive box `[x0, y0, x1, y1]`.
type Rect = [usize; 4];

pub(super) fn candidates(
    img: &WorkImage,
    sal: &[f32],
    gc: &GrabCutParams,
    cp: &CandidateParams,
    rp: &RefineParams,
) -> Vec<Candidate> {
    let (w, h) = (img.width, img.height);
    let mut out: Vec<Candidate> = Vec::new();
    let rect_gc = GrabCutParams {
        iterations: cp.iterations,
        ..*gc
    };
    let gc_global = gc;
    let gc = &rect_gc;
    let push = |kind, cut: Option<grabcut::Cut>, out: &mut Vec<Candidate>| {
        if let Some(c) = cut {
            let fg = clean(&c.fg, w, h, rp);
            if fg.iter().any(|&b| b) && !out.iter().any(|o| iou(&o.fg, &fg) > 0.95) {
                out.push(Candidate {
                    kind,
                    fg,
                    separation: c.separation,
                });
            }
        }
    };
    push(
        CandidateKind::Global,
        grabcut::grabcut(img, sal, gc_global),
        &mut out,
    );
    let t = otsu(sal);
    if t > 0.0 {
        for r in regions(sal, w, h, t * cp.region_threshold, cp) {
            let inner = widen(r, cp.box_margin, 1, w, h);
            let cut = box_cut(img, sal, inner, cp, gc, 0.5 * t * cp.region_threshold);
            push(CandidateKind::Region, cut, &mut out);
        }
    }
    push(CandidateKind::CentreBox, centre_cut(img, cp, gc), &mut out);
    out
}

/// Classic rectangle GrabCut with a centred box, the border as background, no prior; run at
/// half the working resolution (a cut with colour-only unaries needs many augmentations) and
/// brought back by pixel replication.
fn centre_cut(img: &WorkImage, cp: &CandidateParams, gc: &GrabCutParams) -> Option<grabcut::Cut> {
    let (w, h) = (img.width, img.height);
    let half = halve(img);
    let (hw, hh) = (half.width, half.height);
    let (ix, iy) = (
        (hw as f32 * cp.centre_inset).round() as usize,
        (hh as f32 * cp.centre_inset).round() as usize,
    );
    if ix < 1 || iy < 1 || 2 * ix + 2 >= hw || 2 * iy + 2 >= hh {
        return None;
    }
    let inner = [ix, iy, hw - ix, hh - iy];
    let fg: Vec<bool> = (0..hw * hh)
        .map(|i| inside(inner, i % hw, i / hw))
        .collect();
    let sure_bg: Vec<bool> = fg.iter().map(|&b| !b).collect();
    let prior = vec![(0.0, 0.0); hw * hh];
    let pair = grabcut::pairwise(&half, gc.gamma);
    let cut = grabcut::cut(&half, fg, &sure_bg, &prior, &pair, gc)?;
    let fg = (0..w * h)
        .map(|i| {
            let (x, y) = ((i % w) * hw / w, (i / w) * hh / h);
            cut.fg[y.min(hh - 1) * hw + x.min(hw - 1)]
        })
        .collect();
    Some(grabcut::Cut {
        fg,
        separation: cut.separation,
    })
}

/// 2×2 box average (odd last rows and columns folded into the previous cell).
fn halve(img: &WorkImage) -> WorkImage {
    let (w, h) = (img.width, img.height);
    let (hw, hh) = ((w / 2).max(1), (h / 2).max(1));
    let mut sum = vec![[0f32; 4]; hw * hh];
    for y in 0..h {
        for x in 0..w {
            let j = (y / 2).min(hh - 1) * hw + (x / 2).min(hw - 1);
            let c = img.px[y * w + x];
            sum[j] = [
                sum[j][0] + c[0],
                sum[j][1] + c[1],
                sum[j][2] + c[2],
                sum[j][3] + 1.0,
            ];
        }
    }
    WorkImage {
        width: hw,
        height: hh,
        px: sum
            .iter()
            .map(|s| [s[0] / s[3], s[1] / s[3], s[2] / s[3]])
            .collect(),
    }
}

fn inside(r: Rect, x: usize, y: usize) -> bool {
    x >= r[0] && x < r[2] && y >= r[1] && y < r[3]
}

pub(super) fn iou(a: &[bool], b: &[bool]) -> f32 {
    let (mut i, mut u) = (0usize, 0usize);
    for (&x, &y) in a.iter().zip(b) {
        i += usize::from(x && y);
        u += usize::from(x || y);
    }
    if u == 0 { 1.0 } else { i as f32 / u as f32 }
}

/// Bounding boxes of the most salient connected regions above `t`, by saliency mass.
fn regions(sal: &[f32], w: usize, h: usize, t: f32, cp: &CandidateParams) -> Vec<Rect> {
    let mut seen = vec![false; w * h];
    let mut found: Vec<(f32, Rect)> = Vec::new();
    let mut stack = Vec::new();
    let min_area = ((w * h) as f32 * cp.min_region_share).ceil() as usize;
    for s in 0..w * h {
        if seen[s] || sal[s] <= t {
            continue;
        }
        seen[s] = true;
        stack.push(s);
        let (mut mass, mut area) = (0f32, 0usize);
        let mut r = [w, h, 0, 0];
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            mass += sal[i];
            area += 1;
            r = [r[0].min(x), r[1].min(y), r[2].max(x + 1), r[3].max(y + 1)];
            for (dx, dy) in [
                (-1isize, -1isize),
                (0, -1),
                (1, -1),
                (-1, 0),
                (1, 0),
                (-1, 1),
                (0, 1),
                (1, 1),
            ] {
                let (nx, ny) = (x as isize + dx, y as isize + dy);
                if nx < 0 || ny < 0 || nx >= w as isize || ny >= h as isize {
                    continue;
                }
                let j = ny as usize * w + nx as usize;
                if !seen[j] && sal[j] > t {
                    seen[j] = true;
                    stack.push(j);
                }
            }
        }
        if area >= min_area.max(4) {
            found.push((mass, r));
        }
    }
    found.sort_by(|a, b| b.0.total_cmp(&a.0));
    found
        .into_iter()
        .take(cp.max_regions)
        .map(|(_, r)| r)
        .collect()
}

fn widen(r: Rect, by: f32, min: usize, w: usize, h: usize) -> Rect {
    let d = ((r[2] - r[0]).max(r[3] - r[1]) as f32 * by).round() as usize;
    let d = d.max(min);
    [
        r[0].saturating_sub(d),
        r[1].saturating_sub(d),
        (r[2] + d).min(w),
        (r[3] + d).min(h),
    ]
}

/// Rectangle GrabCut on a crop around the box `inner`, starting from its pixels of saliency
/// above `init`; the result in full working-image labels.
fn box_cut(
    img: &WorkImage,
    sal: &[f32],
    inner: Rect,
    cp: &CandidateParams,
    gc: &GrabCutParams,
    init: f32,
) -> Option<grabcut::Cut> {
    let (w, h) = (img.width, img.height);
    let crop = widen(inner, cp.ring, 3, w, h);
    let (cw, ch) = (crop[2] - crop[0], crop[3] - crop[1]);
    if cw < 4 || ch < 4 {
        return None;
    }
    let mut px = Vec::with_capacity(cw * ch);
    let mut csal = Vec::with_capacity(cw * ch);
    let mut fg = Vec::with_capacity(cw * ch);
    let mut sure_bg = Vec::with_capacity(cw * ch);
    for y in crop[1]..crop[3] {
        for x in crop[0]..crop[2] {
            let i = y * w + x;
            px.push(img.px[i]);
            csal.push(sal[i]);
            let inn = inside(inner, x, y);
            fg.push(inn && sal[i] > init);
            sure_bg.push(!inn);
        }
    }
    let sub = WorkImage {
        width: cw,
        height: ch,
        px,
    };
    let prior = grabcut::prior_costs(&csal, cp.region_prior_weight, gc.prior_floor);
    let pair = grabcut::pairwise(&sub, gc.gamma);
    let cut = grabcut::cut(&sub, fg, &sure_bg, &prior, &pair, gc)?;
    let mut full = vec![false; w * h];
    for y in 0..ch {
        for x in 0..cw {
            full[(y + crop[1]) * w + x + crop[0]] = cut.fg[y * cw + x];
        }
    }
    Some(grabcut::Cut {
        fg: full,
        separation: cut.separation,
    })
}
