//! `shape_generation`: the [`ShapeEngine`] interface, engines, marching cubes and clean-up.

pub mod engine;
pub mod hunyuan3d;
pub mod inflate;
pub mod load;
pub mod mc;
pub mod postprocess;

pub use engine::{GeneratedShape, ShapeEngine, ShapeOptions, ShapeRequest, ViewFrame};
pub use inflate::InflateEngine;
pub use load::{EngineLoadError, EngineSpec, load_engine};
pub use mc::{Volume, marching_cubes};
pub use postprocess::{PostprocessOptions, postprocess};
