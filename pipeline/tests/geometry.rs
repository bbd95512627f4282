//! Geometry that can fail: inflation against analytic solids, silhouettes kept, marching cubes
//! against an analytic sphere, NaN regions.

use orfeas_pipeline::image::{PreprocessedImage, Segmentation, SegmentationMethod};
use orfeas_pipeline::mesh::Mesh;
use orfeas_pipeline::shape::{
    InflateEngine, ShapeEngine, ShapeOptions, ShapeRequest, Volume, marching_cubes,
};
use std::f64::consts::PI;

const S: usize = 512;

/// A preprocessed image whose mask is `inside(x, y)` in world units (pixel centres).
fn image_from(inside: impl Fn(f64, f64) -> bool) -> PreprocessedImage {
    let mut mask = vec![0u8; S * S];
    for v in 0..S {
        for u in 0..S {
            let x = (u as f64 + 0.5) / S as f64 * 2.0 - 1.0;
            let y = 1.0 - (v as f64 + 0.5) / S as f64 * 2.0;
            if inside(x, y) {
                mask[v * S + u] = 255;
            }
        }
    }
    PreprocessedImage {
        size: S,
        rgb: mask
            .iter()
            .flat_map(|&m| if m != 0 { [200, 50, 40] } else { [255; 3] })
            .collect(),
        mask,
        segmentation: Segmentation {
            method: SegmentationMethod::Alpha,
            mask_share: 1.0,
        },
    }
}

fn inflate(img: &PreprocessedImage, resolution: u32) -> Mesh {
    let options = ShapeOptions {
        octree_resolution: resolution,
        ..ShapeOptions::default()
    };
    let mut out = InflateEngine.generate(&[ShapeRequest::new(img, &options)]);
    out.pop().expect("one result").expect("inflates").mesh
}

/// Area of the mesh's projection on the xy-plane: half the summed |projected area| of all faces
/// (a closed surface covers its shadow twice).
fn projected_area(mesh: &Mesh) -> f64 {
    mesh.triangles
        .iter()
        .map(|t| mesh.face_normal(t)[2].abs() / 2.0)
        .sum::<f64>()
        / 2.0
}

fn mask_area(img: &PreprocessedImage) -> f64 {
    let px = 2.0 / S as f64;
    img.mask.iter().filter(|&&m| m != 0).count() as f64 * px * px
}

#[test]
fn disk_inflates_to_a_sphere() {
    let r = 0.6;
    let img = image_from(|x, y| x * x + y * y < r * r);
    let mesh = inflate(&img, 192);
    assert_eq!(mesh.topology_defects(), (0, 0), "closed, oriented");
    let expected = 4.0 / 3.0 * PI * r.powi(3);
    let v = mesh.signed_volume();
    // Tolerance 2 %: the outline is rasterised on 512² pixels and meshed on a 192³ grid.
    assert!(
        (v - expected).abs() / expected < 0.02,
        "volume {v} vs {expected}"
    );
    let (lo, hi) = mesh.bounds().expect("vertices");
    for k in 0..3 {
        let extent = f64::from(hi[k] - lo[k]);
        assert!(
            (extent - 2.0 * r).abs() < 0.02,
            "axis {k}: extent {extent} vs {}",
            2.0 * r
        );
        let centre = f64::from(hi[k] + lo[k]) / 2.0;
        assert!(centre.abs() < 0.01, "axis {k}: centre {centre}");
    }
    let area = mesh.surface_area();
    let expected_area = 4.0 * PI * r * r;
    assert!(
        (area - expected_area).abs() / expected_area < 0.02,
        "area {area} vs {expected_area}"
    );
}

#[test]
fn square_keeps_its_silhouette() {
    let img = image_from(|x, y| x.abs() < 0.5 && y.abs() < 0.5);
    let mesh = inflate(&img, 256);
    assert_eq!(mesh.topology_defects(), (0, 0));
    let (pa, ma) = (projected_area(&mesh), mask_area(&img));
    assert!((pa - ma).abs() / ma < 0.02, "projected {pa} vs mask {ma}");
    assert!(mesh.signed_volume() > 0.0);
}

#[test]
fn l_shape_keeps_its_silhouette() {
    let img = image_from(|x, y| {
        (x > -0.6 && x < -0.1 && y > -0.7 && y < 0.7)
            || (x > -0.6 && x < 0.6 && y > -0.7 && y < -0.2)
    });
    let mesh = inflate(&img, 256);
    assert_eq!(mesh.topology_defects(), (0, 0));
    let (pa, ma) = (projected_area(&mesh), mask_area(&img));
    assert!((pa - ma).abs() / ma < 0.02, "projected {pa} vs mask {ma}");
    // No material where the L has none: the notch's corner region stays empty.
    assert!(
        mesh.positions.iter().all(|p| !(p[0] > 0.05 && p[1] > 0.0)),
        "vertices inside the notch"
    );
}

#[test]
fn marching_cubes_matches_an_analytic_sphere_at_several_resolutions() {
    for n in [64usize, 128, 256] {
        let r = 0.8;
        let h = 2.0 / (n - 1) as f64;
        let vol = Volume::from_fn([n, n, n], |i, j, k| {
            let p = [i, j, k].map(|c| -1.0 + c as f64 * h);
            (r - (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt()) as f32
        });
        let mut mesh = marching_cubes(&vol, 0.0);
        mesh.transform([-1.0; 3], [h as f32; 3]);
        assert_eq!(mesh.topology_defects(), (0, 0), "n={n}");
        let (area, volume) = (mesh.surface_area(), mesh.signed_volume());
        let (ea, ev) = (4.0 * PI * r * r, 4.0 / 3.0 * PI * r.powi(3));
        // Linear interpolation cuts chords: the error falls with the cell size.
        let tol = if n == 64 { 0.01 } else { 0.003 };
        assert!((area - ea).abs() / ea < tol, "n={n}: area {area} vs {ea}");
        assert!(
            (volume - ev).abs() / ev < tol,
            "n={n}: volume {volume} vs {ev}"
        );
        let max_err = mesh
            .positions
            .iter()
            .map(|p| {
                let d = p.iter().map(|&c| f64::from(c).powi(2)).sum::<f64>().sqrt();
                (d - r).abs()
            })
            .fold(0.0, f64::max);
        assert!(
            max_err < h * 0.1,
            "n={n}: vertex off the sphere by {max_err}"
        );
    }
}

#[test]
fn nan_regions_produce_no_vertices() {
    // A sphere whose volume is NaN outside a band around the surface, as hierarchical decoding
    // leaves it, and NaN over one whole half: the half stays empty, the band is meshed as usual.
    let n = 96;
    let h = 2.0 / (n - 1) as f32;
    let r = 0.7;
    let vol = Volume::from_fn([n, n, n], |i, j, k| {
        let p = [i, j, k].map(|c| -1.0 + c as f32 * h);
        let v = r - (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
        if p[0] > 0.0 || v.abs() > 4.0 * h {
            f32::NAN
        } else {
            v
        }
    });
    let mut mesh = marching_cubes(&vol, 0.0);
    mesh.transform([-1.0; 3], [h; 3]);
    assert!(!mesh.is_empty());
    assert!(
        mesh.positions
            .iter()
            .all(|p| p.iter().all(|c| c.is_finite()))
    );
    assert!(
        mesh.positions.iter().all(|p| p[0] <= h),
        "vertex in the NaN half"
    );
    // Only the cut at x = 0 is open.
    let (open, flipped) = mesh.topology_defects();
    assert_eq!(flipped, 0);
    assert!(open > 0);
    let band: Vec<_> = mesh.positions.iter().filter(|p| p[0] < -0.1).collect();
    assert!(
        band.iter()
            .all(|p| ((p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt() - r).abs() < h)
    );
}

#[test]
fn resolution_outside_range_is_a_typed_error() {
    let img = image_from(|x, y| x * x + y * y < 0.25);
    for bad in [32, 513] {
        let options = ShapeOptions {
            octree_resolution: bad,
            ..ShapeOptions::default()
        };
        let r = InflateEngine.generate(&[ShapeRequest::new(&img, &options)]);
        let err = r
            .into_iter()
            .next()
            .expect("one result")
            .expect_err("rejected");
        assert!(err.to_string().contains("octree_resolution"), "{err}");
    }
}
