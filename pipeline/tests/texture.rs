//! UV texturing on analytic meshes (sphere, cube, torus) with analytic images: the rasterizer
//! against closed-form positions and normals, atlases without overlapping charts, bake-then-render
//! round trips, and inpainting that leaves no chart texel unfilled.

#[path = "texture_support/meshes.rs"]
mod meshes;

use orfeas_pipeline::image::{PreprocessedImage, Segmentation, SegmentationMethod};
use orfeas_pipeline::mesh::Mesh;
use orfeas_pipeline::shape::ViewFrame;
use orfeas_pipeline::texture::bake::{BakeRules, BakeView, back_project, uv_raster};
use orfeas_pipeline::texture::camera::OrthoView;
use orfeas_pipeline::texture::raster::{HostRasterizer, NO_FACE, rasterize};
use orfeas_pipeline::texture::{SourceImage, atlas, bake_image};

fn front(size: usize) -> OrthoView {
    OrthoView::from_frame(&ViewFrame::FRONT_Z, size)
}

/// World x, y of a pixel centre of the front view (the image spans [-1, 1]², y up).
fn pixel_world(i: usize, j: usize, size: usize) -> (f32, f32) {
    let k = size as f32 / 2.0;
    ((i as f32 + 0.5) / k - 1.0, 1.0 - (j as f32 + 0.5) / k)
}

fn unit(v: [f32; 3]) -> [f32; 3] {
    let l = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    v.map(|x| x / l)
}

#[test]
fn rasterized_positions_and_normals_match_the_sphere() {
    let r = 0.8;
    let sphere = meshes::sphere(r, 4);
    let size = 256;
    let view = front(size);
    let corners: Vec<[f32; 3]> = sphere.positions.iter().map(|&p| view.project(p)).collect();
    let raster = rasterize(&corners, &sphere.triangles, size, size);
    let positions = raster.interpolate(&sphere.triangles, &sphere.positions);
    let normals = raster.interpolate(&sphere.triangles, &sphere.vertex_normals());
    let (mut checked, mut worst_z, mut worst_angle) = (0, 0f32, 0f32);
    for j in 0..size {
        for i in 0..size {
            let (x, y) = pixel_world(i, j, size);
            let rho2 = x * x + y * y;
            let px = j * size + i;
            if rho2 > r * r * 1.0001 {
                assert!(
                    !raster.covered(px),
                    "pixel ({i}, {j}) outside the disk is covered"
                );
                continue;
            }
            if rho2 > (0.95 * r) * (0.95 * r) {
                continue; // the polygonal rim
            }
            let p = positions[px].expect("inside the disk is covered");
            assert!((p[0] - x).abs() < 1e-4 && (p[1] - y).abs() < 1e-4);
            // The front (nearest) surface, z > 0.
            worst_z = worst_z.max((p[2] - (r * r - rho2).sqrt()).abs());
            let n = unit(normals[px].expect("normal"));
            let truth = unit(p);
            let cos = n[0] * truth[0] + n[1] * truth[1] + n[2] * truth[2];
            worst_angle = worst_angle.max(cos.clamp(-1.0, 1.0).acos().to_degrees());
            checked += 1;
        }
    }
    assert!(checked > 25_000, "{checked}");
    assert!(worst_z < 0.01, "depth error {worst_z}");
    assert!(worst_angle < 2.0, "normal error {worst_angle}°");
}

/// Counts, per texel centre, the UV triangles strictly containing it; 2 anywhere is an overlap.
fn overlapping_texels(mesh: &Mesh, size: usize) -> usize {
    let uvs = mesh.uvs.as_ref().expect("uvs");
    let s = size as f64;
    let mut count = vec![0u8; size * size];
    for t in &mesh.triangles {
        let [a, b, c] = t.map(|i| uvs[i as usize].map(|v| f64::from(v) * s));
        let area = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]);
        if area.abs() < 1e-12 {
            continue;
        }
        let lo = |k: usize| (a[k].min(b[k]).min(c[k]) - 0.5).ceil().max(0.0) as usize;
        let hi =
            |k: usize| ((a[k].max(b[k]).max(c[k]) - 0.5).floor().max(0.0) as usize).min(size - 1);
        for j in lo(1)..=hi(1) {
            for i in lo(0)..=hi(0) {
                let (px, py) = (i as f64 + 0.5, j as f64 + 0.5);
                let e = |p: [f64; 2], q: [f64; 2]| {
                    ((q[0] - p[0]) * (py - p[1]) - (q[1] - p[1]) * (px - p[0])) / area
                };
                // Strictly inside, by a margin: shared edges are not overlaps.
                if e(a, b) > 1e-6 && e(b, c) > 1e-6 && e(c, a) > 1e-6 {
                    count[j * size + i] = count[j * size + i].saturating_add(1);
                }
            }
        }
    }
    count.iter().filter(|&&n| n > 1).count()
}

fn analytic_meshes() -> Vec<(&'static str, Mesh)> {
    vec![
        ("sphere", meshes::sphere(0.8, 4)),
        ("cube", meshes::cube(0.6, 8)),
        ("torus", meshes::torus(0.6, 0.25, 64, 32)),
    ]
}

#[test]
fn atlases_have_no_overlapping_charts_and_keep_every_triangle() {
    for (name, mesh) in analytic_meshes() {
        let a = atlas::unwrap(&mesh, 1024, || true).expect(name);
        assert_eq!(a.mesh.triangles.len(), mesh.triangles.len(), "{name}");
        let uvs = a.mesh.uvs.as_ref().expect("uvs");
        assert!(
            uvs.iter().flatten().all(|v| (0.0..=1.0).contains(v)),
            "{name}"
        );
        // Every output vertex sits where its source vertex was.
        for (v, &src) in a.source_vertex.iter().enumerate() {
            assert_eq!(a.mesh.positions[v], mesh.positions[src as usize], "{name}");
        }
        assert_eq!(
            overlapping_texels(&a.mesh, 2048),
            0,
            "{name}: overlapping charts"
        );
        assert!(a.utilization > 0.3, "{name}: utilization {}", a.utilization);
        assert!(a.charts >= 1, "{name}");
    }
}

fn image_of(size: usize, colour: impl Fn(f32, f32) -> [u8; 3]) -> PreprocessedImage {
    let mut rgb = Vec::with_capacity(size * size * 3);
    for j in 0..size {
        for i in 0..size {
            let (x, y) = pixel_world(i, j, size);
            rgb.extend(colour(x, y));
        }
    }
    PreprocessedImage {
        size,
        rgb,
        mask: vec![255; size * size],
        segmentation: Segmentation {
            method: SegmentationMethod::Alpha,
            mask_share: 1.0,
        },
    }
}

/// A smooth colour field over the image plane.
fn field(x: f32, y: f32) -> [f32; 3] {
    [
        128.0 + 90.0 * (2.5 * x).sin() * (1.5 * y).cos(),
        128.0 + 90.0 * (1.7 * y + 0.4).sin(),
        128.0 + 80.0 * (2.0 * (x + y)).cos(),
    ]
}

fn psnr(pairs: &[([f32; 3], [f32; 3])]) -> f64 {
    let mse = pairs
        .iter()
        .map(|(a, b)| (0..3).map(|k| f64::from(a[k] - b[k]).powi(2)).sum::<f64>() / 3.0)
        .sum::<f64>()
        / pairs.len() as f64;
    10.0 * (255.0f64 * 255.0 / mse.max(1e-12)).log10()
}

#[test]
fn baking_then_rendering_reproduces_the_image() {
    let view_size = 512;
    let image = image_of(view_size, |x, y| field(x, y).map(|v| v.round() as u8));
    let source = SourceImage::new(&image);
    for (name, mesh) in analytic_meshes() {
        let a = atlas::unwrap(&mesh, 1024, || true).expect(name);
        let mesh = a.mesh;
        let normals = mesh.vertex_normals();
        let views = [BakeView {
            view: front(view_size),
            image: &source,
            weight: 1.0,
        }];
        let baked = back_project(
            &HostRasterizer,
            &mesh,
            &normals,
            &views,
            1024,
            BakeRules::REFERENCE,
        );
        // Seen texels carry the colour of the point they show.
        let points = baked.uv.interpolate(&mesh.triangles, &mesh.positions);
        let seen: Vec<([f32; 3], [f32; 3])> = (0..1024 * 1024)
            .filter(|&t| baked.seen(t))
            .map(|t| {
                let p = points[t].expect("seen texels lie on a face");
                (baked.rgb[t], field(p[0], p[1]))
            })
            .collect();
        assert!(seen.len() > 50_000, "{name}: {} texels seen", seen.len());
        let texel_psnr = psnr(&seen);
        assert!(
            texel_psnr >= 35.0,
            "{name}: seen texels at {texel_psnr:.1} dB"
        );

        // Rendering the baked texture from the same view gives the image back.
        let texture: Vec<[f32; 3]> = baked.rgb.clone();
        let corners: Vec<[f32; 3]> = mesh
            .positions
            .iter()
            .map(|&p| front(view_size).project(p))
            .collect();
        let raster = rasterize(&corners, &mesh.triangles, view_size, view_size);
        let uvs = raster.interpolate(&mesh.triangles, mesh.uvs.as_ref().expect("uvs"));
        let pixel_normals = raster.interpolate(&mesh.triangles, &normals);
        let mut rendered = Vec::new();
        for j in 0..view_size {
            for i in 0..view_size {
                let px = j * view_size + i;
                let (Some(uv), Some(n)) = (uvs[px], pixel_normals[px]) else {
                    continue;
                };
                // Faces turned well toward the viewer (the bake's weight is cos⁴).
                if unit(n)[2] < 0.3 {
                    continue;
                }
                let t = ((uv[1] * 1024.0) as usize).min(1023) * 1024
                    + ((uv[0] * 1024.0) as usize).min(1023);
                if !baked.seen(t) {
                    continue;
                }
                let (x, y) = pixel_world(i, j, view_size);
                rendered.push((texture[t], field(x, y)));
            }
        }
        assert!(rendered.len() > 20_000, "{name}: {} pixels", rendered.len());
        let render_psnr = psnr(&rendered);
        assert!(
            render_psnr >= 35.0,
            "{name}: round trip at {render_psnr:.1} dB"
        );
    }
}

#[test]
fn every_chart_texel_is_coloured_after_inpainting() {
    let colour = [200u8, 100, 50];
    let image = image_of(256, |_, _| colour);
    for (name, mesh) in analytic_meshes() {
        let (out, report) = bake_image(
            &HostRasterizer,
            &mesh,
            &image,
            &ViewFrame::FRONT_Z,
            512,
            || true,
        )
        .expect(name);
        let texture = out.texture.as_ref().expect("texture");
        assert_eq!(texture.dimensions(), (512, 512));
        let raster = uv_raster(&HostRasterizer, &out, 512);
        let mut chart_texels = 0;
        for (t, &f) in raster.face.iter().enumerate() {
            if f == NO_FACE {
                continue;
            }
            chart_texels += 1;
            let px = texture.get_pixel((t % 512) as u32, (t / 512) as u32).0;
            for k in 0..3 {
                assert!(
                    px[k].abs_diff(colour[k]) <= 1,
                    "{name}: chart texel {t} is {px:?}"
                );
            }
        }
        assert!(chart_texels > 10_000, "{name}");
        // Front and back saw most of the sphere and torus; the cube's four sides were
        // inpainted.
        assert!(report.seen > 0.3, "{name}: {report:?}");
        if name == "cube" {
            assert!(report.seen < 0.5, "{report:?}");
        }
        // Vertex colours for PLY come from the texture.
        let colours = out.colors.as_ref().expect("vertex colours");
        assert_eq!(colours.len(), out.positions.len());
        assert!(
            colours
                .iter()
                .all(|c| (0..3).all(|k| c[k].abs_diff(colour[k]) <= 1))
        );
    }
}
