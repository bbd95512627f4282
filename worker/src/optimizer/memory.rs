//! The per-job memory model: documented first estimates per engine, refined online from
//! measured peaks and backed off after out-of-memory splits. Figures are kept per engine,
//! resolution bucket and device, and persisted so a restarted worker starts from them.

use std::collections::HashMap;

use orfeas_vocab::{Device, Engine};

use super::{JobShape, resolution_bucket};

/// Documented first estimates of one job's peak memory, before anything was measured.
///
/// - `inflate`: the (R+1)³ f32 volume, twice over for the marching-cubes passes and the mesh
///   (≈ 8·(R+1)³ bytes), plus 32 MiB for images, distance fields and export buffers.
/// - `hunyuan3d`: the weights are resident and counted as used device memory, not per job; a job
///   adds 2 GiB of conditioner and DiT activations (B = 1 at the released sizes, fp16, CFG), the
///   volume decoder's query chunks (`num_chunks` × 4 KiB) and twice the (R+1)³ grid in f32.
pub fn prior_bytes(shape: &JobShape) -> u64 {
    let r = u64::from(shape.octree_resolution) + 1;
    match shape.engine {
        Engine::Inflate => 8 * r * r * r + (32 << 20),
        Engine::Hunyuan3d => (2 << 30) + u64::from(shape.num_chunks) * 4096 + 8 * r * r * r,
    }
}

/// The figures are kept per (engine, resolution bucket, device).
pub type ModelKey = (Engine, u32, Device);

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Learned {
    pub bytes_per_job: u64,
    pub samples: u64,
}

/// Per-key memory figures, seeded with [`prior_bytes`] and updated from measured peaks.
#[derive(Debug, Clone, Default)]
pub struct MemoryModel {
    learned: HashMap<ModelKey, Learned>,
}

/// Weight of a new measurement in the running estimate.
const EWMA: f64 = 0.3;
/// Head-room on learned figures: measurements vary between inputs.
const SAFETY: f64 = 1.2;

impl MemoryModel {
    pub fn from_entries(entries: impl IntoIterator<Item = (ModelKey, Learned)>) -> Self {
        MemoryModel {
            learned: entries.into_iter().collect(),
        }
    }

    fn key(shape: &JobShape, device: Device) -> ModelKey {
        (
            shape.engine,
            resolution_bucket(shape.octree_resolution),
            device,
        )
    }

    /// Estimated peak bytes of one job, and where the figure comes from.
    pub fn estimate(&self, shape: &JobShape, device: Device) -> (u64, String) {
        match self.learned.get(&Self::key(shape, device)) {
            Some(l) if l.samples > 0 => (
                (l.bytes_per_job as f64 * SAFETY) as u64,
                format!("learned from {} batches, +20 % head-room", l.samples),
            ),
            _ => (prior_bytes(shape), "documented estimate".to_owned()),
        }
    }

    /// Folds in a measured per-job peak; returns the updated entry (to persist).
    pub fn observe(
        &mut self,
        shape: &JobShape,
        device: Device,
        measured_bytes: u64,
    ) -> (ModelKey, Learned) {
        let key = Self::key(shape, device);
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

    /// After an out-of-memory failure of `batch` jobs that had `budget` bytes: 5 % more than
    /// budget / batch per job once head-room is added, so the same budget admits fewer.
    pub fn after_oom(
        &mut self,
        shape: &JobShape,
        device: Device,
        budget: u64,
        batch: usize,
    ) -> (ModelKey, Learned) {
        let key = Self::key(shape, device);
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
