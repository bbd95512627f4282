//! The per-job memory model: documented first estimates per workload (a shape engine's
//! `shape_generation`, the `paint` engine's `texture_synthesis`), refined online from measured
//! peaks and backed off after out-of-memory splits. Figures are kept per workload, resolution
//! bucket and device, and persisted so a restarted worker starts from them. A job's estimate is
//! the largest of its workloads': the batch runs them one after the other.

use std::collections::HashMap;

use orfeas_vocab::{Device, Engine, Workload};

use super::{JobShape, resolution_bucket};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// The paint models' image side the documented paint estimate is scaled from.
pub const RELEASED_VIEW_SIZE: usize = 512;

/// Documented first estimates of one job's peak memory in a workload, before anything was
/// measured.
///
/// - `inflate`: the (R+1)³ f32 volume, twice over for the marching-cubes passes and the mesh
///   (≈ 8·(R+1)³ bytes), plus 32 MiB for images, distance fields and export buffers.
/// - `hunyuan3d`: the weights are resident and counted as used device memory, not per job; a job
///   adds 2 GiB of conditioner and DiT activations (B = 1 at the released sizes, fp16, CFG), the
///   volume decoder's query chunks (`num_chunks` × 4 KiB) and twice the (R+1)³ grid in f32.
/// - `paint`: weights resident as above; a mesh's six views run as 12 UNet rows (guidance's two
///   halves). At the released 512² views: 2 GiB of UNet and VAE activations, and 12 GiB for the
///   attention scores of the first level's multiview attention (6 · 64² tokens attending to each
///   other, materialised in half precision) — the scores grow with the fourth power of the view
///   side, the activations with its square. With 200 MiB for the rasterizer's chunks.
pub fn prior_for(workload: Workload, shape: &JobShape, paint_view_size: usize) -> u64 {
    let r = u64::from(shape.octree_resolution) + 1;
    match workload {
        Workload::Shape(Engine::Inflate) => 8 * r * r * r + 32 * MIB,
        Workload::Shape(Engine::Hunyuan3d) => {
            2 * GIB + u64::from(shape.num_chunks) * 4096 + 8 * r * r * r
        }
        Workload::Paint => {
            let scale = paint_view_size as f64 / RELEASED_VIEW_SIZE as f64;
            let activations = 2.0 * GIB as f64 * scale * scale;
            let scores = 12.0 * GIB as f64 * scale.powi(4);
            (activations + scores) as u64 + 200 * MIB
        }
    }
}

/// The workloads a job of `shape` runs on the device, shape first.
pub fn workloads(shape: &JobShape) -> Vec<Workload> {
    let mut w = vec![Workload::Shape(shape.engine)];
    if shape.paint {
        w.push(Workload::Paint);
    }
    w
}

/// The documented estimate of a job: the largest of its workloads' (at the released view size).
pub fn prior_bytes(shape: &JobShape) -> u64 {
    workloads(shape)
        .into_iter()
        .map(|w| prior_for(w, shape, RELEASED_VIEW_SIZE))
        .max()
        .unwrap_or(0)
}

/// The figures are kept per (workload, resolution bucket, device); paint's bucket is 0 (its
/// memory does not depend on the shape's grid).
pub type ModelKey = (Workload, u32, Device);

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Learned {
    pub bytes_per_job: u64,
    pub samples: u64,
}

/// Per-key memory figures, seeded with [`prior_for`] and updated from measured peaks.
#[derive(Debug, Clone)]
pub struct MemoryModel {
    learned: HashMap<ModelKey, Learned>,
    /// `worker.paint_view_size`: what the paint estimate is scaled to.
    paint_view_size: usize,
}

impl Default for MemoryModel {
    fn default() -> Self {
        MemoryModel {
            learned: HashMap::new(),
            paint_view_size: RELEASED_VIEW_SIZE,
        }
    }
}

/// Weight of a new measurement in the running estimate.
const EWMA: f64 = 0.3;
/// Head-room on learned figures: measurements vary between inputs.
const SAFETY: f64 = 1.2;

impl MemoryModel {
    pub fn from_entries(entries: impl IntoIterator<Item = (ModelKey, Learned)>) -> Self {
        MemoryModel {
            learned: entries.into_iter().collect(),
            ..MemoryModel::default()
        }
    }

    pub fn with_paint_view_size(mut self, size: usize) -> Self {
        self.paint_view_size = size;
        self
    }

    fn key(workload: Workload, shape: &JobShape, device: Device) -> ModelKey {
        let bucket = match workload {
            Workload::Shape(_) => resolution_bucket(shape.octree_resolution),
            Workload::Paint => 0,
        };
        (workload, bucket, device)
    }

    /// Estimated peak bytes of one job in one workload, and where the figure comes from.
    pub fn estimate_of(
        &self,
        workload: Workload,
        shape: &JobShape,
        device: Device,
    ) -> (u64, String) {
        match self.learned.get(&Self::key(workload, shape, device)) {
            Some(l) if l.samples > 0 => (
                (l.bytes_per_job as f64 * SAFETY) as u64,
                format!(
                    "{workload} learned from {} batches, +20 % head-room",
                    l.samples
                ),
            ),
            _ => (
                prior_for(workload, shape, self.paint_view_size),
                format!("{workload} documented estimate"),
            ),
        }
    }

    /// Estimated peak bytes of one job (its largest workload's), and where the figure comes from.
    pub fn estimate(&self, shape: &JobShape, device: Device) -> (u64, String) {
        workloads(shape)
            .into_iter()
            .map(|w| self.estimate_of(w, shape, device))
            .max_by_key(|(bytes, _)| *bytes)
            .unwrap_or((0, String::new()))
    }

    /// Folds in a measured per-job peak of the shape workload; returns the updated entry.
    pub fn observe(
        &mut self,
        shape: &JobShape,
        device: Device,
        measured_bytes: u64,
    ) -> (ModelKey, Learned) {
        self.observe_of(Workload::Shape(shape.engine), shape, device, measured_bytes)
    }

    /// Folds in a measured per-job peak of `workload`; returns the updated entry (to persist).
    pub fn observe_of(
        &mut self,
        workload: Workload,
        shape: &JobShape,
        device: Device,
        measured_bytes: u64,
    ) -> (ModelKey, Learned) {
        let key = Self::key(workload, shape, device);
        let entry = self.learned.entry(key).or_insert(Learned {
            bytes_per_job: measured_bytes,
            samples: 0,
        });
        entry.bytes_per_job = if entry.samples == 0 {
            measured_bytes
        } else {
            (entry.bytes_per_job as f64 * (1.0 - EWMA) + measured_bytes as f64 * EWMA) as u64
        };
        entry.samples += 1;
        (key, *entry)
    }

    /// After the shape workload ran out of memory ([`MemoryModel::after_oom_of`]).
    pub fn after_oom(
        &mut self,
        shape: &JobShape,
        device: Device,
        budget: u64,
        batch: usize,
    ) -> (ModelKey, Learned) {
        self.after_oom_of(Workload::Shape(shape.engine), shape, device, budget, batch)
    }

    /// After `workload` ran out of memory with `batch` jobs that had `budget` bytes: 5 % more than
    /// budget / batch per job once head-room is added, so the same budget admits fewer.
    pub fn after_oom_of(
        &mut self,
        workload: Workload,
        shape: &JobShape,
        device: Device,
        budget: u64,
        batch: usize,
    ) -> (ModelKey, Learned) {
        let key = Self::key(workload, shape, device);
        let floor = ((budget / batch.max(1) as u64) as f64 * 1.05 / SAFETY).ceil() as u64;
        let entry = self.learned.entry(key).or_insert(Learned {
            bytes_per_job: floor,
            samples: 0,
        });
        entry.bytes_per_job = entry.bytes_per_job.max(floor);
        entry.samples += 1;
        (key, *entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(paint: bool) -> JobShape {
        JobShape {
            engine: Engine::Inflate,
            octree_resolution: 256,
            num_chunks: 8000,
            steps: None,
            paint,
        }
    }

    #[test]
    fn paint_is_learned_apart_and_a_paint_job_is_its_larger_workload() {
        let cpu = Device::Cpu;
        let mut m = MemoryModel::default();
        let (plain, _) = m.estimate(&shape(false), cpu);
        let (painted, src) = m.estimate(&shape(true), cpu);
        assert!(painted > 10 * GIB && painted > plain, "{painted}");
        assert!(src.starts_with("paint documented"), "{src}");
        // Measured paint peaks replace the paint figure and leave the shape figure alone.
        m.observe_of(Workload::Paint, &shape(true), cpu, 300 * MIB);
        let (painted, src) = m.estimate(&shape(true), cpu);
        assert_eq!(painted, ((300 * MIB) as f64 * SAFETY) as u64);
        assert!(src.starts_with("paint learned"), "{src}");
        assert_eq!(m.estimate(&shape(false), cpu).0, plain);
        // A paint OOM backs off the paint figure only.
        let (key, _) = m.after_oom_of(Workload::Paint, &shape(true), cpu, 8 * GIB, 4);
        assert_eq!(key, (Workload::Paint, 0, cpu));
        assert!(m.estimate(&shape(true), cpu).0 >= 2 * GIB);
        assert_eq!(m.estimate(&shape(false), cpu).0, plain);
        // Small views (tests' tiny models) get a small documented figure.
        let small = MemoryModel::default().with_paint_view_size(64);
        let (tiny, _) = small.estimate_of(Workload::Paint, &shape(true), cpu);
        assert!(tiny < 300 * MIB, "{tiny}");
    }
}
