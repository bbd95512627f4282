//! ORFEAS worker: `orfeas worker`. Consumes jobs with manual acks and a prefetch bound, pulls
//! several messages into one pipeline batch, stores every requested mesh, writes the terminal
//! state and the stage ledger in one guarded transaction, and only then acks.
//!
//! Failures are classified in [`failure`]; transient ones go to a delayed retry queue with
//! exponential backoff and jitter, permanent ones fail the job and dead-letter the message with
//! the reason in its headers. SIGTERM stops consuming, finishes and acks the batch in hand, and
//! returns. Connections to RabbitMQ, PostgreSQL and Redis heal by themselves.

pub mod executor;
pub mod failure;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicNackOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection};
use object_store::{ObjectStore, ObjectStoreExt};
use orfeas_pipeline::image::ImageLimits;
use orfeas_pipeline::shape::InflateEngine;
use orfeas_pipeline::{JobOptions, MeshFormat, Pipeline, Stage};
use orfeas_shared::db::{Db, JobEnd, StageRecord, StartOutcome};
use orfeas_shared::domain::{JobId, JobMessage, JobSpec};
use orfeas_shared::heartbeat::{self, WorkerHeartbeat};
use orfeas_shared::queue::{
    self, ERROR_CODE_HEADER, ERROR_MESSAGE_HEADER, RETRIES_HEADER, Topology,
};
use orfeas_shared::{Config, storage};
use tokio::sync::{Mutex, watch};
use tracing::Instrument;

use executor::{Ran, Work};
use failure::{Failure, backoff_ms};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Db(#[from] orfeas_shared::db::DbError),
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
}

/// Everything the worker's tasks share; built once per process.
#[derive(Debug)]
pub struct Worker {
    config: Config,
    db: Db,
    store: Arc<dyn ObjectStore>,
    pipeline: Arc<Pipeline>,
    topology: Topology,
    id: String,
    device: String,
    current: Mutex<Vec<JobId>>,
    jobs_done: AtomicU64,
}

/// Maps a validated job spec onto the pipeline's options.
pub fn pipeline_options(spec: &JobSpec) -> JobOptions {
    let mut o = JobOptions::default();
    o.preprocess.background = spec.remove_background;
    o.shape.octree_resolution = spec.octree_resolution;
    o.shape.seed = spec.seed;
    o.shape.steps = spec.steps;
    o.shape.guidance_scale = spec.guidance_scale;
    o.shape.num_chunks = spec.num_chunks;
    o.postprocess.face_count = spec
        .face_count
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    o.texture = spec.texture;
    o.formats = spec.formats.clone();
    o
}

impl Worker {
    pub async fn new(config: Config) -> Result<Arc<Worker>, StartError> {
        let db = Db::connect_lazy(&config.database.url, config.database.max_connections)?;
        db.check_schema().await?;
        let store = storage::build(&config.storage)?;
        // The model (today the weights-free engine) belongs to this process and stays resident.
        let pipeline = Arc::new(Pipeline::new(
            Box::new(InflateEngine),
            ImageLimits::default(),
        ));
        Ok(Arc::new(Worker {
            topology: Topology::new(&config.amqp.queue),
            id: config.worker_id(),
            device: "cpu".into(),
            db,
            store,
            pipeline,
            config,
            current: Mutex::new(Vec::new()),
            jobs_done: AtomicU64::new(0),
        }))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs until `shutdown` resolves; then finishes and acks the batch in hand and returns.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()> + Send + 'static) {
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = tx.send(true);
        });
        let hb = tokio::spawn(self.clone().heartbeat_loop());
        let mut backoff = Duration::from_millis(200);
        while !*rx.borrow() {
            let session = tokio::select! {
                _ = wait_stop(rx.clone()) => break,
                s = self.open_session() => s,
            };
            match session {
                Ok((conn, channel, consumer)) => {
                    backoff = Duration::from_millis(200);
                    tracing::info!(worker = %self.id, queue = %self.topology.jobs, "consuming");
                    let lost = self.consume(&channel, consumer, rx.clone()).await;
                    match lost {
                        None => {
                            let _ = channel
                                .basic_cancel(
                                    self.id.as_str().into(),
                                    BasicCancelOptions::default(),
                                )
                                .await;
                            let _ = channel.close(200, "worker stopping".into()).await;
                            let _ = conn.close(200, "worker stopping".into()).await;
                            break;
                        }
                        Some(reason) => {
                            tracing::warn!(%reason, "queue connection lost; reconnecting")
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "queue unavailable");
                    tokio::select! {
                        _ = wait_stop(rx.clone()) => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        hb.abort();
        if let Ok(mut conn) = heartbeat::connect(&self.config.redis.url).await {
            let _ = heartbeat::remove(&mut conn, &self.config.redis.key_prefix, &self.id).await;
        }
        tracing::info!(worker = %self.id, "stopped");
    }

    async fn open_session(
        &self,
    ) -> Result<(Connection, Channel, lapin::Consumer), queue::QueueError> {
        let conn = queue::connect(&self.config.amqp.url).await?;
        let channel = conn.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        self.topology.declare(&channel).await?;
        let consumer = queue::consume(
            &channel,
            &self.topology.jobs,
            &self.id,
            self.config.worker.prefetch,
        )
        .await?;
        Ok((conn, channel, consumer))
    }

    /// Consumes until asked to stop (`None`) or the connection is lost (`Some(reason)`).
    async fn consume(
        &self,
        channel: &Channel,
        mut consumer: lapin::Consumer,
        rx: watch::Receiver<bool>,
    ) -> Option<String> {
        let wait = Duration::from_millis(self.config.worker.batch_wait_ms);
        loop {
            let first = tokio::select! {
                _ = wait_stop(rx.clone()) => return None,
                d = consumer.next() => d,
            };
            let first = match first {
                None => return Some("the consumer was closed".into()),
                Some(Err(e)) => return Some(e.to_string()),
                Some(Ok(d)) => d,
            };
            let mut batch = vec![first];
            let mut lost = None;
            let until = tokio::time::Instant::now() + wait;
            while batch.len() < self.config.worker.batch_size {
                match tokio::time::timeout_at(until, consumer.next()).await {
                    Ok(Some(Ok(d))) => batch.push(d),
                    Ok(Some(Err(e))) => {
                        lost = Some(e.to_string());
                        break;
                    }
                    Ok(None) => {
                        lost = Some("the consumer was closed".into());
                        break;
                    }
                    Err(_) => break,
                }
            }
            self.process_batch(channel, batch).await;
            if lost.is_some() {
                return lost;
            }
        }
    }

    /// Takes a batch of deliveries to their terminal state and acks each.
    pub async fn process_batch(&self, channel: &Channel, deliveries: Vec<Delivery>) {
        let mut ready: Vec<(Delivery, Work, u8, u32)> = Vec::new();
        for d in deliveries {
            let retries = queue::header_u32(&d.properties, RETRIES_HEADER);
            match self.prepare(&d).await {
                Ok(Some((work, priority))) => ready.push((d, work, priority, retries)),
                Ok(None) => ack(&d).await,
                Err((job, failure)) => self.dispose(channel, &d, job, retries, failure).await,
            }
        }
        if ready.is_empty() {
            return;
        }
        // Higher priority first; the engine sees the batch in this order.
        ready.sort_by_key(|(_, w, p, _)| (std::cmp::Reverse(*p), w.job_id));
        let work: Vec<Work> = ready
            .iter_mut()
            .map(|(_, w, _, _)| Work {
                job_id: w.job_id,
                attempt: w.attempt,
                input: std::mem::take(&mut w.input),
                options: w.options.clone(),
            })
            .collect();
        *self.current.lock().await = work.iter().map(|w| w.job_id).collect();
        let span = tracing::info_span!("batch", worker = %self.id, batch_size = work.len());
        let ran = executor::run_batch(
            self.pipeline.clone(),
            self.db.clone(),
            &work,
            Duration::from_secs(self.config.worker.job_timeout_s),
        )
        .instrument(span)
        .await;
        for ((d, w, _, retries), r) in ready.into_iter().zip(ran) {
            let job = Some((w.job_id, w.attempt));
            match self.complete(&w, r).await {
                Ok(()) => ack(&d).await,
                Err(failure) => self.dispose(channel, &d, job, retries, failure).await,
            }
        }
        self.current.lock().await.clear();
    }

    /// Parses the message and starts an attempt. `Ok(None)`: nothing to do (already finished,
    /// canceled, or unknown).
    async fn prepare(
        &self,
        d: &Delivery,
    ) -> Result<Option<(Work, u8)>, (Option<(JobId, i32)>, Failure)> {
        let msg: JobMessage = serde_json::from_slice(&d.data)
            .map_err(|e| (None, Failure::Malformed(format!("not a job message: {e}"))))?;
        let job = match self.db.start_attempt(msg.job_id, &self.id).await {
            Ok(StartOutcome::Started(job)) => job,
            Ok(StartOutcome::Skip(status)) => {
                tracing::info!(job = %msg.job_id, ?status, "nothing to run; acking");
                return Ok(None);
            }
            Err(e) => return Err((None, Failure::from(e))),
        };
        let started = Some((job.id, job.attempt));
        if let Some(deadline) = job.spec.deadline
            && deadline < Utc::now()
        {
            return Err((
                started,
                Failure::permanent(
                    "deadline_exceeded",
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
                        "input_missing",
                        format!("{} is not in the object store", job.input_key),
                    ),
                ));
            }
            Err(e) => return Err((started, Failure::from(e))),
        };
        Ok(Some((
            Work {
                job_id: job.id,
                attempt: job.attempt,
                input,
                options: pipeline_options(&job.spec),
            },
            job.spec.priority,
        )))
    }

    /// Stores the outputs and commits success with the ledger rows.
    async fn complete(&self, w: &Work, ran: Ran) -> Result<(), Failure> {
        let output = match ran.report.result {
            Ok(o) => o,
            Err(_) if ran.timed_out => {
                return Err(Failure::permanent(
                    "job_timeout",
                    format!(
                        "the job ran longer than {} s",
                        self.config.worker.job_timeout_s
                    ),
                ));
            }
            Err(e) => return Err(Failure::from(&e)),
        };
        let mut formats: Vec<MeshFormat> = Vec::new();
        for (format, bytes) in output.files {
            storage::put(
                self.store.as_ref(),
                &storage::output_key(w.job_id, format),
                bytes.into(),
            )
            .await?;
            formats.push(format);
        }
        let stages = self.stage_records(
            w,
            &ran.report.timings,
            &ran.stage_started,
            ran.report.batch_size,
        );
        let owned = self
            .db
            .finish(
                w.job_id,
                w.attempt,
                &JobEnd::Succeeded { outputs: formats },
                &stages,
            )
            .await?;
        if owned {
            self.jobs_done.fetch_add(1, Ordering::Relaxed);
        } else {
            tracing::info!(job = %w.job_id, attempt = w.attempt, "another attempt owns the job; result dropped");
        }
        Ok(())
    }

    fn stage_records(
        &self,
        w: &Work,
        timings: &orfeas_pipeline::StageTimings,
        started: &[Option<chrono::DateTime<Utc>>; 5],
        batch_size: usize,
    ) -> Vec<StageRecord> {
        timings
            .iter()
            .map(|(stage, d): (Stage, Duration)| StageRecord {
                stage,
                attempt: w.attempt,
                worker_id: self.id.clone(),
                device: self.device.clone(),
                batch_size: i32::try_from(batch_size).unwrap_or(i32::MAX),
                started_at: started[stage.index()].unwrap_or_else(Utc::now),
                duration_seconds: d.as_secs_f64(),
            })
            .collect()
    }

    /// Applies a failure: cancel, fail + dead-letter, or delayed retry. Acks when the outcome is
    /// recorded; if even that is impossible (database or broker down), the message is returned
    /// to the queue after a pause.
    async fn dispose(
        &self,
        channel: &Channel,
        d: &Delivery,
        job: Option<(JobId, i32)>,
        retries: u32,
        failure: Failure,
    ) {
        let result = self.try_dispose(channel, d, job, retries, failure).await;
        match result {
            Ok(()) => ack(d).await,
            Err(e) => {
                let pause = Duration::from_millis(backoff_ms(
                    retries,
                    self.config.worker.retry_base_ms,
                    self.config.worker.retry_max_ms,
                ));
                tracing::warn!(error = %e, ?pause, "could not record the failure; returning the message");
                tokio::time::sleep(pause).await;
                let _ = d
                    .nack(BasicNackOptions {
                        requeue: true,
                        ..BasicNackOptions::default()
                    })
                    .await;
            }
        }
    }

    async fn try_dispose(
        &self,
        channel: &Channel,
        d: &Delivery,
        job: Option<(JobId, i32)>,
        retries: u32,
        failure: Failure,
    ) -> Result<(), String> {
        match failure {
            Failure::Canceled => {
                if let Some((id, attempt)) = job {
                    self.db
                        .finish(id, attempt, &JobEnd::Canceled, &[])
                        .await
                        .map_err(|e| e.to_string())?;
                    tracing::info!(job = %id, "canceled while running");
                }
                Ok(())
            }
            Failure::Malformed(reason) => {
                self.dead_letter(channel, d, "malformed_message", &reason)
                    .await
            }
            Failure::Permanent { code, message } => {
                self.fail(channel, d, job, &code, &message).await
            }
            Failure::Transient { code, message } => {
                let next = retries + 1;
                if next >= self.config.worker.max_attempts {
                    let message =
                        format!("gave up after {next} attempts; last error [{code}] {message}");
                    return self
                        .fail(channel, d, job, "retries_exhausted", &message)
                        .await;
                }
                if let Some((id, attempt)) = job {
                    self.db
                        .requeue(id, attempt)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                let delay = backoff_ms(
                    retries,
                    self.config.worker.retry_base_ms,
                    self.config.worker.retry_max_ms,
                );
                let mut headers = FieldTable::default();
                headers.insert(RETRIES_HEADER.into(), AMQPValue::LongUInt(next));
                headers.insert(
                    ERROR_CODE_HEADER.into(),
                    AMQPValue::LongString(code.as_str().into()),
                );
                let priority = d.properties.priority().unwrap_or(0);
                let props =
                    queue::properties(priority, headers).with_expiration(delay.to_string().into());
                queue::publish_confirmed(channel, &self.topology.retry, &d.data, props)
                    .await
                    .map_err(|e| e.to_string())?;
                tracing::warn!(?job, %code, %message, retry = next, delay_ms = delay, "transient failure; retrying");
                Ok(())
            }
        }
    }

    async fn fail(
        &self,
        channel: &Channel,
        d: &Delivery,
        job: Option<(JobId, i32)>,
        code: &str,
        message: &str,
    ) -> Result<(), String> {
        if let Some((id, attempt)) = job {
            let end = JobEnd::Failed {
                code: code.to_owned(),
                message: message.to_owned(),
            };
            let owned = self
                .db
                .finish(id, attempt, &end, &[])
                .await
                .map_err(|e| e.to_string())?;
            if !owned {
                // Not running under this attempt (e.g. requeued): fail it from wherever it is.
                self.db
                    .fail_unstarted(id, code, message)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            tracing::warn!(job = %id, %code, %message, "job failed");
        } else if let Ok(msg) = serde_json::from_slice::<JobMessage>(&d.data) {
            self.db
                .fail_unstarted(msg.job_id, code, message)
                .await
                .map_err(|e| e.to_string())?;
        }
        self.dead_letter(channel, d, code, message).await
    }

    async fn dead_letter(
        &self,
        channel: &Channel,
        d: &Delivery,
        code: &str,
        message: &str,
    ) -> Result<(), String> {
        let mut headers = d.properties.headers().clone().unwrap_or_default();
        headers.insert(ERROR_CODE_HEADER.into(), AMQPValue::LongString(code.into()));
        headers.insert(
            ERROR_MESSAGE_HEADER.into(),
            AMQPValue::LongString(message.into()),
        );
        let priority = d.properties.priority().unwrap_or(0);
        queue::publish_confirmed(
            channel,
            &self.topology.dead_letter,
            &d.data,
            queue::properties(priority, headers),
        )
        .await
        .map_err(|e| e.to_string())
    }

    async fn heartbeat_loop(self: Arc<Self>) {
        let started_at = Utc::now();
        let host = orfeas_shared::config::hostname_or_unknown();
        let mut conn = None;
        let every = Duration::from_millis(self.config.worker.heartbeat_interval_ms.max(100));
        loop {
            if conn.is_none() {
                conn = heartbeat::connect(&self.config.redis.url).await.ok();
            }
            if let Some(c) = conn.as_mut() {
                let hb = WorkerHeartbeat {
                    id: self.id.clone(),
                    host: host.clone(),
                    device: self.device.clone(),
                    engine: self.pipeline.engine().name().to_owned(),
                    current_batch: self.current.lock().await.clone(),
                    jobs_done: self.jobs_done.load(Ordering::Relaxed),
                    started_at,
                    last_seen: Utc::now(),
                };
                if let Err(e) = heartbeat::beat(
                    c,
                    &self.config.redis.key_prefix,
                    &hb,
                    self.config.worker.heartbeat_ttl_ms,
                )
                .await
                {
                    tracing::debug!(error = %e, "heartbeat not written");
                }
            }
            tokio::time::sleep(every).await;
        }
    }
}

async fn wait_stop(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn ack(d: &Delivery) {
    if let Err(e) = d.ack(BasicAckOptions::default()).await {
        // The channel is gone: the broker redelivers, and the finished job is skipped then.
        tracing::warn!(error = %e, "ack failed");
    }
}
pub mod optimizer;
pub mod simulation;
