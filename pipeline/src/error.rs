//! Typed errors of the pipeline, one enum per stage, gathered in [`PipelineError`].
//!
//! Every error names its stage and carries a stable snake_case code (see [`PipelineError::code`]).
//! The fleet maps codes to HTTP statuses and retry classes in one table; the pipeline itself only
//! says whether retrying the same input could ever succeed ([`PipelineError::is_permanent`]).

use crate::stage::Stage;

/// Failures of `image_loading`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    #[error("the input is empty (0 bytes)")]
    Empty,
    #[error("the input is {size} bytes, over the limit of {limit} bytes")]
    TooManyBytes { size: u64, limit: u64 },
    #[error("unsupported image format: {detail} (supported: PNG, JPEG, WebP)")]
    UnsupportedFormat { detail: String },
    #[error(
        "image is {width}x{height} pixels, over the limit of {max_width}x{max_height} (read from the header, nothing decoded)"
    )]
    DimensionsTooLarge {
        width: u32,
        height: u32,
        max_width: u32,
        max_height: u32,
    },
    #[error(
        "image has {pixels} pixels, over the limit of {max_pixels} (read from the header, nothing decoded)"
    )]
    TooManyPixels { pixels: u64, max_pixels: u64 },
    #[error("image is {width}x{height} pixels; both sides must be at least {min_side}")]
    TooSmall {
        width: u32,
        height: u32,
        min_side: u32,
    },
    #[error("image data is truncated: {detail}")]
    Truncated { detail: String },
    #[error("image data is corrupt: {detail}")]
    Corrupt { detail: String },
}

/// Failures of `image_preprocessing`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreprocessError {
    #[error("no foreground object found: {reason}")]
    NoForeground { reason: String },
}

/// Failures of `shape_generation`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error("invalid option `{field}`: {reason}")]
    InvalidOption { field: &'static str, reason: String },
    #[error("the engine produced no surface: {reason}")]
    EmptySurface { reason: String },
    #[error("shape engine `{engine}` failed: {detail}")]
    Engine { engine: String, detail: String },
    /// The device ran out of memory for this batch; the worker splits the batch and retries.
    #[error("out of device memory: {detail}")]
    OutOfMemory { detail: String },
}

/// Failures of `mesh_export`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    #[error("cannot export an empty mesh")]
    EmptyMesh,
    #[error("mesh too large for {format}: {detail}")]
    TooLarge {
        format: &'static str,
        detail: String,
    },
}

/// Any pipeline failure, tagged with the stage it happened in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    #[error("image_loading: {0}")]
    Loading(#[from] LoadError),
    #[error("image_preprocessing: {0}")]
    Preprocessing(#[from] PreprocessError),
    #[error("shape_generation: {0}")]
    Shape(#[from] ShapeError),
    #[error("mesh_export: {0}")]
    Export(#[from] ExportError),
    /// The caller canceled the item; it stopped before `stage` started.
    #[error("{stage}: canceled before the stage started")]
    Canceled { stage: Stage },
}

impl PipelineError {
    pub fn stage(&self) -> Stage {
        match self {
            PipelineError::Loading(_) => Stage::ImageLoading,
            PipelineError::Preprocessing(_) => Stage::ImagePreprocessing,
            PipelineError::Shape(_) => Stage::ShapeGeneration,
            PipelineError::Export(_) => Stage::MeshExport,
            PipelineError::Canceled { stage } => *stage,
        }
    }

    /// Stable snake_case error code.
    pub fn code(&self) -> &'static str {
        match self {
            PipelineError::Loading(e) => match e {
                LoadError::Empty => "empty_input",
                LoadError::TooManyBytes { .. } => "input_too_large",
                LoadError::UnsupportedFormat { .. } => "unsupported_format",
                LoadError::DimensionsTooLarge { .. } | LoadError::TooManyPixels { .. } => {
                    "image_too_large"
                }
                LoadError::TooSmall { .. } => "image_too_small",
                LoadError::Truncated { .. } => "truncated_image",
                LoadError::Corrupt { .. } => "corrupt_image",
            },
            PipelineError::Preprocessing(PreprocessError::NoForeground { .. }) => "no_foreground",
            PipelineError::Shape(e) => match e {
                ShapeError::InvalidOption { .. } => "invalid_option",
                ShapeError::EmptySurface { .. } => "empty_surface",
                ShapeError::Engine { .. } => "engine_failure",
                ShapeError::OutOfMemory { .. } => "out_of_memory",
            },
            PipelineError::Export(e) => match e {
                ExportError::EmptyMesh => "empty_mesh",
                ExportError::TooLarge { .. } => "mesh_too_large",
            },
            PipelineError::Canceled { .. } => "canceled",
        }
    }

    /// True when retrying with the same input and options cannot succeed.
    pub fn is_permanent(&self) -> bool {
        !matches!(
            self,
            PipelineError::Shape(ShapeError::Engine { .. } | ShapeError::OutOfMemory { .. })
        )
    }
}
