//! The node-local batch optimizer: how many jobs to pull into the next batch, from the device's
//! free and total memory, a target utilisation, a per-job memory model that learns online from
//! measured peaks, the queue depth, and a cap on waiting. Every decision carries its reasoning.

pub mod memory;
pub mod probe;

use std::time::Duration;

use orfeas_vocab::{Engine, JobMessage, JobSpec, TextureMode};

pub use memory::{Learned, MemoryModel, ModelKey, prior_bytes, workloads};
pub use probe::{CpuSampler, DeviceMemory, DeviceProbe};

/// What a job asks of the device, as far as memory and batching go: jobs of one shape share a
/// batch (their engine, grid and sampler settings match, and they are all painted or none is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JobShape {
    pub engine: Engine,
    pub octree_resolution: u32,
    pub num_chunks: u32,
    /// `None`: the checkpoint's default.
    pub steps: Option<u32>,
    /// `texture: paint`: the paint models run after the shape engine.
    pub paint: bool,
}

impl JobShape {
    pub fn of_message(m: &JobMessage) -> Self {
        JobShape {
            engine: m.engine,
            octree_resolution: m.octree_resolution,
            num_chunks: m.num_chunks,
            steps: m.steps,
            paint: m.texture == TextureMode::Paint,
        }
    }

    pub fn of_spec(s: &JobSpec) -> Self {
        JobShape {
            engine: s.engine,
            octree_resolution: s.octree_resolution,
            num_chunks: s.num_chunks,
            steps: s.steps,
            paint: s.texture == TextureMode::Paint,
        }
    }
}

/// The resolution bucket memory is learned per: `octree_resolution` rounded up to 64.
pub fn resolution_bucket(r: u32) -> u32 {
    r.div_ceil(64).max(1) * 64
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptimizerConfig {
    /// Share of the device's memory batches may use (default 0.85).
    pub target_utilization: f64,
    pub max_batch: usize,
    /// Longest a lone job waits for company.
    pub max_wait: Duration,
}

/// A batch-size decision and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// 0: not even one job fits.
    pub batch_size: usize,
    pub budget_bytes: u64,
    pub per_job_bytes: u64,
    pub fits: u64,
    pub waiting: u64,
    /// Longest wait for the batch's other jobs to arrive (collection ends as soon as it is
    /// full); none for a batch of one, so a lone job is never held.
    pub wait: Duration,
    pub reasoning: String,
}

fn mib(b: u64) -> u64 {
    b >> 20
}

/// The decision function: `fits = ⌊(total·target − used) / per_job⌋`, then bounded by the jobs
/// waiting (queue depth plus those in hand) and `max_batch`.
pub fn decide(
    cfg: &OptimizerConfig,
    mem: DeviceMemory,
    per_job_bytes: u64,
    estimate_source: &str,
    waiting: u64,
) -> Decision {
    let used = mem.used_bytes();
    let allowed = (mem.total_bytes as f64 * cfg.target_utilization.clamp(0.05, 1.0)) as u64;
    let budget = allowed.saturating_sub(used);
    let fits = budget / per_job_bytes.max(1);
    let batch_size = (fits.min(waiting.max(1)).min(cfg.max_batch as u64)) as usize;
    let wait = if waiting >= batch_size as u64 {
        Duration::ZERO
    } else {
        cfg.max_wait
    };
    let reasoning = format!(
        "available {} MB of {} MB, target {:.0} % → budget {} MB; {} MB per job ({estimate_source}) → {fits} fit; {waiting} waiting; max {} → batch {batch_size}",
        mib(mem.free_bytes),
        mib(mem.total_bytes),
        cfg.target_utilization * 100.0,
        mib(budget),
        mib(per_job_bytes),
        cfg.max_batch
    );
    Decision {
        batch_size,
        budget_bytes: budget,
        per_job_bytes,
        fits,
        waiting,
        wait,
        reasoning,
    }
}

#[cfg(test)]
mod tests {
    use orfeas_vocab::Device;

    use super::*;

    const GIB: u64 = 1 << 30;

    fn cfg() -> OptimizerConfig {
        OptimizerConfig {
            target_utilization: 0.85,
            max_batch: 8,
            max_wait: Duration::from_millis(50),
        }
    }

    fn mem(total: u64, free: u64) -> DeviceMemory {
        DeviceMemory {
            total_bytes: total * GIB,
            free_bytes: free * GIB,
        }
    }

    #[test]
    fn memory_bounds_the_batch() {
        // 80 GiB device, 10 GiB used: budget 68 − 10 = 58 GiB; 7 GiB per job → 8 fit.
        let d = decide(&cfg(), mem(80, 70), 7 * GIB, "test", 100);
        assert_eq!(d.fits, 8);
        assert_eq!(d.batch_size, 8);
        // Busier device: 30 GiB free → budget 18 GiB → 2 fit.
        let d = decide(&cfg(), mem(80, 30), 7 * GIB, "test", 100);
        assert_eq!((d.fits, d.batch_size), (2, 2));
        assert!(
            d.reasoning.contains("2 fit") && d.reasoning.contains("batch 2"),
            "{}",
            d.reasoning
        );
    }

    #[test]
    fn queue_depth_and_cap_bound_the_batch() {
        let d = decide(&cfg(), mem(80, 80), GIB, "test", 3);
        assert_eq!(
            d.batch_size, 3,
            "no point waiting for jobs that are not there"
        );
        assert_eq!(d.wait, Duration::ZERO);
        let d = decide(&cfg(), mem(80, 80), GIB, "test", 1000);
        assert_eq!(d.batch_size, 8, "max_batch");
        let d = decide(&cfg(), mem(80, 80), GIB, "test", 0);
        assert_eq!(d.batch_size, 1, "a lone job still runs");
        assert_eq!(d.wait, cfg().max_wait, "…after a bounded wait for company");
    }

    #[test]
    fn nothing_fits_is_zero() {
        // 16 GiB device with 12 GiB in use: 1.6 GiB of budget, a 6 GiB job does not fit.
        let d = decide(&cfg(), mem(16, 4), 6 * GIB, "test", 5);
        assert_eq!((d.fits, d.batch_size), (0, 0));
        assert!(d.budget_bytes < 6 * GIB);
        // Over the target already: no budget at all.
        let d = decide(&cfg(), mem(16, 1), GIB, "test", 5);
        assert_eq!((d.budget_bytes, d.batch_size), (0, 0));
    }

    #[test]
    fn the_model_learns_and_backs_off_after_oom() {
        let shape = JobShape {
            engine: Engine::Inflate,
            octree_resolution: 250,
            num_chunks: 8000,
            steps: None,
            paint: false,
        };
        let cpu = Device::Cpu;
        let mut m = MemoryModel::default();
        let (prior, src) = m.estimate(&shape, cpu);
        assert_eq!(prior, prior_bytes(&shape));
        assert_eq!(src, "inflate documented estimate");
        m.observe(&shape, cpu, 100 << 20);
        m.observe(&shape, cpu, 200 << 20);
        let (est, src) = m.estimate(&shape, cpu);
        // EWMA: 100·0.7 + 200·0.3 = 130 MiB, +20 %.
        assert_eq!(est, ((130u64 << 20) as f64 * 1.2) as u64);
        assert!(src.contains("2 batches"));
        // Same bucket (256) shares the figure; another device does not.
        let near = JobShape {
            octree_resolution: 256,
            ..shape
        };
        assert_eq!(m.estimate(&near, cpu).0, est);
        assert_eq!(m.estimate(&shape, Device::Cuda(0)).0, prior);
        // Another engine has its own figures (and a larger prior).
        let h = JobShape {
            engine: Engine::Hunyuan3d,
            ..shape
        };
        assert!(m.estimate(&h, cpu).0 > prior);
        // An OOM with 4 jobs in a 2 GiB budget: at least 512 MiB per job with head-room.
        m.after_oom(&shape, cpu, 2 * GIB, 4);
        let (after, _) = m.estimate(&shape, cpu);
        assert!(after >= 512 << 20, "{after}");
        // The same 2 GiB budget now admits fewer than the 4 that failed.
        let total = 10 * GIB;
        let allowed = (total as f64 * 0.85) as u64;
        let free = total - (allowed - 2 * GIB);
        let d = decide(
            &cfg(),
            DeviceMemory {
                total_bytes: total,
                free_bytes: free,
            },
            after,
            "x",
            100,
        );
        assert_eq!(d.budget_bytes, 2 * GIB);
        assert!(d.batch_size < 4, "{}", d.reasoning);
    }

    #[test]
    fn buckets() {
        assert_eq!(resolution_bucket(64), 64);
        assert_eq!(resolution_bucket(65), 128);
        assert_eq!(resolution_bucket(256), 256);
        assert_eq!(resolution_bucket(384), 384);
        assert_eq!(resolution_bucket(500), 512);
    }
}
