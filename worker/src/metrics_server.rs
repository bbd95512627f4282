//! The worker's HTTP listener on `worker.metrics_listen`: `GET /metrics` for Prometheus and the
//! probes `GET /healthz` and `GET /readyz` ([`crate::health`]) for orchestrators.

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::health::Readiness;
use crate::startup::Worker;

impl Worker {
    /// Serves this worker's registry and probes on `addr` (port 0 for any) until the process
    /// ends; returns the bound address. Several workers on one host: only the first gets a fixed
    /// port.
    pub async fn serve_metrics(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let registry = self.metrics.registry.clone();
        let status = self.status.subscribe();
        let stuck_after = self.stuck_after();
        let app = Router::new()
            .route(
                "/metrics",
                get(move || {
                    let registry = registry.clone();
                    async move {
                        (
                            [(
                                axum::http::header::CONTENT_TYPE,
                                "text/plain; version=0.0.4",
                            )],
                            orfeas_shared::metrics::render(&registry),
                        )
                    }
                }),
            )
            .route("/healthz", get(|| async { "ok" }))
            .route(
                "/readyz",
                get(move || {
                    let r = Readiness::of(&status.borrow(), stuck_after);
                    async move { (r.status_code(), axum::Json(r.body())) }
                }),
            );
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "worker metrics server stopped");
            }
        });
        Ok(bound)
    }
}
