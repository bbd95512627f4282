//! Typed errors of the pipeline, one enum per stage, gathered in [`PipelineError`].
//!
//! Every error names its stage and carries a code of the vocabulary's one table
//! ([`PipelineError::code`]), whose retry class says whether the same input could ever succeed.

use orfeas_vocab::{Artifact, ErrorCode, InvalidOption, MeshFormat, Stage};

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
    /// The segmentation model failed on a well-formed image (a device error, not the input's
    /// fault): retried like an engine failure.
    #[error("the segmentation model failed: {detail}")]
    Model { detail: String },
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
    /// The request's control said stop (deadline passed, canceled) while the engine ran.
    #[error("stopped while running")]
    Stopped,
}

/// Failures of `texture_synthesis` (the `paint` engine's; the weights-free modes cannot fail).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextureError {
    /// The job asks for `paint` and this worker has no paint models.
    #[error(
        "this worker has no paint models (worker.paint_weights and worker.delight_weights); enable `paint` in api.texture_modes only where every worker has them"
    )]
    PaintUnavailable,
    /// The device ran out of memory for this batch; the worker splits the batch and retries.
    #[error("out of device memory: {detail}")]
    OutOfMemory { detail: String },
    #[error("the paint model failed: {detail}")]
    Model { detail: String },
}

/// Failures of `mesh_export`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    #[error("cannot export an empty mesh")]
    EmptyMesh,
    #[error("mesh too large for {format}: {detail}")]
    TooLarge { format: MeshFormat, detail: String },
    /// An artifact's encoder failed (a bug: the inputs are in memory and well-formed).
    #[error("encoding {artifact}: {detail}")]
    Encode { artifact: Artifact, detail: String },
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
    #[error("texture_synthesis: {0}")]
    Texture(#[from] TextureError),
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
            PipelineError::Texture(_) => Stage::TextureSynthesis,
            PipelineError::Export(_) => Stage::MeshExport,
            PipelineError::Canceled { stage } => *stage,
        }
    }

    /// The error's code in the vocabulary's table (HTTP status, retry class).
    pub fn code(&self) -> ErrorCode {
        match self {
            PipelineError::Loading(e) => match e {
                LoadError::Empty => ErrorCode::EmptyInput,
                LoadError::TooManyBytes { .. } => ErrorCode::InputTooLarge,
                LoadError::UnsupportedFormat { .. } => ErrorCode::UnsupportedFormat,
                LoadError::DimensionsTooLarge { .. } | LoadError::TooManyPixels { .. } => {
                    ErrorCode::ImageTooLarge
                }
                LoadError::TooSmall { .. } => ErrorCode::ImageTooSmall,
                LoadError::Truncated { .. } => ErrorCode::TruncatedImage,
                LoadError::Corrupt { .. } => ErrorCode::CorruptImage,
            },
            PipelineError::Preprocessing(e) => match e {
                PreprocessError::NoForeground { .. } => ErrorCode::NoForeground,
                PreprocessError::Model { .. } => ErrorCode::EngineFailure,
            },
            PipelineError::Shape(e) => match e {
                ShapeError::InvalidOption { .. } => ErrorCode::InvalidOption,
                ShapeError::EmptySurface { .. } => ErrorCode::EmptySurface,
                ShapeError::Engine { .. } => ErrorCode::EngineFailure,
                ShapeError::OutOfMemory { .. } => ErrorCode::OutOfMemory,
                ShapeError::Stopped => ErrorCode::Canceled,
            },
            PipelineError::Texture(e) => match e {
                TextureError::PaintUnavailable => ErrorCode::EngineUnavailable,
                TextureError::OutOfMemory { .. } => ErrorCode::OutOfMemory,
                TextureError::Model { .. } => ErrorCode::EngineFailure,
            },
            PipelineError::Export(e) => match e {
                ExportError::EmptyMesh => ErrorCode::EmptyMesh,
                ExportError::TooLarge { .. } => ErrorCode::MeshTooLarge,
                ExportError::Encode { .. } => ErrorCode::Internal,
            },
            PipelineError::Canceled { .. } => ErrorCode::Canceled,
        }
    }

    /// Whether the batch's device ran out of memory (the worker splits the batch).
    pub fn is_out_of_memory(&self) -> bool {
        matches!(
            self,
            PipelineError::Shape(ShapeError::OutOfMemory { .. })
                | PipelineError::Texture(TextureError::OutOfMemory { .. })
        )
    }
}

/// The message of a caught panic (burn's backends panic on device errors).
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// Whether a device error's message says it ran out of memory (CUDA's and cubecl's wordings).
pub fn is_out_of_memory(message: &str) -> bool {
    let lower = message.to_lowercase();
    lower.contains("out of memory")
        || lower.contains("outofmemory")
        || lower.contains("out_of_memory")
}

impl From<InvalidOption> for ShapeError {
    fn from(e: InvalidOption) -> Self {
        ShapeError::InvalidOption {
            field: e.field,
            reason: e.reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use orfeas_vocab::RetryClass;

    use super::*;

    /// Only engine failures and out-of-memory are worth retrying with the same input; the
    /// table's retry classes must say so.
    #[test]
    fn retry_classes_follow_the_failures() {
        let errors = [
            PipelineError::from(LoadError::Empty),
            LoadError::TooManyBytes { size: 2, limit: 1 }.into(),
            LoadError::UnsupportedFormat {
                detail: String::new(),
            }
            .into(),
            LoadError::TooManyPixels {
                pixels: 2,
                max_pixels: 1,
            }
            .into(),
            LoadError::TooSmall {
                width: 1,
                height: 1,
                min_side: 2,
            }
            .into(),
            LoadError::Truncated {
                detail: String::new(),
            }
            .into(),
            LoadError::Corrupt {
                detail: String::new(),
            }
            .into(),
            PreprocessError::NoForeground {
                reason: String::new(),
            }
            .into(),
            ShapeError::InvalidOption {
                field: "x",
                reason: String::new(),
            }
            .into(),
            ShapeError::EmptySurface {
                reason: String::new(),
            }
            .into(),
            TextureError::PaintUnavailable.into(),
            ExportError::EmptyMesh.into(),
            ExportError::TooLarge {
                format: MeshFormat::Glb,
                detail: String::new(),
            }
            .into(),
        ];
        for e in errors {
            assert_eq!(e.code().retry(), RetryClass::Permanent, "{}", e.code());
        }
        for e in [
            PipelineError::from(ShapeError::Engine {
                engine: String::new(),
                detail: String::new(),
            }),
            ShapeError::OutOfMemory {
                detail: String::new(),
            }
            .into(),
            PreprocessError::Model {
                detail: String::new(),
            }
            .into(),
            TextureError::OutOfMemory {
                detail: String::new(),
            }
            .into(),
            TextureError::Model {
                detail: String::new(),
            }
            .into(),
        ] {
            assert_eq!(e.code().retry(), RetryClass::Transient, "{}", e.code());
        }
        let canceled = PipelineError::Canceled {
            stage: Stage::MeshExport,
        };
        assert_eq!(canceled.code().retry(), RetryClass::NotApplicable);
    }
}
