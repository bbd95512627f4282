//! A deterministic simulation of one GPU node under bursty arrivals, to compare the optimizer's
//! dynamic batching with fixed batch sizes (`cargo run --release -p orfeas-worker --example
//! batch_sim`; results in BENCHMARKS.md).
//!
//! Cost model (a 24 GiB device, the common self-hosted size, running a Hunyuan3D-2-sized model):
//! - 5 GiB stay resident (fp16 weights); a job needs `1.5 GiB + 8·(R+1)³` bytes at octree
//!   resolution R (1.6 GiB at 256, 1.9 at 384, 2.5 at 512) — less than the optimizer's documented
//!   prior, which it has to learn down from;
//! - a batch takes `1.0 s + 0.5 s · Σ (R/256)²` (fixed cost amortised over the batch);
//! - a batch whose memory exceeds the device fails after 0.5 s (an OOM); the jobs go back to the
//!   front of the queue. Fixed-size policies then run those jobs one by one; the optimizer splits
//!   the batch in halves and raises its estimate.
//! - Only jobs with the same resolution share a batch (their volumes differ).
//!
//! Arrivals: bursts of 1–24 jobs with exponential gaps (mean 6 s); 60 % at R=256, 30 % at 384,
//! 10 % at 512. A seeded xorshift generator makes every run identical.

use std::collections::VecDeque;
use std::time::Duration;

use orfeas_vocab::{Device, Engine};

use crate::optimizer::{self, DeviceMemory, JobShape, MemoryModel, OptimizerConfig};

/// The simulated node's device (the memory model keys its figures by device).
const SIM_DEVICE: Device = Device::Cuda(0);

const GIB: u64 = 1 << 30;
const TOTAL: u64 = 24 * GIB;
const RESIDENT: u64 = 5 * GIB;

fn job_mem(r: u32) -> u64 {
    let n = u64::from(r) + 1;
    3 * GIB / 2 + 8 * n * n * n
}

fn batch_time(rs: &[u32]) -> f64 {
    1.0 + rs
        .iter()
        .map(|&r| 0.5 * (f64::from(r) / 256.0).powi(2))
        .sum::<f64>()
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Policy {
    Fixed(usize),
    Dynamic,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SimReport {
    pub policy: Policy,
    pub jobs: usize,
    pub throughput_per_s: f64,
    pub p95_latency_s: f64,
    pub mean_batch: f64,
    pub ooms: usize,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// (arrival time, resolution) of every job, sorted by arrival.
pub fn arrivals(seed: u64, jobs: usize) -> Vec<(f64, u32)> {
    let mut rng = Rng(seed | 1);
    let mut t = 0.0;
    let mut out = Vec::with_capacity(jobs);
    while out.len() < jobs {
        t += -6.0 * (1.0 - rng.unit()).ln();
        let burst = 1 + (rng.next() % 24) as usize;
        for i in 0..burst.min(jobs - out.len()) {
            let u = rng.unit();
            let r = if u < 0.6 {
                256
            } else if u < 0.9 {
                384
            } else {
                512
            };
            out.push((t + i as f64 * 0.01, r));
        }
    }
    out
}

pub fn simulate(policy: Policy, arrivals: &[(f64, u32)]) -> SimReport {
    let cfg = OptimizerConfig {
        target_utilization: 0.85,
        max_batch: 8,
        max_wait: Duration::from_millis(200),
    };
    let mut model = MemoryModel::default();
    let mut queue: VecDeque<(usize, f64, u32)> = VecDeque::new();
    let mut next = 0usize;
    let mut now = 0.0f64;
    let mut done: Vec<f64> = vec![0.0; arrivals.len()];
    let mut completed = 0usize;
    let mut ooms = 0usize;
    let mut batches = 0usize;
    let mut batched_jobs = 0usize;
    // Jobs a fixed policy must now run alone after an OOM.
    let mut solo: VecDeque<(usize, f64, u32)> = VecDeque::new();
    while completed < arrivals.len() {
        while next < arrivals.len() && arrivals[next].0 <= now {
            queue.push_back((next, arrivals[next].0, arrivals[next].1));
            next += 1;
        }
        if queue.is_empty() && solo.is_empty() {
            now = arrivals[next].0;
            continue;
        }
        let (batch, limit): (Vec<(usize, f64, u32)>, usize) = if let Some(j) = solo.pop_front() {
            (vec![j], 1)
        } else {
            let head_r = queue[0].2;
            let same: Vec<usize> = queue
                .iter()
                .enumerate()
                .filter(|(_, j)| j.2 == head_r)
                .map(|(i, _)| i)
                .collect();
            let limit = match policy {
                Policy::Fixed(n) => n,
                Policy::Dynamic => {
                    let shape = JobShape {
                        engine: Engine::Hunyuan3d,
                        octree_resolution: head_r,
                        num_chunks: 8000,
                        steps: Some(50),
                        paint: false,
                    };
                    let (per_job, src) = model.estimate(&shape, SIM_DEVICE);
                    let mem = DeviceMemory {
                        total_bytes: TOTAL,
                        free_bytes: TOTAL - RESIDENT,
                    };
                    let d = optimizer::decide(&cfg, mem, per_job, &src, same.len() as u64);
                    d.batch_size.max(1)
                }
            };
            // A lone job waits up to max_wait for company when the policy wants more.
            if same.len() < limit && next < arrivals.len() {
                let until = now + cfg.max_wait.as_secs_f64();
                if arrivals[next].0 <= until {
                    now = arrivals[next].0;
                    continue;
                }
            }
            let take: Vec<usize> = same.into_iter().take(limit).collect();
            let mut batch = Vec::new();
            for &i in take.iter().rev() {
                if let Some(j) = queue.remove(i) {
                    batch.push(j);
                }
            }
            batch.reverse();
            (batch, limit)
        };
        let rs: Vec<u32> = batch.iter().map(|j| j.2).collect();
        let need: u64 = rs.iter().map(|&r| job_mem(r)).sum();
        if need > TOTAL - RESIDENT {
            ooms += 1;
            now += 0.5;
            match policy {
                Policy::Fixed(_) => solo.extend(batch),
                Policy::Dynamic => {
                    let shape = JobShape {
                        engine: Engine::Hunyuan3d,
                        octree_resolution: rs[0],
                        num_chunks: 8000,
                        steps: Some(50),
                        paint: false,
                    };
                    model.after_oom(&shape, SIM_DEVICE, TOTAL - RESIDENT, batch.len());
                    for j in batch.into_iter().rev() {
                        queue.push_front(j);
                    }
                }
            }
            let _ = limit;
            continue;
        }
        now += batch_time(&rs);
        batches += 1;
        batched_jobs += batch.len();
        if let Policy::Dynamic = policy {
            let shape = JobShape {
                engine: Engine::Hunyuan3d,
                octree_resolution: rs[0],
                num_chunks: 8000,
                steps: Some(50),
                paint: false,
            };
            model.observe(&shape, SIM_DEVICE, job_mem(rs[0]));
        }
        for (id, _, _) in batch {
            done[id] = now;
            completed += 1;
        }
    }
    let first = arrivals.first().map(|a| a.0).unwrap_or(0.0);
    let last = done.iter().copied().fold(0.0, f64::max);
    let mut lat: Vec<f64> = done.iter().zip(arrivals).map(|(d, a)| d - a.0).collect();
    lat.sort_by(f64::total_cmp);
    SimReport {
        policy,
        jobs: arrivals.len(),
        throughput_per_s: arrivals.len() as f64 / (last - first).max(1e-9),
        p95_latency_s: lat[(lat.len() as f64 * 0.95) as usize - 1],
        mean_batch: batched_jobs as f64 / batches.max(1) as f64,
        ooms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_batching_beats_batch_one_without_oom() {
        let a = arrivals(42, 600);
        let one = simulate(Policy::Fixed(1), &a);
        let dynamic = simulate(Policy::Dynamic, &a);
        assert_eq!(one.ooms, 0);
        assert_eq!(dynamic.ooms, 0, "{dynamic:?}");
        assert!(
            dynamic.throughput_per_s >= 1.5 * one.throughput_per_s,
            "dynamic {dynamic:?} vs fixed 1 {one:?}"
        );
        // Fixed batches of 8 do run out of memory on 512-resolution jobs.
        assert!(simulate(Policy::Fixed(8), &a).ooms > 0);
    }

    #[test]
    fn the_simulation_is_deterministic() {
        let a = arrivals(7, 200);
        assert_eq!(arrivals(7, 200), a);
        assert_eq!(simulate(Policy::Dynamic, &a), simulate(Policy::Dynamic, &a));
    }
}
