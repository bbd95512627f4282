//! Reading the fixtures of the diffusion ports (`pipeline/tests/fixtures/{sd_vae,sd_unet,
//! clip_text,paint_unet}/`): a JSON manifest names each tensor's file (raw little-endian values,
//! row-major) and shape; a key manifest lists a model's state-dict keys with their shapes.

// Each test file uses the readers it needs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use burn::tensor::{Int, Tensor, TensorData};
use orfeas_pipeline::tensor::CpuBackend as B;
use serde_json::Value;

/// A fixture folder under `pipeline/tests/fixtures/`.
pub struct Fixtures(PathBuf);

impl Fixtures {
    pub fn new(name: &str) -> Self {
        Fixtures(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(name),
        )
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    pub fn json(&self, name: &str) -> Value {
        let text = std::fs::read_to_string(self.0.join(name)).expect("fixture");
        serde_json::from_str(&text).expect("json")
    }

    fn raw(&self, io: &Value, name: &str) -> (Vec<u8>, Vec<usize>) {
        let entry = &io["tensors"][name];
        let shape = entry["shape"]
            .as_array()
            .expect("shape")
            .iter()
            .map(|d| d.as_u64().expect("dim") as usize)
            .collect();
        let file = entry["file"].as_str().expect("file");
        (std::fs::read(self.0.join(file)).expect("bin"), shape)
    }

    fn floats(&self, io: &Value, name: &str) -> (Vec<f32>, Vec<usize>) {
        let (bytes, shape) = self.raw(io, name);
        let values = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        (values, shape)
    }

    pub fn t2(&self, io: &Value, name: &str) -> Tensor<B, 2> {
        let (v, s) = self.floats(io, name);
        Tensor::from_data(TensorData::new(v, [s[0], s[1]]), &Default::default())
    }

    pub fn t3(&self, io: &Value, name: &str) -> Tensor<B, 3> {
        let (v, s) = self.floats(io, name);
        Tensor::from_data(TensorData::new(v, [s[0], s[1], s[2]]), &Default::default())
    }

    pub fn t4(&self, io: &Value, name: &str) -> Tensor<B, 4> {
        let (v, s) = self.floats(io, name);
        Tensor::from_data(
            TensorData::new(v, [s[0], s[1], s[2], s[3]]),
            &Default::default(),
        )
    }

    /// An int32 `[rows, cols]` tensor (token ids).
    pub fn ids(&self, io: &Value, name: &str) -> Tensor<B, 2, Int> {
        let (bytes, s) = self.raw(io, name);
        let v: Vec<i32> = bytes
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Tensor::from_data(TensorData::new(v, [s[0], s[1]]), &Default::default())
    }
}

impl Fixtures {
    /// A tensor of rank `D`, the leading dimensions of a higher-rank fixture merged
    /// (`[b, n, c, h, w]` as `[b·n, c, h, w]`).
    pub fn merged<const D: usize>(&self, io: &Value, name: &str) -> Tensor<B, D> {
        let (v, s) = self.floats(io, name);
        assert!(s.len() >= D, "{name}: rank {} below {D}", s.len());
        let extra = s.len() - D;
        let mut dims = [0usize; D];
        dims[0] = s[..=extra].iter().product();
        dims[1..].copy_from_slice(&s[extra + 1..]);
        Tensor::from_data(TensorData::new(v, dims), &Default::default())
    }

    /// A float32 fixture's values, flattened.
    pub fn values(&self, io: &Value, name: &str) -> Vec<f32> {
        self.floats(io, name).0
    }

    /// Whole-number floats (ids stored as float32) as an int tensor, flattened.
    pub fn int_values(&self, io: &Value, name: &str) -> Vec<i32> {
        let (v, _) = self.floats(io, name);
        v.into_iter().map(|x| x as i32).collect()
    }
}

/// The largest absolute difference of two tensors of one shape.
pub fn max_abs<const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b).abs().max().into_scalar()
}

/// The `keys` of a key manifest entry, sorted as JSON objects keep them.
pub fn keys(entry: &Value) -> Vec<(String, Vec<usize>)> {
    entry["keys"]
        .as_object()
        .expect("keys")
        .iter()
        .map(|(k, v)| {
            let shape = v
                .as_array()
                .expect("shape")
                .iter()
                .map(|d| d.as_u64().expect("dim") as usize)
                .collect();
            (k.clone(), shape)
        })
        .collect()
}

/// Checks a module's expected keys against a key manifest entry, and its parameter count.
pub fn assert_keys(name: &str, ours: Vec<(String, Vec<usize>)>, entry: &Value) {
    assert_eq!(ours, keys(entry), "{name}");
    let params: u64 = ours
        .iter()
        .map(|(_, s)| s.iter().product::<usize>() as u64)
        .sum();
    assert_eq!(
        params,
        entry["param_count"].as_u64().expect("count"),
        "{name}"
    );
}
