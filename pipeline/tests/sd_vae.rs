//! Stable Diffusion's VAE on burn against diffusers' `AutoencoderKL`, on a tiny seeded model
//! saved as diffusers saves one (`pipeline/tests/reference/sd_vae_fixtures.py`;
//! `pipeline/tests/fixtures/sd_vae/`): the expected keys of the tiny and of the full-size SD 2.x
//! configuration, strict loading from safetensors and from the PyTorch pickle, and encode/decode
//! outputs within 1e-5.

#[path = "diffusion_support/mod.rs"]
mod support;

use std::path::PathBuf;

use burn::tensor::{DType, Tensor};
use orfeas_pipeline::diffusion::vae::{AutoencoderKl, LatentDist, VaeConfig};
use orfeas_pipeline::diffusion::weights::WeightsError;
use orfeas_pipeline::tensor::CpuBackend as B;
use serde_json::Value;
use support::{Fixtures, assert_keys, max_abs};

fn fx() -> Fixtures {
    Fixtures::new("sd_vae")
}

fn dir() -> PathBuf {
    fx().path("")
}

fn json(name: &str) -> Value {
    fx().json(name)
}

fn tensor(io: &Value, name: &str) -> Tensor<B, 4> {
    fx().t4(io, name)
}

#[test]
fn the_loader_expects_exactly_diffusers_keys() {
    let m = json("sd2_vae_manifest.json");
    for (name, entry) in [("sd2", &m["sd2"]), ("tiny", &m["tiny"])] {
        let cfg = VaeConfig::from_json(&entry["resolved_config"].to_string()).expect(name);
        let ours = AutoencoderKl::<B>::manifest(&cfg, &Default::default())
            .into_iter()
            .collect();
        assert_keys(name, ours, entry);
    }
}

#[test]
fn encode_and_decode_match_diffusers_from_both_weight_formats() {
    let io = json("tiny_io.json");
    let device = Default::default();
    for folder in ["tiny", "tiny_pickle"] {
        let (vae, cfg) =
            AutoencoderKl::<B>::load(&dir().join(folder), &device, DType::F32).expect(folder);
        assert_eq!(cfg.downsampling(), 8);
        let x = tensor(&io, "x");
        let h = vae.encoder.forward(x.clone());
        assert!(max_abs(h, tensor(&io, "h")) < 1e-5, "{folder}: encoder");
        let dist = vae.encode(x);
        for (name, ours) in [
            ("mean", dist.mean.clone()),
            ("logvar", dist.logvar.clone()),
            ("std", dist.std()),
            ("mode", dist.mode()),
        ] {
            let err = max_abs(ours, tensor(&io, name));
            assert!(err < 1e-5, "{folder}: {name} off by {err}");
        }
        let sample = dist.sample(tensor(&io, "sample_eps"));
        assert!(
            max_abs(sample, tensor(&io, "sample")) < 1e-5,
            "{folder}: sample"
        );
        let z = tensor(&io, "mode");
        let mid = vae.decoder.mid(
            vae.post_quant_conv
                .as_ref()
                .expect("post quant conv")
                .forward(z.clone()),
        );
        assert!(
            max_abs(mid, tensor(&io, "dec_mid_block")) < 1e-5,
            "{folder}: decoder mid"
        );
        let decoded = vae.decode(z);
        let err = max_abs(decoded, tensor(&io, "decoded"));
        assert!(err < 1e-4, "{folder}: decoded off by {err}");
    }
}

#[test]
fn a_missing_or_misshapen_tensor_is_named() {
    let tmp = std::env::temp_dir().join(format!("orfeas-sd-vae-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("tmp");
    std::fs::copy(dir().join("tiny/config.json"), tmp.join("config.json")).expect("config");
    let device = Default::default();
    let err = AutoencoderKl::<B>::load(&tmp, &device, DType::F32).expect_err("no weights");
    assert!(matches!(err, WeightsError::NoWeights { .. }), "{err}");

    // The tiny checkpoint with one tensor dropped and one reshaped.
    let bytes = std::fs::read(dir().join("tiny/diffusion_pytorch_model.safetensors")).expect("st");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("parse");
    let mut kept = Vec::new();
    for (name, view) in st.tensors() {
        if name == "decoder.conv_out.bias" {
            continue;
        }
        let shape = if name == "encoder.conv_in.bias" {
            vec![view.shape()[0] / 2, 2]
        } else {
            view.shape().to_vec()
        };
        kept.push((name, shape, view.data().to_vec()));
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = kept
        .iter()
        .map(|(n, s, d)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d)
                    .expect("view"),
            )
        })
        .collect();
    safetensors::serialize_to_file(
        views,
        None,
        &tmp.join("diffusion_pytorch_model.safetensors"),
    )
    .expect("write");
    let err = AutoencoderKl::<B>::load(&tmp, &device, DType::F32)
        .expect_err("broken checkpoint")
        .to_string();
    assert!(err.contains("decoder.conv_out.bias"), "{err}");
    assert!(err.contains("encoder.conv_in.bias"), "{err}");

    std::fs::write(tmp.join("config.json"), r#"{"down_block_types": ["CrossAttnDownBlock2D"], "up_block_types": ["UpDecoderBlock2D"], "block_out_channels": [32]}"#)
        .expect("config");
    let err = AutoencoderKl::<B>::load(&tmp, &device, DType::F32)
        .expect_err("unsupported block")
        .to_string();
    assert!(err.contains("CrossAttnDownBlock2D"), "{err}");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn the_log_variance_is_clamped_as_diffusers_clamps_it() {
    let io = json("tiny_io.json");
    let dist = LatentDist::from_moments(tensor(&io, "clamp_moments"));
    for (name, ours) in [
        ("clamp_mean", dist.mean.clone()),
        ("clamp_logvar", dist.logvar.clone()),
        ("clamp_std", dist.std()),
    ] {
        let theirs = tensor(&io, name);
        let scale = theirs.clone().abs().max().into_scalar().max(1.0);
        let err = max_abs(ours, theirs);
        assert!(err <= 1e-6 * scale, "{name} off by {err}");
    }
}

/// A checkpoint converted before diffusers 0.15 (the attention as `query`, `key`, `value`,
/// `proj_attn`) loads into the same model.
#[test]
fn legacy_attention_names_load_too() {
    let tmp = std::env::temp_dir().join(format!("orfeas-sd-vae-legacy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("tmp");
    std::fs::copy(dir().join("tiny/config.json"), tmp.join("config.json")).expect("config");
    let bytes = std::fs::read(dir().join("tiny/diffusion_pytorch_model.safetensors")).expect("st");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("parse");
    let renamed: Vec<(String, safetensors::tensor::TensorView<'_>)> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let legacy = name
                .replace(".to_q.", ".query.")
                .replace(".to_k.", ".key.")
                .replace(".to_v.", ".value.")
                .replace(".to_out.0.", ".proj_attn.");
            (legacy, view)
        })
        .collect();
    assert!(renamed.iter().any(|(n, _)| n.contains(".proj_attn.")));
    safetensors::serialize_to_file(
        renamed,
        None,
        &tmp.join("diffusion_pytorch_model.safetensors"),
    )
    .expect("write");
    let device = Default::default();
    let (legacy, _) = AutoencoderKl::<B>::load(&tmp, &device, DType::F32).expect("legacy names");
    let (current, _) =
        AutoencoderKl::<B>::load(&dir().join("tiny"), &device, DType::F32).expect("tiny");
    let io = json("tiny_io.json");
    let z = tensor(&io, "mode");
    assert_eq!(max_abs(legacy.decode(z.clone()), current.decode(z)), 0.0);
    let _ = std::fs::remove_dir_all(&tmp);
}
