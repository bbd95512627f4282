//! ORFEAS job API: `orfeas api`. Thin routes over a jobs service, upload parsing at the edge,
//! one error → response mapping, the outbox relay, operator read-outs and the OpenAPI document.
//! It never touches the pipeline (and never links burn).
//!
//! Layout: [`startup`] builds the [`AppState`]; [`http`] is the server loop and its limits;
//! [`upload`] parses submissions; [`service`] is the jobs service; [`routes`] the handlers;
//! [`outbox`] the relay and confirm marker; [`reaper`] recovers lost workers' jobs and runs
//! retention and the queue estimates; [`events`] follows jobs' live events; [`auth`] checks
//! keys, sessions and share links; [`request_span`] opens each request's trace span;
//! [`studio`] serves the web app embedded in the binary;
//! [`webhooks`] delivers signed webhooks; [`views`] the response bodies; [`error`] the one
//! error type; [`openapi`] the document.

pub mod auth;
pub mod error;
pub mod events;
pub mod http;
pub mod openapi;
pub mod outbox;
pub mod reaper;
pub mod request_span;
pub mod routes;
pub mod service;
pub mod startup;
pub mod state;
pub mod studio;
pub mod upload;
pub mod views;
pub mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use orfeas_shared::StartError;
use tokio::net::TcpListener;
use tower_http::timeout::TimeoutBody;

use routes::{account, capabilities, events as event_routes, jobs, ops, performance};
pub use startup::build_state;
pub use state::AppState;

pub fn router(state: AppState) -> Router {
    let body_limit = usize::try_from(state.config.api.max_upload_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(1024 * 1024);
    Router::new()
        .route(
            "/api/jobs",
            post(jobs::submit)
                .layer(DefaultBodyLimit::max(body_limit))
                // A stalled upload is answered 408 instead of pinning its memory.
                .layer(axum::middleware::map_request_with_state(
                    state.config.api.body_timeout,
                    body_timeout,
                ))
                .get(jobs::list_jobs),
        )
        .route(
            "/api/jobs/{id}",
            get(jobs::get_job).delete(jobs::delete_job),
        )
        .route("/api/jobs/{id}/share", post(account::share))
        .route("/api/me", get(account::me))
        .route(
            "/api/session",
            post(account::create_session).delete(account::end_session),
        )
        .route("/api/jobs/{id}/outputs/{artifact}", get(jobs::get_output))
        .route("/api/jobs/{id}/cancel", post(jobs::cancel))
        .route("/api/jobs/{id}/rerun", post(jobs::rerun))
        .route("/api/capabilities", get(capabilities::capabilities))
        .route("/api/jobs/{id}/events", get(event_routes::job_sse))
        .route("/api/jobs/{id}/ws", get(event_routes::job_ws))
        .route("/api/events", get(event_routes::many_sse))
        .route("/api/workers", get(ops::workers))
        .route("/api/performance/summary", get(performance::summary))
        .route(
            "/api/performance/recommendations",
            get(performance::recommendations),
        )
        .route("/api/gpu/status", get(performance::gpu_status))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/openapi.json", get(openapi::openapi))
        .merge(studio::Studio::new().routes())
        .fallback(|| async { error::ApiError::not_found("no such route") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::middleware::authenticate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            record_request,
        ))
        // Outermost, so the request span covers authentication and starts the job's trace.
        .layer(request_span::layer())
        .with_state(state)
}

/// Serves `/metrics` on `addr` (port 0 for any) until the process ends — its own listener, so
/// it needs no key and is not exposed with the API; returns the bound address.
pub async fn serve_metrics(
    state: &AppState,
    addr: std::net::SocketAddr,
) -> std::io::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(ops::metrics))
        .with_state(state.clone());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "API metrics server stopped");
        }
    });
    Ok(bound)
}

/// Counts and times every request by route template, method and status.
async fn record_request(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    // Label values stay bounded: route templates (one value for every unmatched path) and the
    // standard methods (anything else is `other`).
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(req.method());
    let start = std::time::Instant::now();
    let resp = next.run(req).await;
    let m = &state.metrics;
    m.http_duration
        .with_label_values(&[route.as_str(), method])
        .observe(start.elapsed().as_secs_f64());
    m.http_requests
        .with_label_values(&[route.as_str(), method, resp.status().as_str()])
        .inc();
    resp
}

/// Wraps the request body so that a pause longer than `timeout` between its chunks is an error
/// (which the upload answers with 408).
async fn body_timeout(
    axum::extract::State(timeout): axum::extract::State<std::time::Duration>,
    req: axum::extract::Request,
) -> axum::extract::Request {
    let (parts, body) = req.into_parts();
    axum::extract::Request::from_parts(
        parts,
        axum::body::Body::new(TimeoutBody::new(timeout, body)),
    )
}

/// A method as a metric label: the standard ones by name, anything else `other`.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::PATCH, "PATCH"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN
        .iter()
        .find(|(m, _)| m == method)
        .map_or("other", |(_, name)| name)
}

/// Serves on `listener` until `shutdown` resolves, with the outbox relay and the reaper
/// alongside.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let relay = tokio::spawn(outbox::relay(state.clone()));
    let reaper = tokio::spawn(reaper::run(state.clone()));
    let retention = tokio::spawn(reaper::retention(state.clone()));
    let estimates = tokio::spawn(reaper::estimates(state.clone()));
    let webhooks = state.dispatcher.clone().map(|d| tokio::spawn(d.run()));
    let a = &state.config.api;
    let limits = http::Limits {
        max_connections: a.max_connections,
        header_timeout: a.header_timeout,
        shutdown_timeout: a.shutdown_timeout,
    };
    let result = http::serve(listener, router(state), limits, shutdown).await;
    relay.abort();
    reaper.abort();
    retention.abort();
    estimates.abort();
    if let Some(w) = webhooks {
        w.abort();
    }
    Ok(result?)
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::method_label;

    #[test]
    fn method_labels_are_bounded() {
        assert_eq!(method_label(&Method::POST), "POST");
        let junk = Method::from_bytes(b"JUNK42").expect("a method");
        assert_eq!(method_label(&junk), "other");
    }
}
