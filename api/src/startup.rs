//! Start-up: the state built from configuration. The schema is checked; pools open lazily, so
//! the API starts even while RabbitMQ or Redis is down and heals when they return.

use std::sync::Arc;
use std::time::Duration;

use orfeas_shared::db::Db;
use orfeas_shared::metrics::ApiMetrics;
use orfeas_shared::queue::{Publisher, Topology};
use orfeas_shared::{Config, StartError, heartbeat, storage};

use crate::outbox::confirm_marker;
use crate::service::{Admission, JobsService};
use crate::state::{AppState, QueuedGauge};

/// How stale the queued-jobs count behind the 429 check may be.
const QUEUED_MAX_AGE: Duration = Duration::from_millis(500);

pub async fn build_state(config: Config) -> Result<AppState, StartError> {
    let db = Db::connect_lazy(&config.database.url, config.database.max_connections)?;
    db.check_schema().await?;
    let store = storage::build(&config.storage)?;
    // The workers' retry queues too, so the queue-depth metric covers them.
    let publisher = Arc::new(Publisher::new(
        &config.amqp.url,
        Topology::new(&config.amqp.queue)
            .with_retry_levels(config.worker.retry_base, config.worker.retry_max),
    ));
    let redis = match heartbeat::connect(&config.redis.url).await {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(error = %e, "Redis unavailable; /api/workers answers 503 until restart");
            None
        }
    };
    let metrics = Arc::new(ApiMetrics::new());
    let (confirmed, marks) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(confirm_marker(db.clone(), marks));
    let jobs = JobsService {
        db: db.clone(),
        store: store.clone(),
        publisher: publisher.clone(),
        queued: Arc::new(QueuedGauge::new(QUEUED_MAX_AGE)),
        metrics: metrics.clone(),
        confirmed,
        admission: Admission {
            engines: config.api.engines.clone(),
            max_queued_jobs: config.api.max_queued_jobs,
        },
    };
    let uploads = Arc::new(tokio::sync::Semaphore::new(
        config.api.max_concurrent_uploads,
    ));
    Ok(AppState {
        uploads,
        config: Arc::new(config),
        db,
        publisher,
        store,
        redis,
        metrics,
        jobs,
    })
}
