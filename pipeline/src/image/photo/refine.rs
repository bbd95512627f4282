//! Mask clean-up at the working resolution and the edge-aware way back to the image size.

use super::super::resize::Raster;
use super::super::segment::{close, fill_small_holes, main_components, open};

/// Clean-up tunables.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefineParams {
    /// Components at least this fraction of the largest one are kept with it.
    pub min_component_fraction: f32,
    /// Holes up to this fraction of the object's area are filled.
    pub max_hole_fraction: f32,
    /// Guided-filter window radius in working-resolution pixels.
    pub guided_radius: f32,
    /// Guided-filter regulariser on grey levels in `[0, 1]` (larger = smoother, less edge-bound).
    pub guided_eps: f32,
}

impl Default for RefineParams {
    fn default() -> Self {
        RefineParams {
            min_component_fraction: 0.3,
            max_hole_fraction: 0.1,
            guided_radius: 2.0,
            guided_eps: 1e-3,
        }
    }
}

/// Opening and closing by one pixel (speckles and hairline gaps of the cut), the dominant
/// component(s), and small holes filled.
pub(super) fn clean(fg: &[bool], w: usize, h: usize, p: &RefineParams) -> Vec<bool> {
    let m = close(&open(fg, w, h, 1), w, h, 1);
    let m = main_components(&m, w, h, p.min_component_fraction);
    fill_small_holes(&m, w, h, p.max_hole_fraction)
}

/// Upsamples a working-resolution mask to the image's size edge-aware, by the fast guided
/// filter (He & Sun 2015): the filter's local linear model `q = a·I + b` (I the grey level) is
/// fitted at the working resolution, its coefficients are upsampled bilinearly, and applied to
/// the full-resolution grey levels, so the boundary follows the image's own edges instead of the
/// coarse grid's staircase at the cost of one pass over the full image.
pub(super) fn upsample(
    mask: &[bool],
    small_grey: &[f32],
    mw: usize,
    mh: usize,
    img: &Raster,
    p: &RefineParams,
) -> Vec<bool> {
    let (w, h) = (img.width, img.height);
    if w == mw && h == mh {
        return mask.to_vec();
    }
    let src: Vec<f32> = mask.iter().map(|&b| f32::from(u8::from(b))).collect();
    let r = (p.guided_radius.round() as usize).max(1);
    let (a, b) = guided_coefficients(small_grey, &src, mw, mh, r, p.guided_eps);
    let xs = taps(w, mw);
    let ys = taps(h, mh);
    let c = img.channels.max(1);
    let mut out = Vec::with_capacity(w * h);
    for (y, &(y0, y1, fy)) in ys.iter().enumerate() {
        let row = &img.data[y * w * c..(y + 1) * w * c];
        for (x, &(x0, x1, fx)) in xs.iter().enumerate() {
            let lerp = |m: &[f32]| {
                let top = m[y0 * mw + x0] * (1.0 - fx) + m[y0 * mw + x1] * fx;
                let bottom = m[y1 * mw + x0] * (1.0 - fx) + m[y1 * mw + x1] * fx;
                top * (1.0 - fy) + bottom * fy
            };
            let px = &row[x * c..x * c + c];
            let g = grey_of(px);
            out.push(lerp(&a) * g + lerp(&b) >= 0.5);
        }
    }
    out
}

/// Grey level in `[0, 1]`: the mean of the (up to three) colour channels.
pub(super) fn grey_of(px: &[u8]) -> f32 {
    let c = &px[..px.len().min(3)];
    let s: u32 = c.iter().map(|&v| u32::from(v)).sum();
    s as f32 / (255.0 * c.len().max(1) as f32)
}

/// Pixel-centre aligned bilinear taps from `src` samples to `dst` samples.
fn taps(dst: usize, src: usize) -> Vec<(usize, usize, f32)> {
    let s = src as f32 / dst.max(1) as f32;
    (0..dst)
        .map(|i| {
            let f = ((i as f32 + 0.5) * s - 0.5).clamp(0.0, src.saturating_sub(1) as f32);
            let i0 = f.floor() as usize;
            let i1 = (i0 + 1).min(src.saturating_sub(1));
            (i0, i1, f - i0 as f32)
        })
        .collect()
}

/// The guided filter's per-pixel linear coefficients, already averaged over each window.
fn guided_coefficients(
    guide: &[f32],
    src: &[f32],
    w: usize,
    h: usize,
    r: usize,
    eps: f32,
) -> (Vec<f32>, Vec<f32>) {
    let mean_i = box_mean(guide, w, h, r);
    let mean_p = box_mean(src, w, h, r);
    let ip: Vec<f32> = guide.iter().zip(src).map(|(a, b)| a * b).collect();
    let ii: Vec<f32> = guide.iter().map(|a| a * a).collect();
    let corr_ip = box_mean(&ip, w, h, r);
    let corr_ii = box_mean(&ii, w, h, r);
    let mut a = vec![0f32; w * h];
    let mut b = vec![0f32; w * h];
    for i in 0..w * h {
        let var = (corr_ii[i] - mean_i[i] * mean_i[i]).max(0.0);
        a[i] = (corr_ip[i] - mean_i[i] * mean_p[i]) / (var + eps);
        b[i] = mean_p[i] - a[i] * mean_i[i];
    }
    (box_mean(&a, w, h, r), box_mean(&b, w, h, r))
}

/// Mean over the (2r+1)² window clipped to the image: running sums along rows, then per-column
/// running sums advanced a whole row at a time (cache-friendly on large images).
fn box_mean(v: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    let mut rows = vec![0f32; w * h];
    for y in 0..h {
        running_mean(&v[y * w..(y + 1) * w], &mut rows[y * w..(y + 1) * w], r);
    }
    let mut out = vec![0f32; w * h];
    // f64 accumulators: long f32 running sums would drift.
    let mut sums = vec![0f64; w];
    let mut count = 0usize;
    for y in 0..r.min(h) {
        for (s, &v) in sums.iter_mut().zip(&rows[y * w..(y + 1) * w]) {
            *s += f64::from(v);
        }
        count += 1;
    }
    for y in 0..h {
        if y + r < h {
            for (s, &v) in sums.iter_mut().zip(&rows[(y + r) * w..(y + r + 1) * w]) {
                *s += f64::from(v);
            }
            count += 1;
        }
        if y > r {
            let old = y - r - 1;
            for (s, &v) in sums.iter_mut().zip(&rows[old * w..(old + 1) * w]) {
                *s -= f64::from(v);
            }
            count -= 1;
        }
        let inv = 1.0 / count.max(1) as f64;
        for (o, &s) in out[y * w..(y + 1) * w].iter_mut().zip(&sums) {
            *o = (s * inv) as f32;
        }
    }
    out
}

fn running_mean(src: &[f32], dst: &mut [f32], r: usize) {
    let n = src.len();
    let mut sum = 0f64;
    let mut count = 0usize;
    for &v in src.iter().take(r.min(n)) {
        sum += f64::from(v);
        count += 1;
    }
    for i in 0..n {
        if i + r < n {
            sum += f64::from(src[i + r]);
            count += 1;
        }
        if i > r {
            sum -= f64::from(src[i - r - 1]);
            count -= 1;
        }
        dst[i] = (sum / count.max(1) as f64) as f32;
    }
}

/// The largest 8-connected component of a full-size mask and those at least `fraction` of its
/// size: the upsampling can leave specks where the guide image has strong local contrast.
pub(super) fn drop_specks(mask: &[bool], w: usize, h: usize, fraction: f32) -> Vec<bool> {
    main_components(mask, w, h, fraction)
}
