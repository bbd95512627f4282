//! The parser for a checkpoint folder's `config.yaml`: `{target, params}` sections, as
//! hy3dgen's `instantiate_from_config` reads them. Absent keys take the reference
//! constructors' defaults; classes this port does not implement are errors that say which.

use serde::Deserialize;
use serde_yaml::Value;

use super::super::ModelError;
use super::{DinoConfig, DitConfig, ImageProcessorConfig, ModelConfig, Preset, SchedulerConfig};

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
