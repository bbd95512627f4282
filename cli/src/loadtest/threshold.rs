//! k6-style thresholds: `METRIC OP VALUE`, e.g. `e2e_p95<30s`, `error_rate<0.01`,
//! `submit_p99<=500ms`, `throughput>=2/s`. Metric names come from the enums below, values carry
//! their unit (a latency without one is refused: `30` could mean seconds or milliseconds), and
//! every threshold is parsed before any load is sent.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::args::{ArgError, DURATION_UNITS, RATE_UNITS, arg_error, number_with_unit};
use super::results::Results;
use super::stats::Samples;

/// A latency series of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    /// From sending the job to seeing it end (succeeded jobs).
    E2e,
    /// `created_at` → `started_at` (succeeded jobs).
    QueueWait,
    /// `started_at` → `finished_at` (succeeded jobs).
    Run,
    /// The `POST /api/jobs` request (every answered or timed-out submission).
    Submit,
}

impl Series {
    const ALL: [Series; 4] = [Series::E2e, Series::QueueWait, Series::Run, Series::Submit];

    pub const fn name(self) -> &'static str {
        match self {
            Series::E2e => "e2e",
            Series::QueueWait => "queue_wait",
            Series::Run => "run",
            Series::Submit => "submit",
        }
    }

    pub fn samples(self, r: &mut Results) -> &mut Samples {
        match self {
            Series::E2e => &mut r.e2e,
            Series::QueueWait => &mut r.queue_wait,
            Series::Run => &mut r.run,
            Series::Submit => &mut r.submit,
        }
    }
}

/// A figure of a latency series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    Avg,
    Min,
    Max,
    /// The nearest-rank percentile, 0 < p ≤ 100 (`p95`, `p99.9`).
    Percentile(f64),
}

impl FromStr for Stat {
    type Err = ArgError;
    fn from_str(s: &str) -> Result<Stat, ArgError> {
        match s {
            "avg" => Ok(Stat::Avg),
            "min" => Ok(Stat::Min),
            "max" => Ok(Stat::Max),
            _ => {
                let p = s
                    .strip_prefix('p')
                    .and_then(|p| p.parse::<f64>().ok())
                    .filter(|p| *p > 0.0 && *p <= 100.0)
                    .ok_or_else(|| {
                        arg_error(format!(
                            "`{s}`: expected avg, min, max or a percentile p1…p100 (p99.9 too)"
                        ))
                    })?;
                Ok(Stat::Percentile(p))
            }
        }
    }
}

/// A share of the run's jobs (0…1); see [`Results`] for each definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ratio {
    ErrorRate,
    SubmitErrorRate,
    ThrottledRate,
    FailRate,
    DroppedRate,
}

impl Ratio {
    const ALL: [Ratio; 5] = [
        Ratio::ErrorRate,
        Ratio::SubmitErrorRate,
        Ratio::ThrottledRate,
        Ratio::FailRate,
        Ratio::DroppedRate,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Ratio::ErrorRate => "error_rate",
            Ratio::SubmitErrorRate => "submit_error_rate",
            Ratio::ThrottledRate => "throttled_rate",
            Ratio::FailRate => "fail_rate",
            Ratio::DroppedRate => "dropped_rate",
        }
    }

    fn value(self, r: &Results) -> Option<f64> {
        match self {
            Ratio::ErrorRate => r.error_rate(),
            Ratio::SubmitErrorRate => r.submit_error_rate(),
            Ratio::ThrottledRate => r.throttled_rate(),
            Ratio::FailRate => r.fail_rate(),
            Ratio::DroppedRate => r.dropped_rate(),
        }
    }
}

/// What a threshold is about.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    Latency(Series, Stat),
    Ratio(Ratio),
    /// Jobs that ended per second (first submission to last end).
    Throughput,
}

const THROUGHPUT: &str = "throughput";

impl FromStr for Metric {
    type Err = ArgError;
    fn from_str(s: &str) -> Result<Metric, ArgError> {
        if s == THROUGHPUT {
            return Ok(Metric::Throughput);
        }
        if let Some(r) = Ratio::ALL.into_iter().find(|r| r.name() == s) {
            return Ok(Metric::Ratio(r));
        }
        if let Some((series, stat)) = s.rsplit_once('_')
            && let Some(series) = Series::ALL.into_iter().find(|x| x.name() == series)
        {
            return Ok(Metric::Latency(series, stat.parse()?));
        }
        Err(arg_error(format!(
            "unknown metric `{s}` (expected {}_<stat> with stat avg, min, max or pN; {}; or {THROUGHPUT})",
            Series::ALL.map(Series::name).join("_<stat>, "),
            Ratio::ALL.map(Ratio::name).join(", "),
        )))
    }
}

impl Metric {
    /// The metric's value in its unit (seconds, a share, jobs per second).
    pub fn value(self, r: &mut Results) -> Option<f64> {
        match self {
            Metric::Latency(series, stat) => {
                let s = series.samples(r);
                match stat {
                    Stat::Avg => s.mean(),
                    Stat::Min => s.min(),
                    Stat::Max => s.max(),
                    Stat::Percentile(p) => s.percentile(p),
                }
            }
            Metric::Ratio(ratio) => ratio.value(r),
            Metric::Throughput => r.completed_per_s(),
        }
    }

    /// `v` written in the metric's unit.
    pub fn show(self, v: f64) -> String {
        match self {
            Metric::Latency(..) => super::report::seconds(v),
            Metric::Ratio(_) => format!("{v:.4} ({:.2} %)", v * 100.0),
            Metric::Throughput => format!("{v:.3}/s"),
        }
    }

    fn parse_value(self, s: &str) -> Result<f64, ArgError> {
        match self {
            Metric::Latency(..) => number_with_unit(s, DURATION_UNITS, None, "latency"),
            Metric::Throughput => number_with_unit(s, RATE_UNITS, Some(1.0), "throughput"),
            Metric::Ratio(_) => {
                let v = number_with_unit(s, &[("%", 0.01)], Some(1.0), "share")?;
                if (0.0..=1.0).contains(&v) {
                    Ok(v)
                } else {
                    Err(arg_error(format!(
                        "share `{s}`: expected 0…1 or a percentage"
                    )))
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn holds(self, actual: f64, limit: f64) -> bool {
        match self {
            Op::Lt => actual < limit,
            Op::Le => actual <= limit,
            Op::Gt => actual > limit,
            Op::Ge => actual >= limit,
        }
    }
}

/// One `--threshold`.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// As given, without spaces: how it is named in the verdicts.
    pub text: String,
    pub metric: Metric,
    pub op: Op,
    /// In the metric's unit.
    pub limit: f64,
}

impl FromStr for Threshold {
    type Err = ArgError;
    fn from_str(given: &str) -> Result<Threshold, ArgError> {
        let text: String = given.split_whitespace().collect();
        let at = text.find(['<', '>']).ok_or_else(|| {
            arg_error(format!(
                "threshold `{given}`: expected METRIC<VALUE (or <=, >, >=), e.g. e2e_p95<30s"
            ))
        })?;
        let (name, rest) = text.split_at(at);
        let (op, value) = match rest.as_bytes() {
            [b'<', b'=', ..] => (Op::Le, &rest[2..]),
            [b'>', b'=', ..] => (Op::Ge, &rest[2..]),
            [b'<', ..] => (Op::Lt, &rest[1..]),
            _ => (Op::Gt, &rest[1..]),
        };
        let metric: Metric = name
            .parse()
            .map_err(|e: ArgError| arg_error(format!("threshold `{given}`: {e}")))?;
        let limit = metric
            .parse_value(value)
            .map_err(|e| arg_error(format!("threshold `{given}`: {e}")))?;
        Ok(Threshold {
            text,
            metric,
            op,
            limit,
        })
    }
}

/// A threshold checked against a run.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub threshold: String,
    pub pass: bool,
    /// `null` when the run gave no value (no job succeeded, nothing sent): a failure.
    pub actual: Option<f64>,
    /// `actual` in the metric's unit, for people.
    #[serde(skip)]
    pub shown: Option<String>,
}

impl Threshold {
    pub fn check(&self, r: &mut Results) -> Verdict {
        let actual = self.metric.value(r);
        Verdict {
            threshold: self.text.clone(),
            pass: actual.is_some_and(|a| self.op.holds(a, self.limit)),
            actual,
            shown: actual.map(|a| self.metric.show(a)),
        }
    }
}

impl Verdict {
    /// The verdict's line: `PASS e2e_p95<30s: actual 1.234 s`.
    pub fn line(&self) -> String {
        let actual = self.shown.as_ref().map_or_else(
            || "no value, nothing was measured".to_owned(),
            |a| format!("actual {a}"),
        );
        format!(
            "{} {}: {actual}",
            if self.pass { "PASS" } else { "FAIL" },
            self.threshold
        )
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Threshold {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn thresholds_parse_into_metric_comparison_and_value_in_base_units() {
        let t = parse("e2e_p95<30s");
        assert_eq!(
            (t.metric, t.op, t.limit),
            (
                Metric::Latency(Series::E2e, Stat::Percentile(95.0)),
                Op::Lt,
                30.0
            )
        );
        let t = parse(" submit_p99 <= 500ms ");
        assert_eq!(t.text, "submit_p99<=500ms");
        assert_eq!(
            (t.metric, t.op, t.limit),
            (
                Metric::Latency(Series::Submit, Stat::Percentile(99.0)),
                Op::Le,
                0.5
            )
        );
        let t = parse("queue_wait_avg>=2m");
        assert_eq!(
            (t.metric, t.op, t.limit),
            (Metric::Latency(Series::QueueWait, Stat::Avg), Op::Ge, 120.0)
        );
        assert_eq!(
            parse("run_p99.9<1s").metric,
            Metric::Latency(Series::Run, Stat::Percentile(99.9))
        );
        let t = parse("error_rate<0.01");
        assert_eq!((t.metric, t.limit), (Metric::Ratio(Ratio::ErrorRate), 0.01));
        assert_eq!(parse("throttled_rate<=5%").limit, 0.05);
        let t = parse("throughput>120/min");
        assert_eq!((t.metric, t.op, t.limit), (Metric::Throughput, Op::Gt, 2.0));
        assert_eq!(parse("throughput>=2").limit, 2.0);
    }

    #[test]
    fn bad_thresholds_say_what_is_wrong() {
        for (bad, says) in [
            ("e2e_p95", "expected METRIC<VALUE"),
            ("e2e_p95=3s", "expected METRIC<VALUE"),
            ("e2e_p95<30", "needs a unit"),
            ("e2e_p95<30h0", "unknown unit"),
            ("e2e_p0<1s", "percentile"),
            ("e2e_p101<1s", "percentile"),
            ("e2e_median<1s", "percentile"),
            ("latency_p95<1s", "unknown metric"),
            ("error_rate<2", "expected 0…1"),
            ("error_rate<ten", "expected a number"),
            ("throughput>2/h", "unknown unit"),
            ("<1s", "unknown metric"),
            ("e2e_p95<", "expected a number"),
        ] {
            let e = bad.parse::<Threshold>().expect_err(bad);
            assert!(e.0.contains(says), "{bad}: {e}");
            assert!(e.0.contains(bad), "{bad}: the message names it: {e}");
        }
    }

    #[test]
    fn verdicts_compare_the_actual_value_and_fail_without_one() {
        let mut r = Results {
            e2e: [1.0, 2.0, 3.0, 4.0].into_iter().collect(),
            sent: 10,
            succeeded: 9,
            ..Results::default()
        };
        let pass = parse("e2e_p50<=2s");
        let v = pass.check(&mut r);
        assert!(v.pass);
        assert_eq!(v.actual, Some(2.0));
        assert_eq!(v.line(), "PASS e2e_p50<=2s: actual 2.000 s");
        let fail = parse("e2e_p50<2s");
        assert!(!fail.check(&mut r).pass);
        let v = parse("error_rate<0.05").check(&mut r);
        assert!(!v.pass);
        assert!(v.actual.is_some_and(|a| (a - 0.1).abs() < 1e-12));
        let none = parse("run_p99<10s");
        let v = none.check(&mut r);
        assert!(!v.pass);
        assert_eq!(v.actual, None);
        assert_eq!(v.line(), "FAIL run_p99<10s: no value, nothing was measured");
    }
}
