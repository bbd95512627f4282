//! Back-projection of view images into a UV texture, as Hunyuan3D-Paint bakes its views: each
//! texel that a view sees reliably takes that view's colour with the weight
//! `view weight · cos⁴` (the cosine between the surface normal and the direction to the viewer,
//! `bake_exp` 4; zero beyond 75°), and the views are merged by their weighted mean in order,
//! skipping a view whose texels are 99 % painted already (the reference's "fast" merge).
//! Unreliable view pixels are dropped as the reference drops them: those within
//! `2/512 · resolution` pixels of the silhouette or of a depth discontinuity.
//!
//! The reference splats each view's pixels into the texture; this bake gathers instead: every
//! texel of the UV raster finds its surface point, projects it into each view, tests visibility
//! against the view's depth buffer and samples the image bilinearly. The weights, the masks and
//! the merge are the same; gathering leaves no pinholes where a view's pixels are sparser than
//! texels. Depth discontinuities are found by the Sobel magnitude of the 8-bit normalised depth
//! image above Canny's high threshold (80); the reference's Canny adds weak edges joined to those
//! and thins them, which the dilation that follows makes immaterial.

use rayon::prelude::*;

use super::camera::OrthoView;
use super::raster::{NO_FACE, Raster, Rasterizer, cover_conservatively};
use super::source::SourceImage;
use crate::mesh::Mesh;

/// The exponent of the cosine weighting (the reference's `bake_exp`).
pub const BAKE_EXP: i32 = 4;

/// Views grazing the surface beyond 75° (`bake_angle_thres`) do not paint it.
pub const MIN_COS: f32 = 0.258_819_04;

/// A view is skipped when more of its texels than this are painted already.
const SKIP_PAINTED: f64 = 0.99;

/// Canny's high threshold on the 8-bit depth image, above which a depth step is an edge.
const DEPTH_EDGE: i32 = 80;

/// How many pixel sizes a point may lie behind a view's depth buffer and still be visible: the
/// buffer holds depth at pixel centres, the point lies anywhere in its pixel, and a sloped
/// surface changes depth across it.
const DEPTH_TOLERANCE_PX: f32 = 2.0;

/// Which view pixels a bake trusts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BakeRules {
    /// A view paints a texel only where the cosine reaches this.
    pub min_cos: f32,
    /// Drop pixels near the silhouette and depth discontinuities (the reference's
    /// `2/512 · resolution` border), where generated views blend object and background.
    pub drop_borders: bool,
}

impl BakeRules {
    /// Hunyuan3D-Paint's rules for its six generated views.
    pub const REFERENCE: BakeRules = BakeRules {
        min_cos: MIN_COS,
        drop_borders: true,
    };
    /// One photo as the front view and its mirror as the back: no other view can paint the
    /// sides, and the image's rim colours are already replaced by interior ones
    /// ([`SourceImage`]), so every surface facing a view takes its colour, as vertex colours do.
    pub const SINGLE_IMAGE: BakeRules = BakeRules {
        min_cos: f32::MIN_POSITIVE,
        drop_borders: false,
    };
}

/// One image to bake from.
#[derive(Debug, Clone, Copy)]
pub struct BakeView<'a> {
    pub view: OrthoView,
    pub image: &'a SourceImage,
    /// The view's weight in the merge (the reference's `view_weights`).
    pub weight: f32,
}

/// The texture after back-projection, before inpainting.
#[derive(Debug, Clone)]
pub struct Baked {
    pub size: usize,
    /// sRGB colours 0–255 (zero where unseen).
    pub rgb: Vec<[f32; 3]>,
    /// Merged weight per texel; positive where a view saw the texel.
    pub weight: Vec<f32>,
    /// Which face each texel lies on, with its barycentrics (the UV raster).
    pub uv: Raster,
}

impl Baked {
    pub fn seen(&self, texel: usize) -> bool {
        self.weight[texel] > 0.0
    }
}

/// How far from a face, in texels, a texel still belongs to it: the half-diagonal of a texel, so
/// every texel a face touches is the face's.
const UV_REACH: f32 = std::f32::consts::FRAC_1_SQRT_2;

/// Rasterizes the mesh's UVs at `size`² texels, conservatively: every texel a face touches
/// belongs to a face, so faces thinner than a texel still own the texels under them.
pub fn uv_raster(rasterizer: &dyn Rasterizer, mesh: &Mesh, size: usize) -> Raster {
    let s = size as f32;
    let corners: Vec<[f32; 3]> = mesh
        .uvs
        .as_ref()
        .map(|uvs| uvs.iter().map(|uv| [uv[0] * s, uv[1] * s, 0.0]).collect())
        .unwrap_or_default();
    let mut raster = rasterizer.rasterize(&corners, &mesh.triangles, size, size);
    cover_conservatively(&mut raster, &corners, &mesh.triangles, UV_REACH);
    raster
}

/// The reference's unreliable-border radius for a render of this size.
pub fn unreliable_radius(view: &OrthoView) -> usize {
    (2.0 / 512.0 * view.width.max(view.height) as f64) as usize
}

/// Pixels of a view whose colour can be trusted: covered, at least `radius` pixels (Chebyshev)
/// from any uncovered pixel inside the image, and as far from a depth discontinuity.
/// `min_range`: the smallest depth range normalised to the full 8 bits, so a surface facing the
/// view (all one depth, up to rounding) shows no edges.
pub fn reliable_pixels(raster: &Raster, radius: usize, min_range: f32) -> Vec<bool> {
    let (w, h) = (raster.width, raster.height);
    let edges = depth_edges(raster, min_range);
    let bad: Vec<bool> = (0..w * h).map(|p| !raster.covered(p) || edges[p]).collect();
    let near_bad = box_any(&bad, w, h, radius);
    (0..w * h)
        .map(|p| raster.covered(p) && !near_bad[p])
        .collect()
}

/// Depth discontinuities: Sobel magnitude `|dx| + |dy|` of the 8-bit depth image (nearest
/// covered depth 255, farthest 0, background 0; borders replicated) above [`DEPTH_EDGE`].
fn depth_edges(raster: &Raster, min_range: f32) -> Vec<bool> {
    let (w, h) = (raster.width, raster.height);
    let covered = (0..w * h).filter(|&p| raster.covered(p));
    let (lo, hi) = covered.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), p| {
        (lo.min(raster.depth[p]), hi.max(raster.depth[p]))
    });
    let range = (hi - lo).max(min_range);
    let img: Vec<i32> = (0..w * h)
        .map(|p| {
            if raster.covered(p) && range > 0.0 {
                (((hi - raster.depth[p]) / range) * 255.0) as i32
            } else if raster.covered(p) {
                255
            } else {
                0
            }
        })
        .collect();
    let at = |x: isize, y: isize| {
        let x = x.clamp(0, w as isize - 1) as usize;
        let y = y.clamp(0, h as isize - 1) as usize;
        img[y * w + x]
    };
    (0..w * h)
        .into_par_iter()
        .map(|p| {
            let (x, y) = ((p % w) as isize, (p / w) as isize);
            let dx = (at(x + 1, y - 1) + 2 * at(x + 1, y) + at(x + 1, y + 1))
                - (at(x - 1, y - 1) + 2 * at(x - 1, y) + at(x - 1, y + 1));
            let dy = (at(x - 1, y + 1) + 2 * at(x, y + 1) + at(x + 1, y + 1))
                - (at(x - 1, y - 1) + 2 * at(x, y - 1) + at(x + 1, y - 1));
            dx.abs() + dy.abs() > DEPTH_EDGE
        })
        .collect()
}

/// Whether any set pixel lies within `radius` (Chebyshev) of each pixel, by a summed-area table.
fn box_any(set: &[bool], w: usize, h: usize, radius: usize) -> Vec<bool> {
    let mut sat = vec![0u32; (w + 1) * (h + 1)];
    for y in 0..h {
        let mut row = 0u32;
        for x in 0..w {
            row += u32::from(set[y * w + x]);
            sat[(y + 1) * (w + 1) + x + 1] = sat[y * (w + 1) + x + 1] + row;
        }
    }
    (0..w * h)
        .into_par_iter()
        .map(|p| {
            let (x, y) = (p % w, p / w);
            let (x0, y0) = (x.saturating_sub(radius), y.saturating_sub(radius));
            let (x1, y1) = ((x + radius + 1).min(w), (y + radius + 1).min(h));
            let s = sat[y1 * (w + 1) + x1] + sat[y0 * (w + 1) + x0]
                - sat[y0 * (w + 1) + x1]
                - sat[y1 * (w + 1) + x0];
            s > 0
        })
        .collect()
}

/// Bakes `views` into a `size`² texture of the UV-mapped `mesh` (`normals`: one unit normal per
/// vertex).
pub fn back_project(
    rasterizer: &dyn Rasterizer,
    mesh: &Mesh,
    normals: &[[f32; 3]],
    views: &[BakeView<'_>],
    size: usize,
    rules: BakeRules,
) -> Baked {
    let uv = uv_raster(rasterizer, mesh, size);
    let points = uv.interpolate(&mesh.triangles, &mesh.positions);
    let texel_normals = uv.interpolate(&mesh.triangles, normals);
    let n = size * size;
    let mut sum = vec![[0f32; 3]; n];
    let mut trust = vec![0f32; n];
    for bv in views {
        let (colour, weight) = view_texels(rasterizer, mesh, bv, &points, &texel_normals, rules);
        let view_sum = weight.iter().filter(|&&w| w > 0.0).count();
        let painted = weight
            .iter()
            .zip(&trust)
            .filter(|&(&w, &t)| w > 0.0 && t > 0.0)
            .count();
        if view_sum > 0 && painted as f64 / view_sum as f64 > SKIP_PAINTED {
            continue;
        }
        sum.par_iter_mut()
            .zip(trust.par_iter_mut())
            .zip(colour.par_iter().zip(&weight))
            .for_each(|((acc, t), (c, &w))| {
                if w > 0.0 {
                    for k in 0..3 {
                        acc[k] += w * c[k];
                    }
                    *t += w;
                }
            });
    }
    let rgb = sum
        .into_iter()
        .zip(&trust)
        .map(|(s, &w)| if w > 0.0 { s.map(|v| v / w) } else { [0.0; 3] })
        .collect();
    Baked {
        size,
        rgb,
        weight: trust,
        uv,
    }
}

/// One view's colour and weight per texel (weight 0 where it does not see the texel reliably).
fn view_texels(
    rasterizer: &dyn Rasterizer,
    mesh: &Mesh,
    bv: &BakeView<'_>,
    points: &[Option<[f32; 3]>],
    texel_normals: &[Option<[f32; 3]>],
    rules: BakeRules,
) -> (Vec<[f32; 3]>, Vec<f32>) {
    let corners: Vec<[f32; 3]> = mesh.positions.iter().map(|&p| bv.view.project(p)).collect();
    let depth = rasterizer.rasterize(&corners, &mesh.triangles, bv.view.width, bv.view.height);
    // A depth range under the span of the image's width counts as flat.
    let flat = bv.view.width as f32 * bv.view.pixel_size * bv.view.depth_per_unit / 8.0;
    let reliable = if rules.drop_borders {
        reliable_pixels(&depth, unreliable_radius(&bv.view), flat)
    } else {
        (0..depth.face.len()).map(|p| depth.covered(p)).collect()
    };
    let tolerance = DEPTH_TOLERANCE_PX * bv.view.pixel_size * bv.view.depth_per_unit;
    points
        .par_iter()
        .zip(texel_normals)
        .map(|(p, nrm)| {
            let none = ([0f32; 3], 0f32);
            let (Some(p), Some(nrm)) = (p, nrm) else {
                return none;
            };
            let len = (nrm[0] * nrm[0] + nrm[1] * nrm[1] + nrm[2] * nrm[2]).sqrt();
            if len == 0.0 {
                return none;
            }
            let to = bv.view.toward_viewer;
            let cos = (nrm[0] * to[0] + nrm[1] * to[1] + nrm[2] * to[2]) / len;
            if cos < rules.min_cos {
                return none;
            }
            let [x, y, d] = bv.view.project(*p);
            if !(x >= 0.0 && y >= 0.0) {
                return none;
            }
            let (i, j) = (x as usize, y as usize);
            if i >= depth.width || j >= depth.height {
                return none;
            }
            let k = j * depth.width + i;
            if !reliable[k] || depth.face[k] == NO_FACE || d > depth.depth[k] + tolerance {
                return none;
            }
            (
                bv.image.sample(x - 0.5, y - 0.5),
                bv.weight * cos.powi(BAKE_EXP),
            )
        })
        .unzip()
}
