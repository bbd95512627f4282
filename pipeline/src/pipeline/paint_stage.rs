//! `texture_synthesis` of the batch's `paint` items: one call to the paint engine for all of them,
//! so its diffusion models run batched over meshes, with a `texture_synthesis` span per item (the
//! engine's `delight`, `multiview_diffusion` and `baking` spans hang under it).

use std::time::Instant;

use orfeas_vocab::{Stage, StageTimings, TextureMode};

use super::{BatchItem, ProgressObserver};
use crate::error::{PipelineError, ShapeError, TextureError};
use crate::image::PreprocessedImage;
use crate::mesh::Mesh;
use crate::shape::GeneratedShape;
use crate::stage::stage_span;
use crate::texture::paint::{PaintError, PaintRequest, Painter};
use crate::texture::raster::Rasterizer;
use crate::texture::{UvReport, colorize};

/// A painted item's mesh and, when it was UV-textured, its atlas report.
pub(super) type Painted = Result<(Mesh, Option<UvReport>), PipelineError>;

/// Paints every item that asked for `paint` and is still alive; `None` for the others.
pub(super) fn paint_items(
    painter: Option<&dyn Painter>,
    rasterizer: &dyn Rasterizer,
    items: &[BatchItem<'_>],
    images: &[Result<PreprocessedImage, PipelineError>],
    shapes: &[Option<Result<GeneratedShape, ShapeError>>],
    progress: &mut dyn ProgressObserver,
    timings: &mut [StageTimings],
) -> Vec<Option<Painted>> {
    let mut out: Vec<Option<Painted>> = vec![None; items.len()];
    let wanted: Vec<usize> = (0..items.len())
        .filter(|&i| {
            items[i].options.texture == TextureMode::Paint
                && images[i].is_ok()
                && matches!(shapes[i], Some(Ok(_)))
        })
        .collect();
    let mut live = Vec::new();
    for &i in &wanted {
        if items[i].control.should_stop() || progress.is_canceled(i) {
            out[i] = Some(Err(PipelineError::Canceled {
                stage: Stage::TextureSynthesis,
            }));
        } else {
            live.push(i);
        }
    }
    if live.is_empty() {
        return out;
    }
    let spans: Vec<tracing::Span> = live
        .iter()
        .map(|&i| stage_span(Stage::TextureSynthesis, &items[i].parent))
        .collect();
    for &i in &live {
        progress.stage_started(i, Stage::TextureSynthesis);
    }
    let start = Instant::now();
    let results: Vec<Result<(Mesh, UvReport), PaintError>> = match painter {
        None => Vec::new(),
        Some(painter) => {
            let requests: Vec<PaintRequest<'_>> = live
                .iter()
                .zip(&spans)
                .filter_map(|(&i, span)| {
                    let (Ok(image), Some(Ok(shape))) = (&images[i], &shapes[i]) else {
                        return None;
                    };
                    Some(PaintRequest {
                        mesh: &shape.mesh,
                        image,
                        texture_size: items[i].options.texture_size,
                        seed: items[i].options.shape.seed,
                        control: items[i].control.clone(),
                        span: span.clone(),
                    })
                })
                .collect();
            painter.paint(rasterizer, &requests)
        }
    };
    let elapsed = start.elapsed();
    for (k, &i) in live.iter().enumerate() {
        let result = match (painter, results.get(k)) {
            (None, _) => Err(TextureError::PaintUnavailable.into()),
            (Some(_), None) => Err(TextureError::Model {
                detail: "the paint engine returned fewer results than requests".into(),
            }
            .into()),
            (Some(_), Some(r)) => finish(r.clone(), &items[i], &images[i], &shapes[i], &spans[k]),
        };
        timings[i].record(Stage::TextureSynthesis, elapsed);
        progress.stage_finished(i, Stage::TextureSynthesis, elapsed, result.is_ok());
        out[i] = Some(result);
    }
    out
}

/// One item's engine result as the pipeline takes it: a mesh the unwrap cannot chart is coloured
/// per vertex instead, as the `uv` mode does.
fn finish(
    result: Result<(Mesh, UvReport), PaintError>,
    item: &BatchItem<'_>,
    image: &Result<PreprocessedImage, PipelineError>,
    shape: &Option<Result<GeneratedShape, ShapeError>>,
    span: &tracing::Span,
) -> Painted {
    match result {
        Ok((mesh, report)) if !item.control.should_stop() => Ok((mesh, Some(report))),
        Ok(_) | Err(PaintError::Stopped) => Err(PipelineError::Canceled {
            stage: Stage::TextureSynthesis,
        }),
        Err(PaintError::OutOfMemory { detail }) => Err(TextureError::OutOfMemory { detail }.into()),
        Err(PaintError::Model { detail }) => Err(TextureError::Model { detail }.into()),
        Err(PaintError::Atlas(e)) => {
            let (Ok(image), Some(Ok(shape))) = (image, shape) else {
                unreachable!("only items with an image and a shape are painted")
            };
            span.in_scope(|| {
                tracing::warn!(error = %e, "UV unwrapping failed; colouring the mesh per vertex instead")
            });
            let mut mesh = shape.mesh.clone();
            colorize(&mut mesh, image, &shape.frame);
            Ok((mesh, None))
        }
    }
}
