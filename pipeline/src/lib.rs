//! ORFEAS compute pipeline: pure computation, no async runtime, HTTP, SQL or AMQP.
//!
//! The five stages, named as everywhere else in the system (the names come from
//! `orfeas-vocab`): `image_loading` → `image_preprocessing` → `shape_generation` →
//! `texture_synthesis` → `mesh_export`. [`Pipeline::run_batch`] drives them for a batch of
//! images; each stage is a tracing span and a timed entry in the typed [`ItemReport`].

pub mod control;
pub mod diffusion;
pub mod error;
pub mod export;
pub mod image;
pub mod mesh;
pub mod pipeline;
pub mod segmentation;
pub mod shape;
pub mod stage;
pub mod tensor;
pub mod texture;

pub use control::{Control, ProgressFn};
pub use error::PipelineError;
pub use orfeas_vocab::{Artifact, MeshFormat, Stage, StageTimings, Step};
pub use pipeline::{
    BatchItem, ItemOutput, ItemReport, JobOptions, MeshStats, NoProgress, Pipeline,
    ProgressObserver,
};
