//! The run's report: one serializable value, written as JSON (`--json`, with the per-second
//! timeline and a row per job) and as Markdown (`--markdown`, and the summary on stdout).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::args::Plan;
use super::results::{JobRow, Results, Second};
use super::schedule::Profile;
use super::stats::Summary;
use super::threshold::Verdict;

/// The width of the window behind `peak_completed_per_s`.
pub const PEAK_WINDOW_S: usize = 10;

#[derive(Debug, Serialize)]
pub struct Report {
    pub api: String,
    pub started_at: String,
    pub profile: Profile,
    pub duration_s: f64,
    pub seed: u64,
    pub max_in_flight: usize,
    pub drain_timeout_s: f64,
    pub options: Option<serde_json::Value>,
    pub images: usize,
    /// This machine's load average (1, 5, 15 min) when the run started and ended, where the
    /// system reports one: the load generator shares the machine it measures.
    pub load_average: LoadAverage,
    pub counts: Counts,
    pub refused: Vec<Refusal>,
    pub no_answer: BTreeMap<String, u64>,
    pub failed: BTreeMap<String, u64>,
    pub lost_reasons: Vec<String>,
    pub rates: Rates,
    pub throughput: Throughput,
    pub latency_s: Latencies,
    /// Jobs by the size of the batch they ran in.
    pub batch_sizes: BTreeMap<i32, u64>,
    pub mean_batch_size: Option<f64>,
    pub stages: Vec<StageFigure>,
    pub thresholds: Vec<Verdict>,
    pub timeline: Vec<Second>,
    pub jobs: Vec<JobRow>,
}

#[derive(Debug, Default, Serialize)]
pub struct LoadAverage {
    pub start: Option<[f64; 3]>,
    pub end: Option<[f64; 3]>,
}

/// The machine's load average, from `/proc/loadavg` (Linux); `None` elsewhere.
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

#[derive(Debug, Serialize)]
pub struct Counts {
    pub arrivals: u64,
    pub dropped: u64,
    pub sent: u64,
    pub accepted: u64,
    pub refused: u64,
    pub refused_429: u64,
    pub no_answer: u64,
    pub completed: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub canceled: u64,
    pub lost: u64,
    pub unfinished: u64,
}

#[derive(Debug, Serialize)]
pub struct Refusal {
    pub status: u16,
    pub code: String,
    pub count: u64,
    /// The distinct `Retry-After` values sent with them.
    pub retry_after: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Rates {
    pub error_rate: Option<f64>,
    pub submit_error_rate: Option<f64>,
    pub throttled_rate: Option<f64>,
    pub fail_rate: Option<f64>,
    pub dropped_rate: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Throughput {
    /// Jobs that ended per second, first submission to last end.
    pub completed_per_s: Option<f64>,
    /// The best `PEAK_WINDOW_S` consecutive seconds.
    pub peak_completed_per_s: Option<f64>,
    pub accepted_per_s: Option<f64>,
    pub window_s: f64,
    pub span_s: f64,
}

#[derive(Debug, Serialize)]
pub struct Latencies {
    pub submit: Option<Summary>,
    pub e2e: Option<Summary>,
    pub queue_wait: Option<Summary>,
    pub run: Option<Summary>,
    /// How late requests went out after their scheduled time: the generator's own lag.
    pub schedule_lag: Option<Summary>,
}

#[derive(Debug, Serialize)]
pub struct StageFigure {
    pub stage: orfeas_vocab::Stage,
    pub avg_s: f64,
    pub count: u64,
    /// Of the sum of the stages' averages.
    pub share: f64,
}

impl Report {
    pub fn new(
        plan: &Plan,
        started_at: String,
        load_average: LoadAverage,
        mut r: Results,
        thresholds: Vec<Verdict>,
    ) -> Report {
        let stage_avgs: Vec<(orfeas_vocab::Stage, f64, u64)> = r
            .stages
            .iter()
            .filter(|(_, (_, n))| *n > 0)
            .map(|(&stage, &(sum, n))| (stage, sum / n as f64, n))
            .collect();
        let stage_total: f64 = stage_avgs.iter().map(|(_, a, _)| a).sum();
        let batched: u64 = r.batch_sizes.values().sum();
        Report {
            api: plan.api.clone(),
            started_at,
            profile: plan.profile,
            duration_s: plan.duration.as_secs_f64(),
            seed: plan.seed,
            max_in_flight: plan.max_in_flight,
            drain_timeout_s: plan.drain_timeout.as_secs_f64(),
            options: plan
                .options
                .as_deref()
                .and_then(|o| serde_json::from_str(o).ok()),
            images: plan.images.len(),
            load_average,
            counts: Counts {
                arrivals: r.arrivals,
                dropped: r.dropped,
                sent: r.sent,
                accepted: r.accepted,
                refused: r.refused.values().map(|x| x.count).sum(),
                refused_429: r.refused_429,
                no_answer: r.no_answer.values().sum(),
                completed: r.completed(),
                succeeded: r.succeeded,
                failed: r.failed_total(),
                canceled: r.canceled,
                lost: r.lost,
                unfinished: r.unfinished,
            },
            refused: r
                .refused
                .iter()
                .map(|((status, code), x)| Refusal {
                    status: *status,
                    code: code.clone(),
                    count: x.count,
                    retry_after: x.retry_after.clone(),
                })
                .collect(),
            no_answer: std::mem::take(&mut r.no_answer),
            failed: std::mem::take(&mut r.failed),
            lost_reasons: std::mem::take(&mut r.lost_reasons),
            rates: Rates {
                error_rate: r.error_rate(),
                submit_error_rate: r.submit_error_rate(),
                throttled_rate: r.throttled_rate(),
                fail_rate: r.fail_rate(),
                dropped_rate: r.dropped_rate(),
            },
            throughput: Throughput {
                completed_per_s: r.completed_per_s(),
                peak_completed_per_s: r.peak_completed_per_s(PEAK_WINDOW_S),
                accepted_per_s: r.accepted_per_s(),
                window_s: r.window_s,
                span_s: r.span_s,
            },
            latency_s: Latencies {
                submit: r.submit.summary(),
                e2e: r.e2e.summary(),
                queue_wait: r.queue_wait.summary(),
                run: r.run.summary(),
                schedule_lag: r.lag.summary(),
            },
            mean_batch_size: (batched > 0).then(|| {
                r.batch_sizes
                    .iter()
                    .map(|(&b, &n)| f64::from(b) * n as f64)
                    .sum::<f64>()
                    / batched as f64
            }),
            batch_sizes: std::mem::take(&mut r.batch_sizes),
            stages: stage_avgs
                .into_iter()
                .map(|(stage, avg_s, count)| StageFigure {
                    stage,
                    avg_s,
                    count,
                    share: if stage_total > 0.0 {
                        avg_s / stage_total
                    } else {
                        0.0
                    },
                })
                .collect(),
            thresholds,
            timeline: std::mem::take(&mut r.timeline),
            jobs: std::mem::take(&mut r.jobs),
        }
    }

    /// The report as Markdown (without the timeline and the per-job rows, which are in the
    /// JSON).
    pub fn markdown(&self) -> String {
        let mut m = String::new();
        let c = &self.counts;
        let profile = match self.profile {
            Profile::Constant { rate } => format!("Poisson arrivals at {rate:.2}/s"),
            Profile::Ramp { from, to } => {
                format!("Poisson arrivals ramping {from:.2} → {to:.2}/s")
            }
        };
        let _ = writeln!(m, "# Load test of {}\n", self.api);
        let _ = writeln!(
            m,
            "{profile} for {:.0} s (seed {}), at most {} in flight, drain timeout {:.0} s; {} image(s); options `{}`. Started {}{}.\n",
            self.duration_s,
            self.seed,
            self.max_in_flight,
            self.drain_timeout_s,
            self.images,
            self.options
                .as_ref()
                .map_or_else(|| "{}".to_owned(), ToString::to_string),
            self.started_at,
            match (self.load_average.start, self.load_average.end) {
                (Some(s), Some(e)) => format!(
                    "; load average {:.2} {:.2} {:.2} at the start, {:.2} {:.2} {:.2} at the end",
                    s[0], s[1], s[2], e[0], e[1], e[2]
                ),
                _ => String::new(),
            }
        );
        let _ = writeln!(m, "## Jobs\n\n| | count |\n|---|---|");
        for (name, n) in [
            ("arrivals", c.arrivals),
            ("dropped by the client (`--max-in-flight`)", c.dropped),
            ("sent", c.sent),
            ("accepted (202)", c.accepted),
            ("refused", c.refused),
            ("… of which 429", c.refused_429),
            ("no answer", c.no_answer),
            ("succeeded", c.succeeded),
            ("failed", c.failed),
            ("canceled", c.canceled),
            ("lost (end not observed)", c.lost),
            ("unfinished at the drain timeout", c.unfinished),
        ] {
            let _ = writeln!(m, "| {name} | {n} |");
        }
        if !self.refused.is_empty() || !self.no_answer.is_empty() || !self.failed.is_empty() {
            let _ = writeln!(m, "\n| error | count |\n|---|---|");
            for r in &self.refused {
                let retry = if r.retry_after.is_empty() {
                    String::new()
                } else {
                    format!(" (Retry-After: {})", r.retry_after.join(", "))
                };
                let _ = writeln!(m, "| HTTP {} `{}`{retry} | {} |", r.status, r.code, r.count);
            }
            for (reason, n) in &self.no_answer {
                let _ = writeln!(m, "| no answer: {reason} | {n} |");
            }
            for (code, n) in &self.failed {
                let _ = writeln!(m, "| job failed `{code}` | {n} |");
            }
        }
        for reason in &self.lost_reasons {
            let _ = writeln!(m, "\nLost: {reason}");
        }
        let t = &self.throughput;
        let rate = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.3}/s"));
        let share =
            |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{:.2} %", v * 100.0));
        let _ = writeln!(
            m,
            "\n## Throughput and errors\n\n| | |\n|---|---|\n| completed jobs/s (first submission to last end, {:.1} s) | {} |\n| best {PEAK_WINDOW_S} s | {} |\n| accepted jobs/s (load window, {:.1} s) | {} |\n| error rate (sent jobs without a mesh) | {} |\n| submit error rate | {} |\n| throttled (429) | {} |\n| fail rate (accepted jobs not succeeded) | {} |\n| dropped by the client | {} |",
            t.span_s,
            rate(t.completed_per_s),
            rate(t.peak_completed_per_s),
            t.window_s,
            rate(t.accepted_per_s),
            share(self.rates.error_rate),
            share(self.rates.submit_error_rate),
            share(self.rates.throttled_rate),
            share(self.rates.fail_rate),
            share(self.rates.dropped_rate),
        );
        let l = &self.latency_s;
        let _ = writeln!(
            m,
            "\n## Latency (nearest-rank percentiles over every sample)\n\n| | n | p50 | p90 | p95 | p99 | max | mean |\n|---|---|---|---|---|---|---|---|"
        );
        for (name, s) in [
            ("submit (`POST /api/jobs`)", &l.submit),
            ("end to end (send → end seen)", &l.e2e),
            ("queue wait (created → started)", &l.queue_wait),
            ("run time (started → finished)", &l.run),
            ("generator lag (due → sent)", &l.schedule_lag),
        ] {
            match s {
                Some(s) => {
                    let _ = writeln!(
                        m,
                        "| {name} | {} | {} | {} | {} | {} | {} | {} |",
                        s.count,
                        seconds(s.p50),
                        seconds(s.p90),
                        seconds(s.p95),
                        seconds(s.p99),
                        seconds(s.max),
                        seconds(s.mean)
                    );
                }
                None => {
                    let _ = writeln!(m, "| {name} | 0 | | | | | | |");
                }
            }
        }
        if !self.stages.is_empty() {
            let _ = writeln!(
                m,
                "\n## Stages (succeeded jobs)\n\n| stage | average | share | jobs |\n|---|---|---|---|"
            );
            for s in &self.stages {
                let _ = writeln!(
                    m,
                    "| `{}` | {} | {:.1} % | {} |",
                    s.stage,
                    seconds(s.avg_s),
                    s.share * 100.0,
                    s.count
                );
            }
        }
        if !self.batch_sizes.is_empty() {
            let _ = writeln!(m, "\n## Batch sizes\n\n| batch | jobs |\n|---|---|");
            for (b, n) in &self.batch_sizes {
                let _ = writeln!(m, "| {b} | {n} |");
            }
            if let Some(mean) = self.mean_batch_size {
                let _ = writeln!(m, "\nMean batch size per job: {mean:.2}.");
            }
        }
        if !self.thresholds.is_empty() {
            let _ = writeln!(
                m,
                "\n## Thresholds\n\n| threshold | actual | |\n|---|---|---|"
            );
            for v in &self.thresholds {
                let _ = writeln!(
                    m,
                    "| `{}` | {} | {} |",
                    v.threshold,
                    v.shown.as_deref().unwrap_or("–"),
                    if v.pass { "pass" } else { "**fail**" }
                );
            }
        }
        m
    }
}

/// Seconds as people read them: milliseconds under a second.
pub fn seconds(v: f64) -> String {
    if v.abs() < 1.0 {
        format!("{:.1} ms", v * 1000.0)
    } else {
        format!("{v:.3} s")
    }
}
