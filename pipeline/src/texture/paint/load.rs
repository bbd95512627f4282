//! Loading the paint engine for a worker: the folders and settings it names
//! ([`PainterSpec`]), checked and loaded on the configured device and dtype.

use burn::tensor::DType;

use super::{PaintEngine, PaintSettings, Painter};
use crate::diffusion::weights::WeightsError;

/// Where a worker's paint models are and how to run them.
#[derive(Debug, Clone, PartialEq)]
pub struct PainterSpec {
    /// The multiview folder (`hunyuan3d-paint-v2-0` or `-turbo`).
    pub paint: std::path::PathBuf,
    /// The delight folder (`hunyuan3d-delight-v2-0`).
    pub delight: std::path::PathBuf,
    pub device: orfeas_vocab::Device,
    pub dtype: orfeas_vocab::Dtype,
    pub view_size: usize,
    pub render_size: usize,
}

/// Why the paint models did not load.
#[derive(Debug, thiserror::Error)]
pub enum PainterLoadError {
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error("{0}")]
    Unsupported(String),
}

/// Loads the paint engine on the spec's device: the CPU backend computes in f32; CUDA (a build
/// with the `cuda` feature) in the requested dtype.
pub fn load_painter(spec: &PainterSpec) -> Result<Box<dyn Painter>, PainterLoadError> {
    let dtype = crate::shape::hunyuan3d::burn_dtype(spec.dtype);
    // The VAE halves the image three times (SD's 8×); a view must be whole latents.
    let multiple = 8;
    if spec.view_size == 0 || !spec.view_size.is_multiple_of(multiple) || spec.render_size == 0 {
        return Err(PainterLoadError::Unsupported(format!(
            "worker.paint_view_size {} must be a positive multiple of {multiple}, worker.paint_render_size {} positive",
            spec.view_size, spec.render_size
        )));
    }
    let settings = |base: PaintSettings| PaintSettings {
        view_size: spec.view_size,
        render_size: spec.render_size,
        ..base
    };
    match spec.device {
        orfeas_vocab::Device::Cpu => {
            if dtype != DType::F32 {
                return Err(PainterLoadError::Unsupported(
                    "the CPU backend computes in f32; half precision needs a CUDA device".into(),
                ));
            }
            let engine = PaintEngine::<crate::tensor::CpuBackend>::load(
                &spec.paint,
                &spec.delight,
                &Default::default(),
                dtype,
            )?;
            let s = settings(*engine.settings());
            Ok(Box::new(engine.with_settings(s)))
        }
        orfeas_vocab::Device::Cuda(index) => load_cuda(spec, index as usize, dtype, settings),
    }
}

#[cfg(feature = "cuda")]
fn load_cuda(
    spec: &PainterSpec,
    index: usize,
    dtype: DType,
    settings: impl Fn(PaintSettings) -> PaintSettings,
) -> Result<Box<dyn Painter>, PainterLoadError> {
    let device = burn_cuda::CudaDevice::new(index);
    let engine =
        PaintEngine::<crate::tensor::GpuBackend>::load(&spec.paint, &spec.delight, &device, dtype)?;
    let s = settings(*engine.settings());
    Ok(Box::new(engine.with_settings(s)))
}

#[cfg(not(feature = "cuda"))]
fn load_cuda(
    _spec: &PainterSpec,
    index: usize,
    _dtype: DType,
    _settings: impl Fn(PaintSettings) -> PaintSettings,
) -> Result<Box<dyn Painter>, PainterLoadError> {
    Err(PainterLoadError::Unsupported(format!(
        "device cuda:{index}: this binary was built without the `cuda` feature"
    )))
}
