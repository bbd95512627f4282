//! U²-Net forward timing at 320×320 on the CPU, for `bench/u2net.sh`, which times onnxruntime
//! on the same weights and input in the same run.
//!
//!     cargo run --release -p orfeas-pipeline --example u2net_bench -- WEIGHTS BATCH ITERS [--exec host|burn] [--profile]
//!
//! WEIGHTS: any accepted file (ONNX, .pth, safetensors). `--exec`: the host executor (GEMM
//! convolutions, what the CPU path uses; the default) or burn's on burn-ndarray (what CUDA runs,
//! here on the CPU). The input is rembg's normalisation of a deterministic pattern, the same one
//! `bench/u2net_ort.py` builds. Prints one JSON line: median and best seconds per forward and
//! per image. `--profile` adds a breakdown of one forward by operation (convolutions by stage,
//! with their GMAC/s, then pooling, resizing and the residual sum at the 320² shapes), each
//! timed alone at the shapes the forward uses.

#![allow(clippy::print_stdout, clippy::unwrap_used)] // a command-line tool

use std::path::Path;
use std::time::Instant;

use orfeas_pipeline::segmentation::u2net::session::INPUT_SIZE;
use orfeas_pipeline::segmentation::u2net::{
    BurnExec, Exec, FoldedConv, HostExec, U2Net, U2NetWeights,
};
use orfeas_pipeline::tensor::CpuBackend;

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
        _ => {
            return Err(
                "usage: u2net_bench WEIGHTS BATCH ITERS [--exec host|burn] [--profile]".into(),
            );
        }
    };
    let profile = args.iter().any(|a| a == "--profile");
    let exec = args
        .iter()
        .position(|a| a == "--exec")
        .and_then(|i| args.get(i + 1))
        .map_or("host", String::as_str);
    let weights = U2NetWeights::load(Path::new(&path))?;
    match exec {
        "host" => bench(
            "orfeas-host",
            &HostExec::new(),
            &weights,
            batch,
            iters,
            profile,
        ),
        "burn" => bench(
            "orfeas-burn-ndarray",
            &BurnExec::<CpuBackend>::new(Default::default()),
            &weights,
            batch,
            iters,
            profile,
        ),
        other => Err(format!("--exec {other}: expected host or burn").into()),
    }
}

fn bench<E: Exec>(
    name: &str,
    exec: &E,
    weights: &U2NetWeights,
    batch: usize,
    iters: usize,
    profile: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let t = Instant::now();
    let model = U2Net::new(weights, exec)?;
    let load_s = t.elapsed().as_secs_f64();
    let x = input(batch);
    let shape = [batch, 3, INPUT_SIZE, INPUT_SIZE];
    let run = || exec.values(model.forward(exec, &exec.input(x.clone(), shape)));
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
        "{{\"impl\": \"{name}\", \"model\": \"{}\", \"batch\": {batch}, \"median_s\": {med:.4}, \"best_s\": {best:.4}, \"per_image_s\": {:.4}, \"load_s\": {load_s:.3}, \"d0_sum\": {checksum:.3}}}",
        weights.kind(),
        med / batch as f64
    );
    if profile {
        print_profile(exec, weights, batch);
    }
    Ok(())
}

/// Values in [0, 1) from a fixed sequence: profile inputs need no particular distribution.
fn pattern(len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i as u64).wrapping_mul(2_654_435_761) % 1000) as f32 / 1000.0)
        .collect()
}

/// Each convolution, then pool, resize and residual sum, of one forward, timed alone at its
/// shape.
fn print_profile<E: Exec>(exec: &E, weights: &U2NetWeights, batch: usize) {
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
    let mut by_stage: std::collections::BTreeMap<String, (f64, f64)> = Default::default();
    let mut total_conv = 0.0;
    let mut gmac = 0.0;
    for c in weights.convs() {
        let s = side_of(c);
        let conv = exec.prepare(c);
        // One input per weight part (the decoder convs take `[up, skip]`).
        let shape = [batch, c.shape[1] / c.inputs, s, s];
        let parts: Vec<E::Map> = (0..c.inputs)
            .map(|_| exec.input(pattern(shape.iter().product()), shape))
            .collect();
        let refs: Vec<&E::Map> = parts.iter().collect();
        let t = time(|| exec.conv(&conv, &refs), 3);
        let g = (batch * c.shape.iter().product::<usize>() * s * s) as f64 / 1e9;
        gmac += g;
        total_conv += t;
        let stage = c.key.split('.').next().unwrap().to_string();
        let e = by_stage.entry(stage).or_default();
        e.0 += t;
        e.1 += g;
    }
    println!(
        "{{\"profile\": \"convs\", \"seconds\": {total_conv:.4}, \"gmac\": {gmac:.2}, \"gmac_per_s\": {:.1}}}",
        gmac / total_conv
    );
    for (stage, (t, g)) in by_stage {
        println!(
            "{{\"profile\": \"conv {stage}\", \"seconds\": {t:.4}, \"gmac\": {g:.3}, \"gmac_per_s\": {:.1}}}",
            g / t
        );
    }
    let c = config.encoder[0].out_ch;
    let full = [batch, c, INPUT_SIZE, INPUT_SIZE];
    let x = exec.input(pattern(full.iter().product()), full);
    let half_shape = [batch, c, INPUT_SIZE / 2, INPUT_SIZE / 2];
    let half = exec.input(pattern(half_shape.iter().product()), half_shape);
    let pool = time(|| exec.pool(&x), 3);
    let up = time(|| exec.upsample_like(&half, &x), 3);
    let y = exec.input(pattern(full.iter().product()), full);
    let add = time(
        || exec.add(exec.input(pattern(full.iter().product()), full), &y),
        3,
    );
    let copy = time(|| exec.input(pattern(full.iter().product()), full), 3);
    println!(
        "{{\"profile\": \"at 320x320, {c} channels: pool {pool:.4} s, 2x bilinear from 160 {up:.4} s, add {:.4} s (after making its input, {copy:.4} s)\"}}",
        (add - copy).max(0.0)
    );
}
