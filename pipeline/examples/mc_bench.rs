//! Marching-cubes timing on a volume that is also written to disk, so that
//! `bench/mc_vs_skimage.py` can time scikit-image on the very same samples.
//!
//!     cargo run --release -p orfeas-pipeline --example mc_bench -- SHAPE N OUT.raw REPEAT
//!
//! SHAPE: `sphere` (SDF, radius 0.8 of the half-box), `gyroid` (a surface filling the box) or
//! `inflate` (the inflate engine's occupancy volume of samples/apple.jpg at resolution N−1).
//! Prints one JSON line: median and best seconds, vertex and triangle counts.

use std::time::Instant;

use orfeas_pipeline::image::{ImageLimits, PreprocessOptions, load_image, preprocess};
use orfeas_pipeline::shape::inflate::occupancy_volume;
use orfeas_pipeline::shape::{Volume, marching_cubes};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, shape, n, out, repeat] = args.as_slice() else {
        return Err("usage: mc_bench SHAPE N OUT.raw REPEAT".into());
    };
    let n: usize = n.parse()?;
    let repeat: usize = repeat.parse()?;
    let h = 2.0 / (n - 1) as f32;
    let coord = |i: usize| -1.0 + i as f32 * h;
    let vol = match shape.as_str() {
        "sphere" => Volume::from_fn([n, n, n], |i, j, k| {
            let (x, y, z) = (coord(i), coord(j), coord(k));
            0.8 - (x * x + y * y + z * z).sqrt()
        }),
        "gyroid" => Volume::from_fn([n, n, n], |i, j, k| {
            let s = 2.0 * std::f32::consts::PI;
            let (x, y, z) = (coord(i) * s, coord(j) * s, coord(k) * s);
            x.sin() * y.cos() + y.sin() * z.cos() + z.sin() * x.cos()
        }),
        "inflate" => {
            let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/apple.jpg");
            let img = load_image(&std::fs::read(root)?, &ImageLimits::default())?;
            let pre = preprocess(&img, &PreprocessOptions::default())?;
            occupancy_volume(&pre, n - 1, 1.0)?
        }
        other => return Err(format!("unknown shape {other}").into()),
    };
    let bytes: Vec<u8> = vol.data.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(out, bytes)?;
    let mut times = Vec::new();
    let mut counts = (0, 0);
    for _ in 0..repeat {
        let start = Instant::now();
        let mesh = marching_cubes(&vol, 0.0);
        times.push(start.elapsed().as_secs_f64());
        counts = (mesh.positions.len(), mesh.triangles.len());
    }
    times.sort_by(f64::total_cmp);
    let line = format!(
        "{{\"impl\": \"orfeas\", \"shape\": \"{shape}\", \"n\": {n}, \"median_s\": {:.5}, \"best_s\": {:.5}, \"vertices\": {}, \"triangles\": {}}}",
        times[times.len() / 2],
        times[0],
        counts.0,
        counts.1
    );
    std::io::Write::write_all(&mut std::io::stdout(), format!("{line}\n").as_bytes())?;
    Ok(())
}
