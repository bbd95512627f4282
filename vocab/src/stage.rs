//! The five pipeline stages, the sub-steps of `shape_generation`, and per-stage timings.

use std::time::Duration;

use crate::names::named_enum;

named_enum! {
    /// One of the five pipeline stages. The name is the one used in spans, metric labels,
    /// ledger rows and API fields.
    pub enum Stage: "stage" {
        ImageLoading = "image_loading",
        ImagePreprocessing = "image_preprocessing",
        ShapeGeneration = "shape_generation",
        TextureSynthesis = "texture_synthesis",
        MeshExport = "mesh_export",
    }
}

#[cfg(feature = "sqlx")]
crate::names::sql_name!(pg_enum Stage, "pipeline_stage");

impl Stage {
    /// Progress (percent) a job shows while this stage runs: the stages' usual shares of a
    /// job's time, so the figure moves roughly evenly.
    pub const fn progress_percent(self) -> i16 {
        match self {
            Stage::ImageLoading => 5,
            Stage::ImagePreprocessing => 15,
            Stage::ShapeGeneration => 30,
            Stage::TextureSynthesis => 80,
            Stage::MeshExport => 90,
        }
    }
}

named_enum! {
    /// The sub-steps of `shape_generation` and of the `paint` engine's `texture_synthesis`, each a
    /// child span of the job's stage span and a progress figure.
    pub enum Step: "pipeline step" {
        /// Image features for the denoiser (DINOv2 in `hunyuan3d`).
        Conditioning = "conditioning",
        /// The sampler's loop over the denoiser.
        Denoising = "denoising",
        /// Occupancy or SDF values on the grid.
        VolumeDecoding = "volume_decoding",
        /// Marching cubes.
        SurfaceExtraction = "surface_extraction",
        /// Lighting and shadows removed from the reference image (a denoising loop).
        Delight = "delight",
        /// The six views generated from the delit image (a denoising loop).
        MultiviewDiffusion = "multiview_diffusion",
        /// The views projected into the UV texture, and the gaps inpainted.
        Baking = "baking",
    }
}

impl Step {
    /// The stage this step belongs to.
    pub const fn stage(self) -> Stage {
        match self {
            Step::Conditioning
            | Step::Denoising
            | Step::VolumeDecoding
            | Step::SurfaceExtraction => Stage::ShapeGeneration,
            Step::Delight | Step::MultiviewDiffusion | Step::Baking => Stage::TextureSynthesis,
        }
    }
}

/// Wall time spent in each stage by one item. A stage that did not run has no entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageTimings {
    durations: [Option<Duration>; Stage::ALL.len()],
}

impl StageTimings {
    pub fn record(&mut self, stage: Stage, duration: Duration) {
        let slot = &mut self.durations[stage.index()];
        *slot = Some(slot.unwrap_or_default() + duration);
    }

    pub fn get(&self, stage: Stage) -> Option<Duration> {
        self.durations[stage.index()]
    }

    /// Stages that ran, in execution order.
    pub fn iter(&self) -> impl Iterator<Item = (Stage, Duration)> + '_ {
        Stage::ALL
            .into_iter()
            .filter_map(|stage| self.get(stage).map(|d| (stage, d)))
    }

    pub fn total(&self) -> Duration {
        self.iter().map(|(_, d)| d).sum()
    }

    /// The stage that took longest and its share of the total (0..=1).
    pub fn slowest(&self) -> Option<(Stage, f64)> {
        let total = self.total().as_secs_f64();
        self.iter().max_by_key(|(_, d)| *d).map(|(stage, d)| {
            (
                stage,
                if total > 0.0 {
                    d.as_secs_f64() / total
                } else {
                    0.0
                },
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_exact_and_ordered() {
        assert_eq!(
            Stage::NAMES,
            [
                "image_loading",
                "image_preprocessing",
                "shape_generation",
                "texture_synthesis",
                "mesh_export"
            ]
        );
        assert_eq!(
            Step::NAMES,
            [
                "conditioning",
                "denoising",
                "volume_decoding",
                "surface_extraction",
                "delight",
                "multiview_diffusion",
                "baking"
            ]
        );
        assert_eq!(Step::Baking.stage(), Stage::TextureSynthesis);
        assert_eq!(Step::Denoising.stage(), Stage::ShapeGeneration);
        assert!("shape".parse::<Stage>().is_err());
        let progress: Vec<i16> = Stage::ALL.iter().map(|s| s.progress_percent()).collect();
        assert!(progress.windows(2).all(|w| w[0] < w[1]), "{progress:?}");
    }

    #[test]
    fn slowest_stage_share() {
        let mut t = StageTimings::default();
        t.record(Stage::ImageLoading, Duration::from_millis(100));
        t.record(Stage::ShapeGeneration, Duration::from_millis(300));
        let (stage, share) = t.slowest().expect("two stages recorded");
        assert_eq!(stage, Stage::ShapeGeneration);
        assert!((share - 0.75).abs() < 1e-9);
        assert_eq!(t.get(Stage::MeshExport), None);
        assert_eq!(t.total(), Duration::from_millis(400));
    }
}
