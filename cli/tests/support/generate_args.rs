//! The `orfeas generate` arguments the tests start from: every format, resolution 128, the
//! inflate engine, a 512² UV texture; each test changes what it is about.

use std::path::PathBuf;

use orfeas::generate::GenerateArgs;
use orfeas_vocab::{
    BackgroundMode, Device, Dtype, Engine, MeshFormat, TextureMode, VolumeDecoding,
};

pub fn args(images: Vec<PathBuf>, out: PathBuf) -> GenerateArgs {
    GenerateArgs {
        images,
        out,
        format: MeshFormat::ALL.to_vec(),
        resolution: 128,
        faces: None,
        engine: Engine::Inflate,
        background: BackgroundMode::Auto,
        inflation: 1.0,
        weights: None,
        steps: None,
        guidance: 5.0,
        seed: 1234,
        chunks: 8000,
        decoding: VolumeDecoding::Hierarchical,
        device: Device::Cpu,
        dtype: Dtype::F32,
        cutout: false,
        segmentation_weights: None,
        paint_weights: None,
        delight_weights: None,
        paint_view_size: 512,
        paint_render_size: 2048,
        texture: TextureMode::Uv,
        texture_size: 512,
        no_texture: false,
        quiet: true,
    }
}
