//! Model configurations: the released checkpoints' presets and the parser for a checkpoint
//! folder's `config.yaml` (`{target, params}` sections, as hy3dgen's `instantiate_from_config`
//! reads them).

use burn::config::Config;
use serde::Deserialize;
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

fn section<'a>(root: &'a Value, name: &str) -> Result<&'a Value, ModelError> {
    root.get(name)
        .ok_or_else(|| ModelError::Config(format!("missing section `{name}`")))
}

fn target(section: &Value, name: &str) -> Result<String, ModelError> {
    section
        .get("target")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ModelError::Config(format!("`{name}.target` is missing")))
}

fn params<T: for<'de> Deserialize<'de>>(
    value: Option<&Value>,
    what: &str,
) -> Result<T, ModelError> {
    let value = value.cloned().unwrap_or(Value::Mapping(Default::default()));
    serde_yaml::from_value(value).map_err(|e| ModelError::Config(format!("{what}: {e}")))
}

/// The last component of a dotted Python path.
fn class_name(target: &str) -> &str {
    target.rsplit('.').next().unwrap_or(target)
}

/// `model.params`: absent keys take [`DitConfig`]'s defaults (the reference constructor's).
#[derive(Deserialize)]
struct DitParams {
    in_channels: Option<usize>,
    context_in_dim: Option<usize>,
    hidden_size: Option<usize>,
    mlp_ratio: Option<f64>,
    num_heads: Option<usize>,
    depth: Option<usize>,
    depth_single_blocks: Option<usize>,
    axes_dim: Option<Vec<usize>>,
    theta: Option<usize>,
    qkv_bias: Option<bool>,
    time_factor: Option<f64>,
    guidance_embed: Option<bool>,
    #[serde(default)]
    ckpt_path: Option<String>,
}

#[derive(Deserialize)]
struct HfDinoParams {
    #[serde(default = "d768")]
    hidden_size: usize,
    #[serde(default = "d12")]
    num_hidden_layers: usize,
    #[serde(default = "d12")]
    num_attention_heads: usize,
    #[serde(default = "d16")]
    patch_size: usize,
    #[serde(default = "d224")]
    image_size: usize,
    #[serde(default = "d3")]
    num_channels: usize,
    #[serde(default = "eps6")]
    layer_norm_eps: f64,
    #[serde(default = "yes")]
    qkv_bias: bool,
    #[serde(default = "d4")]
    mlp_ratio: f64,
    #[serde(default)]
    use_swiglu_ffn: bool,
    #[serde(default)]
    num_register_tokens: usize,
}

#[derive(Deserialize)]
struct EncoderKwargs {
    config: Option<Value>,
    version: Option<String>,
    #[serde(default = "d224")]
    image_size: usize,
    #[serde(default = "yes")]
    use_cls_token: bool,
}

#[derive(Deserialize)]
struct FlowParams {
    #[serde(default = "d1000")]
    num_train_timesteps: usize,
    #[serde(default = "one")]
    shift: f64,
    #[serde(default)]
    use_dynamic_shifting: bool,
}

#[derive(Deserialize)]
struct ConsistencyParams {
    #[serde(default = "d1000")]
    num_train_timesteps: usize,
    #[serde(default = "d50")]
    pcm_timesteps: usize,
}

#[derive(Deserialize)]
struct ProcessorParams {
    #[serde(default = "d512")]
    size: usize,
    #[serde(default = "border")]
    border_ratio: f64,
}

const fn d3() -> usize {
    3
}
const fn d12() -> usize {
    12
}
const fn d16() -> usize {
    16
}
const fn d50() -> usize {
    50
}
const fn d224() -> usize {
    224
}
const fn d512() -> usize {
    512
}
const fn d768() -> usize {
    768
}
const fn d1000() -> usize {
    1000
}
const fn d4() -> f64 {
    4.0
}
const fn one() -> f64 {
    1.0
}
const fn eps6() -> f64 {
    1e-6
}
const fn border() -> f64 {
    0.15
}
const fn yes() -> bool {
    true
}

impl ModelConfig {
    /// Parses a checkpoint folder's `config.yaml`. Sections or classes this port does not
    /// implement are errors that say which.
    pub fn from_yaml(text: &str) -> Result<Self, ModelError> {
        let root: Value =
            serde_yaml::from_str(text).map_err(|e| ModelError::Config(format!("not YAML: {e}")))?;

        let model = section(&root, "model")?;
        let t = target(model, "model")?;
        if class_name(&t) != "Hunyuan3DDiT" {
            return Err(ModelError::Unsupported(format!(
                "denoiser `{t}` (only Hunyuan3DDiT, the 2.0 family, is implemented)"
            )));
        }
        let p: DitParams = params(model.get("params"), "model.params")?;
        if p.ckpt_path.is_some() {
            return Err(ModelError::Unsupported(
                "model.params.ckpt_path (a separate denoiser checkpoint)".into(),
            ));
        }
        let d = DitConfig::new();
        let dit = DitConfig {
            in_channels: p.in_channels.unwrap_or(d.in_channels),
            context_in_dim: p.context_in_dim.unwrap_or(d.context_in_dim),
            hidden_size: p.hidden_size.unwrap_or(d.hidden_size),
            mlp_ratio: p.mlp_ratio.unwrap_or(d.mlp_ratio),
            num_heads: p.num_heads.unwrap_or(d.num_heads),
            depth: p.depth.unwrap_or(d.depth),
            depth_single_blocks: p.depth_single_blocks.unwrap_or(d.depth_single_blocks),
            axes_dim: p.axes_dim.unwrap_or(d.axes_dim),
            theta: p.theta.unwrap_or(d.theta),
            qkv_bias: p.qkv_bias.unwrap_or(d.qkv_bias),
            time_factor: p.time_factor.unwrap_or(d.time_factor),
            guidance_embed: p.guidance_embed.unwrap_or(d.guidance_embed),
        };
        dit.validate()?;

        let dino = parse_conditioner(section(&root, "conditioner")?)?;
        if dino.hidden_size != dit.context_in_dim {
            return Err(ModelError::Config(format!(
                "conditioner width {} does not match model.context_in_dim {}",
                dino.hidden_size, dit.context_in_dim
            )));
        }

        let sched = section(&root, "scheduler")?;
        let t = target(sched, "scheduler")?;
        let scheduler = match class_name(&t) {
            "FlowMatchEulerDiscreteScheduler" => {
                let p: FlowParams = params(sched.get("params"), "scheduler.params")?;
                if p.use_dynamic_shifting {
                    return Err(ModelError::Unsupported(
                        "scheduler.params.use_dynamic_shifting".into(),
                    ));
                }
                SchedulerConfig::FlowMatchEuler {
                    num_train_timesteps: p.num_train_timesteps,
                    shift: p.shift,
                }
            }
            "ConsistencyFlowMatchEulerDiscreteScheduler" => {
                let p: ConsistencyParams = params(sched.get("params"), "scheduler.params")?;
                if p.pcm_timesteps == 0 || p.num_train_timesteps < p.pcm_timesteps {
                    return Err(ModelError::Config(format!(
                        "scheduler: pcm_timesteps {} must be in 1..={}",
                        p.pcm_timesteps, p.num_train_timesteps
                    )));
                }
                SchedulerConfig::Consistency {
                    num_train_timesteps: p.num_train_timesteps,
                    pcm_timesteps: p.pcm_timesteps,
                }
            }
            _ => return Err(ModelError::Unsupported(format!("scheduler `{t}`"))),
        };

        let image_processor = match root.get("image_processor") {
            None => Preset::V2_0.config().image_processor,
            Some(section) => {
                let t = target(section, "image_processor")?;
                if class_name(&t) != "ImageProcessorV2" {
                    return Err(ModelError::Unsupported(format!(
                        "image processor `{t}` (multi-view checkpoints are not implemented)"
                    )));
                }
                let p: ProcessorParams = params(section.get("params"), "image_processor.params")?;
                ImageProcessorConfig {
                    size: p.size,
                    border_ratio: p.border_ratio,
                }
            }
        };

        Ok(Self {
            dit,
            dino,
            scheduler,
            image_processor,
            vae: root.get("vae").cloned(),
        })
    }
}

fn parse_conditioner(section: &Value) -> Result<DinoConfig, ModelError> {
    let t = target(section, "conditioner")?;
    if class_name(&t) != "SingleImageEncoder" {
        return Err(ModelError::Unsupported(format!(
            "conditioner `{t}` (only SingleImageEncoder is implemented)"
        )));
    }
    let main = section
        .get("params")
        .and_then(|p| p.get("main_image_encoder"))
        .ok_or_else(|| {
            ModelError::Config("conditioner.params.main_image_encoder is missing".into())
        })?;
    let kind = main.get("type").and_then(Value::as_str).unwrap_or("");
    if kind != "DinoImageEncoder" {
        return Err(ModelError::Unsupported(format!(
            "image encoder `{kind}` (only DinoImageEncoder; DinoImageEncoderMV is the multi-view model)"
        )));
    }
    let kwargs: EncoderKwargs =
        params(main.get("kwargs"), "conditioner main_image_encoder.kwargs")?;
    let Some(hf) = kwargs.config else {
        return Err(ModelError::Unsupported(format!(
            "image encoder loaded from `{}` instead of an inline config",
            kwargs.version.unwrap_or_default()
        )));
    };
    let hf: HfDinoParams = params(Some(&hf), "conditioner Dinov2Config")?;
    if !hf.use_swiglu_ffn {
        return Err(ModelError::Unsupported(
            "Dinov2Config.use_swiglu_ffn = false (the released encoder is DINOv2-giant with SwiGLU)".into(),
        ));
    }
    if hf.num_channels != 3 || hf.num_register_tokens != 0 {
        return Err(ModelError::Unsupported(
            "Dinov2Config with num_channels != 3 or register tokens".into(),
        ));
    }
    if hf.num_attention_heads == 0 || !hf.hidden_size.is_multiple_of(hf.num_attention_heads) {
        return Err(ModelError::Config(
            "Dinov2Config: hidden_size is not divisible by num_attention_heads".into(),
        ));
    }
    if kwargs.image_size < hf.patch_size || hf.image_size < hf.patch_size {
        return Err(ModelError::Config(
            "conditioner image_size is smaller than one patch".into(),
        ));
    }
    Ok(DinoConfig {
        hidden_size: hf.hidden_size,
        num_hidden_layers: hf.num_hidden_layers,
        num_attention_heads: hf.num_attention_heads,
        patch_size: hf.patch_size,
        image_size: hf.image_size,
        input_size: kwargs.image_size,
        layer_norm_eps: hf.layer_norm_eps,
        qkv_bias: hf.qkv_bias,
        mlp_ratio: hf.mlp_ratio,
        use_cls_token: kwargs.use_cls_token,
    })
}
