//! `mesh_export`: GLB (glTF 2.0 binary), OBJ, binary STL and binary PLY, and the other
//! artifacts a job can ask for (the preprocessed cut-out as PNG).

mod glb;
mod obj;
mod ply;
mod stl;

use image::ImageEncoder;
use orfeas_vocab::{Artifact, MeshFormat};

use crate::error::ExportError;
use crate::image::PreprocessedImage;
use crate::mesh::Mesh;

/// Encodes the mesh. Vertex colours (sRGB) are written where the format carries them.
pub fn export_mesh(mesh: &Mesh, format: MeshFormat) -> Result<Vec<u8>, ExportError> {
    if mesh.is_empty() {
        return Err(ExportError::EmptyMesh);
    }
    match format {
        MeshFormat::Glb => glb::write(mesh),
        MeshFormat::Obj => Ok(obj::write(mesh)),
        MeshFormat::Stl => stl::write(mesh),
        MeshFormat::Ply => Ok(ply::write(mesh)),
    }
}

/// The preprocessed image as an RGBA PNG: the recentred RGB with the object mask as alpha, so
/// a client sees exactly what the shape engine was given.
pub fn export_cutout(image: &PreprocessedImage) -> Result<Vec<u8>, ExportError> {
    let mut rgba = Vec::with_capacity(image.mask.len() * 4);
    for (px, &m) in image.rgb.chunks_exact(3).zip(&image.mask) {
        rgba.extend_from_slice(px);
        rgba.push(m);
    }
    let side = u32::try_from(image.size).map_err(|_| ExportError::Encode {
        artifact: Artifact::Cutout,
        detail: format!("{} px is too wide for PNG", image.size),
    })?;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(&rgba, side, side, image::ExtendedColorType::Rgba8)
        .map_err(|e| ExportError::Encode {
            artifact: Artifact::Cutout,
            detail: e.to_string(),
        })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{Segmentation, SegmentationMethod};

    #[test]
    fn the_cutout_carries_the_mask_as_alpha() {
        let size = 8;
        let mut mask = vec![0u8; size * size];
        mask[9] = 255;
        let img = PreprocessedImage {
            size,
            rgb: (0..size * size * 3).map(|i| (i % 251) as u8).collect(),
            mask,
            segmentation: Segmentation {
                method: SegmentationMethod::Alpha,
                mask_share: 1.0,
            },
        };
        let png = export_cutout(&img).expect("png");
        let decoded = image::load_from_memory(&png).expect("decodes").to_rgba8();
        assert_eq!(decoded.dimensions(), (8, 8));
        assert_eq!(decoded.get_pixel(1, 1).0, [27, 28, 29, 255]);
        assert_eq!(decoded.get_pixel(0, 0).0, [0, 1, 2, 0]);
    }
}
