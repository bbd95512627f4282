//! A triangle rasterizer for inference (no gradients): a z-buffer of face ids with the
//! barycentric coordinates of each pixel centre, from which any vertex attribute (position,
//! normal, UV) is interpolated. The same scan conversion serves camera views and UV space.
//!
//! It reproduces Hunyuan3D-Paint's `custom_rasterizer` (`rasterize_image_cpu`) operation for
//! operation, so face ids and barycentrics are equal to the reference's: screen coordinates
//! `((x/w)·0.5 + 0.5)·(W − 1) + 0.5` (NDC ±1 on the centres of the first and last pixel, row 0
//! at NDC y = −1), pixel centres at `+0.5`, barycentrics in f32 with the reciprocal area computed
//! in f64 and the first weight in f64, inclusive edges, no culling, a z-buffer of 64-bit keys
//! `⌊depth·2¹⁸⌋·(2³¹ − 1) + face + 1` (the nearest quantised depth, then the lowest face id,
//! wins; depth below 0 is never drawn) and perspective-correct weights in the output.
//!
//! Work is split into bands of rows run in parallel; each band visits only the faces whose
//! bounds reach it. The z-buffer keeps a minimum, so the result does not depend on the order.

use rayon::prelude::*;

/// The face id of a pixel no triangle covers.
pub const NO_FACE: u32 = u32::MAX;

/// Rows per parallel band.
const BAND: usize = 16;

/// The reference's key arithmetic: `MAXINT` and the depth quantum `2 << 17`.
const MAXINT: u64 = 2_147_483_647;
const DEPTH_QUANTA: f32 = 262_144.0;
/// The empty z-buffer's key (`MAXINT · MAXINT + MAXINT − 1`, whose face part reads "none").
const EMPTY: u64 = MAXINT * MAXINT + (MAXINT - 1);

/// What a rasterization sees at each pixel (row-major, row 0 first).
#[derive(Debug, Clone, PartialEq)]
pub struct Raster {
    pub width: usize,
    pub height: usize,
    /// The nearest face covering the pixel centre, or [`NO_FACE`].
    pub face: Vec<u32>,
    /// Weights of the face's three corners at the pixel centre (zero where no face).
    pub bary: Vec<[f32; 3]>,
    /// Screen depth (`[0, 1]`, smaller is nearer) of the face at the pixel centre;
    /// `f32::INFINITY` where no face.
    pub depth: Vec<f32>,
}

impl Raster {
    pub fn covered(&self, pixel: usize) -> bool {
        self.face[pixel] != NO_FACE
    }

    /// Interpolates a per-vertex attribute at every covered pixel; `None` elsewhere.
    pub fn interpolate<const N: usize>(
        &self,
        triangles: &[[u32; 3]],
        attribute: &[[f32; N]],
    ) -> Vec<Option<[f32; N]>> {
        self.face
            .par_iter()
            .zip(&self.bary)
            .map(|(&f, b)| {
                (f != NO_FACE).then(|| {
                    let t = triangles[f as usize];
                    let mut out = [0f32; N];
                    for (k, o) in out.iter_mut().enumerate() {
                        *o = b[0] * attribute[t[0] as usize][k]
                            + b[1] * attribute[t[1] as usize][k]
                            + b[2] * attribute[t[2] as usize][k];
                    }
                    out
                })
            })
            .collect()
    }
}

/// Rasterizes triangles given in homogeneous clip coordinates `(x, y, z, w)`, as the reference
/// does (perspective-correct barycentrics).
pub fn rasterize_clip(
    clip: &[[f32; 4]],
    triangles: &[[u32; 3]],
    width: usize,
    height: usize,
) -> Raster {
    let (wf, hf) = ((width as f32 - 1.0), (height as f32 - 1.0));
    let screen: Vec<[f32; 3]> = clip
        .iter()
        .map(|&[x, y, z, w]| {
            [
                ((x / w) * 0.5 + 0.5) * wf + 0.5,
                (0.5 + (0.5 * y) / w) * hf + 0.5,
                (z / w) * 0.49999 + 0.5,
            ]
        })
        .collect();
    let w: Vec<f32> = clip.iter().map(|c| c[3]).collect();
    scan(&screen, Some(&w), triangles, width, height)
}

/// Rasterizes triangles whose corners are given in screen coordinates `[x, y, depth]`: x to
/// the right and y down in pixels, pixel `(i, j)` centred at `(i + 0.5, j + 0.5)`, depth in
/// `[0, 1]` (smaller is nearer). Barycentrics are screen-linear (an orthographic view, or UV
/// space).
pub fn rasterize(
    screen: &[[f32; 3]],
    triangles: &[[u32; 3]],
    width: usize,
    height: usize,
) -> Raster {
    scan(screen, None, triangles, width, height)
}

fn scan(
    screen: &[[f32; 3]],
    w: Option<&[f32]>,
    triangles: &[[u32; 3]],
    width: usize,
    height: usize,
) -> Raster {
    let n = width * height;
    if n == 0 {
        return Raster {
            width,
            height,
            face: Vec::new(),
            bary: Vec::new(),
            depth: Vec::new(),
        };
    }
    let bands = height.div_ceil(BAND);
    // Bin each face into the bands its rows reach (the reference's row loop bounds).
    let mut bins: Vec<Vec<u32>> = vec![Vec::new(); bands];
    for (f, t) in triangles.iter().enumerate() {
        let Some([a, b, c]) = corners(screen, t) else {
            continue;
        };
        let y_min = a[1].min(b[1]).min(c[1]);
        let y_max = a[1].max(b[1]).max(c[1]);
        if !(y_min.is_finite() && y_max.is_finite()) {
            continue;
        }
        let first = (y_min as i64).max(0);
        let last = (((y_max + 1.0).ceil() as i64) - 1).min(height as i64 - 1);
        if last < first {
            continue;
        }
        for bin in &mut bins[first as usize / BAND..=last as usize / BAND] {
            bin.push(f as u32);
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

    let mut face = vec![NO_FACE; n];
    let mut bary = vec![[0f32; 3]; n];
    let mut depth = vec![f32::INFINITY; n];
    face.par_iter_mut()
        .zip(bary.par_iter_mut())
        .zip(depth.par_iter_mut())
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
    Raster {
        width,
        height,
        face,
        bary,
        depth,
    }
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

fn corners(screen: &[[f32; 3]], t: &[u32; 3]) -> Option<[[f32; 3]; 3]> {
    let get = |i: u32| screen.get(i as usize).copied();
    Some([get(t[0])?, get(t[1])?, get(t[2])?])
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
    use super::*;

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
