//! Salient-object segmentation for background removal: U²-Net as rembg 2.x runs it (the
//! background remover Hunyuan3D-2's pipeline uses), on the host CPU or a burn device. See
//! `docs/u2net.md`.
//!
//! ```ignore
//! let seg = load_segmenter(Path::new("~/.u2net/u2net.onnx"), Device::Cpu)?;
//! let masks = seg.masks(&[&image_a, &image_b])?; // one 1-channel mask per image, its own size
//! ```

pub mod u2net;

use std::fmt;
use std::path::{Path, PathBuf};

use orfeas_vocab::Device;

use crate::image::resize::Raster;

pub use u2net::{HostExec, U2Net, U2NetConfig, U2NetSegmenter, U2NetWeights};

/// The two released sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum U2NetKind {
    /// `U2NET`: 44.0 M parameters (rembg's `u2net.onnx`, 176 MB).
    U2net,
    /// `U2NETP`: 1.13 M parameters (rembg's `u2netp.onnx`, 4.6 MB).
    U2netp,
}

impl fmt::Display for U2NetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            U2NetKind::U2net => "u2net",
            U2NetKind::U2netp => "u2netp",
        })
    }
}

/// Everything that can go wrong loading or running a segmentation model. Weight problems name
/// the tensor (our state-dict key; for ONNX files also the node and initializer).
#[derive(Debug, Clone, thiserror::Error)]
pub enum SegmentationError {
    #[error("cannot read {path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{path} is not a valid weights file: {message}")]
    Format { path: PathBuf, message: String },
    #[error("weights are missing tensor `{key}`")]
    MissingTensor { key: String },
    #[error("weights have unexpected tensor `{key}`")]
    UnexpectedTensor { key: String },
    #[error("tensor `{key}` has shape {found:?}, the model expects {expected:?}")]
    ShapeMismatch {
        key: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("{count} weight problems; first: {}", first.join("; "))]
    Many { count: usize, first: Vec<String> },
    #[error("invalid input: {0}")]
    Input(String),
    #[error("the model failed: {0}")]
    Model(String),
}

impl SegmentationError {
    /// One error as itself, several as [`SegmentationError::Many`] with the first five.
    pub fn many(mut errors: Vec<SegmentationError>) -> SegmentationError {
        if errors.len() == 1 {
            return errors.remove(0);
        }
        SegmentationError::Many {
            count: errors.len(),
            first: errors.iter().take(5).map(|e| e.to_string()).collect(),
        }
    }
}

/// A background-removal model.
pub trait Segmenter: Send + Sync {
    fn kind(&self) -> U2NetKind;

    /// One mask per image (1-channel u8 [`Raster`] of the image's own size) with rembg's
    /// semantics; all images go through one batched forward pass. Images may have 1 (grey),
    /// 2 (grey + alpha), 3 (RGB) or 4 (RGBA) channels; alpha is ignored, as rembg ignores it.
    fn masks(&self, images: &[&Raster]) -> Result<Vec<Raster>, SegmentationError>;
}

/// Loads a U²-Net weights file (ONNX, PyTorch `.pth` or safetensors; recognised by content;
/// the size is inferred from the tensors) onto a device: the CPU backend, or CUDA in a build
/// with the `cuda` feature.
pub fn load_segmenter(
    path: &Path,
    device: Device,
) -> Result<Box<dyn Segmenter>, SegmentationError> {
    let weights = U2NetWeights::load(path)?;
    segmenter_from_weights(&weights, device)
}

/// [`load_segmenter`] for weights already in memory (tests build them from a state dict).
pub fn segmenter_from_weights(
    weights: &U2NetWeights,
    device: Device,
) -> Result<Box<dyn Segmenter>, SegmentationError> {
    match device {
        Device::Cpu => Ok(Box::new(U2NetSegmenter::new(weights, HostExec::new())?)),
        Device::Cuda(index) => cuda(weights, index as usize),
    }
}

#[cfg(feature = "cuda")]
fn cuda(weights: &U2NetWeights, index: usize) -> Result<Box<dyn Segmenter>, SegmentationError> {
    let device = burn_cuda::CudaDevice::new(index);
    Ok(Box::new(U2NetSegmenter::new(
        weights,
        u2net::BurnExec::<crate::tensor::GpuBackend>::new(device),
    )?))
}

#[cfg(not(feature = "cuda"))]
fn cuda(_weights: &U2NetWeights, index: usize) -> Result<Box<dyn Segmenter>, SegmentationError> {
    Err(SegmentationError::Unsupported(format!(
        "device cuda:{index}: this binary was built without the `cuda` feature"
    )))
}
