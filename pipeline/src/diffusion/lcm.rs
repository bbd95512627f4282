//! diffusers' `LCMScheduler`: a latent consistency model's multistep sampling. Each step maps the
//! sample to the model's clean estimate through the boundary conditions (c_skip, c_out), then
//! re-noises it to the next timestep (not after the last).

use burn::tensor::{Tensor, backend::Backend};

use super::StepOutput;
use super::config::{PredictionType, SchedulerConfig};
use super::schedule::alphas_cumprod;

/// The data standard deviation of the boundary conditions.
const SIGMA_DATA: f32 = 0.5;

#[derive(Debug, Clone, PartialEq)]
pub struct Lcm {
    prediction: PredictionType,
    timestep_scaling: f32,
    alphas_cumprod: Vec<f32>,
    final_alpha_cumprod: f32,
    /// The timesteps the model sees, descending.
    pub timesteps: Vec<usize>,
}

impl Lcm {
    /// `steps` timesteps drawn, evenly over its index, from the schedule of
    /// `original_inference_steps` (diffusers' default selection).
    pub fn new(cfg: &SchedulerConfig, steps: usize) -> Lcm {
        let k = cfg.num_train_timesteps / cfg.original_inference_steps;
        let origin: Vec<usize> = (1..=cfg.original_inference_steps)
            .rev()
            .map(|i| i * k - 1)
            .collect();
        let steps = steps.clamp(1, origin.len());
        let timesteps = (0..steps)
            .map(|j| origin[(j as f64 * (origin.len() as f64 / steps as f64)).floor() as usize])
            .collect();
        Self::with_timesteps(cfg, timesteps)
    }

    /// A schedule on explicit timesteps (Hunyuan3D-Paint Turbo passes its own), descending and
    /// below `num_train_timesteps`.
    pub fn with_timesteps(cfg: &SchedulerConfig, timesteps: Vec<usize>) -> Lcm {
        let alphas_cumprod = alphas_cumprod(cfg);
        let final_alpha_cumprod = if cfg.set_alpha_to_one {
            1.0
        } else {
            alphas_cumprod[0]
        };
        let last = cfg.num_train_timesteps - 1;
        Lcm {
            prediction: cfg.prediction_type,
            timestep_scaling: cfg.timestep_scaling as f32,
            alphas_cumprod,
            final_alpha_cumprod,
            timesteps: timesteps.into_iter().map(|t| t.min(last)).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.timesteps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.timesteps.is_empty()
    }

    /// ᾱ at step `i` and at the step it goes to (the same timestep after the last).
    pub fn alphas(&self, i: usize) -> (f32, f32) {
        let t = self.timesteps[i];
        let prev = self.timesteps.get(i + 1).copied().unwrap_or(t);
        (self.alphas_cumprod[t], self.alphas_cumprod[prev])
    }

    /// ᾱ after the schedule's end (1, or ᾱ₀ without `set_alpha_to_one`).
    pub fn final_alpha_cumprod(&self) -> f32 {
        self.final_alpha_cumprod
    }

    /// c_skip and c_out at step `i`.
    pub fn boundary(&self, i: usize) -> (f32, f32) {
        let scaled = self.timesteps[i] as f32 * self.timestep_scaling;
        let d2 = SIGMA_DATA * SIGMA_DATA;
        let c_skip = d2 / (scaled * scaled + d2);
        let c_out = scaled / (scaled * scaled + d2).sqrt();
        (c_skip, c_out)
    }

    /// Step `i`. `noise` is drawn for every step but the last (where it is not used).
    pub fn step<B: Backend>(
        &self,
        i: usize,
        model_output: Tensor<B, 4>,
        sample: Tensor<B, 4>,
        noise: Option<Tensor<B, 4>>,
    ) -> StepOutput<B> {
        let (a_t, a_prev) = self.alphas(i);
        let (b_t, b_prev) = (1.0 - a_t, 1.0 - a_prev);
        let x0 = match self.prediction {
            PredictionType::Epsilon => {
                (sample.clone() - model_output.mul_scalar(b_t.sqrt())).div_scalar(a_t.sqrt())
            }
            PredictionType::VPrediction => {
                sample.clone().mul_scalar(a_t.sqrt()) - model_output.mul_scalar(b_t.sqrt())
            }
        };
        let (c_skip, c_out) = self.boundary(i);
        let denoised = x0.mul_scalar(c_out) + sample.mul_scalar(c_skip);
        let prev = match noise {
            Some(noise) if i + 1 < self.len() => {
                denoised.clone().mul_scalar(a_prev.sqrt()) + noise.mul_scalar(b_prev.sqrt())
            }
            _ => denoised.clone(),
        };
        StepOutput {
            prev_sample: prev,
            pred_original_sample: denoised,
        }
    }
}
