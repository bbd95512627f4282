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
//! Two implementations behind [`Rasterizer`]: [`HostRasterizer`], bands of rows on the CPU's
//! cores, and [`TensorRasterizer`], tile-binned tensor operations on a burn backend (the GPU's
//! in a worker on CUDA). [`rasterizer_for`] picks the one for a device.

mod host;
mod tensor;

pub use host::{HostRasterizer, cover_conservatively};
pub use tensor::TensorRasterizer;

use orfeas_vocab::Device;
use rayon::prelude::*;

/// The face id of a pixel no triangle covers.
pub const NO_FACE: u32 = u32::MAX;

/// Face ids the tensor rasterizer carries exactly (in f32); meshes with more faces are scanned on
/// the host.
const TENSOR_FACE_LIMIT: usize = 1 << 24;

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
    /// A raster no face covers.
    pub fn empty(width: usize, height: usize) -> Raster {
        let n = width * height;
        Raster {
            width,
            height,
            face: vec![NO_FACE; n],
            bary: vec![[0.0; 3]; n],
            depth: vec![f32::INFINITY; n],
        }
    }

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

/// Scan conversion of triangles into a [`Raster`].
pub trait Rasterizer: Send + Sync {
    /// Rasterizes triangles whose corners are given in screen coordinates `[x, y, depth]`: x to
    /// the right and y down in pixels, pixel `(i, j)` centred at `(i + 0.5, j + 0.5)`, depth in
    /// `[0, 1]` (smaller is nearer). With `w` (each vertex's clip `w`) the barycentrics are
    /// perspective-correct; without, screen-linear (an orthographic view, or UV space).
    fn scan(
        &self,
        screen: &[[f32; 3]],
        w: Option<&[f32]>,
        triangles: &[[u32; 3]],
        width: usize,
        height: usize,
    ) -> Raster;

    /// What runs it, for logs.
    fn name(&self) -> &'static str;
}

impl dyn Rasterizer + '_ {
    /// Screen-linear rasterization of screen-space corners (see [`Rasterizer::scan`]).
    pub fn rasterize(
        &self,
        screen: &[[f32; 3]],
        triangles: &[[u32; 3]],
        width: usize,
        height: usize,
    ) -> Raster {
        self.scan(screen, None, triangles, width, height)
    }

    /// Rasterizes triangles given in homogeneous clip coordinates `(x, y, z, w)`, as the
    /// reference does (perspective-correct barycentrics).
    pub fn rasterize_clip(
        &self,
        clip: &[[f32; 4]],
        triangles: &[[u32; 3]],
        width: usize,
        height: usize,
    ) -> Raster {
        let (screen, w) = clip_to_screen(clip, width, height);
        self.scan(&screen, Some(&w), triangles, width, height)
    }
}

impl std::fmt::Debug for dyn Rasterizer + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// [`Rasterizer::rasterize`] on the host.
pub fn rasterize(
    screen: &[[f32; 3]],
    triangles: &[[u32; 3]],
    width: usize,
    height: usize,
) -> Raster {
    host::scan(screen, None, triangles, width, height)
}

/// [`Rasterizer::rasterize_clip`] on the host.
pub fn rasterize_clip(
    clip: &[[f32; 4]],
    triangles: &[[u32; 3]],
    width: usize,
    height: usize,
) -> Raster {
    (&HostRasterizer as &dyn Rasterizer).rasterize_clip(clip, triangles, width, height)
}

/// The rasterizer for a worker's device: tensor operations on the GPU in a build with the `cuda`
/// feature, the host's cores otherwise (a CPU device, or a build without CUDA, where the GPU
/// serves no stage that rasterizes).
pub fn rasterizer_for(device: Device) -> Box<dyn Rasterizer> {
    match device {
        Device::Cpu => Box::new(HostRasterizer),
        Device::Cuda(index) => cuda(index as usize),
    }
}

#[cfg(feature = "cuda")]
fn cuda(index: usize) -> Box<dyn Rasterizer> {
    Box::new(TensorRasterizer::<crate::tensor::GpuBackend>::new(
        burn_cuda::CudaDevice::new(index),
    ))
}

#[cfg(not(feature = "cuda"))]
fn cuda(_index: usize) -> Box<dyn Rasterizer> {
    Box::new(HostRasterizer)
}

/// The reference's screen mapping of clip coordinates, and each vertex's `w`.
fn clip_to_screen(clip: &[[f32; 4]], width: usize, height: usize) -> (Vec<[f32; 3]>, Vec<f32>) {
    let (wf, hf) = ((width as f32 - 1.0), (height as f32 - 1.0));
    let screen = clip
        .iter()
        .map(|&[x, y, z, w]| {
            [
                ((x / w) * 0.5 + 0.5) * wf + 0.5,
                (0.5 + (0.5 * y) / w) * hf + 0.5,
                (z / w) * 0.49999 + 0.5,
            ]
        })
        .collect();
    (screen, clip.iter().map(|c| c[3]).collect())
}

fn corners(screen: &[[f32; 3]], t: &[u32; 3]) -> Option<[[f32; 3]; 3]> {
    let get = |i: u32| screen.get(i as usize).copied();
    Some([get(t[0])?, get(t[1])?, get(t[2])?])
}

/// The pixels `first..=last` along one axis that the reference's loops visit for a face whose
/// corners have these coordinates: from the truncated minimum while below the maximum plus one,
/// inside `0..len`. `None` when there are none (or a coordinate is not finite).
fn pixel_span(v: [f32; 3], len: usize) -> Option<(usize, usize)> {
    let (lo, hi) = (v[0].min(v[1]).min(v[2]), v[0].max(v[1]).max(v[2]));
    if !(lo.is_finite() && hi.is_finite()) || len == 0 {
        return None;
    }
    let first = (lo as i64).max(0);
    let last = (((hi + 1.0).ceil() as i64) - 1).min(len as i64 - 1);
    (last >= first).then_some((first as usize, last as usize))
}
