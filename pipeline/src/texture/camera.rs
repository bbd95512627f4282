//! Orthographic views of a mesh: where a world point lands in a view image, and how deep.
//!
//! Two kinds: the engine's own view of its input image ([`OrthoView::from_frame`]), and
//! Hunyuan3D-Paint's six cameras ([`PAINT_VIEWS`], [`OrthoView::paint`]), built exactly as its
//! `MeshRender` builds them (`get_mv_matrix`, `get_orthographic_projection_matrix`, the mesh
//! normalisation of `set_mesh`) so the multiview model can be given the conditioning images it
//! was trained on.

use crate::shape::ViewFrame;

/// An orthographic view: world points map affinely to screen coordinates `x` (right), `y`
/// (down), pixel `(i, j)` centred at `(i + 0.5, j + 0.5)`, and a depth in `[0, 1]` that grows
/// away from the viewer (the rasterizer's convention).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrthoView {
    pub width: usize,
    pub height: usize,
    /// Rows of the affine map `[x, y, depth] = rows · [p, 1]`.
    pub rows: [[f32; 4]; 3],
    /// Unit vector from the surface toward the viewer (the cosine weighting's reference).
    pub toward_viewer: [f32; 3],
    /// World units per pixel.
    pub pixel_size: f32,
    /// Depth units per world unit along the view axis.
    pub depth_per_unit: f32,
}

fn dot3(a: [f32; 3], b: [f32; 3]) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// Depth units per world unit of an engine frame's view: the engine's volume spans at most
/// `[-2, 2]` along any axis, so depths stay inside `[0, 1]`.
const FRAME_DEPTH_SCALE: f32 = 0.25;

impl OrthoView {
    /// The view an engine's preprocessed image was taken from: the image spans
    /// `[-half_extent, half_extent]²` of the frame's right/up plane (as [`ViewFrame::project`]).
    pub fn from_frame(frame: &ViewFrame, size: usize) -> OrthoView {
        let s = size as f32;
        let k = s / (2.0 * frame.half_extent);
        let r = frame.right;
        let u = frame.up;
        let t = frame.toward_viewer;
        let d = FRAME_DEPTH_SCALE;
        OrthoView {
            width: size,
            height: size,
            rows: [
                [r[0] * k, r[1] * k, r[2] * k, s / 2.0],
                [-u[0] * k, -u[1] * k, -u[2] * k, s / 2.0],
                [-t[0] * d, -t[1] * d, -t[2] * d, 0.5],
            ],
            toward_viewer: t,
            pixel_size: 1.0 / k,
            depth_per_unit: d,
        }
    }

    /// The same image seen from behind: every point keeps its pixel, depth and viewing direction
    /// reverse. This is how a single image textures the back of a shape (as its mirror).
    pub fn from_behind(&self) -> OrthoView {
        let mut back = *self;
        let z = self.rows[2];
        back.rows[2] = [-z[0], -z[1], -z[2], 1.0 - z[3]];
        back.toward_viewer = self.toward_viewer.map(|v| -v);
        back
    }

    /// `[x, y, depth]` of a world point.
    pub fn project(&self, p: [f32; 3]) -> [f32; 3] {
        self.rows.map(|r| dot3([r[0], r[1], r[2]], p) + r[3])
    }

    /// One of Hunyuan3D-Paint's views of a mesh normalised as its renderer normalises it, at
    /// `width × height` pixels (the reference's NDC → pixel mapping: NDC ±1 on the centres of
    /// the first and last pixel, row 0 at NDC y = −1, which is the object's top).
    pub fn paint(view: &PaintView, mesh: &PaintNormalization, width: usize, height: usize) -> Self {
        let mvp = view.mvp_f64();
        // Mesh frame → renderer frame (−x, z, −y), centred and scaled: r = A·p + b.
        let s = f64::from(mesh.scale);
        let c = mesh.center.map(f64::from);
        let a_rows: [[f64; 3]; 3] = [[-s, 0.0, 0.0], [0.0, 0.0, s], [0.0, -s, 0.0]];
        let b = [-c[0] * s, -c[1] * s, -c[2] * s];
        // Clip rows composed with the normalisation.
        let clip = |row: usize| -> [f64; 4] {
            let m = mvp[row];
            let mut out = [0f64; 4];
            for (j, o) in out.iter_mut().enumerate().take(3) {
                *o = (0..3).map(|k| m[k] * a_rows[k][j]).sum();
            }
            out[3] = (0..3).map(|k| m[k] * b[k]).sum::<f64>() + m[3];
            out
        };
        let (wf, hf) = ((width as f64 - 1.0), (height as f64 - 1.0));
        // x_px = (x·0.5 + 0.5)·(W − 1) + 0.5, likewise y; depth = z·0.49999 + 0.5 (w = 1).
        let screen = |row: [f64; 4], scale: f64, offset: f64| -> [f32; 4] {
            [
                (row[0] * scale) as f32,
                (row[1] * scale) as f32,
                (row[2] * scale) as f32,
                (row[3] * scale + offset) as f32,
            ]
        };
        let x = screen(clip(0), 0.5 * wf, 0.5 * wf + 0.5);
        let y = screen(clip(1), 0.5 * hf, 0.5 * hf + 0.5);
        let z = screen(clip(2), 0.49999, 0.5);
        let (el, az) = (view.elevation.to_radians(), view.azimuth.to_radians());
        let toward = [el.cos() * az.sin(), el.sin(), el.cos() * az.cos()];
        let half = f64::from(ORTHO_HALF_EXTENT);
        OrthoView {
            width,
            height,
            rows: [x, y, z],
            toward_viewer: toward.map(|v| v as f32),
            pixel_size: (2.0 * half / wf.max(1.0) / s) as f32,
            depth_per_unit: (f64::from(mvp_depth_scale()) * s * 0.49999) as f32,
        }
    }
}

/// One of Hunyuan3D-Paint's camera views.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaintView {
    pub azimuth: f64,
    pub elevation: f64,
    /// Its weight in the bake's merge.
    pub weight: f32,
}

/// The reference's six views (`candidate_camera_azims`, `_elevs`, `_view_weights`): front,
/// right, back, left, top, bottom.
pub const PAINT_VIEWS: [PaintView; 6] = [
    PaintView {
        azimuth: 0.0,
        elevation: 0.0,
        weight: 1.0,
    },
    PaintView {
        azimuth: 90.0,
        elevation: 0.0,
        weight: 0.1,
    },
    PaintView {
        azimuth: 180.0,
        elevation: 0.0,
        weight: 0.5,
    },
    PaintView {
        azimuth: 270.0,
        elevation: 0.0,
        weight: 0.1,
    },
    PaintView {
        azimuth: 0.0,
        elevation: 90.0,
        weight: 0.05,
    },
    PaintView {
        azimuth: 180.0,
        elevation: -90.0,
        weight: 0.05,
    },
];

/// The reference camera's distance from the origin and orthographic bounds.
pub const CAMERA_DISTANCE: f64 = 1.45;
const ORTHO_HALF_EXTENT: f32 = 0.6;
const NEAR: f64 = 0.1;
const FAR: f64 = 100.0;
/// The radius-ish the renderer scales meshes to (`scale_factor`): a ball of diameter 1.15.
pub const MESH_SCALE_FACTOR: f32 = 1.15;

fn mvp_depth_scale() -> f32 {
    (2.0 / (FAR - NEAR)) as f32
}

fn normalize(v: [f64; 3]) -> [f64; 3] {
    let l = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    v.map(|x| x / l)
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

impl PaintView {
    /// The world-to-camera matrix (`get_mv_matrix`), row-major, in the renderer frame; computed
    /// in f64 and rounded to f32 as the reference does.
    pub fn view_matrix(&self) -> [[f32; 4]; 4] {
        self.view_f64().map(|r| r.map(|v| v as f32))
    }

    fn view_f64(&self) -> [[f64; 4]; 4] {
        let e = (-self.elevation).to_radians();
        let a = (self.azimuth + 90.0).to_radians();
        let d = CAMERA_DISTANCE;
        let eye = [d * e.cos() * a.cos(), d * e.cos() * a.sin(), d * e.sin()];
        let look = normalize(eye.map(|v| -v));
        let right = normalize(cross(look, [0.0, 0.0, 1.0]));
        let up = normalize(cross(right, look));
        let back = look.map(|v| -v);
        let row = |axis: [f64; 3]| {
            [
                axis[0],
                axis[1],
                axis[2],
                -(axis[0] * eye[0] + axis[1] * eye[1] + axis[2] * eye[2]),
            ]
        };
        [row(right), row(up), row(back), [0.0, 0.0, 0.0, 1.0]]
    }

    /// The orthographic projection (`get_orthographic_projection_matrix` with the renderer's
    /// bounds ±0.6, near 0.1, far 100), row-major.
    pub fn projection_matrix() -> [[f32; 4]; 4] {
        Self::projection_f64().map(|r| r.map(|v| v as f32))
    }

    fn projection_f64() -> [[f64; 4]; 4] {
        let (l, r) = (-f64::from(ORTHO_HALF_EXTENT), f64::from(ORTHO_HALF_EXTENT));
        let (b, t) = (l, r);
        [
            [2.0 / (r - l), 0.0, 0.0, -(r + l) / (r - l)],
            [0.0, 2.0 / (t - b), 0.0, -(t + b) / (t - b)],
            [0.0, 0.0, -2.0 / (FAR - NEAR), -(FAR + NEAR) / (FAR - NEAR)],
            [0.0, 0.0, 0.0, 1.0],
        ]
    }

    /// `projection · view` of the f32 matrices, in f32 (the reference's `mvp`).
    pub fn mvp(&self) -> [[f32; 4]; 4] {
        let (p, v) = (Self::projection_matrix(), self.view_matrix());
        let mut out = [[0f32; 4]; 4];
        for (i, row) in out.iter_mut().enumerate() {
            for (j, o) in row.iter_mut().enumerate() {
                *o = (0..4).map(|k| p[i][k] * v[k][j]).sum();
            }
        }
        out
    }

    /// The MVP of the f32 matrices, kept in f64 for composing with other maps.
    fn mvp_f64(&self) -> [[f64; 4]; 4] {
        let (p, v) = (Self::projection_matrix(), self.view_matrix());
        let mut out = [[0f64; 4]; 4];
        for (i, row) in out.iter_mut().enumerate() {
            for (j, o) in row.iter_mut().enumerate() {
                *o = (0..4)
                    .map(|k| f64::from(p[i][k]) * f64::from(v[k][j]))
                    .sum();
            }
        }
        out
    }
}

/// How the renderer places a mesh (`set_mesh`): in its frame `(−x, z, −y)`, centred on the
/// bounding box and scaled into a ball of diameter [`MESH_SCALE_FACTOR`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaintNormalization {
    /// Bounding-box centre, renderer frame.
    pub center: [f32; 3],
    /// Multiplier from renderer-frame units to normalised units.
    pub scale: f32,
}

impl PaintNormalization {
    pub fn of(positions: &[[f32; 3]]) -> PaintNormalization {
        let renderer: Vec<[f32; 3]> = positions.iter().map(|p| [-p[0], p[2], -p[1]]).collect();
        let mut lo = [f32::INFINITY; 3];
        let mut hi = [f32::NEG_INFINITY; 3];
        for p in &renderer {
            for k in 0..3 {
                lo[k] = lo[k].min(p[k]);
                hi[k] = hi[k].max(p[k]);
            }
        }
        let center = [0, 1, 2].map(|k| (hi[k] + lo[k]) / 2.0);
        let radius = renderer
            .iter()
            .map(|p| {
                let d = [0, 1, 2].map(|k| p[k] - center[k]);
                (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt()
            })
            .fold(0f32, f32::max);
        let scale = (f64::from(MESH_SCALE_FACTOR) / f64::from(2.0 * radius)) as f32;
        PaintNormalization { center, scale }
    }

    /// A mesh-frame point in the normalised renderer frame.
    pub fn apply(&self, p: [f32; 3]) -> [f32; 3] {
        let r = [-p[0], p[2], -p[1]];
        [0, 1, 2].map(|k| (r[k] - self.center[k]) * self.scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_view_agrees_with_the_frame_projection() {
        let frame = ViewFrame::FRONT_Z;
        let view = OrthoView::from_frame(&frame, 512);
        for p in [[0.3, -0.7, 0.2], [-1.0, 1.0, -0.5], [0.0, 0.0, 0.0]] {
            let [x, y, d] = view.project(p);
            let (u, v) = frame.project(p, 512);
            // ViewFrame gives continuous coordinates with centres at integers.
            assert!((x - 0.5 - u).abs() < 1e-4 && (y - 0.5 - v).abs() < 1e-4);
            assert!(
                (d - (0.5 - p[2] / 4.0)).abs() < 1e-6,
                "nearer the viewer is smaller"
            );
        }
        let back = view.from_behind();
        let [x, y, d] = back.project([0.3, -0.7, 0.2]);
        let [xf, yf, df] = view.project([0.3, -0.7, 0.2]);
        assert_eq!((x, y), (xf, yf));
        assert!((d - (1.0 - df)).abs() < 1e-6);
    }

    #[test]
    fn paint_views_look_from_where_the_reference_says() {
        // A point in front of the mesh (+Z) is nearer to view 0 than the centre, and appears
        // right of centre when it lies on +X; view 2 (from −Z) sees it mirrored and farther.
        let norm = PaintNormalization {
            center: [0.0; 3],
            scale: 1.0,
        };
        let v0 = OrthoView::paint(&PAINT_VIEWS[0], &norm, 65, 65);
        let v2 = OrthoView::paint(&PAINT_VIEWS[2], &norm, 65, 65);
        let c0 = v0.project([0.0, 0.0, 0.0]);
        assert!(
            (c0[0] - 32.5).abs() < 1e-4 && (c0[1] - 32.5).abs() < 1e-4,
            "{c0:?}"
        );
        let p = v0.project([0.3, 0.2, 0.3]);
        assert!(p[0] > c0[0] && p[1] < c0[1] && p[2] < c0[2], "{p:?}");
        let q = v2.project([0.3, 0.2, 0.3]);
        assert!(q[0] < c0[0] && q[2] > c0[2], "{q:?}");
        assert_eq!(v0.toward_viewer.map(|v| v.round()), [0.0, 0.0, 1.0]);
    }
}
