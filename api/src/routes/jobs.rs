//! `/api/jobs`: submit, read, list, download outputs, cancel — thin over [`JobsService`].
//!
//! [`JobsService`]: crate::service::JobsService

// utoipa's `#[utoipa::path]` expansion names parameter types by paths this lint flags.
#![allow(unused_qualifications)]

use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use orfeas_vocab::{Artifact, ErrorCode, JobId, JobStatus};
use serde::Deserialize;
use utoipa::IntoParams;

use super::parse_id;
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::service::Submitted;
use crate::state::AppState;
use crate::upload::{IdempotencyKey, Upload};
use crate::views::{JobList, JobView};

/// Submit an image-to-3D job.
///
/// Multipart form: part `image` (PNG, JPEG or WebP) and optional part `options` (JSON).
/// The job is accepted once its input is stored and its row committed; the queue message is
/// published with publisher confirms, or later by the outbox relay if RabbitMQ is down.
#[utoipa::path(
    post,
    path = "/api/jobs",
    request_body(content_type = "multipart/form-data", description = "`image`: the file; `options`: JSON job options (`JobOptionsInput`)"),
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeat a submission safely: the same key returns the same job")),
    responses(
        (status = 202, description = "Accepted", body = JobView),
        (status = 200, description = "Same Idempotency-Key: the existing job", body = JobView),
        (status = 400, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    tag = "jobs"
)]
pub async fn submit(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    // Held while the body is read: uploads beyond the limit are refused, not queued in memory.
    let _receiving = state.uploads.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            ErrorCode::TooManyUploads,
            format!(
                "{} uploads are being received; retry later",
                state.config.api.max_concurrent_uploads
            ),
        )
    })?;
    let upload = Upload::read(&headers, multipart, state.config.api.max_upload_bytes).await?;
    drop(_receiving);
    // The request span's context, stored with the job: the parent of its publish, now or by the
    // outbox relay.
    let request = tracing::Span::current();
    let trace = orfeas_shared::telemetry::inject(&request);
    let submitted = state.jobs.submit(upload, trace, &caller).await?;
    Ok(accepted(submitted, &request))
}

/// Run a job again: a new job from its stored input and options.
///
/// The same image and options (the deadline dropped), as a new submission: admission, quotas,
/// the queue limit and `Idempotency-Key` apply. 410 once the input was deleted.
#[utoipa::path(
    post,
    path = "/api/jobs/{id}/rerun",
    params(("id" = String, Path, description = "The job to run again"),
        ("Idempotency-Key" = Option<String>, Header, description = "Repeat the request safely")),
    responses(
        (status = 202, description = "Accepted", body = JobView),
        (status = 200, description = "Same Idempotency-Key: the existing job", body = JobView),
        (status = 404, body = ErrorBody), (status = 410, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    tag = "jobs"
)]
pub async fn rerun(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let key = IdempotencyKey::from_headers(&headers)?;
    let request = tracing::Span::current();
    let trace = orfeas_shared::telemetry::inject(&request);
    let submitted = state.jobs.rerun(id, key, trace, &caller).await?;
    Ok(accepted(submitted, &request))
}

/// 202 with the new job's view and `Location`, or 200 with the job an idempotent repeat names.
fn accepted(submitted: Submitted, request: &tracing::Span) -> Response {
    let (Submitted::Created(job) | Submitted::Repeated(job, _)) = &submitted;
    request.record("job.id", tracing::field::display(job.id));
    match submitted {
        Submitted::Created(job) => {
            let view = JobView::from_record(job, &[]);
            let location = view.links.this.clone();
            (
                StatusCode::ACCEPTED,
                [(header::LOCATION, location)],
                Json(view),
            )
                .into_response()
        }
        Submitted::Repeated(job, stages) => {
            (StatusCode::OK, Json(JobView::from_record(job, &stages))).into_response()
        }
    }
}

/// A job's status, current stage, progress, per-stage timings, error and output links.
#[utoipa::path(
    get,
    path = "/api/jobs/{id}",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, body = JobView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 410, description = "Its owner deleted the job's files: what remains", body = JobView)
    ),
    tag = "jobs"
)]
pub async fn get_job(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (job, stages) = state.jobs.get(parse_id(&id)?, &caller).await?;
    let queue = state.jobs.queue_estimate(&job).await?;
    let webhooks = state.jobs.deliveries(&job).await?;
    let gone = job.purged_at.is_some();
    let mut view = JobView::from_record(job, &stages);
    view.queue = queue.map(Into::into);
    view.webhooks = webhooks;
    // A job whose files its owner deleted answers 410 with what remains.
    let status = if gone {
        StatusCode::GONE
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// Only jobs with this status.
    pub status: Option<String>,
    /// Page size, 1–100 (default 20).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Jobs, newest first, with keyset pagination.
#[utoipa::path(
    get,
    path = "/api/jobs",
    params(ListQuery),
    responses((status = 200, body = JobList), (status = 400, body = ErrorBody)),
    tag = "jobs"
)]
pub async fn list_jobs(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    Query(q): Query<ListQuery>,
) -> Result<Json<JobList>, ApiError> {
    let status = q
        .status
        .as_deref()
        .map(str::parse::<JobStatus>)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let cursor = q
        .cursor
        .as_deref()
        .map(str::parse::<JobId>)
        .transpose()
        .map_err(|_| ApiError::bad_request("`cursor` is not a cursor this API issued"))?;
    let page = state
        .jobs
        .list(&caller, status, cursor, q.limit.unwrap_or(20))
        .await?;
    Ok(Json(JobList {
        jobs: page
            .jobs
            .into_iter()
            .map(|j| JobView::from_record(j, &[]))
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Streams one of a finished job's artifacts (a mesh, or the cut-out) from the object store.
#[utoipa::path(
    get,
    path = "/api/jobs/{id}/outputs/{artifact}",
    params(("id" = String, Path), ("artifact" = String, Path, description = "glb, obj, stl, ply or cutout")),
    responses(
        (status = 200, description = "The file", content_type = "model/gltf-binary"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)
    ),
    tag = "jobs"
)]
pub async fn get_output(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path((id, artifact)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let artifact: Artifact = artifact
        .parse()
        .map_err(|e: orfeas_vocab::UnknownName| ApiError::not_found(e.to_string()))?;
    let got = state.jobs.output(id, artifact, &caller).await?;
    let size = got.meta.size;
    Ok((
        [
            (header::CONTENT_TYPE, artifact.content_type().to_owned()),
            (header::CONTENT_LENGTH, size.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"{}\"",
                    artifact.download_name(&id.to_string())
                ),
            ),
        ],
        Body::from_stream(got.into_stream()),
    )
        .into_response())
}

/// Cancels a job: a queued job never runs; a running one stops at its next stage boundary.
#[utoipa::path(
    post,
    path = "/api/jobs/{id}/cancel",
    params(("id" = String, Path)),
    responses(
        (status = 202, description = "Canceled, or cancel requested", body = JobView),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)
    ),
    tag = "jobs"
)]
pub async fn cancel(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = state.jobs.cancel(parse_id(&id)?, &caller).await?;
    Ok((StatusCode::ACCEPTED, Json(JobView::from_record(job, &[]))).into_response())
}

/// Deletes a finished job's input and outputs now (inputs are often photos of people). The job
/// then answers 410 with what remains: its id, status and timings.
#[utoipa::path(
    delete,
    path = "/api/jobs/{id}",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "Deleted: what remains", body = JobView),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 410, description = "Already deleted", body = JobView)
    ),
    tag = "jobs"
)]
pub async fn delete_job(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (job, stages, already) = state.jobs.purge(parse_id(&id)?, &caller).await?;
    let status = if already {
        StatusCode::GONE
    } else {
        StatusCode::OK
    };
    Ok((status, Json(JobView::from_record(job, &stages))).into_response())
}
