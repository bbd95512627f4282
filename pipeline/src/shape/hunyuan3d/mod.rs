//! Tencent's Hunyuan3D-2 shape model on burn: the DINOv2 conditioner, the Flux-style DiT and its
//! samplers, loaded from the released checkpoint folders (`config.yaml` +
//! `model.fp16.safetensors`). Architecture notes: `docs/hunyuan3d.md`.
//!
//! Memory for the full v2-0 checkpoint: weights 2.46 B parameters (DiT 1.11 B, DINOv2-giant
//! 1.14 B, VAE decoder 0.21 B), 4.9 GB in fp16/bf16 and 9.9 GB in fp32. Activation peak of one
//! DiT forward at B images with CFG: 2B × 4442 tokens × 1024 channels per residual stream and the
//! single blocks' 3·1024 + 4096 projection (≈ 2B × 4442 × 7168 values, 0.13 GB per image in fp16);
//! attention adds B·H·L² scores only where the backend materialises them (the CPU fallback, which
//! runs in query chunks of at most 64 M scores; CUDA uses a fused kernel).

pub mod config;
pub mod dino;
pub mod dit;
pub mod engine;
pub mod nn;
pub mod sampler;
pub mod vae;
pub mod volume;
pub mod weights;

use std::path::{Path, PathBuf};

use burn::tensor::{DType, Element, Tensor, TensorData, backend::Backend};

pub use config::CheckpointKind;
pub use config::{DinoConfig, DitConfig, ModelConfig, Preset, SchedulerConfig};
pub use dino::Dinov2;
pub use dit::{DIT_REMAP, Hunyuan3dDit};
pub use engine::{Hunyuan3dEngine, Hunyuan3dSettings, burn_dtype, load_engine};
pub use sampler::{Guidance, Step, Stopped, denoise, plan, seeded_noise, sigmas};
pub use vae::{DecoderKv, GeometryDecoder, ShapeVae, VaeConfig};
pub use volume::{VolumeOptions, decode_dense, decode_hierarchical};
pub use weights::{Checkpoint, KeyRemap, manifest};

/// Checkpoint prefixes of the three bundled modules.
pub const DIT_PREFIX: &str = "model.";
pub const DINO_PREFIX: &str = "conditioner.main_image_encoder.model.";
pub const VAE_PREFIX: &str = "vae.";

/// Everything that can go wrong building the model from a checkpoint (a start-up error: a
/// worker refuses to start rather than failing jobs).
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{path} is not a valid safetensors file: {message}")]
    Format { path: PathBuf, message: String },
    #[error("config.yaml: {0}")]
    Config(String),
    #[error("unsupported checkpoint: {0}")]
    Unsupported(String),
    #[error("checkpoint is missing tensor `{key}`")]
    MissingTensor { key: String },
    #[error("checkpoint has unexpected tensor `{key}`")]
    UnexpectedTensor { key: String },
    #[error("tensor `{key}` has shape {found:?}, the model expects {expected:?}")]
    ShapeMismatch {
        key: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("tensor `{key}` has unsupported dtype {dtype}")]
    UnsupportedDtype { key: String, dtype: String },
    #[error("{count} checkpoint problems; first: {}", first.join("; "))]
    Many { count: usize, first: Vec<String> },
    #[error("invalid input: {0}")]
    Input(String),
}

/// The conditioner, the denoiser and the VAE decoder of one checkpoint, resident on a device.
#[derive(Debug)]
pub struct ShapeModel<B: Backend> {
    pub config: ModelConfig,
    pub vae_config: VaeConfig,
    pub dino: Dinov2<B>,
    pub dit: Hunyuan3dDit<B>,
    pub vae: ShapeVae<B>,
    pub dtype: DType,
    pub device: B::Device,
    /// The opened checkpoint (memory-mapped; tests load variants of its modules from it), if
    /// the model was loaded from one.
    pub checkpoint: Option<Checkpoint>,
}

/// The weights file inside a checkpoint folder (the released name first).
pub fn weights_file(dir: &Path) -> Result<PathBuf, ModelError> {
    for name in ["model.fp16.safetensors", "model.safetensors"] {
        let p = dir.join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(ModelError::Io {
        path: dir.join("model.fp16.safetensors"),
        message: "no model.fp16.safetensors or model.safetensors in the checkpoint folder".into(),
    })
}

impl<B: Backend> ShapeModel<B> {
    /// Reads `dir/config.yaml`, checks that the weights file holds only the three known modules,
    /// and loads the conditioner, the DiT and the VAE decoder strictly, converted to `dtype`.
    pub fn load(dir: &Path, dtype: DType, device: &B::Device) -> Result<Self, ModelError> {
        let cfg_path = dir.join("config.yaml");
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| ModelError::Io {
            path: cfg_path.clone(),
            message: e.to_string(),
        })?;
        let config = ModelConfig::from_yaml(&text)?;
        let vae_config = VaeConfig::from_section(
            config
                .vae
                .as_ref()
                .ok_or_else(|| ModelError::Config("missing section `vae`".into()))?,
        )?;
        if vae_config.embed_dim != config.dit.in_channels {
            return Err(ModelError::Config(format!(
                "vae.embed_dim {} does not match model.in_channels {}",
                vae_config.embed_dim, config.dit.in_channels
            )));
        }
        let checkpoint = Checkpoint::open(&weights_file(dir)?)?;
        if let Some((key, _)) = checkpoint.shapes().find(|(k, _)| {
            ![DIT_PREFIX, VAE_PREFIX, "conditioner."]
                .iter()
                .any(|p| k.starts_with(p))
        }) {
            return Err(ModelError::UnexpectedTensor {
                key: key.to_string(),
            });
        }
        if let Some(key) = checkpoint
            .keys_with_prefix("conditioner.")
            .find(|k| !k.starts_with(DINO_PREFIX))
        {
            return Err(ModelError::UnexpectedTensor {
                key: key.to_string(),
            });
        }
        let dino = checkpoint.load(
            Dinov2::new(&config.dino, device),
            DINO_PREFIX,
            KeyRemap::NONE,
            dtype,
        )?;
        let dit = checkpoint.load(
            Hunyuan3dDit::new(&config.dit, device),
            DIT_PREFIX,
            DIT_REMAP,
            dtype,
        )?;
        let vae = checkpoint.load(
            ShapeVae::new(&vae_config, device),
            VAE_PREFIX,
            KeyRemap::NONE,
            dtype,
        )?;
        Ok(Self {
            config,
            vae_config,
            dino,
            dit,
            vae,
            dtype,
            device: device.clone(),
            checkpoint: Some(checkpoint),
        })
    }

    /// A model with random N(0, 0.02²) weights in the backend's default float type (benchmarks
    /// of the full-size configurations without a checkpoint). Weights materialise on first use.
    pub fn random(config: ModelConfig, vae_config: VaeConfig, device: &B::Device) -> Self {
        let dino = Dinov2::new(&config.dino, device);
        let dit = Hunyuan3dDit::new(&config.dit, device);
        let vae = ShapeVae::new(&vae_config, device);
        Self {
            dtype: B::FloatElem::dtype(),
            config,
            vae_config,
            dino,
            dit,
            vae,
            device: device.clone(),
            checkpoint: None,
        }
    }

    /// Condition tokens `[B, tokens, hidden]` for images `[B, 3, H, W]` given as row-major values
    /// in [-1, 1] (the pipeline's preprocessed images).
    pub fn encode(
        &self,
        images: &[f32],
        batch: usize,
        height: usize,
        width: usize,
    ) -> Result<Tensor<B, 3>, ModelError> {
        if images.len() != batch * 3 * height * width || batch == 0 {
            return Err(ModelError::Input(format!(
                "{} values for {batch} images of {height}x{width}",
                images.len()
            )));
        }
        let s = self.config.dino.input_size;
        let pixels = dino::transform(images, batch, height, width, s);
        let pixels =
            Tensor::<B, 4>::from_data(TensorData::new(pixels, [batch, 3, s, s]), &self.device);
        let tokens = self.dino.forward(pixels);
        Ok(if self.config.dino.use_cls_token {
            tokens
        } else {
            let [b, n, c] = tokens.dims();
            tokens.slice([0..b, 1..n, 0..c])
        })
    }
}
