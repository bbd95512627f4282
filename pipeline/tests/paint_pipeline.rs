//! Hunyuan3D-Paint's two diffusion pipelines on burn against the reference run whole: the delight
//! model (diffusers 0.32.2 `StableDiffusionInstructPix2PixPipeline`, as hy3dgen 2.0.2's
//! `Light_Shadow_Remover` calls it) and the multiview model (hy3dgen 2.0.2 `HunyuanPaintPipeline`,
//! Euler ancestral and LCM), on tiny seeded models with the reference's random draws replayed
//! (`pipeline/tests/reference/paint_pipeline_fixtures.py`; `pipeline/tests/fixtures/paint_pipeline/`),
//! and the delight model's colour correction.
#![allow(clippy::print_stderr)]

#[path = "diffusion_support/mod.rs"]
mod support;

use burn::tensor::{DType, Tensor};
use orfeas_pipeline::diffusion::colour::recorrect;
use orfeas_pipeline::diffusion::delight::{DelightModel, DelightSettings};
use orfeas_pipeline::diffusion::multiview::MultiviewUnet;
use orfeas_pipeline::diffusion::noise::{Noise, RecordedNoise};
use orfeas_pipeline::diffusion::unet::{Unet, UnetConfig};
use orfeas_pipeline::diffusion::views::{ViewModel, ViewRequest, ViewSettings};
use orfeas_pipeline::diffusion::weights::WeightsError;
use orfeas_pipeline::tensor::CpuBackend as B;
use serde_json::Value;
use support::{Fixtures, assert_keys, max_abs};

fn fx() -> Fixtures {
    Fixtures::new("paint_pipeline")
}

/// The reference's draws of one case, in order.
fn draws(fx: &Fixtures, io: &Value, case: &str) -> RecordedNoise {
    let n = io["cases"][case]["draws"].as_u64().expect("draws") as usize;
    RecordedNoise::new((0..n).map(|k| fx.values(io, &format!("{case}_noise_{k}"))))
}

fn delight() -> DelightModel<B> {
    DelightModel::load(&fx().path("delight"), &Default::default(), DType::F32)
        .expect("the tiny delight folder loads")
}

fn settings(io: &Value, case: &str) -> DelightSettings {
    let c = &io["cases"][case];
    DelightSettings {
        steps: c["steps"].as_u64().expect("steps") as usize,
        guidance_scale: c["guidance_scale"].as_f64().expect("g") as f32,
        image_guidance_scale: c["image_guidance_scale"].as_f64().expect("ig") as f32,
    }
}

/// Outputs in [0, 1] after 6–50 steps of a random model (measured: 1.2e-6 to 4.0e-6).
const TOLERANCE: f32 = 2e-5;

#[test]
fn the_delight_loop_matches_the_reference_one_image_at_a_time_and_batched() {
    let (fx, model) = (fx(), delight());
    let io = fx.json("tiny_io.json");
    assert_eq!(settings(&io, "delight_a"), DelightSettings::REFERENCE);
    assert!(
        !DelightSettings::REFERENCE.guided(),
        "guidance_scale 1 runs unguided"
    );
    let mut outs = Vec::new();
    for case in ["delight_a", "delight_b", "delight_cfg"] {
        let mut noise = draws(&fx, &io, case);
        let mut steps = Vec::new();
        let out = model
            .run(
                fx.t4(&io, &format!("{case}_image")),
                &settings(&io, case),
                &mut [&mut noise as &mut dyn Noise],
                &mut |done, total| {
                    steps.push((done, total));
                    true
                },
            )
            .expect("runs");
        let want = fx.t4(&io, &format!("{case}_out"));
        let err = max_abs(out.clone(), want);
        eprintln!("{case}: max |Δ| {err:.2e}");
        assert!(err < TOLERANCE, "{case}: {err}");
        assert_eq!(noise.remaining(), 0, "{case}: every draw used");
        let n = settings(&io, case).steps;
        assert_eq!(steps, (1..=n).map(|d| (d, n)).collect::<Vec<_>>());
        outs.push(out);
    }
    // Two images in one batch, each with its own draws: each gets its own result.
    let (mut a, mut b) = (draws(&fx, &io, "delight_a"), draws(&fx, &io, "delight_b"));
    let batch = Tensor::cat(
        vec![fx.t4(&io, "delight_a_image"), fx.t4(&io, "delight_b_image")],
        0,
    );
    let out = model
        .run(
            batch,
            &DelightSettings::REFERENCE,
            &mut [&mut a as &mut dyn Noise, &mut b],
            &mut |_, _| true,
        )
        .expect("runs");
    let want = Tensor::cat(
        vec![fx.t4(&io, "delight_a_out"), fx.t4(&io, "delight_b_out")],
        0,
    );
    let err = max_abs(out, want);
    assert!(err < TOLERANCE, "batched: {err}");
}

#[test]
fn the_delight_loop_stops_when_told() {
    let (fx, model) = (fx(), delight());
    let io = fx.json("tiny_io.json");
    let mut noise = draws(&fx, &io, "delight_a");
    let mut calls = 0;
    let r = model.run(
        fx.t4(&io, "delight_a_image"),
        &DelightSettings::REFERENCE,
        &mut [&mut noise as &mut dyn Noise],
        &mut |done, _| {
            calls += 1;
            done < 3
        },
    );
    assert!(r.is_err());
    assert_eq!(calls, 3);
}

fn request(fx: &Fixtures, io: &Value, case: &str) -> ViewRequest<B> {
    ViewRequest {
        reference: fx.t4(io, &format!("{case}_reference")),
        normals: fx.t4(io, &format!("{case}_normals")),
        positions: fx.t4(io, &format!("{case}_positions")),
    }
}

fn cameras(io: &Value, case: &str) -> Vec<u32> {
    io["cases"][case]["cameras"]
        .as_array()
        .expect("cameras")
        .iter()
        .map(|c| c.as_u64().expect("id") as u32)
        .collect()
}

#[test]
fn the_multiview_loop_matches_the_reference_per_mesh_and_batched_over_meshes() {
    let fx = fx();
    let io = fx.json("tiny_io.json");
    let model = ViewModel::<B>::load(&fx.path("multiview"), &Default::default(), DType::F32)
        .expect("the tiny multiview folder loads");
    assert_eq!(model.default_settings(), ViewSettings::REFERENCE);
    let ids = cameras(&io, "mv_a");
    assert_eq!(ids, [21, 12, 15, 18, 43, 37]);
    for case in ["mv_a", "mv_b"] {
        let mut noise = draws(&fx, &io, case);
        let mut last = (0, 0);
        let out = model
            .run(
                &[request(&fx, &io, case)],
                &ids,
                &ViewSettings::REFERENCE,
                &mut [&mut noise as &mut dyn Noise],
                &mut |d, t| {
                    last = (d, t);
                    true
                },
            )
            .expect("runs");
        let err = max_abs(out, fx.t4(&io, &format!("{case}_out")));
        eprintln!("{case}: max |Δ| {err:.2e}");
        assert!(err < TOLERANCE, "{case}: {err}");
        assert_eq!(noise.remaining(), 0);
        assert_eq!(last, (30, 30));
    }
    let (mut a, mut b) = (draws(&fx, &io, "mv_a"), draws(&fx, &io, "mv_b"));
    let out = model
        .run(
            &[request(&fx, &io, "mv_a"), request(&fx, &io, "mv_b")],
            &ids,
            &ViewSettings::REFERENCE,
            &mut [&mut a as &mut dyn Noise, &mut b],
            &mut |_, _| true,
        )
        .expect("runs");
    let want = Tensor::cat(vec![fx.t4(&io, "mv_a_out"), fx.t4(&io, "mv_b_out")], 0);
    let err = max_abs(out, want);
    eprintln!("two meshes in one batch: max |Δ| {err:.2e}");
    assert!(err < TOLERANCE, "batched: {err}");
}

#[test]
fn the_turbo_checkpoint_runs_lcm() {
    let fx = fx();
    let io = fx.json("tiny_io.json");
    let model = ViewModel::<B>::load(&fx.path("multiview_turbo"), &Default::default(), DType::F32)
        .expect("loads");
    assert_eq!(model.default_settings().steps, 10);
    let mut noise = draws(&fx, &io, "mv_turbo");
    let settings = ViewSettings {
        steps: 6,
        guidance_scale: 2.0,
    };
    let out = model
        .run(
            &[request(&fx, &io, "mv_turbo")],
            &cameras(&io, "mv_turbo"),
            &settings,
            &mut [&mut noise as &mut dyn Noise],
            &mut |_, _| true,
        )
        .expect("runs");
    let err = max_abs(out, fx.t4(&io, "mv_turbo_out"));
    eprintln!("mv_turbo: max |Δ| {err:.2e}");
    assert!(err < TOLERANCE, "{err}");
    assert_eq!(noise.remaining(), 0, "LCM draws nothing at its last step");
}

#[test]
fn bad_requests_and_folders_are_refused_with_reasons() {
    let fx = fx();
    let io = fx.json("tiny_io.json");
    let model = ViewModel::<B>::load(&fx.path("multiview"), &Default::default(), DType::F32)
        .expect("loads");
    let mut noise = draws(&fx, &io, "mv_a");
    let e = model
        .run(
            &[request(&fx, &io, "mv_a")],
            &[21, 12, 15],
            &ViewSettings::REFERENCE,
            &mut [&mut noise as &mut dyn Noise],
            &mut |_, _| true,
        )
        .expect_err("six maps for three cameras");
    assert!(e.to_string().contains("[3, 3, H, W]"), "{e}");
    // The multiview folder is not a delight folder: its UNet's keys are the multiview model's.
    let e = DelightModel::<B>::load(&fx.path("multiview"), &Default::default(), DType::F32)
        .expect_err("a multiview folder is not a delight folder");
    assert!(
        e.to_string().contains("missing tensor `time_embedding"),
        "{e}"
    );
    // A delight folder whose UNet does not take the VAE's latents twice.
    let dir = std::env::temp_dir().join(format!("orfeas-delight-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("tmp");
    for part in ["vae", "text_encoder", "tokenizer", "scheduler"] {
        std::os::unix::fs::symlink(fx.path(&format!("delight/{part}")), dir.join(part))
            .expect("link");
    }
    std::os::unix::fs::symlink(Fixtures::new("sd_unet").path("tiny"), dir.join("unet"))
        .expect("link");
    let loaded = DelightModel::<B>::load(&dir, &Default::default(), DType::F32);
    let _ = std::fs::remove_dir_all(&dir);
    match loaded {
        Err(WeightsError::Config { message, .. }) => {
            assert!(message.contains("2 × 4 latent channels"), "{message}")
        }
        other => panic!("expected a config error, got {:?}", other.err()),
    }
}

fn pixels(fx: &Fixtures, io: &Value, name: &str, channels: usize) -> Vec<Vec<f64>> {
    fx.values(io, name)
        .chunks(channels)
        .map(|c| c.iter().map(|&v| f64::from(v)).collect())
        .collect()
}

#[test]
fn the_colour_correction_matches_the_reference_in_both_branches() {
    let fx = fx();
    let io = fx.json("tiny_io.json");
    for k in 0..2 {
        let rgb = |name: &str| -> Vec<[f64; 3]> {
            pixels(&fx, &io, &format!("recorrect_{k}_{name}"), 3)
                .into_iter()
                .map(|p| [p[0], p[1], p[2]])
                .collect()
        };
        let (src, target) = (rgb("src"), rgb("target"));
        let alpha: Vec<f64> = pixels(&fx, &io, &format!("recorrect_{k}_alpha"), 1)
            .into_iter()
            .map(|p| p[0])
            .collect();
        let want = pixels(&fx, &io, &format!("recorrect_{k}_out"), 4);
        let out = recorrect(&src, &target, &alpha);
        let kept = io["cases"][format!("recorrect_{k}")]["kept_source"]
            .as_bool()
            .expect("kept");
        assert_eq!(out == src, kept, "case {k}");
        let err = out
            .iter()
            .zip(&want)
            .flat_map(|(o, w)| (0..3).map(move |c| (o[c] - w[c]).abs()))
            .fold(0f64, f64::max);
        assert!(err < 1e-6, "case {k}: {err}");
    }
}

#[test]
fn the_loaders_expect_the_released_keys_and_shapes() {
    let m = fx().json("sd2_manifests.json");
    let config = |name: &str| {
        UnetConfig::from_json(&m[name]["resolved_config"].to_string()).expect("an SD 2.x config")
    };
    let device = Default::default();
    let multiview = MultiviewUnet::<B>::manifest(&config("multiview"), &device);
    assert_keys(
        "multiview",
        multiview.into_iter().collect(),
        &m["multiview"],
    );
    let delight = config("delight");
    assert_eq!(delight.in_channels, 8);
    let delight = Unet::<B>::manifest(&delight, &device);
    assert_keys("delight", delight.into_iter().collect(), &m["delight"]);
}
