//! One typed configuration: built-in defaults, then an optional TOML file, then environment
//! variables `ORFEAS__SECTION__KEY=value` (e.g. `ORFEAS__DATABASE__URL`, `ORFEAS__STORAGE__KIND=s3`).
//! Everything is parsed here, once, into typed values (enums, `Duration`, `SocketAddr`, `Option`
//! for settings that can be off), and every error names its key. Defaults point at this
//! machine's standard ports so every command runs with no configuration. Secrets (URL passwords,
//! the S3 secret key) never appear in `Debug` output or logs.

mod api;
mod load;
mod redact;
mod values;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use orfeas_vocab::{Device, Dtype, Engine, VolumeDecoding};
use serde::Deserialize;

pub use api::{ApiConfig, AuthMode, WebhooksConfig};
pub use load::hostname_or_unknown;
pub use redact::redact_url;
use values::{millis, off_or, seconds, zero_is_none};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("`{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

pub(crate) fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

#[derive(Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub database: DatabaseConfig,
    pub amqp: AmqpConfig,
    pub redis: RedisConfig,
    pub storage: StorageConfig,
    pub api: ApiConfig,
    pub worker: WorkerConfig,
    pub telemetry: TelemetryConfig,
    pub retention: RetentionConfig,
    pub webhooks: WebhooksConfig,
}

/// What is kept, and for how long.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Finished jobs, their stage rows, inputs and outputs are deleted this many days after they
    /// finished (their hourly rollups stay); 0: kept forever.
    pub finished_jobs_days: u32,
    /// Inputs no job names (an API that died mid-submission) are deleted once this old.
    #[serde(rename = "orphan_inputs_after_s", with = "seconds")]
    pub orphan_inputs_after: Duration,
    /// How often the API runs a pass (rollups, then deletions); `orfeas gc` runs one.
    #[serde(rename = "interval_s", with = "seconds")]
    pub interval: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            finished_jobs_days: 30,
            orphan_inputs_after: Duration::from_secs(3_600),
            interval: Duration::from_secs(3_600),
        }
    }
}

impl RetentionConfig {
    pub fn policy(&self) -> crate::retention::RetentionPolicy {
        crate::retention::RetentionPolicy {
            finished_jobs: (self.finished_jobs_days > 0)
                .then(|| Duration::from_secs(u64::from(self.finished_jobs_days) * 86_400)),
            orphan_inputs_after: self.orphan_inputs_after,
        }
    }
}

/// Span export; off unless an endpoint is set.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// OTLP/HTTP traces endpoint, e.g. `http://127.0.0.1:4318/v1/traces`; empty or `off`: none.
    #[serde(deserialize_with = "off_or")]
    pub otlp_endpoint: Option<String>,
    /// Which spans are exported (`RUST_LOG` directive syntax); the log filter is separate.
    pub span_filter: crate::telemetry::SpanFilter,
}

#[derive(Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://user:password@host:port/database`; `orfeas migrate` creates the database.
    pub url: String,
    pub max_connections: u32,
}

#[derive(Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AmqpConfig {
    pub url: String,
    /// The `inflate` jobs queue; other engines' queues, `.retry` and `.dlq` derive from it.
    pub queue: String,
    /// The management API (`http://user:password@host:15672`) through which `orfeas migrate`
    /// applies the jobs queues' backstop policies; off: it prints the `rabbitmqctl` commands.
    #[serde(deserialize_with = "off_or")]
    pub management_url: Option<String>,
    /// Deliveries after which the broker dead-letters a message by itself (a backstop above
    /// `worker.max_attempts`; PostgreSQL counts the attempts).
    pub delivery_limit: u32,
}

#[derive(Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    pub url: String,
    /// Prefix of every key this deployment writes.
    pub key_prefix: String,
}

/// Where inputs and outputs are stored.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum StorageConfig {
    Local {
        path: PathBuf,
    },
    Memory,
    S3 {
        bucket: String,
        /// Custom endpoint for S3-compatible servers (`http://127.0.0.1:8014`); none for AWS.
        #[serde(default, deserialize_with = "off_or")]
        endpoint: Option<String>,
        #[serde(default = "default_region")]
        region: String,
        #[serde(default, deserialize_with = "off_or")]
        access_key_id: Option<String>,
        #[serde(default)]
        secret_access_key: String,
        /// Allow plain-HTTP endpoints (local S3-compatible servers).
        #[serde(default)]
        allow_http: bool,
        /// Path-style requests (`endpoint/bucket/key`), which S3-compatible servers expect.
        #[serde(default = "yes")]
        path_style: bool,
        /// A request the store has not answered by then fails (and is retried a few times).
        #[serde(
            default = "default_request_timeout",
            rename = "request_timeout_ms",
            with = "millis"
        )]
        request_timeout: Duration,
    },
}

fn default_region() -> String {
    "us-east-1".into()
}

fn yes() -> bool {
    true
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
}

#[derive(Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// Stable worker id; default `<hostname>-<pid>`.
    #[serde(deserialize_with = "off_or")]
    pub id: Option<String>,
    /// Most jobs run through the pipeline together (the optimizer decides up to this).
    pub batch_size: usize,
    /// Share of the device's memory batches may fill (the optimizer's target).
    pub target_utilization: f64,
    /// Memory this worker may treat as its device's (0 or absent: all of it), for workers that
    /// share a machine or run under a container limit.
    #[serde(deserialize_with = "zero_is_none")]
    pub memory_limit_bytes: Option<u64>,
    /// The device this worker computes on and whose memory it reads.
    pub device: Device,
    /// How long to wait for more jobs once one arrived.
    #[serde(rename = "batch_wait_ms", with = "millis")]
    pub batch_wait: Duration,
    /// Attempts for transient failures before the job fails and its message is dead-lettered.
    pub max_attempts: u32,
    #[serde(rename = "retry_base_ms", with = "millis")]
    pub retry_base: Duration,
    #[serde(rename = "retry_max_ms", with = "millis")]
    pub retry_max: Duration,
    #[serde(rename = "heartbeat_interval_ms", with = "millis")]
    pub heartbeat_interval: Duration,
    #[serde(rename = "heartbeat_ttl_ms", with = "millis")]
    pub heartbeat_ttl: Duration,
    /// A job's step progress (denoising steps, decoding chunks, marching-cubes layers) is
    /// recorded at most this often, so streams get about two updates a second.
    #[serde(rename = "progress_interval_ms", with = "millis")]
    pub progress_interval: Duration,
    /// A job running longer fails with `job_timeout` (keep under RabbitMQ's consumer_timeout).
    #[serde(rename = "job_timeout_s", with = "seconds")]
    pub job_timeout: Duration,
    /// A running attempt owns its job for this long after each renewal (renewed every heartbeat
    /// interval); a job whose lease expired may be taken over.
    #[serde(rename = "lease_ttl_ms", with = "millis")]
    pub lease_ttl: Duration,
    /// How long a job waits out dependency outages (object store, PostgreSQL, RabbitMQ) before
    /// it fails; waiting does not use its attempts.
    #[serde(rename = "outage_budget_s", with = "seconds")]
    pub outage_budget: Duration,
    /// While idle, the worker asks the broker this often how many messages are ready in its
    /// queue, and must get the answer within the same time. Ready messages on two checks in a
    /// row (its consumer is not being fed) or no answer mean the connection is dead or stalled
    /// without an error: the worker reconnects.
    #[serde(rename = "stall_check_ms", with = "millis")]
    pub stall_check: Duration,
    /// Where `orfeas worker` serves `/metrics`; empty or `off`: nowhere.
    #[serde(deserialize_with = "off_or")]
    pub metrics_listen: Option<SocketAddr>,
    /// Queue for jobs too large for this worker's device even alone (consumed by workers on
    /// larger devices); none: such jobs fail with `insufficient_memory`.
    #[serde(deserialize_with = "off_or")]
    pub overflow_queue: Option<String>,
    /// The shape engine this worker runs (it consumes that engine's queue).
    pub engine: Engine,
    /// The checkpoint folder of engines with weights, loaded once at start-up.
    #[serde(deserialize_with = "off_or")]
    pub weights: Option<PathBuf>,
    /// U²-Net weights for background removal (rembg's `u2net.onnx`/`u2netp.onnx`, the original
    /// `.pth`, or safetensors), loaded once at start-up on `device`; none: photos are segmented
    /// by the weights-free method.
    #[serde(deserialize_with = "off_or")]
    pub segmentation_weights: Option<PathBuf>,
    /// Hunyuan3D-Paint's multiview folder (`hunyuan3d-paint-v2-0` or `-turbo`) for `texture:
    /// paint` jobs, loaded once at start-up on `device` with `delight_weights`; both or neither.
    #[serde(deserialize_with = "off_or")]
    pub paint_weights: Option<PathBuf>,
    /// Hunyuan3D-Paint's delight folder (`hunyuan3d-delight-v2-0`).
    #[serde(deserialize_with = "off_or")]
    pub delight_weights: Option<PathBuf>,
    /// The paint models' image side (512 for the released models).
    pub paint_view_size: usize,
    /// The side the paint engine renders its control maps at and bakes its views from.
    pub paint_render_size: usize,
    pub volume_decoding: VolumeDecoding,
    /// Compute dtype (half precision on CUDA only).
    pub dtype: Dtype,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "postgres://postgres@127.0.0.1:5432/orfeas".into(),
            max_connections: 10,
        }
    }
}

impl Default for AmqpConfig {
    fn default() -> Self {
        AmqpConfig {
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            queue: "orfeas.jobs".into(),
            management_url: None,
            delivery_limit: 20,
        }
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379/".into(),
            key_prefix: "orfeas".into(),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig::Local {
            path: PathBuf::from("orfeas-data"),
        }
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            id: None,
            batch_size: 4,
            target_utilization: 0.85,
            memory_limit_bytes: None,
            device: Device::Cpu,
            batch_wait: Duration::from_millis(50),
            max_attempts: 5,
            retry_base: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(2),
            heartbeat_ttl: Duration::from_secs(10),
            progress_interval: Duration::from_millis(500),
            job_timeout: Duration::from_secs(1_500),
            lease_ttl: Duration::from_secs(30),
            outage_budget: Duration::from_secs(900),
            stall_check: Duration::from_secs(15),
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9187))),
            overflow_queue: None,
            engine: Engine::Inflate,
            weights: None,
            segmentation_weights: None,
            paint_weights: None,
            delight_weights: None,
            paint_view_size: 512,
            paint_render_size: 2048,
            volume_decoding: VolumeDecoding::Hierarchical,
            dtype: Dtype::F32,
        }
    }
}
