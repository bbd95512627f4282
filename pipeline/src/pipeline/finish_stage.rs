//! `texture_synthesis` and `mesh_export` of one item, once its shape exists.

use orfeas_vocab::{Artifact, Stage, StageTimings, TextureMode};

use super::paint_stage::Painted;
use super::{BatchItem, ItemOutput, MeshStats, ProgressObserver, timed};
use crate::error::PipelineError;
use crate::export::{export_cutout, export_material, export_mesh, export_texture};
use crate::image::PreprocessedImage;
use crate::shape::GeneratedShape;
use crate::texture::raster::Rasterizer;
use crate::texture::{AtlasError, UvReport, bake_image, colorize};

/// Colours the item's mesh as its options ask (a `paint` item comes painted already), then
/// encodes every artifact it asked for.
#[allow(clippy::too_many_arguments)] // the batch's per-item state, passed as the stage needs it
pub(super) fn finish_item(
    rasterizer: &dyn Rasterizer,
    idx: usize,
    item: &BatchItem<'_>,
    image: &PreprocessedImage,
    mut shape: GeneratedShape,
    painted: Option<Painted>,
    progress: &mut dyn ProgressObserver,
    timings: &mut [StageTimings],
) -> Result<ItemOutput, PipelineError> {
    let opts = item.options;
    let mut texture: Option<UvReport> = None;
    if let Some(painted) = painted {
        let (mesh, report) = painted?;
        shape.mesh = mesh;
        texture = report;
    } else if opts.texture.colours() {
        timed(
            idx,
            Stage::TextureSynthesis,
            item,
            progress,
            timings,
            || {
                if opts.texture == TextureMode::Uv {
                    let control = &item.control;
                    match bake_image(
                        rasterizer,
                        &shape.mesh,
                        image,
                        &shape.frame,
                        opts.texture_size,
                        || !control.should_stop(),
                    ) {
                        Ok((mesh, report)) => {
                            shape.mesh = mesh;
                            texture = Some(report);
                            return Ok(());
                        }
                        Err(AtlasError::Stopped) => {
                            return Err(PipelineError::Canceled {
                                stage: Stage::TextureSynthesis,
                            });
                        }
                        // A mesh the unwrap cannot chart still gets its colour, per vertex.
                        Err(e) => tracing::warn!(
                            error = %e,
                            "UV unwrapping failed; colouring the mesh per vertex instead"
                        ),
                    }
                }
                colorize(&mut shape.mesh, image, &shape.frame);
                Ok(())
            },
        )?;
    }
    let mesh = &shape.mesh;
    let files = timed(idx, Stage::MeshExport, item, progress, timings, || {
        let mut files = opts
            .formats
            .iter()
            .map(|&format| Ok((format.into(), export_mesh(mesh, format, &item.name)?)))
            .collect::<Result<Vec<(Artifact, Vec<u8>)>, PipelineError>>()?;
        if mesh.texture.is_some() && opts.formats.contains(&orfeas_vocab::MeshFormat::Obj) {
            files.push((Artifact::Mtl, export_material(&item.name)));
            files.push((Artifact::Texture, export_texture(mesh)?));
        }
        if opts.cutout {
            files.push((Artifact::Cutout, export_cutout(image)?));
        }
        Ok(files)
    })?;
    Ok(ItemOutput {
        files,
        stats: MeshStats {
            vertices: mesh.positions.len(),
            faces: mesh.triangles.len(),
            volume: mesh.signed_volume(),
            area: mesh.surface_area(),
        },
        texture,
    })
}
