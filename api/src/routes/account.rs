//! The caller's own view: `/api/me` (key, limits, usage), browser sessions (a key exchanged for
//! an HttpOnly cookie) and share links for one job.

// utoipa's `#[utoipa::path]` expansion names parameter types by paths this lint flags.
#![allow(unused_qualifications)]

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use orfeas_vocab::{JobStatus, Scope};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::parse_id;
use crate::auth::Principal;
use crate::auth::tokens::SESSION_COOKIE;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// The key in use (null: keys are not in force on this deployment).
    pub key: Option<KeyView>,
    pub limits: LimitsView,
    pub usage: UsageView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    pub id: String,
    pub name: String,
    #[schema(value_type = String, example = "jobs")]
    pub scope: Scope,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LimitsView {
    /// Requests per period, e.g. `600/min` (null: unlimited). The `RateLimit` header of every
    /// answer says what is left.
    pub rate: Option<String>,
    /// Jobs queued + running at once (null: unlimited).
    pub max_concurrent: Option<u32>,
    /// Jobs per UTC day (null: unlimited).
    pub quota_daily: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageView {
    /// This key's jobs queued or running now.
    pub active_jobs: i64,
    /// This key's jobs submitted since midnight UTC.
    pub jobs_today: i64,
}

/// The calling key, its limits and its usage.
#[utoipa::path(
    get,
    path = "/api/me",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)),
    tag = "account"
)]
pub async fn me(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
) -> Result<Json<Me>, ApiError> {
    let Some(key) = caller.key else {
        return Ok(Json(Me {
            key: None,
            limits: LimitsView {
                rate: None,
                max_concurrent: None,
                quota_daily: None,
            },
            usage: UsageView {
                active_jobs: state.db.count_queued().await?,
                jobs_today: 0,
            },
        }));
    };
    let usage = state.db.usage(key.id).await?;
    Ok(Json(Me {
        key: Some(KeyView {
            id: key.id.to_string(),
            name: key.name.clone(),
            scope: key.scope,
            created_at: key.created_at,
        }),
        limits: LimitsView {
            rate: key.limits.rate.map(|r| r.to_string()),
            max_concurrent: key.limits.max_concurrent,
            quota_daily: key.limits.quota_daily,
        },
        usage: UsageView {
            active_jobs: usage.active,
            jobs_today: usage.today,
        },
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Session {
    pub expires_at: DateTime<Utc>,
}

/// Exchanges the key for a browser session: an HttpOnly, SameSite=Strict cookie that
/// EventSource, WebSocket, `<model-viewer src>` and download links carry. Requests it
/// authenticates must come from this API's own origin.
#[utoipa::path(
    post,
    path = "/api/session",
    responses((status = 201, body = Session), (status = 401, body = ErrorBody), (status = 400, body = ErrorBody)),
    tag = "account"
)]
pub async fn create_session(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
) -> Result<Response, ApiError> {
    let Some(key) = caller.key.filter(|_| caller.only_job.is_none()) else {
        return Err(ApiError::bad_request(
            "a session is made from an API key (keys are not in force here, or this is a share link)",
        ));
    };
    let ttl = state.config.api.session_ttl;
    let expires_at = Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default();
    let token = state.signer.session(key.id, expires_at);
    let cookie = format!(
        "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        ttl.as_secs()
    );
    Ok((
        StatusCode::CREATED,
        [(header::SET_COOKIE, cookie)],
        Json(Session { expires_at }),
    )
        .into_response())
}

/// Ends the browser session (clears the cookie).
#[utoipa::path(
    delete,
    path = "/api/session",
    responses((status = 204, description = "Signed out")),
    tag = "account"
)]
pub async fn end_session() -> Response {
    (
        StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
        )],
    )
        .into_response()
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ShareQuery {
    /// Seconds the link works (default 3600, at most 604800).
    pub ttl_s: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShareLinks {
    /// Append as `?token=` to the job's read-only routes.
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub job: String,
    pub events: String,
    pub ws: String,
    /// One per output (once the job has succeeded).
    pub outputs: Vec<String>,
}

const MAX_SHARE_S: u64 = 7 * 86_400;

/// A signed link to one job — its view, events and outputs, read only — for a browser or a
/// colleague, valid until it expires or the key is revoked.
#[utoipa::path(
    post,
    path = "/api/jobs/{id}/share",
    params(("id" = String, Path), ShareQuery),
    responses((status = 201, body = ShareLinks), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    tag = "account"
)]
pub async fn share(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<ShareQuery>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let ttl = q.ttl_s.unwrap_or(3_600);
    if ttl == 0 || ttl > MAX_SHARE_S {
        return Err(ApiError::bad_request(format!(
            "`ttl_s` must be 1 to {MAX_SHARE_S}"
        )));
    }
    if caller.only_job.is_some() {
        return Err(ApiError::bad_request(
            "a share link cannot make share links",
        ));
    }
    let job = state.jobs.require(id, &caller).await?;
    // A link acts for the job's owner (an admin sharing another key's job shares it as that
    // key); a job submitted without keys has none, and its links work only while keys are off.
    let owner = job.owner.or(caller.owner()).unwrap_or_default();
    let expires_at = Utc::now() + chrono::Duration::seconds(ttl as i64);
    let token = state.signer.share(owner, id, expires_at);
    let base = format!("/api/jobs/{id}");
    let outputs = if job.status == JobStatus::Succeeded && job.purged_at.is_none() {
        job.outputs
            .iter()
            .map(|a| format!("{base}/outputs/{a}?token={token}"))
            .collect()
    } else {
        Vec::new()
    };
    Ok((
        StatusCode::CREATED,
        Json(ShareLinks {
            job: format!("{base}?token={token}"),
            events: format!("{base}/events?token={token}"),
            ws: format!("{base}/ws?token={token}"),
            outputs,
            token,
            expires_at,
        }),
    )
        .into_response())
}
