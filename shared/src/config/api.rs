//! The API's sections: `[api]` (listener, limits, keys and sessions, event streams) and
//! `[webhooks]`.

use std::net::SocketAddr;
use std::time::Duration;

use orfeas_vocab::{Engine, TextureMode};
use serde::Deserialize;

use super::values::{millis, off_or, seconds};

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
    /// Texture modes clients may ask for: `paint` only where every worker has the paint models
    /// (`worker.paint_weights`), so a job never reaches a worker that cannot run it.
    pub texture_modes: Vec<TextureMode>,
    /// How often the reaper looks for running jobs whose worker's lease expired.
    #[serde(rename = "reaper_interval_ms", with = "millis")]
    pub reaper_interval: Duration,
    /// Queued jobs untouched this long are published again (their message may have been lost;
    /// a second copy is harmless).
    #[serde(rename = "requeue_stale_after_s", with = "seconds")]
    pub requeue_stale_after: Duration,
    /// A client that has not sent its request headers by then is disconnected.
    #[serde(rename = "header_timeout_ms", with = "millis")]
    pub header_timeout: Duration,
    /// An upload whose body stalls (no bytes) this long is answered 408 and dropped.
    #[serde(rename = "body_timeout_ms", with = "millis")]
    pub body_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Uploads received at once; more are answered 503 with Retry-After.
    pub max_concurrent_uploads: usize,
    /// How long a shutdown waits for requests in flight before closing their connections.
    #[serde(rename = "shutdown_timeout_ms", with = "millis")]
    pub shutdown_timeout: Duration,
    /// Event streams (SSE, WebSocket) send a keep-alive when idle this long.
    #[serde(rename = "stream_keepalive_ms", with = "millis")]
    pub stream_keepalive: Duration,
    /// How often queue estimates (run time per engine and options, engine throughput) are
    /// refreshed from the ledger.
    #[serde(rename = "estimates_interval_s", with = "seconds")]
    pub estimates_interval: Duration,
    /// Whether requests need an API key: `auto` (while any live key exists), `required`, or
    /// `disabled`. `auto` with no key refuses to start on a non-loopback `listen`.
    pub auth: AuthMode,
    /// Where `orfeas api` serves `/metrics` (no key needed; keep it off the public network);
    /// empty or `off`: nowhere.
    #[serde(deserialize_with = "off_or")]
    pub metrics_listen: Option<SocketAddr>,
    /// How long a verified key is trusted without asking PostgreSQL (and so how long a
    /// revocation takes to reach every replica).
    #[serde(rename = "key_cache_ms", with = "millis")]
    pub key_cache: Duration,
    /// Signs browser sessions and share links; every replica needs the same one. Empty: a
    /// random secret per process (sessions then only work against the process that made them).
    #[serde(deserialize_with = "off_or")]
    pub session_secret: Option<String>,
    /// How long a browser session lasts.
    #[serde(rename = "session_ttl_s", with = "seconds")]
    pub session_ttl: Duration,
    /// An Idempotency-Key is remembered this long; after that it may name a new job.
    #[serde(rename = "idempotency_ttl_s", with = "seconds")]
    pub idempotency_ttl: Duration,
}

/// `api.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    Auto,
    Required,
    Disabled,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_upload_bytes: 20 * 1024 * 1024,
            max_queued_jobs: 10_000,
            outbox_interval: Duration::from_secs(1),
            engines: vec![Engine::Inflate],
            texture_modes: vec![TextureMode::None, TextureMode::Vertex, TextureMode::Uv],
            reaper_interval: Duration::from_secs(5),
            requeue_stale_after: Duration::from_secs(900),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_concurrent_uploads: 64,
            shutdown_timeout: Duration::from_secs(10),
            stream_keepalive: Duration::from_secs(15),
            estimates_interval: Duration::from_secs(30),
            auth: AuthMode::Auto,
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9188))),
            key_cache: Duration::from_secs(2),
            session_secret: None,
            session_ttl: Duration::from_secs(12 * 3_600),
            idempotency_ttl: Duration::from_secs(24 * 3_600),
        }
    }
}

/// Signed webhooks (jobs' `webhook` option).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// The signing secret, `whsec_<base64>` (receivers verify with it); empty: jobs cannot
    /// ask for webhooks. Every replica needs the same one.
    #[serde(deserialize_with = "off_or")]
    pub secret: Option<crate::webhook::WebhookSecret>,
    /// Networks webhooks may reach although they are loopback, private or link-local
    /// (`["10.0.0.0/8"]`): for tests and private deployments.
    pub allow: Vec<String>,
    /// Waits before each retry (the Standard Webhooks schedule: 5 s, 5 min, 30 min, 2 h, 5 h,
    /// 10 h, 10 h); a delivery that fails them all is marked failed.
    #[serde(rename = "retry_schedule_ms")]
    pub retry_schedule: Vec<u64>,
    /// A receiver that has not answered by then has failed this attempt.
    #[serde(rename = "timeout_ms", with = "millis")]
    pub timeout: Duration,
    /// How often each API replica looks for due deliveries.
    #[serde(rename = "poll_ms", with = "millis")]
    pub poll: Duration,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            secret: None,
            allow: Vec::new(),
            retry_schedule: vec![
                5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000,
            ],
            timeout: Duration::from_secs(15),
            poll: Duration::from_millis(500),
        }
    }
}
