//! Opening a diffusers model folder (`config.json` beside `diffusion_pytorch_model.safetensors`,
//! its `.fp16` variant, or the pickled `.bin`) for the strict loader.

use std::path::{Path, PathBuf};

use crate::segmentation::u2net::pth::read_zip;
use crate::shape::hunyuan3d::ModelError;
use crate::shape::hunyuan3d::weights::Checkpoint;

/// Why a model folder could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("{folder}: no diffusion_pytorch_model.safetensors, .fp16.safetensors or .bin")]
    NoWeights { folder: PathBuf },
    #[error("{path}: {message}")]
    Pickle { path: PathBuf, message: String },
    #[error(transparent)]
    Weights(#[from] ModelError),
}

/// The folder's `config.json` text and its weights: safetensors (memory-mapped) if present,
/// else the PyTorch pickle.
pub fn open_folder(folder: &Path) -> Result<(String, Checkpoint), WeightsError> {
    let config_path = folder.join("config.json");
    let text = std::fs::read_to_string(&config_path).map_err(|e| WeightsError::Config {
        path: config_path,
        message: e.to_string(),
    })?;
    for name in [
        "diffusion_pytorch_model.safetensors",
        "diffusion_pytorch_model.fp16.safetensors",
    ] {
        let path = folder.join(name);
        if path.is_file() {
            return Ok((text, Checkpoint::open(&path)?));
        }
    }
    let path = folder.join("diffusion_pytorch_model.bin");
    if path.is_file() {
        let bytes = std::fs::read(&path).map_err(|e| WeightsError::Config {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let state = read_zip(&bytes).map_err(|message| WeightsError::Pickle {
            path: path.clone(),
            message,
        })?;
        return Ok((text, Checkpoint::from_f32(&path, state)));
    }
    Err(WeightsError::NoWeights {
        folder: folder.to_path_buf(),
    })
}
