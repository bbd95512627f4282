//! Start-up: the handles a worker holds for its life — the database, the object store, the
//! pipeline with its engine's model loaded once, the device probe, the learned memory model and
//! the metrics — built from the typed configuration. Anything missing is a start-up error, so a
//! misconfigured worker refuses to start instead of failing jobs.

use std::sync::{Arc, Mutex};

use object_store::ObjectStore;
use orfeas_pipeline::Pipeline;
use orfeas_pipeline::image::ImageLimits;
use orfeas_pipeline::segmentation::{Segmenter, load_segmenter};
use orfeas_pipeline::shape::{EngineLoadError, EngineSpec, load_engine};
use orfeas_pipeline::texture::paint::{Painter, PainterSpec, load_painter};
use orfeas_pipeline::texture::raster::rasterizer_for;
use orfeas_shared::db::Db;
use orfeas_shared::metrics::WorkerMetrics;
use orfeas_shared::queue::Topology;
use orfeas_shared::{Config, StartError, storage};
use orfeas_vocab::{Engine, JobWeights};
use tokio::sync::watch;

use crate::heartbeat::WorkerStatus;
use crate::optimizer::{DeviceProbe, Learned, MemoryModel, OptimizerConfig};
use crate::provenance;

/// Everything the worker's tasks share; built once per process.
#[derive(Debug)]
pub struct Worker {
    pub(crate) config: Config,
    pub(crate) id: String,
    pub(crate) db: Db,
    pub(crate) store: Arc<dyn ObjectStore>,
    /// The pipeline owns the engine and its resident model.
    pub(crate) pipeline: Arc<Pipeline>,
    pub(crate) topology: Topology,
    pub(crate) probe: DeviceProbe,
    pub(crate) optimizer: OptimizerConfig,
    /// Only the consume loop uses it; the lock is never held across an await.
    pub(crate) memory: Mutex<MemoryModel>,
    pub(crate) metrics: Arc<WorkerMetrics>,
    /// The state the heartbeat reports.
    pub(crate) status: watch::Sender<WorkerStatus>,
    /// The weights loaded at start, recorded with every job this worker runs.
    pub(crate) weights: JobWeights,
}

/// The engine `worker.engine` names, with its model loaded (once per process).
pub fn build_engine(
    config: &Config,
) -> Result<Box<dyn orfeas_pipeline::shape::ShapeEngine>, StartError> {
    let w = &config.worker;
    let spec = EngineSpec {
        engine: w.engine,
        weights: w.weights.clone(),
        device: w.device,
        dtype: w.dtype,
        volume_decoding: w.volume_decoding,
    };
    let started = std::time::Instant::now();
    let engine = load_engine(&spec).map_err(|e| match e {
        EngineLoadError::MissingWeights(engine) => StartError::Model(format!(
            "worker.engine = {engine} needs worker.weights (a checkpoint folder)"
        )),
        other => StartError::Model(other.to_string()),
    })?;
    if w.engine.needs_weights() {
        tracing::info!(engine = %w.engine, weights = ?w.weights, device = %w.device, dtype = %w.dtype,
            load_s = started.elapsed().as_secs_f64(), "model loaded");
    }
    Ok(engine)
}

/// The segmentation model `worker.segmentation_weights` names, loaded once on the worker's
/// device; a file that does not load is a start-up error, never a per-job one.
pub fn build_segmenter(config: &Config) -> Result<Option<Box<dyn Segmenter>>, StartError> {
    let w = &config.worker;
    let Some(path) = &w.segmentation_weights else {
        return Ok(None);
    };
    let started = std::time::Instant::now();
    let segmenter = load_segmenter(path, w.device).map_err(|e| {
        StartError::Model(format!(
            "worker.segmentation_weights = {}: {e}",
            path.display()
        ))
    })?;
    tracing::info!(model = %segmenter.kind(), weights = %path.display(), device = %w.device,
        load_s = started.elapsed().as_secs_f64(), "segmentation model loaded");
    Ok(Some(segmenter))
}

/// The paint engine `worker.paint_weights` and `worker.delight_weights` name, loaded once on the
/// worker's device; folders that do not load are a start-up error, never a per-job one.
pub fn build_painter(config: &Config) -> Result<Option<Box<dyn Painter>>, StartError> {
    let w = &config.worker;
    let (Some(paint), Some(delight)) = (&w.paint_weights, &w.delight_weights) else {
        return Ok(None);
    };
    let started = std::time::Instant::now();
    let spec = PainterSpec {
        paint: paint.clone(),
        delight: delight.clone(),
        device: w.device,
        dtype: w.dtype,
        view_size: w.paint_view_size,
        render_size: w.paint_render_size,
    };
    let painter = load_painter(&spec).map_err(|e| {
        StartError::Model(format!(
            "worker.paint_weights = {} / worker.delight_weights = {}: {e}",
            paint.display(),
            delight.display()
        ))
    })?;
    tracing::info!(paint = %paint.display(), delight = %delight.display(), device = %w.device,
        load_s = started.elapsed().as_secs_f64(), "paint models loaded");
    Ok(Some(painter))
}

impl Worker {
    pub async fn new(config: Config) -> Result<Arc<Worker>, StartError> {
        let db = Db::connect_lazy(&config.database.url, config.database.max_connections)?;
        db.check_schema().await?;
        let store = storage::build(&config.storage)?;
        let w = &config.worker;
        let probe = DeviceProbe::open(w.device).map_err(StartError::Device)?;
        let mut pipeline = Pipeline::new(build_engine(&config)?, ImageLimits::default());
        if let Some(segmenter) = build_segmenter(&config)? {
            pipeline = pipeline.with_segmenter(segmenter);
        }
        if let Some(painter) = build_painter(&config)? {
            pipeline = pipeline.with_painter(painter);
        }
        pipeline = pipeline.with_rasterizer(rasterizer_for(w.device));
        let pipeline = Arc::new(pipeline);
        if w.device.is_gpu() && w.engine == Engine::Inflate {
            tracing::warn!(
                device = %w.device,
                "the inflate engine runs on the CPU; batch sizing and metrics read {}'s memory",
                w.device
            );
        }
        let learned = db.memory_model(w.device).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "memory model not loaded; starting from the documented estimates");
            Vec::new()
        });
        let model = MemoryModel::from_entries(learned.into_iter().map(|f| {
            (
                (
                    f.workload,
                    u32::try_from(f.resolution_bucket).unwrap_or(0),
                    f.device,
                ),
                Learned {
                    bytes_per_job: u64::try_from(f.bytes_per_job).unwrap_or(1),
                    samples: u64::try_from(f.samples).unwrap_or(0),
                },
            )
        }));
        let model = model.with_paint_view_size(w.paint_view_size);
        let optimizer = OptimizerConfig {
            target_utilization: w.target_utilization,
            max_batch: w.batch_size,
            max_wait: w.batch_wait,
        };
        let weights = provenance::job_weights(&config)?;
        let label = |id: &Option<orfeas_vocab::WeightsIdentity>| {
            id.as_ref()
                .map_or_else(|| "none".to_string(), |i| i.label())
        };
        let metrics = WorkerMetrics::new();
        metrics
            .info
            .with_label_values(&[
                w.engine.as_str(),
                w.device.to_string().as_str(),
                label(&weights.engine).as_str(),
                label(&weights.segmentation).as_str(),
            ])
            .set(1);
        metrics.optimizer_target.set(w.target_utilization);
        Ok(Arc::new(Worker {
            topology: Topology::for_engine(&config.amqp.queue, w.engine)
                .with_retry_levels(w.retry_base, w.retry_max),
            id: config.worker_id(),
            optimizer,
            memory: Mutex::new(model),
            metrics: Arc::new(metrics),
            status: watch::Sender::new(WorkerStatus::default()),
            weights,
            probe,
            db,
            store,
            pipeline,
            config,
        }))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// This worker's Prometheus metrics.
    pub fn metrics(&self) -> Arc<WorkerMetrics> {
        self.metrics.clone()
    }

    /// The engine this worker runs.
    pub fn engine(&self) -> Engine {
        self.pipeline.engine().engine()
    }
}
