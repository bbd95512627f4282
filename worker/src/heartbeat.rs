//! The heartbeat: every interval, renew the leases of the attempts in hand, sample the device
//! (memory, utilisation) into the metrics and write the worker's heartbeat — with the last
//! samples and the optimizer's last decision — to Redis with a TTL, so a dead worker disappears
//! by itself. What the heartbeat reports of the worker's state (the batch in hand, jobs done,
//! the last decision) reaches it over a `watch` channel that the consume loop writes; nothing is
//! shared behind locks.
//!
//! A batch running past `worker.job_timeout_s` plus one lease is stuck (the job timeout is
//! enforced inside the stages, so this means a stage stopped answering): the worker reports
//! itself unhealthy and stops renewing its leases, so the jobs go to other workers.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use orfeas_shared::heartbeat::{self, DeviceSample, WorkerHeartbeat};
use orfeas_vocab::JobId;
use tokio::sync::watch;

use crate::health::Session;
use crate::optimizer::{CpuSampler, Decision, DeviceMemory};
use crate::startup::Worker;

/// Samples kept for trends.
const SAMPLES: usize = 10;

/// An attempt in hand: its lease is renewed, and its stop flag set when it should stop
/// mid-stage (a cancel arrived, or another attempt took the job over).
#[derive(Debug, Clone)]
pub struct InHand {
    pub id: JobId,
    pub attempt: i32,
    pub stop: Arc<AtomicBool>,
}

/// What the consume loop tells the heartbeat.
#[derive(Debug, Clone, Default)]
pub struct WorkerStatus {
    /// The attempts in hand, whose leases the heartbeat renews.
    pub current_batch: Vec<InHand>,
    /// When the batch in hand started running.
    pub batch_started: Option<Instant>,
    pub jobs_done: u64,
    pub last_decision: Option<Decision>,
    /// The AMQP session's state, which `/readyz` reports.
    pub session: Session,
}

impl WorkerStatus {
    /// Whether the batch in hand has outlived `limit`.
    pub fn stuck(&self, limit: Duration) -> bool {
        self.batch_started.is_some_and(|t| t.elapsed() > limit)
    }
}

impl Worker {
    /// How long a batch may run before it counts as stuck: the job timeout is enforced inside
    /// the stages, so a batch past it plus one lease has a stage that stopped answering.
    pub(crate) fn stuck_after(&self) -> Duration {
        self.config.worker.job_timeout + self.config.worker.lease_ttl
    }

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
            let state = status.borrow().clone();
            let stuck = state.stuck(self.stuck_after());
            self.renew_leases(&state, stuck).await;
            if conn.is_none() {
                conn = heartbeat::connect(&self.config.redis.url).await.ok();
            }
            if let Some(c) = conn.as_mut() {
                let hb = WorkerHeartbeat {
                    id: self.id.clone(),
                    host: host.clone(),
                    device,
                    engine: self.engine(),
                    current_batch: state.current_batch.iter().map(|h| h.id).collect(),
                    healthy: !stuck,
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

    /// Keeps the attempts in hand owned — unless the batch is stuck, when the leases are let go
    /// so other workers take the jobs over.
    async fn renew_leases(&self, state: &WorkerStatus, stuck: bool) {
        if state.current_batch.is_empty() {
            return;
        }
        if stuck {
            let jobs: Vec<JobId> = state.current_batch.iter().map(|h| h.id).collect();
            tracing::error!(
                ?jobs,
                "batch stuck past the job timeout; leases released to other workers"
            );
            return;
        }
        let attempts: Vec<(JobId, i32)> = state
            .current_batch
            .iter()
            .map(|h| (h.id, h.attempt))
            .collect();
        match self
            .db
            .renew_leases(&self.id, &attempts, self.config.worker.lease_ttl)
            .await
        {
            Ok(kept) => {
                // A job no longer owned (taken over, finished elsewhere) or with a cancel
                // pending stops now, inside its stage.
                for h in &state.current_batch {
                    let keep = kept.iter().any(|(id, cancel)| *id == h.id && !cancel);
                    if !keep && !h.stop.swap(true, Ordering::Relaxed) {
                        tracing::info!(job = %h.id, "stopping: canceled or taken over");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "leases not renewed"),
        }
    }
}
