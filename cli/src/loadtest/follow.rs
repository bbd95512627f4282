//! Following an accepted job to its end: its event stream (SSE) until the terminal event, then
//! one `GET /api/jobs/{id}` for the job's own timestamps and stage timings.
//!
//! Why the stream and not polling: the terminal event arrives when the job ends, so the
//! end-to-end latency is measured to the event rather than rounded up to a poll interval, and
//! the cost on the API is one idle connection per job in flight (a broadcast receiver; see the
//! SSE figures in BENCHMARKS.md) instead of a PostgreSQL read per job per poll — at 100 jobs in
//! flight and a 250 ms poll, 400 reads/s on the machine under test. The `started` event also
//! carries the batch the job ran in. The job view is read once at the end because the queue
//! wait and run time are the server's own figures (`created_at` → `started_at` →
//! `finished_at`), independent of the client's clock.

use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use orfeas_vocab::{JobEventData, JobStatus, Stage};
use serde::Deserialize;

use crate::client::ApiClient;

/// How a followed job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    Succeeded,
    Failed {
        code: String,
    },
    Canceled,
    /// Its end could not be observed: the stream broke off for good and the job view did not
    /// show it finished, or the view could not be read.
    Lost {
        reason: String,
    },
}

/// What a finished job reported about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub ending: Ending,
    /// When the client saw the job end.
    pub observed: Instant,
    /// From the job's own timestamps: `started_at − created_at` (the first attempt's start),
    /// and `finished_at − started_at` (so retries' waits count as run time).
    pub queue_wait: Option<f64>,
    pub run: Option<f64>,
    /// Seconds per stage of the attempt that finished the job.
    pub stages: Vec<(Stage, f64)>,
    /// The batch the finishing attempt ran in (from its `started` event, else the timings).
    pub batch_size: Option<i32>,
    pub attempts: i32,
}

#[derive(Debug, Deserialize)]
struct JobView {
    status: JobStatus,
    attempt: i32,
    error: Option<ErrorView>,
    #[serde(default)]
    timings: Vec<TimingView>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
struct ErrorView {
    code: String,
}

#[derive(Debug, Deserialize)]
struct TimingView {
    stage: Stage,
    seconds: f64,
    batch_size: i32,
}

fn seconds_between(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6
}

/// Follows `job` until it ends.
pub async fn follow(client: &ApiClient, job: &str) -> Finished {
    let mut events = Box::pin(client.follow(job, 0));
    let mut batch_size = None;
    let mut broke_off = None;
    let mut ended = false;
    while let Some(item) = events.next().await {
        match item {
            Ok(e) => {
                if let JobEventData::Started { batch_size: b, .. } = e.event {
                    batch_size = b;
                }
                if e.kind().is_terminal() {
                    ended = true;
                    break;
                }
            }
            Err(e) => {
                broke_off = Some(format!("{e:#}"));
                break;
            }
        }
    }
    let observed = Instant::now();
    let view = match client.get_json(&format!("/api/jobs/{job}")).await {
        Ok(v) => serde_json::from_value::<JobView>(v).map_err(|e| format!("job view: {e}")),
        Err(e) => Err(format!("{e:#}")),
    };
    match view {
        Ok(v) if v.status.is_terminal() => finished(v, observed, batch_size),
        Ok(v) => lost(
            observed,
            broke_off.unwrap_or_else(|| {
                let why = if ended {
                    "the stream ended"
                } else {
                    "the stream closed"
                };
                format!("{why} but the job is {}", v.status)
            }),
        ),
        Err(e) => lost(observed, e),
    }
}

fn lost(observed: Instant, reason: String) -> Finished {
    Finished {
        ending: Ending::Lost { reason },
        observed,
        queue_wait: None,
        run: None,
        stages: Vec::new(),
        batch_size: None,
        attempts: 0,
    }
}

fn finished(v: JobView, observed: Instant, batch_from_events: Option<i32>) -> Finished {
    let ending = match v.status {
        JobStatus::Succeeded => Ending::Succeeded,
        JobStatus::Canceled => Ending::Canceled,
        _ => Ending::Failed {
            code: v.error.map_or_else(|| "unknown".to_owned(), |e| e.code),
        },
    };
    Finished {
        ending,
        observed,
        queue_wait: v.started_at.map(|s| seconds_between(v.created_at, s)),
        run: v
            .started_at
            .zip(v.finished_at)
            .map(|(s, f)| seconds_between(s, f)),
        stages: v.timings.iter().map(|t| (t.stage, t.seconds)).collect(),
        batch_size: batch_from_events.or_else(|| v.timings.first().map(|t| t.batch_size)),
        attempts: v.attempt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_view_gives_queue_wait_run_time_and_stages() {
        let view: JobView = serde_json::from_value(serde_json::json!({
            "id": "j", "status": "succeeded", "attempt": 1, "error": null, "progress": 100,
            "timings": [
                {"stage": "image_loading", "seconds": 0.25, "worker_id": "w", "device": "cpu", "batch_size": 3},
                {"stage": "mesh_export", "seconds": 0.5, "worker_id": "w", "device": "cpu", "batch_size": 3}
            ],
            "created_at": "2026-11-30T10:00:00Z",
            "started_at": "2026-11-30T10:00:01.5Z",
            "finished_at": "2026-11-30T10:00:04Z"
        }))
        .expect("view");
        let f = finished(view, Instant::now(), None);
        assert_eq!(f.ending, Ending::Succeeded);
        assert_eq!((f.queue_wait, f.run), (Some(1.5), Some(2.5)));
        assert_eq!(
            f.stages,
            [(Stage::ImageLoading, 0.25), (Stage::MeshExport, 0.5)]
        );
        assert_eq!(
            f.batch_size,
            Some(3),
            "from the timings without a started event"
        );
    }

    #[test]
    fn a_failed_job_keeps_its_code_and_a_never_started_one_has_no_run_time() {
        let view: JobView = serde_json::from_value(serde_json::json!({
            "status": "failed", "attempt": 0,
            "error": {"code": "deadline_exceeded", "message": "late"},
            "timings": [],
            "created_at": "2026-11-30T10:00:00Z", "started_at": null,
            "finished_at": "2026-11-30T10:00:09Z"
        }))
        .expect("view");
        let f = finished(view, Instant::now(), Some(2));
        assert_eq!(
            f.ending,
            Ending::Failed {
                code: "deadline_exceeded".into()
            }
        );
        assert_eq!((f.queue_wait, f.run), (None, None));
        assert_eq!(f.batch_size, Some(2));
    }
}
