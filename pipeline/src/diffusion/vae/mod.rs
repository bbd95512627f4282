//! Stable Diffusion's VAE (diffusers `AutoencoderKL`) on burn: the encoder that Hunyuan3D-Paint
//! runs on its reference and conditioning images, and the decoder that turns the denoised
//! latents of its views back into images. Loaded from a diffusers folder (`vae/config.json` and
//! `diffusion_pytorch_model[.fp16].safetensors`, or the pickled `diffusion_pytorch_model.bin`)
//! strictly: a missing, unexpected or misshapen tensor is an error naming it, with checkpoint
//! keys equal to the module paths. Checkpoints converted before diffusers 0.15 (Stable
//! Diffusion 2.x's among them) name the mid block's attention `query`, `key`, `value`,
//! `proj_attn`; those names are read too ([`LEGACY_ATTENTION`]).

mod blocks;
mod coder;
mod config;

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::Module;
use burn::tensor::{DType, Tensor, backend::Backend};

pub use crate::diffusion::layers::Conv2d;
pub use coder::{Decoder, Encoder};
pub use config::VaeConfig;

use super::weights::{DIFFUSERS, WeightsError, open_folder};
use crate::shape::hunyuan3d::weights::{KeyRemap, manifest};

/// The attention names of checkpoints converted before diffusers 0.15.
pub const LEGACY_ATTENTION: KeyRemap = KeyRemap(&[
    ("to_q", "query"),
    ("to_k", "key"),
    ("to_v", "value"),
    ("to_out.0", "proj_attn"),
]);

/// The diagonal Gaussian over latents that the encoder outputs.
#[derive(Debug, Clone)]
pub struct LatentDist<B: Backend> {
    pub mean: Tensor<B, 4>,
    /// Clamped to [−30, 20], as diffusers does.
    pub logvar: Tensor<B, 4>,
}

impl<B: Backend> LatentDist<B> {
    /// The encoder's moments `[B, 2z, h, w]`: the mean, then the log-variance.
    pub fn from_moments(moments: Tensor<B, 4>) -> Self {
        let [b, c, h, w] = moments.dims();
        let z = c / 2;
        let mean = moments.clone().slice([0..b, 0..z, 0..h, 0..w]);
        let logvar = moments.slice([0..b, z..c, 0..h, 0..w]).clamp(-30.0, 20.0);
        LatentDist { mean, logvar }
    }

    pub fn mode(&self) -> Tensor<B, 4> {
        self.mean.clone()
    }

    pub fn std(&self) -> Tensor<B, 4> {
        self.logvar.clone().mul_scalar(0.5).exp()
    }

    /// A draw, given the standard-normal noise (the caller owns the random stream).
    pub fn sample(&self, noise: Tensor<B, 4>) -> Tensor<B, 4> {
        self.mean.clone() + self.std() * noise
    }
}

#[derive(Module, Debug)]
pub struct AutoencoderKl<B: Backend> {
    pub encoder: Encoder<B>,
    pub decoder: Decoder<B>,
    pub quant_conv: Option<Conv2d<B>>,
    pub post_quant_conv: Option<Conv2d<B>>,
}

impl<B: Backend> AutoencoderKl<B> {
    /// The module tree of a configuration, parameters not yet materialised.
    pub fn new(cfg: &VaeConfig, device: &B::Device) -> Self {
        let z = cfg.latent_channels;
        Self {
            encoder: Encoder::new(cfg, device),
            decoder: Decoder::new(cfg, device),
            quant_conv: cfg
                .use_quant_conv
                .then(|| Conv2d::new(2 * z, 2 * z, 1, 1, 0, device)),
            post_quant_conv: cfg
                .use_post_quant_conv
                .then(|| Conv2d::new(z, z, 1, 1, 0, device)),
        }
    }

    /// Loads a diffusers VAE folder onto `device`, converting weights to `dtype`.
    pub fn load(
        folder: &Path,
        device: &B::Device,
        dtype: DType,
    ) -> Result<(Self, VaeConfig), WeightsError> {
        let (text, checkpoint) = open_folder(folder, DIFFUSERS)?;
        let cfg = VaeConfig::from_json(&text).map_err(|message| WeightsError::Config {
            path: folder.join("config.json"),
            message,
        })?;
        let legacy = checkpoint
            .keys_with_prefix("encoder.mid_block.attentions.0.query.")
            .next()
            .is_some();
        let remap = if legacy {
            LEGACY_ATTENTION
        } else {
            KeyRemap::NONE
        };
        let module = checkpoint.load(Self::new(&cfg, device), "", remap, dtype)?;
        Ok((module, cfg))
    }

    /// The checkpoint keys and shapes this configuration expects.
    pub fn manifest(cfg: &VaeConfig, device: &B::Device) -> BTreeMap<String, Vec<usize>> {
        manifest(&Self::new(cfg, device), "", KeyRemap::NONE)
    }

    /// Images `[B, 3, H, W]` in [−1, 1] → the latent distribution `[B, z, H/f, W/f]`.
    pub fn encode(&self, x: Tensor<B, 4>) -> LatentDist<B> {
        let mut moments = self.encoder.forward(x);
        if let Some(q) = &self.quant_conv {
            moments = q.forward(moments);
        }
        LatentDist::from_moments(moments)
    }

    /// Latents (unscaled) → images in roughly [−1, 1].
    pub fn decode(&self, z: Tensor<B, 4>) -> Tensor<B, 4> {
        let z = match &self.post_quant_conv {
            Some(p) => p.forward(z),
            None => z,
        };
        self.decoder.forward(z)
    }
}
