//! `texture: vertex`: vertex colours projected from the preprocessed image along the view axis
//! of the engine's [`ViewFrame`]. Front and back both take the colour at their projected pixel.

use crate::image::PreprocessedImage;
use crate::mesh::Mesh;
use crate::shape::ViewFrame;

use super::source::SourceImage;

pub fn colorize(mesh: &mut Mesh, image: &PreprocessedImage, frame: &ViewFrame) {
    let source = SourceImage::new(image);
    let colors = mesh
        .positions
        .iter()
        .map(|&p| {
            let (u, v) = frame.project(p, image.size);
            source
                .sample(u, v)
                .map(|c| c.round().clamp(0.0, 255.0) as u8)
        })
        .collect();
    mesh.colors = Some(colors);
}
