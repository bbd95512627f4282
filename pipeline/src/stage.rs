//! Spans named exactly after the vocabulary's stages and their sub-steps (tracing
//! needs the names as literals; the tests check they match [`Stage::as_str`] and
//! [`Step::as_str`]).

use orfeas_vocab::{Stage, Step};
use tracing::field::Empty;

/// The span of `stage` for one item, child of `parent` (`shape_generation` carries the fields
/// `engine` and `batch_size`).
pub fn stage_span(stage: Stage, parent: &tracing::Span) -> tracing::Span {
    match stage {
        Stage::ImageLoading => tracing::info_span!(parent: parent, "image_loading"),
        Stage::ImagePreprocessing => tracing::info_span!(parent: parent, "image_preprocessing"),
        Stage::ShapeGeneration => tracing::info_span!(
            parent: parent,
            "shape_generation",
            engine = Empty,
            batch_size = Empty
        ),
        Stage::TextureSynthesis => tracing::info_span!(parent: parent, "texture_synthesis"),
        Stage::MeshExport => tracing::info_span!(parent: parent, "mesh_export"),
    }
}

/// The span of a stage's sub-step, child of the item's stage span. Fields, filled in by the
/// engine where they apply: `batch` (requests sharing the step), `steps` (denoising loops) and
/// `resolution` (volume decoding).
pub fn step_span(step: Step, parent: &tracing::Span) -> tracing::Span {
    match step {
        Step::Conditioning => {
            tracing::info_span!(parent: parent, "conditioning", batch = Empty)
        }
        Step::Denoising => {
            tracing::info_span!(parent: parent, "denoising", steps = Empty, batch = Empty)
        }
        Step::VolumeDecoding => {
            tracing::info_span!(parent: parent, "volume_decoding", resolution = Empty, batch = Empty)
        }
        Step::SurfaceExtraction => tracing::info_span!(parent: parent, "surface_extraction"),
        Step::Delight => {
            tracing::info_span!(parent: parent, "delight", steps = Empty, batch = Empty)
        }
        Step::MultiviewDiffusion => {
            tracing::info_span!(parent: parent, "multiview_diffusion", steps = Empty, batch = Empty)
        }
        Step::Baking => tracing::info_span!(parent: parent, "baking"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_names_are_the_vocabulary_names() {
        let subscriber = tracing_subscriber::registry();
        tracing::subscriber::with_default(subscriber, || {
            let root = tracing::info_span!("root");
            for stage in Stage::ALL {
                let span = stage_span(stage, &root);
                assert_eq!(span.metadata().map(|m| m.name()), Some(stage.as_str()));
            }
            for step in Step::ALL {
                let span = step_span(step, &root);
                assert_eq!(span.metadata().map(|m| m.name()), Some(step.as_str()));
            }
        });
    }
}
