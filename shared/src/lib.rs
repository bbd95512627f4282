//! ORFEAS shared layer: domain types, configuration, error codes, and the clients for
//! PostgreSQL (jobs and ledger), RabbitMQ (job queue), Redis (worker heartbeats) and object
//! storage. The API and the worker build on it; the pipeline stays free of all of it.

pub mod config;
pub mod db;
pub mod domain;
pub mod errors;
pub mod heartbeat;
pub mod queue;
pub mod storage;

pub use config::Config;
pub use domain::{JobId, JobSpec, JobStatus};
// The vocabulary that must match everywhere is defined once, in the pipeline.
pub use orfeas_pipeline::{MeshFormat, Stage, image::BackgroundMode};
pub mod metrics;
pub mod performance;
pub mod telemetry;
