//! Exact Euclidean distance transform (Felzenszwalb & Huttenlocher's lower envelope of
//! parabolas, run on columns then rows), with the index of the nearest feature pixel.

/// Squared distance from every pixel to the nearest pixel where `feature` is true, and that
/// pixel's index (`y * width + x`). With no feature pixel at all, distances are `f32::INFINITY`
/// and indices `u32::MAX`.
#[derive(Debug, Clone)]
pub struct DistanceField {
    pub width: usize,
    pub height: usize,
    pub sq_dist: Vec<f32>,
    pub nearest: Vec<u32>,
}

pub fn distance_transform(feature: &[bool], width: usize, height: usize) -> DistanceField {
    assert_eq!(feature.len(), width * height);
    let n = width.max(height);
    let mut scratch = Scratch::new(n);
    // Pass 1: along columns. `col_site[i]` is the feature row nearest to pixel i in its column.
    let mut col_dist = vec![f32::INFINITY; width * height];
    let mut col_site = vec![u32::MAX; width * height];
    let mut f = vec![0f32; n];
    let mut d = vec![0f32; n];
    let mut arg = vec![0usize; n];
    for x in 0..width {
        for y in 0..height {
            f[y] = if feature[y * width + x] {
                0.0
            } else {
                f32::INFINITY
            };
        }
        scratch.envelope(&f[..height], &mut d[..height], &mut arg[..height]);
        for y in 0..height {
            col_dist[y * width + x] = d[y];
            col_site[y * width + x] = if d[y].is_finite() {
                arg[y] as u32
            } else {
                u32::MAX
            };
        }
    }
    // Pass 2: along rows, over the column distances.
    let mut sq_dist = vec![f32::INFINITY; width * height];
    let mut nearest = vec![u32::MAX; width * height];
    for y in 0..height {
        let row = y * width;
        scratch.envelope(
            &col_dist[row..row + width],
            &mut d[..width],
            &mut arg[..width],
        );
        for x in 0..width {
            if d[x].is_finite() {
                let sx = arg[x];
                let sy = col_site[row + sx];
                sq_dist[row + x] = d[x];
                nearest[row + x] = sy * width as u32 + sx as u32;
            }
        }
    }
    DistanceField {
        width,
        height,
        sq_dist,
        nearest,
    }
}

struct Scratch {
    v: Vec<usize>,
    z: Vec<f32>,
}

impl Scratch {
    fn new(n: usize) -> Self {
        Scratch {
            v: vec![0; n + 1],
            z: vec![0.0; n + 2],
        }
    }

    /// 1-D squared distance transform of sampled function `f` (∞ = no site).
    fn envelope(&mut self, f: &[f32], d: &mut [f32], arg: &mut [usize]) {
        let n = f.len();
        let mut k: isize = -1;
        for q in 0..n {
            if !f[q].is_finite() {
                continue;
            }
            let fq = f[q] + (q * q) as f32;
            loop {
                if k < 0 {
                    k = 0;
                    self.v[0] = q;
                    self.z[0] = f32::NEG_INFINITY;
                    self.z[1] = f32::INFINITY;
                    break;
                }
                let p = self.v[k as usize];
                let fp = f[p] + (p * p) as f32;
                let s = (fq - fp) / (2.0 * (q as f32 - p as f32));
                if s <= self.z[k as usize] {
                    k -= 1;
                    continue;
                }
                k += 1;
                self.v[k as usize] = q;
                self.z[k as usize] = s;
                self.z[k as usize + 1] = f32::INFINITY;
                break;
            }
        }
        if k < 0 {
            d.iter_mut().for_each(|x| *x = f32::INFINITY);
            return;
        }
        let mut j = 0usize;
        for q in 0..n {
            while self.z[j + 1] < q as f32 {
                j += 1;
            }
            let p = self.v[j];
            let dq = q as f32 - p as f32;
            d[q] = dq * dq + f[p];
            arg[q] = p;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_brute_force() {
        let (w, h) = (23, 17);
        let mut state = 12345u32;
        let feature: Vec<bool> = (0..w * h)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (state >> 16).is_multiple_of(11)
            })
            .collect();
        let field = distance_transform(&feature, w, h);
        for y in 0..h {
            for x in 0..w {
                let mut best = f32::INFINITY;
                for fy in 0..h {
                    for fx in 0..w {
                        if feature[fy * w + fx] {
                            let dx = x as f32 - fx as f32;
                            let dy = y as f32 - fy as f32;
                            best = best.min(dx * dx + dy * dy);
                        }
                    }
                }
                let i = y * w + x;
                assert_eq!(field.sq_dist[i], best, "at ({x},{y})");
                let n = field.nearest[i] as usize;
                assert!(feature[n]);
                let (nx, ny) = ((n % w) as f32, (n / w) as f32);
                let dd = (nx - x as f32).powi(2) + (ny - y as f32).powi(2);
                assert_eq!(dd, best);
            }
        }
    }

    #[test]
    fn no_features_is_infinite() {
        let field = distance_transform(&[false; 12], 4, 3);
        assert!(field.sq_dist.iter().all(|d| d.is_infinite()));
        assert!(field.nearest.iter().all(|&n| n == u32::MAX));
    }
}
