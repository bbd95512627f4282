//! Hunyuan3D-Paint's multiview UNet on burn against the reference's `UNet2p5DConditionModel`
//! (hy3dgen 2.0.2 on diffusers 0.32.2), on a tiny seeded model shaped like SD 2.x and saved as
//! the reference saves it (`pipeline/tests/reference/paint_unet_fixtures.py`;
//! `pipeline/tests/fixtures/paint_unet/`): strict loading of both UNets from the pickled
//! checkpoint, the reference UNet's recorded features, the camera embedding, and the denoiser's
//! output with classifier-free guidance's two halves and without, within 1e-5 (the float32
//! reference is 1.7e-6 from its own float64 run).

#[path = "diffusion_support/mod.rs"]
mod support;

use burn::tensor::{DType, Int, Tensor};
use orfeas_pipeline::diffusion::multiview::{MultiviewError, MultiviewStep, MultiviewUnet};
use orfeas_pipeline::diffusion::unet::Unet;
use orfeas_pipeline::diffusion::weights::WeightsError;
use orfeas_pipeline::tensor::CpuBackend as B;
use serde_json::Value;
use support::{Fixtures, max_abs};

fn fx() -> Fixtures {
    Fixtures::new("paint_unet")
}

fn load() -> MultiviewUnet<B> {
    MultiviewUnet::<B>::load(&fx().path("tiny/unet"), &Default::default(), DType::F32)
        .expect("the tiny checkpoint loads")
}

fn ints(values: Vec<i32>) -> Tensor<B, 1, Int> {
    Tensor::from_ints(values.as_slice(), &Default::default())
}

/// The step of case `case` (`cfg` or `single`) as the fixtures hold it.
fn step(fx: &Fixtures, io: &Value, case: &str, ref_scale: &[f32]) -> MultiviewStep<B> {
    let cameras = fx.int_values(io, &format!("{case}_camera_info_gen"));
    let [samples, views] = [
        io["tensors"][format!("{case}_sample")]["shape"][0]
            .as_u64()
            .expect("samples") as usize,
        io["tensors"][format!("{case}_sample")]["shape"][1]
            .as_u64()
            .expect("views") as usize,
    ];
    assert_eq!(cameras.len(), samples * views);
    let timestep: Tensor<B, 1> = fx.merged(io, &format!("{case}_timestep"));
    MultiviewStep {
        latents: fx.merged(io, &format!("{case}_sample")),
        normals: fx.merged(io, &format!("{case}_normal_imgs")),
        positions: fx.merged(io, &format!("{case}_position_imgs")),
        views,
        cameras: ints(cameras),
        timestep: timestep.into_scalar(),
        text: fx.t3(io, &format!("{case}_encoder_hidden_states")),
        ref_scale: Tensor::from_floats(ref_scale, &Default::default()),
    }
}

#[test]
fn the_reference_unet_records_every_blocks_features() {
    let fx = fx();
    let io = fx.json("tiny_io.json");
    let unet = load();
    let order: Vec<&str> = io["ref_layer_order"]
        .as_array()
        .expect("order")
        .iter()
        .map(|v| v.as_str().expect("name"))
        .collect();
    let features = unet.reference_features(fx.merged(&io, "cfg_ref_latents"), 1);
    assert_eq!(features.len(), order.len());
    assert_eq!(unet.main.transformer_blocks(), order.len());
    for (ours, name) in features.into_iter().zip(&order) {
        let err = max_abs(ours, fx.t3(&io, &format!("cfg_ref_{name}")));
        assert!(err < 2e-5, "{name}: off by {err}");
    }
    // The reference UNet alone is a plain UNet with the reference's keys.
    let out = unet.reference.forward(
        fx.t4(&io, "dual_sample"),
        Tensor::zeros([1], &Default::default()),
        fx.t3(&io, "dual_encoder_hidden_states"),
    );
    let err = max_abs(out, fx.t4(&io, "dual_out"));
    assert!(err < 1e-5, "reference UNet output off by {err}");
}

#[test]
fn the_denoiser_matches_the_reference_with_guidance() {
    let fx = fx();
    let io = fx.json("tiny_io.json");
    let unet = load();
    let step = step(&fx, &io, "cfg", &[0.0, 1.0]);
    // The camera embedding: row `camera id + 5` added to the time embedding.
    let rows = step.cameras.dims()[0];
    let emb = unet.main.embed(
        Tensor::full([rows], step.timestep, &Default::default()),
        Some(step.cameras.clone().add_scalar(5)),
    );
    let err = max_abs(emb, fx.t2(&io, "cfg_emb"));
    assert!(err < 1e-5, "emb off by {err}");

    let features = unet.reference_features(fx.merged(&io, "cfg_ref_latents"), 1);
    let out = unet.forward(step, &features).expect("forward");
    let err = max_abs(out, fx.merged(&io, "cfg_out"));
    assert!(err < 1e-5, "output off by {err}");
}

#[test]
fn the_denoiser_matches_the_reference_without_guidance() {
    let fx = fx();
    let io = fx.json("tiny_io.json");
    let unet = load();
    let step = step(&fx, &io, "single", &[1.0]);
    let features = unet.reference_features(fx.merged(&io, "single_ref_latents"), 1);
    let out = unet.forward(step, &features).expect("forward");
    let err = max_abs(out, fx.merged(&io, "single_out"));
    assert!(err < 1e-5, "output off by {err}");
}

#[test]
fn a_step_without_its_reference_features_is_refused() {
    let fx = fx();
    let io = fx.json("tiny_io.json");
    let unet = load();
    let step = step(&fx, &io, "single", &[1.0]);
    let mut features = unet.reference_features(fx.merged(&io, "single_ref_latents"), 1);
    features.pop();
    match unet.forward(step, &features) {
        Err(MultiviewError::ReferenceFeatures { expected, got }) => {
            assert_eq!((expected, got), (11, 10));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_plain_unet_folder_is_not_a_multiview_checkpoint() {
    // SD 2.x's own UNet keys carry neither `unet.` nor `unet_dual.`: the first is named.
    let plain = Fixtures::new("sd_unet").path("tiny");
    match MultiviewUnet::<B>::load(&plain, &Default::default(), DType::F32) {
        Err(WeightsError::Weights(e)) => {
            let text = e.to_string();
            assert!(
                text.contains("conv_in") || text.contains("down_blocks"),
                "{text}"
            );
        }
        other => panic!("expected a key error, got {:?}", other.map(|_| ())),
    }
    // And a multiview checkpoint is not a plain UNet.
    let err = Unet::<B>::load(&fx().path("tiny/unet"), &Default::default(), DType::F32)
        .map(|_| ())
        .expect_err("keys under unet. and unet_dual.");
    assert!(
        err.to_string()
            .contains("missing tensor `time_embedding.linear_1.weight`"),
        "{err}"
    );
}
