//! What each route needs, in one table keyed by the route's template. Routes not listed need a
//! `jobs` key — unmatched paths too, so an unauthenticated caller cannot map the API.

use axum::http::Method;
use orfeas_vocab::Scope;

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health probes, the API description, the Studio's files).
    Public,
    /// A key (or session, or share link) of at least this scope.
    Key(Scope),
}

/// Routes a share link may use (read-only views of its one job).
const SHAREABLE: [&str; 5] = [
    "/api/jobs/{id}",
    // Many jobs' events: the handler lets a share link follow only its own job.
    "/api/events",
    "/api/jobs/{id}/events",
    "/api/jobs/{id}/ws",
    "/api/jobs/{id}/outputs/{artifact}",
];

pub fn access(route: &str) -> Access {
    match route {
        "/healthz" | "/readyz" | "/openapi.json" => Access::Public,
        // The Studio's files, and what a client reads before signing in.
        "/" | "/studio/{*path}" | "/api/capabilities" => Access::Public,
        "/api/workers" | "/api/gpu/status" => Access::Key(Scope::Admin),
        r if r.starts_with("/api/performance/") => Access::Key(Scope::Admin),
        _ => Access::Key(Scope::Jobs),
    }
}

/// Whether a share link may be used for this request.
pub fn shareable(method: &Method, route: &str) -> bool {
    method == Method::GET && SHAREABLE.contains(&route)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_routes_need_admin_and_probes_are_public() {
        assert_eq!(access("/healthz"), Access::Public);
        assert_eq!(access("/studio/{*path}"), Access::Public);
        assert_eq!(access("/api/capabilities"), Access::Public);
        assert_eq!(
            access("/api/performance/summary"),
            Access::Key(Scope::Admin)
        );
        assert_eq!(access("/api/gpu/status"), Access::Key(Scope::Admin));
        assert_eq!(access("/api/jobs/{id}"), Access::Key(Scope::Jobs));
        assert_eq!(access("unmatched"), Access::Key(Scope::Jobs));
        assert!(shareable(&Method::GET, "/api/jobs/{id}/outputs/{artifact}"));
        assert!(!shareable(&Method::POST, "/api/jobs/{id}/cancel"));
        assert!(!shareable(&Method::GET, "/api/jobs"));
    }
}
