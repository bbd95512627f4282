//! Model configurations: the released checkpoints' presets here, and the parser for a
//! checkpoint folder's `config.yaml` in [`yaml`].

mod yaml;

use burn::config::Config;
use serde_yaml::Value;

use super::ModelError;

/// `Hunyuan3DDiT` (`hunyuan3ddit.py`), with the reference constructor's defaults.
#[derive(Config, Debug, PartialEq)]
pub struct DitConfig {
    #[config(default = 64)]
    pub in_channels: usize,
    #[config(default = 1536)]
    pub context_in_dim: usize,
    #[config(default = 1024)]
    pub hidden_size: usize,
    #[config(default = 4.0)]
    pub mlp_ratio: f64,
    #[config(default = 16)]
    pub num_heads: usize,
    /// Double-stream blocks.
    #[config(default = 16)]
    pub depth: usize,
    #[config(default = 32)]
    pub depth_single_blocks: usize,
    /// Only checked against the head dimension upstream (there is no positional encoding).
    #[config(default = "vec![64]")]
    pub axes_dim: Vec<usize>,
    #[config(default = 10000)]
    pub theta: usize,
    #[config(default = true)]
    pub qkv_bias: bool,
    /// Passed to the timestep embedding as both its time factor and its `max_period`.
    #[config(default = 1000.0)]
    pub time_factor: f64,
    /// Guidance-distilled models ("fast", "turbo") embed the guidance scale.
    #[config(default = false)]
    pub guidance_embed: bool,
}

impl DitConfig {
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_heads
    }

    pub fn mlp_hidden(&self) -> usize {
        (self.hidden_size as f64 * self.mlp_ratio) as usize
    }

    fn validate(&self) -> Result<(), ModelError> {
        if self.num_heads == 0 || !self.hidden_size.is_multiple_of(self.num_heads) {
            return Err(ModelError::Config(format!(
                "model: hidden_size {} is not divisible by num_heads {}",
                self.hidden_size, self.num_heads
            )));
        }
        if self.axes_dim.iter().sum::<usize>() != self.head_dim() {
            return Err(ModelError::Config(format!(
                "model: axes_dim {:?} must sum to the head dimension {}",
                self.axes_dim,
                self.head_dim()
            )));
        }
        Ok(())
    }
}

/// The DINOv2 image encoder (HF `Dinov2Config` plus the encoder's own `image_size` and
/// `use_cls_token`).
#[derive(Config, Debug, PartialEq)]
pub struct DinoConfig {
    #[config(default = 1536)]
    pub hidden_size: usize,
    #[config(default = 40)]
    pub num_hidden_layers: usize,
    #[config(default = 24)]
    pub num_attention_heads: usize,
    #[config(default = 14)]
    pub patch_size: usize,
    /// The size the position embeddings were trained for (`Dinov2Config.image_size`).
    #[config(default = 518)]
    pub image_size: usize,
    /// The size images are resized and cropped to before the encoder (`DinoImageEncoder`'s
    /// `image_size`); when it differs from `image_size` the position embeddings are interpolated.
    #[config(default = 518)]
    pub input_size: usize,
    #[config(default = 1e-6)]
    pub layer_norm_eps: f64,
    #[config(default = true)]
    pub qkv_bias: bool,
    #[config(default = 4.0)]
    pub mlp_ratio: f64,
    #[config(default = true)]
    pub use_cls_token: bool,
}

impl DinoConfig {
    /// HF `Dinov2SwiGLUFFN`'s hidden width: 2/3 of `hidden·mlp_ratio`, rounded up to a multiple of 8.
    pub fn swiglu_hidden(&self) -> usize {
        let h = (self.hidden_size as f64 * self.mlp_ratio) as usize;
        ((h as f64 * 2.0 / 3.0) as usize).div_ceil(8) * 8
    }

    /// Tokens per image: the patch grid of `input_size`, plus CLS if kept.
    pub fn tokens(&self) -> usize {
        let g = self.input_size / self.patch_size;
        g * g + usize::from(self.use_cls_token)
    }
}

/// The sampler a checkpoint was trained for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SchedulerConfig {
    /// `FlowMatchEulerDiscreteScheduler`: σ = linspace(0, 1, N) (shifted), then 1.0.
    FlowMatchEuler {
        num_train_timesteps: usize,
        shift: f64,
    },
    /// `ConsistencyFlowMatchEulerDiscreteScheduler` (turbo checkpoints).
    Consistency {
        num_train_timesteps: usize,
        pcm_timesteps: usize,
    },
}

/// What a checkpoint's sampler is, which decides its default step count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointKind {
    /// Flow matching with classifier-free guidance (`v2-0`, `v2-mini`).
    Standard,
    /// Guidance-distilled flow matching (`-fast`).
    Fast,
    /// The consistency schedule (`-turbo`).
    Turbo,
}

impl CheckpointKind {
    pub fn of(scheduler: SchedulerConfig, guidance_embed: bool) -> Self {
        match scheduler {
            SchedulerConfig::Consistency { .. } => CheckpointKind::Turbo,
            SchedulerConfig::FlowMatchEuler { .. } if guidance_embed => CheckpointKind::Fast,
            SchedulerConfig::FlowMatchEuler { .. } => CheckpointKind::Standard,
        }
    }

    /// The one default step count of each kind, used whenever a job or the CLI names none: the
    /// reference pipeline's 50 for the standard models, 30 for the distilled ones (its Gradio
    /// app's "standard" mode), 5 for turbo (see `docs/hunyuan3d.md`, sampling).
    pub const fn default_steps(self) -> u32 {
        match self {
            CheckpointKind::Standard => 50,
            CheckpointKind::Fast => 30,
            CheckpointKind::Turbo => 5,
        }
    }
}

/// `ImageProcessorV2`'s settings (the pipeline's own preprocessing implements them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageProcessorConfig {
    pub size: usize,
    pub border_ratio: f64,
}

/// Everything a checkpoint folder's `config.yaml` describes.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub dit: DitConfig,
    pub dino: DinoConfig,
    pub scheduler: SchedulerConfig,
    pub image_processor: ImageProcessorConfig,
    /// The `vae` section, read by the VAE decoder.
    pub vae: Option<Value>,
}

/// The released shape checkpoints (folder names on Hugging Face).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    V2_0,
    V2_0Fast,
    V2_0Turbo,
    V2Mini,
    V2MiniFast,
    V2MiniTurbo,
}

impl Preset {
    pub const ALL: [Preset; 6] = [
        Preset::V2_0,
        Preset::V2_0Fast,
        Preset::V2_0Turbo,
        Preset::V2Mini,
        Preset::V2MiniFast,
        Preset::V2MiniTurbo,
    ];

    /// The checkpoint folder's name.
    pub fn folder(self) -> &'static str {
        match self {
            Preset::V2_0 => "hunyuan3d-dit-v2-0",
            Preset::V2_0Fast => "hunyuan3d-dit-v2-0-fast",
            Preset::V2_0Turbo => "hunyuan3d-dit-v2-0-turbo",
            Preset::V2Mini => "hunyuan3d-dit-v2-mini",
            Preset::V2MiniFast => "hunyuan3d-dit-v2-mini-fast",
            Preset::V2MiniTurbo => "hunyuan3d-dit-v2-mini-turbo",
        }
    }

    pub fn dit(self) -> DitConfig {
        let mini = matches!(
            self,
            Preset::V2Mini | Preset::V2MiniFast | Preset::V2MiniTurbo
        );
        let distilled = !matches!(self, Preset::V2_0 | Preset::V2Mini);
        DitConfig::new()
            .with_depth(if mini { 8 } else { 16 })
            .with_depth_single_blocks(if mini { 16 } else { 32 })
            .with_guidance_embed(distilled)
    }

    /// DINOv2-giant at 518². (Two third-party ports report 1022 for an updated mini-turbo
    /// config; that is unverified, so a `config.yaml` that says so is read as written.)
    pub fn dino(self) -> DinoConfig {
        DinoConfig::new()
    }

    pub fn scheduler(self) -> SchedulerConfig {
        match self {
            Preset::V2_0Turbo | Preset::V2MiniTurbo => SchedulerConfig::Consistency {
                num_train_timesteps: 1000,
                pcm_timesteps: 100,
            },
            _ => SchedulerConfig::FlowMatchEuler {
                num_train_timesteps: 1000,
                shift: 1.0,
            },
        }
    }

    pub fn config(self) -> ModelConfig {
        ModelConfig {
            dit: self.dit(),
            dino: self.dino(),
            scheduler: self.scheduler(),
            image_processor: ImageProcessorConfig {
                size: 512,
                border_ratio: 0.15,
            },
            vae: None,
        }
    }
}
