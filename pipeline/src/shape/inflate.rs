//! The weights-free `inflate` engine: the silhouette's exact Euclidean distance transform
//! becomes a smooth height profile `h = κ·sqrt(d·(2R − d))` (d: signed distance to the outline,
//! R: largest inscribed radius, κ: inflation), sampled as the occupancy field
//! `f = (κ²·d·(2R − d) − z²) / 2R` on the same (R+1)³ grid over [-1.01, 1.01]³ that Hunyuan3D-2
//! decodes, then meshed by the shared marching cubes. A disk therefore inflates to a sphere.

use orfeas_vocab::{Engine, Step};

use super::engine::{GeneratedShape, ShapeEngine, ShapeRequest, ViewFrame};
use super::mc::{Volume, marching_cubes_until};
use crate::error::ShapeError;
use crate::image::PreprocessedImage;
use crate::image::edt::distance_transform;
use crate::stage::step_span;

/// Half-width of the decoding box, as in Hunyuan3D-2 (`box_v = 1.01`).
pub const BOX_HALF_EXTENT: f32 = 1.01;

#[derive(Debug, Default, Clone, Copy)]
pub struct InflateEngine;

impl ShapeEngine for InflateEngine {
    fn engine(&self) -> Engine {
        Engine::Inflate
    }

    fn generate(&self, batch: &[ShapeRequest<'_>]) -> Vec<Result<GeneratedShape, ShapeError>> {
        batch.iter().map(inflate_one).collect()
    }
}

fn inflate_one(req: &ShapeRequest<'_>) -> Result<GeneratedShape, ShapeError> {
    req.options.validate()?;
    let res = req.options.octree_resolution as usize;
    let kappa = req.options.inflation;
    if req.control.should_stop() {
        return Err(ShapeError::Stopped);
    }
    let volume = {
        let span = step_span(Step::VolumeDecoding, &req.span);
        span.record("resolution", res);
        span.record("batch", 1);
        span.in_scope(|| occupancy_volume(req.image, res, kappa))?
    };
    req.control.progress(Step::VolumeDecoding, 1, 1);
    let mut mesh = step_span(Step::SurfaceExtraction, &req.span)
        .in_scope(|| {
            marching_cubes_until(&volume, 0.0, |layer, layers| {
                req.control.progress(Step::SurfaceExtraction, layer, layers);
                !req.control.should_stop()
            })
        })
        .ok_or(ShapeError::Stopped)?;
    if mesh.is_empty() {
        return Err(ShapeError::EmptySurface {
            reason: "the silhouette is too small for the grid resolution".into(),
        });
    }
    let step = 2.0 * BOX_HALF_EXTENT / res as f32;
    mesh.transform([-BOX_HALF_EXTENT; 3], [step; 3]);
    Ok(GeneratedShape {
        mesh,
        frame: ViewFrame::FRONT_Z,
    })
}

/// Signed distance to the silhouette's outline in world units (positive inside), per pixel.
fn signed_distance(image: &PreprocessedImage) -> Vec<f32> {
    let s = image.size;
    let fg: Vec<bool> = image.mask.iter().map(|&m| m != 0).collect();
    let bg: Vec<bool> = fg.iter().map(|b| !b).collect();
    // Distance from foreground pixels to the background, and from background to foreground;
    // the outline lies half a pixel from each side's nearest pixel centre.
    let to_bg = distance_transform(&bg, s, s);
    let to_fg = distance_transform(&fg, s, s);
    let px = 2.0 / s as f32;
    (0..s * s)
        .map(|i| {
            if fg[i] {
                (to_bg.sq_dist[i].sqrt() - 0.5) * px
            } else {
                -(to_fg.sq_dist[i].sqrt() - 0.5) * px
            }
        })
        .collect()
}

/// The occupancy volume the engine meshes: `(res + 1)³` samples over [-1.01, 1.01]³, positive
/// inside (exposed for benchmarks and tests).
pub fn occupancy_volume(
    image: &PreprocessedImage,
    res: usize,
    kappa: f32,
) -> Result<Volume, ShapeError> {
    let s = image.size;
    let sd = signed_distance(image);
    let r_max = sd.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if r_max.is_nan() || r_max <= 0.0 {
        return Err(ShapeError::EmptySurface {
            reason: "the mask has no interior".into(),
        });
    }
    let n = res + 1;
    let step = 2.0 * BOX_HALF_EXTENT / res as f32;
    let coord = |i: usize| -BOX_HALF_EXTENT + i as f32 * step;
    let sample = |x: f32, y: f32| -> f32 {
        let u = ((x + 1.0) / 2.0 * s as f32 - 0.5).clamp(0.0, (s - 1) as f32);
        let v = ((1.0 - y) / 2.0 * s as f32 - 0.5).clamp(0.0, (s - 1) as f32);
        let (u0, v0) = (u.floor() as usize, v.floor() as usize);
        let (u1, v1) = ((u0 + 1).min(s - 1), (v0 + 1).min(s - 1));
        let (fu, fv) = (u - u0 as f32, v - v0 as f32);
        let at = |uu: usize, vv: usize| sd[vv * s + uu];
        let top = at(u0, v0) * (1.0 - fu) + at(u1, v0) * fu;
        let bottom = at(u0, v1) * (1.0 - fu) + at(u1, v1) * fu;
        top * (1.0 - fv) + bottom * fv
    };
    let z2: Vec<f32> = (0..n).map(|k| coord(k) * coord(k)).collect();
    let inv = 1.0 / (2.0 * r_max * kappa);
    let mut data = Vec::with_capacity(n * n * n);
    for i in 0..n {
        let x = coord(i);
        for j in 0..n {
            let d = sample(x, coord(j));
            let a = kappa * kappa * d * (2.0 * r_max - d);
            data.extend(z2.iter().map(|&zz| (a - zz) * inv));
        }
    }
    Ok(Volume::new([n, n, n], data))
}
