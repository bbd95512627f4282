//! Handles the routes share: passed in, never global.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use object_store::ObjectStore;
use orfeas_shared::Config;
use orfeas_shared::db::Db;
use orfeas_shared::queue::Publisher;
use redis::aio::ConnectionManager;

#[derive(Clone, Debug)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub publisher: Arc<Publisher>,
    pub store: Arc<dyn ObjectStore>,
    pub redis: Option<ConnectionManager>,
    pub queued: Arc<QueuedGauge>,
    /// Confirmed publications, marked in PostgreSQL in batches by [`crate::confirm_marker`].
    pub confirmed: tokio::sync::mpsc::UnboundedSender<orfeas_shared::domain::JobId>,
    pub metrics: Arc<orfeas_shared::metrics::ApiMetrics>,
}

/// The number of queued jobs, refreshed from PostgreSQL at most every `max_age`, so the 429
/// check costs one `count(*)` per interval instead of one per submission.
#[derive(Debug)]
pub struct QueuedGauge {
    origin: Instant,
    refreshed_ms: AtomicU64,
    value: AtomicI64,
    max_age: Duration,
}

impl QueuedGauge {
    pub fn new(max_age: Duration) -> Self {
        QueuedGauge {
            origin: Instant::now(),
            refreshed_ms: AtomicU64::new(u64::MAX),
            value: AtomicI64::new(0),
            max_age,
        }
    }

    pub async fn get(&self, db: &Db) -> Result<i64, orfeas_shared::db::DbError> {
        let now = self.origin.elapsed().as_millis() as u64;
        let last = self.refreshed_ms.load(Ordering::Relaxed);
        if last != u64::MAX && now.saturating_sub(last) < self.max_age.as_millis() as u64 {
            return Ok(self.value.load(Ordering::Relaxed));
        }
        let v = db.count_queued().await?;
        self.value.store(v, Ordering::Relaxed);
        self.refreshed_ms.store(now, Ordering::Relaxed);
        Ok(v)
    }

    /// Counts a job accepted since the last refresh.
    pub fn add_one(&self) {
        self.value.fetch_add(1, Ordering::Relaxed);
    }
}
