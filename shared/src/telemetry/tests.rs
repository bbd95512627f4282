use std::io;
use std::sync::{Arc, Mutex};

use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::EnvFilter;

use super::*;

/// The log as written, shared with the subscriber's writer.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("log").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs `f` under the process's subscriber with these filters; the spans exported and the log.
fn capture(logs: &str, spans: &str, f: impl FnOnce()) -> (Vec<SpanData>, String) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let lines = Lines::default();
    let writer = lines.clone();
    let sub = subscriber(
        "test",
        Some(&provider),
        &spans.parse().expect("span filter"),
        EnvFilter::new(logs),
        move || writer.clone(),
        false,
    );
    tracing::subscriber::with_default(sub, f);
    let _ = provider.force_flush();
    let log = String::from_utf8(lines.0.lock().expect("log").clone()).expect("utf-8");
    (exporter.get_finished_spans().expect("spans"), log)
}

#[test]
fn the_log_filter_does_not_choose_the_exported_spans() {
    // The shipped log filter quiets tower_http and an operator quiets the API's info lines: the
    // request span is exported all the same, and a library's span is not.
    let logs = format!("{DEFAULT_LOG_FILTER},orfeas_api=warn");
    let (spans, log) = capture(&logs, DEFAULT_SPAN_FILTER, || {
        let request = tracing::info_span!(target: "orfeas_api::trace", "request");
        let _entered = request.enter();
        tracing::info_span!(target: "tower_http::trace", "library").in_scope(|| {});
        tracing::info!(target: "orfeas_api::service", "accepted");
        tracing::warn!(target: "orfeas_api::service", "queue unavailable");
    });
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
    assert_eq!(names, ["request"]);
    assert!(log.contains("queue unavailable"), "{log}");
    assert!(!log.contains("accepted"), "{log}");
}

#[test]
fn the_span_filter_does_not_choose_the_log_lines() {
    let (spans, log) = capture("info", "off", || {
        tracing::info_span!(target: "orfeas_worker", "job")
            .in_scope(|| tracing::info!(target: "orfeas_worker", "job started"));
    });
    assert!(spans.is_empty());
    assert!(log.contains("job started"), "{log}");
    assert!(
        !log.contains("trace_id="),
        "no exported span, no ids: {log}"
    );
}

#[test]
fn lines_inside_an_exported_span_carry_its_ids() {
    let (spans, log) = capture(DEFAULT_LOG_FILTER, DEFAULT_SPAN_FILTER, || {
        tracing::info!(target: "orfeas_worker", "consuming");
        tracing::info_span!(target: "orfeas_worker", "job")
            .in_scope(|| tracing::info!(target: "orfeas_worker", attempt = 1, "job started"));
    });
    let job = &spans[0].span_context;
    let line = log
        .lines()
        .find(|l| l.contains("job started"))
        .expect("logged");
    assert!(
        line.ends_with(&format!(
            "attempt=1 trace_id={} span_id={}",
            job.trace_id(),
            job.span_id()
        )),
        "{line}"
    );
    let outside = log
        .lines()
        .find(|l| l.contains("consuming"))
        .expect("logged");
    assert!(!outside.contains("trace_id="), "{outside}");
}

#[test]
fn a_span_filter_is_checked_when_the_configuration_loads() {
    let bad = crate::Config::load(
        None,
        [(
            "ORFEAS__TELEMETRY__SPAN_FILTER".to_owned(),
            "orfeas=loud".to_owned(),
        )],
    )
    .expect_err("not a level");
    assert!(bad.to_string().contains("telemetry.span_filter"), "{bad}");
    let good = crate::Config::load(
        None,
        [(
            "ORFEAS__TELEMETRY__SPAN_FILTER".to_owned(),
            "orfeas=debug,tower_http=info".to_owned(),
        )],
    )
    .expect("valid directives");
    assert_eq!(
        good.telemetry.span_filter.as_str(),
        "orfeas=debug,tower_http=info"
    );
    assert_eq!(
        crate::Config::default().telemetry.span_filter.as_str(),
        DEFAULT_SPAN_FILTER
    );
}
