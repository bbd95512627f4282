//! Operator endpoints: liveness, readiness, live workers and Prometheus metrics.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use orfeas_shared::storage;
use orfeas_vocab::JobStatus;

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::views::{Health, Readiness, WorkerList};

/// The process is alive.
#[utoipa::path(get, path = "/healthz", responses((status = 200, body = Health)), tag = "ops")]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

async fn check<F, E>(f: F) -> String
where
    F: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    match tokio::time::timeout(CHECK_TIMEOUT, f).await {
        Ok(Ok(())) => "ok".into(),
        Ok(Err(e)) => format!("unavailable: {e}"),
        Err(_) => format!("unavailable: no answer within {CHECK_TIMEOUT:?}"),
    }
}

/// PostgreSQL, RabbitMQ and the object store all answer.
#[utoipa::path(
    get, path = "/readyz",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)),
    tag = "ops"
)]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let (database, queue, object_store) = tokio::join!(
        check(state.db.ping()),
        check(state.publisher.ping()),
        check(storage::ping(state.store.as_ref())),
    );
    let ready = [&database, &queue, &object_store]
        .iter()
        .all(|s| *s == "ok");
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Readiness {
            ready,
            database,
            queue,
            object_store,
        }),
    )
}

/// Workers whose heartbeat has not expired: id, host, device, current batch.
#[utoipa::path(
    get, path = "/api/workers",
    responses((status = 200, body = WorkerList), (status = 503, body = ErrorBody)),
    tag = "ops"
)]
pub async fn workers(State(state): State<AppState>) -> Result<Json<WorkerList>, ApiError> {
    Ok(Json(WorkerList {
        workers: state.live_workers().await?,
    }))
}

/// Prometheus metrics of this API process; gauges about the fleet (jobs by status, RabbitMQ
/// queue depths, live workers) are read at scrape time.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let m = &state.metrics;
    let (counts, depths, workers) = tokio::join!(
        tokio::time::timeout(CHECK_TIMEOUT, state.db.jobs_by_status()),
        tokio::time::timeout(CHECK_TIMEOUT, state.publisher.depths()),
        tokio::time::timeout(CHECK_TIMEOUT, state.live_workers()),
    );
    if let Ok(Ok(counts)) = counts {
        for status in JobStatus::ALL {
            let n = counts
                .iter()
                .find(|(s, _)| *s == status)
                .map_or(0, |(_, n)| *n);
            m.jobs_by_status
                .with_label_values(&[status.as_str()])
                .set(n);
        }
    }
    if let Ok(Ok(depths)) = depths {
        for (queue, n) in depths {
            m.queue_depth
                .with_label_values(&[queue.as_str()])
                .set(i64::from(n));
        }
    }
    if let Ok(Ok(workers)) = workers {
        m.workers_live.set(workers.len() as i64);
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        orfeas_shared::metrics::render(&m.registry),
    )
}
