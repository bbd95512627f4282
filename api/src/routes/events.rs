//! Live job events: Server-Sent Events and WebSocket for one job, SSE for many. Each event's
//! sequence number is its SSE `id`; a client that reconnects with `Last-Event-ID` (or
//! `?after=` on the WebSocket) gets what it missed, from PostgreSQL. Streams send a keep-alive
//! every `api.stream_keepalive_ms` and close after the terminal event.

// utoipa's `#[utoipa::path]` expansion names parameter types by paths this lint flags.
#![allow(unused_qualifications)]

use std::convert::Infallible;
use std::sync::Arc;

use axum::Extension;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use orfeas_shared::db::DbError;
use orfeas_vocab::JobEvent;
use serde::Deserialize;
use utoipa::IntoParams;

use super::parse_id;
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::events;
use crate::state::AppState;
use crate::views::{EventView, event_view};

/// Most jobs one multi-job stream follows.
pub const MAX_STREAM_JOBS: usize = 100;

fn last_event_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn parse_seq(raw: &str) -> Result<i64, ApiError> {
    raw.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| ApiError::bad_request(format!("`{raw}` is not an event id this API issued")))
}

fn sse_event(view: &EventView, id: String) -> Event {
    let kind = view.kind();
    Event::default()
        .id(id)
        .event(kind.as_str())
        .json_data(view)
        .unwrap_or_else(|_| Event::default().comment("unserializable event"))
}

/// A database failure mid-stream ends the stream; the client reconnects with its last id.
fn log_end(e: &DbError) {
    tracing::warn!(error = %e, "event stream ended: database unavailable");
}

/// The stream's items until the first database failure, which ends it (logged).
fn until_db_error<T>(stream: impl Stream<Item = Result<T, DbError>>) -> impl Stream<Item = T> {
    stream
        .take_while(|item| {
            if let Err(e) = item {
                log_end(e);
            }
            futures::future::ready(item.is_ok())
        })
        .filter_map(|item| futures::future::ready(item.ok()))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AfterQuery {
    /// Only events after this sequence number (what `Last-Event-ID` says for SSE).
    pub after: Option<String>,
}

/// Follows a job's events as Server-Sent Events.
///
/// Each SSE message has `id` (the event's sequence number), `event` (its type) and `data` (the
/// `JobEvent` as JSON). Reconnect with `Last-Event-ID` to resume; the stream ends after
/// `succeeded`, `failed` or `canceled`.
#[utoipa::path(
    get,
    path = "/api/jobs/{id}/events",
    params(
        ("id" = String, Path, description = "Job id"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event"),
        AfterQuery,
    ),
    responses(
        (status = 200, description = "The job's events", content_type = "text/event-stream", body = EventView),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)
    ),
    tag = "events"
)]
pub async fn job_sse(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<AfterQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let after = match last_event_id(&headers).or(q.after.as_deref()) {
        Some(raw) => parse_seq(raw)?,
        None => 0,
    };
    state.jobs.require(id, &caller).await?;
    let stream = events::follow(&state.events, state.db.clone(), id, after).await?;
    let out = until_db_error(stream)
        .map(|e| Ok::<_, Infallible>(sse_event(&event_view(&e), e.seq.to_string())));
    Ok(sse(out, &state))
}

fn sse(
    stream: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
    state: &AppState,
) -> Response {
    Sse::new(stream)
        .keep_alive(
            KeepAlive::new()
                .interval(state.config.api.stream_keepalive)
                .text("keep-alive"),
        )
        .into_response()
}

/// Follows a job's events over a WebSocket.
///
/// Each text message is one `JobEvent` as JSON; the server pings every keep-alive interval and
/// closes (code 1000) after the terminal event. `?after=N` resumes after event `N`.
#[utoipa::path(
    get,
    path = "/api/jobs/{id}/ws",
    params(("id" = String, Path, description = "Job id"), AfterQuery),
    responses(
        (status = 101, description = "WebSocket: one `JobEvent` per text message", body = EventView),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)
    ),
    tag = "events"
)]
pub async fn job_ws(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<AfterQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let after = q.after.as_deref().map(parse_seq).transpose()?.unwrap_or(0);
    state.jobs.require(id, &caller).await?;
    let stream = events::follow(&state.events, state.db.clone(), id, after).await?;
    let keepalive = state.config.api.stream_keepalive;
    Ok(ws.on_upgrade(move |socket| pump_ws(socket, stream, keepalive)))
}

async fn pump_ws(
    mut socket: WebSocket,
    stream: impl Stream<Item = Result<Arc<JobEvent>, DbError>> + Send,
    keepalive: std::time::Duration,
) {
    let mut stream = std::pin::pin!(stream);
    let mut ping = tokio::time::interval(keepalive);
    ping.reset();
    let close = |reason: &'static str, code: u16| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    };
    loop {
        tokio::select! {
            item = stream.next() => match item {
                Some(Ok(e)) => {
                    let Ok(text) = serde_json::to_string(&event_view(&e)) else { continue };
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                Some(Err(e)) => {
                    log_end(&e);
                    let _ = socket.send(close("database unavailable; reconnect", 1011)).await;
                    return;
                }
                None => {
                    let _ = socket.send(close("job finished", 1000)).await;
                    return;
                }
            },
            _ = ping.tick() => {
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                // Pongs and anything a client says are ignored; a close or error ends it.
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ManyQuery {
    /// Job ids, comma-separated (at most 100).
    pub jobs: String,
    /// Resume: the `id` of the last message received (one sequence number per job, in the
    /// order of `jobs`), as `Last-Event-ID` would say.
    pub after: Option<String>,
}

/// Follows many jobs' events as one Server-Sent Events stream (dashboards, the web studio).
///
/// Each message is a `JobEvent` (it names its job). Its SSE `id` lists, in the order of
/// `jobs`, the last sequence number sent for each job, so `Last-Event-ID` resumes every job at
/// once. The stream ends when every job has ended.
#[utoipa::path(
    get,
    path = "/api/events",
    params(ManyQuery, ("Last-Event-ID" = Option<String>, Header, description = "Resume")),
    responses(
        (status = 200, description = "The jobs' events", content_type = "text/event-stream", body = EventView),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)
    ),
    tag = "events"
)]
pub async fn many_sse(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    Query(q): Query<ManyQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ids = q
        .jobs
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse_id)
        .collect::<Result<Vec<_>, _>>()?;
    if ids.is_empty() || ids.len() > MAX_STREAM_JOBS {
        return Err(ApiError::bad_request(format!(
            "`jobs` must name 1 to {MAX_STREAM_JOBS} jobs"
        )));
    }
    let mut seen = std::collections::HashSet::new();
    if !ids.iter().all(|id| seen.insert(*id)) {
        return Err(ApiError::bad_request("`jobs` names a job twice"));
    }
    let after: Vec<i64> = match last_event_id(&headers).or(q.after.as_deref()) {
        Some(raw) => {
            let seqs = raw
                .split(',')
                .map(parse_seq)
                .collect::<Result<Vec<_>, _>>()?;
            if seqs.len() != ids.len() {
                return Err(ApiError::bad_request(
                    "the event id names another number of jobs than `jobs`",
                ));
            }
            seqs
        }
        None => vec![0; ids.len()],
    };
    let mut streams = Vec::with_capacity(ids.len());
    for (i, (&id, &from)) in ids.iter().zip(&after).enumerate() {
        state.jobs.require(id, &caller).await?;
        let s = events::follow(&state.events, state.db.clone(), id, from).await?;
        streams.push(s.map(move |item| item.map(|e| (i, e))).boxed());
    }
    let mut positions = after;
    let out = until_db_error(futures::stream::select_all(streams)).map(move |(i, e)| {
        positions[i] = e.seq;
        let id = positions
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        Ok::<_, Infallible>(sse_event(&event_view(&e), id))
    });
    Ok(sse(out, &state))
}
