//! `GET /api/gpu/status`: each live worker's device (memory, utilisation, trend, the optimizer's
//! reasoning, advice) and the fleet aggregate, from the workers' heartbeats.
//!
//! The fleet aggregate is defined as: memory used and total **summed** over the live devices
//! (`utilization_percent` = used / total), utilisation **averaged** over them, and the trend of
//! the summed memory series (each device's samples aligned from the newest). The documented
//! contract's fields (`memory.utilization_percent`, `trends.{trend, avg_utilization}`,
//! `recommendations`) carry that aggregate; `devices` and `fleet` the detail.

use orfeas_vocab::Device;
use serde::Serialize;
use utoipa::ToSchema;

use crate::heartbeat::WorkerHeartbeat;

/// Rising, stable or falling, from the last samples' memory use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Trend {
    Rising,
    Stable,
    Falling,
}

/// Compares the mean of the newer half of the samples with the older half; a change of more
/// than 5 % of the device's memory is a trend.
pub fn memory_trend(samples: &[u64], total: u64) -> Trend {
    if samples.len() < 2 || total == 0 {
        return Trend::Stable;
    }
    let half = samples.len() / 2;
    let mean = |s: &[u64]| s.iter().map(|&v| v as f64).sum::<f64>() / s.len().max(1) as f64;
    let older = mean(&samples[..half]);
    let newer = mean(&samples[samples.len() - half..]);
    let delta = (newer - older) / total as f64;
    if delta > 0.05 {
        Trend::Rising
    } else if delta < -0.05 {
        Trend::Falling
    } else {
        Trend::Stable
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DeviceStatus {
    pub worker_id: String,
    pub host: String,
    pub device: Device,
    pub memory_used_bytes: u64,
    pub memory_total_bytes: u64,
    pub memory_used_percent: f64,
    /// Busy share over the last heartbeat interval, in percent.
    pub utilization_percent: f64,
    pub trend: Trend,
    pub batch_size: usize,
    pub current_batch: usize,
    pub optimizer_reasoning: Option<String>,
    pub advice: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FleetTotals {
    pub workers: usize,
    pub memory_used_bytes: u64,
    pub memory_total_bytes: u64,
    pub memory_used_percent: f64,
    pub mean_utilization_percent: f64,
    pub jobs_in_flight: usize,
}

/// Documented contract: the fleet's memory.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MemorySummary {
    pub used_bytes: u64,
    pub total_bytes: u64,
    /// Used share of the summed device memory, in percent.
    pub utilization_percent: f64,
}

/// Documented contract: the fleet's trend.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Trends {
    /// Trend of the summed memory use.
    pub trend: Trend,
    /// Mean device utilisation, in percent.
    pub avg_utilization: f64,
}

/// `GET /api/gpu/status`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct GpuStatus {
    pub memory: MemorySummary,
    pub trends: Trends,
    /// Advice as text, one line per device that needs attention.
    pub recommendations: Vec<String>,
    pub devices: Vec<DeviceStatus>,
    pub fleet: FleetTotals,
}

fn pct(used: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        round1(100.0 * used as f64 / total as f64)
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// What a device's state suggests, if anything.
fn device_advice(w: &WorkerHeartbeat, used_percent: f64) -> Option<String> {
    if used_percent > 92.0 {
        Some(
            "memory nearly full: lower worker.target_utilization or the jobs' octree_resolution"
                .to_owned(),
        )
    } else if w.utilization < 0.3 && w.current_batch.is_empty() {
        Some("idle: this worker could take larger batches or be scaled in".to_owned())
    } else {
        None
    }
}

impl DeviceStatus {
    pub fn of(w: &WorkerHeartbeat) -> DeviceStatus {
        let used: Vec<u64> = w.samples.iter().map(|s| s.memory_used_bytes).collect();
        let used_percent = pct(w.memory_used_bytes, w.memory_total_bytes);
        DeviceStatus {
            worker_id: w.id.clone(),
            host: w.host.clone(),
            device: w.device,
            memory_used_bytes: w.memory_used_bytes,
            memory_total_bytes: w.memory_total_bytes,
            memory_used_percent: used_percent,
            utilization_percent: round1(w.utilization * 100.0),
            trend: memory_trend(&used, w.memory_total_bytes),
            batch_size: w.batch_size,
            current_batch: w.current_batch.len(),
            optimizer_reasoning: w.optimizer_reasoning.clone(),
            advice: device_advice(w, used_percent),
        }
    }
}

impl GpuStatus {
    pub fn of(workers: &[WorkerHeartbeat]) -> GpuStatus {
        let devices: Vec<DeviceStatus> = workers.iter().map(DeviceStatus::of).collect();
        let used: u64 = workers.iter().map(|w| w.memory_used_bytes).sum();
        let total: u64 = workers.iter().map(|w| w.memory_total_bytes).sum();
        let mean_utilization = if workers.is_empty() {
            0.0
        } else {
            round1(
                100.0 * workers.iter().map(|w| w.utilization).sum::<f64>() / workers.len() as f64,
            )
        };
        // The summed series, aligned from each device's newest sample.
        let longest = workers.iter().map(|w| w.samples.len()).max().unwrap_or(0);
        let summed: Vec<u64> = (0..longest)
            .map(|age| {
                workers
                    .iter()
                    .filter_map(|w| {
                        w.samples
                            .len()
                            .checked_sub(longest - age)
                            .map(|i| w.samples[i].memory_used_bytes)
                    })
                    .sum()
            })
            .collect();
        let recommendations = devices
            .iter()
            .filter_map(|d| {
                d.advice
                    .as_ref()
                    .map(|a| format!("{} ({}): {a}", d.worker_id, d.device))
            })
            .collect();
        GpuStatus {
            memory: MemorySummary {
                used_bytes: used,
                total_bytes: total,
                utilization_percent: pct(used, total),
            },
            trends: Trends {
                trend: memory_trend(&summed, total),
                avg_utilization: mean_utilization,
            },
            recommendations,
            fleet: FleetTotals {
                workers: workers.len(),
                memory_used_bytes: used,
                memory_total_bytes: total,
                memory_used_percent: pct(used, total),
                mean_utilization_percent: mean_utilization,
                jobs_in_flight: workers.iter().map(|w| w.current_batch.len()).sum(),
            },
            devices,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use orfeas_vocab::{Engine, JobId};

    use super::*;
    use crate::heartbeat::DeviceSample;

    fn worker(id: &str, used: &[u64], total: u64, utilization: f64, busy: bool) -> WorkerHeartbeat {
        let now = Utc::now();
        WorkerHeartbeat {
            id: id.into(),
            host: "h".into(),
            device: Device::Cuda(0),
            engine: Engine::Hunyuan3d,
            current_batch: if busy { vec![JobId::new()] } else { vec![] },
            healthy: true,
            jobs_done: 0,
            started_at: now,
            last_seen: now,
            memory_total_bytes: total,
            memory_used_bytes: *used.last().unwrap_or(&0),
            utilization,
            samples: used
                .iter()
                .map(|&u| DeviceSample {
                    at: now,
                    memory_used_bytes: u,
                    utilization,
                })
                .collect(),
            batch_size: 2,
            optimizer_reasoning: None,
        }
    }

    #[test]
    fn trends() {
        assert_eq!(memory_trend(&[10, 10, 30, 30], 100), Trend::Rising);
        assert_eq!(memory_trend(&[30, 30, 10, 10], 100), Trend::Falling);
        assert_eq!(memory_trend(&[10, 12, 11, 12], 100), Trend::Stable);
        assert_eq!(memory_trend(&[10], 100), Trend::Stable);
    }

    #[test]
    fn the_fleet_aggregate_sums_memory_and_averages_utilisation() {
        // A: 95 of 100 and rising; B: 20 of 300, two samples only, flat and idle.
        let a = worker("a", &[40, 40, 95, 95], 100, 0.9, true);
        let b = worker("b", &[20, 20], 300, 0.1, false);
        let g = GpuStatus::of(&[a, b]);
        assert_eq!(g.memory.used_bytes, 115);
        assert_eq!(g.memory.total_bytes, 400);
        assert_eq!(g.memory.utilization_percent, 28.8);
        assert_eq!(g.trends.avg_utilization, 50.0);
        // Summed series aligned from the newest: [40, 40, 115, 115] of 400 → rising.
        assert_eq!(g.trends.trend, Trend::Rising);
        assert_eq!(g.devices[0].trend, Trend::Rising);
        assert_eq!(g.devices[1].trend, Trend::Stable);
        assert_eq!(g.recommendations.len(), 2, "{:?}", g.recommendations);
        assert!(g.recommendations[0].starts_with("a (cuda:0): memory nearly full"));
        assert!(g.recommendations[1].starts_with("b (cuda:0): idle"));
        assert_eq!(g.fleet.jobs_in_flight, 1);
        assert_eq!(g.fleet.memory_used_percent, g.memory.utilization_percent);
    }

    #[test]
    fn an_empty_fleet_is_all_zero() {
        let g = GpuStatus::of(&[]);
        assert_eq!(g.memory.total_bytes, 0);
        assert_eq!(g.trends.trend, Trend::Stable);
        assert!(g.recommendations.is_empty() && g.devices.is_empty());
    }
}
