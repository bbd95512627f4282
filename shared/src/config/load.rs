//! Loading: defaults, then a TOML file, then `ORFEAS__…` variables; deserialized once with the
//! failing key named; then the rules serde cannot express.

use std::path::{Path, PathBuf};

use orfeas_vocab::TextureMode;

use super::{Config, ConfigError, invalid};

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
        if w.progress_interval.is_zero() {
            return Err(invalid("worker.progress_interval_ms", "must be positive"));
        }
        if w.stall_check.is_zero() {
            return Err(invalid("worker.stall_check_ms", "must be positive"));
        }
        if w.lease_ttl < w.heartbeat_interval * 2 {
            return Err(invalid(
                "worker.lease_ttl_ms",
                "must be at least twice worker.heartbeat_interval_ms (the lease is renewed every heartbeat)",
            ));
        }
        let a = &self.api;
        if a.max_connections == 0 || a.max_concurrent_uploads == 0 {
            return Err(invalid(
                "api.max_connections",
                "api.max_connections and api.max_concurrent_uploads must be at least 1",
            ));
        }
        if a.header_timeout.is_zero() || a.body_timeout.is_zero() || a.reaper_interval.is_zero() {
            return Err(invalid(
                "api.header_timeout_ms",
                "api.header_timeout_ms, api.body_timeout_ms and api.reaper_interval_ms must be positive",
            ));
        }
        if a.stream_keepalive.is_zero() || a.estimates_interval.is_zero() {
            return Err(invalid(
                "api.stream_keepalive_ms",
                "api.stream_keepalive_ms and api.estimates_interval_s must be positive",
            ));
        }
        if self.webhooks.timeout.is_zero() || self.webhooks.poll.is_zero() {
            return Err(invalid(
                "webhooks.timeout_ms",
                "webhooks.timeout_ms and webhooks.poll_ms must be positive",
            ));
        }
        if self.amqp.delivery_limit <= w.max_attempts {
            return Err(invalid(
                "amqp.delivery_limit",
                "must exceed worker.max_attempts (the broker's limit is a backstop behind PostgreSQL's count)",
            ));
        }
        if self.amqp.queue.is_empty() {
            return Err(invalid("amqp.queue", "must not be empty"));
        }
        if self.api.engines.is_empty() {
            return Err(invalid("api.engines", "must name at least one engine"));
        }
        if !self.api.texture_modes.contains(&TextureMode::default()) {
            return Err(invalid(
                "api.texture_modes",
                "must include the default mode `uv` (jobs that do not name a mode get it)",
            ));
        }
        if w.paint_weights.is_some() != w.delight_weights.is_some() {
            return Err(invalid(
                "worker.paint_weights",
                "worker.paint_weights and worker.delight_weights go together (the paint engine needs both models)",
            ));
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use orfeas_vocab::{Device, Dtype, Engine};

    use super::*;
    use crate::config::StorageConfig;

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
                ("ORFEAS__API__TEXTURE_MODES", r#"["uv", "paint"]"#),
                ("ORFEAS__WORKER__PAINT_WEIGHTS", "/m/paint"),
                ("ORFEAS__WORKER__DELIGHT_WEIGHTS", "/m/delight"),
                ("UNRELATED", "1"),
            ]),
        )
        .expect("valid");
        assert_eq!(c.api.max_upload_bytes, 2000);
        assert_eq!(c.api.engines, vec![Engine::Inflate, Engine::Hunyuan3d]);
        assert_eq!(
            c.api.texture_modes,
            vec![TextureMode::Uv, TextureMode::Paint]
        );
        assert_eq!(
            c.worker.paint_weights.as_deref(),
            Some(Path::new("/m/paint"))
        );
        assert_eq!(c.worker.paint_view_size, 512);
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
            (
                "ORFEAS__API__TEXTURE_MODES",
                r#"["paint"]"#,
                "api.texture_modes",
            ),
            (
                "ORFEAS__WORKER__PAINT_WEIGHTS",
                "/models/hunyuan3d-paint-v2-0",
                "worker.paint_weights",
            ),
        ];
        for (var, value, key) in cases {
            let err = Config::load(None, env(&[(var, value)])).expect_err(var);
            assert!(err.to_string().contains(key), "{var}={value}: {err}");
        }
    }
}
