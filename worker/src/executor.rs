//! Runs a batch through the pipeline on a blocking thread (the compute never runs on the async
//! runtime). Stage boundaries report progress to PostgreSQL and ask it whether to stop: a
//! cancel request, another attempt taking over, or the job timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use orfeas_pipeline::{BatchItem, ItemReport, JobOptions, Pipeline, ProgressObserver, Stage};
use orfeas_shared::db::Db;
use orfeas_shared::domain::JobId;
use tokio::runtime::Handle;

/// One job of a batch, ready to run.
#[derive(Debug)]
pub struct Work {
    pub job_id: JobId,
    pub attempt: i32,
    pub input: bytes::Bytes,
    pub options: JobOptions,
}

/// What the pipeline reported for one job, with when each stage started.
#[derive(Debug)]
pub struct Ran {
    pub report: ItemReport,
    pub stage_started: [Option<DateTime<Utc>>; 5],
    pub timed_out: bool,
}

/// Progress shown while a stage runs.
fn progress_at(stage: Stage) -> i16 {
    match stage {
        Stage::ImageLoading => 5,
        Stage::ImagePreprocessing => 15,
        Stage::ShapeGeneration => 30,
        Stage::TextureSynthesis => 80,
        Stage::MeshExport => 90,
    }
}

struct DbObserver {
    handle: Handle,
    db: Db,
    jobs: Vec<(JobId, i32)>,
    started: Instant,
    timeout: Duration,
    stage_started: Vec<[Option<DateTime<Utc>>; 5]>,
    timed_out: Vec<bool>,
}

impl ProgressObserver for DbObserver {
    fn stage_started(&mut self, item: usize, stage: Stage) {
        self.stage_started[item][stage.index()] = Some(Utc::now());
        let (id, attempt) = self.jobs[item];
        if let Err(e) =
            self.handle
                .block_on(self.db.enter_stage(id, attempt, stage, progress_at(stage)))
        {
            tracing::debug!(job = %id, error = %e, "progress not recorded");
        }
    }

    fn stage_finished(&mut self, _: usize, _: Stage, _: Duration, _: bool) {}

    fn is_canceled(&mut self, item: usize) -> bool {
        if self.started.elapsed() > self.timeout {
            self.timed_out[item] = true;
            return true;
        }
        let (id, attempt) = self.jobs[item];
        // If the database cannot answer, keep going: the final guarded write decides.
        self.handle
            .block_on(self.db.should_stop(id, attempt))
            .unwrap_or(false)
    }
}

/// Runs the batch; one result per work item, in order.
pub async fn run_batch(
    pipeline: Arc<Pipeline>,
    db: Db,
    work: &[Work],
    timeout: Duration,
) -> Vec<Ran> {
    let handle = Handle::current();
    let jobs: Vec<(JobId, i32)> = work.iter().map(|w| (w.job_id, w.attempt)).collect();
    let inputs: Vec<(bytes::Bytes, JobOptions)> = work
        .iter()
        .map(|w| (w.input.clone(), w.options.clone()))
        .collect();
    let n = work.len();
    let span = tracing::Span::current();
    let joined = tokio::task::spawn_blocking(move || {
        let _enter = span.enter();
        let mut observer = DbObserver {
            handle,
            db,
            jobs,
            started: Instant::now(),
            timeout,
            stage_started: vec![[None; 5]; n],
            timed_out: vec![false; n],
        };
        let items: Vec<BatchItem<'_>> = inputs
            .iter()
            .map(|(bytes, options)| BatchItem { bytes, options })
            .collect();
        let reports = pipeline.run_batch(&items, &mut observer);
        reports
            .into_iter()
            .enumerate()
            .map(|(i, report)| Ran {
                report,
                stage_started: observer.stage_started[i],
                timed_out: observer.timed_out[i],
            })
            .collect::<Vec<_>>()
    })
    .await;
    match joined {
        Ok(ran) => ran,
        Err(e) => {
            // A panic in the pipeline is a bug; report it per job as an engine failure.
            tracing::error!(error = %e, "pipeline thread failed");
            (0..n)
                .map(|_| Ran {
                    report: ItemReport {
                        timings: Default::default(),
                        batch_size: n,
                        result: Err(orfeas_pipeline::error::ShapeError::Engine {
                            engine: "pipeline".into(),
                            detail: format!("the pipeline thread failed: {e}"),
                        }
                        .into()),
                    },
                    stage_started: [None; 5],
                    timed_out: false,
                })
                .collect()
        }
    }
}
