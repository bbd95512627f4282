//! The five stages driven for a batch of images.
//!
//! Per-image stages (`image_loading`, `image_preprocessing`, `texture_synthesis`, `mesh_export`)
//! run image by image; `shape_generation` hands every image that survived preprocessing to the
//! engine as one batch and then cleans each mesh (degenerate faces, floaters, face budget) before
//! it is coloured. Every stage runs inside a span named after it and is timed into the item's
//! [`StageTimings`]; an item that fails stops at that stage with a typed [`PipelineError`] while
//! the rest of the batch goes on.

use std::time::{Duration, Instant};

use orfeas_vocab::{Artifact, JobSpec, MeshFormat, Stage, StageTimings, TextureMode};

use crate::control::Control;
use crate::error::{PipelineError, ShapeError};
use crate::image::{
    ImageLimits, LoadedImage, PreprocessOptions, PreprocessedImage, Segmentation, load_image,
};
use crate::segmentation::Segmenter;
use crate::shape::{
    GeneratedShape, PostprocessOptions, ShapeEngine, ShapeOptions, ShapeRequest, postprocess,
};
use crate::stage::stage_span;
use crate::texture::UvReport;
use crate::texture::paint::Painter;
use crate::texture::raster::{HostRasterizer, Rasterizer};
use finish_stage::finish_item;
use paint_stage::paint_items;

mod finish_stage;
mod paint_stage;
mod preprocess_stage;

/// Everything a job may choose.
#[derive(Debug, Clone, PartialEq)]
pub struct JobOptions {
    pub preprocess: PreprocessOptions,
    pub shape: ShapeOptions,
    pub postprocess: PostprocessOptions,
    /// How to colour the mesh from the image.
    pub texture: TextureMode,
    /// Side of a `uv` or `paint` texture in texels.
    pub texture_size: usize,
    pub formats: Vec<MeshFormat>,
    /// Also export the preprocessed cut-out ([`Artifact::Cutout`]).
    pub cutout: bool,
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions::from(&JobSpec::default())
    }
}

/// The one mapping from a validated job specification (API upload or CLI arguments) to what
/// the stages need.
impl From<&JobSpec> for JobOptions {
    fn from(spec: &JobSpec) -> Self {
        JobOptions {
            preprocess: PreprocessOptions {
                background: spec.remove_background,
                ..PreprocessOptions::default()
            },
            shape: ShapeOptions {
                octree_resolution: spec.octree_resolution,
                seed: spec.seed,
                steps: spec.steps,
                guidance_scale: spec.guidance_scale,
                num_chunks: spec.num_chunks,
                inflation: spec.inflation,
            },
            postprocess: PostprocessOptions {
                face_count: spec
                    .face_count
                    .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
                ..PostprocessOptions::default()
            },
            texture: spec.texture,
            texture_size: spec.texture_size as usize,
            formats: spec.formats.clone(),
            cutout: spec.cutout,
        }
    }
}

/// One input of a batch.
#[derive(Debug, Clone)]
pub struct BatchItem<'a> {
    pub bytes: &'a [u8],
    pub options: &'a JobOptions,
    /// The span this item's stage spans hang under (the worker's job span, so every job has its
    /// own trace); by default the span current when the item was made.
    pub parent: tracing::Span,
    /// Its deadline and stop flag, consulted at stage boundaries and inside the engine.
    pub control: Control,
    /// What its files are called once downloaded (the job id, an image's stem): a textured OBJ
    /// names its material and texture files by it.
    pub name: String,
}

impl<'a> BatchItem<'a> {
    pub fn new(bytes: &'a [u8], options: &'a JobOptions) -> Self {
        BatchItem {
            bytes,
            options,
            parent: tracing::Span::current(),
            control: Control::none(),
            name: "mesh".into(),
        }
    }

    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    pub fn with_parent(mut self, parent: tracing::Span) -> Self {
        self.parent = parent;
        self
    }

    pub fn with_control(mut self, control: Control) -> Self {
        self.control = control;
        self
    }
}

/// Facts about the produced mesh.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeshStats {
    pub vertices: usize,
    pub faces: usize,
    pub volume: f64,
    pub area: f64,
}

/// A finished item: the encoded meshes in the requested formats, then the other artifacts.
#[derive(Debug, Clone)]
pub struct ItemOutput {
    pub files: Vec<(Artifact, Vec<u8>)>,
    pub stats: MeshStats,
    /// The atlas and bake of a `uv` texture.
    pub texture: Option<UvReport>,
}

#[derive(Debug, Clone)]
pub struct ItemReport {
    pub timings: StageTimings,
    /// How the object's mask was found, once preprocessing succeeded.
    pub segmentation: Option<Segmentation>,
    /// Number of images the engine processed together with this one.
    pub batch_size: usize,
    pub result: Result<ItemOutput, PipelineError>,
}

/// Receives stage start/finish events (progress bars, live progress, metrics) and may cancel
/// items: an item whose [`ProgressObserver::is_canceled`] is true stops at the next stage
/// boundary with [`PipelineError::Canceled`].
pub trait ProgressObserver {
    fn stage_started(&mut self, item: usize, stage: Stage);
    fn stage_finished(&mut self, item: usize, stage: Stage, elapsed: Duration, ok: bool);
    fn is_canceled(&mut self, _item: usize) -> bool {
        false
    }
}

/// Observer that ignores every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl ProgressObserver for NoProgress {
    fn stage_started(&mut self, _: usize, _: Stage) {}
    fn stage_finished(&mut self, _: usize, _: Stage, _: Duration, _: bool) {}
}

/// The pipeline with its engine (and segmentation model, when one is configured); built once,
/// run for many batches.
pub struct Pipeline {
    engine: Box<dyn ShapeEngine>,
    segmenter: Option<Box<dyn Segmenter>>,
    /// Scan conversion for texturing: the host's cores unless the worker's device has its own.
    rasterizer: Box<dyn Rasterizer>,
    /// The `paint` texture engine, where its models are configured.
    painter: Option<Box<dyn Painter>>,
    limits: ImageLimits,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("engine", &self.engine)
            .field("segmenter", &self.segmenter.as_ref().map(|s| s.kind()))
            .field("rasterizer", &self.rasterizer.name())
            .field("painter", &self.painter.is_some())
            .field("limits", &self.limits)
            .finish()
    }
}

/// Runs one stage of one item inside its span, timing it and telling the observer.
fn timed<T>(
    idx: usize,
    stage: Stage,
    item: &BatchItem<'_>,
    progress: &mut dyn ProgressObserver,
    timings: &mut [StageTimings],
    f: impl FnOnce() -> Result<T, PipelineError>,
) -> Result<T, PipelineError> {
    let parent = &item.parent;
    if item.control.should_stop() || progress.is_canceled(idx) {
        return Err(PipelineError::Canceled { stage });
    }
    progress.stage_started(idx, stage);
    let span = stage_span(stage, parent);
    let start = Instant::now();
    let result = span.in_scope(f);
    let elapsed = start.elapsed();
    timings[idx].record(stage, elapsed);
    progress.stage_finished(idx, stage, elapsed, result.is_ok());
    result
}

impl Pipeline {
    pub fn new(engine: Box<dyn ShapeEngine>, limits: ImageLimits) -> Self {
        Pipeline {
            engine,
            segmenter: None,
            rasterizer: Box::new(HostRasterizer),
            painter: None,
            limits,
        }
    }

    /// Paints `texture: paint` jobs with this engine (without one they fail with
    /// `engine_unavailable`).
    pub fn with_painter(mut self, painter: Box<dyn Painter>) -> Self {
        self.painter = Some(painter);
        self
    }

    pub fn painter(&self) -> Option<&dyn Painter> {
        self.painter.as_deref()
    }

    /// Segments images without transparency with this model instead of the weights-free
    /// methods.
    pub fn with_segmenter(mut self, segmenter: Box<dyn Segmenter>) -> Self {
        self.segmenter = Some(segmenter);
        self
    }

    /// Rasterizes texture renders and bakes with this (see [`rasterizer_for`]).
    ///
    /// [`rasterizer_for`]: crate::texture::raster::rasterizer_for
    pub fn with_rasterizer(mut self, rasterizer: Box<dyn Rasterizer>) -> Self {
        self.rasterizer = rasterizer;
        self
    }

    pub fn segmenter(&self) -> Option<&dyn Segmenter> {
        self.segmenter.as_deref()
    }

    pub fn engine(&self) -> &dyn ShapeEngine {
        self.engine.as_ref()
    }

    pub fn limits(&self) -> &ImageLimits {
        &self.limits
    }

    /// Runs every item through the five stages; one report per item, in order.
    pub fn run_batch(
        &self,
        items: &[BatchItem<'_>],
        progress: &mut dyn ProgressObserver,
    ) -> Vec<ItemReport> {
        let mut timings = vec![StageTimings::default(); items.len()];

        let loaded: Vec<Result<LoadedImage, PipelineError>> = items
            .iter()
            .enumerate()
            .map(|(idx, item)| {
                timed(
                    idx,
                    Stage::ImageLoading,
                    item,
                    progress,
                    &mut timings,
                    || Ok(load_image(item.bytes, &self.limits)?),
                )
            })
            .collect();
        let prepared = self.preprocess_batch(items, loaded, progress, &mut timings);
        let segmentation: Vec<Option<Segmentation>> = prepared
            .iter()
            .map(|p| p.as_ref().ok().map(|p| p.segmentation))
            .collect();

        // shape_generation: one engine call for every image still alive and wanted.
        let prepared: Vec<Result<PreprocessedImage, PipelineError>> = prepared
            .into_iter()
            .enumerate()
            .map(|(i, p)| match p {
                Ok(_) if items[i].control.should_stop() || progress.is_canceled(i) => {
                    Err(PipelineError::Canceled {
                        stage: Stage::ShapeGeneration,
                    })
                }
                other => other,
            })
            .collect();
        let live: Vec<usize> = (0..items.len()).filter(|&i| prepared[i].is_ok()).collect();
        let batch_size = live.len();
        let mut shapes: Vec<Option<Result<GeneratedShape, ShapeError>>> = vec![None; items.len()];
        if !live.is_empty() {
            // One engine call for the batch, but a `shape_generation` span per job (under that
            // job's parent), so each job's trace shows the stage and the engine's sub-steps.
            let engine = self.engine.engine();
            let spans: Vec<tracing::Span> = live
                .iter()
                .map(|&i| stage_span(Stage::ShapeGeneration, &items[i].parent))
                .collect();
            for s in &spans {
                s.record("engine", engine.as_str());
                s.record("batch_size", batch_size);
            }
            let requests: Vec<ShapeRequest<'_>> = live
                .iter()
                .zip(&spans)
                .filter_map(|(&i, span)| {
                    prepared[i].as_ref().ok().map(|image| ShapeRequest {
                        image,
                        options: &items[i].options.shape,
                        span: span.clone(),
                        control: items[i].control.clone(),
                    })
                })
                .collect();
            for &i in &live {
                progress.stage_started(i, Stage::ShapeGeneration);
            }
            let start = Instant::now();
            let results = {
                let mut raw = self.engine.generate(&requests);
                raw.resize_with(requests.len(), || {
                    Err(ShapeError::Engine {
                        engine: self.engine.engine().as_str().into(),
                        detail: "the engine returned fewer results than requests".into(),
                    })
                });
                raw.into_iter()
                    .zip(&live)
                    .map(|(r, &i)| {
                        let shape = r?;
                        let mesh = postprocess(shape.mesh, &items[i].options.postprocess);
                        if mesh.is_empty() {
                            return Err(ShapeError::EmptySurface {
                                reason: "nothing remained after mesh clean-up".into(),
                            });
                        }
                        Ok(GeneratedShape { mesh, ..shape })
                    })
                    .collect::<Vec<_>>()
            };
            drop(spans);
            let elapsed = start.elapsed();
            for (result, &i) in results.into_iter().zip(&live) {
                timings[i].record(Stage::ShapeGeneration, elapsed);
                progress.stage_finished(i, Stage::ShapeGeneration, elapsed, result.is_ok());
                shapes[i] = Some(result);
            }
        }

        // texture_synthesis of the `paint` items, batched; then the other items' texturing and
        // every item's mesh_export, per image.
        let painted = paint_items(
            self.painter.as_deref(),
            self.rasterizer.as_ref(),
            items,
            &prepared,
            &shapes,
            progress,
            &mut timings,
        );
        prepared
            .into_iter()
            .zip(shapes)
            .zip(painted)
            .enumerate()
            .map(|(idx, ((image, shape), painted))| {
                let result = image.and_then(|image| {
                    let shape = shape
                        .unwrap_or_else(|| {
                            Err(ShapeError::Engine {
                                engine: self.engine.engine().as_str().into(),
                                detail: "no result for this image".into(),
                            })
                        })
                        .map_err(|e| match e {
                            // Stopped inside the engine: canceled in this stage, like at a boundary.
                            ShapeError::Stopped => PipelineError::Canceled {
                                stage: Stage::ShapeGeneration,
                            },
                            other => PipelineError::from(other),
                        })?;
                    finish_item(
                        self.rasterizer.as_ref(),
                        idx,
                        &items[idx],
                        &image,
                        shape,
                        painted,
                        progress,
                        &mut timings,
                    )
                });
                ItemReport {
                    timings: timings[idx].clone(),
                    segmentation: segmentation[idx],
                    batch_size,
                    result,
                }
            })
            .collect()
    }
}
