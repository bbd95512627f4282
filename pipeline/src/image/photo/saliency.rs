//! A weights-free saliency prior after "Minimum Barrier Salient Object Detection at 80 FPS"
//! (Zhang et al., ICCV 2015): photographers frame the subject away from the image border, so
//! what is hard to reach from the border without crossing a colour barrier, and what differs
//! in colour from the border, is likely the subject; a centre prior breaks ties.

use super::WorkImage;
use super::gmm::invert3;

/// Saliency tunables.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SaliencyParams {
    /// Raster-scan pass pairs of the minimum-barrier distance transform.
    pub mbd_passes: usize,
    /// Width of each border strip of the colour-contrast cue, as a fraction of the short side.
    pub border_fraction: f32,
    /// Weight of the border colour-contrast cue against the minimum-barrier cue.
    pub contrast_weight: f32,
    /// Standard deviation of the Gaussian centre prior, as a fraction of the half-size.
    pub centre_sigma: f32,
}

impl Default for SaliencyParams {
    fn default() -> Self {
        SaliencyParams {
            mbd_passes: 2,
            border_fraction: 0.05,
            contrast_weight: 1.0,
            centre_sigma: 0.9,
        }
    }
}

/// Saliency in `[0, 1]` per pixel; all zeros when the image has no colour structure at all.
pub(super) fn saliency(img: &WorkImage, p: &SaliencyParams) -> Vec<f32> {
    let (w, h) = (img.width, img.height);
    let n = w * h;
    if n == 0 {
        return Vec::new();
    }
    let mut mbd = vec![0f32; n];
    for ch in 0..3 {
        let v: Vec<f32> = img.px.iter().map(|c| c[ch]).collect();
        for (m, d) in mbd.iter_mut().zip(barrier_distance(&v, w, h, p.mbd_passes)) {
            *m += d;
        }
    }
    normalise(&mut mbd);
    let mut contrast = border_contrast(img, p.border_fraction);
    normalise(&mut contrast);
    let (cx, cy) = ((w as f32 - 1.0) / 2.0, (h as f32 - 1.0) / 2.0);
    let s2 = 2.0 * p.centre_sigma * p.centre_sigma;
    let mut s: Vec<f32> = (0..n)
        .map(|i| {
            let dx = ((i % w) as f32 - cx) / cx.max(1.0);
            let dy = ((i / w) as f32 - cy) / cy.max(1.0);
            let centre = (-(dx * dx + dy * dy) / s2).exp();
            (mbd[i] + p.contrast_weight * contrast[i]) * centre
        })
        .collect();
    normalise(&mut s);
    s
}

/// Scales to a maximum of 1; leaves an all-zero (or non-finite) map at zero.
fn normalise(v: &mut [f32]) {
    let max = v.iter().copied().fold(0f32, f32::max);
    if !(max.is_finite() && max > 1e-6) {
        v.iter_mut().for_each(|x| *x = 0.0);
        return;
    }
    v.iter_mut().for_each(|x| *x /= max);
}

/// Minimum-barrier distance of every pixel to the image border on one channel: over all
/// 4-connected paths to the border, the smallest `max - min` of the values along the path.
/// Approximated by alternating raster scans that keep each pixel's best path's extremes.
fn barrier_distance(v: &[f32], w: usize, h: usize, passes: usize) -> Vec<f32> {
    let mut d = vec![f32::INFINITY; w * h];
    let mut hi = v.to_vec();
    let mut lo = v.to_vec();
    for y in 0..h {
        for x in 0..w {
            if x == 0 || y == 0 || x + 1 == w || y + 1 == h {
                d[y * w + x] = 0.0;
            }
        }
    }
    let relax = |d: &mut [f32], hi: &mut [f32], lo: &mut [f32], i: usize, j: usize| {
        let u = hi[j].max(v[i]);
        let l = lo[j].min(v[i]);
        if u - l < d[i] {
            d[i] = u - l;
            hi[i] = u;
            lo[i] = l;
        }
    };
    for _ in 0..passes.max(1) {
        for y in 1..h.saturating_sub(1) {
            for x in 1..w.saturating_sub(1) {
                let i = y * w + x;
                relax(&mut d, &mut hi, &mut lo, i, i - 1);
                relax(&mut d, &mut hi, &mut lo, i, i - w);
            }
        }
        for y in (1..h.saturating_sub(1)).rev() {
            for x in (1..w.saturating_sub(1)).rev() {
                let i = y * w + x;
                relax(&mut d, &mut hi, &mut lo, i, i + 1);
                relax(&mut d, &mut hi, &mut lo, i, i + w);
            }
        }
    }
    d.iter()
        .map(|&x| if x.is_finite() { x } else { 0.0 })
        .collect()
}

/// Colour distinctness from the border: Mahalanobis distance to each of the four border strips'
/// colour distributions, summed over the strips less the largest, so that one strip taken up by
/// the subject itself does not erase the cue.
fn border_contrast(img: &WorkImage, fraction: f32) -> Vec<f32> {
    let (w, h) = (img.width, img.height);
    let band = ((w.min(h) as f32 * fraction).round() as usize).max(1);
    let strips: [Box<dyn Fn(usize, usize) -> bool>; 4] = [
        Box::new(move |_, y| y < band),
        Box::new(move |_, y| y + band >= h),
        Box::new(move |x, _| x < band),
        Box::new(move |x, _| x + band >= w),
    ];
    let mut maps: Vec<Vec<f32>> = Vec::with_capacity(4);
    for inside in &strips {
        let mut n = 0f64;
        let mut sum = [0f64; 3];
        let mut sq = [[0f64; 3]; 3];
        for y in 0..h {
            for x in 0..w {
                if !inside(x, y) {
                    continue;
                }
                let c = img.px[y * w + x];
                n += 1.0;
                for i in 0..3 {
                    sum[i] += f64::from(c[i]);
                    for j in 0..3 {
                        sq[i][j] += f64::from(c[i]) * f64::from(c[j]);
                    }
                }
            }
        }
        let n = n.max(1.0);
        let mean = sum.map(|s| s / n);
        let mut cov = [[0f64; 3]; 3];
        for i in 0..3 {
            for j in 0..3 {
                cov[i][j] = sq[i][j] / n - mean[i] * mean[j];
            }
            // A floor keeps plain strips from turning faint noise into huge distances.
            cov[i][i] += 25.0;
        }
        let inv = invert_sym3(cov);
        let mut map: Vec<f32> = img
            .px
            .iter()
            .map(|c| {
                let d = [
                    f64::from(c[0]) - mean[0],
                    f64::from(c[1]) - mean[1],
                    f64::from(c[2]) - mean[2],
                ];
                let mut q = 0.0;
                for i in 0..3 {
                    for j in 0..3 {
                        q += d[i] * inv[i][j] * d[j];
                    }
                }
                q.max(0.0).sqrt() as f32
            })
            .collect();
        normalise(&mut map);
        maps.push(map);
    }
    (0..w * h)
        .map(|i| {
            let vals = [maps[0][i], maps[1][i], maps[2][i], maps[3][i]];
            vals.iter().sum::<f32>() - vals.iter().copied().fold(0f32, f32::max)
        })
        .collect()
}

/// Inverse of a symmetric positive-definite 3×3 matrix (identity when degenerate).
fn invert_sym3(m: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
    invert3(m).map_or(
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        |(inv, _)| inv,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn central_blob_is_salient() {
        let (w, h) = (40, 30);
        let px = (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                if (15..25).contains(&x) && (10..20).contains(&y) {
                    [200.0, 50.0, 40.0]
                } else {
                    [90.0, 120.0, 90.0]
                }
            })
            .collect();
        let img = WorkImage {
            width: w,
            height: h,
            px,
        };
        let s = saliency(&img, &SaliencyParams::default());
        assert!(s[15 * w + 20] > 0.9);
        assert!(s[2 * w + 3] < 0.1);
    }
}
