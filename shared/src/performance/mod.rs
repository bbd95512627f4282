//! The performance ledger read back for operators: the summary over a window ([`summary`]; its
//! SQL lives with the ledger in `db::ledger`), data-driven recommendations ([`rules`]) and the
//! devices' state from the workers' heartbeats ([`devices`]).

pub mod devices;
pub mod rules;
pub mod summary;

use serde::Serialize;
use utoipa::ToSchema;

pub use devices::{
    DeviceStatus, FleetTotals, GpuStatus, MemorySummary, Trend, Trends, memory_trend,
};
pub use rules::{Facts, Recommendation, RuleId, recommendations};
pub use summary::{
    Bottleneck, Durations, LedgerFigures, Severity, StageBreakdown, StageShare, Summary, Window,
};

/// `GET /api/performance/recommendations`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RecommendationsReport {
    pub window_seconds: i64,
    /// Documented contract: the advice as text, most severe first.
    pub recommendations: Vec<String>,
    /// The same advice with its rule, severity and the figures behind it.
    pub details: Vec<Recommendation>,
}

impl RecommendationsReport {
    pub fn new(window: Window, details: Vec<Recommendation>) -> Self {
        RecommendationsReport {
            window_seconds: window.seconds(),
            recommendations: details.iter().map(|r| r.advice.clone()).collect(),
            details,
        }
    }
}
