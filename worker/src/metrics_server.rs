//! The worker's Prometheus endpoint: `GET /metrics` on `worker.metrics_listen`.

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::startup::Worker;

impl Worker {
    /// Serves this worker's registry on `addr` (port 0 for any) until the process ends; returns
    /// the bound address. Several workers on one host: only the first gets a fixed port.
    pub async fn serve_metrics(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let registry = self.metrics.registry.clone();
        let app = Router::new().route(
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
        );
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "worker metrics server stopped");
            }
        });
        Ok(bound)
    }
}
