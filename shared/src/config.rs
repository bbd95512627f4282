//! One typed configuration: built-in defaults, then an optional TOML file, then environment
//! variables `ORFEAS__SECTION__KEY=value` (e.g. `ORFEAS__DATABASE__URL`, `ORFEAS__STORAGE__KIND=s3`).
//! Everything is parsed here, once, into typed values (enums, `Duration`, `SocketAddr`, `Option`
//! for settings that can be off), and every error names its key. Defaults point at this
//! machine's standard ports so every command runs with no configuration. Secrets (URL passwords,
//! the S3 secret key) never appear in `Debug` output or logs.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use orfeas_vocab::{Device, Dtype, Engine, VolumeDecoding};
use serde::Deserialize;

use crate::config_values::{millis, off_or, seconds, zero_is_none};

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

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
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
}

/// Span export; off unless an endpoint is set.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// OTLP/HTTP traces endpoint, e.g. `http://127.0.0.1:4318/v1/traces`; empty or `off`: none.
    #[serde(deserialize_with = "off_or")]
    pub otlp_endpoint: Option<String>,
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
    },
}

fn default_region() -> String {
    "us-east-1".into()
}

fn yes() -> bool {
    true
}

#[derive(Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    pub listen: SocketAddr,
    /// Largest accepted upload; larger ones are refused with 413 while streaming.
    pub max_upload_bytes: u64,
    /// Submissions are refused with 429 while this many jobs wait.
    pub max_queued_jobs: i64,
    /// How often the outbox relay republishes jobs the queue has not confirmed.
    #[serde(rename = "outbox_interval_ms", with = "millis")]
    pub outbox_interval: Duration,
    /// Engines clients may ask for; each has its own queue, consumed by the workers configured
    /// with that `worker.engine`.
    pub engines: Vec<Engine>,
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
    /// A job running longer fails with `job_timeout` (keep under RabbitMQ's consumer_timeout).
    #[serde(rename = "job_timeout_s", with = "seconds")]
    pub job_timeout: Duration,
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

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_upload_bytes: 20 * 1024 * 1024,
            max_queued_jobs: 10_000,
            outbox_interval: Duration::from_secs(1),
            engines: vec![Engine::Inflate],
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
            job_timeout: Duration::from_secs(1_500),
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9187))),
            overflow_queue: None,
            engine: Engine::Inflate,
            weights: None,
            volume_decoding: VolumeDecoding::Hierarchical,
            dtype: Dtype::F32,
        }
    }
}

impl Config {
    /// Defaults, then `file` (if given), then `ORFEAS__…` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Syntax {
                        path: path.to_owned(),
                        message: e.to_string(),
                    })?
            }
            None => toml::Table::new(),
        };
        for (key, value) in env {
            let Some(rest) = key.strip_prefix("ORFEAS__") else {
                continue;
            };
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            set_path(&mut table, &path, parse_env_value(&value), &key)?;
        }
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let key = e.path().to_string();
                invalid(&key, e.into_inner().to_string())
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Defaults, the file named by `ORFEAS_CONFIG` (or `file`), and the process environment.
    pub fn from_env(file: Option<&Path>) -> Result<Config, ConfigError> {
        let from_var = std::env::var_os("ORFEAS_CONFIG").map(PathBuf::from);
        let file = file.map(Path::to_owned).or(from_var);
        Config::load(file.as_deref(), std::env::vars())
    }

    /// The rules serde cannot express: ranges and relations between keys.
    fn validate(&self) -> Result<(), ConfigError> {
        let w = &self.worker;
        if w.batch_size == 0 || w.batch_size > usize::from(u16::MAX) {
            return Err(invalid("worker.batch_size", "must be 1 to 65535"));
        }
        if !(0.05..=1.0).contains(&w.target_utilization) {
            return Err(invalid(
                "worker.target_utilization",
                "must be within 0.05..=1",
            ));
        }
        if w.max_attempts == 0 {
            return Err(invalid("worker.max_attempts", "must be at least 1"));
        }
        if w.retry_base.is_zero() || w.retry_max < w.retry_base {
            return Err(invalid(
                "worker.retry_max_ms",
                "must be at least worker.retry_base_ms, which must be positive",
            ));
        }
        if w.heartbeat_interval.is_zero() || w.heartbeat_ttl <= w.heartbeat_interval {
            return Err(invalid(
                "worker.heartbeat_ttl_ms",
                "must exceed worker.heartbeat_interval_ms, which must be positive",
            ));
        }
        if w.job_timeout.is_zero() {
            return Err(invalid("worker.job_timeout_s", "must be positive"));
        }
        if self.amqp.queue.is_empty() {
            return Err(invalid("amqp.queue", "must not be empty"));
        }
        if self.api.engines.is_empty() {
            return Err(invalid("api.engines", "must name at least one engine"));
        }
        Ok(())
    }

    /// This worker's id: `worker.id`, else `<hostname>-<pid>`.
    pub fn worker_id(&self) -> String {
        self.worker
            .id
            .clone()
            .unwrap_or_else(|| format!("{}-{}", hostname_or_unknown(), std::process::id()))
    }
}

pub fn hostname_or_unknown() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

/// Environment values are TOML literals when they parse as one (numbers, booleans, arrays),
/// strings otherwise.
fn parse_env_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

fn set_path(
    table: &mut toml::Table,
    path: &[String],
    value: toml::Value,
    var: &str,
) -> Result<(), ConfigError> {
    match path {
        [] => Err(invalid(var, "empty ORFEAS__ variable name")),
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [head, rest @ ..] => {
            let entry = table
                .entry(head.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => set_path(t, rest, value, var),
                _ => Err(invalid(var, format!("`{head}` is not a section"))),
            }
        }
    }
}

/// `scheme://user:password@host` → `scheme://user:***@host`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = &self.worker;
        f.debug_struct("Config")
            .field("database.url", &redact_url(&self.database.url))
            .field("database.max_connections", &self.database.max_connections)
            .field("amqp.url", &redact_url(&self.amqp.url))
            .field("amqp.queue", &self.amqp.queue)
            .field("redis.url", &redact_url(&self.redis.url))
            .field("storage", &self.storage)
            .field("api.listen", &self.api.listen)
            .field("api.engines", &self.api.engines)
            .field("worker.id", &w.id)
            .field("worker.engine", &w.engine)
            .field("worker.device", &w.device)
            .field("worker.dtype", &w.dtype)
            .field("worker.weights", &w.weights)
            .field("telemetry.otlp_endpoint", &self.telemetry.otlp_endpoint)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageConfig::Local { path } => write!(f, "local({})", path.display()),
            StorageConfig::Memory => f.write_str("memory"),
            StorageConfig::S3 {
                bucket, endpoint, ..
            } => write!(
                f,
                "s3(bucket={bucket}, endpoint={}, secret=***)",
                endpoint.as_deref().unwrap_or("aws")
            ),
        }
    }
}

macro_rules! opaque_debug {
    ($($t:ty),*) => {$(
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(stringify!($t))
            }
        }
    )*};
}
opaque_debug!(
    DatabaseConfig,
    AmqpConfig,
    RedisConfig,
    ApiConfig,
    WorkerConfig
);

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_point_at_local_services() {
        let c = Config::load(None, Vec::new()).expect("defaults are valid");
        assert_eq!(c.database.url, "postgres://postgres@127.0.0.1:5432/orfeas");
        assert_eq!(c.api.listen.to_string(), "127.0.0.1:8080");
        assert!(matches!(c.storage, StorageConfig::Local { .. }));
        assert_eq!(c.worker.device, Device::Cpu);
        assert_eq!(c.worker.batch_wait, Duration::from_millis(50));
        assert_eq!(
            c.worker.metrics_listen,
            Some("127.0.0.1:9187".parse().expect("addr"))
        );
        assert_eq!(c.worker.weights, None);
        assert_eq!(c.telemetry.otlp_endpoint, None);
    }

    #[test]
    fn file_then_environment_into_typed_values() {
        let dir = std::env::temp_dir().join(format!("orfeas-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "[api]\nmax_upload_bytes = 1000\n[storage]\nkind = \"s3\"\nbucket = \"b\"\nsecret_access_key = \"topsecret\"\n[worker]\nbatch_wait_ms = 7\n",
        )
        .expect("write");
        let c = Config::load(
            Some(&file),
            env(&[
                ("ORFEAS__API__MAX_UPLOAD_BYTES", "2000"),
                ("ORFEAS__API__ENGINES", r#"["inflate", "hunyuan3d"]"#),
                ("ORFEAS__STORAGE__ALLOW_HTTP", "true"),
                ("ORFEAS__DATABASE__URL", "postgres://u:hunter2@db:5432/x"),
                ("ORFEAS__WORKER__DEVICE", "cuda"),
                ("ORFEAS__WORKER__DTYPE", "bf16"),
                ("ORFEAS__WORKER__METRICS_LISTEN", ""),
                ("ORFEAS__WORKER__OVERFLOW_QUEUE", "big"),
                ("ORFEAS__WORKER__JOB_TIMEOUT_S", "60"),
                ("ORFEAS__WORKER__MEMORY_LIMIT_BYTES", "0"),
                ("UNRELATED", "1"),
            ]),
        )
        .expect("valid");
        assert_eq!(c.api.max_upload_bytes, 2000);
        assert_eq!(c.api.engines, vec![Engine::Inflate, Engine::Hunyuan3d]);
        assert_eq!(c.worker.device, Device::Cuda(0));
        assert_eq!(c.worker.dtype, Dtype::Bf16);
        assert_eq!(c.worker.metrics_listen, None, "empty means off");
        assert_eq!(c.worker.overflow_queue.as_deref(), Some("big"));
        assert_eq!(c.worker.job_timeout, Duration::from_secs(60));
        assert_eq!(c.worker.batch_wait, Duration::from_millis(7));
        assert_eq!(
            c.worker.memory_limit_bytes, None,
            "0 means the whole device"
        );
        match &c.storage {
            StorageConfig::S3 {
                bucket,
                allow_http,
                path_style,
                endpoint,
                ..
            } => {
                assert_eq!(bucket, "b");
                assert!(*allow_http && *path_style);
                assert_eq!(*endpoint, None);
            }
            other => panic!("{other:?}"),
        }
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("topsecret"),
            "{shown}"
        );
        assert!(shown.contains("postgres://u:***@db:5432/x"));
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("ORFEAS__WORKER__BATCH_SIZE", "0", "worker.batch_size"),
            ("ORFEAS__API__NOPE", "1", "nope"),
            ("ORFEAS__WORKER__DEVICE", "tpu:0", "worker.device"),
            ("ORFEAS__WORKER__ENGINE", "magic", "worker.engine"),
            ("ORFEAS__API__ENGINES", r#"["inflate", "x"]"#, "api.engines"),
            (
                "ORFEAS__WORKER__METRICS_LISTEN",
                "nowhere",
                "worker.metrics_listen",
            ),
            (
                "ORFEAS__WORKER__BATCH_WAIT_MS",
                "-5",
                "worker.batch_wait_ms",
            ),
            (
                "ORFEAS__WORKER__HEARTBEAT_TTL_MS",
                "100",
                "worker.heartbeat_ttl_ms",
            ),
            ("ORFEAS__API__LISTEN", "localhost", "api.listen"),
        ];
        for (var, value, key) in cases {
            let err = Config::load(None, env(&[(var, value)])).expect_err(var);
            assert!(err.to_string().contains(key), "{var}={value}: {err}");
        }
    }
}
