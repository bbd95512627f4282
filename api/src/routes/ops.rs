//! Operator endpoints: liveness, readiness, live workers and Prometheus metrics.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use orfeas_shared::storage;
use orfeas_vocab::{Engine, JobStatus};

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

/// Prometheus metrics of this API process; gauges about the fleet (jobs by status and queued
/// by engine, RabbitMQ queue depths, live workers, the outboxes' backlog) are read at scrape
/// time. A read that fails leaves its gauges as they were.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let m = &state.metrics;
    let (counts, depths, workers, queued, outboxes) = tokio::join!(
        tokio::time::timeout(CHECK_TIMEOUT, state.db.jobs_by_status()),
        tokio::time::timeout(CHECK_TIMEOUT, state.publisher.depths()),
        tokio::time::timeout(CHECK_TIMEOUT, state.live_workers()),
        tokio::time::timeout(CHECK_TIMEOUT, state.db.queued_by_engine()),
        tokio::time::timeout(CHECK_TIMEOUT, state.db.outbox_backlog()),
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
        // Every engine, so one with no workers reads 0 rather than nothing.
        for engine in Engine::ALL {
            let n = workers.iter().filter(|w| w.engine == engine).count();
            m.engine_workers_live
                .with_label_values(&[engine.as_str()])
                .set(n as i64);
        }
    }
    if let Ok(Ok(queued)) = queued {
        // Known engines only, so the label set stays bounded whatever the rows hold.
        for engine in Engine::NAMES {
            let (n, oldest) = queued
                .iter()
                .find(|(e, ..)| e == engine)
                .map_or((0, 0.0), |(_, n, oldest)| (*n, *oldest));
            m.jobs_queued.with_label_values(&[engine]).set(n);
            m.jobs_queued_oldest
                .with_label_values(&[engine])
                .set(oldest);
        }
    }
    if let Ok(Ok(outboxes)) = outboxes {
        for (outbox, due, oldest) in outboxes {
            m.outbox_backlog
                .with_label_values(&[outbox.as_str()])
                .set(due);
            m.outbox_oldest
                .with_label_values(&[outbox.as_str()])
                .set(oldest);
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        orfeas_shared::metrics::render(&m.registry),
    )
}
