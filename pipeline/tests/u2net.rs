//! Parity of the burn U²-Net port with rembg 2.0.86 (onnxruntime) on the fixtures written by
//! `tests/reference/u2net_fixtures.py`: Pillow's LANCZOS resize, rembg's normalised input, the
//! network output d0, the final masks of both sizes, the three weight formats, strict loading
//! errors and batching.

#![allow(clippy::unwrap_used, clippy::print_stderr)] // tests: failures panic, figures go to stderr

mod u2net_support;

use std::path::PathBuf;

use orfeas_pipeline::image::pil_resize::resize_lanczos;
use orfeas_pipeline::image::resize::Raster;
use orfeas_pipeline::segmentation::u2net::session::{self, INPUT_SIZE};
use orfeas_pipeline::segmentation::u2net::{
    BurnExec, HostExec, StateDict, U2NetSegmenter, U2NetWeights, pth,
};
use orfeas_pipeline::segmentation::{
    SegmentationError, Segmenter, U2NetKind, load_segmenter, segmenter_from_weights,
};
use orfeas_pipeline::tensor::CpuBackend;
use orfeas_vocab::Device;
use u2net_support::*;

fn u2netp_onnx() -> PathBuf {
    fixtures().join("u2netp.onnx")
}

fn u2netp_pth() -> PathBuf {
    fixtures().join("u2netp.pth")
}

fn masks(seg: &dyn Segmenter, stems: &[&str]) -> Vec<Raster> {
    let images: Vec<Raster> = stems.iter().map(|s| image(s)).collect();
    let refs: Vec<&Raster> = images.iter().collect();
    seg.masks(&refs).unwrap()
}

/// Compares masks with rembg's; returns the worst per-pixel difference.
fn check_masks(kind: &str, ours: &[Raster], stems: &[&str]) -> u8 {
    let mut worst = 0;
    for (m, stem) in ours.iter().zip(stems) {
        let reference = rembg_mask(kind, stem);
        let d = max_abs_diff(m, &reference);
        eprintln!(
            "{kind} {stem}: max |mask − rembg| = {d}, {} of {} pixels differ",
            count_diff(m, &reference),
            m.data.len()
        );
        worst = worst.max(d);
    }
    worst
}

#[test]
fn pil_lanczos_resize_is_exact() {
    let (shape, resized) = debug_tensor("resized");
    assert_eq!(shape, vec![320, 320, 3]);
    let ours = session::resized_input(&image("01_chelsea")).unwrap();
    assert_eq!((ours.width, ours.height, ours.channels), (320, 320, 3));
    let differing = ours
        .data
        .iter()
        .zip(&resized)
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(differing, 0, "Pillow LANCZOS 241x160 → 320x320");
}

#[test]
fn preprocessed_input_matches_rembg() {
    let expected = debug_f32("input");
    let ours = session::preprocess(&image("01_chelsea")).unwrap();
    assert_eq!(ours.len(), expected.len());
    let err = ours
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    eprintln!("input: max |ours − rembg| = {err:e}");
    assert!(err <= 1e-6, "{err}");
}

/// Both executors (the host's GEMM convolutions, which the CPU uses, and burn's, which CUDA
/// uses, run here on burn-ndarray) against onnxruntime's d0 and mask.
#[test]
fn u2netp_d0_and_mask320_match_onnxruntime() {
    let weights = U2NetWeights::load(&u2netp_onnx()).unwrap();
    assert_eq!(weights.kind(), U2NetKind::U2netp);
    let host = U2NetSegmenter::new(&weights, HostExec::new()).unwrap();
    let burn =
        U2NetSegmenter::new(&weights, BurnExec::<CpuBackend>::new(Default::default())).unwrap();
    let expected = debug_f32("d0");
    let (_, mask320) = debug_tensor("mask320");
    for (name, d0) in [
        ("host", host.predict(debug_f32("input"), 1).remove(0)),
        ("burn", burn.predict(debug_f32("input"), 1).remove(0)),
    ] {
        assert_eq!(d0.len(), expected.len(), "{name}");
        let err = d0
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        eprintln!("u2netp d0 (sigmoid), {name}: max |ours − ort| = {err:e}");
        assert!(err < 1e-5, "{name}: {err}");
        // The 320×320 mask before the final resize: truncation can flip a value by one.
        let ours = session::mask_320(&d0);
        let flips = ours.iter().zip(&mask320).filter(|(a, b)| a != b).count();
        let worst = ours
            .iter()
            .zip(&mask320)
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        eprintln!(
            "u2netp mask320, {name}: {flips} of {} values differ, by at most {worst}",
            ours.len()
        );
        assert!(worst <= 1, "{name}");
    }
    // From rembg's own d0, our postprocessing reproduces its mask320 exactly.
    assert_eq!(session::mask_320(&expected), mask320);
}

/// The full-size network through burn's executor on the CPU gives the masks the host executor
/// gives (the CUDA path runs this same graph code; its own check is `parity_on_cuda`).
#[test]
fn burn_executor_matches_rembg_with_formula_weights() {
    let weights = U2NetWeights::from_state_dict(&formula_state_dict("u2net")).unwrap();
    let seg =
        U2NetSegmenter::new(&weights, BurnExec::<CpuBackend>::new(Default::default())).unwrap();
    let stems = ["01_chelsea", "06_logo_rgba"];
    let ours = masks(&seg, &stems);
    assert!(check_masks("u2net", &ours, &stems) <= 1);
}

#[test]
fn u2netp_masks_match_rembg() {
    let seg = load_segmenter(&u2netp_onnx(), Device::Cpu).unwrap();
    assert_eq!(seg.kind(), U2NetKind::U2netp);
    let ours = masks(seg.as_ref(), &STEMS);
    assert!(check_masks("u2netp", &ours, &STEMS) <= 1);
}

#[test]
fn u2net_masks_match_rembg_with_formula_weights() {
    let f = formula();
    assert_eq!(f.name, "orfeas-u2net-seeded-v1");
    for (name, i, u) in &f.spot_checks {
        assert_eq!(uniform(name, *i), *u, "{name}[{i}]");
    }
    let weights = U2NetWeights::from_state_dict(&formula_state_dict("u2net")).unwrap();
    assert_eq!(weights.kind(), U2NetKind::U2net);
    let seg = segmenter_from_weights(&weights, Device::Cpu).unwrap();
    // Two batches of three keep the activation memory of the 44 M-parameter model moderate.
    let mut ours = masks(seg.as_ref(), &STEMS[..3]);
    ours.extend(masks(seg.as_ref(), &STEMS[3..]));
    assert!(check_masks("u2net", &ours, &STEMS) <= 1);
}

#[test]
fn onnx_pth_and_safetensors_agree() {
    let from_onnx = U2NetWeights::load(&u2netp_onnx()).unwrap();
    let from_pth = U2NetWeights::load(&u2netp_pth()).unwrap();
    // The exporter folded BatchNorm in f32; we fold in f64: the weights agree to rounding.
    let worst = max_relative_difference(&from_onnx, &from_pth);
    eprintln!("folded weights, ONNX vs .pth: max relative difference {worst:e}");
    assert!(worst < 1e-5);

    // A safetensors copy of the .pth state dict.
    let sd = pth::read_zip(&std::fs::read(u2netp_pth()).unwrap()).unwrap();
    let tmp = std::env::temp_dir().join(format!("u2netp-{}.safetensors", std::process::id()));
    write_safetensors(&sd, &tmp);
    let from_st = U2NetWeights::load(&tmp).unwrap();
    std::fs::remove_file(&tmp).ok();
    assert_eq!(from_st.convs(), from_pth.convs());

    let stems = ["01_chelsea", "05_synthetic"];
    let a = masks(
        &*segmenter_from_weights(&from_onnx, Device::Cpu).unwrap(),
        &stems,
    );
    let b = masks(
        &*segmenter_from_weights(&from_pth, Device::Cpu).unwrap(),
        &stems,
    );
    for (x, y) in a.iter().zip(&b) {
        assert!(max_abs_diff(x, y) <= 1);
    }
}

/// The largest relative difference between two loads' folded weights and biases, conv by conv
/// (same keys and shapes asserted).
fn max_relative_difference(a: &U2NetWeights, b: &U2NetWeights) -> f32 {
    let mut worst = 0f32;
    for (a, b) in a.convs().iter().zip(b.convs()) {
        assert_eq!((&a.key, a.shape), (&b.key, b.shape));
        for (x, y) in a
            .weight
            .iter()
            .chain(&a.bias)
            .zip(b.weight.iter().chain(&b.bias))
        {
            worst = worst.max((x - y).abs() / y.abs().max(1.0));
        }
    }
    worst
}

fn write_safetensors(sd: &StateDict, path: &std::path::Path) {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = sd
        .iter()
        .map(|(k, (s, v))| {
            (
                k.clone(),
                s.clone(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = bytes
        .iter()
        .map(|(k, s, b)| {
            let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                .unwrap();
            (k.clone(), view)
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

#[test]
fn strict_loading_names_the_tensor() {
    let sd = pth::read_zip(&std::fs::read(u2netp_pth()).unwrap()).unwrap();
    // The .pth carries BatchNorm's num_batches_tracked counters, which are accepted.
    assert!(sd.keys().any(|k| k.ends_with("num_batches_tracked")));
    assert!(U2NetWeights::from_state_dict(&sd).is_ok());

    let key = "stage3d.rebnconv2d.bn_s1.running_var";
    let mut missing = sd.clone();
    missing.remove(key);
    let e = U2NetWeights::from_state_dict(&missing).unwrap_err();
    assert!(
        matches!(&e, SegmentationError::MissingTensor { key: k } if k == key),
        "{e}"
    );

    let mut extra = sd.clone();
    extra.insert(
        "stage7.rebnconvin.conv_s1.weight".into(),
        (vec![1], vec![0.0]),
    );
    let e = U2NetWeights::from_state_dict(&extra).unwrap_err();
    assert!(
        e.to_string().contains("stage7.rebnconvin.conv_s1.weight"),
        "{e}"
    );
    assert!(matches!(e, SegmentationError::UnexpectedTensor { .. }));

    let key = "side3.weight";
    let mut wrong = sd.clone();
    wrong.insert(key.into(), (vec![1, 64, 1, 3, 3], vec![0.0; 576]));
    let e = U2NetWeights::from_state_dict(&wrong).unwrap_err();
    assert!(
        matches!(&e, SegmentationError::ShapeMismatch { key: k, expected, .. }
            if k == key && expected == &vec![1, 64, 3, 3]),
        "{e}"
    );

    // Several problems are all counted, the first ones named.
    let mut two = missing.clone();
    two.remove("outconv.bias");
    let e = U2NetWeights::from_state_dict(&two).unwrap_err();
    assert!(matches!(e, SegmentationError::Many { count: 2, .. }), "{e}");
}

#[test]
fn bad_files_are_typed_errors() {
    let dir = std::env::temp_dir().join(format!("u2net-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let onnx = std::fs::read(u2netp_onnx()).unwrap();
    let pth_bytes = std::fs::read(u2netp_pth()).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated.onnx", onnx[..onnx.len() / 2].to_vec()),
        ("truncated.pth", pth_bytes[..pth_bytes.len() / 2].to_vec()),
        (
            "garbage.bin",
            b"this is not a model at all, just text\n".repeat(50),
        ),
        ("empty.onnx", Vec::new()),
    ];
    for (name, bytes) in cases {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        let e = U2NetWeights::load(&p).unwrap_err();
        eprintln!("{name}: {e}");
        assert!(
            matches!(
                e,
                SegmentationError::Format { .. } | SegmentationError::Unsupported(_)
            ),
            "{name}: {e}"
        );
    }
    let e = U2NetWeights::load(&dir.join("absent.onnx")).unwrap_err();
    assert!(matches!(e, SegmentationError::Io { .. }), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn batch_equals_one_by_one() {
    let seg = load_segmenter(&u2netp_onnx(), Device::Cpu).unwrap();
    let stems = ["02_coffee", "05_synthetic", "06_logo_rgba"];
    let batched = masks(seg.as_ref(), &stems);
    for (m, stem) in batched.iter().zip(stems) {
        let single = masks(seg.as_ref(), &[stem]).remove(0);
        assert_eq!(max_abs_diff(m, &single), 0, "{stem}");
    }
}

#[test]
fn lanczos_resize_back_is_pillows() {
    // The final step of rembg's mask: a 320×320 L image back to the photo size.
    let (_, mask320) = debug_tensor("mask320");
    let m = Raster::from_data(INPUT_SIZE, INPUT_SIZE, 1, mask320.clone());
    let pred = debug_f32("pred");
    assert_eq!(session::mask_320(&debug_f32("d0")), mask320);
    assert_eq!(pred.len(), INPUT_SIZE * INPUT_SIZE);
    let img = image("01_chelsea");
    let ours = resize_lanczos(&m, img.width, img.height);
    assert_eq!(max_abs_diff(&ours, &rembg_mask("u2netp", "01_chelsea")), 0);
}

/// Other encodings of the U2NETP fixture weights, made on demand (not committed), e.g.
/// `torch.save(sd, "legacy.pth", _use_new_zipfile_serialization=False)` (the format of the
/// original 2020 `u2netp.pth`) or a `{"state_dict": {"module." + k: v}}` checkpoint:
/// `U2NETP_EXTRA_WEIGHTS=/tmp/legacy.pth:/tmp/nested.pth cargo test … --test u2net extra`.
#[test]
fn extra_u2netp_encodings_from_env() {
    let Ok(list) = std::env::var("U2NETP_EXTRA_WEIGHTS") else {
        return;
    };
    let reference = U2NetWeights::load(&u2netp_pth()).unwrap();
    for path in list.split(':').filter(|p| !p.is_empty()) {
        let w = U2NetWeights::load(std::path::Path::new(path)).unwrap();
        assert_eq!(w.convs(), reference.convs(), "{path}");
        eprintln!("{path}: same folded weights as u2netp.pth");
    }
}

/// The full-size export (176 MB, not committed; `u2net_fixtures.py --full-onnx PATH` writes it)
/// maps onto the same folded weights as the formula state dict:
/// `U2NET_FULL_ONNX=/root/.cache/orfeas/u2net/u2net.onnx cargo test … --test u2net full_onnx`.
#[test]
fn full_u2net_onnx_from_env() {
    let Ok(path) = std::env::var("U2NET_FULL_ONNX") else {
        return;
    };
    let from_onnx = U2NetWeights::load(std::path::Path::new(&path)).unwrap();
    let from_formula = U2NetWeights::from_state_dict(&formula_state_dict("u2net")).unwrap();
    assert_eq!(from_onnx.kind(), U2NetKind::U2net);
    let worst = max_relative_difference(&from_onnx, &from_formula);
    eprintln!("{path}: folded weights vs formula, max relative difference {worst:e}");
    assert!(worst < 1e-5);
}

/// The same masks on burn-cuda, and the forward time there (`ORFEAS_GPU_TESTS=1`, run by
/// `scripts/gpu_hunyuan3d.sh`; without a GPU the CUDA backend panics on first use, so it is
/// opt-in). Batch 1 and all six images at once, u2netp from the ONNX fixture and u2net from the
/// weight formula.
#[cfg(feature = "cuda")]
#[test]
fn parity_on_cuda() {
    if std::env::var("ORFEAS_GPU_TESTS").as_deref() != Ok("1") {
        eprintln!("parity_on_cuda: set ORFEAS_GPU_TESTS=1 on a machine with a GPU");
        return;
    }
    let full = U2NetWeights::from_state_dict(&formula_state_dict("u2net")).unwrap();
    for (kind, seg) in [
        (
            "u2netp",
            load_segmenter(&u2netp_onnx(), Device::Cuda(0)).unwrap(),
        ),
        (
            "u2net",
            segmenter_from_weights(&full, Device::Cuda(0)).unwrap(),
        ),
    ] {
        let ours = masks(seg.as_ref(), &STEMS);
        // Different summation orders (and TF32 where cuBLAS picks it) move a few truncations.
        let worst = check_masks(kind, &ours, &STEMS);
        assert!(worst <= 2, "{kind}: {worst}");
        for n in [1, STEMS.len()] {
            let t = std::time::Instant::now();
            let reps = 5;
            for _ in 0..reps {
                masks(seg.as_ref(), &STEMS[..n]);
            }
            let per_image = t.elapsed().as_secs_f64() / (reps * n) as f64;
            eprintln!(
                "{{\"bench\": \"u2net_cuda\", \"model\": \"{kind}\", \"batch\": {n}, \"seconds_per_image\": {per_image:.5}}}"
            );
        }
    }
}
