//! Hunyuan3D-Paint's delight model (`hunyuan3d-delight-v2-0`): a diffusers
//! `StableDiffusionInstructPix2PixPipeline` that removes lighting and shadows from the reference
//! image before the multiview model sees it. hy3dgen 2.0.2 (`Light_Shadow_Remover`) runs it on
//! the empty prompt, 50 steps of Euler ancestral, `image_guidance_scale` 1.5 and
//! `guidance_scale` 1.0 — and diffusers guides only when `guidance_scale > 1`, so the reference
//! runs one unguided UNet pass per step; [`DelightSettings::REFERENCE`] does the same. The
//! three-way guidance (text, image, neither) runs when a caller asks for more.
//!
//! What the pipeline computes per image, as diffusers 0.32.2 does: the image latents are the
//! VAE posterior's mode of the image in [−1, 1] (unscaled: InstructPix2Pix was trained so),
//! initial latents are noise × `init_noise_sigma`, each step feeds
//! `[latents / √(σ² + 1), image latents]` (8 channels) to the UNet with the empty prompt's CLIP
//! states, and the result is decoded from `latents / scaling_factor` to `x / 2 + 0.5` clamped to
//! [0, 1]. The empty prompt is encoded once at load; the text encoder is not kept.

use std::path::Path;

use burn::tensor::{DType, Int, Tensor, TensorData, backend::Backend};

use super::clip::{ClipText, SpecialTokens, empty_prompt};
use super::noise::Noise;
use super::sampler::{Sampler, SchedulerFile, stacked_noise};
use super::unet::{Unet, UnetConfig};
use super::vae::{AutoencoderKl, VaeConfig};
use super::weights::WeightsError;
use super::{OnStep, Stopped};

/// How the delight model is run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DelightSettings {
    pub steps: usize,
    /// Text guidance; guidance runs only above 1 (with `image_guidance_scale` ≥ 1).
    pub guidance_scale: f32,
    pub image_guidance_scale: f32,
}

impl DelightSettings {
    /// hy3dgen 2.0.2's `Light_Shadow_Remover`.
    pub const REFERENCE: DelightSettings = DelightSettings {
        steps: 50,
        guidance_scale: 1.0,
        image_guidance_scale: 1.5,
    };

    /// diffusers' `do_classifier_free_guidance` for InstructPix2Pix.
    pub fn guided(&self) -> bool {
        self.guidance_scale > 1.0 && self.image_guidance_scale >= 1.0
    }
}

/// The delight model's UNet and VAE, with the empty prompt's encoding.
#[derive(Debug)]
pub struct DelightModel<B: Backend> {
    pub unet: Unet<B>,
    pub unet_config: UnetConfig,
    pub vae: AutoencoderKl<B>,
    pub vae_config: VaeConfig,
    /// The empty prompt's CLIP states `[1, tokens, context]`.
    prompt: Tensor<B, 3>,
    pub scheduler: SchedulerFile,
}

fn config_error(path: &Path, message: impl Into<String>) -> WeightsError {
    WeightsError::Config {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

impl<B: Backend> DelightModel<B> {
    /// Loads a delight folder (`unet/`, `vae/`, `text_encoder/`, `tokenizer/`, `scheduler/`, as
    /// diffusers saves an InstructPix2Pix pipeline), strictly; the UNet must take the VAE's
    /// latents twice and attend to the text encoder's width.
    pub fn load(folder: &Path, device: &B::Device, dtype: DType) -> Result<Self, WeightsError> {
        let (unet, unet_config) = Unet::load(&folder.join("unet"), device, dtype)?;
        let (vae, vae_config) = AutoencoderKl::load(&folder.join("vae"), device, dtype)?;
        let (clip, clip_config) = ClipText::<B>::load(&folder.join("text_encoder"), device, dtype)?;
        let tokens = SpecialTokens::read(&folder.join("tokenizer"))
            .map_err(|m| config_error(&folder.join("tokenizer"), m))?;
        let scheduler = SchedulerFile::read(&folder.join("scheduler"))
            .map_err(|m| config_error(&folder.join("scheduler"), m))?;
        if unet_config.in_channels != 2 * vae_config.latent_channels
            || unet_config.out_channels != vae_config.latent_channels
        {
            return Err(config_error(
                &folder.join("unet/config.json"),
                format!(
                    "an InstructPix2Pix UNet takes 2 × {} latent channels and returns {}; this one takes {} and returns {}",
                    vae_config.latent_channels,
                    vae_config.latent_channels,
                    unet_config.in_channels,
                    unet_config.out_channels
                ),
            ));
        }
        if unet_config.cross_attention_dim != clip_config.hidden_size {
            return Err(config_error(
                &folder.join("unet/config.json"),
                format!(
                    "cross_attention_dim {} differs from the text encoder's width {}",
                    unet_config.cross_attention_dim, clip_config.hidden_size
                ),
            ));
        }
        let ids: Vec<i32> = empty_prompt(tokens, clip_config.max_position_embeddings)
            .into_iter()
            .map(|i| i as i32)
            .collect();
        let len = ids.len();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [1, len]), device);
        let prompt = clip.forward(ids);
        Ok(DelightModel {
            unet,
            unet_config,
            vae,
            vae_config,
            prompt,
            scheduler,
        })
    }

    /// The delit images of `images` `[N, 3, H, W]` (RGB in [0, 1], sides divisible by the VAE's
    /// downsampling), in [0, 1]; `noises` holds one source per image.
    pub fn run(
        &self,
        images: Tensor<B, 4>,
        settings: &DelightSettings,
        noises: &mut [&mut dyn Noise],
        on_step: OnStep<'_>,
    ) -> Result<Tensor<B, 4>, Stopped> {
        let [n, _, h, w] = images.dims();
        let device = images.device();
        let f = self.vae_config.downsampling();
        let z = self.vae_config.latent_channels;
        let image_latents = self
            .vae
            .encode(images.mul_scalar(2.0).sub_scalar(1.0))
            .mode();
        let sampler = Sampler::new(&self.scheduler, settings.steps, None);
        let guided = settings.guided();
        let copies = if guided { 3 } else { 1 };
        // Batch order: text-conditioned, image-conditioned, unconditioned (diffusers' chunks).
        let condition = if guided {
            Tensor::cat(
                vec![
                    image_latents.clone(),
                    image_latents.clone(),
                    image_latents.zeros_like(),
                ],
                0,
            )
        } else {
            image_latents
        };
        let rows = n * copies;
        let [_, tokens, width] = self.prompt.dims();
        // The text branch and both unconditional ones encode the same empty prompt.
        let context = self.prompt.clone().expand([rows, tokens, width]);
        let mut latents = stacked_noise::<B>(noises, [n, z, h / f, w / f], &device)
            .mul_scalar(sampler.init_noise_sigma());
        for i in 0..sampler.len() {
            let scaled = latents.clone().div_scalar(sampler.input_divisor(i));
            let scaled = if guided {
                Tensor::cat(vec![scaled.clone(), scaled.clone(), scaled], 0)
            } else {
                scaled
            };
            let input = Tensor::cat(vec![scaled, condition.clone()], 1);
            let t = Tensor::full([rows], sampler.timestep(i), &device);
            let out = self.unet.forward(input, t, context.clone());
            let prediction = if guided {
                let mut parts = out.chunk(3, 0).into_iter();
                let (Some(text), Some(image), Some(uncond)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    unreachable!("three chunks of 3n rows")
                };
                uncond.clone()
                    + (text - image.clone()).mul_scalar(settings.guidance_scale)
                    + (image - uncond).mul_scalar(settings.image_guidance_scale)
            } else {
                out
            };
            latents = sampler.step(i, prediction, latents, noises);
            if !on_step(i + 1, sampler.len()) {
                return Err(Stopped);
            }
        }
        let decoded = self
            .vae
            .decode(latents.div_scalar(self.vae_config.scaling_factor));
        Ok(decoded.mul_scalar(0.5).add_scalar(0.5).clamp(0.0, 1.0))
    }
}
