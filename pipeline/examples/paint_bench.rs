//! Our side of `bench/paint.sh`: Hunyuan3D-Paint's two diffusion loops on the folders and inputs
//! `bench/paint_reference.py` wrote, timed as that script times the reference (each call whole:
//! VAE encodes, the denoising loop, the decode; after an untimed call of one step).
//!
//!     cargo run --release -p orfeas-pipeline --example paint_bench -- \
//!         --delight DIR --paint DIR --inputs DIR [--delight-steps 50] [--view-steps 30] \
//!         [--meshes 1] [--device cpu|cuda:N] [--dtype f32|f16]
//!
//! `--meshes N` runs the multiview loop on N meshes in one batch (the same inputs each). Prints
//! one JSON line.

#![allow(clippy::print_stdout, clippy::unwrap_used)] // a command-line tool

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::{DType, Tensor, backend::Backend};
use orfeas_pipeline::diffusion::delight::{DelightModel, DelightSettings};
use orfeas_pipeline::diffusion::noise::{Noise, SeededNoise};
use orfeas_pipeline::diffusion::views::{ViewModel, ViewRequest, ViewSettings};
use orfeas_pipeline::texture::paint::images::to_tensor;
use orfeas_vocab::{Device, Dtype};

struct Args {
    delight: PathBuf,
    paint: PathBuf,
    inputs: PathBuf,
    delight_steps: usize,
    view_steps: usize,
    meshes: usize,
    device: Device,
    dtype: Dtype,
}

fn parse() -> Result<Args, String> {
    let args: Vec<String> = std::env::args().collect();
    let get = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let need = |name: &str| get(name).ok_or_else(|| format!("{name} is required"));
    let num = |name: &str, default: usize| {
        get(name).map_or(Ok(default), |v| {
            v.parse().map_err(|e| format!("{name}: {e}"))
        })
    };
    Ok(Args {
        delight: need("--delight")?.into(),
        paint: need("--paint")?.into(),
        inputs: need("--inputs")?.into(),
        delight_steps: num("--delight-steps", 50)?,
        view_steps: num("--view-steps", 30)?,
        meshes: num("--meshes", 1)?,
        device: get("--device")
            .map_or(Ok(Device::Cpu), |d| d.parse().map_err(|e| format!("{e}")))?,
        dtype: get("--dtype").map_or(Ok(Dtype::F32), |d| d.parse().map_err(|e| format!("{e}")))?,
    })
}

fn image<B: Backend>(dir: &Path, name: &str, device: &B::Device) -> Tensor<B, 4> {
    let img = image::open(dir.join(name)).unwrap().to_rgb8();
    to_tensor(&img, device)
}

fn sync<B: Backend>(t: Tensor<B, 4>) {
    // Reading a value back waits for the device's queue.
    let _ = t.slice([0..1, 0..1, 0..1, 0..1]).into_data();
}

fn bench<B: Backend>(
    a: &Args,
    device: &B::Device,
    dtype: DType,
) -> Result<(), Box<dyn std::error::Error>> {
    let t = Instant::now();
    let delight = DelightModel::<B>::load(&a.delight, device, dtype)?;
    let views = ViewModel::<B>::load(&a.paint, device, dtype)?;
    let load = t.elapsed().as_secs_f64();
    let reference = image::<B>(&a.inputs, "reference.png", device);
    let maps = |kind: &str| {
        Tensor::cat(
            (0..6)
                .map(|k| image::<B>(&a.inputs, &format!("{kind}_{k}.png"), device))
                .collect(),
            0,
        )
    };
    let (normals, positions) = (maps("normal"), maps("position"));
    let [_, _, view, _] = reference.dims();

    let run_delight = |steps: usize| {
        let mut noise = SeededNoise::new(42, 1);
        let settings = DelightSettings {
            steps,
            ..DelightSettings::REFERENCE
        };
        let out = delight
            .run(
                reference.clone(),
                &settings,
                &mut [&mut noise as &mut dyn Noise],
                &mut |_, _| true,
            )
            .unwrap();
        sync(out);
    };
    let requests: Vec<ViewRequest<B>> = (0..a.meshes)
        .map(|_| ViewRequest {
            reference: reference.clone(),
            normals: normals.clone(),
            positions: positions.clone(),
        })
        .collect();
    let cameras = [21, 12, 15, 18, 43, 37];
    let run_views = |steps: usize| {
        let mut streams: Vec<SeededNoise> = (0..a.meshes as u64)
            .map(|m| SeededNoise::new(m, 2))
            .collect();
        let mut noises: Vec<&mut dyn Noise> =
            streams.iter_mut().map(|n| n as &mut dyn Noise).collect();
        let settings = ViewSettings {
            steps,
            ..ViewSettings::REFERENCE
        };
        let out = views
            .run(&requests, &cameras, &settings, &mut noises, &mut |_, _| {
                true
            })
            .unwrap();
        sync(out);
    };
    run_delight(1);
    let t = Instant::now();
    run_delight(a.delight_steps);
    let delight_s = t.elapsed().as_secs_f64();
    run_views(1);
    let t = Instant::now();
    run_views(a.view_steps);
    let views_s = t.elapsed().as_secs_f64();
    println!(
        "{{\"side\": \"orfeas\", \"device\": \"{}\", \"dtype\": \"{}\", \"view\": {view}, \"threads\": {}, \"meshes\": {}, \"delight_steps\": {}, \"view_steps\": {}, \"load_s\": {load:.3}, \"seconds\": {{\"delight\": {delight_s:.4}, \"multiview\": {views_s:.4}}}}}",
        a.device,
        a.dtype,
        rayon::current_num_threads(),
        a.meshes,
        a.delight_steps,
        a.view_steps
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = parse()?;
    let dtype = orfeas_pipeline::shape::hunyuan3d::burn_dtype(a.dtype);
    match a.device {
        Device::Cpu => bench::<orfeas_pipeline::tensor::CpuBackend>(&a, &Default::default(), dtype),
        #[cfg(feature = "cuda")]
        Device::Cuda(i) => bench::<orfeas_pipeline::tensor::GpuBackend>(
            &a,
            &burn_cuda::CudaDevice::new(i as usize),
            dtype,
        ),
        #[cfg(not(feature = "cuda"))]
        Device::Cuda(_) => Err("this build has no `cuda` feature".into()),
    }
}
