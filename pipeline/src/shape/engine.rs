//! The shape-engine interface every engine implements (`inflate`, `hunyuan3d`).

use orfeas_vocab::Engine;
use orfeas_vocab::options::{self, defaults};

use crate::control::Control;
use crate::error::ShapeError;
use crate::image::PreprocessedImage;
use crate::mesh::Mesh;

/// Shape options of a job. They mirror Hunyuan3D-2's server and UI; an engine documents which
/// it uses (`inflate` uses `octree_resolution` and `inflation` only). Ranges and defaults are the
/// vocabulary's (`orfeas_vocab::options`), the same the API and the CLI validate with.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapeOptions {
    /// Grid resolution of the volume the surface is extracted from.
    pub octree_resolution: u32,
    pub seed: u64,
    /// Denoising steps; `None`: the checkpoint's default.
    pub steps: Option<u32>,
    pub guidance_scale: f32,
    /// Query points per decoder call.
    pub num_chunks: u32,
    /// Thickness of an inflated solid relative to a body of revolution (1.0 = sphere from a disk).
    pub inflation: f32,
}

impl Default for ShapeOptions {
    fn default() -> Self {
        ShapeOptions {
            octree_resolution: defaults::OCTREE_RESOLUTION,
            seed: defaults::SEED,
            steps: None,
            guidance_scale: defaults::GUIDANCE_SCALE,
            num_chunks: defaults::NUM_CHUNKS,
            inflation: defaults::INFLATION,
        }
    }
}

impl ShapeOptions {
    /// Checks every option against the vocabulary's ranges.
    pub fn validate(&self) -> Result<(), ShapeError> {
        options::OCTREE_RESOLUTION.check(self.octree_resolution)?;
        if let Some(steps) = self.steps {
            options::STEPS.check(steps)?;
        }
        options::GUIDANCE_SCALE.check(self.guidance_scale)?;
        options::NUM_CHUNKS.check(self.num_chunks)?;
        options::INFLATION.check(self.inflation)?;
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
    /// Consulted inside the engine's loops: stop (with [`ShapeError::Stopped`]) and progress.
    pub control: Control,
}

impl<'a> ShapeRequest<'a> {
    /// A request whose sub-steps go under the current span, with no deadline.
    pub fn new(image: &'a PreprocessedImage, options: &'a ShapeOptions) -> Self {
        ShapeRequest {
            image,
            options,
            span: tracing::Span::current(),
            control: Control::none(),
        }
    }
}

/// Whether every request of a group should stop (a shared computation stops only then; the
/// requests that should stop are failed with [`ShapeError::Stopped`] afterwards).
pub fn all_stopped<'r>(mut reqs: impl Iterator<Item = &'r ShapeRequest<'r>>) -> bool {
    reqs.all(|r| r.control.should_stop())
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
    /// Which engine this is (its name in options, spans, metrics and the CLI).
    fn engine(&self) -> Engine;

    /// One result per request, in order. A failure of the whole batch is reported for each item.
    fn generate(&self, batch: &[ShapeRequest<'_>]) -> Vec<Result<GeneratedShape, ShapeError>>;
}
