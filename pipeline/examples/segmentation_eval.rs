//! Weights-free segmentation benchmark: mean IoU over the generated composites (tuning and
//! held-out splits apart), mask share and box IoU per real photo, and the single-threaded time
//! for a 1024² photo (median of several runs).
//!
//!   cargo run --release -p orfeas-pipeline --example segmentation_eval -- [SET_DIR] [--dump DIR]
//!
//! SET_DIR is what `tools/segmentation_eval/make_eval_set.py` wrote (default
//! `~/.cache/orfeas/segeval`); `--dump` writes each mask as a PNG for inspection,
//! `--candidates FILE` writes every objectness candidate of each composite (kind, IoU, score,
//! features) as CSV, `--split tune` evaluates one split only and `--set NAME=VALUE` overrides
//! a tunable.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use orfeas_pipeline::image::photo::{
    PhotoSegmentParams, WeightsFreeMethod, debug_candidates, debug_maps, segment_without_weights,
};
use orfeas_pipeline::image::resize::{Raster, resize_cubic};
use orfeas_pipeline::image::segment::{Mask, SegmentParams};

fn load_rgb(path: &Path) -> Raster {
    let img = image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8();
    let (w, h) = img.dimensions();
    Raster::from_data(w as usize, h as usize, 3, img.into_raw())
}

fn load_mask(path: &Path) -> Vec<bool> {
    let img = image::open(path).unwrap().to_luma8();
    img.into_raw().into_iter().map(|v| v >= 128).collect()
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

fn save_mask(dir: &Path, name: &str, m: &Mask) {
    let img = image::GrayImage::from_raw(m.width as u32, m.height as u32, m.data.clone()).unwrap();
    img.save(dir.join(format!("{name}.png"))).unwrap();
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut set = std::env::var("HOME")
        .map(|h| PathBuf::from(h).join(".cache/orfeas/segeval"))
        .unwrap_or_default();
    let mut dump: Option<PathBuf> = None;
    let mut only: Option<String> = None;
    let mut cand_csv: Option<PathBuf> = None;
    let mut overrides: Vec<String> = Vec::new();
    while let Some(a) = args.next() {
        if a == "--dump" {
            dump = args.next().map(PathBuf::from);
        } else if a == "--set" {
            overrides.push(args.next().unwrap_or_default());
        } else if a == "--candidates" {
            cand_csv = args.next().map(PathBuf::from);
        } else if a == "--split" {
            only = args.next();
        } else {
            set = PathBuf::from(a);
        }
    }
    if let Some(d) = &dump {
        std::fs::create_dir_all(d).unwrap();
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(set.join("manifest.json")).unwrap()).unwrap();
    let plain = SegmentParams::default();
    let mut params = PhotoSegmentParams::default();
    for o in &overrides {
        let (k, v) = o.split_once('=').expect("--set NAME=VALUE");
        let v: f32 = v.parse().expect("a number");
        match k {
            "prior_weight" => params.grabcut.prior_weight = v,
            "gamma" => params.grabcut.gamma = v,
            "initial_threshold" => params.grabcut.initial_threshold = v,
            "sure_background" => params.grabcut.sure_background = v,
            "iterations" => params.grabcut.iterations = v as usize,
            "prior_floor" => params.grabcut.prior_floor = v,
            "centre_sigma" => params.saliency.centre_sigma = v,
            "contrast_weight" => params.saliency.contrast_weight = v,
            "long_side" => params.work.long_side = v as usize,
            "min_separation" => params.work.min_separation = v,
            "guided_radius" => params.refine.guided_radius = v,
            "guided_eps" => params.refine.guided_eps = v,
            "centre_inset" => params.candidates.centre_inset = v,
            "max_regions" => params.candidates.max_regions = v as usize,
            "region_prior_weight" => params.candidates.region_prior_weight = v,
            "cand_iterations" => params.candidates.iterations = v as usize,
            "global_bonus" => params.objectness.global_bonus = v,
            _ => panic!("unknown parameter {k}"),
        }
    }
    if !overrides.is_empty() {
        println!("overrides: {overrides:?}");
    }

    let mut csv =
        String::from("image,split,kind,iou,score,cut_sep,area,edge,sep,border,compact,salc\n");
    println!("composites ({})", set.display());
    let mut per_split: Vec<(String, Vec<(f64, String)>)> = Vec::new();
    let mut seg_ms = Vec::new();
    for c in manifest["composites"].as_array().unwrap() {
        if only.as_ref().is_some_and(|o| c["split"] != o.as_str()) {
            continue;
        }
        let img = load_rgb(&set.join(c["image"].as_str().unwrap()));
        let truth = load_mask(&set.join(c["mask"].as_str().unwrap()));
        let t = Instant::now();
        let (mask, method) = segment_without_weights(&img, &plain, &params);
        seg_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let pred: Vec<bool> = mask.data.iter().map(|&v| v != 0).collect();
        let v = iou(&pred, &truth);
        let split = c["split"].as_str().unwrap().to_string();
        let name = format!(
            "{} ({} on {}, {:?})",
            c["image"].as_str().unwrap(),
            c["emoji"].as_str().unwrap(),
            c["background"].as_str().unwrap(),
            method
        );
        if let Some(d) = &dump {
            let stem = Path::new(c["image"].as_str().unwrap())
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .to_string();
            save_mask(d, &stem, &mask);
            save_debug(d, &stem, &img, &params);
        }
        if cand_csv.is_some() {
            let (cw, ch, cands) = debug_candidates(&img, &params);
            if cw == img.width && ch == img.height {
                for (k, cd) in cands.into_iter().enumerate() {
                    if let Some(d) = &dump {
                        let m = Mask {
                            width: cw,
                            height: ch,
                            data: cd.fg.iter().map(|&b| if b { 255 } else { 0 }).collect(),
                        };
                        let stem = Path::new(c["image"].as_str().unwrap())
                            .file_stem()
                            .unwrap()
                            .to_string_lossy()
                            .to_string();
                        save_mask(d, &format!("{stem}_c{k}"), &m);
                    }
                    let f = cd.features;
                    csv.push_str(&format!(
                        "{},{split},{:?},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4}\n",
                        c["image"].as_str().unwrap(),
                        cd.kind,
                        iou(&cd.fg, &truth),
                        cd.score,
                        cd.cut_separation,
                        f.area_share,
                        f.edge_ratio,
                        f.separation,
                        f.border_share,
                        f.compactness,
                        f.saliency_contrast
                    ));
                }
            }
        }
        match per_split.iter_mut().find(|(s, _)| *s == split) {
            Some((_, v2)) => v2.push((v, name)),
            None => per_split.push((split, vec![(v, name)])),
        }
    }
    for (split, vals) in &per_split {
        let mean = vals.iter().map(|v| v.0).sum::<f64>() / vals.len() as f64;
        let mut sorted = vals.clone();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let below = vals.iter().filter(|v| v.0 < 0.5).count();
        println!(
            "  {split:8} n={:3}  mean IoU {mean:.3}  median {:.3}  min {:.3}  (<0.5: {below})",
            vals.len(),
            sorted[sorted.len() / 2].0,
            sorted[0].0
        );
        for (v, n) in sorted.iter().take(5) {
            println!("      worst {v:.3}  {n}");
        }
    }
    if let Some(p) = &cand_csv {
        std::fs::write(p, &csv).unwrap();
    }
    seg_ms.sort_by(f64::total_cmp);
    println!(
        "  time per composite: median {:.1} ms",
        seg_ms[seg_ms.len() / 2]
    );

    println!("real photos");
    for p in manifest["photos"].as_array().unwrap() {
        if only.as_ref().is_some_and(|o| p["split"] != o.as_str()) {
            continue;
        }
        let name = p["name"].as_str().unwrap();
        let img = load_rgb(&set.join(p["image"].as_str().unwrap()));
        let t = Instant::now();
        let (mask, method) = segment_without_weights(&img, &plain, &params);
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let share = mask.count() as f64 / mask.data.len() as f64;
        let bi = match (p["box"].as_array(), bbox(&mask)) {
            (Some(b), Some(mb)) => {
                let b: Vec<usize> = b.iter().map(|v| v.as_u64().unwrap() as usize).collect();
                format!("{:.2}", box_iou([b[0], b[1], b[2], b[3]], mb))
            }
            (Some(_), None) => "0.00".into(),
            _ => "-".into(),
        };
        println!(
            "  {name:13} {:8} {}x{}  share {:5.1} %  box IoU {bi:>4}  {method:?}  {ms:.0} ms",
            p["split"].as_str().unwrap(),
            img.width,
            img.height,
            share * 100.0
        );
        if let Some(d) = &dump {
            save_mask(d, name, &mask);
            save_debug(d, name, &img, &params);
        }
    }

    // Timing: the astronaut photo enlarged to 1024², the classic path (the photo path) alone
    // and the whole entry point, each the median of several runs on this one thread.
    if std::env::var("SEGEVAL_NO_TIMING").is_ok() {
        return;
    }
    let astro = manifest["photos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "astronaut")
        .map(|p| load_rgb(&set.join(p["image"].as_str().unwrap())))
        .unwrap();
    let big = resize_cubic(&astro, 1024, 1024);
    let mut whole = Vec::new();
    let mut front = Vec::new();
    for _ in 0..9 {
        let t = Instant::now();
        let (m, method) = segment_without_weights(&big, &plain, &params);
        whole.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(method, WeightsFreeMethod::Classic);
        assert!(m.count() > 0);
        let t = Instant::now();
        let _ = debug_maps(&big, &params);
        front.push(t.elapsed().as_secs_f64() * 1e3);
    }
    whole.sort_by(f64::total_cmp);
    front.sort_by(f64::total_cmp);
    println!(
        "timing 1024x1024 (astronaut enlarged), one thread: segment_without_weights median {:.1} ms (min {:.1}, max {:.1}); of which downscale + saliency + GrabCut {:.1} ms",
        whole[whole.len() / 2],
        whole[0],
        whole[whole.len() - 1],
        front[front.len() / 2]
    );
}

/// Saliency map and the raw cut (working resolution) as greyscale PNGs.
fn save_debug(dir: &Path, name: &str, img: &Raster, params: &PhotoSegmentParams) {
    let Some(d) = debug_maps(img, params) else {
        return;
    };
    let (w, h, sal, cut, sep) = (d.width, d.height, d.saliency, d.cut, d.separation);
    let s: Vec<u8> = sal.iter().map(|v| (v * 255.0).round() as u8).collect();
    image::GrayImage::from_raw(w as u32, h as u32, s)
        .unwrap()
        .save(dir.join(format!("{name}_sal.png")))
        .unwrap();
    let c: Vec<u8> = cut.iter().map(|&b| if b { 255 } else { 0 }).collect();
    image::GrayImage::from_raw(w as u32, h as u32, c)
        .unwrap()
        .save(dir.join(format!("{name}_cut.png")))
        .unwrap();
    std::fs::write(dir.join(format!("{name}_sep.txt")), format!("{sep}")).unwrap();
}
