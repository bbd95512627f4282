//! One batch through the model: conditioning for every image at once, denoising per group of
//! requests that share the sampler settings, decoding per group that shares the grid, and
//! marching cubes per request, each sub-step in its child span.

use std::collections::BTreeMap;

use burn::tensor::{Tensor, backend::Backend};
use orfeas_vocab::{Step, VolumeDecoding};

use super::super::nn::select_rows;
use super::super::volume::{VolumeOptions, decode_dense, decode_hierarchical};
use super::{Hunyuan3dEngine, engine_error};
use crate::error::ShapeError;
use crate::shape::engine::{GeneratedShape, ShapeRequest, ViewFrame, all_stopped};
use crate::shape::mc::marching_cubes_until;
use crate::stage::step_span;

impl<B: Backend> Hunyuan3dEngine<B> {
    /// Runs the valid requests; per-request outcomes in `valid`'s order, or one error for all.
    pub(super) fn run(
        &self,
        batch: &[ShapeRequest<'_>],
        valid: &[usize],
    ) -> Result<Vec<Result<GeneratedShape, ShapeError>>, ShapeError> {
        // Conditioning: every image at once.
        let size = batch[valid[0]].image.size;
        if valid.iter().any(|&i| batch[i].image.size != size) {
            return Err(engine_error("images of one batch must share their size"));
        }
        let cond = {
            let spans: Vec<_> = valid
                .iter()
                .map(|&i| {
                    let span = step_span(Step::Conditioning, &batch[i].span);
                    span.record("batch", valid.len());
                    span
                })
                .collect();
            let mut pixels = Vec::with_capacity(valid.len() * 3 * size * size);
            for &i in valid {
                pixels.extend(batch[i].image.to_chw());
            }
            let tokens = self
                .model
                .encode(&pixels, valid.len(), size, size)
                .map_err(engine_error)?;
            drop(spans);
            for &i in valid {
                batch[i].control.progress(Step::Conditioning, 1, 1);
            }
            tokens
        };

        // Denoising, grouped by sampler settings.
        let mut groups: BTreeMap<(u32, u32), Vec<usize>> = BTreeMap::new();
        for (pos, &i) in valid.iter().enumerate() {
            let o = batch[i].options;
            groups
                .entry((self.steps_for(o.steps), o.guidance_scale.to_bits()))
                .or_default()
                .push(pos);
        }
        let mut latents: Vec<Option<Tensor<B, 3>>> = vec![None; valid.len()];
        for members in groups.values() {
            let reqs: Vec<&ShapeRequest<'_>> = members.iter().map(|&p| &batch[valid[p]]).collect();
            let rows = select_rows(&cond, members);
            // A group whose every request stopped leaves them without latents; the others go on.
            match self.denoise_group(&reqs, rows) {
                Ok(out) => {
                    for (k, &p) in members.iter().enumerate() {
                        let [_, l, c] = out.dims();
                        latents[p] = Some(out.clone().slice([k..k + 1, 0..l, 0..c]));
                    }
                }
                Err(ShapeError::Stopped) => {}
                Err(e) => return Err(e),
            }
        }

        // Volume decoding, grouped by grid.
        let mut grids: BTreeMap<(u32, u32), Vec<usize>> = BTreeMap::new();
        for (pos, &i) in valid.iter().enumerate() {
            let o = batch[i].options;
            grids
                .entry((o.octree_resolution, o.num_chunks))
                .or_default()
                .push(pos);
        }
        let mut out: Vec<Option<Result<GeneratedShape, ShapeError>>> =
            (0..valid.len()).map(|_| None).collect();
        for ((res, chunks), all_members) in grids {
            let mut members = Vec::new();
            for p in all_members {
                if latents[p].is_some() {
                    members.push(p);
                } else {
                    out[p] = Some(Err(ShapeError::Stopped));
                }
            }
            if members.is_empty() {
                continue;
            }
            let group: Vec<Tensor<B, 3>> =
                members.iter().filter_map(|&p| latents[p].clone()).collect();
            let volumes = {
                let spans: Vec<_> = members
                    .iter()
                    .map(|&p| {
                        let span = step_span(Step::VolumeDecoding, &batch[valid[p]].span);
                        span.record("resolution", res);
                        span.record("batch", members.len());
                        span
                    })
                    .collect();
                let kv_latents = self.model.vae.decode(Tensor::cat(group, 0));
                let kv = self.model.vae.geo_decoder.prepare(kv_latents);
                let mut opts = VolumeOptions::new(res as usize, chunks as usize);
                opts.min_resolution = self.settings.min_resolution;
                let group_reqs: Vec<&ShapeRequest<'_>> =
                    members.iter().map(|&p| &batch[valid[p]]).collect();
                let keep_going = |done: usize, chunks: usize| {
                    for r in &group_reqs {
                        r.control.progress(Step::VolumeDecoding, done, chunks);
                    }
                    !all_stopped(group_reqs.iter().copied())
                };
                let v = match self.settings.decoding {
                    VolumeDecoding::Dense => {
                        decode_dense(&self.model.vae.geo_decoder, &kv, &opts, keep_going)
                    }
                    VolumeDecoding::Hierarchical => {
                        decode_hierarchical(&self.model.vae.geo_decoder, &kv, &opts, keep_going)
                    }
                };
                drop(spans);
                match v {
                    Ok(v) => v,
                    Err(_) => {
                        for &p in &members {
                            out[p] = Some(Err(ShapeError::Stopped));
                        }
                        continue;
                    }
                }
            };
            for (&p, volume) in members.iter().zip(volumes) {
                let req = &batch[valid[p]];
                let _span = step_span(Step::SurfaceExtraction, &req.span).entered();
                let mut volume = volume;
                if self.settings.close_at_box {
                    close_at_box(&mut volume);
                }
                if req.control.should_stop() {
                    out[p] = Some(Err(ShapeError::Stopped));
                    continue;
                }
                let Some(mut mesh) = marching_cubes_until(&volume, 0.0, |layer, layers| {
                    req.control.progress(Step::SurfaceExtraction, layer, layers);
                    !req.control.should_stop()
                }) else {
                    out[p] = Some(Err(ShapeError::Stopped));
                    continue;
                };
                if mesh.is_empty() {
                    out[p] = Some(Err(ShapeError::EmptySurface {
                        reason: "the decoded occupancy has no surface inside the box".into(),
                    }));
                    continue;
                }
                // The reference's mapping: index / (R + 1) · 2.02 − 1.01 (it divides by the sample
                // count, not the cell count, so meshes are R/(R+1) of the box).
                let step = (2.0 * 1.01 / (res as f64 + 1.0)) as f32;
                mesh.transform([-1.01; 3], [step; 3]);
                out[p] = Some(Ok(GeneratedShape {
                    mesh,
                    frame: ViewFrame::FRONT_Z,
                }));
            }
        }
        Ok(out
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(engine_error("no result"))))
            .collect())
    }
}

/// Marks the volume's outermost samples outside (at most −1, NaN included), so a shape that
/// reaches the box gets a cap one cell inside it instead of a hole.
fn close_at_box(vol: &mut crate::shape::mc::Volume) {
    let [n0, n1, n2] = vol.dims;
    for i in 0..n0 {
        for j in 0..n1 {
            for k in 0..n2 {
                let border =
                    i == 0 || j == 0 || k == 0 || i + 1 == n0 || j + 1 == n1 || k + 1 == n2;
                if border {
                    let v = &mut vol.data[(i * n1 + j) * n2 + k];
                    if v.is_nan() || *v > -1.0 {
                        *v = -1.0;
                    }
                }
            }
        }
    }
}
