//! Hunyuan3D-Paint's multiview denoiser (hy3dgen 2.0.2 `UNet2p5DConditionModel`): two UNets of
//! one Stable Diffusion 2.x configuration, loaded from one `unet/` folder.
//!
//! - The **reference UNet** (`unet_dual.*`, the wrapped UNet as its config describes it) runs once
//!   on the reference image's latents at `t = 0` with the learned reference text, and records the
//!   first layer norm of every transformer block's input ([`Views::Record`]). Its own output is
//!   not used. The reference runs it again at every denoising step with the same inputs; one
//!   pass per image gives the same features.
//! - The **multiview UNet** (`unet.*`) denoises all views of a sample together: `conv_in` takes
//!   12 channels (noisy latent, normal-map latent, position-map latent), each view's camera id
//!   selects an embedding added to the time embedding, its cross-attention context is the learned
//!   text (zeros for classifier-free guidance's unconditional half), and every transformer block
//!   attends to the reference features and across the views ([`Views::Attend`]).
//!
//! Checkpoint keys are the module paths with the reference's `.transformer.` inserted after
//! `transformer_blocks.0` (its wrapper block holds the original as `transformer`), kept explicit
//! in [`MULTIVIEW_REMAP`].
//!
//! Verified against the reference's code (`pipeline/tests/paint_unet.rs`, fixtures written by
//! hy3dgen 2.0.2's `UNet2p5DConditionModel` on a tiny seeded model): the module tree and key names
//! of both UNets, the recorded features, the camera embedding (`camera id + 5`), the order of the
//! block's five residual branches and the output, with and without guidance. Assumed, because the
//! released folder (`hunyuan3d-paint-v2-0/unet/`) cannot be downloaded here: that its
//! `config.json` describes an SD 2.x UNet (the reference hard-codes the learned text as
//! `[1, 77, 1024]` and the camera embedding as 1280 wide, which only SD 2.x's widths fit; this
//! port takes both widths from the config) and that the wrapped UNet has no class embedding of
//! its own. The strict load refuses a checkpoint that disagrees, naming the tensor.

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::{DType, Int, Tensor, backend::Backend};

use super::unet::{Conditioning, MultiviewShape, Unet, UnetConfig, Views};
use super::weights::{DIFFUSERS, WeightsError, open_folder};
use crate::shape::hunyuan3d::ModelError;
use crate::shape::hunyuan3d::weights::{KeyRemap, manifest};
use crate::texture::camera::PaintView;

/// Our module paths → the reference's checkpoint keys.
pub const MULTIVIEW_REMAP: KeyRemap = KeyRemap(&[
    ("net_0", "net.0"),
    ("net_2", "net.2"),
    (
        "transformer_blocks.0.norm1",
        "transformer_blocks.0.transformer.norm1",
    ),
    (
        "transformer_blocks.0.attn1",
        "transformer_blocks.0.transformer.attn1",
    ),
    (
        "transformer_blocks.0.norm2",
        "transformer_blocks.0.transformer.norm2",
    ),
    (
        "transformer_blocks.0.attn2",
        "transformer_blocks.0.transformer.attn2",
    ),
    (
        "transformer_blocks.0.norm3",
        "transformer_blocks.0.transformer.norm3",
    ),
    (
        "transformer_blocks.0.ff",
        "transformer_blocks.0.transformer.ff",
    ),
]);

const MAIN: &str = "unet.";
const REFERENCE: &str = "unet_dual.";

/// The first camera-embedding row of the generated views (`max_num_ref_image`); rows before it
/// belong to reference images.
pub const FIRST_VIEW_CAMERA: u32 = 5;

/// The multiview model's camera id of a view (`camera_info` in hy3dgen's `pipelines.py`): twelve
/// azimuth bins of 30° per elevation ring −20°, 0°, 20°, and four bins at ±90°. `None` for an
/// elevation the model was not trained on, or a fractional angle.
pub fn camera_id(view: &PaintView) -> Option<u32> {
    let (azimuth, elevation) = (view.azimuth, view.elevation);
    if azimuth.fract() != 0.0 || elevation.fract() != 0.0 {
        return None;
    }
    let (per_bin, first) = match elevation as i32 {
        -20 => (1, 0),
        0 => (1, 12),
        20 => (1, 24),
        -90 => (3, 36),
        90 => (3, 40),
        _ => return None,
    };
    // Python's floor division and modulo.
    let bin = ((azimuth as i32).div_euclid(30) + 9).rem_euclid(12);
    Some((bin / per_bin + first) as u32)
}

/// One evaluation of the multiview denoiser: `samples` samples of `views` views each, rows in
/// sample-major order.
#[derive(Debug, Clone)]
pub struct MultiviewStep<B: Backend> {
    /// Noisy latents `[samples · views, 4, h, w]` (already scaled for the scheduler's input).
    pub latents: Tensor<B, 4>,
    /// The normal maps' and position maps' latents, same shape.
    pub normals: Tensor<B, 4>,
    pub positions: Tensor<B, 4>,
    pub views: usize,
    /// Each row's camera id ([`camera_id`]).
    pub cameras: Tensor<B, 1, Int>,
    /// The timestep, the same for every row.
    pub timestep: f32,
    /// Cross-attention context per sample `[samples, 77, context]`: the learned text, or zeros for
    /// the unconditional half of classifier-free guidance.
    pub text: Tensor<B, 3>,
    /// How much each sample listens to its reference image `[samples]` (0 for the unconditional
    /// half).
    pub ref_scale: Tensor<B, 1>,
}

/// The two UNets of a Hunyuan3D-Paint `unet/` folder.
#[derive(Debug)]
pub struct MultiviewUnet<B: Backend> {
    pub main: Unet<B>,
    pub reference: Unet<B>,
    pub config: UnetConfig,
    /// The learned text embeddings `[1, 77, context]` of the views and of the reference.
    text_gen: Tensor<B, 3>,
    text_ref: Tensor<B, 3>,
}

/// Why a multiview step cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MultiviewError {
    #[error("{got} reference features for a UNet of {expected} transformer blocks")]
    ReferenceFeatures { expected: usize, got: usize },
    #[error("{rows} rows of latents are not whole samples of {views} views")]
    Views { rows: usize, views: usize },
}

impl<B: Backend> MultiviewUnet<B> {
    /// Loads `unet/` (its `config.json` describes the wrapped UNet; weights as
    /// `diffusion_pytorch_model.bin`, as released, or safetensors), strictly: every key of both
    /// UNets present with its shape, and no other.
    pub fn load(folder: &Path, device: &B::Device, dtype: DType) -> Result<Self, WeightsError> {
        let (text, checkpoint) = open_folder(folder, DIFFUSERS)?;
        let config = UnetConfig::from_json(&text).map_err(|message| WeightsError::Config {
            path: folder.join("config.json"),
            message,
        })?;
        if let Some(key) = checkpoint
            .keys_with_prefix("")
            .find(|k| !k.starts_with(MAIN) && !k.starts_with(REFERENCE))
        {
            return Err(ModelError::UnexpectedTensor {
                key: key.to_string(),
            }
            .into());
        }
        let main = checkpoint.load(
            Unet::multiview(&config, MultiviewShape::HUNYUAN3D_PAINT, device),
            MAIN,
            MULTIVIEW_REMAP,
            dtype,
        )?;
        let reference = checkpoint.load(
            Unet::new(&config, device),
            REFERENCE,
            MULTIVIEW_REMAP,
            dtype,
        )?;
        let (Some(text_gen), Some(text_ref)) = (
            main.learned_text_clip_gen.as_ref().map(|p| p.val()),
            main.learned_text_clip_ref.as_ref().map(|p| p.val()),
        ) else {
            return Err(ModelError::MissingTensor {
                key: format!("{MAIN}learned_text_clip_gen"),
            }
            .into());
        };
        Ok(MultiviewUnet {
            main,
            reference,
            config,
            text_gen,
            text_ref,
        })
    }

    /// The checkpoint keys and shapes a configuration expects: both UNets, as released.
    pub fn manifest(cfg: &UnetConfig, device: &B::Device) -> BTreeMap<String, Vec<usize>> {
        let mut keys = manifest(
            &Unet::<B>::multiview(cfg, MultiviewShape::HUNYUAN3D_PAINT, device),
            MAIN,
            MULTIVIEW_REMAP,
        );
        keys.extend(manifest(
            &Unet::<B>::new(cfg, device),
            REFERENCE,
            MULTIVIEW_REMAP,
        ));
        keys
    }

    /// The learned text embedding of the generated views `[1, 77, context]`.
    pub fn learned_text(&self) -> Tensor<B, 3> {
        self.text_gen.clone()
    }

    /// The reference features of `images` reference latents per sample, `latents`
    /// `[samples · images, 4, h, w]`: one tensor `[samples, images · L, C]` per transformer block,
    /// in the order the blocks run.
    pub fn reference_features(&self, latents: Tensor<B, 4>, images: usize) -> Vec<Tensor<B, 3>> {
        let [rows, ..] = latents.dims();
        let device = latents.device();
        let text = self.text_ref.clone();
        let [_, tokens, width] = text.dims();
        let mut features = Vec::new();
        let mut cond = Conditioning {
            text: text.expand([rows, tokens, width]),
            views: Views::Record {
                per_sample: images,
                features: &mut features,
            },
        };
        // The reference UNet has no camera embedding: the reference's ids change nothing.
        let _ =
            self.reference
                .forward_with(latents, Tensor::zeros([rows], &device), None, &mut cond);
        features
    }

    /// The model output (v or ε, as the scheduler's configuration says) for every row of `step`,
    /// `[samples · views, 4, h, w]`; `reference`: [`MultiviewUnet::reference_features`] of the same
    /// samples.
    pub fn forward(
        &self,
        step: MultiviewStep<B>,
        reference: &[Tensor<B, 3>],
    ) -> Result<Tensor<B, 4>, MultiviewError> {
        let expected = self.main.transformer_blocks();
        if reference.len() != expected {
            return Err(MultiviewError::ReferenceFeatures {
                expected,
                got: reference.len(),
            });
        }
        let x = Tensor::cat(vec![step.latents, step.normals, step.positions], 1);
        let [rows, ..] = x.dims();
        if step.views == 0 || rows % step.views != 0 {
            return Err(MultiviewError::Views {
                rows,
                views: step.views,
            });
        }
        let device = x.device();
        let [samples, tokens, width] = step.text.dims();
        let text = step
            .text
            .unsqueeze_dim::<4>(1)
            .expand([samples, step.views, tokens, width])
            .reshape([rows, tokens, width]);
        let mut cond = Conditioning {
            text,
            views: Views::Attend {
                per_sample: step.views,
                reference,
                ref_scale: step.ref_scale,
                next: 0,
            },
        };
        Ok(self.main.forward_with(
            x,
            Tensor::full([rows], step.timestep, &device),
            Some(step.cameras.add_scalar(FIRST_VIEW_CAMERA as i32)),
            &mut cond,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::texture::camera::PAINT_VIEWS;

    #[test]
    fn the_six_views_have_the_reference_camera_ids() {
        let ids: Vec<u32> = PAINT_VIEWS
            .iter()
            .map(|v| camera_id(v).expect("id"))
            .collect();
        assert_eq!(ids, [21, 12, 15, 18, 43, 37]);
        let off_ring = PaintView {
            azimuth: 0.0,
            elevation: 45.0,
            weight: 1.0,
        };
        assert_eq!(camera_id(&off_ring), None);
        let negative = PaintView {
            azimuth: -30.0,
            elevation: 20.0,
            weight: 1.0,
        };
        // (−1 + 9) mod 12 = 8, on the 20° ring.
        assert_eq!(camera_id(&negative), Some(32));
    }
}
