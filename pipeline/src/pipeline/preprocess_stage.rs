//! `image_preprocessing` for a batch: the images the segmentation model should cut out go
//! through it in one call, then each image is recentred on its own.

use std::time::Instant;

use orfeas_vocab::Stage;

use super::{BatchItem, Pipeline, ProgressObserver, timed};
use crate::error::{PipelineError, PreprocessError};
use crate::image::resize::Raster;
use crate::image::{
    LoadedImage, MaskPlan, PreprocessedImage, mask_plan, preprocess, preprocess_with,
    segmentation_input,
};
use crate::stage::stage_span;
use orfeas_vocab::StageTimings;

impl Pipeline {
    /// `image_preprocessing` of a batch. The images the segmentation model should cut out are
    /// segmented in one batched call first (the call's time counts in each of their stage
    /// timings, as one engine call does for `shape_generation`); then each image is recentred
    /// on its own.
    pub(super) fn preprocess_batch(
        &self,
        items: &[BatchItem<'_>],
        loaded: Vec<Result<LoadedImage, PipelineError>>,
        progress: &mut dyn ProgressObserver,
        timings: &mut [StageTimings],
    ) -> Vec<Result<PreprocessedImage, PipelineError>> {
        let stage = Stage::ImagePreprocessing;
        let mut open: Vec<Option<tracing::Span>> = vec![None; items.len()];
        let mut masks: Vec<Option<Result<Raster, PreprocessError>>> = vec![None; items.len()];
        if let Some(segmenter) = &self.segmenter {
            let wanted: Vec<(usize, Raster)> = loaded
                .iter()
                .enumerate()
                .filter_map(|(i, img)| {
                    let img = img.as_ref().ok()?;
                    let plan = mask_plan(img, items[i].options.preprocess.background);
                    let stopped = items[i].control.should_stop() || progress.is_canceled(i);
                    (plan == MaskPlan::Segment && !stopped).then(|| (i, segmentation_input(img)))
                })
                .collect();
            if !wanted.is_empty() {
                let spans: Vec<tracing::Span> = wanted
                    .iter()
                    .map(|&(i, _)| {
                        progress.stage_started(i, stage);
                        let span = stage_span(stage, &items[i].parent);
                        open[i] = Some(span.clone());
                        tracing::info_span!(
                            parent: &span,
                            "segmentation",
                            model = %segmenter.kind(),
                            batch = wanted.len()
                        )
                    })
                    .collect();
                let inputs: Vec<&Raster> = wanted.iter().map(|(_, r)| r).collect();
                let start = Instant::now();
                let result = segmenter.masks(&inputs);
                drop(spans);
                let elapsed = start.elapsed();
                let mut result = match result {
                    Ok(m) if m.len() == wanted.len() => m.into_iter().map(Ok).collect(),
                    Ok(m) => vec![
                        Err(PreprocessError::Model {
                            detail: format!("{} masks for {} images", m.len(), wanted.len()),
                        });
                        wanted.len()
                    ],
                    Err(e) => vec![
                        Err(PreprocessError::Model {
                            detail: e.to_string()
                        });
                        wanted.len()
                    ],
                };
                for (&(i, _), mask) in wanted.iter().zip(result.drain(..)) {
                    timings[i].record(stage, elapsed);
                    masks[i] = Some(mask);
                }
            }
        }
        loaded
            .into_iter()
            .enumerate()
            .map(|(i, img)| {
                let img = img?;
                let opts = &items[i].options.preprocess;
                match (open[i].take(), masks[i].take()) {
                    (Some(span), Some(mask)) => {
                        let start = Instant::now();
                        let result =
                            span.in_scope(|| Ok(preprocess_with(&img, opts, Some(&mask?))?));
                        timings[i].record(stage, start.elapsed());
                        let total = timings[i].get(stage).unwrap_or_default();
                        progress.stage_finished(i, stage, total, result.is_ok());
                        result
                    }
                    _ => timed(i, stage, &items[i], progress, timings, || {
                        Ok(preprocess(&img, opts)?)
                    }),
                }
            })
            .collect()
    }
}
