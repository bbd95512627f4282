//! diffusers' `EulerAncestralDiscreteScheduler`: an Euler step in σ space to σ_down, plus fresh
//! noise scaled by σ_up (ancestral sampling), with σ = √((1 − ᾱ)/ᾱ) interpolated at the
//! inference timesteps.

use burn::tensor::{Tensor, backend::Backend};

use super::StepOutput;
use super::config::{PredictionType, SchedulerConfig, TimestepSpacing};
use super::schedule::alphas_cumprod;

/// ᾱ of the last timestep under zero-terminal-SNR: diffusers keeps it just above zero so σ
/// stays finite (σ_max = 4096).
const ZERO_SNR_FLOOR: f32 = 1.0 / 16_777_216.0;

/// A schedule of `steps` inference steps.
#[derive(Debug, Clone, PartialEq)]
pub struct EulerAncestral {
    prediction: PredictionType,
    /// The timesteps the model sees, descending.
    pub timesteps: Vec<f32>,
    /// σ at each step, then 0.
    pub sigmas: Vec<f32>,
    /// Initial latents are unit noise times this.
    pub init_noise_sigma: f32,
}

/// numpy's `interp` over `xp = 0, 1, …, len − 1`, in f64.
fn interp(x: f64, fp: &[f64]) -> f64 {
    if x <= 0.0 {
        return fp[0];
    }
    let last = fp.len() - 1;
    if x >= last as f64 {
        return fp[last];
    }
    let i = x.floor() as usize;
    let frac = x - i as f64;
    fp[i] + (fp[i + 1] - fp[i]) * frac
}

impl EulerAncestral {
    pub fn new(cfg: &SchedulerConfig, steps: usize) -> EulerAncestral {
        let n_train = cfg.num_train_timesteps;
        let steps = steps.clamp(1, n_train);
        let mut ac = alphas_cumprod(cfg);
        if cfg.rescale_betas_zero_snr {
            ac[n_train - 1] = ZERO_SNR_FLOOR;
        }
        let timesteps: Vec<f32> = match cfg.timestep_spacing {
            TimestepSpacing::Linspace => {
                // numpy's linspace in f64: i · step, the last value exactly the end.
                let last = (n_train - 1) as f64;
                let step = if steps > 1 {
                    last / (steps - 1) as f64
                } else {
                    0.0
                };
                (0..steps)
                    .rev()
                    .map(|i| {
                        if i + 1 == steps && steps > 1 {
                            last as f32
                        } else {
                            (i as f64 * step) as f32
                        }
                    })
                    .collect()
            }
            TimestepSpacing::Leading => {
                let ratio = n_train / steps;
                (0..steps)
                    .rev()
                    .map(|i| ((i * ratio) as f32) + cfg.steps_offset as f32)
                    .collect()
            }
            TimestepSpacing::Trailing => {
                let ratio = n_train as f64 / steps as f64;
                (0..steps)
                    .map(|i| {
                        let t = n_train as f64 - i as f64 * ratio;
                        (t.round_ties_even() - 1.0) as f32
                    })
                    .collect()
            }
        };
        let base: Vec<f64> = ac
            .iter()
            .map(|&a| f64::from(((1.0 - a) / a).sqrt()))
            .collect();
        let mut sigmas: Vec<f32> = timesteps
            .iter()
            .map(|&t| interp(f64::from(t), &base) as f32)
            .collect();
        sigmas.push(0.0);
        let max = sigmas.iter().copied().fold(0f32, f32::max);
        let init_noise_sigma = match cfg.timestep_spacing {
            TimestepSpacing::Linspace | TimestepSpacing::Trailing => max,
            TimestepSpacing::Leading => (max * max + 1.0).sqrt(),
        };
        EulerAncestral {
            prediction: cfg.prediction_type,
            timesteps,
            sigmas,
            init_noise_sigma,
        }
    }

    pub fn len(&self) -> usize {
        self.timesteps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.timesteps.is_empty()
    }

    /// What the model input is divided by at step `i` (`scale_model_input`).
    pub fn input_divisor(&self, i: usize) -> f32 {
        let s = self.sigmas[i];
        (s * s + 1.0).sqrt()
    }

    /// σ_up and σ_down of step `i`.
    pub fn ancestral(&self, i: usize) -> (f32, f32) {
        let (from, to) = (self.sigmas[i], self.sigmas[i + 1]);
        let up = (to * to * (from * from - to * to) / (from * from)).sqrt();
        let down = (to * to - up * up).sqrt();
        (up, down)
    }

    /// Step `i`: from `sample` with the model's output to the next sample; `noise` (unit
    /// normal, the sample's shape) is the ancestral draw.
    pub fn step<B: Backend>(
        &self,
        i: usize,
        model_output: Tensor<B, 4>,
        sample: Tensor<B, 4>,
        noise: Tensor<B, 4>,
    ) -> StepOutput<B> {
        let sigma = self.sigmas[i];
        let x0 = match self.prediction {
            PredictionType::Epsilon => sample.clone() - model_output.mul_scalar(sigma),
            PredictionType::VPrediction => {
                let s2 = sigma * sigma + 1.0;
                model_output.mul_scalar(-sigma / s2.sqrt()) + sample.clone().div_scalar(s2)
            }
        };
        let (up, down) = self.ancestral(i);
        let derivative = (sample.clone() - x0.clone()).div_scalar(sigma);
        let prev = sample + derivative.mul_scalar(down - sigma) + noise.mul_scalar(up);
        StepOutput {
            prev_sample: prev,
            pred_original_sample: x0,
        }
    }
}
