//! NaN-aware marching cubes shared by every shape engine.
//!
//! The case table is derived at first use from the cube's geometry instead of being typed in:
//! for each of the 256 inside/outside configurations, every face contributes the segments that
//! separate its inside corners from its outside ones (on an ambiguous face the inside corners are
//! always separated, a rule that depends on the face alone, so two cubes sharing a face agree),
//! the segments are oriented so that the surface faces from inside to outside, chained into loops
//! and fanned into triangles. Vertices are shared through per-layer edge caches, so the result is
//! watertight and consistently oriented wherever no cube is skipped. Cubes with a NaN corner are
//! skipped (hierarchical volume decoding leaves NaN away from the surface band).
//!
//! Convention: a sample is inside when `value > level`; triangles wind counter-clockwise seen
//! from outside. Vertex positions are in grid-index units: `(i, j, k)` for sample `[i][j][k]`.

use std::sync::LazyLock;

use crate::mesh::Mesh;

/// A dense scalar volume, `data[(i * dims[1] + j) * dims[2] + k]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    pub dims: [usize; 3],
    pub data: Vec<f32>,
}

impl Volume {
    pub fn new(dims: [usize; 3], data: Vec<f32>) -> Self {
        assert_eq!(
            dims[0] * dims[1] * dims[2],
            data.len(),
            "volume size mismatch"
        );
        Volume { dims, data }
    }

    /// Samples `f(i, j, k)` on the grid.
    pub fn from_fn(dims: [usize; 3], mut f: impl FnMut(usize, usize, usize) -> f32) -> Self {
        let mut data = Vec::with_capacity(dims[0] * dims[1] * dims[2]);
        for i in 0..dims[0] {
            for j in 0..dims[1] {
                for k in 0..dims[2] {
                    data.push(f(i, j, k));
                }
            }
        }
        Volume { dims, data }
    }

    pub fn get(&self, i: usize, j: usize, k: usize) -> f32 {
        self.data[(i * self.dims[1] + j) * self.dims[2] + k]
    }
}

/// Corner `c` of a cube sits at offset `(c & 1, (c >> 1) & 1, (c >> 2) & 1)` along the three axes.
const fn corner_offset(c: usize) -> [usize; 3] {
    [c & 1, (c >> 1) & 1, (c >> 2) & 1]
}

/// Edge `e = axis * 4 + n` runs along `axis` from the n-th corner (ascending) without bit `axis`.
const EDGE_BASE: [usize; 12] = [0, 2, 4, 6, 0, 1, 4, 5, 0, 1, 2, 3];

fn edge_corners(e: usize) -> (usize, usize) {
    let base = EDGE_BASE[e];
    (base, base | (1 << (e / 4)))
}

fn edge_between(a: usize, b: usize) -> usize {
    let (lo, hi) = (a.min(b), a.max(b));
    (0..12).find(|&e| edge_corners(e) == (lo, hi)).unwrap_or(0)
}

/// Triangles of each of the 256 cases, as triples of edge indices.
struct CaseTable {
    triangles: Vec<Vec<[u8; 3]>>,
}

static TABLE: LazyLock<CaseTable> = LazyLock::new(build_table);

fn build_table() -> CaseTable {
    let pos = |c: usize| corner_offset(c).map(|v| v as f64);
    let mid = |e: usize| {
        let (a, b) = edge_corners(e);
        let (pa, pb) = (pos(a), pos(b));
        [0, 1, 2].map(|k| (pa[k] + pb[k]) / 2.0)
    };
    let mut triangles = Vec::with_capacity(256);
    for case in 0..256usize {
        let inside = |c: usize| case & (1 << c) != 0;
        let mut next = [usize::MAX; 12];
        for axis in 0..3 {
            for side in 0..2 {
                let (u, v) = ((axis + 1) % 3, (axis + 2) % 3);
                let cycle = [(0, 0), (1, 0), (1, 1), (0, 1)]
                    .map(|(du, dv)| (side << axis) | (du << u) | (dv << v));
                let mut normal = [0.0; 3];
                normal[axis] = if side == 1 { 1.0 } else { -1.0 };
                let crossing: Vec<usize> = (0..4)
                    .filter(|&i| inside(cycle[i]) != inside(cycle[(i + 1) % 4]))
                    .collect();
                // Pairs of cycle edges (by position i: edge cycle[i]→cycle[i+1]) to join, each
                // with a corner on the inside of the segment.
                let mut segments: Vec<(usize, usize, usize)> = Vec::new();
                match crossing.len() {
                    2 => {
                        let ins = (0..4).find(|&i| inside(cycle[i])).unwrap_or(0);
                        segments.push((crossing[0], crossing[1], cycle[ins]));
                    }
                    4 => {
                        for i in (0..4).filter(|&i| inside(cycle[i])) {
                            segments.push(((i + 3) % 4, i, cycle[i]));
                        }
                    }
                    _ => {}
                }
                for (ea, eb, corner) in segments {
                    let e1 = edge_between(cycle[ea], cycle[(ea + 1) % 4]);
                    let e2 = edge_between(cycle[eb], cycle[(eb + 1) % 4]);
                    let (a, b) = (mid(e1), mid(e2));
                    let c = pos(corner);
                    let d = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
                    let w = [c[0] - a[0], c[1] - a[1], c[2] - a[2]];
                    let x = [
                        d[1] * w[2] - d[2] * w[1],
                        d[2] * w[0] - d[0] * w[2],
                        d[0] * w[1] - d[1] * w[0],
                    ];
                    let s = x[0] * normal[0] + x[1] * normal[1] + x[2] * normal[2];
                    // Outward orientation: the inside corner lies to the right of the segment
                    // seen from outside the cube.
                    if s < 0.0 {
                        next[e1] = e2;
                    } else {
                        next[e2] = e1;
                    }
                }
            }
        }
        let mut tris = Vec::new();
        let mut used = [false; 12];
        for start in 0..12 {
            if next[start] == usize::MAX || used[start] {
                continue;
            }
            let mut lp = vec![start];
            used[start] = true;
            let mut e = next[start];
            while e != start && e != usize::MAX && !used[e] {
                used[e] = true;
                lp.push(e);
                e = next[e];
            }
            for i in 1..lp.len().saturating_sub(1) {
                tris.push([lp[0] as u8, lp[i] as u8, lp[i + 1] as u8]);
            }
        }
        triangles.push(tris);
    }
    CaseTable { triangles }
}

/// Interpolation parameters are kept this far from the edge ends, so that a sample lying exactly
/// on the level never produces coincident vertices (which would collapse triangles when meshes are
/// welded by position).
const EDGE_EPS: f32 = 1e-4;

/// A cached edge vertex, valid only while `stamp` names the plane (or layer) being processed,
/// so the caches never need clearing.
#[derive(Clone, Copy)]
struct Slot {
    id: u32,
    stamp: u32,
}

const EMPTY: Slot = Slot {
    id: u32::MAX,
    stamp: u32::MAX,
};

/// Edge-vertex caches: axis-1 and axis-2 edges of two planes (by plane parity), and the axis-0
/// edges of the current layer.
struct Caches {
    e0: Vec<Slot>,
    e1: [Vec<Slot>; 2],
    e2: [Vec<Slot>; 2],
}

/// Extracts the `level` iso-surface. Positions are in grid-index units.
pub fn marching_cubes(vol: &Volume, level: f32) -> Mesh {
    marching_cubes_until(vol, level, |_, _| true).unwrap_or_default()
}

/// [`marching_cubes`], asking `keep_going(layers_done, layers)` before each layer of cubes (and
/// once after the last); `None` when it said stop.
pub fn marching_cubes_until(
    vol: &Volume,
    level: f32,
    mut keep_going: impl FnMut(usize, usize) -> bool,
) -> Option<Mesh> {
    let [n0, n1, n2] = vol.dims;
    let mut mesh = Mesh::default();
    if n0 < 2 || n1 < 2 || n2 < 2 {
        return Some(mesh);
    }
    let table = &*TABLE;
    let plane = n1 * n2;
    // Inside bit of every sample of a plane, and whether the plane holds any NaN.
    let classify = |i: usize, out: &mut [u8]| -> bool {
        let src = &vol.data[i * plane..(i + 1) * plane];
        for (o, &v) in out.iter_mut().zip(src) {
            *o = u8::from(v > level);
        }
        src.iter().any(|v| v.is_nan())
    };
    let mut in_lo = vec![0u8; plane];
    let mut in_hi = vec![0u8; plane];
    let mut nan_lo = classify(0, &mut in_lo);
    // Bits 0 and 1 of `pair`: inside at (i, j, k) and at (i + 1, j, k).
    let mut pair = vec![0u8; plane];
    let mut caches = Caches {
        e0: vec![EMPTY; plane],
        e1: [vec![EMPTY; plane], vec![EMPTY; plane]],
        e2: [vec![EMPTY; plane], vec![EMPTY; plane]],
    };

    let layers = n0 - 1;
    for i in 0..layers {
        if !keep_going(i, layers) {
            return None;
        }
        let nan_hi = classify(i + 1, &mut in_hi);
        let any_nan = nan_lo || nan_hi;
        for ((p, &a), &b) in pair.iter_mut().zip(&in_lo).zip(&in_hi) {
            *p = a | (b << 1);
        }
        let lo = &vol.data[i * plane..(i + 1) * plane];
        let hi = &vol.data[(i + 1) * plane..(i + 2) * plane];
        for j in 0..n1 - 1 {
            let r0 = &pair[j * n2..(j + 1) * n2];
            let r1 = &pair[(j + 1) * n2..(j + 2) * n2];
            // Corner bits: 0 (i,j,k) 1 (i+1,j,k) 2 (i,j+1,k) 3 (i+1,j+1,k), then +4 for k+1.
            let mut prev = r0[0] | (r1[0] << 2);
            for k in 0..n2 - 1 {
                let next = r0[k + 1] | (r1[k + 1] << 2);
                let case = usize::from(prev | (next << 4));
                prev = next;
                if case == 0 || case == 255 {
                    continue;
                }
                if any_nan {
                    let a = j * n2 + k;
                    let corners = [a, a + 1, a + n2, a + n2 + 1];
                    if corners.iter().any(|&c| lo[c].is_nan() || hi[c].is_nan()) {
                        continue;
                    }
                }
                let mut vid = [u32::MAX; 12];
                for tri in &table.triangles[case] {
                    let mut t = [0u32; 3];
                    for (slot, &e) in t.iter_mut().zip(tri) {
                        let e = e as usize;
                        if vid[e] == u32::MAX {
                            vid[e] = edge_vertex(
                                e,
                                [i, j, k],
                                n2,
                                [lo, hi],
                                level,
                                &mut caches,
                                &mut mesh.positions,
                            );
                        }
                        *slot = vid[e];
                    }
                    mesh.triangles.push(t);
                }
            }
        }
        std::mem::swap(&mut in_lo, &mut in_hi);
        nan_lo = nan_hi;
    }
    keep_going(layers, layers).then_some(mesh)
}

/// Returns (creating it on first use) the vertex on edge `e` of cube `(i, j, k)`.
fn edge_vertex(
    e: usize,
    [i, j, k]: [usize; 3],
    n2: usize,
    [lo, hi]: [&[f32]; 2],
    level: f32,
    caches: &mut Caches,
    positions: &mut Vec<[f32; 3]>,
) -> u32 {
    let axis = e / 4;
    let (ca, _) = edge_corners(e);
    let off = corner_offset(ca);
    let (pi, pj, pk) = (i + off[0], j + off[1], k + off[2]);
    let idx = pj * n2 + pk;
    let upper = off[0] == 1;
    let (slot, stamp) = match axis {
        0 => (&mut caches.e0[idx], i as u32),
        1 => (&mut caches.e1[pi & 1][idx], pi as u32),
        _ => (&mut caches.e2[pi & 1][idx], pi as u32),
    };
    if slot.stamp == stamp {
        return slot.id;
    }
    let plane = if upper { hi } else { lo };
    let v0 = plane[idx];
    let v1 = match axis {
        0 => hi[idx],
        1 => plane[idx + n2],
        _ => plane[idx + 1],
    };
    let t = ((level - v0) / (v1 - v0)).clamp(EDGE_EPS, 1.0 - EDGE_EPS);
    let mut p = [pi as f32, pj as f32, pk as f32];
    p[axis] += t;
    let id = positions.len() as u32;
    positions.push(p);
    *slot = Slot { id, stamp };
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_table_is_consistent() {
        for e in 0..12 {
            let (a, b) = edge_corners(e);
            assert_eq!(a & (1 << (e / 4)), 0);
            assert_eq!(b, a | (1 << (e / 4)));
            assert_eq!(edge_between(a, b), e);
        }
    }

    #[test]
    fn every_case_closes_its_loops() {
        for case in 0..256usize {
            let tris = &TABLE.triangles[case];
            let crossed = (0..12)
                .filter(|&e| {
                    let (a, b) = edge_corners(e);
                    (case >> a & 1) != (case >> b & 1)
                })
                .count();
            let mut used = [0usize; 12];
            for t in tris {
                for &e in t {
                    used[e as usize] += 1;
                }
            }
            let distinct = used.iter().filter(|&&u| u > 0).count();
            assert_eq!(distinct, crossed, "case {case}");
        }
        assert!(TABLE.triangles[0].is_empty() && TABLE.triangles[255].is_empty());
    }

    fn sphere(n: usize, r: f32) -> (Volume, f32) {
        let c = (n - 1) as f32 / 2.0;
        let vol = Volume::from_fn([n, n, n], |i, j, k| {
            let (x, y, z) = (i as f32 - c, j as f32 - c, k as f32 - c);
            r - (x * x + y * y + z * z).sqrt()
        });
        (vol, r)
    }

    #[test]
    fn sphere_is_closed_and_outward() {
        let (vol, r) = sphere(24, 8.3);
        let mesh = marching_cubes(&vol, 0.0);
        assert_eq!(mesh.topology_defects(), (0, 0));
        let expected = 4.0 / 3.0 * std::f64::consts::PI * f64::from(r).powi(3);
        let v = mesh.signed_volume();
        assert!((v - expected).abs() / expected < 0.02, "{v} vs {expected}");
    }

    #[test]
    fn every_single_cube_case_is_closed_when_embedded() {
        // Each of the 256 configurations, embedded in a 4³ grid of outside samples, must give
        // a closed, consistently oriented surface with positive volume.
        for case in 1..255usize {
            let vol = Volume::from_fn([4, 4, 4], |i, j, k| {
                if (1..=2).contains(&i) && (1..=2).contains(&j) && (1..=2).contains(&k) {
                    let c = (i - 1) | ((j - 1) << 1) | ((k - 1) << 2);
                    if case >> c & 1 == 1 { 1.0 } else { -1.0 }
                } else {
                    -1.0
                }
            });
            let mesh = marching_cubes(&vol, 0.0);
            assert_eq!(mesh.topology_defects(), (0, 0), "case {case}");
            assert!(mesh.signed_volume() > 0.0, "case {case}");
        }
    }

    #[test]
    fn nan_cubes_make_no_vertices() {
        let (mut vol, _) = sphere(20, 6.0);
        // Blank out half the volume.
        for i in 0..10 {
            for v in &mut vol.data[i * 400..(i + 1) * 400] {
                *v = f32::NAN;
            }
        }
        let mesh = marching_cubes(&vol, 0.0);
        assert!(!mesh.is_empty());
        assert!(mesh.positions.iter().all(|p| p[0] >= 10.0 - 1e-6));
        let all_nan = Volume::new([5, 5, 5], vec![f32::NAN; 125]);
        assert!(marching_cubes(&all_nan, 0.0).positions.is_empty());
    }
}
