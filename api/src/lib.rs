//! ORFEAS job API: `orfeas api`. Routes, request parsing, one error → response mapping, the
//! outbox relay and the OpenAPI document. It never touches the pipeline.

pub mod error;
pub mod jobs;
pub mod ops;
pub mod performance;
pub mod state;
pub mod views;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use orfeas_shared::db::Db;
use orfeas_shared::domain::JobId;
use orfeas_shared::queue::{Publisher, Topology};
use orfeas_shared::{Config, heartbeat, storage};
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

pub use state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Db(#[from] orfeas_shared::db::DbError),
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

pub fn router(state: AppState) -> Router {
    let body_limit = usize::try_from(state.config.api.max_upload_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(1024 * 1024);
    Router::new()
        .route(
            "/api/jobs",
            post(jobs::submit)
                .layer(DefaultBodyLimit::max(body_limit))
                .get(jobs::list_jobs),
        )
        .route("/api/jobs/{id}", get(jobs::get_job))
        .route("/api/jobs/{id}/outputs/{format}", get(jobs::get_output))
        .route("/api/jobs/{id}/cancel", post(jobs::cancel))
        .route("/api/workers", get(ops::workers))
        .route("/api/performance/summary", get(performance::summary))
        .route(
            "/api/performance/recommendations",
            get(performance::recommendations),
        )
        .route("/api/gpu/status", get(performance::gpu_status))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/openapi.json", get(ops::openapi))
        .route("/metrics", get(ops::metrics))
        .fallback(|| async { error::ApiError::not_found("no such route") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            record_request,
        ))
        // At info level, so the request span is recorded and starts the job's trace.
        .layer(
            TraceLayer::new_for_http().make_span_with(
                tower_http::trace::DefaultMakeSpan::new().level(tracing::Level::INFO),
            ),
        )
        .with_state(state)
}

/// Counts and times every request by route template, method and status.
async fn record_request(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let start = std::time::Instant::now();
    let resp = next.run(req).await;
    let m = &state.metrics;
    m.http_duration
        .with_label_values(&[route.as_str(), method.as_str()])
        .observe(start.elapsed().as_secs_f64());
    m.http_requests
        .with_label_values(&[route.as_str(), method.as_str(), resp.status().as_str()])
        .inc();
    resp
}

/// Serves a registry's metrics on `/metrics` (the worker's endpoint; the API has its own route).
pub async fn serve_metrics(
    registry: prometheus::Registry,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let registry = registry.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    orfeas_shared::metrics::render(&registry),
                )
            }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Builds the state from configuration: checks the schema, opens the pools (lazily, so the API
/// starts even while RabbitMQ or Redis is down and heals when they return), and starts the task
/// that marks confirmed publications.
pub async fn build_state(config: Config) -> Result<AppState, StartError> {
    let db = Db::connect_lazy(&config.database.url, config.database.max_connections)?;
    db.check_schema().await?;
    let db_for_marker = db.clone();
    let store = storage::build(&config.storage)?;
    let publisher = Arc::new(Publisher::new(
        &config.amqp.url,
        Topology::new(&config.amqp.queue),
    ));
    let redis = match heartbeat::connect(&config.redis.url).await {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(error = %e, "Redis unavailable; /api/workers answers 503 until restart");
            None
        }
    };
    Ok(AppState {
        config: Arc::new(config),
        db,
        publisher,
        store,
        redis,
        queued: Arc::new(state::QueuedGauge::new(Duration::from_millis(500))),
        metrics: Arc::new(orfeas_shared::metrics::ApiMetrics::new()),
        confirmed: {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(confirm_marker(db_for_marker, rx));
            tx
        },
    })
}

/// Marks confirmed publications in batches: one UPDATE for all confirms that arrived while the
/// previous one ran, instead of one per request. A mark lost to a crash only means the relay
/// publishes that job once more, which workers tolerate.
pub async fn confirm_marker(db: Db, mut rx: tokio::sync::mpsc::UnboundedReceiver<JobId>) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 1000).await > 0 {
        if let Err(e) = db.mark_enqueued(&batch).await {
            tracing::debug!(error = %e, jobs = batch.len(), "confirms not marked; the relay will republish");
        }
        batch.clear();
    }
}

/// Republishes queued jobs whose message the queue never confirmed (RabbitMQ was down when
/// they were accepted). Runs until the process ends.
pub async fn outbox_relay(state: AppState) {
    let interval = Duration::from_millis(state.config.api.outbox_interval_ms.max(50));
    loop {
        tokio::time::sleep(interval).await;
        let pending = match state.db.outbox(Duration::from_secs(2), 200).await {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(error = %e, "outbox: database unavailable");
                continue;
            }
        };
        for entry in pending {
            let job_id = entry.message.job_id;
            match state
                .publisher
                .publish_job(&entry.message, &entry.trace_context)
                .await
            {
                Ok(()) => {
                    tracing::info!(job = %job_id, "outbox: published");
                    let _ = state.confirmed.send(job_id);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "outbox: queue still unavailable");
                    break;
                }
            }
        }
    }
}

/// Serves on `listener` until `shutdown` resolves, with the outbox relay alongside.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let relay = tokio::spawn(outbox_relay(state.clone()));
    let result = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await;
    relay.abort();
    Ok(result?)
}
