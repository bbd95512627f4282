//! Stable-Diffusion-style latent diffusion for Hunyuan3D-Paint, generic over the burn backend:
//! the VAE ([`vae`]), the denoising UNet ([`unet`], and the multiview UNet around it,
//! [`multiview`]) and the CLIP text encoder ([`clip`]), loaded from diffusers and transformers
//! folders ([`weights`]); the two diffusers schedulers, read from a checkpoint's
//! `scheduler/scheduler_config.json` ([`sampler`]); and the two pipelines built from them, the
//! delight model ([`delight`], with its colour correction [`colour`]) and the multiview model
//! ([`views`]), each sample drawing its noise from its own source ([`noise`]).
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
pub mod colour;
mod config;
pub mod delight;
mod euler;
pub mod layers;
mod lcm;
pub mod multiview;
pub mod noise;
pub mod resnet;
pub mod sampler;
mod schedule;
pub mod unet;
pub mod vae;
pub mod views;
pub mod weights;

pub use config::{
    BetaSchedule, PredictionType, SchedulerConfig, SchedulerConfigError, TimestepSpacing,
};
pub use euler::EulerAncestral;
pub use lcm::Lcm;
pub use schedule::alphas_cumprod;

use burn::tensor::{Tensor, backend::Backend};

/// A denoising loop was told to stop between steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stopped between denoising steps")]
pub struct Stopped;

/// Called after each denoising step with (steps done, total); `false` stops the loop.
pub type OnStep<'a> = &'a mut dyn FnMut(usize, usize) -> bool;

/// What a scheduler step returns.
#[derive(Debug, Clone)]
pub struct StepOutput<B: Backend> {
    /// The sample for the next step (the result after the last).
    pub prev_sample: Tensor<B, 4>,
    /// The model's estimate of the clean sample at this step.
    pub pred_original_sample: Tensor<B, 4>,
}
