//! The two filters: which lines are logged (`RUST_LOG`) and which spans are exported
//! (`telemetry.span_filter`). They are separate because they serve different readers: quieting a
//! noisy crate in the log (say `tower_http=warn`) must not take spans out of every trace, and
//! turning the log up to `debug` must not flood the trace store.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};
use tracing_subscriber::EnvFilter;

/// Default log filter: our crates at info, the exporter's own chatter off (no error spam when
/// no collector listens). `RUST_LOG` overrides it.
pub const DEFAULT_LOG_FILTER: &str = "info,opentelemetry=off,opentelemetry_sdk=off,opentelemetry_otlp=off,\
                                      lapin=warn,sqlx=warn,hyper=warn,reqwest=warn,h2=warn,tower_http=warn";

/// Default span filter: every `orfeas*` crate (targets match by prefix) at info — the API's
/// request and publish spans, the worker's job and batch spans, the pipeline's stages and engine
/// sub-steps — and nothing from libraries, whose spans would only bury those.
pub const DEFAULT_SPAN_FILTER: &str = "orfeas=info";

/// The log filter: `RUST_LOG` when it is set and valid, else [`DEFAULT_LOG_FILTER`].
pub fn log_filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER))
}

/// Which spans (and the log events recorded on them) are exported: `RUST_LOG` directive syntax
/// (`target=level`, comma-separated), checked when the configuration loads.
#[derive(Clone, PartialEq, Eq)]
pub struct SpanFilter(String);

impl SpanFilter {
    pub fn env_filter(&self) -> EnvFilter {
        // Checked in `from_str`; the default is a literal.
        EnvFilter::builder()
            .parse(&self.0)
            .unwrap_or_else(|_| EnvFilter::new(DEFAULT_SPAN_FILTER))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for SpanFilter {
    fn default() -> Self {
        SpanFilter(DEFAULT_SPAN_FILTER.to_owned())
    }
}

impl FromStr for SpanFilter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        EnvFilter::builder()
            .parse(s)
            .map_err(|e| format!("`{s}`: {e} (directives as in RUST_LOG, e.g. `orfeas=info`)"))?;
        Ok(SpanFilter(s.to_owned()))
    }
}

impl<'de> Deserialize<'de> for SpanFilter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for SpanFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SpanFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}
