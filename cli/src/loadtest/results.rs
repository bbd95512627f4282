//! What a run measured: counts by how each arrival ended, latency samples, batch sizes, stage
//! figures, a per-second timeline and a row per job, and the shares and rates defined on them.
//!
//! Latencies (end to end, queue wait, run time) and the stage and batch figures are those of
//! the jobs that succeeded: a job that failed fast would otherwise make the fleet look quicker.
//! Failures are counted by code instead.

use std::collections::BTreeMap;
use std::time::Duration;

use orfeas_vocab::Stage;
use serde::Serialize;

use super::follow::{Ending, Finished};
use super::stats::Samples;
use super::submit::Submission;

/// How one arrival ended, for the per-job rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Dropped,
    NoAnswer,
    Refused,
    Succeeded,
    Failed,
    Canceled,
    Lost,
    /// Still queued or running when the drain timeout ran out.
    Unfinished,
}

/// One arrival's figures (seconds; times from the start of the run).
#[derive(Debug, Clone, Serialize)]
pub struct JobRow {
    pub n: u64,
    pub outcome: Outcome,
    pub at_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// How late the request went out after its scheduled time (the generator's own lag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submit_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// The refusal's or the failure's error code, or why no answer came.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e2e_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_wait_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<i32>,
}

/// One second of the run: what happened in it, and the jobs in flight at its end.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Second {
    pub t: u64,
    pub arrivals: u64,
    pub dropped: u64,
    pub accepted: u64,
    pub refused: u64,
    pub completed: u64,
    pub in_flight: u64,
}

/// Everything the run measured.
#[derive(Debug, Default)]
pub struct Results {
    pub arrivals: u64,
    pub dropped: u64,
    /// Submissions sent (answered or not).
    pub sent: u64,
    pub accepted: u64,
    /// Refusals by HTTP status and error code (`-` when the body had none).
    pub refused: BTreeMap<(u16, String), Refusals>,
    pub refused_429: u64,
    /// Submissions that got no HTTP answer, by reason.
    pub no_answer: BTreeMap<String, u64>,
    pub succeeded: u64,
    pub failed: BTreeMap<String, u64>,
    pub canceled: u64,
    pub lost: u64,
    /// A few of the reasons jobs were lost, to say what happened.
    pub lost_reasons: Vec<String>,
    pub unfinished: u64,
    pub submit: Samples,
    pub lag: Samples,
    pub e2e: Samples,
    pub queue_wait: Samples,
    pub run: Samples,
    pub batch_sizes: BTreeMap<i32, u64>,
    /// Sum of seconds and count per stage.
    pub stages: BTreeMap<Stage, (f64, u64)>,
    /// Seconds from the start to the last arrival's due time (the load window).
    pub window_s: f64,
    /// Seconds from the first submission to the last job's end.
    pub span_s: f64,
    pub timeline: Vec<Second>,
    pub jobs: Vec<JobRow>,
}

/// Refusals of one status and code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refusals {
    pub count: u64,
    /// The distinct `Retry-After` values the API sent with them (a few).
    pub retry_after: Vec<String>,
}

impl Refusals {
    pub(super) fn add(&mut self, retry_after: Option<&str>) {
        self.count += 1;
        if let Some(v) = retry_after
            && self.retry_after.len() < KEPT
            && !self.retry_after.iter().any(|r| r == v)
        {
            self.retry_after.push(v.to_owned());
        }
    }
}

/// How many distinct lost reasons and `Retry-After` values are kept, to say what happened.
const KEPT: usize = 5;

pub(super) fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl JobRow {
    pub(super) fn new(n: u64, outcome: Outcome, at_s: f64) -> JobRow {
        JobRow {
            n,
            outcome,
            at_s,
            id: None,
            image: None,
            lag_s: None,
            submit_s: None,
            http_status: None,
            code: None,
            e2e_s: None,
            queue_wait_s: None,
            run_s: None,
            batch_size: None,
            attempts: None,
        }
    }
}

impl Results {
    pub(super) fn job_ended(&mut self, f: &Finished, s: &Submission, row: &mut JobRow) {
        row.attempts = Some(f.attempts);
        row.batch_size = f.batch_size;
        row.queue_wait_s = f.queue_wait;
        row.run_s = f.run;
        let e2e = secs(f.observed.saturating_duration_since(s.sent));
        match &f.ending {
            Ending::Succeeded => {
                self.succeeded += 1;
                row.outcome = Outcome::Succeeded;
                row.e2e_s = Some(e2e);
                self.e2e.push(e2e);
                if let Some(q) = f.queue_wait {
                    self.queue_wait.push(q);
                }
                if let Some(run) = f.run {
                    self.run.push(run);
                }
                for &(stage, seconds) in &f.stages {
                    let slot = self.stages.entry(stage).or_default();
                    slot.0 += seconds;
                    slot.1 += 1;
                }
            }
            Ending::Failed { code } => {
                *self.failed.entry(code.clone()).or_default() += 1;
                row.outcome = Outcome::Failed;
                row.code = Some(code.clone());
                row.e2e_s = Some(e2e);
            }
            Ending::Canceled => {
                self.canceled += 1;
                row.outcome = Outcome::Canceled;
                row.e2e_s = Some(e2e);
            }
            Ending::Lost { reason } => {
                self.lost += 1;
                row.outcome = Outcome::Lost;
                row.code = Some(reason.clone());
                if self.lost_reasons.len() < KEPT && !self.lost_reasons.contains(reason) {
                    self.lost_reasons.push(reason.clone());
                }
            }
        }
        if !matches!(f.ending, Ending::Lost { .. })
            && let Some(b) = f.batch_size
        {
            *self.batch_sizes.entry(b).or_default() += 1;
        }
    }

    /// Jobs that ended (succeeded, failed or canceled).
    pub fn completed(&self) -> u64 {
        self.succeeded + self.failed.values().sum::<u64>() + self.canceled
    }

    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }

    fn share(part: u64, whole: u64) -> Option<f64> {
        (whole > 0).then(|| part as f64 / whole as f64)
    }

    /// Of the jobs sent, the share that did not end in a mesh: refused, unanswered, failed,
    /// canceled, lost, or unfinished at the drain timeout.
    pub fn error_rate(&self) -> Option<f64> {
        Self::share(self.sent - self.succeeded, self.sent)
    }

    /// Of the jobs sent, the share not accepted (any answer but 202, or none).
    pub fn submit_error_rate(&self) -> Option<f64> {
        Self::share(self.sent - self.accepted, self.sent)
    }

    /// Of the jobs sent, the share answered 429 (`too_many_jobs`, `rate_limited`, quotas).
    pub fn throttled_rate(&self) -> Option<f64> {
        Self::share(self.refused_429, self.sent)
    }

    /// Of the jobs accepted, the share that did not succeed.
    pub fn fail_rate(&self) -> Option<f64> {
        Self::share(self.accepted - self.succeeded, self.accepted)
    }

    /// Of the arrivals, the share dropped by `--max-in-flight`.
    pub fn dropped_rate(&self) -> Option<f64> {
        Self::share(self.dropped, self.arrivals)
    }

    /// Jobs that ended per second, from the first submission to the last end.
    pub fn completed_per_s(&self) -> Option<f64> {
        (self.span_s > 0.0).then(|| self.completed() as f64 / self.span_s)
    }

    /// Jobs accepted per second of the load window.
    pub fn accepted_per_s(&self) -> Option<f64> {
        (self.window_s > 0.0).then(|| self.accepted as f64 / self.window_s)
    }

    /// The most jobs that ended in any `width` consecutive seconds, per second: the rate the
    /// fleet kept up for that long (under a ramp, its capacity once arrivals exceed it).
    pub fn peak_completed_per_s(&self, width: usize) -> Option<f64> {
        if width == 0 || self.timeline.len() < width {
            return None;
        }
        self.timeline
            .windows(width)
            .map(|w| w.iter().map(|s| s.completed).sum::<u64>())
            .max()
            .map(|n| n as f64 / width as f64)
    }
}

/// Per-second buckets, grown as needed.
#[derive(Debug, Default)]
pub(super) struct Timeline(Vec<Second>);

impl Timeline {
    pub(super) fn at(&mut self, t: f64) -> &mut Second {
        let i = t.max(0.0) as usize;
        if self.0.len() <= i {
            let from = self.0.len();
            self.0.extend((from..=i).map(|t| Second {
                t: t as u64,
                ..Second::default()
            }));
        }
        &mut self.0[i]
    }

    pub(super) fn finish(mut self) -> Vec<Second> {
        let mut in_flight: i64 = 0;
        for s in &mut self.0 {
            in_flight += s.accepted as i64 - s.completed as i64;
            s.in_flight = in_flight.max(0) as u64;
        }
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_completion_rate_is_the_best_window() {
        let r = Results {
            timeline: [1, 3, 5, 2, 0]
                .iter()
                .enumerate()
                .map(|(t, &completed)| Second {
                    t: t as u64,
                    completed,
                    ..Second::default()
                })
                .collect(),
            ..Results::default()
        };
        assert_eq!(r.peak_completed_per_s(2), Some(4.0));
        assert_eq!(r.peak_completed_per_s(5), Some(11.0 / 5.0));
        assert_eq!(r.peak_completed_per_s(6), None);
    }
}
