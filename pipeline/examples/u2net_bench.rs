//! U²-Net forward timing at 320×320 on the CPU backend, for `bench/u2net.sh`, which times
//! onnxruntime on the same weights and input in the same run.
//!
//!     cargo run --release -p orfeas-pipeline --example u2net_bench -- WEIGHTS BATCH ITERS [--profile]
//!
//! WEIGHTS: any accepted file (ONNX, .pth, safetensors). The input is rembg's normalisation of a
//! deterministic pattern, the same one `bench/u2net_ort.py` builds. Prints one JSON line: median
//! and best seconds per forward and per image. `--profile` adds a breakdown of one forward by
//! operation (convolutions by stage, pooling, resizing, concatenation), each timed in isolation
//! at the shapes the forward uses (the ndarray backend is eager: an op has run when it returns).

#![allow(clippy::print_stdout, clippy::unwrap_used)] // a command-line tool

use std::path::Path;
use std::time::Instant;

use burn::tensor::{Distribution, Tensor, TensorData};
use orfeas_pipeline::segmentation::u2net::U2Net;
use orfeas_pipeline::segmentation::u2net::ops::{max_pool_ceil, resize_bilinear};
use orfeas_pipeline::segmentation::u2net::session::INPUT_SIZE;
use orfeas_pipeline::segmentation::u2net::{FoldedConv, U2NetWeights};
use orfeas_pipeline::tensor::CpuBackend;

type B = CpuBackend;

/// The benchmark input: a smooth colour pattern normalised as rembg does (`bench/u2net_ort.py`
/// computes the same values).
fn input(batch: usize) -> Vec<f32> {
    let s = INPUT_SIZE;
    let mean = [0.485f64, 0.456, 0.406];
    let std = [0.229f64, 0.224, 0.225];
    let mut out = Vec::with_capacity(batch * 3 * s * s);
    for b in 0..batch {
        for c in 0..3 {
            for y in 0..s {
                for x in 0..s {
                    let v = ((x * (c + 1) + y * (b + 2)) % 256) as f64 / 255.0;
                    out.push(((v - mean[c]) / std[c]) as f32);
                }
            }
        }
    }
    out
}

fn median(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0])
}

fn time<T>(f: impl Fn() -> T, iters: usize) -> f64 {
    f();
    median(
        (0..iters)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
    .0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (path, batch, iters) = match args.as_slice() {
        [_, p, b, i, ..] => (p.clone(), b.parse::<usize>()?, i.parse::<usize>()?),
        _ => return Err("usage: u2net_bench WEIGHTS BATCH ITERS [--profile]".into()),
    };
    let profile = args.iter().any(|a| a == "--profile");
    let device = Default::default();
    let t = Instant::now();
    let weights = U2NetWeights::load(Path::new(&path))?;
    let model = U2Net::<B>::new(&weights, &device)?;
    let load_s = t.elapsed().as_secs_f64();
    let x = Tensor::<B, 4>::from_data(
        TensorData::new(input(batch), [batch, 3, INPUT_SIZE, INPUT_SIZE]),
        &device,
    );
    let run = || {
        let y: Vec<f32> = model.forward(x.clone()).into_data().to_vec().unwrap();
        y
    };
    let first = run();
    let mut times = Vec::new();
    for _ in 0..iters {
        let t = Instant::now();
        run();
        times.push(t.elapsed().as_secs_f64());
    }
    let (med, best) = median(times);
    let checksum: f64 = first.iter().map(|&v| f64::from(v)).sum();
    println!(
        "{{\"impl\": \"orfeas-burn-ndarray\", \"model\": \"{}\", \"batch\": {batch}, \"median_s\": {med:.4}, \"best_s\": {best:.4}, \"per_image_s\": {:.4}, \"load_s\": {load_s:.3}, \"d0_sum\": {checksum:.3}}}",
        weights.kind(),
        med / batch as f64
    );
    if profile {
        print_profile(&weights, batch);
    }
    Ok(())
}

/// Each convolution, pool, resize and concatenation of one forward, timed alone at its shape.
fn print_profile(weights: &U2NetWeights, batch: usize) {
    let device = Default::default();
    let config = weights.config();
    // The spatial side each conv runs at: stage k (1-based, encoder and decoder) at 320 / 2^(k-1),
    // and inside an RSU-L block level l at a further 2^(l-1).
    let side_of = |c: &FoldedConv| -> usize {
        let mut side = INPUT_SIZE;
        let key = &c.key;
        if let Some(rest) = key.strip_prefix("stage") {
            let k: usize = rest[..1].parse().unwrap();
            side >>= k - 1;
            let stage = config
                .encoder
                .iter()
                .chain(&config.decoder)
                .find(|s| key.starts_with(&format!("{}.", s.name)))
                .unwrap();
            if let orfeas_pipeline::segmentation::u2net::Block::Rsu(levels) = stage.block {
                let name = key.split('.').nth(1).unwrap();
                let level: usize = name
                    .trim_start_matches("rebnconv")
                    .trim_end_matches('d')
                    .parse()
                    .unwrap_or(1);
                side >>= level.clamp(1, levels - 1) - 1;
            }
        } else if let Some(k) = key.strip_prefix("side") {
            side >>= k.parse::<usize>().unwrap() - 1;
        }
        side
    };
    let mut by_stage: std::collections::BTreeMap<String, f64> = Default::default();
    let mut total_conv = 0.0;
    let mut gmac = 0.0;
    for c in weights.convs() {
        let s = side_of(c);
        let conv = c.to_device::<B>(&device);
        // One input per weight part (the decoder convs take `[up, skip]`).
        let parts: Vec<Tensor<B, 4>> = (0..c.inputs)
            .map(|_| {
                let shape = [batch, c.shape[1] / c.inputs, s, s];
                Tensor::<B, 4>::random(shape, Distribution::Default, &device)
            })
            .collect();
        let t = time(|| conv.forward_parts(parts.clone()), 3);
        gmac += (batch * c.shape.iter().product::<usize>() * s * s) as f64 / 1e9;
        total_conv += t;
        let stage = c.key.split('.').next().unwrap().to_string();
        *by_stage.entry(stage).or_default() += t;
    }
    let c = config.encoder[0].out_ch;
    // Inputs laid out as a convolution leaves them (burn-ndarray's SIMD conv writes NHWC and
    // returns a permuted view), which is what pooling, resizing and concatenation see.
    // (`stage1.rebnconvin`: 3 → 64 channels at 320².)
    let conv = weights.convs()[0].to_device::<B>(&device);
    let x = conv.forward(Tensor::<B, 4>::random(
        [batch, conv.weights[0].dims()[1], INPUT_SIZE, INPUT_SIZE],
        Distribution::Default,
        &device,
    ));
    let pool = time(|| max_pool_ceil(x.clone()), 3);
    let half = Tensor::<B, 4>::random(
        [batch, c, INPUT_SIZE / 2, INPUT_SIZE / 2],
        Distribution::Default,
        &device,
    );
    let up = time(|| resize_bilinear(half.clone(), INPUT_SIZE, INPUT_SIZE), 3);
    let cat = time(|| Tensor::cat(vec![x.clone(), x.clone()], 1), 3);
    let relu = time(|| burn::tensor::activation::relu(x.clone()), 3);
    let add = time(|| x.clone() + x.clone(), 3);
    let read = time(|| x.clone().into_data(), 3);
    println!(
        "{{\"profile\": \"convs\", \"seconds\": {total_conv:.4}, \"gmac\": {gmac:.2}, \"gmac_per_s\": {:.1}}}",
        gmac / total_conv
    );
    for (stage, t) in by_stage {
        println!("{{\"profile\": \"conv {stage}\", \"seconds\": {t:.4}}}");
    }
    println!(
        "{{\"profile\": \"at 320x320, {c} channels: pool {pool:.4} s, 2x bilinear from 160 {up:.4} s, cat to {} channels {cat:.4} s, relu {relu:.4} s, add {add:.4} s, into_data {read:.4} s\"}}",
        2 * c
    );
}
