//! One span per HTTP request, named and attributed after OpenTelemetry's HTTP server
//! conventions: the root of a job's trace (its `publish` and, across the queue, the worker's
//! `job` span hang under the submitting request). Its target is this crate, so the span filter
//! that exports our spans exports it too, whatever the log filter says about `tower_http`.

use std::time::Duration;

use axum::extract::MatchedPath;
use axum::http::{Request, Response};
use orfeas_vocab::JobId;
use tower_http::trace::{DefaultOnRequest, HttpMakeClassifier, MakeSpan, OnResponse, TraceLayer};
use tracing::Span;
use tracing::field::Empty;

/// The router's tracing layer: [`RequestSpan`] for the span, [`RecordStatus`] for its outcome;
/// tower-http's own request/failure events as before.
pub type RequestTraceLayer =
    TraceLayer<HttpMakeClassifier, RequestSpan, DefaultOnRequest, RecordStatus>;

pub fn layer() -> RequestTraceLayer {
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_response(RecordStatus)
}

/// Makes the `request` span: `http.request.method`, `http.route` (the template, when a route
/// matched), `url.path`, `job.id` (from the path, or recorded by the submit handler), and later
/// `http.response.status_code`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, req: &Request<B>) -> Span {
        let path = req.uri().path();
        // Probes arrive every few seconds from every orchestrator; as traces they would only
        // bury the jobs' requests.
        if matches!(path, "/healthz" | "/readyz") {
            return Span::none();
        }
        let method = method_name(req.method());
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str);
        let name = match route {
            Some(r) => format!("{method} {r}"),
            None => method.to_owned(),
        };
        let span = tracing::info_span!(
            "request",
            otel.name = name,
            otel.kind = "server",
            otel.status_code = Empty,
            http.request.method = method,
            http.route = Empty,
            url.path = path,
            http.response.status_code = Empty,
            error.type = Empty,
            job.id = Empty,
        );
        if let Some(r) = route {
            span.record("http.route", r);
        }
        if let Some(id) = route.and_then(|r| job_in_path(r, path)) {
            span.record("job.id", tracing::field::display(id));
        }
        span
    }
}

/// Records the response status on the request span; a 5xx marks it failed (the conventions
/// leave 4xx unset on server spans: the client's error, not ours).
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordStatus;

impl<B> OnResponse<B> for RecordStatus {
    fn on_response(self, resp: &Response<B>, _latency: Duration, span: &Span) {
        let status = resp.status();
        span.record("http.response.status_code", status.as_u16());
        if status.is_server_error() {
            span.record("otel.status_code", "error");
            span.record("error.type", status.as_str());
        }
    }
}

/// The method as the conventions name it: the standard ones, anything else `_OTHER` (bounded
/// values, whatever clients send).
fn method_name(method: &axum::http::Method) -> &'static str {
    match crate::method_label(method) {
        "other" => "_OTHER",
        known => known,
    }
}

/// The job a `/api/jobs/{id}/…` request is about, when the path holds a valid id.
fn job_in_path(route: &str, path: &str) -> Option<JobId> {
    if !route.starts_with("/api/jobs/{id}") {
        return None;
    }
    path.strip_prefix("/api/jobs/")?
        .split('/')
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_comes_from_job_routes_only() {
        let id = JobId::new();
        let path = format!("/api/jobs/{id}/outputs/glb");
        assert_eq!(
            job_in_path("/api/jobs/{id}/outputs/{artifact}", &path),
            Some(id)
        );
        assert_eq!(
            job_in_path("/api/jobs/{id}", &format!("/api/jobs/{id}")),
            Some(id)
        );
        assert_eq!(job_in_path("/api/jobs/{id}", "/api/jobs/not-an-id"), None);
        assert_eq!(job_in_path("/api/jobs", "/api/jobs"), None);
    }

    #[test]
    fn methods_are_named_as_the_conventions_say() {
        assert_eq!(method_name(&axum::http::Method::POST), "POST");
        let odd = axum::http::Method::from_bytes(b"PURGE").expect("method");
        assert_eq!(method_name(&odd), "_OTHER");
    }
}
