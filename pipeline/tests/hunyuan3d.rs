//! Parity of the burn port of Hunyuan3D-2 (conditioner, DiT, samplers) with the reference
//! implementation, on tiny checkpoints with seeded random weights written by
//! `tests/reference/hunyuan3d_fixtures.py` (hy3dgen 2.0.2 classes built from the checkpoint's own
//! config.yaml), and the full-size key/shape manifests of every released configuration.

// Tests say on stderr what they measured or skipped.
#![allow(clippy::print_stderr)]
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::{DType, Tensor, TensorData, backend::Backend};
use orfeas_pipeline::shape::hunyuan3d::{
    Checkpoint, DINO_PREFIX, DIT_PREFIX, DIT_REMAP, DecoderKv, Dinov2, Guidance, Hunyuan3dDit,
    KeyRemap, ModelConfig, ModelError, Preset, SchedulerConfig, ShapeModel, ShapeVae, VAE_PREFIX,
    VaeConfig, VolumeOptions, decode_dense, decode_hierarchical, denoise, dino, manifest, plan,
    sigmas,
};
use orfeas_pipeline::tensor::CpuBackend;

type B = CpuBackend;

/// The fixtures, found through the run-time `CARGO_MANIFEST_DIR` when set (cargo sets it; the GPU
/// script sets it for the test binary it carries to another machine), else the build-time one.
fn fixtures_dir() -> PathBuf {
    let root = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    root.join("tests/fixtures/hunyuan3d")
}

struct Fixtures(Checkpoint);

impl Fixtures {
    fn open(name: &str) -> Self {
        Fixtures(Checkpoint::open(&fixtures_dir().join(name).join("fixtures.safetensors")).unwrap())
    }
    fn data(&self, key: &str) -> TensorData {
        self.0.data(key, DType::F32).unwrap()
    }
    fn values(&self, key: &str) -> Vec<f32> {
        self.data(key).to_vec().unwrap()
    }
    fn tensor<Bk: Backend, const D: usize>(&self, key: &str, device: &Bk::Device) -> Tensor<Bk, D> {
        Tensor::from_data(self.data(key), device)
    }
}

fn load<Bk: Backend>(name: &str, device: &Bk::Device) -> ShapeModel<Bk> {
    ShapeModel::load(&fixtures_dir().join(name), DType::F32, device).unwrap()
}

/// |got − want| ≤ tol · (1 + |want|) everywhere; returns the largest relative deviation seen.
fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) -> f32 {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = 0f32;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let dev = (g - w).abs() / (1.0 + w.abs());
        assert!(dev <= tol, "{what}[{i}]: got {g}, reference {w}");
        worst = worst.max(dev);
    }
    eprintln!(
        "{what}: max deviation {worst:.2e} over {} values",
        got.len()
    );
    worst
}

fn values<Bk: Backend, const D: usize>(t: Tensor<Bk, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().unwrap()
}

/// fp32 on the CPU backend.
const TOL: f32 = 1e-4;

fn image_batch(fx: &Fixtures, key: &str) -> (Vec<f32>, usize, usize, usize) {
    let image = fx.data(key);
    let [b, _, h, w] = image.shape[..] else {
        panic!("{key} is not 4-D")
    };
    (image.to_vec::<f32>().unwrap(), b, h, w)
}

fn check_dino<Bk: Backend>(device: &Bk::Device, tol: f32) {
    let model = load::<Bk>("tiny", device);
    let fx = Fixtures::open("tiny");
    let (img, b, h, w) = image_batch(&fx, "dino.image");
    let tokens = model.encode(&img, b, h, w).unwrap();
    assert_eq!(tokens.dims(), [2, 17, 24]);
    assert_close(
        "dino tokens",
        &values(tokens),
        &fx.values("dino.tokens"),
        tol,
    );

    // The same weights with the encoder's input size at 84 (6×6 patches) instead of the 56 (4×4
    // positions) the embeddings were trained for: bicubic position-embedding interpolation.
    let mut cfg = model.config.dino.clone();
    cfg.input_size = 84;
    let dino = model
        .checkpoint
        .as_ref()
        .unwrap()
        .load(
            Dinov2::<Bk>::new(&cfg, device),
            DINO_PREFIX,
            KeyRemap::NONE,
            DType::F32,
        )
        .unwrap();
    let (img, b, h, w) = image_batch(&fx, "dino_interp.image");
    let pixels = dino::transform(&img, b, h, w, 84);
    let pixels = Tensor::<Bk, 4>::from_data(TensorData::new(pixels, [b, 3, 84, 84]), device);
    let tokens = dino.forward(pixels);
    assert_eq!(tokens.dims(), [1, 37, 24]);
    assert_close(
        "interpolated dino tokens",
        &values(tokens),
        &fx.values("dino_interp.tokens"),
        tol,
    );
}

fn check_dit<Bk: Backend>(device: &Bk::Device, tol: f32) {
    let model = load::<Bk>("tiny", device);
    let fx = Fixtures::open("tiny");
    assert!(!model.dit.has_guidance_embed());
    let out = model.dit.forward(
        fx.tensor("dit.x", device),
        &fx.values("dit.t"),
        fx.tensor("dit.cond", device),
        None,
    );
    assert_close("dit forward", &values(out), &fx.values("dit.out"), tol);

    let model = load::<Bk>("tiny-turbo", device);
    let fx = Fixtures::open("tiny-turbo");
    assert!(model.dit.has_guidance_embed());
    let g = fx.values("dit.guidance");
    let out = model.dit.forward(
        fx.tensor("dit.x", device),
        &fx.values("dit.t"),
        fx.tensor("dit.cond", device),
        Some(&g),
    );
    assert_close(
        "dit forward (guidance)",
        &values(out),
        &fx.values("dit.out"),
        tol,
    );
}

fn sample<Bk: Backend>(
    model: &ShapeModel<Bk>,
    fx: &Fixtures,
    scheduler: SchedulerConfig,
    steps: usize,
    scale: f32,
) -> Vec<f32> {
    let (img, b, h, w) = image_batch(fx, "dino.image");
    let cond = model.encode(&img, b, h, w).unwrap();
    let p = plan(scheduler, steps, false).unwrap();
    let guidance = Guidance::for_model(&model.dit, scale);
    let mut calls = 0;
    let out = denoise(
        &model.dit,
        cond,
        fx.tensor("sample.noise", &model.device),
        &p,
        guidance,
        |_, _| {
            calls += 1;
            true
        },
    )
    .unwrap();
    assert_eq!(calls, p.len());
    values(out)
}

fn check_samplers<Bk: Backend>(device: &Bk::Device, tol: f32) {
    let model = load::<Bk>("tiny", device);
    let fx = Fixtures::open("tiny");
    assert!(matches!(
        model.config.scheduler,
        SchedulerConfig::FlowMatchEuler { .. }
    ));
    assert!(matches!(
        Guidance::for_model(&model.dit, 5.0),
        Guidance::Cfg(_)
    ));
    // 4 evaluations upstream; the last has dt = 0 and is skipped here.
    assert_eq!(plan(model.config.scheduler, 4, false).unwrap().len(), 3);
    let got = sample(&model, &fx, model.config.scheduler, 4, 5.0);
    assert_close("cfg sampling", &got, &fx.values("sample.cfg.latents"), tol);

    let model = load::<Bk>("tiny-turbo", device);
    let fx = Fixtures::open("tiny-turbo");
    assert!(matches!(
        model.config.scheduler,
        SchedulerConfig::Consistency {
            pcm_timesteps: 100,
            ..
        }
    ));
    let got = sample(&model, &fx, model.config.scheduler, 5, 5.0);
    assert_close(
        "turbo sampling",
        &got,
        &fx.values("sample.turbo.latents"),
        tol,
    );

    // Guidance-distilled "fast": flow matching, no CFG, the scale fed to guidance_in.
    let flow = SchedulerConfig::FlowMatchEuler {
        num_train_timesteps: 1000,
        shift: 1.0,
    };
    assert!(matches!(
        Guidance::for_model(&model.dit, 5.0),
        Guidance::Distilled(_)
    ));
    let got = sample(&model, &fx, flow, 4, 5.0);
    assert_close(
        "fast sampling",
        &got,
        &fx.values("sample.fast.latents"),
        tol,
    );
}

#[test]
fn each_checkpoint_kind_has_one_default_step_count() {
    use orfeas_pipeline::shape::hunyuan3d::CheckpointKind;
    for preset in Preset::ALL {
        let c = preset.config();
        let kind = CheckpointKind::of(c.scheduler, c.dit.guidance_embed);
        let folder = preset.folder();
        let want = if folder.ends_with("turbo") {
            (CheckpointKind::Turbo, 5)
        } else if folder.ends_with("fast") {
            (CheckpointKind::Fast, 30)
        } else {
            (CheckpointKind::Standard, 50)
        };
        assert_eq!((kind, kind.default_steps()), want, "{folder}");
    }
}

#[test]
fn dino_tokens_match_reference() {
    check_dino::<B>(&Default::default(), TOL);
}

#[test]
fn dit_forward_matches_reference_with_and_without_guidance_embedding() {
    check_dit::<B>(&Default::default(), TOL);
}

#[test]
fn cfg_fast_and_turbo_sampling_loops_match_reference() {
    check_samplers::<B>(&Default::default(), TOL);
}

#[test]
fn vae_decoder_geometry_and_volumes_match_reference() {
    check_vae::<B>(&Default::default(), TOL);
}

#[test]
fn batched_decoding_equals_one_by_one() {
    let device = Default::default();
    let model = load::<B>("tiny", &device);
    let fx = Fixtures::open("tiny");
    let kv = model.vae.geo_decoder.prepare(fx.tensor("vae.kv", &device));
    let mut opts = VolumeOptions::new(32, 700);
    opts.min_resolution = 8;
    for hierarchical in [false, true] {
        let decode = |kv: &DecoderKv<B>| {
            if hierarchical {
                decode_hierarchical(&model.vae.geo_decoder, kv, &opts, |_, _| true).unwrap()
            } else {
                decode_dense(&model.vae.geo_decoder, kv, &opts, |_, _| true).unwrap()
            }
        };
        let together = decode(&kv);
        for b in 0..2 {
            let alone = decode(&kv.select(&[b])).remove(0);
            let (t, a) = (&together[b].data, &alone.data);
            assert_eq!(
                t.iter().filter(|v| v.is_nan()).count(),
                a.iter().filter(|v| v.is_nan()).count()
            );
            let worst = t
                .iter()
                .zip(a)
                .filter(|(x, _)| !x.is_nan())
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            assert!(
                worst < 1e-5,
                "hierarchical={hierarchical} shape {b}: {worst}"
            );
        }
    }
}

fn check_vae<Bk: Backend>(device: &Bk::Device, tol: f32) {
    for name in ["tiny", "tiny-turbo"] {
        let model = load::<Bk>(name, device);
        let fx = Fixtures::open(name);
        let kv = model.vae.decode(fx.tensor("vae.latents", device));
        assert_close(
            &format!("{name}: vae kv"),
            &values(kv),
            &fx.values("vae.kv"),
            tol,
        );
        // Geometry logits at fixed points, from the reference's KV.
        let prepared = model.vae.geo_decoder.prepare(fx.tensor("vae.kv", device));
        let points: Vec<[f32; 3]> = fx
            .values("geo.points")
            .chunks(3)
            .map(|c| [c[0], c[1], c[2]])
            .collect();
        let logits = model.vae.geo_decoder.query_shared(&prepared, &points);
        assert_close(
            &format!("{name}: geometry logits"),
            &values(logits),
            &fx.values("geo.logits"),
            tol,
        );
    }

    let model = load::<Bk>("tiny", device);
    let fx = Fixtures::open("tiny");
    let kv = model.vae.geo_decoder.prepare(fx.tensor("vae.kv", device));
    // Dense R = 16 for both shapes in one batch, 1000-point chunks.
    let vols = decode_dense(
        &model.vae.geo_decoder,
        &kv,
        &VolumeOptions::new(16, 1000),
        |_, _| true,
    )
    .unwrap();
    let got: Vec<f32> = vols.iter().flat_map(|v| v.data.iter().copied()).collect();
    assert_eq!(vols[0].dims, [17, 17, 17]);
    assert_close("dense volume R=16", &got, &fx.values("vol.dense16"), tol);

    // Hierarchical R = 32 from 8, both shapes in one batch (upstream: one at a time).
    let mut opts = VolumeOptions::new(32, 1000);
    opts.min_resolution = 8;
    let vols = decode_hierarchical(&model.vae.geo_decoder, &kv, &opts, |_, _| true).unwrap();
    for (b, vol) in vols.iter().enumerate() {
        let want = fx.values(&format!("vol.hier32.{b}"));
        let pattern_diff = vol
            .data
            .iter()
            .zip(&want)
            .filter(|(g, w)| g.is_nan() != w.is_nan())
            .count();
        let evaluated = want.iter().filter(|w| !w.is_nan()).count();
        assert_eq!(
            pattern_diff, 0,
            "shape {b}: NaN pattern differs at {pattern_diff} samples"
        );
        assert!(
            evaluated > 0 && evaluated < want.len(),
            "shape {b}: {evaluated} evaluated"
        );
        let (g, w): (Vec<f32>, Vec<f32>) = vol
            .data
            .iter()
            .zip(&want)
            .filter(|(_, w)| !w.is_nan())
            .map(|(g, w)| (*g, *w))
            .unzip();
        assert_close(
            &format!(
                "hierarchical volume R=32, shape {b} ({evaluated} of {})",
                want.len()
            ),
            &g,
            &w,
            tol,
        );
    }
}

/// The same parity checks on burn-cuda, run by `scripts/gpu_hunyuan3d.sh` on a GPU machine
/// (`ORFEAS_GPU_TESTS=1`; without a GPU the CUDA backend panics on first use, so it is opt-in).
#[cfg(feature = "cuda")]
#[test]
fn parity_on_cuda() {
    if std::env::var("ORFEAS_GPU_TESTS").as_deref() != Ok("1") {
        eprintln!("parity_on_cuda: set ORFEAS_GPU_TESTS=1 on a machine with a GPU");
        return;
    }
    type G = orfeas_pipeline::tensor::GpuBackend;
    let device = Default::default();
    // fp32 on the GPU: different summation orders, and TF32 where the matmul kernels choose it.
    let tol = 2e-3;
    check_dino::<G>(&device, tol);
    check_dit::<G>(&device, tol);
    check_samplers::<G>(&device, tol);
    check_vae::<G>(&device, tol);
}

#[test]
fn schedules_equal_the_reference_schedulers() {
    let fx = Fixtures::open("tiny");
    let flow = ModelConfig::from_yaml(
        &std::fs::read_to_string(fixtures_dir().join("tiny/config.yaml")).unwrap(),
    )
    .unwrap()
    .scheduler;
    let got: Vec<f32> = sigmas(flow, 4).iter().map(|v| *v as f32).collect();
    assert_eq!(got, fx.values("sched.flow.4"));
    let fx = Fixtures::open("tiny-turbo");
    let turbo = Preset::V2_0Turbo.scheduler();
    for n in [5, 8] {
        let got: Vec<f32> = sigmas(turbo, n).iter().map(|v| *v as f32).collect();
        assert_eq!(got, fx.values(&format!("sched.turbo.{n}")), "turbo {n}");
    }
}

fn read_manifest(name: &str) -> BTreeMap<String, Vec<usize>> {
    let text = std::fs::read_to_string(fixtures_dir().join("manifests").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn full_size_module_trees_equal_the_reference_manifests() {
    let device = Default::default();
    for preset in Preset::ALL {
        let dit = Hunyuan3dDit::<B>::new(&preset.dit(), &device);
        let ours = manifest(&dit, DIT_PREFIX, DIT_REMAP);
        let theirs = read_manifest(&format!("{}.json", preset.folder()));
        let missing: Vec<_> = theirs
            .keys()
            .filter(|k| !ours.contains_key(*k))
            .take(5)
            .collect();
        let extra: Vec<_> = ours
            .keys()
            .filter(|k| !theirs.contains_key(*k))
            .take(5)
            .collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{preset:?}: missing {missing:?}, extra {extra:?}"
        );
        assert_eq!(ours, theirs, "{preset:?}: shapes");
        let params: usize = ours.values().map(|s| s.iter().product::<usize>()).sum();
        eprintln!(
            "{}: {} tensors, {params} parameters",
            preset.folder(),
            ours.len()
        );
    }
    for (name, cfg) in [
        ("hunyuan3d-vae-v2-0", VaeConfig::v2_0()),
        ("hunyuan3d-vae-v2-mini", VaeConfig::v2_mini()),
    ] {
        let vae = ShapeVae::<B>::new(&cfg, &device);
        assert_eq!(
            manifest(&vae, VAE_PREFIX, KeyRemap::NONE),
            read_manifest(&format!("{name}.json")),
            "{name}"
        );
    }
    let dino = Dinov2::<B>::new(&Preset::V2_0.dino(), &device);
    let ours = manifest(&dino, DINO_PREFIX, KeyRemap::NONE);
    assert_eq!(ours, read_manifest("dinov2-giant.json"));
    // Building the full-size trees allocated nothing: parameters are still lazy.
    assert!(!dino.layernorm.weight.is_initialized());
}

fn copy_checkpoint(name: &str, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in ["config.yaml", "model.fp16.safetensors"] {
        std::fs::copy(fixtures_dir().join(name).join(f), to.join(f)).unwrap();
    }
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("orfeas-h3d-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn strict_loading_names_the_offending_key() {
    let ckpt = Checkpoint::open(&fixtures_dir().join("tiny/model.fp16.safetensors")).unwrap();
    let cfg = ModelConfig::from_yaml(
        &std::fs::read_to_string(fixtures_dir().join("tiny/config.yaml")).unwrap(),
    )
    .unwrap();
    let device = Default::default();

    // One double block more than the checkpoint has: its tensors are missing.
    let mut more = cfg.dit.clone();
    more.depth += 1;
    let err = ckpt
        .load(
            Hunyuan3dDit::<B>::new(&more, &device),
            DIT_PREFIX,
            DIT_REMAP,
            DType::F32,
        )
        .unwrap_err();
    assert!(err.to_string().contains("model.double_blocks.2."), "{err}");

    // One single block fewer: the checkpoint's last block is unexpected.
    let mut fewer = cfg.dit.clone();
    fewer.depth_single_blocks -= 1;
    let err = ckpt
        .load(
            Hunyuan3dDit::<B>::new(&fewer, &device),
            DIT_PREFIX,
            DIT_REMAP,
            DType::F32,
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("unexpected tensor `model.single_blocks.1."),
        "{err}"
    );

    // A different MLP width: shape mismatches, reported with both shapes.
    let mut wider = cfg.dit.clone();
    wider.mlp_ratio = 2.0;
    let err = ckpt
        .load(
            Hunyuan3dDit::<B>::new(&wider, &device),
            DIT_PREFIX,
            DIT_REMAP,
            DType::F32,
        )
        .unwrap_err();
    assert!(err.to_string().contains("expects [64, 32]"), "{err}");

    // Without the remap list the Sequential-indexed keys are not found.
    let err = ckpt
        .load(
            Hunyuan3dDit::<B>::new(&cfg.dit, &device),
            DIT_PREFIX,
            KeyRemap::NONE,
            DType::F32,
        )
        .unwrap_err();
    assert!(err.to_string().contains("img_mlp.fc1"), "{err}");
}

#[test]
fn bad_checkpoint_folders_are_clear_errors() {
    let device = burn::backend::ndarray::NdArrayDevice::Cpu;
    let missing =
        ShapeModel::<B>::load(Path::new("/nonexistent/ckpt"), DType::F32, &device).unwrap_err();
    assert!(matches!(missing, ModelError::Io { .. }), "{missing}");

    let dir = temp_dir("truncated");
    copy_checkpoint("tiny", &dir);
    let bytes = std::fs::read(dir.join("model.fp16.safetensors")).unwrap();
    std::fs::write(
        dir.join("model.fp16.safetensors"),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    let err = ShapeModel::<B>::load(&dir, DType::F32, &device).unwrap_err();
    assert!(matches!(err, ModelError::Format { .. }), "{err}");

    let dir = temp_dir("mv");
    copy_checkpoint("tiny", &dir);
    let yaml = std::fs::read_to_string(dir.join("config.yaml")).unwrap();
    std::fs::write(
        dir.join("config.yaml"),
        yaml.replace("type: DinoImageEncoder", "type: DinoImageEncoderMV"),
    )
    .unwrap();
    let err = ShapeModel::<B>::load(&dir, DType::F32, &device).unwrap_err();
    assert!(
        matches!(err, ModelError::Unsupported(_)) && err.to_string().contains("DinoImageEncoderMV"),
        "{err}"
    );

    std::fs::write(
        dir.join("config.yaml"),
        yaml.replace("FlowMatchEulerDiscreteScheduler", "DDIMScheduler"),
    )
    .unwrap();
    let err = ShapeModel::<B>::load(&dir, DType::F32, &device).unwrap_err();
    assert!(err.to_string().contains("DDIMScheduler"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn loads_as_half_precision_too() {
    // The checkpoint's fp16 values survive the F16 path bit for bit (no f32 round trip drift).
    let ckpt = Checkpoint::open(&fixtures_dir().join("tiny/model.fp16.safetensors")).unwrap();
    let f16 = ckpt.data("model.latent_in.weight", DType::F16).unwrap();
    let f32v: Vec<f32> = ckpt
        .data("model.latent_in.weight", DType::F32)
        .unwrap()
        .to_vec()
        .unwrap();
    let back: Vec<f32> = f16.convert::<f32>().to_vec().unwrap();
    assert_eq!(back, f32v);
}

/// Symmetric mean nearest-neighbour distance between two point sets.
fn chamfer(a: &[[f32; 3]], b: &[[f32; 3]]) -> f32 {
    let one_way = |from: &[[f32; 3]], to: &[[f32; 3]]| {
        from.iter()
            .map(|p| {
                to.iter()
                    .map(|q| (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2))
                    .fold(f32::MAX, f32::min)
                    .sqrt()
            })
            .sum::<f32>()
            / from.len() as f32
    };
    (one_way(a, b) + one_way(b, a)) / 2.0
}

fn signed_volume(positions: &[[f32; 3]], faces: &[[u32; 3]]) -> f64 {
    faces
        .iter()
        .map(|f| {
            let [a, b, c] = f.map(|i| positions[i as usize].map(f64::from));
            (a[0] * (b[1] * c[2] - b[2] * c[1]) - a[1] * (b[0] * c[2] - b[2] * c[0])
                + a[2] * (b[0] * c[1] - b[1] * c[0]))
                / 6.0
        })
        .sum()
}

#[test]
fn engine_end_to_end_matches_the_reference_pipeline() {
    use orfeas_pipeline::image::{PreprocessedImage, Segmentation, SegmentationMethod};
    use orfeas_pipeline::shape::hunyuan3d::{Hunyuan3dEngine, Hunyuan3dSettings};
    use orfeas_pipeline::shape::{ShapeEngine, ShapeOptions, ShapeRequest};
    use orfeas_vocab::{Engine, VolumeDecoding};

    let device = Default::default();
    let fx = Fixtures::open("tiny");
    let png = image::open(fixtures_dir().join("tiny/e2e_input.png"))
        .unwrap()
        .to_rgb8();
    let size = png.width() as usize;
    let img = PreprocessedImage {
        size,
        rgb: png.into_raw(),
        mask: vec![255; size * size],
        segmentation: Segmentation {
            method: SegmentationMethod::WholeImage,
            mask_share: 1.0,
        },
    };
    let noise = fx.values("e2e.noise");

    // The logit grid, through the same pieces the engine uses.
    let model = load::<B>("tiny", &device);
    let cond = model.encode(&img.to_chw(), 1, size, size).unwrap();
    let steps = plan(model.config.scheduler, 5, false).unwrap();
    let latents = denoise(
        &model.dit,
        cond,
        Tensor::from_data(TensorData::new(noise.clone(), [1, 16, 8]), &device),
        &steps,
        Guidance::for_model(&model.dit, 5.0),
        |_, _| true,
    )
    .unwrap();
    let kv = model.vae.geo_decoder.prepare(model.vae.decode(latents));
    let vol = decode_dense(
        &model.vae.geo_decoder,
        &kv,
        &VolumeOptions::new(64, 8000),
        |_, _| true,
    )
    .unwrap()
    .remove(0);
    let sub: Vec<f32> = (0..65)
        .step_by(4)
        .flat_map(|i| {
            (0..65)
                .step_by(4)
                .flat_map(move |j| (0..65).step_by(4).map(move |k| (i, j, k)))
        })
        .map(|(i, j, k)| vol.get(i, j, k))
        .collect();
    assert_close(
        "end-to-end logit grid (every 4th sample)",
        &sub,
        &fx.values("e2e.grid_sub4"),
        1e-3,
    );

    // The engine, as the pipeline calls it.
    // The reference's surface as it is: no capping where the shape meets the box.
    let settings = Hunyuan3dSettings {
        decoding: VolumeDecoding::Dense,
        close_at_box: false,
        ..Default::default()
    };
    let engine = Hunyuan3dEngine::<B>::load(&fixtures_dir().join("tiny"), settings, &device)
        .unwrap()
        .with_injected_noise(noise)
        .unwrap();
    assert_eq!(engine.engine(), Engine::Hunyuan3d);
    let opts = ShapeOptions {
        octree_resolution: 64,
        steps: Some(5),
        guidance_scale: 5.0,
        num_chunks: 8000,
        ..Default::default()
    };
    let shape = engine
        .generate(&[ShapeRequest::new(&img, &opts)])
        .remove(0)
        .unwrap();
    let ours = &shape.mesh;
    let theirs: Vec<[f32; 3]> = fx
        .values("e2e.vertices")
        .chunks(3)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    let their_faces: Vec<[u32; 3]> = fx
        .values("e2e.faces")
        .chunks(3)
        .map(|c| [c[0] as u32, c[1] as u32, c[2] as u32])
        .collect();
    let (nv, rv) = (ours.positions.len() as f64, theirs.len() as f64);
    eprintln!(
        "vertices: ours {nv}, reference {rv}; faces: ours {}, reference {}",
        ours.triangles.len(),
        their_faces.len()
    );
    assert!((nv - rv).abs() / rv < 0.02, "vertex count {nv} vs {rv}");
    let cell = 2.02 / 65.0;
    let d = chamfer(&ours.positions, &theirs);
    eprintln!("chamfer distance {d:.2e} ({:.3} cells)", d / cell);
    assert!(d < 0.05 * cell, "chamfer {d}");
    // Same orientation: both enclose positive volume (outward-facing triangles).
    let our_faces = ours.triangles.clone();
    let (vo, vr) = (
        signed_volume(&ours.positions, &our_faces),
        signed_volume(&theirs, &their_faces),
    );
    eprintln!("signed volume: ours {vo:.5}, reference {vr:.5}");
    assert!(
        vo * vr > 0.0 && ((vo - vr) / vr).abs() < 0.02,
        "{vo} vs {vr}"
    );
}

#[test]
fn engine_batches_equal_single_runs_and_bad_options_fail_alone() {
    use orfeas_pipeline::image::{PreprocessedImage, Segmentation, SegmentationMethod};
    use orfeas_pipeline::shape::hunyuan3d::{Hunyuan3dEngine, Hunyuan3dSettings};
    use orfeas_pipeline::shape::{ShapeEngine, ShapeOptions, ShapeRequest};

    let device = Default::default();
    let engine = Hunyuan3dEngine::<B>::load(
        &fixtures_dir().join("tiny"),
        Hunyuan3dSettings::default(),
        &device,
    )
    .unwrap();
    let png = image::open(fixtures_dir().join("tiny/e2e_input.png"))
        .unwrap()
        .to_rgb8();
    let size = png.width() as usize;
    let a = PreprocessedImage {
        size,
        rgb: png.into_raw(),
        mask: vec![255; size * size],
        segmentation: Segmentation {
            method: SegmentationMethod::WholeImage,
            mask_share: 1.0,
        },
    };
    let mut b = a.clone();
    b.rgb.iter_mut().step_by(7).for_each(|v| *v = 255 - *v);
    let base = ShapeOptions {
        octree_resolution: 64,
        steps: Some(3),
        ..Default::default()
    };
    let other_seed = ShapeOptions {
        seed: 99,
        ..base.clone()
    };
    let other_steps = ShapeOptions {
        steps: Some(2),
        ..base.clone()
    };
    let bad = ShapeOptions {
        octree_resolution: 9,
        ..base.clone()
    };
    let reqs = [
        ShapeRequest::new(&a, &base),
        ShapeRequest::new(&b, &other_seed),
        ShapeRequest::new(&a, &bad),
        ShapeRequest::new(&b, &other_steps),
    ];
    let together = engine.generate(&reqs);
    assert!(matches!(
        together[2],
        Err(orfeas_pipeline::error::ShapeError::InvalidOption { .. })
    ));
    for i in [0, 1, 3] {
        let alone = engine.generate(&reqs[i..=i]).remove(0).unwrap();
        let with = together[i].as_ref().unwrap();
        assert_eq!(
            alone.mesh.triangles, with.mesh.triangles,
            "request {i}: same topology"
        );
        let worst = alone
            .mesh
            .positions
            .iter()
            .zip(&with.mesh.positions)
            .map(|(p, q)| (0..3).map(|k| (p[k] - q[k]).abs()).fold(0f32, f32::max))
            .fold(0f32, f32::max);
        // Batched and single matrix products sum in different orders: ≤ 3% of a grid cell.
        assert!(worst < 1e-3, "request {i}: {worst}");
    }
    // Different seeds give different shapes.
    assert_ne!(
        together[0].as_ref().unwrap().mesh.positions,
        together[1].as_ref().unwrap().mesh.positions
    );
}
