//! The heartbeat: every interval, sample the device (memory, utilisation) into the metrics and
//! write the worker's heartbeat — with the last samples and the optimizer's last decision — to
//! Redis with a TTL, so a dead worker disappears by itself. What the heartbeat reports of the
//! worker's state (the batch in hand, jobs done, the last decision) reaches it over a `watch`
//! channel that the consume loop writes; nothing is shared behind locks.

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use orfeas_shared::heartbeat::{self, DeviceSample, WorkerHeartbeat};
use orfeas_vocab::JobId;
use tokio::sync::watch;

use crate::optimizer::{CpuSampler, Decision, DeviceMemory};
use crate::startup::Worker;

/// Samples kept for trends.
const SAMPLES: usize = 10;

/// What the consume loop tells the heartbeat.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerStatus {
    pub current_batch: Vec<JobId>,
    pub jobs_done: u64,
    pub last_decision: Option<Decision>,
}

impl Worker {
    /// Runs until aborted.
    pub(crate) async fn heartbeat_loop(self: Arc<Self>, status: watch::Receiver<WorkerStatus>) {
        let started_at: DateTime<Utc> = Utc::now();
        let host = orfeas_shared::config::hostname_or_unknown();
        let device = self.config.worker.device;
        let label = device.to_string();
        let mut cpu = CpuSampler::default();
        let mut conn = None;
        let mut samples: VecDeque<DeviceSample> = VecDeque::new();
        loop {
            let memory = self
                .probe
                .available_memory(self.config.worker.memory_limit_bytes)
                .unwrap_or(DeviceMemory {
                    total_bytes: 0,
                    free_bytes: 0,
                });
            let used = memory.used_bytes();
            let utilization = self.probe.utilization(&mut cpu).unwrap_or(0.0);
            let m = &self.metrics;
            m.memory_total
                .with_label_values(&[label.as_str()])
                .set(i64::try_from(memory.total_bytes).unwrap_or(i64::MAX));
            m.memory_used
                .with_label_values(&[label.as_str()])
                .set(i64::try_from(used).unwrap_or(i64::MAX));
            m.utilization
                .with_label_values(&[label.as_str()])
                .set(utilization);
            samples.push_back(DeviceSample {
                at: Utc::now(),
                memory_used_bytes: used,
                utilization,
            });
            while samples.len() > SAMPLES {
                samples.pop_front();
            }
            if conn.is_none() {
                conn = heartbeat::connect(&self.config.redis.url).await.ok();
            }
            if let Some(c) = conn.as_mut() {
                let state = status.borrow().clone();
                let hb = WorkerHeartbeat {
                    id: self.id.clone(),
                    host: host.clone(),
                    device,
                    engine: self.engine(),
                    current_batch: state.current_batch,
                    jobs_done: state.jobs_done,
                    started_at,
                    last_seen: Utc::now(),
                    memory_total_bytes: memory.total_bytes,
                    memory_used_bytes: used,
                    utilization,
                    samples: samples.iter().cloned().collect(),
                    batch_size: state.last_decision.as_ref().map_or(0, |d| d.batch_size),
                    optimizer_reasoning: state.last_decision.map(|d| d.reasoning),
                };
                match heartbeat::beat(
                    c,
                    &self.config.redis.key_prefix,
                    &hb,
                    self.config.worker.heartbeat_ttl,
                )
                .await
                {
                    Ok(()) => m.heartbeats.inc(),
                    Err(e) => tracing::debug!(error = %e, "heartbeat not written"),
                }
            }
            tokio::time::sleep(self.config.worker.heartbeat_interval).await;
        }
    }
}
