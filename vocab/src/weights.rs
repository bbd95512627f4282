//! Which weights made a job's result. The weights decide the shape (and the mask), so every job
//! records them (ledger, job view) and the worker's `orfeas_worker_info` metric carries them as
//! labels: an operator rolling new weights compares the fleet's figures before and after.

use serde::{Deserialize, Serialize};

/// One set of model weights: what an operator calls it and what it contains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WeightsIdentity {
    /// The checkpoint folder's or the weights file's name (`hunyuan3d-dit-v2-0-turbo`,
    /// `u2net.onnx`).
    pub name: String,
    /// SHA-256 (hex) of the content: for a file, of its bytes (what `sha256sum FILE` prints); for
    /// a folder, of the `sha256sum` listing of its files sorted by name (what
    /// `cd FOLDER && sha256sum * | sha256sum` prints), so either can be checked by hand.
    pub sha256: String,
}

impl WeightsIdentity {
    /// `name@` and the digest's first 12 hex digits: short enough for a metric label and a
    /// log line, long enough to tell two checkpoints apart.
    pub fn label(&self) -> String {
        let short = self.sha256.get(..12).unwrap_or(&self.sha256);
        format!("{}@{short}", self.name)
    }
}

/// The weights a job ran with; none for the weights-free engine and methods.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobWeights {
    /// The shape engine's checkpoint (`worker.weights`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<WeightsIdentity>,
    /// The segmentation model (`worker.segmentation_weights`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segmentation: Option<WeightsIdentity>,
}

impl JobWeights {
    pub fn is_empty(&self) -> bool {
        self.engine.is_none() && self.segmentation.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_is_name_and_short_digest_and_empty_weights_serialize_to_nothing() {
        let w = WeightsIdentity {
            name: "u2net.onnx".into(),
            sha256: "8d10d2f3c9c0bb5f4ff6e4b7e3f5b4a8c0a5d98cf1b2f0a1e3d4c5b6a7980112".into(),
        };
        assert_eq!(w.label(), "u2net.onnx@8d10d2f3c9c0");
        assert_eq!(
            serde_json::to_value(JobWeights::default()).expect("json"),
            serde_json::json!({})
        );
        let j = JobWeights {
            engine: None,
            segmentation: Some(w.clone()),
        };
        let back: JobWeights =
            serde_json::from_value(serde_json::to_value(&j).expect("json")).expect("parse");
        assert_eq!(back, j);
    }
}
