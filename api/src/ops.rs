//! Operator endpoints: liveness, readiness, live workers, the OpenAPI document.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use orfeas_shared::{heartbeat, storage};
use utoipa::OpenApi;

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
    let Some(mut conn) = state.redis.clone() else {
        return Err(ApiError::unavailable("Redis is not connected"));
    };
    let workers = heartbeat::list(&mut conn, &state.config.redis.key_prefix)
        .await
        .map_err(|e| ApiError::unavailable(format!("redis: {e}")))?;
    Ok(Json(WorkerList { workers }))
}

/// Prometheus metrics of this API process; gauges about the fleet are read at scrape time.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let m = &state.metrics;
    if let Ok(Ok(counts)) = tokio::time::timeout(CHECK_TIMEOUT, state.db.jobs_by_status()).await {
        for status in ["queued", "running", "succeeded", "failed", "canceled"] {
            let n = counts
                .iter()
                .find(|(s, _)| s.as_str() == status)
                .map(|(_, n)| *n)
                .unwrap_or(0);
            m.jobs_by_status.with_label_values(&[status]).set(n);
            if status == "queued" {
                m.queue_depth.set(n);
            }
        }
    }
    if let Some(mut conn) = state.redis.clone()
        && let Ok(Ok(workers)) = tokio::time::timeout(
            CHECK_TIMEOUT,
            heartbeat::list(&mut conn, &state.config.redis.key_prefix),
        )
        .await
    {
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

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "ORFEAS job API", description = "Image-to-3D jobs: submit, follow, download, cancel."),
    paths(
        crate::jobs::submit, crate::jobs::get_job, crate::jobs::list_jobs,
        crate::jobs::get_output, crate::jobs::cancel, healthz, readyz, workers,
        crate::performance::summary, crate::performance::recommendations, crate::performance::gpu_status
    ),
    tags((name = "jobs"), (name = "ops"), (name = "performance"))
)]
pub struct ApiDoc;

/// The OpenAPI document, generated from the handlers' annotations.
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
