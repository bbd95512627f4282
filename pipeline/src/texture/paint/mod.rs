//! The `paint` texture engine: Hunyuan3D-Paint's models fill the six reference views of each mesh,
//! and part 1's bake turns them into a UV texture. Per batch of meshes, as hy3dgen 2.0.2's
//! `Hunyuan3DPaintPipeline.__call__` does per mesh:
//!
//! 1. the mesh is unwrapped ([`atlas`]) and its normal and position maps are rendered in the six
//!    views at `render_size` and resized to the models' `view_size` ([`images::control_maps`]);
//! 2. **`delight`**: the preprocessed image loses its lighting ([`DelightModel`], colour-corrected
//!    and composited over white, [`images`]);
//! 3. **`multiview_diffusion`**: the six views are generated from the delit image and the maps
//!    ([`ViewModel`]), every mesh of the batch in one denoising loop;
//! 4. **`baking`**: each view, resized to `render_size`, is back-projected with the reference's
//!    weights and rules, merged, and what no view saw is inpainted.
//!
//! Steps 2 and 3 run on the worker's device, batched over meshes; steps 1 and 4 on the host's
//! cores (rasterization where the pipeline's [`Rasterizer`] runs). Each of the three named steps
//! is a child span of the item's `texture_synthesis` span and reports progress per denoising
//! step. A device running out of memory surfaces as [`PaintError::OutOfMemory`], which the worker
//! answers by splitting the batch.

pub mod images;
mod load;

pub use load::{PainterLoadError, PainterSpec, load_painter};

use std::path::Path;

use burn::tensor::{DType, Tensor, backend::Backend};
use image::RgbImage;
use orfeas_vocab::Step;

use super::bake::{BakeRules, BakeView, back_project};
use super::camera::{OrthoView, PAINT_VIEWS, PaintNormalization};
use super::raster::Rasterizer;
use super::render::PaintMesh;
use super::source::SourceImage;
use super::{AtlasError, UvReport, atlas, fill, sample_vertex_colours};
use crate::control::Control;
use crate::diffusion::delight::{DelightModel, DelightSettings};
use crate::diffusion::multiview::camera_id;
use crate::diffusion::noise::{Noise, SeededNoise};
use crate::diffusion::views::{ViewModel, ViewRequest, ViewSettings, ViewsError};
use crate::diffusion::weights::WeightsError;
use crate::error::{is_out_of_memory, panic_message};
use crate::image::PreprocessedImage;
use crate::mesh::Mesh;
use crate::stage::step_span;
use images::{
    DelightInput, control_maps, delight_input, finish_delight, from_tensor_row, resize_rgb,
    to_tensor,
};

/// Noise streams of a job's seed: one per model, so the two never share draws.
const DELIGHT_STREAM: u64 = 1;
const VIEWS_STREAM: u64 = 2;

/// How the paint engine runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaintSettings {
    pub delight: DelightSettings,
    pub views: ViewSettings,
    /// The models' image side (512 for the released models).
    pub view_size: usize,
    /// The side the control maps are rendered at and the views baked from.
    pub render_size: usize,
}

impl PaintSettings {
    /// hy3dgen 2.0.2's `Hunyuan3DTexGenConfig` and model wrappers.
    pub const REFERENCE: PaintSettings = PaintSettings {
        delight: DelightSettings::REFERENCE,
        views: ViewSettings::REFERENCE,
        view_size: 512,
        render_size: 2048,
    };
}

/// One mesh to paint.
#[derive(Debug, Clone)]
pub struct PaintRequest<'a> {
    pub mesh: &'a Mesh,
    pub image: &'a PreprocessedImage,
    pub texture_size: usize,
    /// Fixes the models' noise.
    pub seed: u64,
    pub control: Control,
    /// The item's `texture_synthesis` span: the three step spans hang under it.
    pub span: tracing::Span,
}

/// Why a mesh was not painted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PaintError {
    #[error("stopped")]
    Stopped,
    #[error(transparent)]
    Atlas(AtlasError),
    #[error("the device ran out of memory: {detail}")]
    OutOfMemory { detail: String },
    #[error("the paint model failed: {detail}")]
    Model { detail: String },
}

/// The paint engine as the pipeline holds it, whatever its backend.
pub trait Painter: Send + Sync + std::fmt::Debug {
    /// Paints every request's mesh; one result per request, in order: the mesh split along its
    /// seams with UVs, the texture and vertex colours sampled from it.
    fn paint(
        &self,
        rasterizer: &dyn Rasterizer,
        requests: &[PaintRequest<'_>],
    ) -> Vec<Result<(Mesh, UvReport), PaintError>>;
}

/// Hunyuan3D-Paint's delight and multiview models on one device.
#[derive(Debug)]
pub struct PaintEngine<B: Backend> {
    delight: DelightModel<B>,
    views: ViewModel<B>,
    settings: PaintSettings,
    device: B::Device,
}

/// A mesh on its way through the engine.
struct Prepared {
    index: usize,
    mesh: Mesh,
    charts: u32,
    utilization: f32,
    normals: Vec<RgbImage>,
    positions: Vec<RgbImage>,
    delight: DelightInput,
}

impl<B: Backend> PaintEngine<B> {
    /// Loads the multiview folder (`hunyuan3d-paint-v2-0` or `-turbo`) and the delight folder
    /// (`hunyuan3d-delight-v2-0`) onto `device`; settings default to the reference's, with the
    /// Turbo checkpoint's step count when its scheduler is LCM.
    pub fn load(
        paint: &Path,
        delight: &Path,
        device: &B::Device,
        dtype: DType,
    ) -> Result<Self, WeightsError> {
        let views = ViewModel::load(paint, device, dtype)?;
        let delight = DelightModel::load(delight, device, dtype)?;
        let settings = PaintSettings {
            views: views.default_settings(),
            ..PaintSettings::REFERENCE
        };
        Ok(PaintEngine {
            delight,
            views,
            settings,
            device: device.clone(),
        })
    }

    pub fn with_settings(mut self, settings: PaintSettings) -> Self {
        self.settings = settings;
        self
    }

    pub fn settings(&self) -> &PaintSettings {
        &self.settings
    }

    /// Step 1 for one request.
    fn prepare(
        &self,
        rasterizer: &dyn Rasterizer,
        index: usize,
        r: &PaintRequest<'_>,
    ) -> Result<Prepared, PaintError> {
        let s = &self.settings;
        let control = &r.control;
        let atlas = atlas::unwrap(r.mesh, r.texture_size as u32, || !control.should_stop())
            .map_err(|e| match e {
                AtlasError::Stopped => PaintError::Stopped,
                other => PaintError::Atlas(other),
            })?;
        let placed = PaintMesh::new(&atlas.mesh.positions, &atlas.mesh.triangles);
        let (normals, positions) = control_maps(
            &placed,
            rasterizer,
            &PAINT_VIEWS,
            s.render_size,
            s.view_size,
        );
        Ok(Prepared {
            index,
            mesh: atlas.mesh,
            charts: atlas.charts,
            utilization: atlas.utilization,
            normals,
            positions,
            delight: delight_input(r.image, s.view_size),
        })
    }

    /// Steps 2 and 3 for the prepared meshes: their six views each.
    fn generate(
        &self,
        prepared: &[Prepared],
        requests: &[PaintRequest<'_>],
    ) -> Result<Vec<Vec<RgbImage>>, PaintError> {
        let s = &self.settings;
        let mine: Vec<&PaintRequest<'_>> = prepared.iter().map(|p| &requests[p.index]).collect();
        let stop_all = || mine.iter().all(|r| r.control.should_stop());

        let spans: Vec<tracing::Span> = mine
            .iter()
            .map(|r| step_span(Step::Delight, &r.span))
            .collect();
        let images = Tensor::cat(
            prepared
                .iter()
                .map(|p| to_tensor::<B>(&p.delight.rgb, &self.device))
                .collect(),
            0,
        );
        let mut streams: Vec<SeededNoise> = mine
            .iter()
            .map(|r| SeededNoise::new(r.seed, DELIGHT_STREAM))
            .collect();
        let mut noises: Vec<&mut dyn Noise> =
            streams.iter_mut().map(|n| n as &mut dyn Noise).collect();
        let delit = self
            .delight
            .run(images, &s.delight, &mut noises, &mut |done, total| {
                for r in &mine {
                    r.control.progress(Step::Delight, done, total);
                }
                !stop_all()
            })
            .map_err(|_| PaintError::Stopped)?;
        let values = delit
            .into_data()
            .to_vec::<f32>()
            .map_err(|e| PaintError::Model {
                detail: format!("{e:?}"),
            })?;
        let references: Vec<RgbImage> = prepared
            .iter()
            .enumerate()
            .map(|(row, p)| finish_delight(&from_tensor_row(&values, row, s.view_size), &p.delight))
            .collect();
        drop(spans);

        let spans: Vec<tracing::Span> = mine
            .iter()
            .map(|r| step_span(Step::MultiviewDiffusion, &r.span))
            .collect();
        let stack = |imgs: &[RgbImage]| {
            Tensor::cat(
                imgs.iter()
                    .map(|i| to_tensor::<B>(i, &self.device))
                    .collect(),
                0,
            )
        };
        let view_requests: Vec<ViewRequest<B>> = prepared
            .iter()
            .zip(&references)
            .map(|(p, reference)| ViewRequest {
                reference: to_tensor(reference, &self.device),
                normals: stack(&p.normals),
                positions: stack(&p.positions),
            })
            .collect();
        let cameras: Vec<u32> = PAINT_VIEWS
            .iter()
            .map(|v| camera_id(v).expect("the six reference views have camera ids"))
            .collect();
        let mut streams: Vec<SeededNoise> = mine
            .iter()
            .map(|r| SeededNoise::new(r.seed, VIEWS_STREAM))
            .collect();
        let mut noises: Vec<&mut dyn Noise> =
            streams.iter_mut().map(|n| n as &mut dyn Noise).collect();
        let views = self
            .views
            .run(
                &view_requests,
                &cameras,
                &s.views,
                &mut noises,
                &mut |done, total| {
                    for r in &mine {
                        r.control.progress(Step::MultiviewDiffusion, done, total);
                    }
                    !stop_all()
                },
            )
            .map_err(|e| match e {
                ViewsError::Stopped(_) => PaintError::Stopped,
                other => PaintError::Model {
                    detail: other.to_string(),
                },
            })?;
        let values = views
            .into_data()
            .to_vec::<f32>()
            .map_err(|e| PaintError::Model {
                detail: format!("{e:?}"),
            })?;
        drop(spans);
        let n = PAINT_VIEWS.len();
        Ok((0..prepared.len())
            .map(|m| {
                (0..n)
                    .map(|v| from_tensor_row(&values, m * n + v, s.view_size))
                    .collect()
            })
            .collect())
    }

    /// Step 4 for one mesh.
    fn bake(
        &self,
        rasterizer: &dyn Rasterizer,
        p: Prepared,
        views: &[RgbImage],
        r: &PaintRequest<'_>,
    ) -> (Mesh, UvReport) {
        let _span = step_span(Step::Baking, &r.span).entered();
        r.control.progress(Step::Baking, 0, 1);
        let render = self.settings.render_size;
        let size = r.texture_size;
        let mut out = p.mesh;
        let sources: Vec<SourceImage> = views
            .iter()
            .map(|v| {
                let big = resize_rgb(v, render);
                SourceImage {
                    size: render,
                    rgb: big.pixels().map(|px| px.0.map(f32::from)).collect(),
                }
            })
            .collect();
        let norm = PaintNormalization::of(&out.positions);
        let bake_views: Vec<BakeView<'_>> = PAINT_VIEWS
            .iter()
            .zip(&sources)
            .map(|(v, image)| BakeView {
                view: OrthoView::paint(v, &norm, render, render),
                image,
                weight: v.weight,
            })
            .collect();
        let normals = out.vertex_normals();
        let baked = back_project(
            rasterizer,
            &out,
            &normals,
            &bake_views,
            size,
            BakeRules::REFERENCE,
        );
        let charted = (0..size * size).filter(|&t| baked.uv.covered(t)).count();
        let seen = (0..size * size)
            .filter(|&t| baked.uv.covered(t) && baked.seen(t))
            .count();
        let rgb = fill::fill(&out, &baked);
        let texture = RgbImage::from_fn(size as u32, size as u32, |x, y| {
            let c = rgb[y as usize * size + x as usize];
            image::Rgb(c.map(|v| v.round().clamp(0.0, 255.0) as u8))
        });
        out.colors = Some(sample_vertex_colours(&out, &texture));
        out.texture = Some(texture);
        r.control.progress(Step::Baking, 1, 1);
        let report = UvReport {
            charts: p.charts,
            utilization: p.utilization,
            seen: if charted == 0 {
                0.0
            } else {
                seen as f32 / charted as f32
            },
        };
        (out, report)
    }
}

impl<B: Backend> Painter for PaintEngine<B> {
    fn paint(
        &self,
        rasterizer: &dyn Rasterizer,
        requests: &[PaintRequest<'_>],
    ) -> Vec<Result<(Mesh, UvReport), PaintError>> {
        let mut results: Vec<Option<Result<(Mesh, UvReport), PaintError>>> =
            vec![None; requests.len()];
        let mut prepared = Vec::new();
        for (i, r) in requests.iter().enumerate() {
            match r.span.in_scope(|| self.prepare(rasterizer, i, r)) {
                Ok(p) => prepared.push(p),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        if !prepared.is_empty() {
            // burn's backends panic on device errors (CUDA out of memory among them): contained
            // here so the worker can split the batch or fail its jobs with the message.
            let generated = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.generate(&prepared, requests)
            }))
            .unwrap_or_else(|panic| {
                let detail = panic_message(panic.as_ref());
                Err(if is_out_of_memory(&detail) {
                    PaintError::OutOfMemory { detail }
                } else {
                    PaintError::Model { detail }
                })
            });
            match generated {
                Ok(views) => {
                    for (p, v) in prepared.into_iter().zip(views) {
                        let r = &requests[p.index];
                        let index = p.index;
                        results[index] =
                            Some(Ok(r.span.in_scope(|| self.bake(rasterizer, p, &v, r))));
                    }
                }
                Err(e) => {
                    for p in &prepared {
                        results[p.index] = Some(Err(e.clone()));
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(PaintError::Model {
                        detail: "no result".into(),
                    })
                })
            })
            .collect()
    }
}
