//! Stable Diffusion 2.x's UNet on burn against diffusers' `UNet2DConditionModel`, on a tiny
//! seeded model shaped like SD 2.x (`pipeline/tests/reference/sd_unet_fixtures.py`;
//! `pipeline/tests/fixtures/sd_unet/`): the expected keys of the tiny and of the full-size
//! configuration, and the forward pass (time embedding, blocks, output) within 1e-5 for two
//! timesteps, another context length and the scalar timestep Hunyuan3D-Paint's reference UNet
//! is called with.

use std::path::{Path, PathBuf};

use burn::tensor::{DType, Tensor, TensorData};
use orfeas_pipeline::diffusion::unet::{Unet, UnetConfig};
use orfeas_pipeline::tensor::CpuBackend as B;
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sd_unet")
}

fn json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join(name)).expect("fixture"))
        .expect("json")
}

fn raw(io: &Value, name: &str) -> (Vec<f32>, Vec<usize>) {
    let entry = &io["tensors"][name];
    let shape = entry["shape"]
        .as_array()
        .expect("shape")
        .iter()
        .map(|d| d.as_u64().expect("dim") as usize)
        .collect();
    let bytes = std::fs::read(dir().join(entry["file"].as_str().expect("file"))).expect("bin");
    let values = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (values, shape)
}

fn t4(io: &Value, name: &str) -> Tensor<B, 4> {
    let (v, s) = raw(io, name);
    Tensor::from_data(
        TensorData::new(v, [s[0], s[1], s[2], s[3]]),
        &Default::default(),
    )
}

fn t3(io: &Value, name: &str) -> Tensor<B, 3> {
    let (v, s) = raw(io, name);
    Tensor::from_data(TensorData::new(v, [s[0], s[1], s[2]]), &Default::default())
}

fn t2(io: &Value, name: &str) -> Tensor<B, 2> {
    let (v, s) = raw(io, name);
    Tensor::from_data(TensorData::new(v, [s[0], s[1]]), &Default::default())
}

fn timesteps(values: &[f32]) -> Tensor<B, 1> {
    Tensor::from_floats(values, &Default::default())
}

fn max_abs<const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b).abs().max().into_scalar()
}

#[test]
fn the_loader_expects_exactly_diffusers_keys() {
    let m = json("sd2_unet_manifest.json");
    for name in ["sd2", "tiny"] {
        let entry = &m[name];
        let cfg = UnetConfig::from_json(&entry["resolved_config"].to_string()).expect(name);
        let ours: Vec<(String, Vec<usize>)> = Unet::<B>::manifest(&cfg, &Default::default())
            .into_iter()
            .collect();
        let theirs: Vec<(String, Vec<usize>)> = entry["keys"]
            .as_object()
            .expect("keys")
            .iter()
            .map(|(k, v)| {
                let s = v
                    .as_array()
                    .expect("shape")
                    .iter()
                    .map(|d| d.as_u64().expect("dim") as usize)
                    .collect();
                (k.clone(), s)
            })
            .collect();
        assert_eq!(ours.len(), theirs.len(), "{name}: tensor count");
        assert_eq!(ours, theirs, "{name}");
        let params: u64 = ours
            .iter()
            .map(|(_, s)| s.iter().product::<usize>() as u64)
            .sum();
        assert_eq!(
            params,
            entry["param_count"].as_u64().expect("count"),
            "{name}"
        );
    }
}

#[test]
fn the_forward_pass_matches_diffusers() {
    let io = json("tiny_io.json");
    let device = Default::default();
    let (unet, _) = Unet::<B>::load(&dir().join("tiny"), &device, DType::F32).expect("tiny");
    let t = timesteps(&[999.0, 261.0]);
    let err = max_abs(unet.time_proj(t.clone()), t2(&io, "t_emb"));
    assert!(err < 1e-5, "t_emb off by {err}");
    let err = max_abs(unet.embed_time(t.clone()), t2(&io, "emb"));
    assert!(err < 1e-5, "emb off by {err}");

    let sample = t4(&io, "sample");
    let context = t3(&io, "encoder_hidden_states");
    let err = max_abs(unet.conv_in.forward(sample.clone()), t4(&io, "conv_in"));
    assert!(err < 1e-5, "conv_in off by {err}");
    let out = unet.forward(sample.clone(), t.clone(), context);
    let err = max_abs(out, t4(&io, "out"));
    assert!(err < 1e-5, "output off by {err}");

    // Another context length.
    let out = unet.forward(sample.clone(), t, t3(&io, "seq5_encoder_hidden_states"));
    let err = max_abs(out, t4(&io, "seq5_out"));
    assert!(err < 1e-5, "5-token context: output off by {err}");

    // One scalar timestep for the batch, as the reference UNet is called.
    let zero = timesteps(&[0.0, 0.0]);
    let err = max_abs(unet.embed_time(zero.clone()), t2(&io, "scalar_t0_emb"));
    assert!(err < 1e-5, "t = 0: emb off by {err}");
    let out = unet.forward(sample, zero, t3(&io, "encoder_hidden_states"));
    let err = max_abs(out, t4(&io, "scalar_t0_out"));
    assert!(err < 1e-5, "t = 0: output off by {err}");

    // A 6×6 latent: 6 → 3 → 2 going down, so the way up must meet 3×3, not 4×4.
    let out = unet.forward(
        t4(&io, "odd_sample"),
        timesteps(&[999.0, 261.0]),
        t3(&io, "encoder_hidden_states"),
    );
    let err = max_abs(out, t4(&io, "odd_hw_out"));
    assert!(err < 1e-5, "6×6: output off by {err}");
}

#[test]
fn unsupported_configurations_are_refused_by_name() {
    for (json, expect) in [
        (
            r#"{"down_block_types": ["SimpleCrossAttnDownBlock2D"], "up_block_types": ["UpBlock2D"], "block_out_channels": [32], "use_linear_projection": true}"#,
            "SimpleCrossAttnDownBlock2D",
        ),
        (
            r#"{"down_block_types": ["DownBlock2D"], "up_block_types": ["UpBlock2D"], "block_out_channels": [32], "use_linear_projection": false}"#,
            "use_linear_projection",
        ),
        (
            r#"{"down_block_types": ["DownBlock2D"], "up_block_types": ["UpBlock2D"], "block_out_channels": [32], "use_linear_projection": true, "class_embed_type": "projection"}"#,
            "projection",
        ),
        (
            r#"{"down_block_types": ["DownBlock2D"], "up_block_types": ["UpBlock2D"], "block_out_channels": [30], "use_linear_projection": true, "attention_head_dim": 4}"#,
            "head count",
        ),
    ] {
        let err = UnetConfig::from_json(json).expect_err(expect);
        assert!(err.contains(expect), "{err}");
    }
}
