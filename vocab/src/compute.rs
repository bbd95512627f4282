//! What a job runs on: the shape engine, the device, the compute dtype and how volumes are
//! decoded.

use std::fmt;
use std::str::FromStr;

use crate::names::named_enum;

named_enum! {
    /// A shape engine.
    pub enum Engine: "engine" {
        /// Weights-free silhouette inflation.
        Inflate = "inflate",
        /// Tencent's Hunyuan3D-2 shape model (needs a checkpoint on the workers).
        Hunyuan3d = "hunyuan3d",
    }
}

#[cfg(feature = "sqlx")]
crate::names::sql_name!(text Engine);

impl Engine {
    /// Whether the engine runs a model loaded from a checkpoint folder.
    pub const fn needs_weights(self) -> bool {
        matches!(self, Engine::Hunyuan3d)
    }
}

/// What the batch optimizer learns memory figures for: a shape engine's `shape_generation`, or
/// the `paint` texture engine's `texture_synthesis` (a batch stage of its own, whose models and
/// activations have nothing to do with the shape engine's). Named by the engine's name, or
/// `paint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Workload {
    Shape(Engine),
    Paint,
}

impl Workload {
    const PAINT: &'static str = "paint";

    pub const fn as_str(self) -> &'static str {
        match self {
            Workload::Shape(e) => e.as_str(),
            Workload::Paint => Self::PAINT,
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Workload {
    type Err = crate::UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case(Self::PAINT) {
            return Ok(Workload::Paint);
        }
        s.parse().map(Workload::Shape)
    }
}

#[cfg(feature = "sqlx")]
crate::names::sql_name!(text Workload);

named_enum! {
    /// The dtype a model computes in.
    pub enum Dtype: "dtype" {
        F32 = "f32",
        F16 = "f16",
        Bf16 = "bf16",
    }
}

named_enum! {
    /// How an engine decodes its occupancy volume.
    pub enum VolumeDecoding: "volume decoding" {
        /// Coarse grid, then only near-surface cells at finer levels; 5–10× fewer queries at
        /// resolution 256 and above.
        Hierarchical = "hierarchical",
        /// Every grid point (the reference pipeline's default).
        Dense = "dense",
    }
}

/// The device a worker computes on and whose memory its batch optimizer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Device {
    #[default]
    Cpu,
    /// An NVIDIA GPU by CUDA index.
    Cuda(u32),
}

impl Device {
    pub const fn is_gpu(self) -> bool {
        matches!(self, Device::Cuda(_))
    }
}

/// A string that names no device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown device `{0}` (expected cpu, cuda or cuda:N)")]
pub struct UnknownDevice(pub String);

impl FromStr for Device {
    type Err = UnknownDevice;
    /// `cpu`, `cuda` (= `cuda:0`) or `cuda:N`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        match t.as_str() {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Device::Cuda)
                .ok_or_else(|| UnknownDevice(s.to_owned())),
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl serde::Serialize for Device {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Device {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "sqlx")]
crate::names::sql_name!(text Device);

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Device {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^(cpu|cuda:[0-9]+)$"))
            .examples([serde_json::json!("cuda:0")])
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Device {}

#[cfg(test)]
mod tests {
    #[test]
    fn workloads_are_named_by_engine_or_paint() {
        for w in [
            Workload::Shape(Engine::Inflate),
            Workload::Shape(Engine::Hunyuan3d),
            Workload::Paint,
        ] {
            assert_eq!(w.to_string().parse::<Workload>(), Ok(w));
        }
        assert!(
            Engine::ALL.iter().all(|e| e.as_str() != "paint"),
            "no engine may be called paint"
        );
        assert!("magic".parse::<Workload>().is_err());
    }

    use super::*;

    #[test]
    fn devices_parse_one_way_everywhere() {
        assert_eq!("cpu".parse(), Ok(Device::Cpu));
        assert_eq!("cuda".parse(), Ok(Device::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(Device::Cuda(3)));
        assert_eq!("CUDA:1".parse(), Ok(Device::Cuda(1)));
        for bad in ["tpu:0", "cuda:", "cuda:x", "cuda:-1", ""] {
            let e = bad.parse::<Device>().expect_err(bad);
            assert!(e.to_string().contains("cpu, cuda or cuda:N"), "{e}");
        }
        assert_eq!(Device::Cuda(2).to_string(), "cuda:2");
        let json = serde_json::to_string(&Device::Cuda(1)).expect("json");
        assert_eq!(json, "\"cuda:1\"");
        assert_eq!(
            serde_json::from_str::<Device>(&json).expect("back"),
            Device::Cuda(1)
        );
    }

    #[test]
    fn engines_and_settings() {
        assert_eq!("hunyuan3d".parse(), Ok(Engine::Hunyuan3d));
        assert!(Engine::Hunyuan3d.needs_weights() && !Engine::Inflate.needs_weights());
        assert_eq!("bf16".parse(), Ok(Dtype::Bf16));
        assert!("f64".parse::<Dtype>().is_err());
        assert_eq!("dense".parse(), Ok(VolumeDecoding::Dense));
        let e = "flashvdm".parse::<VolumeDecoding>().expect_err("unknown");
        assert!(e.to_string().contains("hierarchical, dense"), "{e}");
    }
}
