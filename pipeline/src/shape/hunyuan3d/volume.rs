//! Volume decoding: occupancy logits on the `(R+1)³` grid `linspace(−b, b, R+1)` per axis
//! (`b` = 1.01), for a batch of shapes.
//!
//! * Dense ([`decode_dense`], `VanillaVolumeDecoder`): every grid point, `num_chunks` points per
//!   call, all shapes of the batch in each call (the query side is computed once per chunk).
//! * Hierarchical ([`decode_hierarchical`], `HierarchicalVolumeDecoding`): a coarse dense grid,
//!   then at each finer level (resolution doubling up to R) only the cells near the surface: where
//!   a sample's sign differs from one of its six neighbours or `|logit| < 0.95`, dilated with a
//!   3×3×3 box (once before and once after moving to the finer grid, twice after at the last
//!   level). Everything else is NaN, which marching cubes skips. Upstream supports one shape per
//!   call; here each shape keeps its own point set and the shapes are still evaluated together
//!   (rows of one call, padded to the longest). Upstream also computes the fine-level query
//!   positions in int64, which truncates them all to (−1, −1, −1); the intended float positions
//!   are used here (see `tests/reference/hunyuan3d_fixtures.py`).

use burn::tensor::backend::Backend;

use super::sampler::Stopped;
use super::vae::{DecoderKv, GeometryDecoder};
use crate::shape::mc::Volume;

/// Where and how densely to decode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VolumeOptions {
    /// R: the grid has R + 1 samples per axis.
    pub resolution: usize,
    /// Query points per decoder call.
    pub num_chunks: usize,
    /// Half-extent of the cube (`box_v`, 1.01).
    pub bounds: f64,
    /// Iso-level added before the near-surface test (`mc_level`, 0).
    pub mc_level: f32,
    /// Coarsest level of the hierarchy: resolutions halve from R while ≥ this (63 upstream).
    pub min_resolution: usize,
}

impl VolumeOptions {
    pub fn new(resolution: usize, num_chunks: usize) -> Self {
        Self {
            resolution,
            num_chunks: num_chunks.max(1),
            bounds: 1.01,
            mc_level: 0.0,
            min_resolution: 63,
        }
    }
}

/// numpy `linspace(−b, b, r + 1, dtype=float32)`: float64 arithmetic, then rounded.
pub fn grid_axis(r: usize, b: f64) -> Vec<f32> {
    let step = 2.0 * b / r as f64;
    let mut out: Vec<f32> = (0..=r).map(|i| (i as f64 * step - b) as f32).collect();
    out[r] = b as f32;
    out
}

/// The resolutions of the hierarchy, coarsest first.
pub fn levels(resolution: usize, min_resolution: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut r = resolution;
    if r < min_resolution {
        out.push(r);
    }
    while r >= min_resolution && r > 0 {
        out.push(r);
        r /= 2;
    }
    out.reverse();
    out
}

/// Decodes every point of the `(R+1)³` grid for each shape of `kv`. `on_chunk(done, chunks)`
/// runs after each decoder call; returning false stops.
pub fn decode_dense<B: Backend>(
    geo: &GeometryDecoder<B>,
    kv: &DecoderKv<B>,
    opts: &VolumeOptions,
    mut on_chunk: impl FnMut(usize, usize) -> bool,
) -> Result<Vec<Volume>, Stopped> {
    let r = opts.resolution;
    let axis = grid_axis(r, opts.bounds);
    let n = r + 1;
    let total = n * n * n;
    let batch = kv.batch();
    let mut data: Vec<Vec<f32>> = (0..batch).map(|_| Vec::with_capacity(total)).collect();
    let chunks = total.div_ceil(opts.num_chunks.max(1));
    let mut done = 0;
    let mut start = 0;
    while start < total {
        let len = opts.num_chunks.min(total - start);
        let points: Vec<[f32; 3]> = (start..start + len)
            .map(|p| [axis[p / (n * n)], axis[(p / n) % n], axis[p % n]])
            .collect();
        let logits = to_host(geo.query_shared(kv, &points));
        for (b, d) in data.iter_mut().enumerate() {
            d.extend_from_slice(&logits[b * len..(b + 1) * len]);
        }
        start += len;
        done += 1;
        if !on_chunk(done, chunks) {
            return Err(Stopped);
        }
    }
    Ok(data
        .into_iter()
        .map(|d| Volume::new([n, n, n], d))
        .collect())
}

fn to_host<B: Backend, const D: usize>(t: burn::tensor::Tensor<B, D>) -> Vec<f32> {
    let t = if t.dtype() == burn::tensor::DType::F32 {
        t
    } else {
        t.cast(burn::tensor::DType::F32)
    };
    t.into_data().convert::<f32>().to_vec().unwrap_or_default()
}

/// Samples whose sign (after adding `level`) differs from one of their six neighbours (border
/// samples compare with themselves; NaN samples are invalid and NaN neighbours compare as the
/// sample itself), or with `|logit| < 0.95` — upstream's `extract_near_surface_volume_fn` plus
/// its band test.
pub fn near_surface(vol: &Volume, level: f32) -> Vec<bool> {
    let [n0, n1, n2] = vol.dims;
    let sign = |v: f32| -> i8 {
        if v > 0.0 {
            1
        } else if v < 0.0 {
            -1
        } else {
            0
        }
    };
    let mut out = vec![false; vol.data.len()];
    for i in 0..n0 {
        for j in 0..n1 {
            for k in 0..n2 {
                let idx = (i * n1 + j) * n2 + k;
                let raw = vol.data[idx];
                let band = raw.abs() < 0.95;
                let val = raw + level;
                if val.is_nan() {
                    continue;
                }
                let s = sign(val);
                let neighbour = |ii: usize, jj: usize, kk: usize| -> i8 {
                    let v = vol.data[(ii * n1 + jj) * n2 + kk] + level;
                    if v.is_nan() { s } else { sign(v) }
                };
                let differs = neighbour((i + 1).min(n0 - 1), j, k) != s
                    || neighbour(i.saturating_sub(1), j, k) != s
                    || neighbour(i, (j + 1).min(n1 - 1), k) != s
                    || neighbour(i, j.saturating_sub(1), k) != s
                    || neighbour(i, j, (k + 1).min(n2 - 1)) != s
                    || neighbour(i, j, k.saturating_sub(1)) != s;
                out[idx] = differs || band;
            }
        }
    }
    out
}

/// One 3×3×3 box dilation of a cubic mask of side `n`.
fn dilate(mask: &[bool], n: usize) -> Vec<bool> {
    // Separable: a box dilation is the composition of three 1-D ones.
    let mut cur = mask.to_vec();
    for axis in 0..3 {
        let stride = [n * n, n, 1][axis];
        let mut next = cur.clone();
        for idx in 0..cur.len() {
            let c = (idx / stride) % n;
            if (c > 0 && cur[idx - stride]) || (c + 1 < n && cur[idx + stride]) {
                next[idx] = true;
            }
        }
        cur = next;
    }
    cur
}

/// Hierarchical decoding for each shape of `kv` (see the module documentation).
/// `on_chunk(done, chunks)` runs after each decoder call, counting the chunks of the level being
/// decoded (the finer levels' counts are known only once the coarser one is done); returning
/// false stops.
pub fn decode_hierarchical<B: Backend>(
    geo: &GeometryDecoder<B>,
    kv: &DecoderKv<B>,
    opts: &VolumeOptions,
    mut on_chunk: impl FnMut(usize, usize) -> bool,
) -> Result<Vec<Volume>, Stopped> {
    let lv = levels(opts.resolution, opts.min_resolution);
    let coarse = VolumeOptions {
        resolution: lv[0],
        ..*opts
    };
    let mut grids = decode_dense(geo, kv, &coarse, &mut on_chunk)?;
    for (li, &res) in lv.iter().enumerate().skip(1) {
        let last = li == lv.len() - 1;
        let prev_n = grids[0].dims[0];
        let n = res + 1;
        let cell = (2.0 * opts.bounds / res as f64) as f32;
        let lo = opts.bounds as f32;
        // Per shape: the fine-grid indices to evaluate, in ascending (ij) order.
        let selected: Vec<Vec<usize>> = grids
            .iter()
            .map(|g| {
                let mut near = near_surface(g, opts.mc_level);
                if !last {
                    near = dilate(&near, prev_n);
                }
                let mut fine = vec![false; n * n * n];
                for (idx, _) in near.iter().enumerate().filter(|(_, m)| **m) {
                    let (i, j, k) = (
                        idx / (prev_n * prev_n),
                        (idx / prev_n) % prev_n,
                        idx % prev_n,
                    );
                    let (fi, fj, fk) = (2 * i, 2 * j, 2 * k);
                    if fi < n && fj < n && fk < n {
                        fine[(fi * n + fj) * n + fk] = true;
                    }
                }
                for _ in 0..(if last { 2 } else { 1 }) {
                    fine = dilate(&fine, n);
                }
                fine.iter()
                    .enumerate()
                    .filter(|(_, m)| **m)
                    .map(|(i, _)| i)
                    .collect()
            })
            .collect();
        let point = |idx: usize| -> [f32; 3] {
            let (i, j, k) = (idx / (n * n), (idx / n) % n, idx % n);
            [
                i as f32 * cell - lo,
                j as f32 * cell - lo,
                k as f32 * cell - lo,
            ]
        };
        let mut next: Vec<Vec<f32>> = (0..grids.len())
            .map(|_| vec![f32::NAN; n * n * n])
            .collect();
        let chunks = selected
            .iter()
            .map(|s| s.len().div_ceil(opts.num_chunks))
            .max()
            .unwrap_or(0);
        for c in 0..chunks {
            let lo_i = c * opts.num_chunks;
            let active: Vec<usize> = (0..selected.len())
                .filter(|&b| selected[b].len() > lo_i)
                .collect();
            let width = active
                .iter()
                .map(|&b| (selected[b].len() - lo_i).min(opts.num_chunks))
                .max()
                .unwrap_or(0);
            let mut points = Vec::with_capacity(active.len() * width);
            for &b in &active {
                let part = &selected[b][lo_i..(lo_i + width).min(selected[b].len())];
                points.extend(part.iter().map(|&i| point(i)));
                // Pad shorter rows with their last point; the padded results are discarded.
                let pad = *part.last().expect("active rows are non-empty");
                points.extend(std::iter::repeat_n(point(pad), width - part.len()));
            }
            let sub = kv.select(&active);
            let logits = to_host(geo.query_each(&sub, &points, width));
            for (row, &b) in active.iter().enumerate() {
                let part = &selected[b][lo_i..(lo_i + width).min(selected[b].len())];
                for (p, &idx) in part.iter().enumerate() {
                    next[b][idx] = logits[row * width + p];
                }
            }
            if !on_chunk(c + 1, chunks) {
                return Err(Stopped);
            }
        }
        grids = next
            .into_iter()
            .map(|d| Volume::new([n, n, n], d))
            .collect();
    }
    Ok(grids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_halve_down_to_the_minimum() {
        assert_eq!(levels(384, 63), vec![96, 192, 384]);
        assert_eq!(levels(256, 63), vec![64, 128, 256]);
        assert_eq!(levels(100, 63), vec![100]);
        assert_eq!(levels(32, 63), vec![32]);
        assert_eq!(levels(32, 8), vec![8, 16, 32]);
    }

    #[test]
    fn grid_axis_is_numpy_linspace() {
        let a = grid_axis(4, 1.01);
        assert_eq!(a, vec![-1.01f32, -0.505, 0.0, 0.505, 1.01]);
    }

    #[test]
    fn dilation_is_a_box() {
        let n = 5;
        let mut m = vec![false; n * n * n];
        m[(2 * n + 2) * n + 2] = true;
        let d = dilate(&m, n);
        assert_eq!(d.iter().filter(|v| **v).count(), 27);
        let mut corner = vec![false; n * n * n];
        corner[0] = true;
        assert_eq!(dilate(&corner, n).iter().filter(|v| **v).count(), 8);
    }
}
