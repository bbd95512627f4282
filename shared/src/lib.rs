//! The services' shared layer: typed configuration, telemetry and metrics setup, and the
//! clients for PostgreSQL (jobs, outbox, ledger, memory model), RabbitMQ (job queues), Redis
//! (worker heartbeats) and object storage, plus the operator read-outs built on them. The
//! vocabulary (stages, artifacts, engines, jobs, error codes) is `orfeas-vocab`'s; the pipeline
//! and burn stay out of this crate, so the API never links them.

pub mod auth;
pub mod config;
pub mod db;
pub mod heartbeat;
pub mod metrics;
pub mod performance;
pub mod queue;
pub mod retention;
pub mod startup;
pub mod storage;
pub mod telemetry;
pub mod webhook;

pub use config::Config;
pub use startup::StartError;
