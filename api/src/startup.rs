//! Start-up: the state built from configuration. The schema is checked; pools open lazily, so
//! the API starts even while RabbitMQ or Redis is down and heals when they return.

use std::sync::Arc;
use std::time::Duration;

use orfeas_shared::config::AuthMode;
use orfeas_shared::db::Db;
use orfeas_shared::metrics::ApiMetrics;
use orfeas_shared::queue::{Publisher, Topology};
use orfeas_shared::{Config, StartError, heartbeat, storage};

use crate::auth::keys::KeyStore;
use crate::auth::tokens::Signer;
use crate::events::EventHub;
use crate::outbox::confirm_marker;
use crate::service::{Admission, JobsService};
use crate::state::{AppState, QueuedGauge};
use crate::webhooks::Dispatcher;
use crate::webhooks::guard::Network;

/// How stale the queued-jobs count behind the 429 check may be.
const QUEUED_MAX_AGE: Duration = Duration::from_millis(500);

pub async fn build_state(config: Config) -> Result<AppState, StartError> {
    let db = Db::connect_lazy(&config.database.url, config.database.max_connections)?;
    db.check_schema().await?;
    let a = &config.api;
    let keys = Arc::new(KeyStore::new(db.clone(), a.auth, a.key_cache));
    // The first answer is read now, so no request waits for it.
    keys.start().await?;
    if a.auth == AuthMode::Auto && !a.listen.ip().is_loopback() && !keys.in_force().await? {
        return Err(StartError::Refused(format!(
            "api.listen is {} (not loopback) and no API key exists: anyone who can reach it \
             could use it. Create a key (`orfeas keys create --name NAME`), or set \
             api.auth = \"disabled\" to serve without keys deliberately",
            a.listen
        )));
    }
    let webhook_allow = Arc::new(
        config
            .webhooks
            .allow
            .iter()
            .map(|n| {
                n.parse::<Network>()
                    .map_err(|e| StartError::Refused(format!("webhooks.allow: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?,
    );
    let signer = Signer::new(match &a.session_secret {
        Some(s) => s.as_bytes().to_vec(),
        None => {
            let mut secret = vec![0u8; 32];
            orfeas_shared::auth::random_bytes(&mut secret)
                .map_err(|e| StartError::Refused(e.to_string()))?;
            secret
        }
    });
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
            texture_modes: config.api.texture_modes.clone(),
            max_queued_jobs: config.api.max_queued_jobs,
            idempotency_ttl: config.api.idempotency_ttl,
            webhooks: config
                .webhooks
                .secret
                .as_ref()
                .map(|_| webhook_allow.clone()),
        },
    };
    let uploads = Arc::new(tokio::sync::Semaphore::new(
        config.api.max_concurrent_uploads,
    ));
    let events = EventHub::start(db.clone());
    let dispatcher = config.webhooks.secret.clone().map(|secret| Dispatcher {
        db: db.clone(),
        secret: Arc::new(secret),
        allow: webhook_allow.clone(),
        schedule: Arc::new(
            config
                .webhooks
                .retry_schedule
                .iter()
                .map(|ms| Duration::from_millis(*ms))
                .collect(),
        ),
        timeout: config.webhooks.timeout,
        poll: config.webhooks.poll,
    });
    Ok(AppState {
        dispatcher,
        keys,
        signer,
        events,
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
