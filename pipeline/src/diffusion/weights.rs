//! Opening a model folder as diffusers and transformers save them (`config.json` beside
//! safetensors weights, or the pickled `.bin`) for the strict loader.

use std::path::{Path, PathBuf};

use crate::segmentation::u2net::pth::read_zip;
use crate::shape::hunyuan3d::ModelError;
use crate::shape::hunyuan3d::weights::Checkpoint;

/// Why a model folder could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("{folder}: no weights ({expected})")]
    NoWeights { folder: PathBuf, expected: String },
    #[error("{path}: {message}")]
    Pickle { path: PathBuf, message: String },
    #[error(transparent)]
    Weights(#[from] ModelError),
}

/// A diffusers model's weight files: safetensors (full or half precision), then the pickle.
pub const DIFFUSERS: (&[&str], &str) = (
    &[
        "diffusion_pytorch_model.safetensors",
        "diffusion_pytorch_model.fp16.safetensors",
    ],
    "diffusion_pytorch_model.bin",
);

/// A transformers model's weight files.
pub const TRANSFORMERS: (&[&str], &str) = (
    &["model.safetensors", "model.fp16.safetensors"],
    "pytorch_model.bin",
);

/// The folder's `config.json` text and its weights: the first of `files`' safetensors names
/// present (memory-mapped), else its PyTorch pickle.
pub fn open_folder(
    folder: &Path,
    files: (&[&str], &str),
) -> Result<(String, Checkpoint), WeightsError> {
    let (safetensors, pickle) = files;
    let config_path = folder.join("config.json");
    let text = std::fs::read_to_string(&config_path).map_err(|e| WeightsError::Config {
        path: config_path,
        message: e.to_string(),
    })?;
    for name in safetensors {
        let path = folder.join(name);
        if path.is_file() {
            return Ok((text, Checkpoint::open(&path)?));
        }
    }
    let path = folder.join(pickle);
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
        expected: format!("{} or {pickle}", safetensors.join(", ")),
    })
}
