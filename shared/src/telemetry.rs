//! Logging and tracing: a `tracing` subscriber that writes logs to stderr and, when an OTLP
//! endpoint is configured, exports spans with OpenTelemetry (off by default). The W3C trace
//! context crosses processes in message headers ([`inject`], [`extract_into`]), so one trace
//! runs from the HTTP request through the queue to the worker's stage spans.

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

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

/// Default log filter: our crates at info, the exporter's own chatter off (no error spam when
/// no collector listens). `RUST_LOG` overrides it.
const DEFAULT_FILTER: &str = "info,opentelemetry=off,opentelemetry_sdk=off,opentelemetry_otlp=off,\
                              lapin=warn,sqlx=warn,hyper=warn,reqwest=warn,h2=warn,tower_http=warn";

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
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer(service))
}

/// Installs the process's subscriber: logs to stderr, spans to `otlp_endpoint` when set. An
/// exporter that cannot be built is reported in the log and export stays off.
pub fn init(service: &'static str, otlp_endpoint: Option<&str>) -> Telemetry {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    // Colours only on a terminal, plain text in log files.
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let exporter = otlp_endpoint.map(|e| otlp_provider(service, e));
    let (provider, otel, failure) = match exporter {
        None => (None, None, None),
        Some(Ok(p)) => {
            let layer = otel_layer::<Registry>(&p, service);
            (Some(p), Some(layer), None)
        }
        Some(Err(e)) => (None, None, Some(e)),
    };
    let _ = tracing_subscriber::registry()
        .with(otel)
        .with(filter)
        .with(fmt)
        .try_init();
    if let Some(e) = failure {
        tracing::warn!(error = %e, "OpenTelemetry export disabled");
    }
    Telemetry { provider }
}

struct MapCarrier<'a>(&'a mut HashMap<String, String>);

impl Injector for MapCarrier<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

struct ReadCarrier<'a>(&'a HashMap<String, String>);

impl Extractor for ReadCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// The W3C trace context (`traceparent`, `tracestate`) of a span; empty when the span is not
/// recorded by an OpenTelemetry layer.
pub fn inject(span: &tracing::Span) -> HashMap<String, String> {
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&span.context(), &mut MapCarrier(&mut carrier));
    carrier
}

/// Makes `span` a child of the trace context in `carrier` (if it holds a valid one).
pub fn extract_into(span: &tracing::Span, carrier: &HashMap<String, String>) {
    if !carrier.contains_key("traceparent") {
        return;
    }
    let cx = TraceContextPropagator::new().extract(&ReadCarrier(carrier));
    let _ = span.set_parent(cx);
}
