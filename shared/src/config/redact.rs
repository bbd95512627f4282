//! What configuration shows of itself: URLs without passwords, storage without its secret,
//! sections that hold secrets as their names only.

use std::fmt;

use super::{
    AmqpConfig, ApiConfig, Config, DatabaseConfig, RedisConfig, StorageConfig, WorkerConfig,
};

/// Query parameters that carry secrets (PostgreSQL's `?password=`, tokens of OTLP endpoints).
const SECRET_PARAMS: [&str; 6] = ["password", "passwd", "pwd", "secret", "token", "key"];

/// A URL as logs may show it: `scheme://user:password@host` → `scheme://user:***@host`, and
/// the values of secret query parameters (`?password=…`, `token=…`) as `***`.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match base.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
                None => base.to_owned(),
            },
            None => base.to_owned(),
        },
        None => base.to_owned(),
    };
    let Some(query) = query else {
        return base;
    };
    let params: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _))
                if SECRET_PARAMS
                    .iter()
                    .any(|s| k.to_ascii_lowercase().contains(s)) =>
            {
                format!("{k}=***")
            }
            _ => p.to_owned(),
        })
        .collect();
    format!("{base}?{}", params.join("&"))
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = &self.worker;
        f.debug_struct("Config")
            .field("database.url", &redact_url(&self.database.url))
            .field("database.max_connections", &self.database.max_connections)
            .field("amqp.url", &redact_url(&self.amqp.url))
            .field("amqp.queue", &self.amqp.queue)
            .field(
                "amqp.management_url",
                &self.amqp.management_url.as_deref().map(redact_url),
            )
            .field("redis.url", &redact_url(&self.redis.url))
            .field("storage", &self.storage)
            .field("api.listen", &self.api.listen)
            .field("api.engines", &self.api.engines)
            .field("api.texture_modes", &self.api.texture_modes)
            .field("worker.id", &w.id)
            .field("worker.engine", &w.engine)
            .field("worker.device", &w.device)
            .field("worker.dtype", &w.dtype)
            .field("worker.weights", &w.weights)
            .field("worker.segmentation_weights", &w.segmentation_weights)
            .field("worker.paint_weights", &w.paint_weights)
            .field("worker.delight_weights", &w.delight_weights)
            .field(
                "telemetry.otlp_endpoint",
                &self.telemetry.otlp_endpoint.as_deref().map(redact_url),
            )
            .field("telemetry.span_filter", &self.telemetry.span_filter)
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
    use super::redact_url;

    #[test]
    fn secrets_in_urls_are_hidden() {
        assert_eq!(
            redact_url("postgres://u:hunter2@db:5432/x"),
            "postgres://u:***@db:5432/x"
        );
        assert_eq!(
            redact_url("postgres://db/x?user=u&password=hunter2&sslmode=require"),
            "postgres://db/x?user=u&password=***&sslmode=require"
        );
        assert_eq!(
            redact_url("https://otlp.example/v1/traces?api_token=abc"),
            "https://otlp.example/v1/traces?api_token=***"
        );
        assert_eq!(redact_url("amqp://host/%2f"), "amqp://host/%2f");
    }
}
