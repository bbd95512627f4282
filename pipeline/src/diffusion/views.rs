//! Hunyuan3D-Paint's multiview pipeline (hy3dgen 2.0.2 `HunyuanPaintPipeline`, driven by
//! `Multiview_Diffusion_Net`): the views of a mesh generated from its delit reference image and
//! the normal and position maps of those views, batched over meshes as well as views.
//!
//! Per mesh, in the reference's order (and in the order of its random draws): the reference
//! image, the normal maps and the position maps are encoded (VAE posterior samples ×
//! `scaling_factor`, images mapped to [−1, 1]); initial latents are noise × `init_noise_sigma`;
//! each step runs the multiview UNet on `[latents / √(σ² + 1), normal latents, position latents]`
//! with classifier-free guidance (batch `[unconditional, conditional]`: zero text and reference
//! scale 0, then the learned text and reference scale 1; prediction
//! `uncond + guidance · (cond − uncond)`), then the scheduler step; the latents are decoded from
//! `latents / scaling_factor` to `x / 2 + 0.5` clamped to [0, 1]. The scheduler is Euler
//! ancestral with trailing spacing (what hy3dgen 2.0.2 puts in place of any checkpoint's), or
//! LCM for a checkpoint whose scheduler is `LCMScheduler` (Turbo).
//!
//! The reference UNet's features depend on the reference image only: they are computed once per
//! mesh. The unconditional half's features are multiplied by a reference scale of 0 in every
//! block, so the conditional half's stand in for them (the reference computes them from zero
//! latents; 0 × either is 0).

use std::path::Path;

use burn::tensor::{DType, Int, Tensor, TensorData, backend::Backend};

use super::config::TimestepSpacing;
use super::multiview::{MultiviewError, MultiviewStep, MultiviewUnet};
use super::noise::Noise;
use super::sampler::{Sampler, SamplerKind, SchedulerFile, stacked_noise};
use super::vae::{AutoencoderKl, VaeConfig};
use super::weights::WeightsError;
use super::{OnStep, Stopped};

/// How the multiview model is run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewSettings {
    pub steps: usize,
    /// Classifier-free guidance; none at 1 or below.
    pub guidance_scale: f32,
}

impl ViewSettings {
    /// hy3dgen 2.0.2's `Multiview_Diffusion_Net` (and the pipeline's default guidance).
    pub const REFERENCE: ViewSettings = ViewSettings {
        steps: 30,
        guidance_scale: 2.0,
    };
}

/// What one mesh gives the multiview model; images RGB in [0, 1], all of one size.
#[derive(Debug, Clone)]
pub struct ViewRequest<B: Backend> {
    /// The delit reference image `[1, 3, H, W]`.
    pub reference: Tensor<B, 4>,
    /// The views' normal and position maps `[views, 3, H, W]`.
    pub normals: Tensor<B, 4>,
    pub positions: Tensor<B, 4>,
}

/// Why the multiview pipeline did not finish.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ViewsError {
    #[error(transparent)]
    Stopped(#[from] Stopped),
    #[error(transparent)]
    Model(#[from] MultiviewError),
    #[error("{0}")]
    Input(String),
}

/// The multiview UNets, the VAE and the scheduler of a Hunyuan3D-Paint folder.
#[derive(Debug)]
pub struct ViewModel<B: Backend> {
    pub unet: MultiviewUnet<B>,
    pub vae: AutoencoderKl<B>,
    pub vae_config: VaeConfig,
    pub scheduler: SchedulerFile,
}

impl<B: Backend> ViewModel<B> {
    /// Loads `unet/`, `vae/` and `scheduler/` of a `hunyuan3d-paint-v2-0` (or `-turbo`) folder.
    pub fn load(folder: &Path, device: &B::Device, dtype: DType) -> Result<Self, WeightsError> {
        let unet = MultiviewUnet::load(&folder.join("unet"), device, dtype)?;
        let (vae, vae_config) = AutoencoderKl::load(&folder.join("vae"), device, dtype)?;
        let scheduler = SchedulerFile::read(&folder.join("scheduler")).map_err(|message| {
            WeightsError::Config {
                path: folder.join("scheduler"),
                message,
            }
        })?;
        if unet.config.out_channels != vae_config.latent_channels {
            return Err(WeightsError::Config {
                path: folder.join("unet/config.json"),
                message: format!(
                    "the UNet returns {} channels; the VAE's latents have {}",
                    unet.config.out_channels, vae_config.latent_channels
                ),
            });
        }
        Ok(ViewModel {
            unet,
            vae,
            vae_config,
            scheduler,
        })
    }

    /// The steps a Turbo (LCM) checkpoint runs by default; others run [`ViewSettings::REFERENCE`].
    pub fn default_settings(&self) -> ViewSettings {
        match self.scheduler.kind {
            SamplerKind::Lcm => ViewSettings {
                steps: 10,
                ..ViewSettings::REFERENCE
            },
            SamplerKind::EulerAncestral => ViewSettings::REFERENCE,
        }
    }

    /// Images in [0, 1] → scaled latent samples, each mesh's noise from its own source.
    fn encode(&self, images: Tensor<B, 4>, noises: &mut [&mut dyn Noise]) -> Tensor<B, 4> {
        let posterior = self.vae.encode(images.mul_scalar(2.0).sub_scalar(1.0));
        let dims = posterior.mean.dims();
        let noise = stacked_noise::<B>(noises, dims, &posterior.mean.device());
        posterior
            .sample(noise)
            .mul_scalar(self.vae_config.scaling_factor)
    }

    /// The views of every request, `[meshes · views, 3, H, W]` in [0, 1], mesh by mesh; `cameras`
    /// are the views' camera ids ([`super::multiview::camera_id`]), the same for every mesh, and
    /// `noises` one source per request.
    pub fn run(
        &self,
        requests: &[ViewRequest<B>],
        cameras: &[u32],
        settings: &ViewSettings,
        noises: &mut [&mut dyn Noise],
        on_step: OnStep<'_>,
    ) -> Result<Tensor<B, 4>, ViewsError> {
        let meshes = requests.len();
        let views = cameras.len();
        if meshes == 0 || views == 0 || noises.len() != meshes {
            return Err(ViewsError::Input(format!(
                "{meshes} requests, {views} views and {} noise sources",
                noises.len()
            )));
        }
        let [_, _, h, w] = requests[0].reference.dims();
        let f = self.vae_config.downsampling();
        for r in requests {
            let ok = r.reference.dims() == [1, 3, h, w]
                && r.normals.dims() == [views, 3, h, w]
                && r.positions.dims() == [views, 3, h, w];
            if !ok || h % f != 0 || w % f != 0 {
                return Err(ViewsError::Input(format!(
                    "every request needs a [1, 3, H, W] reference and [{views}, 3, H, W] maps, H and W divisible by {f}"
                )));
            }
        }
        let device = requests[0].reference.device();
        let cat = |pick: fn(&ViewRequest<B>) -> Tensor<B, 4>| {
            Tensor::cat(requests.iter().map(pick).collect(), 0)
        };
        let reference = self.encode(cat(|r| r.reference.clone()), noises);
        let normals = self.encode(cat(|r| r.normals.clone()), noises);
        let positions = self.encode(cat(|r| r.positions.clone()), noises);
        let features = self.unet.reference_features(reference, 1);

        let sampler = Sampler::new(
            &self.scheduler,
            settings.steps,
            Some(TimestepSpacing::Trailing),
        );
        let guided = settings.guidance_scale > 1.0;
        let z = self.vae_config.latent_channels;
        let rows = meshes * views;
        let mut latents = stacked_noise::<B>(noises, [rows, z, h / f, w / f], &device)
            .mul_scalar(sampler.init_noise_sigma());

        let learned = self.unet.learned_text();
        let [_, tokens, width] = learned.dims();
        let cond_text = learned.expand([meshes, tokens, width]);
        let twice = |t: Tensor<B, 4>| {
            if guided {
                Tensor::cat(vec![t.clone(), t], 0)
            } else {
                t
            }
        };
        let (text, ref_scale, features) = if guided {
            let mut scale = vec![0f32; meshes];
            scale.extend(std::iter::repeat_n(1f32, meshes));
            (
                Tensor::cat(vec![cond_text.zeros_like(), cond_text], 0),
                Tensor::<B, 1>::from_data(TensorData::new(scale, [2 * meshes]), &device),
                features
                    .into_iter()
                    .map(|f| Tensor::cat(vec![f.clone(), f], 0))
                    .collect(),
            )
        } else {
            (cond_text, Tensor::ones([meshes], &device), features)
        };
        let normals = twice(normals);
        let positions = twice(positions);
        let copies = if guided { 2 } else { 1 };
        let ids: Vec<i32> = (0..copies * meshes)
            .flat_map(|_| cameras.iter().map(|&c| c as i32))
            .collect();
        let cameras =
            Tensor::<B, 1, Int>::from_data(TensorData::new(ids, [copies * rows]), &device);

        for i in 0..sampler.len() {
            let input = twice(latents.clone().div_scalar(sampler.input_divisor(i)));
            let out = self.unet.forward(
                MultiviewStep {
                    latents: input,
                    normals: normals.clone(),
                    positions: positions.clone(),
                    views,
                    cameras: cameras.clone(),
                    timestep: sampler.timestep(i),
                    text: text.clone(),
                    ref_scale: ref_scale.clone(),
                },
                &features,
            )?;
            let prediction = if guided {
                let mut halves = out.chunk(2, 0).into_iter();
                let (Some(uncond), Some(cond)) = (halves.next(), halves.next()) else {
                    unreachable!("two halves of 2n rows")
                };
                uncond.clone() + (cond - uncond).mul_scalar(settings.guidance_scale)
            } else {
                out
            };
            latents = sampler.step(i, prediction, latents, noises);
            if !on_step(i + 1, sampler.len()) {
                return Err(Stopped.into());
            }
        }
        let decoded = self
            .vae
            .decode(latents.div_scalar(self.vae_config.scaling_factor));
        Ok(decoded.mul_scalar(0.5).add_scalar(0.5).clamp(0.0, 1.0))
    }
}
