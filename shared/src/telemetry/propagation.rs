//! The W3C trace context (`traceparent`, `tracestate`) in and out of string maps: the form in
//! which it is stored with a job (the outbox) and carried in AMQP message headers.

use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

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

/// Makes `span` a child of the trace context in `carrier` (if it holds a valid one). Call it
/// before the span is entered or logged in: once its OpenTelemetry span has started, its parent
/// is fixed.
pub fn extract_into(span: &tracing::Span, carrier: &HashMap<String, String>) {
    if !carrier.contains_key("traceparent") {
        return;
    }
    let cx = TraceContextPropagator::new().extract(&ReadCarrier(carrier));
    let _ = span.set_parent(cx);
}
