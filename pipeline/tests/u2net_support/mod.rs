//! Shared helpers of `tests/u2net.rs`: fixture paths, PNG and safetensors reading, and the weight
//! formula "orfeas-u2net-seeded-v1" that fills the full-size U2NET (whose 176 MB export is not
//! committed) exactly as `tests/reference/u2net_fixtures.py` filled it for rembg.

#![allow(dead_code, clippy::unwrap_used)] // test support: a failed unwrap is a failed test

use std::path::PathBuf;

use orfeas_pipeline::image::resize::Raster;
use orfeas_pipeline::segmentation::u2net::StateDict;

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/u2net")
}

pub const STEMS: [&str; 6] = [
    "01_chelsea",
    "02_coffee",
    "03_astronaut",
    "04_rocket",
    "05_synthetic",
    "06_logo_rgba",
];

/// A PNG with its own channel count (L = 1, LA = 2, RGB = 3, RGBA = 4), as PIL opens it.
pub fn png(path: PathBuf) -> Raster {
    let img = image::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (c, data) = match img {
        image::DynamicImage::ImageLuma8(b) => (1, b.into_raw()),
        image::DynamicImage::ImageLumaA8(b) => (2, b.into_raw()),
        image::DynamicImage::ImageRgb8(b) => (3, b.into_raw()),
        image::DynamicImage::ImageRgba8(b) => (4, b.into_raw()),
        other => panic!(
            "{}: unexpected colour type {:?}",
            path.display(),
            other.color()
        ),
    };
    Raster::from_data(w, h, c, data)
}

pub fn image(stem: &str) -> Raster {
    png(fixtures().join(format!("images/{stem}.png")))
}

pub fn rembg_mask(kind: &str, stem: &str) -> Raster {
    png(fixtures().join(format!("masks/{kind}/{stem}.png")))
}

/// A tensor of `debug/u2netp_01.safetensors` as raw bytes with its shape.
pub fn debug_tensor(name: &str) -> (Vec<usize>, Vec<u8>) {
    let bytes = std::fs::read(fixtures().join("debug/u2netp_01.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor(name).unwrap();
    (t.shape().to_vec(), t.data().to_vec())
}

pub fn debug_f32(name: &str) -> Vec<f32> {
    debug_tensor(name)
        .1
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// `manifests/<kind>.json`: the ordered `[key, shape]` list of the PyTorch state dict.
pub fn manifest(kind: &str) -> Vec<(String, Vec<usize>)> {
    let text = std::fs::read_to_string(fixtures().join(format!("manifests/{kind}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The formula's constants (`formula.json`).
#[derive(Debug, serde::Deserialize)]
pub struct Formula {
    pub name: String,
    pub conv_weight_gain: f64,
    pub conv_bias: f64,
    pub bn_weight: [f64; 2],
    pub bn_bias: f64,
    pub bn_mean: f64,
    pub bn_var: [f64; 2],
    pub spot_checks: Vec<(String, u64, f64)>,
}

pub fn formula() -> Formula {
    let text = std::fs::read_to_string(fixtures().join("formula.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn fnv1a64(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `u` in [0, 1) for element `i` of tensor `name` (splitmix64 over the name's hash).
pub fn uniform(name: &str, i: u64) -> f64 {
    let mut z = fnv1a64(name).wrapping_add((i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 * 2f64.powi(-53)
}

/// The formula's value of every element of `name` (shape `shape`), f64 rounded to f32.
pub fn formula_values(f: &Formula, name: &str, shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let last = name.rsplit('.').next().unwrap();
    let bn = name.contains(".bn_s1.");
    (0..n as u64)
        .map(|i| {
            let s = 2.0 * uniform(name, i) - 1.0;
            let v = match (bn, last) {
                (true, "weight") => f.bn_weight[0] + f.bn_weight[1] * s,
                (true, "bias") => f.bn_bias * s,
                (true, "running_mean") => f.bn_mean * s,
                (true, "running_var") => f.bn_var[0] + f.bn_var[1] * s,
                (false, "weight") => {
                    let fan_in = (shape[1] * shape[2] * shape[3]) as f64;
                    s * f.conv_weight_gain / fan_in.sqrt()
                }
                (false, "bias") => f.conv_bias * s,
                _ => panic!("no formula for {name}"),
            };
            v as f32
        })
        .collect()
}

/// The state dict the reference filled for `kind`, from its manifest.
pub fn formula_state_dict(kind: &str) -> StateDict {
    let f = formula();
    manifest(kind)
        .into_iter()
        .map(|(k, shape)| {
            let v = formula_values(&f, &k, &shape);
            (k, (shape, v))
        })
        .collect()
}

/// Largest absolute difference between two masks of the same size.
pub fn max_abs_diff(a: &Raster, b: &Raster) -> u8 {
    assert_eq!(
        (a.width, a.height, a.channels),
        (b.width, b.height, b.channels)
    );
    a.data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

/// How many pixels differ at all.
pub fn count_diff(a: &Raster, b: &Raster) -> usize {
    a.data.iter().zip(&b.data).filter(|(x, y)| x != y).count()
}
