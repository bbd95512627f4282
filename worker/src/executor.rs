//! Runs a batch through the pipeline on a blocking thread (the compute never runs on the async
//! runtime). Stage boundaries are recorded as job events in PostgreSQL and ask it whether to stop
//! (a cancel request, another attempt taking over); step progress goes out throttled through a
//! [`ProgressRelay`]; each job's control carries its deadline — the job
//! timeout from the attempt's start, the same across out-of-memory splits — and a stop flag the
//! heartbeat sets, which the engines consult inside their loops.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use orfeas_pipeline::error::ShapeError;
use orfeas_pipeline::{
    BatchItem, Control, ItemReport, JobOptions, Pipeline, PipelineError, ProgressObserver, Stage,
};
use orfeas_shared::db::Db;
use orfeas_vocab::{Engine, JobId, Workload};
use tokio::runtime::Handle;

use crate::optimizer::probe;
use crate::progress::ProgressRelay;

/// Where a batch's events go (absent in unit tests).
#[derive(Debug, Clone)]
pub struct Events {
    pub db: Db,
    /// Step progress is written at most this often per job.
    pub progress_interval: Duration,
}

/// One job of a batch, ready to run.
#[derive(Debug)]
pub struct Work {
    pub job_id: JobId,
    pub attempt: i32,
    pub input: bytes::Bytes,
    pub options: JobOptions,
    /// The job's span: its stage spans hang under it, and it continues the submitting
    /// request's trace.
    pub span: tracing::Span,
    /// When the attempt must be done (its start plus `worker.job_timeout_s`).
    pub deadline: Instant,
    /// Set when the job should stop mid-stage (canceled, or another attempt took it over).
    pub stop: Arc<AtomicBool>,
}

impl Work {
    fn control(&self) -> Control {
        Control::none()
            .with_deadline(self.deadline)
            .with_stop(self.stop.clone())
    }
}

/// What the pipeline reported for one job, with when each stage started and the process's
/// peak memory growth during each stage (for `shape_generation`, the whole batch's).
#[derive(Debug)]
pub struct Ran {
    pub report: ItemReport,
    pub stage_started: [Option<DateTime<Utc>>; 5],
    pub stage_peak_bytes: [Option<u64>; 5],
    pub timed_out: bool,
}

impl Ran {
    fn is_oom(&self) -> bool {
        self.report
            .result
            .as_ref()
            .is_err_and(PipelineError::is_out_of_memory)
    }

    /// This job's share of the peak in `workload`'s stages: the largest per-stage growth, batch
    /// stages divided among the batch. `paint`'s stage is `texture_synthesis` (batched); a shape
    /// workload's are the others, and `texture_synthesis` too when the job was not painted.
    pub fn peak_per_job(&self, workload: Workload, painted: bool) -> Option<u64> {
        let n = self.report.batch_size.max(1) as u64;
        Stage::ALL
            .iter()
            .filter(|&&s| match workload {
                Workload::Paint => s == Stage::TextureSynthesis,
                Workload::Shape(_) => !(painted && s == Stage::TextureSynthesis),
            })
            .filter_map(|&s| {
                self.stage_peak_bytes[s.index()].map(|b| {
                    let batched =
                        s == Stage::ShapeGeneration || (painted && s == Stage::TextureSynthesis);
                    if batched { b / n } else { b }
                })
            })
            .max()
    }

    /// The stage whose device ran out of memory, when it did.
    pub fn oom_stage(&self) -> Option<Stage> {
        self.is_oom()
            .then(|| self.report.result.as_ref().err().map(|e| e.stage()))
            .flatten()
    }
}

struct DbObserver {
    handle: Handle,
    db: Option<Db>,
    jobs: Vec<(JobId, i32)>,
    stage_started: Vec<[Option<DateTime<Utc>>; 5]>,
    stage_peak: Vec<[Option<u64>; 5]>,
    rss_at_start: u64,
}

impl ProgressObserver for DbObserver {
    fn stage_started(&mut self, item: usize, stage: Stage) {
        // The batch stage starts for every item at once: measure from its first start.
        let batch_stage_running = stage == Stage::ShapeGeneration
            && self
                .stage_started
                .iter()
                .enumerate()
                .any(|(i, s)| i != item && s[stage.index()].is_some());
        if !batch_stage_running {
            probe::reset_peak_rss();
            self.rss_at_start = probe::rss_bytes().unwrap_or(0);
        }
        self.stage_started[item][stage.index()] = Some(Utc::now());
        let (id, attempt) = self.jobs[item];
        if let Some(db) = &self.db
            && let Err(e) = self.handle.block_on(db.enter_stage(id, attempt, stage))
        {
            tracing::debug!(job = %id, error = %e, "progress not recorded");
        }
    }

    fn stage_finished(&mut self, item: usize, stage: Stage, elapsed: Duration, ok: bool) {
        if let Some(peak) = probe::peak_rss_bytes() {
            self.stage_peak[item][stage.index()] = Some(peak.saturating_sub(self.rss_at_start));
        }
        let (id, attempt) = self.jobs[item];
        if let Some(db) = &self.db
            && let Err(e) = self
                .handle
                .block_on(db.stage_finished(id, attempt, stage, elapsed, ok))
        {
            tracing::debug!(job = %id, error = %e, "stage end not recorded");
        }
    }

    fn is_canceled(&mut self, item: usize) -> bool {
        let (id, attempt) = self.jobs[item];
        // If the database cannot answer, keep going: the final guarded write decides.
        match &self.db {
            Some(db) => self
                .handle
                .block_on(db.should_stop(id, attempt))
                .unwrap_or(false),
            None => false,
        }
    }
}

/// Runs the batch; one result per work item, in order. `events` receives the stage and step
/// progress and answers whether to stop.
pub async fn run_batch(pipeline: Arc<Pipeline>, events: Option<Events>, work: &[Work]) -> Vec<Ran> {
    let handle = Handle::current();
    let jobs: Vec<(JobId, i32)> = work.iter().map(|w| (w.job_id, w.attempt)).collect();
    let relay = events
        .as_ref()
        .map(|e| ProgressRelay::start(e.db.clone(), jobs.clone(), e.progress_interval));
    let db = events.map(|e| e.db);
    let inputs: Vec<(bytes::Bytes, JobOptions, tracing::Span, Control, String)> = work
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let control = match &relay {
                Some(r) => w.control().with_progress(r.reporter(i)),
                None => w.control(),
            };
            (
                w.input.clone(),
                w.options.clone(),
                w.span.clone(),
                control,
                w.job_id.to_string(),
            )
        })
        .collect();
    let deadlines: Vec<Instant> = work.iter().map(|w| w.deadline).collect();
    let n = work.len();
    let pipeline_engine: Engine = pipeline.engine().engine();
    let span = tracing::Span::current();
    let joined = tokio::task::spawn_blocking(move || {
        let _enter = span.enter();
        let mut observer = DbObserver {
            handle,
            db,
            jobs,
            stage_started: vec![[None; 5]; n],
            stage_peak: vec![[None; 5]; n],
            rss_at_start: 0,
        };
        let items: Vec<BatchItem<'_>> = inputs
            .iter()
            .map(|(bytes, options, span, control, name)| {
                BatchItem::new(bytes, options)
                    .with_parent(span.clone())
                    .with_control(control.clone())
                    .with_name(name.clone())
            })
            .collect();
        let reports = pipeline.run_batch(&items, &mut observer);
        reports
            .into_iter()
            .enumerate()
            .map(|(i, report)| Ran {
                report,
                stage_started: observer.stage_started[i],
                stage_peak_bytes: observer.stage_peak[i],
                // Stopped after its deadline: the job timeout, whatever stage it was in.
                timed_out: Instant::now() >= deadlines[i],
            })
            .collect::<Vec<_>>()
    })
    .await;
    drop(relay);
    match joined {
        Ok(ran) => ran,
        Err(e) => {
            // A panic in the pipeline is a bug; report it per job as an engine failure.
            tracing::error!(error = %e, "pipeline thread failed");
            (0..n)
                .map(|_| Ran {
                    report: ItemReport {
                        timings: Default::default(),
                        segmentation: None,
                        batch_size: n,
                        result: Err(ShapeError::Engine {
                            engine: pipeline_engine.as_str().into(),
                            detail: format!("the pipeline thread failed: {e}"),
                        }
                        .into()),
                    },
                    stage_started: [None; 5],
                    stage_peak_bytes: [None; 5],
                    timed_out: false,
                })
                .collect()
        }
    }
}

/// Runs the batch, and when the device runs out of memory for all of it, splits it in halves and
/// runs those (recursively) — an OOM is not a job failure. A single job that still does not fit
/// keeps its out-of-memory result. `on_oom(batch_len, stage)` is told of every split and the
/// stage that ran out.
pub async fn run_with_splits(
    pipeline: Arc<Pipeline>,
    events: Option<Events>,
    work: &[Work],
    mut on_oom: impl FnMut(usize, Stage),
) -> Vec<Ran> {
    let mut results: Vec<Option<Ran>> = (0..work.len()).map(|_| None).collect();
    let mut pending: Vec<std::ops::Range<usize>> = Vec::new();
    pending.push(0..work.len());
    while let Some(range) = pending.pop() {
        let ran = run_batch(pipeline.clone(), events.clone(), &work[range.clone()]).await;
        if range.len() > 1 && ran.iter().all(Ran::is_oom) {
            on_oom(
                range.len(),
                ran[0].oom_stage().unwrap_or(Stage::ShapeGeneration),
            );
            let mid = range.start + range.len() / 2;
            pending.push(mid..range.end);
            pending.push(range.start..mid);
            continue;
        }
        for (i, r) in range.zip(ran) {
            results[i] = Some(r);
        }
    }
    results.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests;
