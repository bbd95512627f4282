//! Pieces of Stable-Diffusion-style latent diffusion that Hunyuan3D-Paint's delight and
//! multiview pipelines share, generic over the burn backend: the VAE ([`vae`]), the denoising
//! UNet ([`unet`]) and the CLIP text encoder ([`clip`]), loaded from diffusers and transformers
//! folders ([`weights`]), and the two diffusers
//! schedulers those pipelines use, read from a checkpoint's `scheduler/scheduler_config.json`.
//!
//! - [`EulerAncestral`]: `EulerAncestralDiscreteScheduler` (multiview: 30 steps, trailing
//!   spacing; delight: 50 steps, the config's spacing).
//! - [`Lcm`]: `LCMScheduler` (the Turbo multiview checkpoint, on its own timesteps).
//!
//! Schedules follow diffusers' arithmetic (torch `linspace` in f32, `cumprod` rounded per
//! element, numpy f64 interpolation), so timesteps are the reference's bits and sigmas agree to
//! a few ulps (torch's f32 `sqrt` on the CPU is not correctly rounded; ours is). Noise is an
//! input: the reference draws it from a CUDA generator no other program can reproduce, so tests
//! inject the reference's draws and production passes its own seeded stream.

pub mod clip;
mod config;
mod euler;
pub mod layers;
mod lcm;
pub mod multiview;
pub mod resnet;
mod schedule;
pub mod unet;
pub mod vae;
pub mod weights;

pub use config::{
    BetaSchedule, PredictionType, SchedulerConfig, SchedulerConfigError, TimestepSpacing,
};
pub use euler::EulerAncestral;
pub use lcm::Lcm;
pub use schedule::alphas_cumprod;

use burn::tensor::{Tensor, backend::Backend};

/// What a scheduler step returns.
#[derive(Debug, Clone)]
pub struct StepOutput<B: Backend> {
    /// The sample for the next step (the result after the last).
    pub prev_sample: Tensor<B, 4>,
    /// The model's estimate of the clean sample at this step.
    pub pred_original_sample: Tensor<B, 4>,
}
