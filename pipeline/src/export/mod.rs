//! `mesh_export`: GLB (glTF 2.0 binary), OBJ (with its material and texture when UV-textured),
//! binary STL and binary PLY, and the other artifacts a job can ask for (the preprocessed
//! cut-out as PNG).

mod glb;
mod obj;
mod ply;
mod stl;

use image::ImageEncoder;
use orfeas_vocab::{Artifact, MeshFormat};

use crate::error::ExportError;
use crate::image::PreprocessedImage;
use crate::mesh::Mesh;

/// Encodes the mesh. Colour is written where the format carries it: a UV-textured mesh's GLB
/// embeds its texture, its OBJ names the material file ([`export_material`]) that names the
/// texture file ([`export_texture`]); vertex colours otherwise. `name` is what the files are
/// called once downloaded (the job id, or the image's stem), which an OBJ needs to name its
/// material.
pub fn export_mesh(mesh: &Mesh, format: MeshFormat, name: &str) -> Result<Vec<u8>, ExportError> {
    if mesh.is_empty() {
        return Err(ExportError::EmptyMesh);
    }
    match format {
        MeshFormat::Glb => {
            let texture = match &mesh.texture {
                Some(t) if mesh.uvs.is_some() => Some((encode_jpeg(t)?, "image/jpeg")),
                _ => None,
            };
            glb::write(mesh, texture)
        }
        MeshFormat::Obj => Ok(obj::write(mesh, name)),
        MeshFormat::Stl => stl::write(mesh),
        MeshFormat::Ply => Ok(ply::write(mesh)),
    }
}

/// The material library of a UV-textured OBJ ([`Artifact::Mtl`]).
pub fn export_material(name: &str) -> Vec<u8> {
    obj::material(name)
}

/// A UV-textured mesh's base-colour texture as PNG ([`Artifact::Texture`]).
pub fn export_texture(mesh: &Mesh) -> Result<Vec<u8>, ExportError> {
    let texture = mesh.texture.as_ref().ok_or_else(|| ExportError::Encode {
        artifact: Artifact::Texture,
        detail: "the mesh has no texture".into(),
    })?;
    let (w, h) = texture.dimensions();
    encode_png(
        texture.as_raw(),
        w,
        h,
        image::ExtendedColorType::Rgb8,
        Artifact::Texture,
    )
}

/// JPEG quality of a GLB's embedded texture: a tenth of the PNG's size, and the bake's padding
/// keeps block artefacts inside the charts' margins.
const JPEG_QUALITY: u8 = 90;

fn encode_jpeg(texture: &image::RgbImage) -> Result<Vec<u8>, ExportError> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
        .write_image(
            texture.as_raw(),
            texture.width(),
            texture.height(),
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| ExportError::Encode {
            artifact: Artifact::Glb,
            detail: e.to_string(),
        })?;
    Ok(out)
}

fn encode_png(
    pixels: &[u8],
    width: u32,
    height: u32,
    color: image::ExtendedColorType,
    artifact: Artifact,
) -> Result<Vec<u8>, ExportError> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(pixels, width, height, color)
        .map_err(|e| ExportError::Encode {
            artifact,
            detail: e.to_string(),
        })?;
    Ok(out)
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
    encode_png(
        &rgba,
        side,
        side,
        image::ExtendedColorType::Rgba8,
        Artifact::Cutout,
    )
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
