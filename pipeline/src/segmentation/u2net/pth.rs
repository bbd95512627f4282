//! PyTorch `torch.save(state_dict)` files without Python: both the zip container (PyTorch ≥ 1.6)
//! and the legacy stream (the original 2020 `u2net.pth` / `u2netp.pth`), read into a
//! [`StateDict`]. (burn-store 0.21 can read these too, but it needs zip 8, which is not in this
//! workspace's lock file; the subset of pickle a state dict uses is small.)
//!
//! A state dict pickles as an `OrderedDict` of key → `torch._utils._rebuild_tensor_v2(storage,
//! offset, size, stride, …)`, where each storage is a persistent id `('storage', torch.FloatStorage,
//! key, location, numel[, view])` whose bytes live outside the pickle: in the zip entry
//! `<archive>/data/<key>`, or (legacy) after the pickles, as `numel: i64` + raw little-endian data
//! per key, in the order of a pickled key list. Only that subset of pickle is interpreted; any
//! other callable becomes an opaque object, which is an error only if it is where a tensor must be.

use std::collections::HashMap;

use super::weights::StateDict;

mod pickle;
mod zip;

use pickle::{Machine, Value};

/// Bytes per element and the little-endian decoder of one element.
type Element = (usize, fn(&[u8]) -> f32);

/// Element types of the storages we convert (`torch.<Name>Storage`).
fn element(storage_type: &str) -> Result<Element, String> {
    Ok(match storage_type {
        "FloatStorage" => (4, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        "DoubleStorage" => (8, |b| {
            f64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8])) as f32
        }),
        "HalfStorage" => (2, |b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()),
        "BFloat16Storage" => (2, |b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()),
        "LongStorage" => (8, |b| {
            i64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8])) as f32
        }),
        "IntStorage" => (4, |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32),
        other => return Err(format!("unsupported storage type torch.{other}")),
    })
}

/// Reads a zip-format `torch.save` file.
pub fn read_zip(bytes: &[u8]) -> Result<StateDict, String> {
    let entries = zip::entries(bytes)?;
    let pkl = entries
        .keys()
        .find(|n| n.ends_with("/data.pkl") || n.as_str() == "data.pkl")
        .ok_or("no data.pkl in the zip: not a torch.save file")?
        .clone();
    let prefix = pkl.trim_end_matches("data.pkl").to_string();
    let mut machine = Machine::new(entries[&pkl]);
    let top = machine.run()?;
    let storage = |key: &str| -> Result<&[u8], String> {
        entries
            .get(&format!("{prefix}data/{key}"))
            .map(|v| &v[..])
            .ok_or_else(|| format!("storage `{key}` is missing from the zip"))
    };
    state_dict(top, storage)
}

/// Reads a legacy (pre-1.6) `torch.save` stream.
pub fn read_legacy(bytes: &[u8]) -> Result<StateDict, String> {
    let mut machine = Machine::new(bytes);
    let magic = machine.run()?;
    if !matches!(magic, Value::Int(0x1950a86a20f9469cfc6c)) {
        return Err("bad magic number: not a torch.save file".into());
    }
    if !matches!(machine.run()?, Value::Int(1001)) {
        return Err("unsupported legacy protocol version".into());
    }
    machine.run()?; // sys_info (byte order, type sizes): little-endian is all we read.
    let top = machine.run()?;
    let Value::List(keys) = machine.run()? else {
        return Err("missing the storage key list".into());
    };
    let mut pos = machine.position();
    let mut data: HashMap<String, &[u8]> = HashMap::new();
    for key in keys {
        let Value::Str(key) = key else {
            return Err("a storage key is not a string".into());
        };
        let size = machine
            .storage_element_size(&key)
            .ok_or_else(|| format!("storage `{key}` is listed but never used"))?;
        let head = bytes.get(pos..pos + 8).ok_or("truncated storage header")?;
        let numel = u64::from_le_bytes(head.try_into().map_err(|_| "header")?) as usize;
        let len = numel.checked_mul(size).ok_or("storage size overflows")?;
        let body = bytes
            .get(pos + 8..pos + 8 + len)
            .ok_or_else(|| format!("storage `{key}` is truncated"))?;
        data.insert(key, body);
        pos += 8 + len;
    }
    state_dict(top, |key| {
        data.get(key)
            .copied()
            .ok_or_else(|| format!("storage `{key}` has no data"))
    })
}

/// The tensors of the unpickled top-level object: a state dict, or a checkpoint dict holding
/// one under `state_dict` / `model`. A `module.` prefix on every key (a model saved through
/// `nn.DataParallel`) is removed.
fn state_dict<'a>(
    top: Value,
    storage: impl Fn(&str) -> Result<&'a [u8], String>,
) -> Result<StateDict, String> {
    let Value::Dict(items) = top else {
        return Err("the pickled object is not a dict".into());
    };
    let nested = items.iter().find_map(|(k, v)| match (k, v) {
        (Value::Str(k), Value::Dict(_)) if k == "state_dict" || k == "model" => Some(v.clone()),
        _ => None,
    });
    let items = match nested {
        Some(Value::Dict(inner)) => inner,
        _ => items,
    };
    let all_module = items
        .iter()
        .all(|(k, _)| matches!(k, Value::Str(s) if s.starts_with("module.")));
    let mut out = StateDict::new();
    for (k, v) in items {
        let Value::Str(key) = k else {
            return Err("a state-dict key is not a string".into());
        };
        let key = if all_module {
            key["module.".len()..].to_string()
        } else {
            key
        };
        let Value::Tensor(t) = v else {
            return Err(format!("`{key}` is not a tensor"));
        };
        let (size, convert) = element(&t.storage_type).map_err(|e| format!("`{key}`: {e}"))?;
        let bytes = storage(&t.storage_key)?;
        let numel: usize = t.shape.iter().product();
        let mut values = Vec::with_capacity(numel);
        let mut index = vec![0usize; t.shape.len()];
        for _ in 0..numel {
            let at = t.offset
                + index
                    .iter()
                    .zip(&t.stride)
                    .map(|(i, s)| i * s)
                    .sum::<usize>();
            let b = bytes
                .get(at * size..(at + 1) * size)
                .ok_or_else(|| format!("`{key}` reads past the end of its storage"))?;
            values.push(convert(b));
            for d in (0..index.len()).rev() {
                index[d] += 1;
                if index[d] < t.shape[d] {
                    break;
                }
                index[d] = 0;
            }
        }
        out.insert(key, (t.shape, values));
    }
    Ok(out)
}
