//! Job execution: start each job's attempt (guarded), fetch its input, run the batch through
//! the pipeline off the async runtime, store every artifact, and commit success together with the
//! attempt's ledger rows; then ack. Failures go to [`crate::disposition`]. The batch's measured
//! peaks (or its out-of-memory splits) teach the memory model ([`crate::learn`]).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use chrono::Utc;
use object_store::ObjectStoreExt;
use orfeas_pipeline::{JobOptions, Stage};
use orfeas_shared::db::{JobEnd, StageRecord, StartOutcome, StoredOutput};
use orfeas_shared::{storage, telemetry};
use orfeas_vocab::{ErrorCode, JobStatus};
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::broker::{Broker, Incoming};
use crate::disposition::{Disposition, Held, send};
use crate::executor::{self, Ran, Work};
use crate::failure::Failure;
use crate::heartbeat::InHand;
use crate::optimizer::{Decision, JobShape};
use crate::startup::Worker;

/// A job whose attempt started, with its message and scheduling priority.
struct Ready {
    message: Incoming,
    work: Work,
    held: Held,
    priority: u8,
}

/// What reading a message and starting its attempt led to.
enum Prepared {
    /// The attempt started: run it.
    Run {
        work: Box<Work>,
        held: Held,
        priority: u8,
    },
    /// Nothing to do: ack (finished, canceled, unknown, or owned by a live attempt).
    Done,
    /// This delivery ended the job (its attempts were used up): dead-letter the message.
    Ended { code: ErrorCode, message: String },
}

impl Worker {
    fn events(&self) -> executor::Events {
        executor::Events {
            db: self.db.clone(),
            progress_interval: self.config.worker.progress_interval,
        }
    }

    /// Takes a batch of messages to their terminal state and acks each. `plan`: the batch's
    /// shape and the optimizer's decision (absent for a lone unreadable message).
    pub(crate) async fn process_batch(
        &self,
        broker: &impl Broker,
        messages: Vec<Incoming>,
        plan: Option<(JobShape, Decision)>,
    ) {
        let mut ready = Vec::new();
        let planned = messages.len();
        for m in messages {
            match self.prepare(&m, planned).await {
                Ok(Prepared::Run {
                    work,
                    held,
                    priority,
                }) => ready.push(Ready {
                    message: m,
                    work: *work,
                    held,
                    priority,
                }),
                Ok(Prepared::Done) => {
                    if let Err(e) = broker.ack(&m).await {
                        tracing::warn!(error = %e, "ack failed");
                    }
                }
                Ok(Prepared::Ended { code, message }) => {
                    self.dead_letter_ended(broker, &m, code, message).await
                }
                Err((held, failure)) => self.dispose(broker, &m, held, failure).await,
            }
        }
        if ready.is_empty() {
            return;
        }
        // Higher priority first; the engine sees the batch in this order.
        ready.sort_by_key(|r| (std::cmp::Reverse(r.priority), r.work.job_id));
        let n = ready.len();
        for r in &mut ready {
            // A root span per job that continues the submitting request's trace.
            r.work.span = tracing::info_span!(
                parent: None,
                "job",
                job.id = %r.work.job_id,
                batch.size = n,
                device = %self.config.worker.device,
                engine = self.engine().as_str(),
                attempt = r.work.attempt,
                otel.kind = "consumer",
            );
            telemetry::extract_into(
                &r.work.span,
                &orfeas_shared::queue::trace_headers(&r.message.properties),
            );
            // Logged inside the job's span, so the line carries its trace id; only now, since
            // entering the span starts it and fixes its parent.
            r.work.span.in_scope(|| tracing::info!("job started"));
        }
        let (messages, work): (Vec<(Incoming, Held)>, Vec<Work>) = ready
            .into_iter()
            .map(|r| ((r.message, r.held), r.work))
            .unzip();
        self.status.send_modify(|s| {
            s.current_batch = work
                .iter()
                .map(|w| InHand {
                    id: w.job_id,
                    attempt: w.attempt,
                    stop: w.stop.clone(),
                })
                .collect();
            s.batch_started = Some(Instant::now());
        });
        self.metrics.in_flight.set(work.len() as i64);
        let span = tracing::info_span!("batch", worker = %self.id, batch_size = work.len());
        let mut ooms = Vec::new();
        let ran = executor::run_with_splits(
            self.pipeline.clone(),
            Some(self.events()),
            &work,
            |n, stage| ooms.push((n, stage)),
        )
        .instrument(span)
        .await;
        if let Some((shape, decision)) = &plan {
            self.learn(shape, decision, &ran, &ooms).await;
        }
        self.metrics.batch_size.observe(work.len() as f64);
        self.metrics.oom_splits.inc_by(ooms.len() as u64);
        for (((m, held), w), r) in messages.iter().zip(&work).zip(ran) {
            if let Some(seg) = r.report.segmentation {
                self.metrics
                    .mask_share
                    .with_label_values(&[seg.method.as_str()])
                    .observe(f64::from(seg.mask_share));
                // Recorded whatever happens next: a bad mask explains a failed shape too.
                if let Err(e) = self.db.record_segmentation(w.job_id, w.attempt, &seg).await {
                    tracing::warn!(job = %w.job_id, error = %e, "segmentation not recorded");
                }
            }
            if !self.weights.is_empty()
                && let Err(e) = self
                    .db
                    .record_weights(w.job_id, w.attempt, &self.weights)
                    .await
            {
                tracing::warn!(job = %w.job_id, error = %e, "weights not recorded");
            }
            match self.complete(w, r).await {
                Ok(()) => {
                    if let Err(e) = broker.ack(m).await {
                        tracing::warn!(error = %e, "ack failed");
                    }
                }
                Err(failure) => self.dispose(broker, m, Some(*held), failure).await,
            }
            // Its end is recorded: the heartbeat no longer renews its lease, nor reads a
            // finished job's missing lease as a takeover to stop.
            self.status
                .send_modify(|s| s.current_batch.retain(|h| h.id != w.job_id));
        }
        self.status.send_modify(|s| {
            s.current_batch.clear();
            s.batch_started = None;
        });
        self.metrics.in_flight.set(0);
    }

    /// Reads the message and starts an attempt, unless another attempt owns the job under a
    /// live lease (then the message is a duplicate: the owner is alive and keeps it).
    async fn prepare(
        &self,
        m: &Incoming,
        batch_size: usize,
    ) -> Result<Prepared, (Option<Held>, Failure)> {
        let msg = m.message().map_err(|e| (None, Failure::Malformed(e)))?;
        let w = &self.config.worker;
        let attempt_started = Instant::now();
        let started = self
            .db
            .start_attempt(
                msg.job_id,
                &self.id,
                w.lease_ttl,
                w.max_attempts,
                w.device,
                batch_size,
            )
            .await;
        let job = match started {
            Ok(StartOutcome::Started(job)) => job,
            Ok(StartOutcome::Owned { attempt, worker_id }) => {
                tracing::info!(job = %msg.job_id, attempt, owner = ?worker_id,
                    "a live attempt owns the job; this copy of its message is acked");
                return Ok(Prepared::Done);
            }
            Ok(StartOutcome::Canceled) => {
                tracing::info!(job = %msg.job_id, "a pending cancel took effect");
                return Ok(Prepared::Done);
            }
            Ok(StartOutcome::Ended { code, message }) => {
                return Ok(Prepared::Ended { code, message });
            }
            Ok(StartOutcome::Skip(status)) => {
                tracing::info!(job = %msg.job_id, ?status, "nothing to run; acking");
                return Ok(Prepared::Done);
            }
            Err(e) => return Err((None, Failure::from(e))),
        };
        let held = Held {
            id: job.id,
            attempt: job.attempt,
            counted: job.counted_attempts,
            outage_since: job.outage_since,
        };
        let started = Some(held);
        if job.attempt == 1 {
            let wait = (Utc::now() - job.created_at).to_std().unwrap_or_default();
            self.metrics.queue_wait.observe(wait.as_secs_f64());
        }
        if job.spec.engine != self.engine() {
            // Engines have their own queues; this happens only through a shared overflow queue
            // or a misrouted message. Failing visibly beats running the wrong model.
            return Err((
                started,
                Failure::permanent(
                    ErrorCode::EngineUnavailable,
                    format!(
                        "the job asks for the {} engine; this worker runs {}",
                        job.spec.engine,
                        self.engine()
                    ),
                ),
            ));
        }
        if let Some(deadline) = job.spec.deadline
            && deadline < Utc::now()
        {
            return Err((
                started,
                Failure::permanent(
                    ErrorCode::DeadlineExceeded,
                    format!("the deadline {deadline} passed before the job could start"),
                ),
            ));
        }
        let input = match self
            .store
            .get(&object_store::path::Path::from(job.input_key.as_str()))
            .await
        {
            Ok(got) => got.bytes().await.map_err(|e| (started, Failure::from(e)))?,
            Err(object_store::Error::NotFound { .. }) => {
                return Err((
                    started,
                    Failure::permanent(
                        ErrorCode::InputMissing,
                        format!("{} is not in the object store", job.input_key),
                    ),
                ));
            }
            Err(e) => return Err((started, Failure::from(e))),
        };
        Ok(Prepared::Run {
            work: Box::new(Work {
                job_id: job.id,
                attempt: job.attempt,
                input,
                options: JobOptions::from(&job.spec),
                span: tracing::Span::none(),
                // Measured from the attempt's start, whatever happens to the batch after.
                deadline: attempt_started + w.job_timeout,
                stop: Arc::new(AtomicBool::new(false)),
            }),
            held,
            priority: job.spec.priority,
        })
    }

    /// Dead-letters the message of a job its delivery ended (attempts used up), then acks.
    async fn dead_letter_ended(
        &self,
        broker: &impl Broker,
        m: &Incoming,
        code: ErrorCode,
        message: String,
    ) {
        tracing::warn!(%code, %message, "attempts used up; job failed, message dead-lettered");
        self.metrics
            .jobs_finished
            .with_label_values(&[
                JobStatus::Failed.as_str(),
                code.as_str(),
                self.engine().as_str(),
            ])
            .inc();
        let d = Disposition::DeadLetter { code, message };
        if let Err(e) = send(broker, &self.topology, m, &d).await {
            // The job is failed already; the dead letter is for inspection only.
            tracing::warn!(error = %e, "dead letter not published");
        }
        if let Err(e) = broker.ack(m).await {
            tracing::warn!(error = %e, "ack failed");
        }
    }

    /// Stores the outputs and commits success with the ledger rows.
    async fn complete(&self, w: &Work, ran: Ran) -> Result<(), Failure> {
        let stages = self.stage_records(w, &ran);
        let output = match ran.report.result {
            Ok(o) => o,
            Err(e) if e.is_out_of_memory() => {
                return Err(Failure::permanent(
                    ErrorCode::InsufficientMemory,
                    format!("the job does not fit on this worker's device even alone: {e}"),
                ));
            }
            Err(_) if ran.timed_out => {
                return Err(Failure::permanent(
                    ErrorCode::JobTimeout,
                    format!(
                        "the job ran longer than {} s",
                        self.config.worker.job_timeout.as_secs()
                    ),
                ));
            }
            Err(e) => return Err(Failure::from(&e)),
        };
        let mut stored: Vec<StoredOutput> = Vec::new();
        for (artifact, bytes) in output.files {
            let sha256 = format!("{:x}", Sha256::digest(&bytes));
            storage::put(
                self.store.as_ref(),
                &storage::output_key(w.job_id, artifact),
                bytes.into(),
            )
            .await?;
            stored.push(StoredOutput { artifact, sha256 });
        }
        let owned = self
            .db
            .finish(
                w.job_id,
                w.attempt,
                &self.id,
                &JobEnd::Succeeded { outputs: stored },
                &stages,
            )
            .await?;
        if owned {
            w.span.in_scope(|| tracing::info!("job succeeded"));
            self.status.send_modify(|s| s.jobs_done += 1);
            let engine = self.engine().as_str();
            for s in &stages {
                self.metrics
                    .stage_duration
                    .with_label_values(&[s.stage.as_str(), engine])
                    .observe(s.duration_seconds);
            }
            self.metrics
                .jobs_finished
                .with_label_values(&[JobStatus::Succeeded.as_str(), "", engine])
                .inc();
        } else {
            tracing::info!(job = %w.job_id, attempt = w.attempt, "another attempt owns the job; result dropped");
        }
        Ok(())
    }

    fn stage_records(&self, w: &Work, ran: &Ran) -> Vec<StageRecord> {
        let batch_size = i32::try_from(ran.report.batch_size).unwrap_or(i32::MAX);
        ran.report
            .timings
            .iter()
            .map(|(stage, d): (Stage, Duration)| StageRecord {
                stage,
                attempt: w.attempt,
                worker_id: self.id.clone(),
                device: self.config.worker.device,
                batch_size,
                started_at: ran.stage_started[stage.index()].unwrap_or_else(Utc::now),
                duration_seconds: d.as_secs_f64(),
                peak_memory_bytes: ran.stage_peak_bytes[stage.index()]
                    .and_then(|b| i64::try_from(b).ok()),
            })
            .collect()
    }
}
