//! `GET /api/performance/summary`: the ledger's figures over a window, with per-stage shares,
//! bottlenecks and the fields of the product's documented contract (`total_pipelines`,
//! `avg_duration`, `bottlenecks`, `stage_breakdown`) beside the richer ones.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use orfeas_vocab::{ErrorCode, Stage};
use serde::Serialize;
use utoipa::ToSchema;

/// How far back a summary looks: one minute to 400 days (longer than two days is answered from
/// the hourly rollups).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window(i64);

impl Window {
    pub const DEFAULT: Window = Window(86_400);
    const MIN_SECONDS: i64 = 60;
    const MAX_SECONDS: i64 = 400 * 86_400;

    pub fn seconds(self) -> i64 {
        self.0
    }
}

impl FromStr for Window {
    type Err = String;
    /// `30m`, `6h`, `7d` or plain seconds.
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let raw = raw.trim();
        let (num, unit) = match raw.char_indices().last() {
            Some((i, c)) if c.is_ascii_alphabetic() => (&raw[..i], c),
            _ => (raw, 's'),
        };
        let n: i64 = num
            .parse()
            .map_err(|_| format!("`window` must look like 30m, 6h or 7d, not `{raw}`"))?;
        let unit_seconds = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(format!("unknown unit in `window={raw}` (s, m, h, d)")),
        };
        let secs = n.saturating_mul(unit_seconds);
        if !(Self::MIN_SECONDS..=Self::MAX_SECONDS).contains(&secs) {
            return Err("`window` must be between 1 minute and 400 days".into());
        }
        Ok(Window(secs))
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    /// Severity of a stage by its share of pipeline time: ≥ 40 % critical, ≥ 25 % warning,
    /// ≥ 15 % info; smaller stages are no bottleneck.
    pub fn of_share(share_percent: f64) -> Option<Severity> {
        if share_percent >= 40.0 {
            Some(Severity::Critical)
        } else if share_percent >= 25.0 {
            Some(Severity::Warning)
        } else if share_percent >= 15.0 {
            Some(Severity::Info)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StageShare {
    pub stage: Stage,
    pub jobs: i64,
    pub average_seconds: f64,
    /// Share of the summed pipeline time, in percent.
    #[schema(example = 48.7)]
    pub share_percent: f64,
}

impl StageShare {
    /// Shares from per-stage `(stage, jobs, average seconds, total seconds)`.
    pub fn from_totals(totals: &[(Stage, i64, f64, f64)]) -> Vec<StageShare> {
        let grand: f64 = totals.iter().map(|t| t.3).sum();
        totals
            .iter()
            .map(|&(stage, jobs, average_seconds, total)| StageShare {
                stage,
                jobs,
                average_seconds,
                share_percent: if grand > 0.0 {
                    round2(100.0 * total / grand)
                } else {
                    0.0
                },
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Bottleneck {
    pub stage: Stage,
    #[schema(example = 48.7)]
    pub avg_percent: f64,
    pub severity: Severity,
}

/// One stage in the documented `stage_breakdown` map.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StageBreakdown {
    /// Mean seconds per job.
    pub avg_duration: f64,
    /// Share of pipeline time, in percent.
    pub avg_percent: f64,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Durations {
    pub average_seconds: f64,
    pub p50_seconds: f64,
    pub p95_seconds: f64,
}

impl Durations {
    pub fn new(average_seconds: f64, p50_seconds: f64, p95_seconds: f64) -> Self {
        Durations {
            average_seconds,
            p50_seconds,
            p95_seconds,
        }
    }
}

/// What the ledger query yields; the summary derives the rest from it.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerFigures {
    pub window: Window,
    pub pipelines: i64,
    pub failed: i64,
    pub canceled: i64,
    pub duration: Durations,
    pub queue_wait: Durations,
    pub stages: Vec<StageShare>,
    pub average_batch_size: f64,
    pub failures: Vec<(ErrorCode, i64)>,
    pub average_octree_resolution: f64,
    pub average_steps: f64,
    pub average_input_bytes: f64,
}

/// `GET /api/performance/summary`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Summary {
    /// Documented contract: pipelines that succeeded in the window (same as `pipelines`).
    #[schema(example = 1284)]
    pub total_pipelines: i64,
    /// Documented contract: mean pipeline seconds (same as `duration.average_seconds`).
    #[schema(example = 21.4)]
    pub avg_duration: f64,
    /// Stages taking ≥ 15 % of pipeline time, largest first.
    pub bottlenecks: Vec<Bottleneck>,
    /// Documented contract: every stage that ran, by name.
    #[schema(value_type = Object)]
    pub stage_breakdown: BTreeMap<Stage, StageBreakdown>,
    pub window_seconds: i64,
    /// Pipelines that succeeded in the window.
    pub pipelines: i64,
    pub failed: i64,
    pub canceled: i64,
    /// Pipeline time per job: the sum of its stages in the attempt that finished it.
    pub duration: Durations,
    /// From acceptance to the first attempt's start.
    pub queue_wait: Durations,
    pub stages: Vec<StageShare>,
    /// Mean jobs per engine batch.
    pub average_batch_size: f64,
    /// Error codes of failed jobs, most frequent first.
    #[schema(value_type = Vec<(String, i64)>)]
    pub failures: Vec<(ErrorCode, i64)>,
    /// Means of the succeeded jobs' options (`steps` over the jobs that named theirs).
    pub average_octree_resolution: f64,
    pub average_steps: f64,
    pub average_input_bytes: f64,
}

impl Summary {
    /// The share of pipeline time a stage took, in percent (0 when it did not run).
    pub fn share(&self, stage: Stage) -> f64 {
        self.stages
            .iter()
            .find(|s| s.stage == stage)
            .map(|s| s.share_percent)
            .unwrap_or(0.0)
    }
}

impl From<LedgerFigures> for Summary {
    fn from(f: LedgerFigures) -> Self {
        let mut bottlenecks: Vec<Bottleneck> = f
            .stages
            .iter()
            .filter_map(|s| {
                Severity::of_share(s.share_percent).map(|severity| Bottleneck {
                    stage: s.stage,
                    avg_percent: s.share_percent,
                    severity,
                })
            })
            .collect();
        bottlenecks.sort_by(|a, b| b.avg_percent.total_cmp(&a.avg_percent));
        let stage_breakdown = f
            .stages
            .iter()
            .map(|s| {
                (
                    s.stage,
                    StageBreakdown {
                        avg_duration: s.average_seconds,
                        avg_percent: s.share_percent,
                        count: s.jobs,
                    },
                )
            })
            .collect();
        Summary {
            total_pipelines: f.pipelines,
            avg_duration: f.duration.average_seconds,
            bottlenecks,
            stage_breakdown,
            window_seconds: f.window.seconds(),
            pipelines: f.pipelines,
            failed: f.failed,
            canceled: f.canceled,
            duration: f.duration,
            queue_wait: f.queue_wait,
            stages: f.stages,
            average_batch_size: f.average_batch_size,
            failures: f.failures,
            average_octree_resolution: f.average_octree_resolution,
            average_steps: f.average_steps,
            average_input_bytes: f.average_input_bytes,
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        let w = |s: &str| s.parse::<Window>().map(Window::seconds);
        assert_eq!(w("30m"), Ok(1800));
        assert_eq!(w("6h"), Ok(21_600));
        assert_eq!(w("7d"), Ok(604_800));
        assert_eq!(w("600"), Ok(600));
        assert_eq!(Window::DEFAULT.seconds(), 86_400);
        for bad in ["", "x", "5y", "10s", "401d", "-1h", "99999999999999999d"] {
            assert!(bad.parse::<Window>().is_err(), "{bad}");
        }
    }

    #[test]
    fn severity_thresholds() {
        assert_eq!(Severity::of_share(48.7), Some(Severity::Critical));
        assert_eq!(Severity::of_share(30.0), Some(Severity::Warning));
        assert_eq!(Severity::of_share(16.0), Some(Severity::Info));
        assert_eq!(Severity::of_share(5.0), None);
    }

    #[test]
    fn the_documented_fields_mirror_the_measured_ones() {
        let stages = StageShare::from_totals(&[
            (Stage::ImageLoading, 4, 0.5, 2.0),
            (Stage::ShapeGeneration, 4, 4.0, 16.0),
            (Stage::MeshExport, 4, 0.5, 2.0),
        ]);
        let s = Summary::from(LedgerFigures {
            window: Window::DEFAULT,
            pipelines: 4,
            failed: 1,
            canceled: 0,
            duration: Durations::new(5.0, 4.8, 6.0),
            queue_wait: Durations::new(1.0, 0.9, 2.0),
            stages,
            average_batch_size: 2.0,
            failures: vec![(ErrorCode::NoForeground, 1)],
            average_octree_resolution: 256.0,
            average_steps: 0.0,
            average_input_bytes: 1e5,
        });
        assert_eq!(s.total_pipelines, 4);
        assert_eq!(s.avg_duration, 5.0);
        assert_eq!(s.share(Stage::ShapeGeneration), 80.0);
        assert_eq!(s.bottlenecks.len(), 1);
        assert_eq!(s.bottlenecks[0].stage, Stage::ShapeGeneration);
        assert_eq!(s.bottlenecks[0].severity, Severity::Critical);
        let json = serde_json::to_value(&s).expect("json");
        assert_eq!(
            json["stage_breakdown"]["shape_generation"]["avg_percent"],
            80.0
        );
        assert_eq!(json["stage_breakdown"]["image_loading"]["count"], 4);
        assert_eq!(json["failures"][0][0], "no_foreground");
        assert_eq!(
            json["stage_breakdown"].as_object().map(|m| m.len()),
            Some(3)
        );
    }
}
