//! Handles the routes share: passed in, never global.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use object_store::ObjectStore;
use orfeas_shared::Config;
use orfeas_shared::db::Db;
use orfeas_shared::heartbeat::{self, WorkerHeartbeat};
use orfeas_shared::metrics::ApiMetrics;
use orfeas_shared::queue::Publisher;
use redis::aio::ConnectionManager;

use crate::auth::keys::KeyStore;
use crate::auth::tokens::Signer;
use crate::error::ApiError;
use crate::events::EventHub;
use crate::service::JobsService;
use crate::webhooks::Dispatcher;

#[derive(Clone, Debug)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub publisher: Arc<Publisher>,
    pub store: Arc<dyn ObjectStore>,
    pub redis: Option<ConnectionManager>,
    pub metrics: Arc<ApiMetrics>,
    pub jobs: JobsService,
    /// Live job events, fanned out from PostgreSQL's notifications.
    pub events: EventHub,
    /// API keys, and whether they are in force.
    pub keys: Arc<KeyStore>,
    /// Signs browser sessions and share links.
    pub signer: Signer,
    /// Delivers webhooks (none: `webhooks.secret` is not set).
    pub dispatcher: Option<Dispatcher>,
    /// Uploads being received (`api.max_concurrent_uploads` permits).
    pub uploads: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    /// Workers whose heartbeat has not expired.
    pub async fn live_workers(&self) -> Result<Vec<WorkerHeartbeat>, ApiError> {
        let Some(mut conn) = self.redis.clone() else {
            return Err(ApiError::unavailable("Redis is not connected"));
        };
        heartbeat::list(&mut conn, &self.config.redis.key_prefix)
            .await
            .map_err(|e| ApiError::unavailable(format!("redis: {e}")))
    }
}

/// The number of queued jobs for the 429 check, refreshed from PostgreSQL in the background when
/// older than `max_age` (only the very first read waits for the database), so submissions never
/// wait for a `count(*)`.
#[derive(Debug)]
pub struct QueuedGauge {
    origin: Instant,
    refreshed_ms: AtomicU64,
    value: AtomicI64,
    refreshing: AtomicBool,
    max_age: Duration,
}

impl QueuedGauge {
    pub fn new(max_age: Duration) -> Self {
        QueuedGauge {
            origin: Instant::now(),
            refreshed_ms: AtomicU64::new(u64::MAX),
            value: AtomicI64::new(0),
            refreshing: AtomicBool::new(false),
            max_age,
        }
    }

    fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    pub async fn get(self: &Arc<Self>, db: &Db) -> Result<i64, orfeas_shared::db::DbError> {
        let last = self.refreshed_ms.load(Ordering::Relaxed);
        if last == u64::MAX {
            let v = db.count_queued().await?;
            self.value.store(v, Ordering::Relaxed);
            self.refreshed_ms.store(self.now_ms(), Ordering::Relaxed);
            return Ok(v);
        }
        let stale = self.now_ms().saturating_sub(last) >= self.max_age.as_millis() as u64;
        if stale && !self.refreshing.swap(true, Ordering::AcqRel) {
            let gauge = self.clone();
            let db = db.clone();
            tokio::spawn(async move {
                if let Ok(v) = db.count_queued().await {
                    gauge.value.store(v, Ordering::Relaxed);
                    gauge.refreshed_ms.store(gauge.now_ms(), Ordering::Relaxed);
                }
                gauge.refreshing.store(false, Ordering::Release);
            });
        }
        Ok(self.value.load(Ordering::Relaxed))
    }

    /// Counts a job accepted since the last refresh.
    pub fn add_one(&self) {
        self.value.fetch_add(1, Ordering::Relaxed);
    }
}
