//! The node-local batch optimizer: how many jobs to pull into the next batch, from the device's
//! free and total memory, a target utilisation, a per-job memory model that learns online from
//! measured peaks, the queue depth, and a cap on waiting. Every decision carries its reasoning.

use std::collections::HashMap;
use std::time::Duration;

/// What a job asks of the device, as far as memory goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JobShape<'a> {
    pub engine: &'a str,
    pub octree_resolution: u32,
    pub num_chunks: u32,
    pub steps: u32,
}

/// Free and total memory of the device a batch runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceMemory {
    pub total_bytes: u64,
    pub free_bytes: u64,
}

/// On CPU: the machine's memory (`MemTotal`, `MemAvailable` of /proc/meminfo).
pub fn system_memory() -> std::io::Result<DeviceMemory> {
    let text = std::fs::read_to_string("/proc/meminfo")?;
    let field = |name: &str| -> Option<u64> {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    match (field("MemTotal:"), field("MemAvailable:")) {
        (Some(total_bytes), Some(free_bytes)) => Ok(DeviceMemory {
            total_bytes,
            free_bytes,
        }),
        _ => Err(std::io::Error::other(
            "MemTotal/MemAvailable missing from /proc/meminfo",
        )),
    }
}

/// The resolution bucket memory is learned per: `octree_resolution` rounded up to 64.
pub fn resolution_bucket(r: u32) -> u32 {
    r.div_ceil(64).max(1) * 64
}

/// Documented first estimates of one job's peak memory, before anything was measured.
///
/// - `inflate`: the (R+1)³ f32 volume, twice over for the marching-cubes passes and the mesh
///   (≈ 8·(R+1)³ bytes), plus 32 MiB for images, distance fields and export buffers.
/// - `hunyuan3d`: the weights are resident and counted as used device memory, not per job; a job
///   adds 2 GiB of conditioner and DiT activations (B = 1 at the released sizes, fp16, CFG), the
///   volume decoder's query chunks (`num_chunks` × 4 KiB) and twice the (R+1)³ grid in f32.
pub fn prior_bytes(shape: &JobShape<'_>) -> u64 {
    let r = u64::from(shape.octree_resolution) + 1;
    match shape.engine {
        "inflate" => 8 * r * r * r + (32 << 20),
        _ => (2 << 30) + u64::from(shape.num_chunks) * 4096 + 8 * r * r * r,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Learned {
    pub bytes_per_job: u64,
    pub samples: u64,
}

/// Per (engine, resolution bucket, device) memory figures, seeded with [`prior_bytes`] and
/// updated from measured peaks.
#[derive(Debug, Clone, Default)]
pub struct MemoryModel {
    learned: HashMap<(String, u32, String), Learned>,
}

/// Weight of a new measurement in the running estimate.
const EWMA: f64 = 0.3;
/// Head-room on learned figures: measurements vary between inputs.
const SAFETY: f64 = 1.2;

impl MemoryModel {
    pub fn from_entries(
        entries: impl IntoIterator<Item = ((String, u32, String), Learned)>,
    ) -> Self {
        MemoryModel {
            learned: entries.into_iter().collect(),
        }
    }

    fn key(shape: &JobShape<'_>, device: &str) -> (String, u32, String) {
        (
            shape.engine.to_owned(),
            resolution_bucket(shape.octree_resolution),
            device.to_owned(),
        )
    }

    /// Estimated peak bytes of one job, and where the figure comes from.
    pub fn estimate(&self, shape: &JobShape<'_>, device: &str) -> (u64, String) {
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
        shape: &JobShape<'_>,
        device: &str,
        measured_bytes: u64,
    ) -> ((String, u32, String), Learned) {
        let key = Self::key(shape, device);
        let entry = self.learned.entry(key.clone()).or_insert(Learned {
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
        shape: &JobShape<'_>,
        device: &str,
        budget: u64,
        batch: usize,
    ) -> ((String, u32, String), Learned) {
        let key = Self::key(shape, device);
        let floor = ((budget / batch.max(1) as u64) as f64 * 1.05 / SAFETY).ceil() as u64;
        let entry = self.learned.entry(key.clone()).or_insert(Learned {
            bytes_per_job: floor,
            samples: 0,
        });
        entry.bytes_per_job = entry.bytes_per_job.max(floor);
        entry.samples += 1;
        (key, *entry)
    }
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
    let used = mem.total_bytes.saturating_sub(mem.free_bytes);
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

/// Peak resident memory of this process since the last reset (Linux `VmHWM`).
pub fn peak_rss_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// Current resident memory (`VmRSS`).
pub fn rss_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// Resets `VmHWM` to the current RSS, so the next peak is the batch's own.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Busy share of the machine's CPUs between two reads of /proc/stat (the CPU "device"'s
/// utilisation).
#[derive(Debug, Default)]
pub struct CpuSampler {
    last: Option<(u64, u64)>,
}

impl CpuSampler {
    fn read() -> Option<(u64, u64)> {
        let text = std::fs::read_to_string("/proc/stat").ok()?;
        let line = text.lines().next()?;
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        if v.len() < 5 {
            return None;
        }
        let total: u64 = v.iter().sum();
        let idle = v[3] + v[4];
        Some((total, idle))
    }

    /// Utilisation (0–1) since the previous call; `None` on the first call.
    pub fn sample(&mut self) -> Option<f64> {
        let now = Self::read()?;
        let prev = self.last.replace(now)?;
        let total = now.0.saturating_sub(prev.0);
        let idle = now.1.saturating_sub(prev.1);
        (total > 0).then(|| 1.0 - idle as f64 / total as f64)
    }
}

/// Where a worker reads its device's memory and utilisation: /proc on CPU, NVML on NVIDIA GPUs.
pub enum DeviceProbe {
    Cpu(CpuSampler),
    Nvml {
        nvml: Box<nvml_wrapper::Nvml>,
        index: u32,
    },
}

impl std::fmt::Debug for DeviceProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceProbe::Cpu(_) => f.write_str("cpu"),
            DeviceProbe::Nvml { index, .. } => write!(f, "cuda:{index} (NVML)"),
        }
    }
}

impl DeviceProbe {
    /// `cpu`, or `cuda:N` through NVML (fails clearly when no NVIDIA driver is loaded).
    pub fn open(device: &str) -> Result<DeviceProbe, String> {
        if device == "cpu" {
            return Ok(DeviceProbe::Cpu(CpuSampler::default()));
        }
        let index: u32 = device
            .strip_prefix("cuda:")
            .and_then(|i| i.parse().ok())
            .ok_or_else(|| format!("unknown device `{device}` (expected cpu or cuda:N)"))?;
        let nvml = nvml_wrapper::Nvml::init().map_err(|e| {
            format!("device {device}: NVML is not available ({e}); is the NVIDIA driver installed?")
        })?;
        nvml.device_by_index(index)
            .map_err(|e| format!("device {device}: {e}"))?;
        Ok(DeviceProbe::Nvml {
            nvml: Box::new(nvml),
            index,
        })
    }

    pub fn memory(&self) -> std::io::Result<DeviceMemory> {
        match self {
            DeviceProbe::Cpu(_) => system_memory(),
            DeviceProbe::Nvml { nvml, index } => {
                let m = nvml
                    .device_by_index(*index)
                    .and_then(|d| d.memory_info())
                    .map_err(std::io::Error::other)?;
                Ok(DeviceMemory {
                    total_bytes: m.total,
                    free_bytes: m.free,
                })
            }
        }
    }

    /// Busy share (0–1): since the last call on CPU, NVML's recent sample on GPUs.
    pub fn utilization(&mut self) -> Option<f64> {
        match self {
            DeviceProbe::Cpu(sampler) => sampler.sample(),
            DeviceProbe::Nvml { nvml, index } => nvml
                .device_by_index(*index)
                .and_then(|d| d.utilization_rates())
                .ok()
                .map(|u| f64::from(u.gpu) / 100.0),
        }
    }
}

#[cfg(test)]
mod tests {
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
            engine: "inflate",
            octree_resolution: 250,
            num_chunks: 8000,
            steps: 50,
        };
        let mut m = MemoryModel::default();
        let (prior, src) = m.estimate(&shape, "cpu");
        assert_eq!(prior, prior_bytes(&shape));
        assert_eq!(src, "documented estimate");
        m.observe(&shape, "cpu", 100 << 20);
        m.observe(&shape, "cpu", 200 << 20);
        let (est, src) = m.estimate(&shape, "cpu");
        // EWMA: 100·0.7 + 200·0.3 = 130 MiB, +20 %.
        assert_eq!(est, ((130u64 << 20) as f64 * 1.2) as u64);
        assert!(src.contains("2 batches"));
        // Same bucket (256) shares the figure; another device does not.
        let near = JobShape {
            octree_resolution: 256,
            ..shape
        };
        assert_eq!(m.estimate(&near, "cpu").0, est);
        assert_eq!(m.estimate(&shape, "cuda:0").0, prior);
        // An OOM with 4 jobs in a 2 GiB budget: at least 512 MiB per job with head-room.
        m.after_oom(&shape, "cpu", 2 * GIB, 4);
        let (after, _) = m.estimate(&shape, "cpu");
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

    #[test]
    fn devices_open_or_say_why_not() {
        let mut cpu = DeviceProbe::open("cpu").expect("cpu");
        assert!(cpu.memory().expect("memory").total_bytes > 0);
        let _ = cpu.utilization();
        assert!(
            DeviceProbe::open("tpu:0")
                .expect_err("unknown")
                .contains("expected cpu or cuda:N")
        );
        // On a machine without the NVIDIA driver the error names NVML; with one, cuda:0 opens.
        if !std::path::Path::new("/proc/driver/nvidia").exists() {
            let e = DeviceProbe::open("cuda:0").expect_err("no driver here");
            assert!(e.contains("NVML"), "{e}");
        }
    }

    #[test]
    fn this_machine_reports_memory() {
        let m = system_memory().expect("/proc/meminfo");
        assert!(m.total_bytes > 0 && m.free_bytes <= m.total_bytes);
        assert!(peak_rss_bytes().is_some() && rss_bytes().is_some());
    }
}
