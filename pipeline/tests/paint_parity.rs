//! Parity with Hunyuan3D-Paint's renderer on fixtures its own code made
//! (`pipeline/tests/reference/paint_fixtures.py`; `pipeline/tests/fixtures/paint/`): the six
//! cameras' matrices, the rasterizer's face ids and barycentrics (`custom_rasterizer`'s CPU
//! path), the mesh normalisation, and the normal and position maps the multiview model is fed.

use std::path::{Path, PathBuf};

use orfeas_pipeline::tensor::CpuBackend;
use orfeas_pipeline::texture::camera::{PAINT_VIEWS, PaintView};
use orfeas_pipeline::texture::raster::{HostRasterizer, NO_FACE, Rasterizer, TensorRasterizer};
use orfeas_pipeline::texture::render::PaintMesh;
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/paint")
}

fn manifest(name: &str) -> Value {
    let text = std::fs::read_to_string(dir().join(name)).expect("manifest");
    serde_json::from_str(&text).expect("json")
}

fn bytes(entry: &Value) -> Vec<u8> {
    std::fs::read(dir().join(entry["file"].as_str().expect("file"))).expect("fixture file")
}

fn f32s(entry: &Value) -> Vec<f32> {
    assert_eq!(entry["dtype"], "float32");
    bytes(entry)
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn i32s(entry: &Value) -> Vec<i32> {
    assert_eq!(entry["dtype"], "int32");
    bytes(entry)
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn triples<T: Copy + Default>(v: &[T]) -> Vec<[T; 3]> {
    v.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect()
}

fn faces(entry: &Value) -> Vec<[u32; 3]> {
    triples(&i32s(entry))
        .into_iter()
        .map(|t| t.map(|i| i as u32))
        .collect()
}

fn matrix(v: &Value) -> [[f64; 4]; 4] {
    let mut m = [[0f64; 4]; 4];
    for (i, row) in m.iter_mut().enumerate() {
        for (j, x) in row.iter_mut().enumerate() {
            *x = v[i][j].as_f64().expect("number");
        }
    }
    m
}

fn assert_close(ours: [[f32; 4]; 4], theirs: [[f64; 4]; 4], what: &str) {
    for i in 0..4 {
        for j in 0..4 {
            let d = (f64::from(ours[i][j]) - theirs[i][j]).abs();
            assert!(
                d <= 1e-6,
                "{what}[{i}][{j}]: {} vs {}",
                ours[i][j],
                theirs[i][j]
            );
        }
    }
}

#[test]
fn the_six_cameras_reproduce_the_reference_matrices() {
    let m = manifest("cameras.json");
    let views = m["views"].as_array().expect("views");
    assert_eq!(views.len(), PAINT_VIEWS.len());
    for (v, ours) in views.iter().zip(&PAINT_VIEWS) {
        assert_eq!(v["azimuth_deg"].as_f64(), Some(ours.azimuth));
        assert_eq!(v["elevation_deg"].as_f64(), Some(ours.elevation));
        assert_eq!(v["weight"].as_f64().map(|w| w as f32), Some(ours.weight));
        let name = format!("view {}", v["index"]);
        assert_close(
            ours.view_matrix(),
            matrix(&v["view"]),
            &format!("{name} view"),
        );
        assert_close(
            PaintView::projection_matrix(),
            matrix(&v["projection"]),
            &name,
        );
        assert_close(ours.mvp(), matrix(&v["mvp"]), &format!("{name} mvp"));
    }
}

/// The reference's face ids and barycentrics through `rasterizer`: pixels whose face differs
/// may number at most `other_face_per_mille` of the covered ones; every other weight is within
/// `tolerance`.
fn compare_with_reference(
    rasterizer: &dyn Rasterizer,
    other_face_per_mille: usize,
    tolerance: f32,
) {
    let m = manifest("raster.json");
    let cases = m["cases"].as_array().expect("cases");
    assert!(cases.len() >= 7);
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let (w, h) = (
            case["width"].as_u64().expect("w") as usize,
            case["height"].as_u64().expect("h") as usize,
        );
        let clip: Vec<[f32; 4]> = f32s(&case["vertices"])
            .chunks_exact(4)
            .map(|c| [c[0], c[1], c[2], c[3]])
            .collect();
        let tris = faces(&case["faces"]);
        let raster = rasterizer.rasterize_clip(&clip, &tris, w, h);
        let ids = i32s(&case["findices"]);
        let bary = triples(&f32s(&case["barycentric"]));
        let (mut covered, mut other) = (0, 0);
        for p in 0..w * h {
            // The reference numbers faces from 1, 0 being background.
            let theirs = ids[p];
            let ours = if raster.face[p] == NO_FACE {
                0
            } else {
                raster.face[p] as i32 + 1
            };
            if theirs > 0 {
                covered += 1;
            }
            if ours != theirs {
                assert!(
                    other_face_per_mille > 0,
                    "{name}: pixel {p} (col {}, row {}) face {ours} vs {theirs}",
                    p % w,
                    p / w
                );
                other += 1;
                continue;
            }
            if theirs > 0 {
                for k in 0..3 {
                    assert!(
                        (raster.bary[p][k] - bary[p][k]).abs() <= tolerance,
                        "{name}: pixel {p} barycentrics {:?} vs {:?}",
                        raster.bary[p],
                        bary[p]
                    );
                }
            }
        }
        assert_eq!(
            covered,
            case["covered_pixels"].as_u64().expect("count") as usize,
            "{name}"
        );
        assert!(
            other * 1000 <= other_face_per_mille * covered.max(1000),
            "{name}: {other} of {covered} pixels show another face"
        );
    }
}

#[test]
fn the_rasterizer_reproduces_the_reference_face_ids_and_barycentrics() {
    compare_with_reference(&HostRasterizer, 0, 1e-6);
}

/// The tensor rasterizer (the GPU's; here on burn-ndarray) computes in f32 throughout where the
/// reference takes two steps in f64: equal up to the last place, and an edge pixel in a thousand.
#[test]
fn the_tensor_rasterizer_matches_the_reference_within_f32() {
    let tensor = TensorRasterizer::<CpuBackend>::new(Default::default());
    compare_with_reference(&tensor, 1, 2e-5);
}

#[test]
fn normal_and_position_maps_match_the_reference_renders() {
    let raster = manifest("raster.json");
    let mesh = &raster["sphere_cube"];
    let raw = triples(&f32s(&mesh["raw_vertices"]));
    let tris = faces(&mesh["faces"]);
    let placed = PaintMesh::new(&raw, &tris);
    let normalised = triples(&f32s(&mesh["normalized_vertices"]));
    for (ours, theirs) in placed.positions.iter().zip(&normalised) {
        for k in 0..3 {
            assert!(
                (ours[k] - theirs[k]).abs() <= 1e-6,
                "{ours:?} vs {theirs:?}"
            );
        }
    }
    let m = manifest("render.json");
    for r in m["renders"].as_array().expect("renders") {
        let view = PAINT_VIEWS[r["view_index"].as_u64().expect("index") as usize];
        let (w, h) = (
            r["width"].as_u64().expect("w") as usize,
            r["height"].as_u64().expect("h") as usize,
        );
        for (kind, ours) in [
            ("normal", placed.render_normal(&HostRasterizer, &view, w, h)),
            (
                "position",
                placed.render_position(&HostRasterizer, &view, w, h),
            ),
        ] {
            let theirs = triples(&f32s(&r[kind]));
            let worst = ours
                .iter()
                .zip(&theirs)
                .flat_map(|(a, b)| (0..3).map(move |k| (a[k] - b[k]).abs()))
                .fold(0f32, f32::max);
            assert!(
                worst <= 1e-5,
                "view {:?} {kind}: max difference {worst}",
                view
            );
        }
    }
}
