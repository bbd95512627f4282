//! Weights-free segmentation of photos (`image::photo`) on committed fixtures made by
//! `tools/segmentation_eval/make_eval_set.py`: emoji composited onto real photographs (with
//! ground-truth masks) and real photos with hand-drawn boxes around their main object.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::path::{Path, PathBuf};

use orfeas_pipeline::image::photo::{
    PhotoSegmentParams, WeightsFreeMethod, segment_without_weights,
};
use orfeas_pipeline::image::resize::Raster;
use orfeas_pipeline::image::segment::{Mask, SegmentParams};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/segmentation")
}

fn manifest() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(fixtures().join("manifest.json")).unwrap()).unwrap()
}

fn load_rgb(rel: &str) -> Raster {
    let img = image::open(fixtures().join(rel)).unwrap().to_rgb8();
    let (w, h) = img.dimensions();
    Raster::from_data(w as usize, h as usize, 3, img.into_raw())
}

fn segment(img: &Raster) -> (Mask, WeightsFreeMethod) {
    segment_without_weights(
        img,
        &SegmentParams::default(),
        &PhotoSegmentParams::default(),
    )
}

fn iou(a: &[bool], b: &[bool]) -> f64 {
    let inter = a.iter().zip(b).filter(|(x, y)| **x && **y).count();
    let union = a.iter().zip(b).filter(|(x, y)| **x || **y).count();
    if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    }
}

/// Sizes of the 8-connected components of the mask, largest first.
fn components(m: &Mask) -> Vec<usize> {
    let (w, h) = (m.width, m.height);
    let mut seen = vec![false; w * h];
    let mut sizes = Vec::new();
    for s in 0..w * h {
        if m.data[s] == 0 || seen[s] {
            continue;
        }
        seen[s] = true;
        let mut stack = vec![s];
        let mut n = 0;
        while let Some(i) = stack.pop() {
            n += 1;
            let (x, y) = ((i % w) as isize, (i / w) as isize);
            for dy in -1..=1isize {
                for dx in -1..=1isize {
                    let (nx, ny) = (x + dx, y + dy);
                    if nx < 0 || ny < 0 || nx >= w as isize || ny >= h as isize {
                        continue;
                    }
                    let j = ny as usize * w + nx as usize;
                    if m.data[j] != 0 && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        sizes.push(n);
    }
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    sizes
}

fn bbox(m: &Mask) -> Option<[usize; 4]> {
    let mut b = [usize::MAX, usize::MAX, 0, 0];
    for (i, &v) in m.data.iter().enumerate() {
        if v != 0 {
            let (x, y) = (i % m.width, i / m.width);
            b = [b[0].min(x), b[1].min(y), b[2].max(x + 1), b[3].max(y + 1)];
        }
    }
    (b[0] != usize::MAX).then_some(b)
}

fn box_iou(a: [usize; 4], b: [usize; 4]) -> f64 {
    let iw = a[2].min(b[2]).saturating_sub(a[0].max(b[0]));
    let ih = a[3].min(b[3]).saturating_sub(a[1].max(b[1]));
    let inter = (iw * ih) as f64;
    let area = |r: [usize; 4]| ((r[2] - r[0]) * (r[3] - r[1])) as f64;
    inter / (area(a) + area(b) - inter).max(1.0)
}

/// IoU of every committed composite (tuning and held-out together).
fn composite_ious() -> Vec<f64> {
    let m = manifest();
    let comps = m["composites"].as_array().unwrap();
    assert!(comps.len() >= 20, "fixture set too small: {}", comps.len());
    let mut all = Vec::new();
    for c in comps {
        let img = load_rgb(c["image"].as_str().unwrap());
        let truth: Vec<bool> = image::open(fixtures().join(c["mask"].as_str().unwrap()))
            .unwrap()
            .to_luma8()
            .into_raw()
            .into_iter()
            .map(|v| v >= 128)
            .collect();
        let (mask, _) = segment(&img);
        assert_eq!((mask.width, mask.height), (img.width, img.height));
        let pred: Vec<bool> = mask.data.iter().map(|&v| v != 0).collect();
        let v = iou(&pred, &truth);
        eprintln!("{} {}: IoU {v:.3}", c["split"], c["image"]);
        all.push(v);
    }
    all
}

/// Regression floor at the level the method reaches today (mean 0.625 on these 24), so that a
/// change that makes it worse fails here.
#[test]
fn composites_do_not_regress() {
    let all = composite_ious();
    let mean = all.iter().sum::<f64>() / all.len() as f64;
    let good = all.iter().filter(|&&v| v >= 0.75).count();
    eprintln!(
        "mean IoU {mean:.3} over {}, {good} at 0.75 or better",
        all.len()
    );
    assert!(mean >= 0.6, "mean IoU {mean:.3} < 0.6");
    assert!(good >= 10, "only {good} composites at IoU >= 0.75");
}

#[test]
fn real_photos_get_one_dominant_object() {
    let m = manifest();
    for p in m["photos"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        let img = load_rgb(p["image"].as_str().unwrap());
        let (mask, method) = segment(&img);
        let share = mask.count() as f64 / mask.data.len() as f64;
        let comps = components(&mask);
        eprintln!(
            "{name}: {method:?}, share {:.1} %, components {comps:?}",
            share * 100.0
        );
        if name == "product" {
            assert_eq!(method, WeightsFreeMethod::PlainBackground, "{name}");
        }
        let Some(b) = p["box"].as_array() else {
            // No box (the object is too thin to box usefully): only a sane mask is required.
            assert!(share <= 0.9, "{name}: share {share:.3}");
            continue;
        };
        assert!((0.03..=0.9).contains(&share), "{name}: share {share:.3}");
        assert!(
            comps[0] as f64 >= 0.5 * mask.count() as f64,
            "{name}: no dominant component: {comps:?}"
        );
        // The mask lies on the object: most of it inside the hand-drawn box.
        let b: Vec<usize> = b.iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let inside = (b[1]..b[3].min(mask.height))
            .flat_map(|y| (b[0]..b[2].min(mask.width)).map(move |x| (x, y)))
            .filter(|&(x, y)| mask.data[y * mask.width + x] != 0)
            .count();
        let frac = inside as f64 / mask.count().max(1) as f64;
        assert!(
            frac >= 0.8,
            "{name}: only {frac:.2} of the mask inside the box"
        );
    }
}

/// Box IoU of the mask's bounding box with the hand-drawn box, floored a little below what each
/// photo reaches today (the target is 0.5 everywhere; the cat, the motorcycle and Grace Hopper
/// are only partly found, at 0.26, 0.36 and 0.36).
#[test]
fn real_photo_masks_keep_their_box_iou() {
    let floors = [
        ("astronaut", 0.55),
        ("chelsea", 0.2),
        ("coffee", 0.85),
        ("motorcycle", 0.3),
        ("grace_hopper", 0.3),
        ("flower", 0.85),
    ];
    let m = manifest();
    for p in m["photos"].as_array().unwrap() {
        let Some(b) = p["box"].as_array() else {
            continue;
        };
        let name = p["name"].as_str().unwrap();
        let (mask, _) = segment(&load_rgb(p["image"].as_str().unwrap()));
        let b: Vec<usize> = b.iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let bi = bbox(&mask).map_or(0.0, |mb| box_iou([b[0], b[1], b[2], b[3]], mb));
        eprintln!("{name}: box IoU {bi:.2}");
        let floor = floors.iter().find(|f| f.0 == name).map_or(0.5, |f| f.1);
        assert!(bi >= floor, "{name}: box IoU {bi:.2} < {floor}");
    }
}

#[test]
fn plain_product_shot_takes_the_plain_path() {
    let img = load_rgb("photos/product.jpg");
    let (mask, method) = segment(&img);
    assert_eq!(method, WeightsFreeMethod::PlainBackground);
    let share = mask.count() as f64 / mask.data.len() as f64;
    assert!((0.1..0.4).contains(&share), "share {share:.3}");
}

fn lcg(seed: u32) -> impl FnMut() -> u8 {
    let mut s = seed;
    move || {
        s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (s >> 24) as u8
    }
}

#[test]
fn images_without_an_object_give_an_empty_mask() {
    for (w, h) in [(256, 256), (300, 200)] {
        let grey = Raster::from_data(w, h, 3, vec![120; w * h * 3]);
        let (mask, _) = segment(&grey);
        assert_eq!(mask.count(), 0, "uniform {w}x{h}");
        let mut r = lcg(w as u32);
        let noise = Raster::from_data(w, h, 3, (0..w * h * 3).map(|_| r()).collect());
        let (mask, method) = segment(&noise);
        assert_eq!(mask.count(), 0, "noise {w}x{h} ({method:?})");
    }
    // Noise at a size that the working resolution averages down.
    let (w, h) = (1024, 768);
    let mut r = lcg(9);
    let noise = Raster::from_data(w, h, 3, (0..w * h * 3).map(|_| r()).collect());
    assert_eq!(segment(&noise).0.count(), 0, "noise {w}x{h}");
}

#[test]
fn odd_sizes_do_not_panic() {
    for (w, h, c) in [
        (0, 0, 3),
        (1, 1, 3),
        (2, 2, 3),
        (3, 500, 3),
        (500, 3, 3),
        (7, 9, 3),
        (40, 30, 1),
        (40, 30, 4),
    ] {
        let mut r = lcg((w * 31 + h) as u32);
        let img = Raster::from_data(w, h, c, (0..w * h * c).map(|_| r()).collect());
        let (mask, _) = segment(&img);
        assert_eq!((mask.width, mask.height, mask.data.len()), (w, h, w * h));
    }
}

#[test]
fn red_disk_on_a_textured_background_is_found() {
    let (w, h) = (200, 160);
    let mut r = lcg(3);
    let mut data = Vec::with_capacity(w * h * 3);
    let mut truth = Vec::with_capacity(w * h);
    for y in 0..h {
        for x in 0..w {
            let (dx, dy) = (x as f32 - 110.0, y as f32 - 75.0);
            let inside = dx * dx + dy * dy < 45.0 * 45.0;
            truth.push(inside);
            // Stripes of two greens with noise: not a plain backdrop.
            let stripe = (x / 6 + y / 9) % 2 == 0;
            let base = if inside {
                [200, 40, 40]
            } else if stripe {
                [60, 120, 50]
            } else {
                [90, 150, 70]
            };
            for c in base {
                data.push((c + i32::from(r() % 21) - 10).clamp(0, 255) as u8);
            }
        }
    }
    let img = Raster::from_data(w, h, 3, data);
    let (mask, method) = segment(&img);
    assert_eq!(method, WeightsFreeMethod::Classic);
    let pred: Vec<bool> = mask.data.iter().map(|&v| v != 0).collect();
    let v = iou(&pred, &truth);
    assert!(v > 0.9, "IoU {v:.3}");
}
