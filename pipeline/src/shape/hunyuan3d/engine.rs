//! The `hunyuan3d` shape engine: preprocessed images → DINOv2 condition tokens → sampler → VAE
//! decoder → volume → marching cubes, for a whole batch. Each sub-step is a child span of the
//! request's `shape_generation` span: `conditioning`, `denoising` (with the step count),
//! `volume_decoding` and `surface_extraction`.
//!
//! Batching: the conditioner runs once over every image; requests that share the sampler
//! settings (steps, guidance scale) are denoised together (2B sequences with CFG), and requests
//! that share the grid (resolution, chunk size) are decoded together. Each image's noise comes
//! from its own seed, so a result does not depend on the batch it ran in.

mod run;

use std::path::Path;

use burn::tensor::{DType, Tensor, TensorData, backend::Backend};
use orfeas_vocab::{Device, Dtype, Engine, Step, VolumeDecoding};

use super::config::CheckpointKind;
use super::sampler::{Guidance, denoise, plan, seeded_noise};
use super::{ModelError, SchedulerConfig, ShapeModel};
use crate::error::{ShapeError, is_out_of_memory, panic_message};
use crate::shape::engine::{GeneratedShape, ShapeEngine, ShapeRequest, all_stopped};
use crate::stage::step_span;

/// Engine settings that are not per job.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hunyuan3dSettings {
    pub dtype: DType,
    pub decoding: VolumeDecoding,
    /// Coarsest hierarchy level (63 upstream).
    pub min_resolution: usize,
    /// Overrides the checkpoint's sampler (e.g. flow matching for a guidance-distilled "fast"
    /// model); `None` uses the one in `config.yaml`.
    pub scheduler: Option<SchedulerConfig>,
    /// Close surfaces where the shape meets the decoding box (the reference leaves holes there):
    /// the box's outermost samples are treated as outside.
    pub close_at_box: bool,
}

impl Default for Hunyuan3dSettings {
    fn default() -> Self {
        Self {
            dtype: DType::F32,
            decoding: VolumeDecoding::Hierarchical,
            min_resolution: 63,
            scheduler: None,
            close_at_box: true,
        }
    }
}

impl Hunyuan3dSettings {
    /// Settings for a compute dtype and a volume decoding; the rest at their defaults.
    pub fn new(dtype: Dtype, decoding: VolumeDecoding) -> Self {
        Self {
            dtype: burn_dtype(dtype),
            decoding,
            ..Default::default()
        }
    }
}

/// burn's dtype for a vocabulary dtype.
pub fn burn_dtype(dtype: Dtype) -> DType {
    match dtype {
        Dtype::F32 => DType::F32,
        Dtype::F16 => DType::F16,
        Dtype::Bf16 => DType::BF16,
    }
}

/// The engine: one resident model per worker process.
#[derive(Debug)]
pub struct Hunyuan3dEngine<B: Backend> {
    model: ShapeModel<B>,
    settings: Hunyuan3dSettings,
    /// Noise used for every request instead of its seed's (reference comparisons).
    injected_noise: Option<Vec<f32>>,
}

fn engine_error(detail: impl std::fmt::Display) -> ShapeError {
    ShapeError::Engine {
        engine: Engine::Hunyuan3d.as_str().into(),
        detail: detail.to_string(),
    }
}

impl<B: Backend> Hunyuan3dEngine<B> {
    /// Loads a checkpoint folder (`config.yaml` + `model.fp16.safetensors`); every problem with
    /// the folder is reported here, before any job runs.
    pub fn load(
        dir: &Path,
        settings: Hunyuan3dSettings,
        device: &B::Device,
    ) -> Result<Self, ModelError> {
        let model = ShapeModel::load(dir, settings.dtype, device)?;
        Ok(Self {
            model,
            settings,
            injected_noise: None,
        })
    }

    /// Every request starts from these `num_latents × in_channels` values instead of its
    /// seed's noise: for comparisons with a reference run that drew its own noise.
    pub fn with_injected_noise(mut self, noise: Vec<f32>) -> Result<Self, ModelError> {
        let want = self.model.vae_config.num_latents * self.model.config.dit.in_channels;
        if noise.len() != want {
            return Err(ModelError::Input(format!(
                "injected noise has {} values, the model needs {want}",
                noise.len()
            )));
        }
        self.injected_noise = Some(noise);
        Ok(self)
    }

    pub fn model(&self) -> &ShapeModel<B> {
        &self.model
    }

    /// The sampler this engine runs (the checkpoint's, unless the settings override it).
    fn scheduler(&self) -> SchedulerConfig {
        self.settings
            .scheduler
            .unwrap_or(self.model.config.scheduler)
    }

    /// The step count of a request: its own, else the checkpoint kind's default.
    pub fn steps_for(&self, requested: Option<u32>) -> u32 {
        requested.unwrap_or_else(|| {
            CheckpointKind::of(self.scheduler(), self.model.config.dit.guidance_embed)
                .default_steps()
        })
    }

    /// Latents for a group of requests sharing steps and guidance scale.
    fn denoise_group(
        &self,
        reqs: &[&ShapeRequest<'_>],
        cond: Tensor<B, 3>,
    ) -> Result<Tensor<B, 3>, ShapeError> {
        let opts = reqs[0].options;
        let cfg = &self.model.config;
        let steps = plan(
            self.scheduler(),
            self.steps_for(opts.steps) as usize,
            self.settings.dtype == DType::F16,
        )
        .map_err(engine_error)?;
        let (l, c) = (self.model.vae_config.num_latents, cfg.dit.in_channels);
        let noise: Vec<f32> = reqs
            .iter()
            .flat_map(|r| match &self.injected_noise {
                Some(n) => n.clone(),
                None => seeded_noise(r.options.seed, l * c),
            })
            .collect();
        let noise = Tensor::<B, 3>::from_data(
            TensorData::new(noise, [reqs.len(), l, c]),
            &self.model.device,
        );
        let guidance = Guidance::for_model(&self.model.dit, opts.guidance_scale);
        let spans: Vec<_> = reqs
            .iter()
            .map(|r| {
                let span = step_span(Step::Denoising, &r.span);
                span.record("steps", steps.len());
                span.record("batch", reqs.len());
                span
            })
            .collect();
        let out = denoise(
            &self.model.dit,
            cond,
            noise,
            &steps,
            guidance,
            |done, total| {
                for r in reqs {
                    r.control.progress(Step::Denoising, done, total);
                }
                !all_stopped(reqs.iter().copied())
            },
        )
        .map_err(|_| ShapeError::Stopped)?;
        drop(spans);
        Ok(out)
    }
}

impl<B: Backend> ShapeEngine for Hunyuan3dEngine<B>
where
    B::Device: Send + Sync,
    ShapeModel<B>: Send + Sync,
{
    fn engine(&self) -> Engine {
        Engine::Hunyuan3d
    }

    fn generate(&self, batch: &[ShapeRequest<'_>]) -> Vec<Result<GeneratedShape, ShapeError>> {
        let mut results: Vec<Option<Result<GeneratedShape, ShapeError>>> = batch
            .iter()
            .map(|r| r.options.validate().err().map(Err))
            .collect();
        let valid: Vec<usize> = (0..batch.len()).filter(|&i| results[i].is_none()).collect();
        if valid.is_empty() {
            return results.into_iter().map(|r| r.expect("set above")).collect();
        }
        // burn's backends panic on device errors (CUDA out of memory among them). Contain the
        // panic here: out of memory becomes `OutOfMemory`, which the worker answers by splitting
        // the batch; anything else fails this batch's jobs with the message.
        let ran =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.run(batch, &valid)))
                .unwrap_or_else(|panic| Err(panic_error(panic.as_ref())));
        match ran {
            Ok(outcomes) => {
                for (i, outcome) in valid.iter().zip(outcomes) {
                    results[*i] = Some(outcome);
                }
            }
            Err(e) => {
                for i in &valid {
                    results[*i] = Some(Err(e.clone()));
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(engine_error("no result"))))
            .collect()
    }
}

fn panic_error(panic: &(dyn std::any::Any + Send)) -> ShapeError {
    let msg = panic_message(panic);
    if is_out_of_memory(&msg) {
        ShapeError::OutOfMemory { detail: msg }
    } else {
        engine_error(format!("the model failed: {msg}"))
    }
}

/// Loads the engine on a device: the CPU backend computes in fp32; CUDA (a build with the
/// `cuda` feature) in the requested dtype.
pub fn load_engine(
    dir: &Path,
    device: Device,
    settings: Hunyuan3dSettings,
) -> Result<Box<dyn ShapeEngine>, ModelError> {
    match device {
        Device::Cpu => {
            if settings.dtype != DType::F32 {
                return Err(ModelError::Input(
                    "the CPU backend computes in f32; half precision needs a CUDA device".into(),
                ));
            }
            let engine = Hunyuan3dEngine::<crate::tensor::CpuBackend>::load(
                dir,
                settings,
                &Default::default(),
            )?;
            Ok(Box::new(engine))
        }
        Device::Cuda(index) => load_cuda(dir, index as usize, settings),
    }
}

#[cfg(feature = "cuda")]
fn load_cuda(
    dir: &Path,
    index: usize,
    settings: Hunyuan3dSettings,
) -> Result<Box<dyn ShapeEngine>, ModelError> {
    let device = burn_cuda::CudaDevice::new(index);
    let engine = Hunyuan3dEngine::<crate::tensor::GpuBackend>::load(dir, settings, &device)?;
    Ok(Box::new(engine))
}

#[cfg(not(feature = "cuda"))]
fn load_cuda(
    _dir: &Path,
    index: usize,
    _settings: Hunyuan3dSettings,
) -> Result<Box<dyn ShapeEngine>, ModelError> {
    Err(ModelError::Unsupported(format!(
        "device cuda:{index}: this binary was built without the `cuda` feature"
    )))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn settings_from_vocabulary_values() {
        let s = Hunyuan3dSettings::new(Dtype::Bf16, VolumeDecoding::Dense);
        assert_eq!((s.dtype, s.decoding), (DType::BF16, VolumeDecoding::Dense));
        assert!(s.close_at_box);
        assert_eq!(burn_dtype(Dtype::F16), DType::F16);
    }

    #[test]
    fn panics_map_to_out_of_memory_or_engine_errors() {
        let oom: Box<dyn std::any::Any + Send> =
            Box::new(String::from("CUDA_ERROR_OUT_OF_MEMORY: out of memory"));
        assert!(matches!(
            panic_error(oom.as_ref()),
            ShapeError::OutOfMemory { .. }
        ));
        let other: Box<dyn std::any::Any + Send> = Box::new("index out of bounds");
        assert!(matches!(
            panic_error(other.as_ref()),
            ShapeError::Engine { .. }
        ));
    }
}
