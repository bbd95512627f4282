//! Background removal for images without real transparency: a background colour model fitted to
//! the border (a plane per channel, so plain and gradient backgrounds both fit), a threshold from
//! the border's own noise, morphological opening and closing, the largest connected component,
//! and small holes filled.

use super::resize::Raster;

/// Tunables of the segmentation; the defaults suit product-style photos.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentParams {
    /// Width of the border band the background model is fitted on, as a fraction of the short side.
    pub border_fraction: f32,
    /// Foreground threshold in multiples of the border's robust residual spread.
    pub noise_multiplier: f32,
    /// Smallest colour distance (0..441 in RGB units) that counts as foreground.
    pub min_distance: f32,
    /// Holes smaller than this fraction of the object's area are filled.
    pub max_hole_fraction: f32,
    /// Pixels darker than the background by at most this factor, with its hue, are shadow.
    pub shadow_min_ratio: f32,
    /// Components at least this fraction of the largest one are kept with it.
    pub min_component_fraction: f32,
}

impl Default for SegmentParams {
    fn default() -> Self {
        SegmentParams {
            border_fraction: 0.02,
            noise_multiplier: 3.5,
            min_distance: 20.0,
            max_hole_fraction: 0.05,
            shadow_min_ratio: 0.6,
            min_component_fraction: 0.1,
        }
    }
}

/// A binary mask, one byte per pixel (0 or 255).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl Mask {
    pub fn count(&self) -> usize {
        self.data.iter().filter(|&&v| v != 0).count()
    }
}

/// Segments the foreground of an RGB(A) raster (alpha ignored). The result may be empty.
pub fn segment_foreground(img: &Raster, params: &SegmentParams) -> Mask {
    let (w, h) = (img.width, img.height);
    let model = fit_background(img, params);
    let threshold = (params.noise_multiplier * model.spread + 12.0).max(params.min_distance);
    let mut fg: Vec<bool> = (0..w * h)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            model.distance(img, x, y) > threshold
                && !model.is_shadow(img, x, y, threshold, params.shadow_min_ratio)
        })
        .collect();
    let radius = (w.min(h) / 256).max(1);
    fg = open(&fg, w, h, radius);
    fg = close(&fg, w, h, radius);
    let fg = main_components(&fg, w, h, params.min_component_fraction);
    let fg = fill_small_holes(&fg, w, h, params.max_hole_fraction);
    Mask {
        width: w,
        height: h,
        data: fg.into_iter().map(|b| if b { 255 } else { 0 }).collect(),
    }
}

/// How well the border colour model of [`segment_foreground`] explains the image border.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BorderFit {
    /// Robust spread of the colour residuals on the border (RGB units; ~1 for a clean backdrop).
    pub spread: f32,
    /// Share of border samples within the foreground threshold, i.e. that look like background.
    pub background_share: f32,
}

/// Fits the border model exactly as [`segment_foreground`] does and reports its fit quality.
pub fn border_fit(img: &Raster, params: &SegmentParams) -> BorderFit {
    if img.width == 0 || img.height == 0 || img.channels < 3 {
        return BorderFit {
            spread: f32::INFINITY,
            background_share: 0.0,
        };
    }
    let model = fit_background(img, params);
    let threshold = (params.noise_multiplier * model.spread + 12.0).max(params.min_distance);
    let samples = border_samples(img, params);
    let inside = samples
        .iter()
        .filter(|&&(x, y)| model.distance(img, x, y) <= threshold)
        .count();
    BorderFit {
        spread: model.spread,
        background_share: inside as f32 / samples.len().max(1) as f32,
    }
}

/// Per-channel plane `c(x, y) = a + b·x + c·y` fitted to the border band, and the robust
/// spread of the colour residuals there.
#[derive(Debug)]
struct BackgroundModel {
    coef: [[f64; 3]; 3],
    spread: f32,
}

impl BackgroundModel {
    fn predict(&self, x: usize, y: usize) -> [f32; 3] {
        let (xf, yf) = (x as f64, y as f64);
        self.coef.map(|[a, b, c]| (a + b * xf + c * yf) as f32)
    }

    /// A cast shadow: the background colour scaled down by a factor in `[min_ratio, 1)`, with
    /// the remaining colour difference within the noise threshold.
    fn is_shadow(&self, img: &Raster, x: usize, y: usize, threshold: f32, min_ratio: f32) -> bool {
        let p = img.pixel(x, y);
        let bg = self.predict(x, y);
        let (mut pb, mut bb) = (0.0, 0.0);
        for ch in 0..3 {
            pb += f32::from(p[ch]) * bg[ch];
            bb += bg[ch] * bg[ch];
        }
        if bb <= 0.0 {
            return false;
        }
        let ratio = pb / bb;
        if !(min_ratio..1.0).contains(&ratio) {
            return false;
        }
        let mut s = 0.0;
        for ch in 0..3 {
            let d = f32::from(p[ch]) - ratio * bg[ch];
            s += d * d;
        }
        s.sqrt() <= threshold * 0.5
    }

    fn distance(&self, img: &Raster, x: usize, y: usize) -> f32 {
        let p = img.pixel(x, y);
        let bg = self.predict(x, y);
        let mut s = 0.0;
        for ch in 0..3 {
            let d = f32::from(p[ch]) - bg[ch];
            s += d * d;
        }
        s.sqrt()
    }
}

fn border_samples(img: &Raster, params: &SegmentParams) -> Vec<(usize, usize)> {
    let (w, h) = (img.width, img.height);
    let band = ((w.min(h) as f32 * params.border_fraction) as usize).max(1);
    let mut samples: Vec<(usize, usize)> = Vec::new();
    // Subsample long borders to keep the fit cheap on large images.
    let step = ((w + h) / 2000).max(1);
    for y in (0..h).step_by(step) {
        for x in (0..w).step_by(step) {
            if x < band || y < band || x >= w - band || y >= h - band {
                samples.push((x, y));
            }
        }
    }
    samples
}

fn fit_background(img: &Raster, params: &SegmentParams) -> BackgroundModel {
    let samples = border_samples(img, params);
    let mut model = BackgroundModel {
        coef: [[0.0; 3]; 3],
        spread: 0.0,
    };
    let mut active = samples.clone();
    for _ in 0..3 {
        model.coef = fit_planes(img, &active);
        let mut residuals: Vec<f32> = samples
            .iter()
            .map(|&(x, y)| model.distance(img, x, y))
            .collect();
        let mut sorted = residuals.clone();
        sorted.sort_by(f32::total_cmp);
        let median = sorted[sorted.len() / 2];
        model.spread = median * 1.4826 + 1.0;
        // Drop border pixels that belong to an object touching the edge, then refit.
        let cut = (3.0 * model.spread).max(params.min_distance);
        active = samples
            .iter()
            .zip(residuals.iter_mut())
            .filter(|(_, r)| **r <= cut)
            .map(|(p, _)| *p)
            .collect();
        if active.len() < 16 {
            break;
        }
    }
    model
}

/// Least squares of `a + b·x + c·y` per channel over the given pixels.
fn fit_planes(img: &Raster, pts: &[(usize, usize)]) -> [[f64; 3]; 3] {
    let mut ata = [[0f64; 3]; 3];
    let mut atb = [[0f64; 3]; 3];
    for &(x, y) in pts {
        let row = [1.0, x as f64, y as f64];
        let p = img.pixel(x, y);
        for i in 0..3 {
            for j in 0..3 {
                ata[i][j] += row[i] * row[j];
            }
            for ch in 0..3 {
                atb[ch][i] += row[i] * f64::from(p[ch]);
            }
        }
    }
    // Tiny ridge keeps the system solvable for degenerate sample sets.
    for (i, r) in ata.iter_mut().enumerate() {
        r[i] += 1e-6;
    }
    atb.map(|b| solve3(ata, b))
}

fn solve3(a: [[f64; 3]; 3], b: [f64; 3]) -> [f64; 3] {
    let det = |m: [[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(a);
    if d.abs() < 1e-12 {
        let mean = b[0] / a[0][0].max(1e-12);
        return [mean, 0.0, 0.0];
    }
    let mut out = [0.0; 3];
    for (col, o) in out.iter_mut().enumerate() {
        let mut m = a;
        for r in 0..3 {
            m[r][col] = b[r];
        }
        *o = det(m) / d;
    }
    out
}

/// Binary dilation with a (2r+1)² square, separable with running counts.
pub(crate) fn dilate(mask: &[bool], w: usize, h: usize, r: usize) -> Vec<bool> {
    let pass = |src: &[bool], len: usize, count: usize, stride: usize, lane_stride: usize| {
        let mut out = vec![false; src.len()];
        for lane in 0..count {
            let base = lane * lane_stride;
            let mut ones = 0usize;
            // Window [i - r, i + r].
            for i in 0..r.min(len) {
                ones += usize::from(src[base + i * stride]);
            }
            for i in 0..len {
                if i + r < len {
                    ones += usize::from(src[base + (i + r) * stride]);
                }
                if i > r {
                    ones -= usize::from(src[base + (i - r - 1) * stride]);
                }
                out[base + i * stride] = ones > 0;
            }
        }
        out
    };
    let rows = pass(mask, w, h, 1, w);
    pass(&rows, h, w, w, 1)
}

pub(crate) fn erode(mask: &[bool], w: usize, h: usize, r: usize) -> Vec<bool> {
    let inv: Vec<bool> = mask.iter().map(|b| !b).collect();
    dilate(&inv, w, h, r).into_iter().map(|b| !b).collect()
}

pub(crate) fn open(mask: &[bool], w: usize, h: usize, r: usize) -> Vec<bool> {
    dilate(&erode(mask, w, h, r), w, h, r)
}

pub(crate) fn close(mask: &[bool], w: usize, h: usize, r: usize) -> Vec<bool> {
    erode(&dilate(mask, w, h, r), w, h, r)
}

/// Labels 4- or 8-connected components of `value` pixels; returns labels (0 = not `value`)
/// and the size of each label (index 0 unused).
fn label(mask: &[bool], w: usize, h: usize, value: bool, eight: bool) -> (Vec<u32>, Vec<usize>) {
    let mut labels = vec![0u32; w * h];
    let mut sizes = vec![0usize];
    let mut stack = Vec::new();
    for start in 0..w * h {
        if mask[start] != value || labels[start] != 0 {
            continue;
        }
        let id = sizes.len() as u32;
        let mut size = 0;
        labels[start] = id;
        stack.push(start);
        while let Some(i) = stack.pop() {
            size += 1;
            let (x, y) = ((i % w) as isize, (i / w) as isize);
            for dy in -1isize..=1 {
                for dx in -1isize..=1 {
                    if (dx == 0 && dy == 0) || (!eight && dx != 0 && dy != 0) {
                        continue;
                    }
                    let (nx, ny) = (x + dx, y + dy);
                    if nx < 0 || ny < 0 || nx >= w as isize || ny >= h as isize {
                        continue;
                    }
                    let j = ny as usize * w + nx as usize;
                    if mask[j] == value && labels[j] == 0 {
                        labels[j] = id;
                        stack.push(j);
                    }
                }
            }
        }
        sizes.push(size);
    }
    (labels, sizes)
}

/// The largest 8-connected component and every component at least `fraction` of its size.
pub(crate) fn main_components(mask: &[bool], w: usize, h: usize, fraction: f32) -> Vec<bool> {
    let (labels, sizes) = label(mask, w, h, true, true);
    let largest = sizes.iter().skip(1).copied().max().unwrap_or(0);
    if largest == 0 {
        return vec![false; w * h];
    }
    let min = ((largest as f32 * fraction).ceil() as usize).max(1);
    labels
        .iter()
        .map(|&l| l != 0 && sizes[l as usize] >= min)
        .collect()
}

pub(crate) fn fill_small_holes(mask: &[bool], w: usize, h: usize, max_fraction: f32) -> Vec<bool> {
    let area = mask.iter().filter(|b| **b).count();
    let (labels, sizes) = label(mask, w, h, false, false);
    let mut touches_border = vec![false; sizes.len()];
    for x in 0..w {
        touches_border[labels[x] as usize] = true;
        touches_border[labels[(h - 1) * w + x] as usize] = true;
    }
    for y in 0..h {
        touches_border[labels[y * w] as usize] = true;
        touches_border[labels[y * w + w - 1] as usize] = true;
    }
    let limit = (area as f32 * max_fraction) as usize;
    mask.iter()
        .zip(&labels)
        .map(|(&m, &l)| m || (l != 0 && !touches_border[l as usize] && sizes[l as usize] <= limit))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A red disk on a vertical grey gradient with mild noise.
    fn photo(w: usize, h: usize) -> (Raster, Vec<bool>) {
        let mut img = Raster::new(w, h, 3);
        let mut truth = vec![false; w * h];
        let mut s = 7u32;
        for y in 0..h {
            for x in 0..w {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let noise = ((s >> 24) % 7) as i32 - 3;
                let (dx, dy) = (x as f32 - w as f32 * 0.45, y as f32 - h as f32 * 0.55);
                let inside = dx * dx + dy * dy < (w.min(h) as f32 * 0.3).powi(2);
                truth[y * w + x] = inside;
                let base = if inside {
                    [200, 40, 30]
                } else {
                    let g = 170 + (60 * y / h) as i32;
                    [g, g, g + 5]
                };
                let p = &mut img.data[(y * w + x) * 3..(y * w + x) * 3 + 3];
                for c in 0..3 {
                    p[c] = (base[c] + noise).clamp(0, 255) as u8;
                }
            }
        }
        (img, truth)
    }

    #[test]
    fn finds_disk_on_gradient() {
        let (img, truth) = photo(200, 160);
        let mask = segment_foreground(&img, &SegmentParams::default());
        let wrong = mask
            .data
            .iter()
            .zip(&truth)
            .filter(|(m, t)| (**m != 0) != **t)
            .count();
        let area = truth.iter().filter(|t| **t).count();
        assert!(
            (wrong as f32) < area as f32 * 0.03,
            "{wrong} wrong pixels of {area}"
        );
    }

    #[test]
    fn plain_image_has_no_foreground() {
        let img = Raster::from_data(64, 64, 3, vec![128; 64 * 64 * 3]);
        assert_eq!(
            segment_foreground(&img, &SegmentParams::default()).count(),
            0
        );
    }

    #[test]
    fn dilate_and_erode_are_square() {
        let (w, h) = (9, 9);
        let mut m = vec![false; w * h];
        m[4 * w + 4] = true;
        let d = dilate(&m, w, h, 2);
        assert_eq!(d.iter().filter(|b| **b).count(), 25);
        let e = erode(&d, w, h, 2);
        assert_eq!(e.iter().filter(|b| **b).count(), 1);
        assert!(e[4 * w + 4]);
    }
}
