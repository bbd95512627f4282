//! What configuration shows of itself: URLs without passwords, storage without its secret,
//! sections that hold secrets as their names only.

use std::fmt;

use super::{
    AmqpConfig, ApiConfig, Config, DatabaseConfig, RedisConfig, StorageConfig, WorkerConfig,
};

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
