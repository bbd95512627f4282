//! Log lines that lead to their trace: a line written while an exported span is current ends
//! with ` trace_id=<32 hex> span_id=<16 hex>`, the ids a trace store searches by. Lines outside
//! any exported span (start-up, background loops) and every line when export is off are
//! unchanged.

use std::fmt;

use opentelemetry::trace::TraceContextExt;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::registry::LookupSpan;

/// Wraps a line format (the default one) and appends the current span's trace and span ids.
///
/// The ids come from the OpenTelemetry context the tracing layer makes current while one of its
/// spans is entered, so they are those of the innermost *exported* span, whatever the log filter
/// shows; an event given an explicit `parent:` other than the current span gets the current
/// span's ids.
#[derive(Debug, Clone)]
pub struct TraceIds<F> {
    inner: F,
}

impl<F> TraceIds<F> {
    /// `inner` writes the line; give it its own ANSI setting (`Format::with_ansi`), since it
    /// writes into a buffer first.
    pub fn new(inner: F) -> Self {
        TraceIds { inner }
    }
}

impl<S, N, F> FormatEvent<S, N> for TraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let cx = opentelemetry::Context::current();
        let span = cx.span();
        let ids = span.span_context();
        if !ids.is_valid() {
            return self.inner.format_event(ctx, writer, event);
        }
        // The inner format ends the line; the ids go before that newline.
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let body = line.strip_suffix('\n').unwrap_or(&line);
        writeln!(
            writer,
            "{body} trace_id={} span_id={}",
            ids.trace_id(),
            ids.span_id()
        )
    }
}
