//! The denoising schedule a pipeline runs, chosen from a checkpoint's
//! `scheduler/scheduler_config.json`: `LCMScheduler` (Hunyuan3D-Paint Turbo) runs as [`Lcm`],
//! everything else as [`EulerAncestral`] — what hy3dgen 2.0.2 does, replacing a checkpoint's
//! scheduler by Euler ancestral on the checkpoint's own configuration.

use std::path::Path;

use burn::tensor::{Tensor, backend::Backend};

use super::config::{SchedulerConfig, TimestepSpacing};
use super::noise::Noise;
use super::{EulerAncestral, Lcm};

/// The scheduler class a configuration names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SamplerKind {
    EulerAncestral,
    Lcm,
}

/// A scheduler folder's configuration and class.
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulerFile {
    pub kind: SamplerKind,
    pub config: SchedulerConfig,
}

impl SchedulerFile {
    /// Reads `folder/scheduler_config.json`.
    pub fn read(folder: &Path) -> Result<SchedulerFile, String> {
        let path = folder.join("scheduler_config.json");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let class: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let kind = match class.get("_class_name").and_then(|v| v.as_str()) {
            Some("LCMScheduler") => SamplerKind::Lcm,
            _ => SamplerKind::EulerAncestral,
        };
        let config =
            SchedulerConfig::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(SchedulerFile { kind, config })
    }
}

/// A schedule of a given number of steps.
#[derive(Debug, Clone, PartialEq)]
pub enum Sampler {
    EulerAncestral(EulerAncestral),
    Lcm(Lcm),
}

impl Sampler {
    /// `steps` steps of `file`'s scheduler; `spacing` overrides the configuration's timestep
    /// spacing for Euler ancestral (the multiview model's `timestep_spacing='trailing'`).
    pub fn new(file: &SchedulerFile, steps: usize, spacing: Option<TimestepSpacing>) -> Sampler {
        match file.kind {
            SamplerKind::Lcm => Sampler::Lcm(Lcm::new(&file.config, steps)),
            SamplerKind::EulerAncestral => {
                let mut cfg = file.config.clone();
                if let Some(s) = spacing {
                    cfg.timestep_spacing = s;
                }
                Sampler::EulerAncestral(EulerAncestral::new(&cfg, steps))
            }
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Sampler::EulerAncestral(s) => s.len(),
            Sampler::Lcm(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The timestep the model sees at step `i`.
    pub fn timestep(&self, i: usize) -> f32 {
        match self {
            Sampler::EulerAncestral(s) => s.timesteps[i],
            Sampler::Lcm(s) => s.timesteps[i] as f32,
        }
    }

    /// Initial latents are unit noise times this.
    pub fn init_noise_sigma(&self) -> f32 {
        match self {
            Sampler::EulerAncestral(s) => s.init_noise_sigma,
            Sampler::Lcm(_) => 1.0,
        }
    }

    /// What the model's input is divided by at step `i` (`scale_model_input`).
    pub fn input_divisor(&self, i: usize) -> f32 {
        match self {
            Sampler::EulerAncestral(s) => s.input_divisor(i),
            Sampler::Lcm(_) => 1.0,
        }
    }

    /// Whether step `i` draws fresh noise (LCM draws none at its last step).
    pub fn draws_at(&self, i: usize) -> bool {
        match self {
            Sampler::EulerAncestral(_) => true,
            Sampler::Lcm(s) => i + 1 < s.len(),
        }
    }

    /// Step `i` for `samples` samples stacked along the batch axis (`per_sample` rows each):
    /// each sample's fresh noise comes from its own source.
    pub fn step<B: Backend>(
        &self,
        i: usize,
        model_output: Tensor<B, 4>,
        sample: Tensor<B, 4>,
        noises: &mut [&mut dyn Noise],
    ) -> Tensor<B, 4> {
        let noise = self
            .draws_at(i)
            .then(|| stacked_noise::<B>(noises, sample.dims(), &sample.device()));
        match self {
            Sampler::EulerAncestral(s) => {
                let noise = noise.unwrap_or_else(|| sample.zeros_like());
                s.step(i, model_output, sample, noise).prev_sample
            }
            Sampler::Lcm(s) => s.step(i, model_output, sample, noise).prev_sample,
        }
    }
}

/// One draw per sample, each `[rows / samples, …]`, stacked into `dims`.
pub fn stacked_noise<B: Backend>(
    noises: &mut [&mut dyn Noise],
    dims: [usize; 4],
    device: &B::Device,
) -> Tensor<B, 4> {
    let [rows, c, h, w] = dims;
    let samples = noises.len().max(1);
    let per = rows / samples;
    let mut values = Vec::with_capacity(rows * c * h * w);
    for noise in noises.iter_mut() {
        values.extend(noise.draw(per * c * h * w));
    }
    Tensor::from_data(burn::tensor::TensorData::new(values, dims), device)
}
