//! The two diffusers schedulers against fixtures diffusers itself made
//! (`pipeline/tests/reference/scheduler_fixtures.py`; `pipeline/tests/fixtures/schedulers/`):
//! schedules, timesteps, σ and the boundary coefficients, every step of a denoising loop fed the
//! reference's model outputs and noise draws, and a whole loop run with our own model evaluation.
//!
//! torch's f32 `sqrt` on the CPU is off by an ulp for about one input in six, so values are
//! compared within a few ulps and trajectories normwise within 1e-5 rather than bit for bit.

use std::path::{Path, PathBuf};

use burn::tensor::{Tensor, TensorData};
use orfeas_pipeline::diffusion::{EulerAncestral, Lcm, SchedulerConfig, alphas_cumprod};
use orfeas_pipeline::tensor::CpuBackend as B;
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schedulers")
}

fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(dir().join(name)).expect("fixture");
    serde_json::from_str(&text).expect("json")
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

fn config(case: &Value) -> SchedulerConfig {
    SchedulerConfig::from_json(&case["config"].to_string()).expect("config")
}

fn close(ours: f32, theirs: f32, rel: f32, what: &str) {
    let scale = theirs.abs().max(1e-12);
    assert!(
        (ours - theirs).abs() <= rel * scale,
        "{what}: {ours} vs {theirs}"
    );
}

fn tensor(values: Vec<f32>, shape: [usize; 4]) -> Tensor<B, 4> {
    Tensor::from_data(TensorData::new(values, shape), &Default::default())
}

fn values(t: Tensor<B, 4>) -> Vec<f32> {
    t.into_data().to_vec::<f32>().expect("f32")
}

/// ‖a − b‖ / ‖b‖.
fn normwise(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(x - y).powi(2))
        .sum::<f64>()
        .sqrt();
    let den: f64 = b.iter().map(|y| f64::from(*y).powi(2)).sum::<f64>().sqrt();
    num / den.max(1e-30)
}

fn shape(case: &Value) -> [usize; 4] {
    let s: Vec<usize> = case["shape"]
        .as_array()
        .expect("shape")
        .iter()
        .map(|v| v.as_u64().expect("dim") as usize)
        .collect();
    [s[0], s[1], s[2], s[3]]
}

/// The fixtures' stand-in model: `x · 0.1 + (t / 1000) · 0.01` on the scaled input, in f32.
fn model(x: &[f32], t: f32) -> Vec<f32> {
    x.iter().map(|v| v * 0.1 + (t / 1000.0) * 0.01).collect()
}

#[test]
fn noise_schedules_match_diffusers() {
    let s = fixture("schedules.json");
    for (name, case) in s["schedules"].as_object().expect("schedules") {
        let mut cfg = SchedulerConfig::from_json(&case["config"].to_string()).expect("config");
        cfg.rescale_betas_zero_snr = name.ends_with("zsnr");
        let ours = alphas_cumprod(&cfg);
        let theirs = floats(&case["alphas_cumprod"]);
        assert_eq!(ours.len(), theirs.len());
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            // The zero-SNR schedule ends in exactly 0.
            if *b == 0.0 {
                assert!(a.abs() < 1e-9, "{name}[{i}]: {a}");
                continue;
            }
            close(*a, *b, 1e-5, &format!("{name} alphas_cumprod[{i}]"));
        }
    }
}

const EULER: [&str; 6] = [
    "euler_a_trailing30_vpred_zsnr.json",
    "euler_a_trailing30_vpred.json",
    "euler_a_trailing30_eps.json",
    "euler_a_trailing30_vpred_linear.json",
    "euler_a_leading50_eps.json",
    "euler_a_linspace50_eps.json",
];

#[test]
fn euler_ancestral_reproduces_diffusers() {
    for name in EULER {
        let case = fixture(name);
        let cfg = config(&case);
        let timesteps = floats(&case["timesteps"]);
        let sched = EulerAncestral::new(&cfg, timesteps.len());
        assert_eq!(sched.timesteps, timesteps, "{name}: timesteps");
        for (i, (a, b)) in sched.sigmas.iter().zip(floats(&case["sigmas"])).enumerate() {
            if b == 0.0 {
                assert_eq!(*a, 0.0);
            } else {
                close(*a, b, 2e-6, &format!("{name} sigma[{i}]"));
            }
        }
        close(
            sched.init_noise_sigma,
            case["init_noise_sigma"].as_f64().expect("sigma") as f32,
            2e-6,
            name,
        );
        let divisors = floats(&case["scale_model_input_divisor"]);
        let ups = floats(&case["sigma_up"]);
        let downs = floats(&case["sigma_down"]);
        for i in 0..sched.len() {
            close(
                sched.input_divisor(i),
                divisors[i],
                2e-6,
                &format!("{name} divisor[{i}]"),
            );
            let (up, down) = sched.ancestral(i);
            if ups[i] == 0.0 {
                assert!(up.abs() < 1e-6, "{name} up[{i}]: {up}");
            } else {
                close(up, ups[i], 1e-5, &format!("{name} sigma_up[{i}]"));
            }
            if downs[i] != 0.0 {
                close(down, downs[i], 1e-5, &format!("{name} sigma_down[{i}]"));
            }
        }
        run_loop(
            name,
            &case,
            |i, out, sample, noise| {
                values(
                    sched
                        .step(i, out, sample, noise.expect("a draw every step"))
                        .prev_sample,
                )
            },
            |i, latents| latents.iter().map(|v| v / sched.input_divisor(i)).collect(),
            sched.init_noise_sigma,
        );
    }
}

const LCM: [&str; 6] = [
    "lcm_4_eps.json",
    "lcm_4_eps_linear.json",
    "lcm_5_eps.json",
    "lcm_8_eps.json",
    "lcm_turbo10_eps.json",
    "lcm_turbo10_vpred_zsnr.json",
];

#[test]
fn lcm_reproduces_diffusers() {
    for name in LCM {
        let case = fixture(name);
        let cfg = config(&case);
        let timesteps: Vec<usize> = case["timesteps"]
            .as_array()
            .expect("timesteps")
            .iter()
            .map(|t| t.as_f64().expect("t") as usize)
            .collect();
        let sched = if name.contains("turbo") {
            // Hunyuan3D-Paint Turbo passes its own timesteps.
            Lcm::with_timesteps(&cfg, timesteps.clone())
        } else {
            Lcm::new(&cfg, timesteps.len())
        };
        assert_eq!(sched.timesteps, timesteps, "{name}: timesteps");
        let (a_t, a_prev) = (
            floats(&case["alpha_prod_t"]),
            floats(&case["alpha_prod_t_prev"]),
        );
        let (c_skip, c_out) = (floats(&case["c_skip"]), floats(&case["c_out"]));
        for i in 0..sched.len() {
            let (a, p) = sched.alphas(i);
            close(a, a_t[i], 1e-5, &format!("{name} alpha_prod_t[{i}]"));
            close(
                p,
                a_prev[i],
                1e-5,
                &format!("{name} alpha_prod_t_prev[{i}]"),
            );
            let (s, o) = sched.boundary(i);
            close(s, c_skip[i], 1e-6, &format!("{name} c_skip[{i}]"));
            close(o, c_out[i], 1e-6, &format!("{name} c_out[{i}]"));
        }
        run_loop(
            name,
            &case,
            |i, out, sample, noise| values(sched.step(i, out, sample, noise).prev_sample),
            |_, latents| latents.to_vec(),
            1.0,
        );
    }
}

/// Checks every step fed the reference's inputs, then a whole loop with our own model.
fn run_loop(
    name: &str,
    case: &Value,
    step: impl Fn(usize, Tensor<B, 4>, Tensor<B, 4>, Option<Tensor<B, 4>>) -> Vec<f32>,
    scale_input: impl Fn(usize, &[f32]) -> Vec<f32>,
    init_noise_sigma: f32,
) {
    let shape = shape(case);
    let initial_noise = floats(&case["initial_noise"]);
    let initial = floats(&case["initial_latents"]);
    let scaled: Vec<f32> = initial_noise.iter().map(|v| v * init_noise_sigma).collect();
    assert!(
        normwise(&scaled, &initial) < 1e-6,
        "{name}: initial latents"
    );
    let steps = case["steps"].as_array().expect("steps");
    let noise = |s: &Value| (!s["noise"].is_null()).then(|| floats(&s["noise"]));

    // Step by step on the reference's own inputs.
    let mut sample = initial.clone();
    for (i, s) in steps.iter().enumerate() {
        let out = floats(&s["model_output"]);
        let t = s["t"].as_f64().expect("t") as f32;
        let ours_out = model(&scale_input(i, &sample), t);
        assert!(
            normwise(&ours_out, &out) < 1e-5,
            "{name} step {i}: model input"
        );
        let next = step(
            i,
            tensor(out, shape),
            tensor(sample.clone(), shape),
            noise(s).map(|n| tensor(n, shape)),
        );
        let theirs = floats(&s["prev_sample"]);
        let err = normwise(&next, &theirs);
        assert!(err < 1e-5, "{name} step {i}: prev_sample off by {err:e}");
        sample = theirs;
    }

    // The whole loop on our own outputs.
    let mut sample = initial;
    for (i, s) in steps.iter().enumerate() {
        let t = s["t"].as_f64().expect("t") as f32;
        let out = model(&scale_input(i, &sample), t);
        sample = step(
            i,
            tensor(out, shape),
            tensor(sample, shape),
            noise(s).map(|n| tensor(n, shape)),
        );
    }
    let err = normwise(&sample, &floats(&case["final"]));
    assert!(err < 1e-4, "{name}: final sample off by {err:e}");
}
