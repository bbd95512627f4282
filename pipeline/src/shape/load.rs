//! Building the engine a configuration names, with its model loaded: the one place the CLI and
//! the worker turn an engine choice into a [`ShapeEngine`].

use std::path::PathBuf;

use orfeas_vocab::{Device, Dtype, Engine, VolumeDecoding};

use super::ShapeEngine;
use super::hunyuan3d::{self, Hunyuan3dSettings, ModelError};
use super::inflate::InflateEngine;

/// Which engine to build and, for engines with a model, where its weights are and how to run
/// it.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSpec {
    pub engine: Engine,
    /// The checkpoint folder (`config.yaml` + `model.fp16.safetensors`) of engines with weights.
    pub weights: Option<PathBuf>,
    pub device: Device,
    pub dtype: Dtype,
    pub volume_decoding: VolumeDecoding,
}

impl EngineSpec {
    /// An engine without weights on the CPU, in f32.
    pub fn new(engine: Engine) -> Self {
        EngineSpec {
            engine,
            weights: None,
            device: Device::Cpu,
            dtype: Dtype::F32,
            volume_decoding: VolumeDecoding::Hierarchical,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineLoadError {
    /// The engine runs a model and no checkpoint folder was given.
    #[error("the {0} engine needs a checkpoint folder")]
    MissingWeights(Engine),
    #[error("{path}: {source}")]
    Model {
        path: PathBuf,
        #[source]
        source: ModelError,
    },
}

/// Builds the engine; a model is loaded (and checked strictly) here, before any job runs.
pub fn load_engine(spec: &EngineSpec) -> Result<Box<dyn ShapeEngine>, EngineLoadError> {
    match spec.engine {
        Engine::Inflate => Ok(Box::new(InflateEngine)),
        Engine::Hunyuan3d => {
            let dir = spec
                .weights
                .as_ref()
                .ok_or(EngineLoadError::MissingWeights(spec.engine))?;
            let settings = Hunyuan3dSettings::new(spec.dtype, spec.volume_decoding);
            hunyuan3d::load_engine(dir, spec.device, settings).map_err(|source| {
                EngineLoadError::Model {
                    path: dir.clone(),
                    source,
                }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_without_weights_load_and_model_engines_need_them() {
        let inflate = load_engine(&EngineSpec::new(Engine::Inflate)).expect("inflate");
        assert_eq!(inflate.engine(), Engine::Inflate);
        let err = load_engine(&EngineSpec::new(Engine::Hunyuan3d)).expect_err("no weights");
        assert!(matches!(
            err,
            EngineLoadError::MissingWeights(Engine::Hunyuan3d)
        ));
        let missing = EngineSpec {
            weights: Some(PathBuf::from("/nonexistent/checkpoint")),
            ..EngineSpec::new(Engine::Hunyuan3d)
        };
        let err = load_engine(&missing).expect_err("no folder");
        assert!(err.to_string().contains("/nonexistent/checkpoint"), "{err}");
    }
}
