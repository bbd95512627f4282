//! The non-diffusion half of texturing, timed and shown (`bench/texture.sh` drives it):
//!
//!     texture_bench stages MESH.obj [--render 2048] [--texture 2048] [--device cpu|cuda:N]
//!         unwrap; normal + position maps of the six reference views at `--render`²; a bake of
//!         six view images at that size into a `--texture`² texture; inpainting. Prints each
//!         step's wall time and the total. `--device` picks the rasterizer as a worker on that
//!         device does (a GPU's is warmed up first: its kernels compile on first use).
//!     texture_bench unwrap IN.obj OUT.obj [--texture 1024]
//!         our atlas of IN, written with `vt` for bench/uv_quality.py (a `# uv_time_s:` line
//!         carries the unwrap time).
//!     texture_bench show OUT.png MESH.obj...
//!         shaded three-quarter views of meshes we wrote (their texture, else their vertex
//!         colours), side by side.

// A command-line tool reports on stdout and fails loudly on bad input.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::expect_used,
    clippy::unwrap_used
)]

use std::path::Path;
use std::time::Instant;

use orfeas_pipeline::mesh::Mesh;
use orfeas_pipeline::texture::bake::{BakeRules, BakeView, back_project};
use orfeas_pipeline::texture::camera::{OrthoView, PAINT_VIEWS, PaintNormalization, PaintView};
use orfeas_pipeline::texture::raster::{Rasterizer, rasterize_clip, rasterizer_for};
use orfeas_pipeline::texture::render::PaintMesh;
use orfeas_pipeline::texture::{SourceImage, atlas, fill_texture};
use orfeas_vocab::Device;

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect("a number"))
}

/// Positions, triangles and (if present) UVs of an OBJ, with the texture its MTL names.
fn read_obj(path: &Path) -> Mesh {
    let text = std::fs::read_to_string(path).expect("obj");
    let mut positions = Vec::new();
    let mut colours = Vec::new();
    let mut vts: Vec<[f32; 2]> = Vec::new();
    let mut triangles = Vec::new();
    let mut texture_file = None;
    for line in text.lines() {
        let mut it = line.split_whitespace();
        match it.next() {
            Some("v") => {
                let v: Vec<f32> = it.map(|x| x.parse().expect("float")).collect();
                positions.push([v[0], v[1], v[2]]);
                if v.len() >= 6 {
                    colours.push([v[3], v[4], v[5]].map(|c| (c * 255.0).round() as u8));
                }
            }
            Some("vt") => {
                let v: Vec<f32> = it.map(|x| x.parse().expect("float")).collect();
                vts.push([v[0], 1.0 - v[1]]);
            }
            Some("f") => {
                let idx: Vec<u32> = it
                    .map(|c| {
                        c.split('/')
                            .next()
                            .expect("index")
                            .parse::<u32>()
                            .expect("int")
                            - 1
                    })
                    .collect();
                for k in 1..idx.len() - 1 {
                    triangles.push([idx[0], idx[k], idx[k + 1]]);
                }
            }
            Some("mtllib") => {
                let mtl = path.with_file_name(it.next().expect("mtl name"));
                if let Ok(m) = std::fs::read_to_string(mtl) {
                    texture_file = m
                        .lines()
                        .find_map(|l| l.strip_prefix("map_Kd "))
                        .map(|f| path.with_file_name(f.trim()));
                }
            }
            _ => {}
        }
    }
    let uvs = (vts.len() == positions.len() && !vts.is_empty()).then_some(vts);
    Mesh {
        colors: (colours.len() == positions.len() && !colours.is_empty()).then_some(colours),
        texture: texture_file.map(|f| image::open(f).expect("texture").to_rgb8()),
        uvs,
        positions,
        triangles,
    }
}

fn stages(args: &[String]) {
    let mesh = read_obj(Path::new(&args[0]));
    let render = arg(args, "--render", 2048);
    let texture = arg(args, "--texture", 2048);
    let device: Device = args
        .iter()
        .position(|a| a == "--device")
        .and_then(|i| args.get(i + 1))
        .map_or(Device::Cpu, |d| d.parse().expect("a device: cpu or cuda:N"));
    let rasterizer = rasterizer_for(device);
    let rasterizer: &dyn Rasterizer = rasterizer.as_ref();
    println!(
        "mesh: {} faces, {} vertices; render {render}², texture {texture}²; {} threads; rasterizer {}",
        mesh.triangles.len(),
        mesh.positions.len(),
        rayon::current_num_threads(),
        rasterizer.name()
    );
    if device != Device::Cpu {
        let t = Instant::now();
        let placed = PaintMesh::new(&mesh.positions, &mesh.triangles);
        let _ = placed.render_normal(rasterizer, &PAINT_VIEWS[0], render, render);
        println!(
            "warm-up           {:>8.3} s  (not counted)",
            t.elapsed().as_secs_f64()
        );
    }
    let total = Instant::now();
    let t = Instant::now();
    let atlas = atlas::unwrap(&mesh, texture as u32, || true).expect("unwrap");
    println!(
        "unwrap            {:>8.3} s  ({} charts, {:.1} % of the page)",
        t.elapsed().as_secs_f64(),
        atlas.charts,
        atlas.utilization * 100.0
    );
    let uv_mesh = atlas.mesh;

    let t = Instant::now();
    let placed = PaintMesh::new(&uv_mesh.positions, &uv_mesh.triangles);
    let mut maps = Vec::new();
    for view in &PAINT_VIEWS {
        maps.push(placed.render_normal(rasterizer, view, render, render));
        maps.push(placed.render_position(rasterizer, view, render, render));
    }
    println!(
        "render 6 views    {:>8.3} s  (normal + position maps, {} images)",
        t.elapsed().as_secs_f64(),
        maps.len()
    );

    // Six view images to bake: the position maps stand in for the diffusion model's output.
    let images: Vec<SourceImage> = maps
        .iter()
        .skip(1)
        .step_by(2)
        .map(|m| SourceImage {
            size: render,
            rgb: m.iter().map(|c| c.map(|v| v * 255.0)).collect(),
        })
        .collect();
    let norm = PaintNormalization::of(&uv_mesh.positions);
    let t = Instant::now();
    let views: Vec<BakeView<'_>> = PAINT_VIEWS
        .iter()
        .zip(&images)
        .map(|(v, image)| BakeView {
            view: OrthoView::paint(v, &norm, render, render),
            image,
            weight: v.weight,
        })
        .collect();
    let normals = uv_mesh.vertex_normals();
    let baked = back_project(
        rasterizer,
        &uv_mesh,
        &normals,
        &views,
        texture,
        BakeRules::REFERENCE,
    );
    let seen = (0..texture * texture).filter(|&t| baked.seen(t)).count();
    println!(
        "bake 6 views      {:>8.3} s  ({seen} texels seen)",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let filled = fill_texture(&uv_mesh, &baked);
    println!(
        "inpaint           {:>8.3} s  ({} texels)",
        t.elapsed().as_secs_f64(),
        filled.len()
    );
    println!("total             {:>8.3} s", total.elapsed().as_secs_f64());
}

fn unwrap(args: &[String]) {
    let mesh = read_obj(Path::new(&args[0]));
    let size = arg(args, "--texture", 1024);
    let t = Instant::now();
    let atlas = atlas::unwrap(&mesh, size as u32, || true).expect("unwrap");
    let secs = t.elapsed().as_secs_f64();
    let mut out = format!("# uv_time_s: {secs:.6}\n");
    for p in &atlas.mesh.positions {
        out.push_str(&format!("v {} {} {}\n", p[0], p[1], p[2]));
    }
    for uv in atlas.mesh.uvs.as_ref().expect("uvs") {
        out.push_str(&format!("vt {:.6} {:.6}\n", uv[0], 1.0 - uv[1]));
    }
    for t in &atlas.mesh.triangles {
        let [a, b, c] = t.map(|i| i + 1);
        out.push_str(&format!("f {a}/{a} {b}/{b} {c}/{c}\n"));
    }
    std::fs::write(&args[1], out).expect("write");
    println!(
        "{}: {} charts, {:.1} % of the page, {secs:.3} s",
        args[0],
        atlas.charts,
        atlas.utilization * 100.0
    );
}

/// Three-quarter views of meshes, side by side.
fn show(args: &[String]) {
    let size = 512u32;
    let views: Vec<image::RgbImage> = args[1..].iter().map(|m| view(Path::new(m))).collect();
    let mut out = image::RgbImage::new(size * views.len() as u32, size);
    for (i, v) in views.iter().enumerate() {
        image::imageops::replace(&mut out, v, i64::from(i as u32 * size), 0);
    }
    out.save(&args[0]).expect("png");
}

/// A three-quarter view, Lambert-shaded, of the mesh's texture or vertex colours.
fn view(path: &Path) -> image::RgbImage {
    let mesh = read_obj(path);
    let size = 512;
    let view = PaintView {
        azimuth: 30.0,
        elevation: 15.0,
        weight: 1.0,
    };
    let placed = PaintMesh::new(&mesh.positions, &mesh.triangles);
    let raster = rasterize_clip(&placed.clip(&view), &mesh.triangles, size, size);
    let normals = raster.interpolate(&mesh.triangles, &mesh.vertex_normals());
    let uvs = mesh
        .uvs
        .as_ref()
        .map(|uv| raster.interpolate(&mesh.triangles, uv));
    let colours: Option<Vec<[f32; 3]>> = mesh
        .colors
        .as_ref()
        .map(|c| c.iter().map(|c| c.map(f32::from)).collect());
    let vertex = colours
        .as_ref()
        .map(|c| raster.interpolate(&mesh.triangles, c));
    let (el, az) = (15f32.to_radians(), 30f32.to_radians());
    let light = [
        el.cos() * az.sin() + 0.3,
        el.sin() + 0.4,
        el.cos() * az.cos(),
    ];
    let ll = (light[0] * light[0] + light[1] * light[1] + light[2] * light[2]).sqrt();
    image::RgbImage::from_fn(size as u32, size as u32, |x, y| {
        let p = y as usize * size + x as usize;
        let Some(n) = normals[p] else {
            return image::Rgb([255, 255, 255]);
        };
        let nl = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt().max(1e-6);
        let lambert = ((n[0] * light[0] + n[1] * light[1] + n[2] * light[2]) / (nl * ll)).max(0.0);
        let shade = 0.35 + 0.65 * lambert;
        let base = match (&uvs, &mesh.texture, &vertex) {
            (Some(uvs), Some(tex), _) => {
                let uv = uvs[p].expect("covered");
                let (w, h) = tex.dimensions();
                let tx = ((uv[0] * w as f32) as u32).min(w - 1);
                let ty = ((uv[1] * h as f32) as u32).min(h - 1);
                tex.get_pixel(tx, ty).0.map(f32::from)
            }
            (_, _, Some(v)) => v[p].expect("covered"),
            _ => [200.0; 3],
        };
        image::Rgb(base.map(|c| (c * shade).clamp(0.0, 255.0) as u8))
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("stages") => stages(&args[1..]),
        Some("unwrap") => unwrap(&args[1..]),
        Some("show") => show(&args[1..]),
        _ => {
            eprintln!("usage: texture_bench stages|unwrap|show … (see the source's header)");
            std::process::exit(2);
        }
    }
}
