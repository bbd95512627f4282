//! ORFEAS worker: `orfeas worker`. Consumes jobs with manual acks; the batch optimizer
//! ([`optimizer`]) decides how many compatible jobs to pull into one pipeline batch. The worker
//! stores every requested mesh, writes the terminal state and the stage ledger in one guarded
//! transaction, and only then acks.
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
use lapin::types::AMQPValue;
use lapin::{Channel, Connection};
use object_store::{ObjectStore, ObjectStoreExt};
use orfeas_pipeline::error::ShapeError;
use orfeas_pipeline::image::ImageLimits;
use orfeas_pipeline::shape::{InflateEngine, ShapeEngine};
use orfeas_pipeline::{JobOptions, MeshFormat, Pipeline, PipelineError, Stage};
use orfeas_shared::db::{Db, JobEnd, MemoryFigure, StageRecord, StartOutcome};
use orfeas_shared::domain::{Engine, JobId, JobMessage, JobSpec};
use orfeas_shared::heartbeat::{self, DeviceSample, WorkerHeartbeat};
use orfeas_shared::metrics::WorkerMetrics;
use orfeas_shared::queue::{
    self, ERROR_CODE_HEADER, ERROR_MESSAGE_HEADER, RETRIES_HEADER, Topology,
};
use orfeas_shared::{Config, storage, telemetry};
use tokio::sync::{Mutex, watch};
use tracing::Instrument;

use executor::{Ran, Work};
use failure::{Failure, backoff_ms};
use optimizer::{
    Decision, DeviceMemory, DeviceProbe, JobShape, Learned, MemoryModel, OptimizerConfig,
};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Db(#[from] orfeas_shared::db::DbError),
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error("{0}")]
    Device(String),
    /// The configured engine's model could not be loaded (missing or corrupt checkpoint).
    #[error("model: {0}")]
    Model(String),
}

/// The engine `worker.engine` names, with its model loaded (once per process).
pub fn build_engine(config: &Config) -> Result<Box<dyn ShapeEngine>, StartError> {
    use orfeas_pipeline::shape::hunyuan3d::{Hunyuan3dSettings, load_engine};
    match config.worker_engine() {
        Engine::Inflate => Ok(Box::new(InflateEngine)),
        Engine::Hunyuan3d => {
            let w = &config.worker;
            if w.weights.is_empty() {
                return Err(StartError::Model(
                    "worker.engine = hunyuan3d needs worker.weights (a checkpoint folder)".into(),
                ));
            }
            let settings = Hunyuan3dSettings::from_names(&w.dtype, &w.volume_decoding)
                .map_err(|e| StartError::Model(e.to_string()))?;
            let started = std::time::Instant::now();
            let engine = load_engine(std::path::Path::new(&w.weights), &w.device, settings)
                .map_err(|e| StartError::Model(format!("{}: {e}", w.weights)))?;
            tracing::info!(weights = %w.weights, device = %w.device, dtype = %w.dtype,
                load_s = started.elapsed().as_secs_f64(), "hunyuan3d model loaded");
            Ok(engine)
        }
    }
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
    optimizer: OptimizerConfig,
    model: Mutex<MemoryModel>,
    last_decision: Mutex<Option<Decision>>,
    metrics: Arc<WorkerMetrics>,
    probe: std::sync::Mutex<DeviceProbe>,
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
        let device = config.worker.device.clone();
        let probe = DeviceProbe::open(&device).map_err(StartError::Device)?;
        // The model belongs to this process and stays resident across jobs.
        let pipeline = Arc::new(Pipeline::new(
            build_engine(&config)?,
            ImageLimits::default(),
        ));
        if device != "cpu" && config.worker_engine() == Engine::Inflate {
            tracing::warn!(
                %device,
                "the inflate engine runs on the CPU; batch sizing and metrics read {device}'s memory"
            );
        }
        let learned = db.memory_model(&device).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "memory model not loaded; starting from the documented estimates");
            Vec::new()
        });
        let model = MemoryModel::from_entries(learned.into_iter().map(|f| {
            (
                (
                    f.engine,
                    u32::try_from(f.resolution_bucket).unwrap_or(0),
                    f.device,
                ),
                Learned {
                    bytes_per_job: u64::try_from(f.bytes_per_job).unwrap_or(1),
                    samples: u64::try_from(f.samples).unwrap_or(0),
                },
            )
        }));
        let optimizer = OptimizerConfig {
            target_utilization: config.worker.target_utilization,
            max_batch: config.worker.batch_size,
            max_wait: Duration::from_millis(config.worker.batch_wait_ms),
        };
        Ok(Arc::new(Worker {
            topology: Topology::for_engine(&config.amqp.queue, config.worker_engine()),
            id: config.worker_id(),
            device,
            optimizer,
            model: Mutex::new(model),
            last_decision: Mutex::new(None),
            metrics: Arc::new(WorkerMetrics::new()),
            probe: std::sync::Mutex::new(probe),
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

    /// This worker's Prometheus metrics (served by `orfeas worker` on `worker.metrics_listen`).
    pub fn metrics(&self) -> Arc<WorkerMetrics> {
        self.metrics.clone()
    }

    fn engine(&self) -> &'static str {
        self.pipeline.engine().name()
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
                    self.metrics.up.set(1.0);
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
        self.metrics.up.set(0.0);
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
        let consumer = queue::consume(&channel, &self.topology.jobs, &self.id, 1).await?;
        Ok((conn, channel, consumer))
    }

    /// Consumes until asked to stop (`None`) or the connection is lost (`Some(reason)`).
    ///
    /// After the first message of a batch arrives, the optimizer decides how many compatible
    /// jobs (same engine and resolution) to run with it, from free memory, the learned per-job
    /// figure and the queue depth. The consumer's prefetch is one; the rest of the batch is pulled,
    /// so the worker holds unacked messages only for the batch it is about to run.
    async fn consume(
        &self,
        channel: &Channel,
        mut consumer: lapin::Consumer,
        rx: watch::Receiver<bool>,
    ) -> Option<String> {
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
            let Some(shape) = message_shape(&first) else {
                self.process_batch(channel, vec![first]).await;
                continue;
            };
            let depth = match self.topology.depth(channel).await {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("DEPTH ERR {e}");
                    0
                }
            };
            eprintln!("DEPTH {depth}");
            let decision = self.decide(&shape, u64::from(depth) + 1).await;
            if decision.batch_size == 0 {
                self.does_not_fit(channel, &first, &decision).await;
                continue;
            }
            // The rest of the batch is pulled (basic.get), so the worker takes exactly the jobs it
            // is about to run; the consumer itself holds at most one message.
            let mut batch = vec![first];
            let mut lost = None;
            let until = tokio::time::Instant::now() + decision.wait;
            while batch.len() < decision.batch_size {
                let got = channel
                    .basic_get(
                        self.topology.jobs.as_str().into(),
                        lapin::options::BasicGetOptions { no_ack: false },
                    )
                    .await;
                match got {
                    Ok(Some(m)) => {
                        let d = m.delivery;
                        if message_shape(&d).is_some_and(|s| s == shape) {
                            batch.push(d);
                        } else {
                            // Never mixed into this batch: back to the queue, and the batch is
                            // complete (the next one starts with it).
                            requeue(&d).await;
                            break;
                        }
                    }
                    Ok(None) => {
                        if tokio::time::Instant::now() >= until {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err(e) => {
                        lost = Some(e.to_string());
                        break;
                    }
                }
            }
            self.process_batch(channel, batch).await;
            if lost.is_some() {
                return lost;
            }
        }
    }

    /// A job too large for this worker's device even alone: routed to the configured queue for
    /// larger devices, or failed with `insufficient_memory`.
    async fn does_not_fit(&self, channel: &Channel, d: &Delivery, decision: &Decision) {
        let overflow = &self.config.worker.overflow_queue;
        if !overflow.is_empty() {
            let headers = d.properties.headers().clone().unwrap_or_default();
            let priority = d.properties.priority().unwrap_or(0);
            let routed = async {
                channel
                    .queue_declare(
                        overflow.as_str().into(),
                        lapin::options::QueueDeclareOptions {
                            durable: true,
                            ..Default::default()
                        },
                        queue::quorum_arguments(),
                    )
                    .await?;
                queue::publish_confirmed(
                    channel,
                    overflow,
                    &d.data,
                    queue::properties(priority, headers),
                )
                .await
            };
            match routed.await {
                Ok(()) => {
                    tracing::info!(queue = %overflow, reasoning = %decision.reasoning, "job routed to a queue for larger devices");
                    ack(d).await;
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not route to the overflow queue; failing the job")
                }
            }
        }
        let retries = queue::header_u32(&d.properties, RETRIES_HEADER);
        let failure = Failure::permanent("insufficient_memory", decision.reasoning.clone());
        self.dispose(channel, d, None, retries, failure).await;
    }

    /// The device's memory as this worker may use it: the machine's (on CPU), capped by
    /// `worker.memory_limit_bytes`, of which this process already holds its resident set.
    fn device_memory(&self) -> Option<DeviceMemory> {
        let system = self.probe.lock().ok()?.memory().ok()?;
        let limit = self.config.worker.memory_limit_bytes;
        if limit == 0 {
            return Some(system);
        }
        let own = optimizer::rss_bytes().unwrap_or(0);
        Some(DeviceMemory {
            total_bytes: limit.min(system.total_bytes),
            free_bytes: limit.saturating_sub(own).min(system.free_bytes),
        })
    }

    /// The optimizer's decision for the next batch, logged with its reasoning.
    async fn decide(&self, shape: &JobShape<'static>, waiting: u64) -> Decision {
        let job = *shape;
        let (per_job, source) = self.model.lock().await.estimate(&job, &self.device);
        let memory = self.device_memory().unwrap_or(DeviceMemory {
            total_bytes: per_job.saturating_mul(self.optimizer.max_batch as u64 * 2),
            free_bytes: per_job.saturating_mul(self.optimizer.max_batch as u64 * 2),
        });
        let d = optimizer::decide(&self.optimizer, memory, per_job, &source, waiting);
        tracing::info!(
            batch_size = d.batch_size,
            engine = shape.engine,
            octree_resolution = shape.octree_resolution,
            "Dynamic batch size: {} (reasoning: {})",
            d.batch_size,
            d.reasoning
        );
        let m = &self.metrics;
        let outcome = if d.batch_size == 0 {
            "does_not_fit"
        } else {
            "batch"
        };
        m.optimizer_decisions
            .with_label_values(&[shape.engine, outcome])
            .inc();
        m.optimizer_batch_size.set(d.batch_size as i64);
        m.optimizer_per_job_bytes
            .with_label_values(&[
                shape.engine,
                &optimizer::resolution_bucket(shape.octree_resolution).to_string(),
            ])
            .set(i64::try_from(per_job).unwrap_or(i64::MAX));
        *self.last_decision.lock().await = Some(d.clone());
        d
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
        let n = ready.len();
        let (deliveries, mut work): (Vec<(Delivery, u32)>, Vec<Work>) = ready
            .into_iter()
            .map(|(d, w, _, retries)| ((d, retries), w))
            .unzip();
        for ((d, _), w) in deliveries.iter().zip(work.iter_mut()) {
            // A root span per job that continues the submitting request's trace.
            w.span = tracing::info_span!(
                parent: None,
                "job",
                job.id = %w.job_id,
                batch.size = n,
                device = %self.device,
                engine = self.engine(),
                attempt = w.attempt,
                otel.kind = "consumer",
            );
            telemetry::extract_into(&w.span, &queue::trace_headers(&d.properties));
        }
        *self.current.lock().await = work.iter().map(|w| w.job_id).collect();
        self.metrics.in_flight.set(work.len() as i64);
        let span = tracing::info_span!("batch", worker = %self.id, batch_size = work.len());
        let shape = work.first().map(|w| shape_of_options(&w.options));
        let mut ooms = Vec::new();
        let ran = executor::run_with_splits(
            self.pipeline.clone(),
            Some(self.db.clone()),
            &work,
            Duration::from_secs(self.config.worker.job_timeout_s),
            |n| ooms.push(n),
        )
        .instrument(span)
        .await;
        if let Some(shape) = &shape {
            self.learn(shape, &ran, &ooms).await;
        }
        self.metrics.batch_size.observe(work.len() as f64);
        self.metrics.oom_splits.inc_by(ooms.len() as u64);
        for (((d, retries), w), r) in deliveries.into_iter().zip(&work).zip(ran) {
            let job = Some((w.job_id, w.attempt));
            match self.complete(w, r).await {
                Ok(()) => ack(&d).await,
                Err(failure) => self.dispose(channel, &d, job, retries, failure).await,
            }
        }
        self.current.lock().await.clear();
        self.metrics.in_flight.set(0);
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
        if job.attempt == 1 {
            let wait = (Utc::now() - job.created_at).to_std().unwrap_or_default();
            self.metrics.queue_wait.observe(wait.as_secs_f64());
        }
        if job.spec.engine.as_str() != self.engine() {
            // Engines have their own queues; this happens only through a shared overflow queue
            // or a misrouted message. Failing visibly beats running the wrong model.
            return Err((
                started,
                Failure::permanent(
                    "engine_unavailable",
                    format!(
                        "the job asks for the {} engine; this worker runs {}",
                        job.spec.engine.as_str(),
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
                span: tracing::Span::none(),
            },
            job.spec.priority,
        )))
    }

    /// Stores the outputs and commits success with the ledger rows.
    async fn complete(&self, w: &Work, ran: Ran) -> Result<(), Failure> {
        let stages = self.stage_records(w, &ran);
        let output = match ran.report.result {
            Ok(o) => o,
            Err(PipelineError::Shape(ShapeError::OutOfMemory { detail })) => {
                return Err(Failure::permanent(
                    "insufficient_memory",
                    format!("the job does not fit on this worker's device even alone: {detail}"),
                ));
            }
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
            let engine = self.engine();
            for s in &stages {
                self.metrics
                    .stage_duration
                    .with_label_values(&[s.stage.as_str(), engine])
                    .observe(s.duration_seconds);
            }
            self.metrics
                .jobs_finished
                .with_label_values(&["succeeded", "", engine])
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
                device: self.device.clone(),
                batch_size,
                started_at: ran.stage_started[stage.index()].unwrap_or_else(Utc::now),
                duration_seconds: d.as_secs_f64(),
                peak_memory_bytes: ran.stage_peak_bytes[stage.index()]
                    .and_then(|b| i64::try_from(b).ok()),
            })
            .collect()
    }

    /// Feeds the batch's measured peaks (or its out-of-memory splits) to the memory model and
    /// persists the figure.
    async fn learn(&self, shape: &JobShape<'static>, ran: &[Ran], ooms: &[usize]) {
        let job = *shape;
        let entry = {
            let mut model = self.model.lock().await;
            if let Some(&n) = ooms.iter().max() {
                let budget = self
                    .last_decision
                    .lock()
                    .await
                    .as_ref()
                    .map(|d| d.budget_bytes)
                    .unwrap_or(0);
                Some(model.after_oom(&job, &self.device, budget, n))
            } else {
                let peaks: Vec<u64> = ran.iter().filter_map(Ran::peak_per_job).collect();
                peaks
                    .iter()
                    .max()
                    .filter(|&&p| p > 0)
                    .map(|&p| model.observe(&job, &self.device, p))
            }
        };
        if let Some(((engine, bucket, device), learned)) = entry {
            let figure = MemoryFigure {
                engine,
                resolution_bucket: i32::try_from(bucket).unwrap_or(i32::MAX),
                device,
                bytes_per_job: i64::try_from(learned.bytes_per_job).unwrap_or(i64::MAX),
                samples: i64::try_from(learned.samples).unwrap_or(i64::MAX),
            };
            if let Err(e) = self.db.save_memory_figure(&figure).await {
                tracing::debug!(error = %e, "memory figure not saved");
            }
        }
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
                requeue(d).await;
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
                    self.metrics
                        .jobs_finished
                        .with_label_values(&["canceled", "canceled", self.engine()])
                        .inc();
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
                // Keep the trace context (and any other headers) on the retried message.
                let mut headers = d.properties.headers().clone().unwrap_or_default();
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

    /// Every interval: samples the device (memory, utilisation) into the metrics and writes
    /// the heartbeat (with the last samples and the optimizer's last decision) to Redis.
    async fn heartbeat_loop(self: Arc<Self>) {
        const SAMPLES: usize = 10;
        let started_at = Utc::now();
        let host = orfeas_shared::config::hostname_or_unknown();
        let mut conn = None;

        let mut samples: std::collections::VecDeque<DeviceSample> =
            std::collections::VecDeque::new();
        let every = Duration::from_millis(self.config.worker.heartbeat_interval_ms.max(100));
        loop {
            let memory = self.device_memory().unwrap_or(DeviceMemory {
                total_bytes: 0,
                free_bytes: 0,
            });
            let used = memory.total_bytes.saturating_sub(memory.free_bytes);
            let utilization = self
                .probe
                .lock()
                .ok()
                .and_then(|mut p| p.utilization())
                .unwrap_or(0.0);
            let m = &self.metrics;
            m.memory_total
                .with_label_values(&[self.device.as_str()])
                .set(i64::try_from(memory.total_bytes).unwrap_or(i64::MAX));
            m.memory_used
                .with_label_values(&[self.device.as_str()])
                .set(i64::try_from(used).unwrap_or(i64::MAX));
            m.utilization
                .with_label_values(&[self.device.as_str()])
                .set(utilization);
            samples.push_back(DeviceSample {
                at: Utc::now(),
                memory_used_bytes: used,
                utilization,
            });
            while samples.len() > SAMPLES {
                samples.pop_front();
            }
            if conn.is_none() {
                conn = heartbeat::connect(&self.config.redis.url).await.ok();
            }
            if let Some(c) = conn.as_mut() {
                let decision = self.last_decision.lock().await.clone();
                let hb = WorkerHeartbeat {
                    id: self.id.clone(),
                    host: host.clone(),
                    device: self.device.clone(),
                    engine: self.engine().to_owned(),
                    current_batch: self.current.lock().await.clone(),
                    jobs_done: self.jobs_done.load(Ordering::Relaxed),
                    started_at,
                    last_seen: Utc::now(),
                    memory_total_bytes: memory.total_bytes,
                    memory_used_bytes: used,
                    utilization,
                    samples: samples.iter().cloned().collect(),
                    batch_size: decision.as_ref().map(|d| d.batch_size).unwrap_or(0),
                    optimizer_reasoning: decision.map(|d| d.reasoning),
                };
                match heartbeat::beat(
                    c,
                    &self.config.redis.key_prefix,
                    &hb,
                    self.config.worker.heartbeat_ttl_ms,
                )
                .await
                {
                    Ok(()) => m.heartbeats.inc(),
                    Err(e) => tracing::debug!(error = %e, "heartbeat not written"),
                }
            }
            tokio::time::sleep(every).await;
        }
    }
}

/// What the optimizer needs of a job, from the pipeline options it runs with.
fn shape_of_options(o: &JobOptions) -> JobShape<'static> {
    JobShape {
        engine: "inflate",
        octree_resolution: o.shape.octree_resolution,
        num_chunks: o.shape.num_chunks,
        steps: o.shape.steps,
    }
}

/// What the optimizer needs of a job, read from its queue message.
fn message_shape(d: &Delivery) -> Option<JobShape<'static>> {
    let msg: JobMessage = serde_json::from_slice(&d.data).ok()?;
    Some(JobShape {
        engine: msg.engine.as_str(),
        octree_resolution: msg.octree_resolution,
        num_chunks: msg.num_chunks,
        steps: msg.steps,
    })
}

async fn wait_stop(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Returns a message to its queue (a failed return means the channel is gone, which returns it
/// too).
async fn requeue(d: &Delivery) {
    let _ = d
        .nack(BasicNackOptions {
            requeue: true,
            ..BasicNackOptions::default()
        })
        .await;
}

async fn ack(d: &Delivery) {
    if let Err(e) = d.ack(BasicAckOptions::default()).await {
        // The channel is gone: the broker redelivers, and the finished job is skipped then.
        tracing::warn!(error = %e, "ack failed");
    }
}
pub mod optimizer;
pub mod simulation;
