//! `shape_generation`: the [`ShapeEngine`] interface, engines, marching cubes and clean-up.

pub mod engine;
pub mod hunyuan3d;
pub mod inflate;
pub mod load;
pub mod mc;
pub mod postprocess;

pub use engine::{GeneratedShape, ShapeEngine, ShapeOptions, ShapeRequest, ViewFrame, all_stopped};
pub use inflate::InflateEngine;
pub use load::{EngineLoadError, EngineSpec, load_engine};
pub use mc::{Volume, marching_cubes, marching_cubes_until};
pub use postprocess::{PostprocessOptions, postprocess};
