//! Loading U²-Net weights, strictly, from any of the accepted formats.
//!
//! The format is recognised by content, not by extension: a safetensors header, a PyTorch zip
//! (`torch.save` since 1.6) or legacy pickle stream (the original `u2net.pth`), otherwise an ONNX
//! `ModelProto` (rembg's `u2net.onnx` / `u2netp.onnx`). State-dict formats go through
//! [`U2NetWeights::from_state_dict`]; ONNX through `onnx_map` (anonymous initializers matched to
//! our convolutions by graph order). Both end in the same list of BatchNorm-folded convolutions.
//!
//! Strictness: the size is inferred from `stage1.rebnconv1.conv_s1.weight` (32 output channels:
//! U2NET, 16: U2NETP); then every key of the size's manifest must be present with exactly its
//! shape, and nothing else may be, except BatchNorm's `num_batches_tracked` training counters.
//! Every problem names the key.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::Path;

use memmap2::Mmap;
use safetensors::SafeTensors;
use safetensors::tensor::Dtype as StDtype;

use super::super::{SegmentationError, U2NetKind};
use super::config::U2NetConfig;
use super::rebnconv::{BN_EPS, BatchNorm, FoldedConv};
use super::{onnx_map, pth};

/// A state dict: key → (shape, row-major values), every dtype converted to f32.
pub type StateDict = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// The key whose shape tells the two sizes apart.
const SIZE_KEY: &str = "stage1.rebnconv1.conv_s1.weight";

/// Loaded weights: the size and its 119 convolutions in forward order, BatchNorm folded in.
#[derive(Debug, Clone)]
pub struct U2NetWeights {
    config: U2NetConfig,
    convs: Vec<FoldedConv>,
}

impl U2NetWeights {
    pub fn config(&self) -> U2NetConfig {
        self.config
    }

    pub fn kind(&self) -> U2NetKind {
        self.config.kind
    }

    pub fn convs(&self) -> &[FoldedConv] {
        &self.convs
    }

    /// Weights whose convolutions were matched elsewhere (ONNX); checks count and shapes again.
    pub(crate) fn from_folded(
        config: U2NetConfig,
        convs: Vec<FoldedConv>,
    ) -> Result<Self, SegmentationError> {
        let specs = config.convs();
        if specs.len() != convs.len() {
            return Err(SegmentationError::Unsupported(format!(
                "{} convolutions, a {} model has {}",
                convs.len(),
                config.kind,
                specs.len()
            )));
        }
        for (s, c) in specs.iter().zip(&convs) {
            if c.shape != s.weight_shape() || c.bias.len() != s.out_ch {
                return Err(SegmentationError::ShapeMismatch {
                    key: format!("{}.weight", s.conv),
                    expected: s.weight_shape().to_vec(),
                    found: c.shape.to_vec(),
                });
            }
        }
        Ok(U2NetWeights { config, convs })
    }

    /// Strict loading from a state dict (see the module documentation).
    pub fn from_state_dict(sd: &StateDict) -> Result<Self, SegmentationError> {
        let (shape, _) = sd
            .get(SIZE_KEY)
            .ok_or_else(|| SegmentationError::MissingTensor {
                key: SIZE_KEY.into(),
            })?;
        let config = shape
            .first()
            .and_then(|&mid| U2NetConfig::from_stage1_mid(mid))
            .ok_or_else(|| {
                SegmentationError::Unsupported(format!(
                    "`{SIZE_KEY}` has shape {shape:?}: U2NET has [32, 64, 3, 3], U2NETP [16, 64, 3, 3]"
                ))
            })?;

        let mut errors = Vec::new();
        let mut expected = BTreeSet::new();
        for (key, shape) in config.manifest() {
            match sd.get(&key) {
                None => errors.push(SegmentationError::MissingTensor { key: key.clone() }),
                Some((found, _)) if *found != shape => {
                    errors.push(SegmentationError::ShapeMismatch {
                        key: key.clone(),
                        expected: shape,
                        found: found.clone(),
                    })
                }
                Some(_) => {}
            }
            expected.insert(key);
        }
        let bn_prefixes: BTreeSet<String> =
            config.convs().into_iter().filter_map(|c| c.bn).collect();
        for key in sd.keys() {
            let counter = key
                .strip_suffix(".num_batches_tracked")
                .is_some_and(|p| bn_prefixes.contains(p));
            if !expected.contains(key) && !counter {
                errors.push(SegmentationError::UnexpectedTensor { key: key.clone() });
            }
        }
        if !errors.is_empty() {
            return Err(SegmentationError::many(errors));
        }

        let get = |key: String| -> &[f32] { &sd[&key].1 };
        let convs = config
            .convs()
            .iter()
            .map(|spec| {
                let bn = spec.bn.as_ref().map(|p| BatchNorm {
                    gamma: get(format!("{p}.weight")),
                    beta: get(format!("{p}.bias")),
                    mean: get(format!("{p}.running_mean")),
                    var: get(format!("{p}.running_var")),
                    eps: BN_EPS,
                });
                let weight = get(format!("{}.weight", spec.conv));
                let bias = get(format!("{}.bias", spec.conv));
                FoldedConv::fold(spec, weight, bias, bn)
            })
            .collect();
        Ok(U2NetWeights { config, convs })
    }

    /// Loads a weights file of any accepted format, recognised by its content.
    pub fn load(path: &Path) -> Result<Self, SegmentationError> {
        let io = |e: std::io::Error| SegmentationError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let file = File::open(path).map_err(io)?;
        // SAFETY: the map is read-only and dropped before returning; every value is copied out
        // (and bounds-checked by the parsers) first. A file modified by another process while we
        // read it could change the values we see, never our own memory.
        #[allow(unsafe_code)]
        let bytes = unsafe { Mmap::map(&file) }.map_err(io)?;
        let format_error = |message: String| SegmentationError::Format {
            path: path.to_path_buf(),
            message,
        };
        match detect(&bytes) {
            WeightFormat::Safetensors => {
                Self::from_state_dict(&read_safetensors(&bytes).map_err(format_error)?)
            }
            WeightFormat::TorchZip => {
                Self::from_state_dict(&pth::read_zip(&bytes).map_err(format_error)?)
            }
            WeightFormat::TorchLegacy => {
                Self::from_state_dict(&pth::read_legacy(&bytes).map_err(format_error)?)
            }
            WeightFormat::Onnx => onnx_map::from_onnx(&bytes, path),
        }
    }
}

/// What a weights file looks like from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightFormat {
    Safetensors,
    /// `torch.save` since PyTorch 1.6: a zip holding `*/data.pkl` and `*/data/<key>`.
    TorchZip,
    /// Older `torch.save`: a pickle stream (protocol 2) followed by the raw storages.
    TorchLegacy,
    /// Anything else is tried as an ONNX protobuf (which has no magic number).
    Onnx,
}

pub fn detect(bytes: &[u8]) -> WeightFormat {
    if bytes.starts_with(b"PK\x03\x04") {
        return WeightFormat::TorchZip;
    }
    if bytes.starts_with(&[0x80, 0x02]) {
        return WeightFormat::TorchLegacy;
    }
    if bytes.len() >= 9 {
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8]));
        if n.checked_add(8)
            .is_some_and(|end| end <= bytes.len() as u64)
            && bytes[8] == b'{'
        {
            return WeightFormat::Safetensors;
        }
    }
    WeightFormat::Onnx
}

/// Every tensor of a safetensors file, converted to f32 (F32, F16, BF16, F64 and the integer
/// `num_batches_tracked` counters).
pub fn read_safetensors(bytes: &[u8]) -> Result<StateDict, String> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    let mut out = StateDict::new();
    for (name, view) in st.tensors() {
        let d = view.data();
        let values: Vec<f32> = match view.dtype() {
            StDtype::F32 => d
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            StDtype::F16 => d
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            StDtype::BF16 => d
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            StDtype::F64 => d
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32)
                .collect(),
            StDtype::I64 => d
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32)
                .collect(),
            other => return Err(format!("tensor `{name}` has unsupported dtype {other:?}")),
        };
        out.insert(name, (view.shape().to_vec(), values));
    }
    Ok(out)
}
