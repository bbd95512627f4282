//! Loading the released single-file checkpoints (`model.fp16.safetensors`).
//!
//! The file is memory-mapped: tensors are read from the page cache one at a time and converted to
//! the compute dtype as they are assigned, so loading a 4.9 GB checkpoint needs the model's own
//! memory plus one tensor, never a second copy of the file.
//!
//! Loading is strict. Every parameter the module expects must be in the file under its key with
//! exactly its shape, and every key under the module's prefix must be consumed; the first
//! problems are reported by key. The key of a parameter is its module path (field names joined by
//! `.`, `Vec` indices as numbers) with the checkpoint prefix prepended and the rewrites of
//! [`KeyRemap`] applied. `nn::Linear` weights are stored transposed (`[in, out]`); the checkpoint's
//! `[out, in]` tensors are transposed on the host while loading and reported in the checkpoint's
//! orientation by [`manifest`].

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{DType, Tensor, TensorData, backend::Backend};
use memmap2::Mmap;
use safetensors::SafeTensors;
use safetensors::tensor::Dtype as StDtype;

use super::ModelError;

/// Rewrites from our module paths to checkpoint keys, applied to `.`-delimited segments. Each
/// entry exists because a PyTorch name is not a Rust identifier; the list is the whole difference
/// between our module tree and the checkpoint.
#[derive(Debug, Clone, Copy)]
pub struct KeyRemap(pub &'static [(&'static str, &'static str)]);

impl KeyRemap {
    pub const NONE: KeyRemap = KeyRemap(&[]);

    /// Applies the rewrites to a module path (`a.b.c`).
    pub fn apply(&self, path: &str) -> String {
        let mut key = format!(".{path}.");
        for (ours, theirs) in self.0 {
            key = key.replace(&format!(".{ours}."), &format!(".{theirs}."));
        }
        key[1..key.len() - 1].to_string()
    }
}

/// Where a checkpoint's tensor bytes live.
#[derive(Debug)]
enum Bytes {
    /// A memory-mapped safetensors file.
    Mapped(Mmap),
    /// f32 values decoded from another format (a PyTorch pickle), little-endian.
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// An opened checkpoint: its tensor bytes and their index.
#[derive(Debug)]
pub struct Checkpoint {
    path: PathBuf,
    mmap: Bytes,
    /// Key → (dtype, shape, byte range within the file).
    tensors: BTreeMap<String, (StDtype, Vec<usize>, std::ops::Range<usize>)>,
}

impl Checkpoint {
    /// Maps `path` and parses its safetensors header; fails on a missing, truncated or malformed
    /// file.
    pub fn open(path: &Path) -> Result<Self, ModelError> {
        let file = File::open(path).map_err(|e| ModelError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        // SAFETY: the map is read-only and lives as long as `Checkpoint`. A checkpoint modified
        // by another process while we read it could change the bytes we see (never memory safety
        // of our own data structures: every tensor is copied out and bounds-checked by the
        // safetensors header parser first).
        #[allow(unsafe_code)]
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| ModelError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let parsed = SafeTensors::deserialize(&mmap).map_err(|e| ModelError::Format {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let base = mmap.as_ptr() as usize;
        let tensors = parsed
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                let start = view.data().as_ptr() as usize - base;
                let range = start..start + view.data().len();
                (name, (view.dtype(), view.shape().to_vec(), range))
            })
            .collect();
        Ok(Self {
            path: path.to_path_buf(),
            mmap: Bytes::Mapped(mmap),
            tensors,
        })
    }

    /// A checkpoint of tensors already decoded to f32 (key → shape, values), such as a
    /// PyTorch state dict; `path` names where they came from in errors.
    pub fn from_f32(
        path: &Path,
        tensors: impl IntoIterator<Item = (String, (Vec<usize>, Vec<f32>))>,
    ) -> Self {
        let mut bytes = Vec::new();
        let mut index = BTreeMap::new();
        for (key, (shape, values)) in tensors {
            let start = bytes.len();
            bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
            index.insert(key, (StDtype::F32, shape, start..bytes.len()));
        }
        Self {
            path: path.to_path_buf(),
            mmap: Bytes::Owned(bytes),
            tensors: index,
        }
    }

    /// Drops `key` from the index, for buffers some checkpoints save beside the parameters
    /// that no module holds (the strict loader would report them as unexpected).
    pub fn forget(&mut self, key: &str) {
        self.tensors.remove(key);
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// All keys with their shapes.
    pub fn shapes(&self) -> impl Iterator<Item = (&str, &[usize])> {
        self.tensors
            .iter()
            .map(|(k, (_, s, _))| (k.as_str(), s.as_slice()))
    }

    /// Keys that start with `prefix`.
    pub fn keys_with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.tensors
            .keys()
            .filter(move |k| k.starts_with(prefix))
            .map(String::as_str)
    }

    /// The tensor under `key`, converted to `dtype`.
    pub fn data(&self, key: &str, dtype: DType) -> Result<TensorData, ModelError> {
        self.data_oriented(key, dtype, false)
    }

    /// The tensor under `key`, transposed first if `transpose` (2-D only), converted to `dtype`.
    fn data_oriented(
        &self,
        key: &str,
        dtype: DType,
        transpose: bool,
    ) -> Result<TensorData, ModelError> {
        let (from, shape, range) =
            self.tensors
                .get(key)
                .ok_or_else(|| ModelError::MissingTensor {
                    key: key.to_string(),
                })?;
        let bytes = &self.mmap[range.clone()];
        convert(key, *from, bytes, shape.clone(), dtype, transpose)
    }

    /// Loads every parameter of `module` from the keys under `prefix` (after `remap`), converted
    /// to `dtype`, strictly: see the module documentation.
    pub fn load<B: Backend, M: Module<B>>(
        &self,
        module: M,
        prefix: &str,
        remap: KeyRemap,
        dtype: DType,
    ) -> Result<M, ModelError> {
        let mut loader = Loader {
            checkpoint: self,
            at: ParamPath::new(prefix, remap),
            dtype,
            visited: BTreeSet::new(),
            errors: Vec::new(),
            _backend: std::marker::PhantomData::<B>,
        };
        let module = module.map(&mut loader);
        let mut errors = loader.errors;
        for key in self.keys_with_prefix(prefix) {
            if !loader.visited.contains(key) {
                errors.push(ModelError::UnexpectedTensor {
                    key: key.to_string(),
                });
            }
        }
        match errors.len() {
            0 => Ok(module),
            1 => Err(errors.remove(0)),
            _ => Err(ModelError::Many {
                count: errors.len(),
                first: errors.into_iter().take(5).map(|e| e.to_string()).collect(),
            }),
        }
    }
}

fn convert(
    key: &str,
    from: StDtype,
    bytes: &[u8],
    shape: Vec<usize>,
    to: DType,
    transpose: bool,
) -> Result<TensorData, ModelError> {
    let mut values: Vec<f32> = match from {
        StDtype::F16 => bytes
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        StDtype::BF16 => bytes
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        StDtype::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        other => {
            return Err(ModelError::UnsupportedDtype {
                key: key.to_string(),
                dtype: format!("{other:?}"),
            });
        }
    };
    let mut shape = shape;
    if transpose && shape.len() == 2 {
        let (rows, cols) = (shape[0], shape[1]);
        let mut t = vec![0f32; values.len()];
        for r in 0..rows {
            for c in 0..cols {
                t[c * rows + r] = values[r * cols + c];
            }
        }
        values = t;
        shape = vec![cols, rows];
    }
    let data = TensorData::new(values, shape);
    Ok(match to {
        DType::F32 => data,
        DType::F16 => data.convert_dtype(DType::F16),
        DType::BF16 => data.convert_dtype(DType::BF16),
        other => {
            return Err(ModelError::UnsupportedDtype {
                key: key.to_string(),
                dtype: format!("{other:?} (compute)"),
            });
        }
    })
}

/// Where a module walk stands: the field path and the container types entered, from which a
/// parameter's checkpoint key and orientation follow. Shared by the loader and [`manifest`].
struct ParamPath<'a> {
    prefix: &'a str,
    remap: KeyRemap,
    path: Vec<String>,
    containers: Vec<String>,
}

impl<'a> ParamPath<'a> {
    fn new(prefix: &'a str, remap: KeyRemap) -> Self {
        Self {
            prefix,
            remap,
            path: Vec::new(),
            containers: Vec::new(),
        }
    }

    fn enter(&mut self, name: &str, container_type: &str) {
        self.path.push(name.to_string());
        self.containers.push(container_type.to_string());
    }

    fn exit(&mut self) {
        self.path.pop();
        self.containers.pop();
    }

    /// The current parameter's checkpoint key.
    fn key(&self) -> String {
        format!("{}{}", self.prefix, self.remap.apply(&self.path.join(".")))
    }

    /// Whether the current parameter is an `nn::Linear` weight, held transposed relative to the
    /// checkpoint.
    fn is_linear_weight(&self) -> bool {
        self.path.last().is_some_and(|p| p == "weight")
            && self.containers.last().is_some_and(|c| c == "Struct:Linear")
    }

    /// A parameter shape in the checkpoint's orientation.
    fn checkpoint_shape(&self, shape: Vec<usize>) -> Vec<usize> {
        if self.is_linear_weight() {
            shape.into_iter().rev().collect()
        } else {
            shape
        }
    }
}

struct Loader<'a, B: Backend> {
    checkpoint: &'a Checkpoint,
    at: ParamPath<'a>,
    dtype: DType,
    visited: BTreeSet<String>,
    errors: Vec<ModelError>,
    _backend: std::marker::PhantomData<B>,
}

impl<B: Backend> ModuleMapper<B> for Loader<'_, B> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.at.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.at.exit();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let key = self.at.key();
        self.visited.insert(key.clone());
        let linear = self.at.is_linear_weight();
        let expected = self.at.checkpoint_shape(param.lazy_shape().to_vec());
        let Some((_, found, _)) = self.checkpoint.tensors.get(&key) else {
            self.errors.push(ModelError::MissingTensor { key });
            return param;
        };
        if *found != expected {
            self.errors.push(ModelError::ShapeMismatch {
                key,
                expected,
                found: found.clone(),
            });
            return param;
        }
        match self.checkpoint.data_oriented(&key, self.dtype, linear) {
            Ok(data) => {
                let id = param.id;
                let device = param.lazy_device();
                let tensor = Tensor::<B, D>::from_data(data, (&device, self.dtype));
                param.transform_for_load(tensor, id)
            }
            Err(e) => {
                self.errors.push(e);
                param
            }
        }
    }
}

/// The checkpoint keys and shapes a module expects (its manifest), computed without materialising
/// any parameter.
pub fn manifest<B: Backend, M: Module<B>>(
    module: &M,
    prefix: &str,
    remap: KeyRemap,
) -> BTreeMap<String, Vec<usize>> {
    struct Collect<'a> {
        at: ParamPath<'a>,
        out: BTreeMap<String, Vec<usize>>,
    }
    impl<B: Backend> ModuleVisitor<B> for Collect<'_> {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.at.enter(name, container_type);
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.at.exit();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let shape = self.at.checkpoint_shape(param.lazy_shape().to_vec());
            self.out.insert(self.at.key(), shape);
        }
    }
    let mut c = Collect {
        at: ParamPath::new(prefix, remap),
        out: BTreeMap::new(),
    };
    module.visit(&mut c);
    c.out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn remap_rewrites_whole_segments_only() {
        let r = KeyRemap(&[("fc1", "0"), ("ada_ln_modulation", "adaLN_modulation.1")]);
        assert_eq!(
            r.apply("double_blocks.3.img_mlp.fc1.weight"),
            "double_blocks.3.img_mlp.0.weight"
        );
        assert_eq!(
            r.apply("final_layer.ada_ln_modulation.bias"),
            "final_layer.adaLN_modulation.1.bias"
        );
        assert_eq!(r.apply("xfc1.weight"), "xfc1.weight");
    }
}
