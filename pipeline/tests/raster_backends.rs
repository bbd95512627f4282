//! The tensor rasterizer (the GPU's in a CUDA worker; here on burn-ndarray) against the host
//! scan that reproduces the reference: same face ids, barycentrics and depths on triangle soups,
//! the six reference views of a mesh and a UV atlas, at sizes that are not multiples of its tiles
//! and with bins large enough to need several launches.
//!
//! The host computes the reciprocal area and the first weight in f64, the device in f32, so a
//! pixel centre exactly on a shared edge may go to the neighbouring face: the tests allow one
//! such pixel in a thousand and require the weights to agree everywhere else.

// Each comparison reports how many pixels went to another face.
#![allow(clippy::print_stderr)]

#[path = "texture_support/meshes.rs"]
mod meshes;

use orfeas_pipeline::tensor::CpuBackend;
use orfeas_pipeline::texture::atlas;
use orfeas_pipeline::texture::camera::{PAINT_VIEWS, PaintView};
#[cfg(feature = "cuda")]
use orfeas_pipeline::texture::raster::rasterizer_for;
use orfeas_pipeline::texture::raster::{HostRasterizer, Raster, Rasterizer, TensorRasterizer};
use orfeas_pipeline::texture::render::PaintMesh;
#[cfg(feature = "cuda")]
use orfeas_vocab::Device;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn device() -> TensorRasterizer<CpuBackend> {
    TensorRasterizer::new(Default::default())
}

fn host() -> &'static dyn Rasterizer {
    &HostRasterizer
}

/// Compares two rasters; returns the number of covered pixels.
fn assert_agree(what: &str, host: &Raster, tensor: &Raster) -> usize {
    assert_eq!((host.width, host.height), (tensor.width, tensor.height));
    let (mut covered, mut differ) = (0, 0);
    for p in 0..host.face.len() {
        if host.covered(p) {
            covered += 1;
        }
        if host.face[p] != tensor.face[p] {
            differ += 1;
            continue;
        }
        if !host.covered(p) {
            assert!(tensor.depth[p].is_infinite() && tensor.bary[p] == [0.0; 3]);
            continue;
        }
        for k in 0..3 {
            assert!(
                (host.bary[p][k] - tensor.bary[p][k]).abs() <= 2e-5,
                "{what}: pixel {p} weights {:?} vs {:?}",
                host.bary[p],
                tensor.bary[p]
            );
        }
        assert!(
            (host.depth[p] - tensor.depth[p]).abs() <= 1e-5,
            "{what}: pixel {p} depth {} vs {}",
            host.depth[p],
            tensor.depth[p]
        );
    }
    assert!(covered > 0, "{what}: nothing covered");
    eprintln!("{what}: {differ} of {covered} covered pixels on another face");
    assert!(
        differ * 1000 <= covered.max(1000),
        "{what}: {differ} of {covered} covered pixels have another face"
    );
    covered
}

/// Overlapping triangles at random depths: some reaching past the image, some degenerate, some
/// behind the camera (negative depth).
fn soup(n: usize, width: usize, height: usize, seed: u64) -> (Vec<[f32; 3]>, Vec<[u32; 3]>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut corners = Vec::new();
    let mut triangles = Vec::new();
    for f in 0..n {
        let cx = rng.random_range(-0.2..1.2) * width as f32;
        let cy = rng.random_range(-0.2..1.2) * height as f32;
        let size = rng.random_range(1.0..0.6 * width.max(height) as f32);
        let z = rng.random_range(-0.1..1.0);
        let base = corners.len() as u32;
        for _ in 0..3 {
            corners.push([
                cx + rng.random_range(-size..size),
                cy + rng.random_range(-size..size),
                z + rng.random_range(-0.05..0.05),
            ]);
        }
        if f % 17 == 0 {
            // Degenerate: all three corners on a line.
            let [a, b] = [corners[base as usize], corners[base as usize + 1]];
            corners[base as usize + 2] = [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0, a[2]];
        }
        triangles.push([base, base + 1, base + 2]);
    }
    (corners, triangles)
}

fn soups_alike(tensor: &dyn Rasterizer) {
    for (n, w, h, seed) in [(40, 67, 45, 1), (300, 128, 96, 2), (5, 7, 3, 3)] {
        let (corners, triangles) = soup(n, w, h, seed);
        let expected = host().rasterize(&corners, &triangles, w, h);
        let ours = tensor.rasterize(&corners, &triangles, w, h);
        assert_agree(&format!("soup {n} faces {w}×{h}"), &expected, &ours);
    }
}

#[test]
fn triangle_soups_rasterize_alike() {
    soups_alike(&device());
}

fn crowded_alike(tensor: &dyn Rasterizer) {
    // 2 000 large faces over 96×96: every tile's bin holds most of them, so the 144 tiles need
    // several launches of at most 2²² elements.
    let (corners, triangles) = soup(2000, 96, 96, 4);
    let expected = host().rasterize(&corners, &triangles, 96, 96);
    let ours = tensor.rasterize(&corners, &triangles, 96, 96);
    let covered = assert_agree("crowded", &expected, &ours);
    assert!(covered > 96 * 80, "{covered}");
}

#[test]
fn crowded_bins_are_split_into_several_launches() {
    crowded_alike(&device());
}

fn views_alike(tensor: &dyn Rasterizer) {
    let host = host();
    // A torus (curved, self-occluding) and a cube (coplanar faces meeting along diagonals that
    // pass through pixel centres in the axis-aligned views).
    for (name, mesh) in [
        ("torus", meshes::torus(0.6, 0.25, 48, 24)),
        ("cube", meshes::cube(0.5, 4)),
    ] {
        let placed = PaintMesh::new(&mesh.positions, &mesh.triangles);
        for (k, view) in PAINT_VIEWS.iter().enumerate() {
            let view: &PaintView = view;
            let clip = placed.clip(view);
            let a = host.rasterize_clip(&clip, &placed.triangles, 150, 150);
            let b = tensor.rasterize_clip(&clip, &placed.triangles, 150, 150);
            assert_agree(&format!("{name} view {k}"), &a, &b);
            // What the multiview model is fed: equal maps.
            let (na, nb) = (
                placed.render_normal(host, view, 150, 150),
                placed.render_normal(tensor, view, 150, 150),
            );
            let close = na
                .iter()
                .zip(&nb)
                .filter(|(x, y)| x.iter().zip(y.iter()).all(|(p, q)| (p - q).abs() < 1e-4))
                .count();
            assert!(close * 1000 >= na.len() * 999, "{name} view {k}: {close}");
        }
    }
}

#[test]
fn the_six_reference_views_render_alike() {
    views_alike(&device());
}

fn atlas_alike(tensor: &dyn Rasterizer) {
    let mesh = meshes::sphere(0.8, 3);
    let unwrapped = atlas::unwrap(&mesh, 256, || true).expect("unwrap");
    let uvs = unwrapped.mesh.uvs.as_ref().expect("uvs");
    let corners: Vec<[f32; 3]> = uvs
        .iter()
        .map(|uv| [uv[0] * 200.0, uv[1] * 200.0, 0.0])
        .collect();
    let triangles = &unwrapped.mesh.triangles;
    let expected = host().rasterize(&corners, triangles, 200, 200);
    let ours = tensor.rasterize(&corners, triangles, 200, 200);
    // Every chart texel: faces meet along shared edges, where ties go to the lowest id.
    assert_agree("atlas", &expected, &ours);
}

#[test]
fn a_uv_atlas_rasterizes_alike() {
    atlas_alike(&device());
}

#[test]
fn empty_inputs_give_empty_rasters() {
    let tensor = device();
    let tensor: &dyn Rasterizer = &tensor;
    let r = tensor.rasterize(&[], &[], 16, 16);
    assert!(r.face.iter().all(|&f| f == u32::MAX));
    let r = tensor.rasterize(&[[0.0, 0.0, 0.5]; 3], &[[0, 1, 2]], 0, 0);
    assert!(r.face.is_empty());
    // A face naming a missing vertex is skipped, as on the host.
    let r = tensor.rasterize(&[[0.0, 0.0, 0.5]; 2], &[[0, 1, 2]], 8, 8);
    assert!(r.face.iter().all(|&f| f == u32::MAX));
}

/// The same comparisons on the GPU (`ORFEAS_GPU_TESTS=1` in a `cuda` build; the GPU check runs it).
#[cfg(feature = "cuda")]
#[test]
fn parity_on_cuda() {
    if std::env::var("ORFEAS_GPU_TESTS").as_deref() != Ok("1") {
        eprintln!("parity_on_cuda: set ORFEAS_GPU_TESTS=1 on a machine with a GPU");
        return;
    }
    let cuda = rasterizer_for(Device::Cuda(0));
    soups_alike(cuda.as_ref());
    crowded_alike(cuda.as_ref());
    views_alike(cuda.as_ref());
    atlas_alike(cuda.as_ref());
    eprintln!(
        "parity_on_cuda: the rasterizer on {} agrees with the host",
        cuda.name()
    );
}
