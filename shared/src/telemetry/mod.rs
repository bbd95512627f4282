//! Logging and tracing: a `tracing` subscriber that writes logs to stderr and, when an OTLP
//! endpoint is configured, exports spans with OpenTelemetry (off by default). The W3C trace
//! context crosses processes in message headers ([`inject`], [`extract_into`]), so one trace
//! runs from the HTTP request through the queue to the worker's stage spans.
//!
//! Logs and spans are filtered apart ([`filter`]): an operator's `RUST_LOG` never decides which
//! spans a trace has, and log lines written inside an exported span carry its ids
//! ([`log_format`]) so a line leads to its trace.

pub mod filter;
pub mod log_format;
mod propagation;

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::TelemetryConfig;
pub use filter::{DEFAULT_LOG_FILTER, DEFAULT_SPAN_FILTER, SpanFilter};
pub use log_format::TraceIds;
pub use propagation::{extract_into, inject};

/// Keeps the span exporter alive; flushes pending spans when dropped.
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown_with_timeout(Duration::from_secs(3));
        }
    }
}

/// A tracer provider exporting to an OTLP/HTTP collector (`endpoint` like
/// `http://127.0.0.1:4318/v1/traces`).
pub fn otlp_provider(service: &'static str, endpoint: &str) -> Result<SdkTracerProvider, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(endpoint)
        .with_timeout(Duration::from_secs(3))
        .build()
        .map_err(|e| e.to_string())?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service).build())
        .build())
}

/// The layer that turns `tracing` spans into OpenTelemetry spans of `provider`.
pub fn otel_layer<S>(provider: &SdkTracerProvider, service: &'static str) -> impl Layer<S> + use<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer(service))
}

/// The process's subscriber: log lines through `logs` to `writer`, spans through `spans` to
/// `provider` (when there is one). Each layer has its own filter, so what one lets through the
/// other still decides for itself.
pub fn subscriber<W>(
    service: &'static str,
    provider: Option<&SdkTracerProvider>,
    spans: &SpanFilter,
    logs: EnvFilter,
    writer: W,
    ansi: bool,
) -> impl tracing::Subscriber + Send + Sync + for<'a> LookupSpan<'a> + use<W>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let otel = provider.map(|p| otel_layer(p, service).with_filter(spans.env_filter()));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi)
        .event_format(TraceIds::new(
            tracing_subscriber::fmt::format().with_ansi(ansi),
        ))
        .with_filter(logs);
    tracing_subscriber::registry().with(otel).with(fmt)
}

/// Installs the process's subscriber: logs to stderr (`RUST_LOG` or [`DEFAULT_LOG_FILTER`]),
/// spans to `config.otlp_endpoint` when set (chosen by `config.span_filter`). An exporter that
/// cannot be built is reported in the log and export stays off.
pub fn init(service: &'static str, config: &TelemetryConfig) -> Telemetry {
    // Colours only on a terminal, plain text in log files.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (provider, failure) = match config.otlp_endpoint.as_deref() {
        None => (None, None),
        Some(endpoint) => match otlp_provider(service, endpoint) {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(e)),
        },
    };
    let _ = subscriber(
        service,
        provider.as_ref(),
        &config.span_filter,
        filter::log_filter(),
        std::io::stderr,
        ansi,
    )
    .try_init();
    if let Some(e) = failure {
        tracing::warn!(error = %e, "OpenTelemetry export disabled");
    }
    Telemetry { provider }
}

#[cfg(test)]
mod tests;
