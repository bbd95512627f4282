//! One typed configuration: built-in defaults, then an optional TOML file, then environment
//! variables `ORFEAS__SECTION__KEY=value` (e.g. `ORFEAS__DATABASE__URL`, `ORFEAS__STORAGE__KIND=s3`).
//! Defaults point at this machine's standard ports so every command runs with no configuration.
//! Secrets (URL passwords, the S3 secret key) never appear in `Debug` output or logs.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
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
    /// OTLP/HTTP traces endpoint, e.g. `http://127.0.0.1:4318/v1/traces`; empty: no export.
    pub otlp_endpoint: String,
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
    /// The jobs queue; `<queue>.retry` and `<queue>.dlq` are derived from it.
    pub queue: String,
}

#[derive(Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    pub url: String,
    /// Prefix of every key this deployment writes.
    pub key_prefix: String,
}

/// Where inputs and meshes are stored.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum StorageConfig {
    Local {
        path: PathBuf,
    },
    Memory,
    S3 {
        bucket: String,
        /// Custom endpoint for S3-compatible servers (`http://127.0.0.1:8014`); empty for AWS.
        #[serde(default)]
        endpoint: String,
        #[serde(default = "default_region")]
        region: String,
        #[serde(default)]
        access_key_id: String,
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
    /// Submissions are refused with 429 while this many jobs wait in the queue.
    pub max_queued_jobs: i64,
    /// How often the outbox relay republishes jobs the queue has not confirmed.
    pub outbox_interval_ms: u64,
    /// Engines clients may ask for (`inflate`, `hunyuan3d`); each has its own queue, consumed by
    /// the workers configured with that `worker.engine`.
    pub engines: Vec<String>,
}

#[derive(Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// Stable worker id; default `<hostname>-<pid>`.
    pub id: Option<String>,
    /// Most jobs run through the pipeline together (the optimizer decides up to this).
    pub batch_size: usize,
    /// Share of the device's memory batches may fill (the optimizer's target).
    pub target_utilization: f64,
    /// Memory this worker may treat as its device's, in bytes (0: all of it), for workers that
    /// share a machine or run under a container limit.
    pub memory_limit_bytes: u64,
    /// `cpu`, or `cuda:N` (memory and utilisation read through NVML).
    pub device: String,
    /// How long to wait for more jobs once one arrived, in milliseconds.
    pub batch_wait_ms: u64,
    /// Attempts for transient failures before the job fails and its message is dead-lettered.
    pub max_attempts: u32,
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    pub heartbeat_interval_ms: u64,
    pub heartbeat_ttl_ms: u64,
    /// A job running longer fails with `job_timeout` (keep under RabbitMQ's consumer_timeout).
    pub job_timeout_s: u64,
    /// Where `orfeas worker` serves `/metrics`; empty string: nowhere.
    pub metrics_listen: String,
    /// Queue for jobs too large for this worker's device even alone (consumed by workers on
    /// larger devices); empty: such jobs fail with `insufficient_memory`.
    pub overflow_queue: String,
    /// The shape engine this worker runs: `inflate` or `hunyuan3d` (it consumes that engine's
    /// queue).
    pub engine: String,
    /// `hunyuan3d`: the checkpoint folder (`config.yaml` + `model.fp16.safetensors`), loaded once
    /// at start-up.
    pub weights: String,
    /// `hunyuan3d`: `hierarchical` (near-surface cells only) or `dense` volume decoding.
    pub volume_decoding: String,
    /// `hunyuan3d`: compute dtype, `f32`, `f16` or `bf16` (half precision on CUDA only).
    pub dtype: String,
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
            outbox_interval_ms: 1_000,
            engines: vec!["inflate".into()],
        }
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            id: None,
            batch_size: 4,
            target_utilization: 0.85,
            memory_limit_bytes: 0,
            device: "cpu".into(),
            batch_wait_ms: 50,
            max_attempts: 5,
            retry_base_ms: 500,
            retry_max_ms: 30_000,
            heartbeat_interval_ms: 2_000,
            heartbeat_ttl_ms: 10_000,
            job_timeout_s: 1_500,
            metrics_listen: "127.0.0.1:9187".into(),
            overflow_queue: String::new(),
            engine: "inflate".into(),
            weights: String::new(),
            volume_decoding: "hierarchical".into(),
            dtype: "f32".into(),
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
                    .map_err(|e| ConfigError::Invalid(format!("{}: {e}", path.display())))?
            }
            None => toml::Table::new(),
        };
        for (key, value) in env {
            let Some(rest) = key.strip_prefix("ORFEAS__") else {
                continue;
            };
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            set_path(&mut table, &path, parse_env_value(&value))?;
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Defaults, the file named by `ORFEAS_CONFIG` (or `file`), and the process environment.
    pub fn from_env(file: Option<&Path>) -> Result<Config, ConfigError> {
        let from_var = std::env::var_os("ORFEAS_CONFIG").map(PathBuf::from);
        let file = file.map(Path::to_owned).or(from_var);
        Config::load(file.as_deref(), std::env::vars())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let w = &self.worker;
        if w.batch_size == 0 || w.batch_size > usize::from(u16::MAX) {
            return Err(ConfigError::Invalid(
                "worker.batch_size must be 1 to 65535".into(),
            ));
        }
        if !(0.05..=1.0).contains(&w.target_utilization) {
            return Err(ConfigError::Invalid(
                "worker.target_utilization must be within 0.05..=1".into(),
            ));
        }
        if w.max_attempts == 0 {
            return Err(ConfigError::Invalid(
                "worker.max_attempts must be at least 1".into(),
            ));
        }
        if self.amqp.queue.is_empty() {
            return Err(ConfigError::Invalid("amqp.queue must not be empty".into()));
        }
        for e in self.api.engines.iter().chain([&w.engine]) {
            e.parse::<crate::domain::Engine>()
                .map_err(|m| ConfigError::Invalid(format!("engine: {m}")))?;
        }
        if !["hierarchical", "dense"].contains(&w.volume_decoding.as_str()) {
            return Err(ConfigError::Invalid(
                "worker.volume_decoding must be hierarchical or dense".into(),
            ));
        }
        if !["f32", "f16", "bf16"].contains(&w.dtype.as_str()) {
            return Err(ConfigError::Invalid(
                "worker.dtype must be f32, f16 or bf16".into(),
            ));
        }
        Ok(())
    }

    /// The engine `worker.engine` names (validated when the configuration was loaded).
    pub fn worker_engine(&self) -> crate::domain::Engine {
        self.worker
            .engine
            .parse()
            .unwrap_or(crate::domain::Engine::Inflate)
    }

    pub fn worker_id(&self) -> String {
        self.worker.id.clone().unwrap_or_else(|| {
            let host = hostname_or_unknown();
            format!("{host}-{}", std::process::id())
        })
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
) -> Result<(), ConfigError> {
    match path {
        [] => Err(ConfigError::Invalid("empty ORFEAS__ variable name".into())),
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [head, rest @ ..] => {
            let entry = table
                .entry(head.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => set_path(t, rest, value),
                _ => Err(ConfigError::Invalid(format!("`{head}` is not a section"))),
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
        f.debug_struct("Config")
            .field("database.url", &redact_url(&self.database.url))
            .field("database.max_connections", &self.database.max_connections)
            .field("amqp.url", &redact_url(&self.amqp.url))
            .field("amqp.queue", &self.amqp.queue)
            .field("redis.url", &redact_url(&self.redis.url))
            .field("storage", &self.storage)
            .field("api.listen", &self.api.listen)
            .field("worker.id", &self.worker.id)
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
            } => write!(f, "s3(bucket={bucket}, endpoint={endpoint}, secret=***)"),
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

    #[test]
    fn defaults_point_at_local_services() {
        let c = Config::load(None, Vec::new()).expect("defaults are valid");
        assert_eq!(c.database.url, "postgres://postgres@127.0.0.1:5432/orfeas");
        assert_eq!(c.api.listen.to_string(), "127.0.0.1:8080");
        assert!(matches!(c.storage, StorageConfig::Local { .. }));
    }

    #[test]
    fn file_then_environment() {
        let dir = std::env::temp_dir().join(format!("orfeas-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "[api]\nmax_upload_bytes = 1000\n[storage]\nkind = \"s3\"\nbucket = \"b\"\nsecret_access_key = \"topsecret\"\n",
        )
        .expect("write");
        let env = vec![
            (
                "ORFEAS__API__MAX_UPLOAD_BYTES".to_owned(),
                "2000".to_owned(),
            ),
            ("ORFEAS__STORAGE__ALLOW_HTTP".to_owned(), "true".to_owned()),
            (
                "ORFEAS__DATABASE__URL".to_owned(),
                "postgres://u:hunter2@db:5432/x".to_owned(),
            ),
            ("UNRELATED".to_owned(), "1".to_owned()),
        ];
        let c = Config::load(Some(&file), env).expect("valid");
        assert_eq!(c.api.max_upload_bytes, 2000);
        match &c.storage {
            StorageConfig::S3 {
                bucket,
                allow_http,
                path_style,
                ..
            } => {
                assert_eq!(bucket, "b");
                assert!(*allow_http && *path_style);
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
    fn invalid_values_are_refused() {
        let env = vec![("ORFEAS__WORKER__BATCH_SIZE".to_owned(), "0".to_owned())];
        assert!(Config::load(None, env).is_err());
        let env = vec![("ORFEAS__API__NOPE".to_owned(), "1".to_owned())];
        assert!(Config::load(None, env).is_err(), "unknown keys are errors");
    }
}
