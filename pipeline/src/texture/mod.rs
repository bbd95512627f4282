//! `texture_synthesis`: colour for the mesh from the preprocessed image.
//!
//! - `uv` (the default): the mesh is unwrapped into a UV atlas ([`atlas`]), the image is baked
//!   into a texture as the front view and its mirror as the back ([`bake`], with Hunyuan3D-Paint's
//!   cosine weighting and merge), and what neither saw is inpainted ([`fill`]). Vertex colours
//!   sampled from the texture come along for PLY.
//! - `vertex`: colours per vertex, projected along the view axis ([`colorize`]).
//! - `paint`: Hunyuan3D-Paint's diffusion models generate six views, baked the same way
//!   ([`paint`]).
//!
//! The rasterizer ([`raster`]) and the orthographic views ([`camera`]) are what the multiview
//! texture model's conditioning renders and bake need as well. Rasterization runs where the
//! pipeline's [`Rasterizer`] runs: the host's cores, or the GPU of a worker on CUDA.

pub mod atlas;
pub mod bake;
pub mod camera;
mod fill;
pub mod inpaint;
pub mod paint;
pub mod raster;
pub mod render;
mod source;
mod vertex;

pub use atlas::AtlasError;
pub use fill::fill as fill_texture;
pub use source::SourceImage;
pub use vertex::colorize;

use crate::image::PreprocessedImage;
use crate::mesh::Mesh;
use crate::shape::ViewFrame;
use bake::{BakeRules, BakeView};
use camera::OrthoView;
use raster::Rasterizer;

/// Merge weights of the front and back views: the reference's weights for azimuths 0 and 180.
const FRONT_WEIGHT: f32 = 1.0;
const BACK_WEIGHT: f32 = 0.5;

/// What a UV bake produced, for the item's report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UvReport {
    pub charts: u32,
    /// Share of the texture's texels inside charts.
    pub utilization: f32,
    /// Share of chart texels a view saw (the rest were inpainted).
    pub seen: f32,
}

/// The weights-free `uv` texture: unwraps `mesh`, bakes the image into a `size`² texture as the
/// front view (and its mirror as the back) of `frame`, and inpaints the rest. Returns the mesh
/// split along its seams, with UVs, the texture and vertex colours sampled from it.
/// `keep_going` is asked during the unwrap, the longest step.
pub fn bake_image(
    rasterizer: &dyn Rasterizer,
    mesh: &Mesh,
    image: &PreprocessedImage,
    frame: &ViewFrame,
    size: usize,
    keep_going: impl Fn() -> bool + Sync,
) -> Result<(Mesh, UvReport), AtlasError> {
    let atlas = atlas::unwrap(mesh, size as u32, keep_going)?;
    let mut out = atlas.mesh;
    let normals = out.vertex_normals();
    let source = SourceImage::new(image);
    let front = OrthoView::from_frame(frame, image.size);
    let views = [
        BakeView {
            view: front,
            image: &source,
            weight: FRONT_WEIGHT,
        },
        BakeView {
            view: front.from_behind(),
            image: &source,
            weight: BACK_WEIGHT,
        },
    ];
    let baked = bake::back_project(
        rasterizer,
        &out,
        &normals,
        &views,
        size,
        BakeRules::SINGLE_IMAGE,
    );
    let chart_texels = baked
        .uv
        .face
        .iter()
        .filter(|&&f| f != raster::NO_FACE)
        .count();
    let seen = (0..size * size)
        .filter(|&t| baked.uv.covered(t) && baked.seen(t))
        .count();
    let rgb = fill::fill(&out, &baked);
    let texture = image::RgbImage::from_fn(size as u32, size as u32, |x, y| {
        let c = rgb[y as usize * size + x as usize];
        image::Rgb(c.map(|v| v.round().clamp(0.0, 255.0) as u8))
    });
    out.colors = Some(sample_vertex_colours(&out, &texture));
    out.texture = Some(texture);
    Ok((
        out,
        UvReport {
            charts: atlas.charts,
            utilization: atlas.utilization,
            seen: if chart_texels == 0 {
                0.0
            } else {
                seen as f32 / chart_texels as f32
            },
        },
    ))
}

/// The texture's colour under each vertex (bilinear), for formats that carry vertex colours.
pub fn sample_vertex_colours(mesh: &Mesh, texture: &image::RgbImage) -> Vec<[u8; 3]> {
    let (w, h) = (texture.width() as usize, texture.height() as usize);
    let source = SourceImage {
        size: w,
        rgb: texture.pixels().map(|p| p.0.map(f32::from)).collect(),
    };
    debug_assert_eq!(w, h, "textures are square");
    mesh.uvs
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|uv| {
            source
                .sample(uv[0] * w as f32 - 0.5, uv[1] * h as f32 - 0.5)
                .map(|v| v.round().clamp(0.0, 255.0) as u8)
        })
        .collect()
}
