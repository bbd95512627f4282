//! Stable Diffusion 2.x's UNet on burn against diffusers' `UNet2DConditionModel`, on a tiny
//! seeded model shaped like SD 2.x (`pipeline/tests/reference/sd_unet_fixtures.py`;
//! `pipeline/tests/fixtures/sd_unet/`): the expected keys of the tiny and of the full-size
//! configuration, and the forward pass (time embedding, blocks, output) within 1e-5 for two
//! timesteps, another context length and the scalar timestep Hunyuan3D-Paint's reference UNet
//! is called with.

#[path = "diffusion_support/mod.rs"]
mod support;

use burn::tensor::{DType, Tensor};
use orfeas_pipeline::diffusion::unet::{Unet, UnetConfig};
use orfeas_pipeline::tensor::CpuBackend as B;
use support::{Fixtures, assert_keys, max_abs};

fn fx() -> Fixtures {
    Fixtures::new("sd_unet")
}

fn timesteps(values: &[f32]) -> Tensor<B, 1> {
    Tensor::from_floats(values, &Default::default())
}

#[test]
fn the_loader_expects_exactly_diffusers_keys() {
    let m = fx().json("sd2_unet_manifest.json");
    for name in ["sd2", "tiny"] {
        let entry = &m[name];
        let cfg = UnetConfig::from_json(&entry["resolved_config"].to_string()).expect(name);
        let ours = Unet::<B>::manifest(&cfg, &Default::default())
            .into_iter()
            .collect();
        assert_keys(name, ours, entry);
    }
}

#[test]
fn the_forward_pass_matches_diffusers() {
    let fx = fx();
    let io = fx.json("tiny_io.json");
    let device = Default::default();
    let (unet, _) = Unet::<B>::load(&fx.path("tiny"), &device, DType::F32).expect("tiny");
    let t = timesteps(&[999.0, 261.0]);
    let err = max_abs(unet.time_proj(t.clone()), fx.t2(&io, "t_emb"));
    assert!(err < 1e-5, "t_emb off by {err}");
    let err = max_abs(unet.embed_time(t.clone()), fx.t2(&io, "emb"));
    assert!(err < 1e-5, "emb off by {err}");

    let sample = fx.t4(&io, "sample");
    let context = fx.t3(&io, "encoder_hidden_states");
    let err = max_abs(unet.conv_in.forward(sample.clone()), fx.t4(&io, "conv_in"));
    assert!(err < 1e-5, "conv_in off by {err}");
    let out = unet.forward(sample.clone(), t.clone(), context);
    let err = max_abs(out, fx.t4(&io, "out"));
    assert!(err < 1e-5, "output off by {err}");

    // Another context length.
    let out = unet.forward(sample.clone(), t, fx.t3(&io, "seq5_encoder_hidden_states"));
    let err = max_abs(out, fx.t4(&io, "seq5_out"));
    assert!(err < 1e-5, "5-token context: output off by {err}");

    // One scalar timestep for the batch, as the reference UNet is called.
    let zero = timesteps(&[0.0, 0.0]);
    let err = max_abs(unet.embed_time(zero.clone()), fx.t2(&io, "scalar_t0_emb"));
    assert!(err < 1e-5, "t = 0: emb off by {err}");
    let out = unet.forward(sample, zero, fx.t3(&io, "encoder_hidden_states"));
    let err = max_abs(out, fx.t4(&io, "scalar_t0_out"));
    assert!(err < 1e-5, "t = 0: output off by {err}");

    // A 6×6 latent: 6 → 3 → 2 going down, so the way up must meet 3×3, not 4×4.
    let out = unet.forward(
        fx.t4(&io, "odd_sample"),
        timesteps(&[999.0, 261.0]),
        fx.t3(&io, "encoder_hidden_states"),
    );
    let err = max_abs(out, fx.t4(&io, "odd_hw_out"));
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
