//! The conditioning images of Hunyuan3D-Paint's multiview model: normal and position maps of the
//! mesh in each of its six views, rendered as its `MeshRender.render_normal(use_abs_coor=True)`
//! and `render_position` do (same mesh normalisation, cameras, rasterizer and encodings).
//!
//! - normal: `(n + 1) / 2` of the interpolated (not renormalised) mean vertex normal in the
//!   renderer frame — the plain sum of the unit normals of the faces around a vertex, unitised.
//!   The renderer frame `(−x, z, −y)` is a reflection, so these normals point inward: in mesh
//!   terms a surface facing +Z reads `(0.5, 0, 0.5)`.
//! - position: `0.5 − p / 1.15` of the interpolated normalised position.
//!
//! Background pixels are `(1, 1, 1)` in both. Values are floats in `[0, 1]`; the reference hands
//! its model `⌊v · 255⌋` as 8-bit images ([`to_rgb8`]).

use super::camera::{MESH_SCALE_FACTOR, PaintNormalization, PaintView};
use super::raster::{Raster, Rasterizer};

/// A mesh placed as the renderer places it.
#[derive(Debug, Clone)]
pub struct PaintMesh {
    /// Normalised renderer-frame positions.
    pub positions: Vec<[f32; 3]>,
    pub triangles: Vec<[u32; 3]>,
    /// Mean vertex normals in the renderer frame.
    pub normals: Vec<[f32; 3]>,
}

impl PaintMesh {
    /// Places a mesh-frame mesh (x right, y up, z toward the front camera).
    pub fn new(positions: &[[f32; 3]], triangles: &[[u32; 3]]) -> PaintMesh {
        let norm = PaintNormalization::of(positions);
        let positions: Vec<[f32; 3]> = positions.iter().map(|&p| norm.apply(p)).collect();
        let normals = mean_vertex_normals(&positions, triangles);
        PaintMesh {
            positions,
            triangles: triangles.to_vec(),
            normals,
        }
    }

    /// Clip coordinates in a view, as the reference computes them: `[p, 1]·viewᵀ`, then
    /// `·projectionᵀ`, in f32.
    pub fn clip(&self, view: &PaintView) -> Vec<[f32; 4]> {
        let (v, p) = (view.view_matrix(), PaintView::projection_matrix());
        let mul = |m: &[[f32; 4]; 4], x: [f32; 4]| -> [f32; 4] {
            m.map(|row| row[0] * x[0] + row[1] * x[1] + row[2] * x[2] + row[3] * x[3])
        };
        self.positions
            .iter()
            .map(|q| mul(&p, mul(&v, [q[0], q[1], q[2], 1.0])))
            .collect()
    }

    pub fn rasterize(
        &self,
        rasterizer: &dyn Rasterizer,
        view: &PaintView,
        width: usize,
        height: usize,
    ) -> Raster {
        rasterizer.rasterize_clip(&self.clip(view), &self.triangles, width, height)
    }

    /// The normal map of a view (`(n + 1) / 2`, background 1).
    pub fn render_normal(
        &self,
        rasterizer: &dyn Rasterizer,
        view: &PaintView,
        width: usize,
        height: usize,
    ) -> Vec<[f32; 3]> {
        let raster = self.rasterize(rasterizer, view, width, height);
        raster
            .interpolate(&self.triangles, &self.normals)
            .into_iter()
            .map(|n| n.map_or([1.0; 3], |n| n.map(|v| (v + 1.0) * 0.5)))
            .collect()
    }

    /// The position map of a view (`0.5 − p / 1.15`, background 1).
    pub fn render_position(
        &self,
        rasterizer: &dyn Rasterizer,
        view: &PaintView,
        width: usize,
        height: usize,
    ) -> Vec<[f32; 3]> {
        let raster = self.rasterize(rasterizer, view, width, height);
        let encoded: Vec<[f32; 3]> = self
            .positions
            .iter()
            .map(|p| p.map(|v| 0.5 - v / MESH_SCALE_FACTOR))
            .collect();
        raster
            .interpolate(&self.triangles, &encoded)
            .into_iter()
            .map(|p| p.unwrap_or([1.0; 3]))
            .collect()
    }
}

/// trimesh's `mean_vertex_normals`: the sum of the unit normals of a vertex's faces, unitised in
/// f64 (a vertex whose sum vanishes keeps the zero vector).
fn mean_vertex_normals(positions: &[[f32; 3]], triangles: &[[u32; 3]]) -> Vec<[f32; 3]> {
    let mut sum = vec![[0f64; 3]; positions.len()];
    for t in triangles {
        let [a, b, c] = t.map(|i| positions[i as usize]);
        let u = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
        let v = [c[0] - a[0], c[1] - a[1], c[2] - a[2]];
        let n = [
            u[1] * v[2] - u[2] * v[1],
            u[2] * v[0] - u[0] * v[2],
            u[0] * v[1] - u[1] * v[0],
        ];
        let len = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt().max(1e-12);
        let unit = n.map(|x| x / len);
        for &i in t {
            for k in 0..3 {
                sum[i as usize][k] += f64::from(unit[k]);
            }
        }
    }
    sum.into_iter()
        .map(|s| {
            let len = (s[0] * s[0] + s[1] * s[1] + s[2] * s[2]).sqrt();
            if len > 1e-13 {
                s.map(|x| (x / len) as f32)
            } else {
                s.map(|x| x as f32)
            }
        })
        .collect()
}

/// A rendered map as the 8-bit image the reference hands its model (`⌊v · 255⌋`).
pub fn to_rgb8(map: &[[f32; 3]], width: usize, height: usize) -> image::RgbImage {
    image::RgbImage::from_fn(width as u32, height as u32, |x, y| {
        let v = map[y as usize * width + x as usize];
        image::Rgb(v.map(|c| (c * 255.0).clamp(0.0, 255.0) as u8))
    })
}
