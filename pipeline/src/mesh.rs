//! Triangle meshes and the measurements the tests and post-processing need.

/// An indexed triangle mesh. Triangles are counter-clockwise seen from outside (outward normals).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mesh {
    pub positions: Vec<[f32; 3]>,
    pub triangles: Vec<[u32; 3]>,
    /// Optional sRGB vertex colours, one per position.
    pub colors: Option<Vec<[u8; 3]>>,
    /// Optional texture coordinates, one per position, in glTF's convention: `(0, 0)` is the
    /// top-left corner of the texture image and `v` grows downward. A UV-textured mesh has its
    /// vertices split along chart seams, so positions repeat there.
    pub uvs: Option<Vec<[f32; 2]>>,
    /// The sRGB base-colour texture the UVs address.
    pub texture: Option<image::RgbImage>,
}

fn sub(a: [f32; 3], b: [f32; 3]) -> [f64; 3] {
    [
        f64::from(a[0]) - f64::from(b[0]),
        f64::from(a[1]) - f64::from(b[1]),
        f64::from(a[2]) - f64::from(b[2]),
    ]
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

impl Mesh {
    pub fn is_empty(&self) -> bool {
        self.triangles.is_empty()
    }

    fn corners(&self, t: &[u32; 3]) -> [[f32; 3]; 3] {
        t.map(|i| self.positions[i as usize])
    }

    /// Twice-area normal vector of a triangle (not normalised), in f64.
    pub fn face_normal(&self, t: &[u32; 3]) -> [f64; 3] {
        let [a, b, c] = self.corners(t);
        cross(sub(b, a), sub(c, a))
    }

    pub fn surface_area(&self) -> f64 {
        self.triangles
            .iter()
            .map(|t| {
                let n = self.face_normal(t);
                0.5 * (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt()
            })
            .sum()
    }

    /// Signed volume by the divergence theorem: positive for a closed, outward-oriented mesh.
    pub fn signed_volume(&self) -> f64 {
        self.triangles
            .iter()
            .map(|t| {
                let [a, b, c] = self.corners(t).map(|p| p.map(f64::from));
                let bc = cross(b, c);
                (a[0] * bc[0] + a[1] * bc[1] + a[2] * bc[2]) / 6.0
            })
            .sum()
    }

    /// Axis-aligned bounds `(min, max)`; `None` for a mesh without vertices.
    pub fn bounds(&self) -> Option<([f32; 3], [f32; 3])> {
        let mut it = self.positions.iter();
        let first = *it.next()?;
        Some(it.fold((first, first), |(mut lo, mut hi), p| {
            for k in 0..3 {
                lo[k] = lo[k].min(p[k]);
                hi[k] = hi[k].max(p[k]);
            }
            (lo, hi)
        }))
    }

    /// Area-weighted unit vertex normals; a vertex with no area gets +Z. Vertices at the same
    /// position share their normal, so a mesh split along UV seams shades without seams.
    pub fn vertex_normals(&self) -> Vec<[f32; 3]> {
        let welded = self.welded();
        let mut acc = vec![[0f64; 3]; self.positions.len()];
        for t in &self.triangles {
            let n = self.face_normal(t);
            for &i in t {
                for k in 0..3 {
                    acc[welded[i as usize] as usize][k] += n[k];
                }
            }
        }
        welded
            .iter()
            .map(|&w| acc[w as usize])
            .map(|n| {
                let len = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
                if len > 1e-20 {
                    [
                        (n[0] / len) as f32,
                        (n[1] / len) as f32,
                        (n[2] / len) as f32,
                    ]
                } else {
                    [0.0, 0.0, 1.0]
                }
            })
            .collect()
    }

    /// For each vertex, the first vertex at exactly the same position (itself when none before
    /// it is): the vertex a seam split it from.
    pub fn welded(&self) -> Vec<u32> {
        let mut first: std::collections::HashMap<[u32; 3], u32> =
            std::collections::HashMap::with_capacity(self.positions.len());
        self.positions
            .iter()
            .enumerate()
            .map(|(i, p)| *first.entry(p.map(f32::to_bits)).or_insert(i as u32))
            .collect()
    }

    /// Number of undirected edges not shared by exactly two triangles, and of directed edges
    /// used twice (inconsistent winding). Both are zero for a closed, oriented 2-manifold.
    pub fn topology_defects(&self) -> (usize, usize) {
        let mut directed: Vec<(u32, u32)> = Vec::with_capacity(self.triangles.len() * 3);
        for t in &self.triangles {
            for k in 0..3 {
                directed.push((t[k], t[(k + 1) % 3]));
            }
        }
        directed.sort_unstable();
        let duplicated = directed.windows(2).filter(|w| w[0] == w[1]).count();
        let mut undirected: Vec<(u32, u32)> = directed
            .iter()
            .map(|&(a, b)| (a.min(b), a.max(b)))
            .collect();
        undirected.sort_unstable();
        let mut open = 0;
        let mut i = 0;
        while i < undirected.len() {
            let mut j = i;
            while j < undirected.len() && undirected[j] == undirected[i] {
                j += 1;
            }
            if j - i != 2 {
                open += 1;
            }
            i = j;
        }
        (open, duplicated)
    }

    /// Drops vertices no triangle references, keeping colours aligned.
    pub fn compact(&mut self) {
        let mut remap = vec![u32::MAX; self.positions.len()];
        let mut next = 0u32;
        for t in &mut self.triangles {
            for i in t.iter_mut() {
                let slot = &mut remap[*i as usize];
                if *slot == u32::MAX {
                    *slot = next;
                    next += 1;
                }
                *i = *slot;
            }
        }
        let mut positions = vec![[0f32; 3]; next as usize];
        let mut colors = self.colors.as_ref().map(|_| vec![[0u8; 3]; next as usize]);
        for (old, &new) in remap.iter().enumerate() {
            if new != u32::MAX {
                positions[new as usize] = self.positions[old];
                if let (Some(dst), Some(src)) = (colors.as_mut(), self.colors.as_ref()) {
                    dst[new as usize] = src[old];
                }
            }
        }
        self.positions = positions;
        self.colors = colors;
    }

    /// Applies `p ↦ origin + p ⊙ scale` to every vertex.
    pub fn transform(&mut self, origin: [f32; 3], scale: [f32; 3]) {
        for p in &mut self.positions {
            for k in 0..3 {
                p[k] = origin[k] + p[k] * scale[k];
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A unit cube [0,1]³ with outward-facing triangles.
    pub(crate) fn cube() -> Mesh {
        let positions = (0..8)
            .map(|c| [(c & 1) as f32, ((c >> 1) & 1) as f32, ((c >> 2) & 1) as f32])
            .collect();
        let triangles = vec![
            [0, 2, 1],
            [1, 2, 3],
            [4, 5, 6],
            [5, 7, 6],
            [0, 1, 4],
            [1, 5, 4],
            [2, 6, 3],
            [3, 6, 7],
            [0, 4, 2],
            [2, 4, 6],
            [1, 3, 5],
            [3, 7, 5],
        ];
        Mesh {
            positions,
            triangles,
            ..Mesh::default()
        }
    }

    #[test]
    fn cube_measures() {
        let m = cube();
        assert!((m.signed_volume() - 1.0).abs() < 1e-12);
        assert!((m.surface_area() - 6.0).abs() < 1e-12);
        assert_eq!(m.topology_defects(), (0, 0));
        let mut flipped = m.clone();
        flipped.triangles.iter_mut().for_each(|t| t.swap(1, 2));
        assert!((flipped.signed_volume() + 1.0).abs() < 1e-12);
        let mut open = m;
        open.triangles.pop();
        assert_eq!(open.topology_defects().0, 3);
    }
}
