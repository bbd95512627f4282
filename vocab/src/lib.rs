//! The ORFEAS vocabulary: the names every layer shares, defined once — pipeline stages and the
//! sub-steps of `shape_generation`, the artifacts a job produces, engines, devices, dtypes,
//! volume decoding, background modes, segmentation methods and texture modes, job ids, statuses, job events, specifications and queue
//! messages, and the one error-code table with each code's HTTP status and retry class.
//!
//! It depends on serde, uuid and chrono only; the `sqlx` and `openapi` features add the
//! PostgreSQL and OpenAPI impls that the service crates need (the orphan rule keeps them here),
//! so the pipeline uses this crate without pulling in either, and the API without the pipeline.

mod names;

pub mod artifact;
pub mod compute;
pub mod error_code;
pub mod event;
pub mod job;
pub mod message;
pub mod options;
pub mod scope;
pub mod segmentation;
pub mod spec;
pub mod stage;
pub mod texture;
pub mod webhook;
pub mod weights;

pub use artifact::{Artifact, MeshFormat};
pub use compute::{Device, Dtype, Engine, UnknownDevice, VolumeDecoding, Workload};
pub use error_code::{ErrorCode, RetryClass};
pub use event::{JobEvent, JobEventData, JobEventKind, overall_percent};
pub use job::{JobId, JobStatus};
pub use message::{JobMessage, MessageError};
pub use names::UnknownName;
pub use options::{BackgroundMode, InvalidOption};
pub use scope::Scope;
pub use segmentation::{Segmentation, SegmentationMethod};
pub use spec::{JobOptionsInput, JobSpec};
pub use stage::{Stage, StageTimings, Step};
pub use texture::{TextureInput, TextureMode};
pub use webhook::{Webhook, WebhookEvent};
pub use weights::{JobWeights, WeightsIdentity};
