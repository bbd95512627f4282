//! The one place requests are authenticated: route → what it needs ([`access`]) → whether keys
//! are in force → the credential (Bearer key, session cookie with its origin check, or share
//! link) → scope → rate limit. Handlers receive the [`Principal`] and scope their queries by it.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use orfeas_shared::db::{DbError, KeyRecord};
use orfeas_vocab::ErrorCode;

use super::Principal;
use super::access::{Access, access, shareable};
use super::keys::Refusal;
use super::tokens::{Grant, SESSION_COOKIE};
use crate::error::ApiError;
use crate::state::AppState;

enum Credential<'a> {
    Bearer(&'a str),
    Session(&'a str),
    Share(&'a str),
}

fn credential(req: &Request) -> Option<Credential<'_>> {
    if let Some(v) = req.headers().get(header::AUTHORIZATION) {
        let v = v.to_str().unwrap_or("");
        let token = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .unwrap_or("")
            .trim();
        return Some(Credential::Bearer(token));
    }
    if let Some(token) = req.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|pair| pair.strip_prefix("token="))
            .filter(|t| !t.is_empty())
    }) {
        return Some(Credential::Share(token));
    }
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('='))
        .map(Credential::Session)
}

/// A cookie travels with any request the browser makes to us, so a cookie-authenticated request
/// must come from our own origin: `Origin` (sent on every cross-origin request, WebSocket
/// handshakes included) must name the host the request was sent to, and changes need it.
fn same_origin(req: &Request) -> bool {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    match req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
    {
        Some(origin) => {
            let authority = origin.split_once("://").map_or(origin, |(_, a)| a);
            host.is_some_and(|h| h.eq_ignore_ascii_case(authority))
        }
        None => matches!(*req.method(), Method::GET | Method::HEAD),
    }
}

type Lookup = Result<Result<Arc<KeyRecord>, Refusal>, DbError>;

/// A key lookup's answer: the live key, or the error that refuses the request.
fn live_key(lookup: Lookup) -> Result<Arc<KeyRecord>, ApiError> {
    match lookup {
        Ok(Ok(k)) => Ok(k),
        Ok(Err(r)) => Err(ApiError::new(ErrorCode::Unauthorized, r.message())),
        Err(e) => Err(ApiError::from(e)),
    }
}

fn unauthorized(message: &str) -> Response {
    ApiError::new(ErrorCode::Unauthorized, message).into_response()
}

pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let Access::Key(needed) = access(&route) else {
        return next.run(req).await;
    };
    match state.keys.in_force().await {
        Ok(true) => {}
        Ok(false) => {
            req.extensions_mut().insert(Principal::open());
            return next.run(req).await;
        }
        Err(e) => return ApiError::from(e).into_response(),
    }
    let now = Utc::now();
    let (key, only_job) = match credential(&req) {
        None => return unauthorized("an API key is required (Authorization: Bearer …)"),
        Some(Credential::Bearer(token)) => match live_key(state.keys.verify(token).await) {
            Ok(k) => (k, None),
            Err(refused) => return refused.into_response(),
        },
        Some(Credential::Session(token)) => {
            let Some(Grant::Session { key }) = state.signer.open(token, now) else {
                return unauthorized("the session expired or is not genuine; sign in again");
            };
            if !same_origin(&req) {
                return ApiError::new(
                    ErrorCode::Forbidden,
                    "a cookie-authenticated request must come from this API's own origin",
                )
                .into_response();
            }
            match live_key(state.keys.by_id(key).await) {
                Ok(k) => (k, None),
                Err(refused) => return refused.into_response(),
            }
        }
        Some(Credential::Share(token)) => {
            let Some(Grant::Share { key, job }) = state.signer.open(token, now) else {
                return unauthorized("the link expired or is not genuine");
            };
            if !shareable(req.method(), &route) {
                return ApiError::new(
                    ErrorCode::Forbidden,
                    "a share link only reads its job, its events and its outputs",
                )
                .into_response();
            }
            match live_key(state.keys.by_id(key).await) {
                Ok(k) => (k, Some(job)),
                Err(refused) => return refused.into_response(),
            }
        }
    };
    if !key.scope.allows(needed) {
        return ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "this needs a key of scope `{needed}`; this key's is `{}`",
                key.scope
            ),
        )
        .into_response();
    }
    let mut limit_headers = None;
    if let Some(rate) = key.limits.rate {
        match &state.redis {
            Some(conn) => {
                let mut conn = conn.clone();
                match super::rate::check(&mut conn, &state.config.redis.key_prefix, key.id, rate)
                    .await
                {
                    Ok(d) if !d.allowed => {
                        let mut resp = ApiError::new(
                            ErrorCode::RateLimited,
                            format!("this key may make {rate} requests"),
                        )
                        .into_response();
                        resp.headers_mut().extend(d.headers());
                        return resp;
                    }
                    Ok(d) => limit_headers = Some(d.headers()),
                    Err(e) => {
                        // Fail open: an outage of the limiter's store must not take the API
                        // down with it. Counted, so an alert can say the limits are off.
                        state.metrics.rate_limit_unavailable.inc();
                        tracing::warn!(error = %e, "rate limit not checked: Redis unavailable");
                    }
                }
            }
            None => {
                state.metrics.rate_limit_unavailable.inc();
            }
        }
    }
    req.extensions_mut().insert(Principal {
        key: Some(key),
        only_job,
    });
    let mut resp = next.run(req).await;
    if let Some(h) = limit_headers {
        resp.headers_mut().extend(h);
    }
    resp
}
