//! The rasterizer on the host: bands of rows in parallel, each visiting only the faces whose
//! bounds reach it; the z-buffer keeps a minimum, so the result does not depend on the order.

use rayon::prelude::*;

use super::{NO_FACE, Raster, Rasterizer, corners, pixel_span};

/// Rows per parallel band.
const BAND: usize = 16;

/// The reference's key arithmetic: `MAXINT` and the depth quantum `2 << 17`.
const MAXINT: u64 = 2_147_483_647;
const DEPTH_QUANTA: f32 = 262_144.0;
/// The empty z-buffer's key (`MAXINT · MAXINT + MAXINT − 1`, whose face part reads "none").
const EMPTY: u64 = MAXINT * MAXINT + (MAXINT - 1);

/// Rasterizes on the CPU's cores (rayon's pool).
#[derive(Debug, Clone, Copy, Default)]
pub struct HostRasterizer;

impl Rasterizer for HostRasterizer {
    fn scan(
        &self,
        screen: &[[f32; 3]],
        w: Option<&[f32]>,
        triangles: &[[u32; 3]],
        width: usize,
        height: usize,
    ) -> Raster {
        scan(screen, w, triangles, width, height)
    }

    fn name(&self) -> &'static str {
        "host"
    }
}

pub(super) fn scan(
    screen: &[[f32; 3]],
    w: Option<&[f32]>,
    triangles: &[[u32; 3]],
    width: usize,
    height: usize,
) -> Raster {
    let n = width * height;
    if n == 0 {
        return Raster::empty(width, height);
    }
    let bands = height.div_ceil(BAND);
    // Bin each face into the bands its rows reach (the reference's row loop bounds).
    let mut bins: Vec<Vec<u32>> = vec![Vec::new(); bands];
    for (f, t) in triangles.iter().enumerate() {
        let Some([a, b, c]) = corners(screen, t) else {
            continue;
        };
        if let Some((first, last)) = pixel_span([a[1], b[1], c[1]], height) {
            for bin in &mut bins[first / BAND..=last / BAND] {
                bin.push(f as u32);
            }
        }
    }
    let mut keys = vec![EMPTY; n];
    keys.par_chunks_mut(BAND * width)
        .zip(bins.par_iter())
        .enumerate()
        .for_each(|(band, (keys, bin))| {
            let row0 = band * BAND;
            for &f in bin {
                if let Some(c) = corners(screen, &triangles[f as usize]) {
                    draw(c, f, width, height, row0, keys);
                }
            }
        });

    let mut out = Raster::empty(width, height);
    out.face
        .par_iter_mut()
        .zip(out.bary.par_iter_mut())
        .zip(out.depth.par_iter_mut())
        .enumerate()
        .for_each(|(pix, ((face, bary), depth))| {
            let id = keys[pix] % MAXINT;
            if id == MAXINT - 1 {
                return;
            }
            let f = (id - 1) as u32;
            let t = triangles[f as usize];
            let Some([a, b, c]) = corners(screen, &t) else {
                return;
            };
            let p = [(pix % width) as f32 + 0.5, (pix / width) as f32 + 0.5];
            let Some([mut al, mut be, mut ga]) = barycentric(a, b, c, p) else {
                return;
            };
            *depth = al * a[2] + be * b[2] + ga * c[2];
            if let Some(w) = w {
                al /= w[t[0] as usize];
                be /= w[t[1] as usize];
                ga /= w[t[2] as usize];
                let s = 1.0 / ((al + be) + ga);
                *bary = [al * s, be * s, ga * s];
            } else {
                *bary = [al, be, ga];
            }
            *face = f;
        });
    out
}

/// Gives every pixel that no face covers, but that lies within `reach` pixels of a face, the
/// nearest such face with the barycentrics of its nearest point. A UV raster needs this: a face
/// thinner than a texel covers no texel centre, yet a renderer samples the texels under it.
pub fn cover_conservatively(
    raster: &mut Raster,
    screen: &[[f32; 3]],
    triangles: &[[u32; 3]],
    reach: f32,
) {
    let (w, h) = (raster.width, raster.height);
    let mut best = vec![f32::INFINITY; w * h];
    for (f, t) in triangles.iter().enumerate() {
        let Some([a, b, c]) = corners(screen, t) else {
            continue;
        };
        let xs = [a[0], b[0], c[0]];
        let ys = [a[1], b[1], c[1]];
        let lo = |v: [f32; 3]| v[0].min(v[1]).min(v[2]) - reach - 0.5;
        let hi = |v: [f32; 3]| v[0].max(v[1]).max(v[2]) + reach - 0.5;
        if !(lo(xs).is_finite() && hi(xs).is_finite() && lo(ys).is_finite() && hi(ys).is_finite()) {
            continue;
        }
        let (i0, i1) = (lo(xs).ceil().max(0.0) as usize, hi(xs).floor());
        let (j0, j1) = (lo(ys).ceil().max(0.0) as usize, hi(ys).floor());
        if i1 < 0.0 || j1 < 0.0 {
            continue;
        }
        let (i1, j1) = ((i1 as usize).min(w - 1), (j1 as usize).min(h - 1));
        for j in j0..=j1 {
            for i in i0..=i1 {
                let k = j * w + i;
                if raster.face[k] != NO_FACE && best[k].is_infinite() {
                    continue; // covered by the scan itself
                }
                let p = [i as f32 + 0.5, j as f32 + 0.5];
                let (d2, bary) = nearest_point([a, b, c].map(|v| [v[0], v[1]]), p);
                if d2 <= reach * reach && d2 < best[k] {
                    best[k] = d2;
                    raster.face[k] = f as u32;
                    raster.bary[k] = bary;
                    raster.depth[k] = bary[0] * a[2] + bary[1] * b[2] + bary[2] * c[2];
                }
            }
        }
    }
}

/// Squared distance from `p` to the triangle and the barycentrics of its nearest point.
fn nearest_point(v: [[f32; 2]; 3], p: [f32; 2]) -> (f32, [f32; 3]) {
    let area = area2(v[0], v[1], v[2]);
    if area != 0.0 {
        let l1 = area2(v[0], p, v[2]) / area;
        let l2 = area2(v[0], v[1], p) / area;
        let l0 = 1.0 - l1 - l2;
        if l0 >= 0.0 && l1 >= 0.0 && l2 >= 0.0 {
            return (0.0, [l0, l1, l2]);
        }
    }
    let mut best = (f32::INFINITY, [1.0, 0.0, 0.0]);
    for e in 0..3 {
        let (a, b) = (v[e], v[(e + 1) % 3]);
        let ab = [b[0] - a[0], b[1] - a[1]];
        let len2 = ab[0] * ab[0] + ab[1] * ab[1];
        let t = if len2 > 0.0 {
            (((p[0] - a[0]) * ab[0] + (p[1] - a[1]) * ab[1]) / len2).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let q = [a[0] + t * ab[0], a[1] + t * ab[1]];
        let d2 = (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2);
        if d2 < best.0 {
            let mut bary = [0f32; 3];
            bary[e] = 1.0 - t;
            bary[(e + 1) % 3] = t;
            best = (d2, bary);
        }
    }
    best
}

/// The reference's `area2(a, b, c)`, in f32 in its operation order.
fn area2(a: [f32; 2], b: [f32; 2], c: [f32; 2]) -> f32 {
    (c[0] - a[0]) * (b[1] - a[1]) - (b[0] - a[0]) * (c[1] - a[1])
}

/// The reference's barycentric weights of `p`; `None` for a degenerate face.
fn barycentric(a: [f32; 3], b: [f32; 3], c: [f32; 3], p: [f32; 2]) -> Option<[f32; 3]> {
    let (a, b, c) = ([a[0], a[1]], [b[0], b[1]], [c[0], c[1]]);
    let area = area2(a, b, c);
    if area == 0.0 {
        return None;
    }
    let inv = (1.0 / f64::from(area)) as f32;
    let beta = area2(a, p, c) * inv;
    let gamma = area2(a, b, p) * inv;
    let alpha = (1.0 - f64::from(beta) - f64::from(gamma)) as f32;
    Some([alpha, beta, gamma])
}

/// Scan-converts one face into the rows `row0..` held by `keys`.
fn draw(
    [a, b, c]: [[f32; 3]; 3],
    f: u32,
    width: usize,
    height: usize,
    row0: usize,
    keys: &mut [u64],
) {
    let rows = keys.len() / width;
    let x_min = a[0].min(b[0]).min(c[0]);
    let x_max = a[0].max(b[0]).max(c[0]);
    let y_min = a[1].min(b[1]).min(c[1]);
    let y_max = a[1].max(b[1]).max(c[1]);
    // The reference's loops: from the truncated minimum while below the maximum plus one.
    let px0 = (x_min as i64).max(0);
    let py0 = (y_min as i64).max(row0 as i64);
    let py_end = (row0 + rows).min(height) as i64;
    let mut py = py0;
    while py < py_end && (py as f32) < y_max + 1.0 {
        let mut px = px0;
        while px < width as i64 && (px as f32) < x_max + 1.0 {
            let p = [px as f32 + 0.5, py as f32 + 0.5];
            if let Some([al, be, ga]) = barycentric(a, b, c, p)
                && (0.0..=1.0).contains(&al)
                && (0.0..=1.0).contains(&be)
                && (0.0..=1.0).contains(&ga)
            {
                let depth = al * a[2] + be * b[2] + ga * c[2];
                if depth >= 0.0 {
                    let quantised = (depth * DEPTH_QUANTA) as i32;
                    let key = (i64::from(quantised) as u64)
                        .wrapping_mul(MAXINT)
                        .wrapping_add(u64::from(f) + 1);
                    let k = (py as usize - row0) * width + px as usize;
                    if key < keys[k] {
                        keys[k] = key;
                    }
                }
            }
            px += 1;
        }
        py += 1;
    }
}

#[cfg(test)]
mod tests {
    use crate::texture::raster::rasterize;

    #[test]
    fn a_square_of_two_triangles_covers_exactly_its_pixels() {
        // Corners on pixel boundaries: the 4×4 square from (2, 1) covers columns 2..6, rows 1..5.
        let corners = [
            [2.0, 1.0, 0.5],
            [6.0, 1.0, 0.5],
            [6.0, 5.0, 0.5],
            [2.0, 5.0, 0.5],
        ];
        let r = rasterize(&corners, &[[0, 1, 2], [0, 2, 3]], 8, 40);
        for j in 0..40 {
            for i in 0..8 {
                let inside = (2..6).contains(&i) && (1..5).contains(&j);
                assert_eq!(r.covered(j * 8 + i), inside, "pixel ({i}, {j})");
            }
        }
        // Barycentrics reproduce the pixel centre.
        let pos = r.interpolate(&[[0, 1, 2], [0, 2, 3]], &corners.map(|c| [c[0], c[1]]));
        let p = pos[3 * 8 + 4].expect("covered");
        assert!(
            (p[0] - 4.5).abs() < 1e-5 && (p[1] - 3.5).abs() < 1e-5,
            "{p:?}"
        );
    }

    #[test]
    fn the_nearer_face_wins_whatever_the_order_and_bands() {
        let far = [[0.0, 0.0, 0.9], [64.0, 0.0, 0.9], [0.0, 64.0, 0.9]];
        let near = [[0.0, 0.0, 0.1], [64.0, 0.0, 0.1], [0.0, 64.0, 0.1]];
        let corners: Vec<[f32; 3]> = far.into_iter().chain(near).collect();
        let r = rasterize(&corners, &[[0, 1, 2], [3, 4, 5]], 64, 64);
        let swapped = rasterize(&corners, &[[3, 4, 5], [0, 1, 2]], 64, 64);
        assert_eq!(r.face[10 * 64 + 10], 1);
        assert_eq!(swapped.face[10 * 64 + 10], 0);
        assert!((r.depth[10 * 64 + 10] - 0.1).abs() < 1e-6);
    }
}
