//! The shape-engine interface every engine implements (`inflate` today, `hunyuan3d` later).

use crate::error::ShapeError;
use crate::image::PreprocessedImage;
use crate::mesh::Mesh;

/// Shape options of a job. They mirror Hunyuan3D-2's server and UI; an engine documents which
/// it uses (`inflate` uses `octree_resolution` and `inflation` only).
#[derive(Debug, Clone, PartialEq)]
pub struct ShapeOptions {
    /// Grid resolution of the volume the surface is extracted from, 64..=512.
    pub octree_resolution: u32,
    pub seed: u64,
    pub steps: u32,
    pub guidance_scale: f32,
    /// Query points per decoder call.
    pub num_chunks: u32,
    /// Thickness of an inflated solid relative to a body of revolution (1.0 = sphere from a disk).
    pub inflation: f32,
}

impl Default for ShapeOptions {
    fn default() -> Self {
        ShapeOptions {
            octree_resolution: 256,
            seed: 1234,
            steps: 50,
            guidance_scale: 5.0,
            num_chunks: 8000,
            inflation: 1.0,
        }
    }
}

impl ShapeOptions {
    pub const MIN_RESOLUTION: u32 = 64;
    pub const MAX_RESOLUTION: u32 = 512;

    pub fn validate(&self) -> Result<(), ShapeError> {
        if !(Self::MIN_RESOLUTION..=Self::MAX_RESOLUTION).contains(&self.octree_resolution) {
            return Err(ShapeError::InvalidOption {
                field: "octree_resolution",
                reason: format!(
                    "{} is outside {}..={}",
                    self.octree_resolution,
                    Self::MIN_RESOLUTION,
                    Self::MAX_RESOLUTION
                ),
            });
        }
        if !(1..=200).contains(&self.steps) {
            return Err(ShapeError::InvalidOption {
                field: "steps",
                reason: format!("{} is outside 1..=200", self.steps),
            });
        }
        if !(self.guidance_scale.is_finite() && (0.0..=100.0).contains(&self.guidance_scale)) {
            return Err(ShapeError::InvalidOption {
                field: "guidance_scale",
                reason: format!("{} is outside 0..=100", self.guidance_scale),
            });
        }
        if !(1_000..=1_000_000).contains(&self.num_chunks) {
            return Err(ShapeError::InvalidOption {
                field: "num_chunks",
                reason: format!("{} is outside 1000..=1000000", self.num_chunks),
            });
        }
        if !(self.inflation.is_finite() && (0.05..=4.0).contains(&self.inflation)) {
            return Err(ShapeError::InvalidOption {
                field: "inflation",
                reason: format!("{} is outside 0.05..=4", self.inflation),
            });
        }
        Ok(())
    }
}

/// One image of a batch with its options, and the span its sub-steps (`conditioning`,
/// `denoising`, `volume_decoding`, `surface_extraction`) belong under.
#[derive(Debug, Clone)]
pub struct ShapeRequest<'a> {
    pub image: &'a PreprocessedImage,
    pub options: &'a ShapeOptions,
    pub span: tracing::Span,
}

impl<'a> ShapeRequest<'a> {
    /// A request whose sub-steps go under the current span.
    pub fn new(image: &'a PreprocessedImage, options: &'a ShapeOptions) -> Self {
        ShapeRequest {
            image,
            options,
            span: tracing::Span::current(),
        }
    }
}

/// How mesh coordinates relate to the preprocessed image: the image covers
/// `[-half_extent, half_extent]` along `right` and `up`, seen from `toward_viewer`.
/// Texture synthesis projects along `toward_viewer` with it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewFrame {
    pub right: [f32; 3],
    pub up: [f32; 3],
    pub toward_viewer: [f32; 3],
    pub half_extent: f32,
}

impl ViewFrame {
    /// x right, y up, z toward the viewer, the image spanning [-1, 1]² (glTF's convention).
    pub const FRONT_Z: ViewFrame = ViewFrame {
        right: [1.0, 0.0, 0.0],
        up: [0.0, 1.0, 0.0],
        toward_viewer: [0.0, 0.0, 1.0],
        half_extent: 1.0,
    };

    /// Continuous pixel coordinates (pixel centres at integer + 0.5 → integer) of a point in an
    /// image of `size` pixels.
    pub fn project(&self, p: [f32; 3], size: usize) -> (f32, f32) {
        let dot = |a: [f32; 3]| a[0] * p[0] + a[1] * p[1] + a[2] * p[2];
        let s = size as f32;
        let u = (dot(self.right) / self.half_extent + 1.0) / 2.0 * s - 0.5;
        let v = (1.0 - dot(self.up) / self.half_extent) / 2.0 * s - 0.5;
        (u, v)
    }
}

/// A watertight, outward-oriented mesh in world units and the frame it was built in.
#[derive(Debug, Clone)]
pub struct GeneratedShape {
    pub mesh: Mesh,
    pub frame: ViewFrame,
}

/// A shape engine turns a batch of preprocessed images into meshes. Engines own their models
/// (weights load once when the engine is built) and must be usable from one executor thread
/// for many batches.
pub trait ShapeEngine: Send + Sync + std::fmt::Debug {
    /// The engine's name as used in options and the CLI (`inflate`, `hunyuan3d`).
    fn name(&self) -> &'static str;

    /// One result per request, in order. A failure of the whole batch is reported for each item.
    fn generate(&self, batch: &[ShapeRequest<'_>]) -> Vec<Result<GeneratedShape, ShapeError>>;
}
