//! Times one forward of the Hunyuan3D-2 DiT at a released size with random weights.
//!
//!     cargo run --release -p orfeas-pipeline --example dit_bench -- --preset v2-0 --batch 1
//!     cargo run --release -p orfeas-pipeline --features cuda --example dit_bench -- \
//!         --device cuda --dtype f16 --preset v2-0 --batch 1
//!
//! With CFG (non-distilled presets) the model runs on 2·batch sequences, as the sampler does.
//! `--latents`/`--cond-tokens` shrink the sequence for a quick CPU run. Prints one JSON line; the
//! reference counterpart is `bench/dit_reference.py` (same shapes, PyTorch).
// A command-line benchmark: its usage errors go to stderr.
#![allow(clippy::print_stderr)]

use std::time::Instant;

use burn::tensor::{Distribution, Tensor, backend::Backend};
use orfeas_pipeline::shape::hunyuan3d::{Hunyuan3dDit, Preset};
use orfeas_vocab::{Device, Dtype};

struct Args {
    preset: Preset,
    batch: usize,
    dtype: Dtype,
    device: Device,
    iters: usize,
    warmup: usize,
    latents: Option<usize>,
    cond_tokens: usize,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        preset: Preset::V2_0,
        batch: 1,
        dtype: Dtype::F32,
        device: Device::Cpu,
        iters: 5,
        warmup: 2,
        latents: None,
        cond_tokens: 1370,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--preset" => {
                let v = val()?;
                a.preset = Preset::ALL
                    .into_iter()
                    .find(|p| p.folder().trim_start_matches("hunyuan3d-dit-") == v)
                    .ok_or(format!(
                        "unknown preset {v} (v2-0, v2-0-fast, v2-0-turbo, v2-mini, ...)"
                    ))?;
            }
            "--batch" => a.batch = val()?.parse().map_err(|e| format!("--batch: {e}"))?,
            "--dtype" => a.dtype = val()?.parse().map_err(|e| format!("--dtype: {e}"))?,
            "--device" => a.device = val()?.parse().map_err(|e| format!("--device: {e}"))?,
            "--iters" => a.iters = val()?.parse().map_err(|e| format!("--iters: {e}"))?,
            "--warmup" => a.warmup = val()?.parse().map_err(|e| format!("--warmup: {e}"))?,
            "--latents" => a.latents = Some(val()?.parse().map_err(|e| format!("--latents: {e}"))?),
            "--cond-tokens" => {
                a.cond_tokens = val()?.parse().map_err(|e| format!("--cond-tokens: {e}"))?
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(a)
}

fn run<B: Backend>(args: &Args, device: &B::Device) {
    let cfg = args.preset.dit();
    let mini = matches!(
        args.preset,
        Preset::V2Mini | Preset::V2MiniFast | Preset::V2MiniTurbo
    );
    let latents = args.latents.unwrap_or(if mini { 512 } else { 3072 });
    let dit = Hunyuan3dDit::<B>::new(&cfg, device);
    let rows = if cfg.guidance_embed {
        args.batch
    } else {
        2 * args.batch
    };
    let x = Tensor::<B, 3>::random(
        [rows, latents, cfg.in_channels],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    let cond = Tensor::<B, 3>::random(
        [rows, args.cond_tokens, cfg.context_in_dim],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    let t = vec![0.5f32; rows];
    let g = vec![5.0f32; rows];
    let guidance = cfg.guidance_embed.then_some(g.as_slice());
    let start = Instant::now();
    // The first call materialises the random weights.
    let _ = dit
        .forward(x.clone(), &t, cond.clone(), guidance)
        .sum()
        .into_scalar();
    let init_s = start.elapsed().as_secs_f64();
    for _ in 1..args.warmup {
        let _ = dit
            .forward(x.clone(), &t, cond.clone(), guidance)
            .sum()
            .into_scalar();
    }
    let mut times = Vec::with_capacity(args.iters);
    for _ in 0..args.iters {
        let s = Instant::now();
        let _ = dit
            .forward(x.clone(), &t, cond.clone(), guidance)
            .sum()
            .into_scalar();
        times.push(s.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let line = format!(
        "{{\"impl\":\"orfeas-burn\",\"preset\":\"{}\",\"device\":\"{}\",\"dtype\":\"{}\",\"batch\":{},\"rows\":{rows},\"latents\":{latents},\"cond_tokens\":{},\"first_call_s\":{init_s:.2},\"median_ms\":{:.2},\"min_ms\":{:.2}}}",
        args.preset.folder(),
        args.device,
        args.dtype,
        args.batch,
        args.cond_tokens,
        times[times.len() / 2],
        times[0]
    );
    std::io::Write::write_all(&mut std::io::stdout(), format!("{line}\n").as_bytes()).ok();
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("dit_bench: {e}");
            std::process::exit(2);
        }
    };
    if args.iters == 0 {
        eprintln!("dit_bench: --iters must be at least 1");
        std::process::exit(2);
    }
    match (args.device, args.dtype) {
        (Device::Cpu, Dtype::F32) => run::<burn::backend::NdArray<f32>>(&args, &Default::default()),
        #[cfg(feature = "cuda")]
        (Device::Cuda(i), Dtype::F32) => {
            run::<burn_cuda::Cuda<f32, i32>>(&args, &burn_cuda::CudaDevice::new(i as usize))
        }
        #[cfg(feature = "cuda")]
        (Device::Cuda(i), Dtype::F16) => {
            run::<burn_cuda::Cuda<half::f16, i32>>(&args, &burn_cuda::CudaDevice::new(i as usize))
        }
        #[cfg(feature = "cuda")]
        (Device::Cuda(i), Dtype::Bf16) => {
            run::<burn_cuda::Cuda<half::bf16, i32>>(&args, &burn_cuda::CudaDevice::new(i as usize))
        }
        (d, t) => {
            eprintln!(
                "dit_bench: unsupported --device {d} --dtype {t} (cpu: f32; cuda needs --features cuda: f32, f16, bf16)"
            );
            std::process::exit(2);
        }
    }
}
