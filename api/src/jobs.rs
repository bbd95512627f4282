//! `/api/jobs`: submit, read, list, download outputs, cancel.

// utoipa's `#[utoipa::path]` expansion names parameter types by paths this lint flags.
#![allow(unused_qualifications)]

use axum::Json;
use axum::body::Body;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use chrono::Utc;
use object_store::ObjectStoreExt;
use orfeas_shared::db::{CancelOutcome, InsertOutcome, NewJob};
use orfeas_shared::domain::{JobId, JobMessage, JobOptionsInput, JobStatus};
use orfeas_shared::{MeshFormat, storage};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::views::{JobList, JobView};

/// Room for the `options` part and multipart framing on top of the image limit.
const FRAMING_ALLOWANCE: u64 = 1024 * 1024;
const MAX_OPTIONS_BYTES: usize = 64 * 1024;

/// The image formats accepted, by signature.
fn sniff_image(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("png")
    } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("jpg")
    } else if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some("webp")
    } else {
        None
    }
}

/// FNV-1a: a stable fingerprint of a request, to tell a repeated idempotent submission from a
/// different request that reuses the key (not a security boundary).
fn fingerprint(parts: &[&[u8]]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.iter() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

struct Upload {
    image: Bytes,
    ext: &'static str,
    options_raw: Bytes,
}

async fn read_upload(mut multipart: Multipart, max_image: u64) -> Result<Upload, ApiError> {
    let mut image: Option<(Bytes, &'static str)> = None;
    let mut options_raw = Bytes::new();
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error(&e.body_text(), e.status()))?
    {
        match field.name() {
            Some("image") => {
                let mut buf = BytesMut::new();
                while let Some(chunk) = field
                    .chunk()
                    .await
                    .map_err(|e| multipart_error(&e.body_text(), e.status()))?
                {
                    if (buf.len() + chunk.len()) as u64 > max_image {
                        return Err(ApiError::too_large(format!(
                            "the image is over the upload limit of {max_image} bytes"
                        )));
                    }
                    buf.extend_from_slice(&chunk);
                }
                if buf.is_empty() {
                    return Err(ApiError::validation("`image`: the uploaded file is empty"));
                }
                let ext = sniff_image(&buf).ok_or_else(|| {
                    ApiError::unsupported("`image` must be a PNG, JPEG or WebP file")
                })?;
                image = Some((buf.freeze(), ext));
            }
            Some("options") => {
                let mut buf = BytesMut::new();
                while let Some(chunk) = field
                    .chunk()
                    .await
                    .map_err(|e| multipart_error(&e.body_text(), e.status()))?
                {
                    if buf.len() + chunk.len() > MAX_OPTIONS_BYTES {
                        return Err(ApiError::too_large("the `options` part is over 64 KiB"));
                    }
                    buf.extend_from_slice(&chunk);
                }
                options_raw = buf.freeze();
            }
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "unexpected part `{other}` (expected `image` and optional `options`)"
                )));
            }
            None => return Err(ApiError::bad_request("a multipart part has no name")),
        }
    }
    let (image, ext) =
        image.ok_or_else(|| ApiError::bad_request("the multipart part `image` is missing"))?;
    Ok(Upload {
        image,
        ext,
        options_raw,
    })
}

fn multipart_error(text: &str, status: StatusCode) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large(format!("upload over the limit: {text}"))
    } else {
        ApiError::bad_request(format!("malformed multipart body: {text}"))
    }
}

fn parse_options(raw: &[u8]) -> Result<JobOptionsInput, ApiError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(JobOptionsInput::default());
    }
    let de = &mut serde_json::Deserializer::from_slice(raw);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." {
            ApiError::validation(format!("`options`: {inner}"))
        } else {
            ApiError::validation(format!("`{path}`: {inner}"))
        }
    })
}

/// Submit an image-to-3D job.
///
/// Multipart form: part `image` (PNG, JPEG or WebP) and optional part `options` (JSON).
/// The job is accepted once its input is stored and its row committed; the queue message is
/// published with publisher confirms, or later by the outbox relay if RabbitMQ is down.
#[utoipa::path(
    post,
    path = "/api/jobs",
    request_body(content_type = "multipart/form-data", description = "`image`: the file; `options`: JSON job options"),
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
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, ApiError> {
    let max_image = state.config.api.max_upload_bytes;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return Err(ApiError::unsupported(format!(
            "expected multipart/form-data, got `{content_type}`"
        )));
    }
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > max_image + FRAMING_ALLOWANCE
    {
        return Err(ApiError::too_large(format!(
            "the request declares {len} bytes, over the upload limit of {max_image} bytes"
        )));
    }
    let multipart = multipart.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let idempotency_key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let k = v
                .to_str()
                .map_err(|_| ApiError::bad_request("Idempotency-Key must be visible ASCII"))?;
            if k.is_empty() || k.len() > 255 {
                return Err(ApiError::bad_request(
                    "Idempotency-Key must be 1 to 255 characters",
                ));
            }
            Some(k.to_owned())
        }
    };

    let upload = read_upload(multipart, max_image).await?;
    let spec = parse_options(&upload.options_raw)?
        .validate(Utc::now())
        .map_err(|e| ApiError::validation(e.to_string()))?;
    if !state
        .config
        .api
        .engines
        .iter()
        .any(|e| e == spec.engine.as_str())
    {
        return Err(ApiError::validation(format!(
            "invalid option `engine`: {} is not enabled on this deployment (enabled: {})",
            spec.engine.as_str(),
            state.config.api.engines.join(", ")
        )));
    }
    let request_hash = idempotency_key
        .as_ref()
        .map(|_| fingerprint(&[&upload.image, &upload.options_raw]));

    if let Some(key) = &idempotency_key
        && let Some(existing) = existing_for_key(&state, key, request_hash.as_deref()).await?
    {
        return Ok(existing);
    }
    if state.queued.get(&state.db).await? >= state.config.api.max_queued_jobs {
        return Err(ApiError::new(
            "too_many_jobs",
            format!(
                "{} jobs are already waiting; retry later",
                state.config.api.max_queued_jobs
            ),
        ));
    }

    let id = JobId::new();
    let input_key = storage::input_key(id, upload.ext);
    let input_bytes = upload.image.len() as i64;
    storage::put(state.store.as_ref(), &input_key, upload.image).await?;
    let new = NewJob {
        id,
        spec,
        input_key: input_key.to_string(),
        input_bytes,
        idempotency_key,
        request_hash,
        trace_context: orfeas_shared::telemetry::inject(&tracing::Span::current()),
    };
    let job = match state.db.insert_job(&new).await {
        Ok(InsertOutcome::Created(job)) => job,
        Ok(InsertOutcome::Existing { job, same_request }) => {
            // Lost a race with a concurrent request carrying the same key.
            let _ = state.store.delete(&input_key).await;
            return idempotent_answer(&state, job, same_request).await;
        }
        Err(e) => {
            let _ = state.store.delete(&input_key).await;
            return Err(e.into());
        }
    };
    state.queued.add_one();
    state.metrics.jobs_submitted.inc();
    let msg = JobMessage::for_job(job.id, &job.spec);
    match state.publisher.publish_job(&msg, &new.trace_context).await {
        Ok(()) => {
            let _ = state.confirmed.send(job.id);
        }
        Err(e) => {
            tracing::warn!(job = %job.id, error = %e, "queue unavailable; the outbox relay will publish the job");
        }
    }
    let view = JobView::from_record(job, &[]);
    let location = view.links.this.clone();
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(view),
    )
        .into_response())
}

async fn existing_for_key(
    state: &AppState,
    key: &str,
    hash: Option<&str>,
) -> Result<Option<Response>, ApiError> {
    let Some((id, stored_hash)) = state.db.find_by_idempotency_key(key).await? else {
        return Ok(None);
    };
    let Some(job) = state.db.get_job(JobId(id)).await? else {
        return Ok(None);
    };
    Ok(Some(
        idempotent_answer(state, job, stored_hash.as_deref() == hash).await?,
    ))
}

async fn idempotent_answer(
    state: &AppState,
    job: orfeas_shared::db::JobRecord,
    same_request: bool,
) -> Result<Response, ApiError> {
    if !same_request {
        return Err(ApiError::new(
            "idempotency_key_reused",
            format!(
                "this Idempotency-Key was used for a different request (job {})",
                job.id
            ),
        ));
    }
    let stages = state.db.stage_records(job.id).await?;
    Ok((StatusCode::OK, Json(JobView::from_record(job, &stages))).into_response())
}

fn parse_id(raw: &str) -> Result<JobId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::bad_request(format!("`{raw}` is not a job id")))
}

/// A job's status, current stage, progress, per-stage timings, error and output links.
#[utoipa::path(
    get,
    path = "/api/jobs/{id}",
    params(("id" = String, Path, description = "Job id")),
    responses((status = 200, body = JobView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    tag = "jobs"
)]
pub async fn get_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    let id = parse_id(&id)?;
    let job = state
        .db
        .get_job(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
    let stages = state.db.stage_records(id).await?;
    Ok(Json(JobView::from_record(job, &stages)))
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
    Query(q): Query<ListQuery>,
) -> Result<Json<JobList>, ApiError> {
    let status = q
        .status
        .as_deref()
        .map(str::parse::<JobStatus>)
        .transpose()
        .map_err(ApiError::bad_request)?;
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("`limit` must be 1 to 100"));
    }
    let cursor = q
        .cursor
        .as_deref()
        .map(|c| c.parse::<JobId>())
        .transpose()
        .map_err(|_| ApiError::bad_request("`cursor` is not a cursor this API issued"))?;
    let mut jobs = state.db.list_jobs(status, cursor, limit + 1).await?;
    let more = jobs.len() as i64 > limit;
    jobs.truncate(limit as usize);
    let next_cursor = if more {
        jobs.last().map(|j| j.id)
    } else {
        None
    };
    Ok(Json(JobList {
        jobs: jobs
            .into_iter()
            .map(|j| JobView::from_record(j, &[]))
            .collect(),
        next_cursor,
    }))
}

/// Streams a finished job's mesh from the object store.
#[utoipa::path(
    get,
    path = "/api/jobs/{id}/outputs/{format}",
    params(("id" = String, Path), ("format" = String, Path, description = "glb, obj, stl or ply")),
    responses(
        (status = 200, description = "The mesh", content_type = "model/gltf-binary"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)
    ),
    tag = "jobs"
)]
pub async fn get_output(
    State(state): State<AppState>,
    Path((id, format)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let format: MeshFormat = format.parse().map_err(ApiError::not_found)?;
    let job = state
        .db
        .get_job(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
    if job.status != JobStatus::Succeeded {
        return Err(ApiError::conflict(format!(
            "job {id} is {}; outputs exist once it has succeeded",
            job.status.as_str()
        )));
    }
    if !job.outputs.contains(&format) {
        return Err(ApiError::not_found(format!(
            "job {id} has no {format} output"
        )));
    }
    let key = storage::output_key(id, format);
    let got = state.store.get(&key).await.map_err(|e| match e {
        object_store::Error::NotFound { .. } => {
            ApiError::not_found(format!("{key} is missing from the object store"))
        }
        other => ApiError::unavailable(format!("storage: {other}")),
    })?;
    let size = got.meta.size;
    let body = Body::from_stream(got.into_stream());
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_owned()),
            (header::CONTENT_LENGTH, size.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{id}.{}\"", format.extension()),
            ),
        ],
        body,
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
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    match state.db.request_cancel(id).await? {
        CancelOutcome::NotFound => Err(ApiError::not_found(format!("no job {id}"))),
        CancelOutcome::AlreadyTerminal(s) => Err(ApiError::conflict(format!(
            "job {id} already ended ({})",
            s.as_str()
        ))),
        CancelOutcome::Canceled | CancelOutcome::Requested => {
            let job = state
                .db
                .get_job(id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
            Ok((StatusCode::ACCEPTED, Json(JobView::from_record(job, &[]))).into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing() {
        assert_eq!(sniff_image(b"\x89PNG\r\n\x1a\nrest"), Some("png"));
        assert_eq!(sniff_image(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("jpg"));
        assert_eq!(sniff_image(b"RIFF\0\0\0\0WEBPVP8 "), Some("webp"));
        assert_eq!(sniff_image(b"GIF89a"), None);
    }

    #[test]
    fn fingerprints_tell_requests_apart() {
        assert_eq!(fingerprint(&[b"a", b"b"]), fingerprint(&[b"a", b"b"]));
        assert_ne!(fingerprint(&[b"a", b"b"]), fingerprint(&[b"ab", b""]));
        assert_ne!(fingerprint(&[b"a", b"{}"]), fingerprint(&[b"a", b""]));
    }

    #[test]
    fn option_errors_name_the_field() {
        let e = parse_options(br#"{"steps": "many"}"#).expect_err("type error");
        assert!(e.message.starts_with("`steps`"), "{}", e.message);
        let e = parse_options(br#"{"colour": 1}"#).expect_err("unknown field");
        assert!(e.message.contains("colour"), "{}", e.message);
        assert!(parse_options(b"  ").is_ok());
    }
}
