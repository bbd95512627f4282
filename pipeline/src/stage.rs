//! The pipeline's stages and their timings.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// One of the five pipeline stages. The string form is the name used in spans, metrics,
/// database rows and API fields.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    ImageLoading,
    ImagePreprocessing,
    ShapeGeneration,
    TextureSynthesis,
    MeshExport,
}

impl Stage {
    /// All stages in execution order.
    pub const ALL: [Stage; 5] = [
        Stage::ImageLoading,
        Stage::ImagePreprocessing,
        Stage::ShapeGeneration,
        Stage::TextureSynthesis,
        Stage::MeshExport,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Stage::ImageLoading => "image_loading",
            Stage::ImagePreprocessing => "image_preprocessing",
            Stage::ShapeGeneration => "shape_generation",
            Stage::TextureSynthesis => "texture_synthesis",
            Stage::MeshExport => "mesh_export",
        }
    }

    /// Position in [`Stage::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// A tracing span named exactly after the stage, child of the current span.
    pub fn span(self) -> tracing::Span {
        self.span_in(&tracing::Span::current())
    }

    /// A tracing span named exactly after the stage, child of `parent` (fields `engine` and
    /// `batch_size` are filled in by `shape_generation`).
    pub fn span_in(self, parent: &tracing::Span) -> tracing::Span {
        match self {
            Stage::ImageLoading => tracing::info_span!(parent: parent, "image_loading"),
            Stage::ImagePreprocessing => tracing::info_span!(parent: parent, "image_preprocessing"),
            Stage::ShapeGeneration => tracing::info_span!(
                parent: parent,
                "shape_generation",
                engine = tracing::field::Empty,
                batch_size = tracing::field::Empty
            ),
            Stage::TextureSynthesis => tracing::info_span!(parent: parent, "texture_synthesis"),
            Stage::MeshExport => tracing::info_span!(parent: parent, "mesh_export"),
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error returned when a string names no stage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown stage `{0}`")]
pub struct UnknownStage(pub String);

impl FromStr for Stage {
    type Err = UnknownStage;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Stage::ALL
            .into_iter()
            .find(|stage| stage.as_str() == s)
            .ok_or_else(|| UnknownStage(s.to_owned()))
    }
}

/// Wall time spent in each stage by one item. A stage that did not run has no entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageTimings {
    durations: [Option<Duration>; 5],
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
    fn names_round_trip_and_are_exact() {
        let names: Vec<&str> = Stage::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            [
                "image_loading",
                "image_preprocessing",
                "shape_generation",
                "texture_synthesis",
                "mesh_export"
            ]
        );
        for stage in Stage::ALL {
            assert_eq!(stage.as_str().parse::<Stage>(), Ok(stage));
        }
        assert!("shape".parse::<Stage>().is_err());
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
    }
}
