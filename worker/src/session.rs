//! The AMQP session: connect, consume, reconnect with backoff when the broker goes away, and
//! drain on shutdown (stop consuming, finish and ack the batch in hand, then return).
//!
//! After the first message of a batch arrives, the optimizer decides how many compatible jobs
//! to run with it from free memory, the learned per-job figure and the queue depth; the consumer's
//! prefetch is one and the rest of the batch is pulled ([`crate::batch`]).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{BasicCancelOptions, ConfirmSelectOptions};
use lapin::{Channel, Connection};
use orfeas_shared::heartbeat;
use orfeas_shared::queue::{self, QueueError};
use orfeas_vocab::ErrorCode;
use tokio::sync::watch;

use crate::batch::{self, shape_of};
use crate::broker::{Broker, Incoming, LapinBroker};
use crate::failure::Failure;
use crate::health::Session;
use crate::optimizer::{self, Decision, DeviceMemory, JobShape};
use crate::startup::Worker;

/// A session that is not open by then (a broker that accepts connections but does not answer,
/// queues still recovering) is given up and retried.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a lost session's connection may take to close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

async fn wait_stop(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// What the idle wait ended with.
enum Next {
    Stop,
    Lost(String),
    Delivery(Box<lapin::message::Delivery>),
}

impl Worker {
    /// Runs until `shutdown` resolves; then finishes and acks the batch in hand and returns.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()> + Send + 'static) {
        let (tx, rx) = watch::channel(false);
        let me = self.clone();
        tokio::spawn(async move {
            shutdown.await;
            // Readiness drops at once, while the batch in hand may still run for minutes.
            me.report_session(Session::Draining);
            let _ = tx.send(true);
        });
        let hb = tokio::spawn(self.clone().heartbeat_loop(self.status.subscribe()));
        let mut backoff = Duration::from_millis(200);
        while !*rx.borrow() {
            let session = tokio::select! {
                _ = wait_stop(rx.clone()) => break,
                s = tokio::time::timeout(OPEN_TIMEOUT, self.open_session()) => {
                    s.unwrap_or(Err(QueueError::Timeout(OPEN_TIMEOUT)))
                }
            };
            match session {
                Ok((conn, channel, consumer)) => {
                    backoff = Duration::from_millis(200);
                    tracing::info!(worker = %self.id, queue = %self.topology.jobs, "consuming");
                    self.metrics.up.set(1.0);
                    self.report_session(Session::Consuming);
                    let broker = LapinBroker::new(channel.clone());
                    match self.consume(&broker, consumer, rx.clone()).await {
                        None => {
                            let _ = channel
                                .basic_cancel(
                                    self.id.as_str().into(),
                                    BasicCancelOptions::default(),
                                )
                                .await;
                            let _ = channel.close(200, "worker stopping".into()).await;
                            let _ = conn.close(200, "worker stopping".into()).await;
                            break;
                        }
                        Some(reason) => {
                            self.report_session(Session::Connecting);
                            tracing::warn!(%reason, "queue connection lost; reconnecting");
                            // Closing tells the broker at once to give the messages in hand
                            // back; a stalled connection never answers, so it is not waited
                            // for (the broker then notices by the missing heartbeats).
                            let _ = tokio::time::timeout(
                                CLOSE_TIMEOUT,
                                conn.close(320, "worker reconnecting".into()),
                            )
                            .await;
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "queue unavailable");
                    tokio::select! {
                        _ = wait_stop(rx.clone()) => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        self.metrics.up.set(0.0);
        self.report_session(Session::Stopped);
        hb.abort();
        if let Ok(mut conn) = heartbeat::connect(&self.config.redis.url).await {
            let _ = heartbeat::remove(&mut conn, &self.config.redis.key_prefix, &self.id).await;
        }
        tracing::info!(worker = %self.id, "stopped");
    }

    fn report_session(&self, next: Session) {
        self.status
            .send_modify(|s| s.session = s.session.then(next));
    }

    async fn open_session(&self) -> Result<(Connection, Channel, lapin::Consumer), QueueError> {
        let conn = queue::connect(&self.config.amqp.url).await?;
        let channel = conn.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        self.topology.declare(&channel).await?;
        let consumer = queue::consume(&channel, &self.topology.jobs, &self.id, 1).await?;
        Ok((conn, channel, consumer))
    }

    /// Consumes until asked to stop (`None`) or the connection is lost (`Some(reason)`).
    async fn consume(
        &self,
        broker: &LapinBroker,
        mut consumer: lapin::Consumer,
        stop: watch::Receiver<bool>,
    ) -> Option<String> {
        loop {
            let first = match self.next_delivery(broker, &mut consumer, &stop).await {
                Next::Stop => return None,
                Next::Lost(reason) => return Some(reason),
                Next::Delivery(d) => Incoming::from_delivery(*d),
            };
            let Some(shape) = shape_of(&first) else {
                // Unreadable: disposition dead-letters it (and fails its job if it names one).
                self.process_batch(broker, vec![first], None).await;
                continue;
            };
            let depth = broker.depth(&self.topology.jobs).await.unwrap_or_else(|e| {
                tracing::debug!(error = %e, "queue depth unknown; sizing for the job in hand");
                0
            });
            let decision = self.decide(&shape, u64::from(depth) + 1);
            if decision.batch_size == 0 {
                self.does_not_fit(broker, &first, &decision).await;
                continue;
            }
            let assembled = batch::assemble(
                broker,
                &self.topology.jobs,
                first,
                &shape,
                decision.batch_size,
                decision.wait,
            )
            .await;
            self.process_batch(broker, assembled.messages, Some((shape, decision)))
                .await;
            if assembled.lost.is_some() {
                return assembled.lost;
            }
        }
    }

    /// Waits for the next delivery while idle, checking every `worker.stall_check_ms` that the
    /// consumer is being fed: a connection can stall or a broker can lose a consumer without
    /// an error ever reaching the client, and a worker waiting on such a consumer would idle
    /// forever beside a full queue.
    async fn next_delivery(
        &self,
        broker: &LapinBroker,
        consumer: &mut lapin::Consumer,
        stop: &watch::Receiver<bool>,
    ) -> Next {
        let check = self.config.worker.stall_check;
        let mut starved = 0u32;
        loop {
            // Biased: once asked to stop, no further batch starts even when a message is ready.
            // `next()` is cancel-safe: a delivery that arrives during a check waits for the
            // next turn.
            tokio::select! {
                biased;
                _ = wait_stop(stop.clone()) => return Next::Stop,
                d = consumer.next() => return match d {
                    None => Next::Lost("the consumer was closed".into()),
                    Some(Err(e)) => Next::Lost(e.to_string()),
                    Some(Ok(d)) => Next::Delivery(Box::new(d)),
                },
                _ = tokio::time::sleep(check) => {}
            }
            if !broker.connected() {
                return Next::Lost("the channel is no longer open".into());
            }
            match tokio::time::timeout(check, broker.depth(&self.topology.jobs)).await {
                Err(_) => {
                    return Next::Lost(format!(
                        "the broker did not answer a queue check within {check:?}"
                    ));
                }
                Ok(Err(e)) => return Next::Lost(e.to_string()),
                Ok(Ok(0)) => starved = 0,
                Ok(Ok(ready)) => {
                    starved += 1;
                    if starved >= 2 {
                        return Next::Lost(format!(
                            "{ready} messages ready on two checks {check:?} apart, none delivered"
                        ));
                    }
                }
            }
        }
    }

    /// The optimizer's decision for the next batch, logged with its reasoning.
    fn decide(&self, shape: &JobShape, waiting: u64) -> Decision {
        let device = self.config.worker.device;
        let (per_job, source) = self
            .memory
            .lock()
            .map(|m| m.estimate(shape, device))
            .unwrap_or_else(|_| (optimizer::prior_bytes(shape), "documented estimate".into()));
        let room = per_job.saturating_mul(self.optimizer.max_batch as u64 * 2);
        let memory = self
            .probe
            .available_memory(self.config.worker.memory_limit_bytes)
            .unwrap_or(DeviceMemory {
                total_bytes: room,
                free_bytes: room,
            });
        let d = optimizer::decide(&self.optimizer, memory, per_job, &source, waiting);
        tracing::info!(
            batch_size = d.batch_size,
            engine = %shape.engine,
            octree_resolution = shape.octree_resolution,
            "Dynamic batch size: {} (reasoning: {})",
            d.batch_size,
            d.reasoning
        );
        let m = &self.metrics;
        let outcome = if d.batch_size == 0 {
            "does_not_fit"
        } else {
            "batch"
        };
        let engine = shape.engine.as_str();
        m.optimizer_decisions
            .with_label_values(&[engine, outcome])
            .inc();
        m.optimizer_batch_size.set(d.batch_size as i64);
        m.optimizer_per_job_bytes
            .with_label_values(&[
                engine,
                &optimizer::resolution_bucket(shape.octree_resolution).to_string(),
            ])
            .set(i64::try_from(per_job).unwrap_or(i64::MAX));
        self.status
            .send_modify(|s| s.last_decision = Some(d.clone()));
        d
    }

    /// A job too large for this worker's device even alone: routed to the configured queue for
    /// larger devices, or failed with `insufficient_memory` (disposition decides).
    async fn does_not_fit(&self, broker: &impl Broker, m: &Incoming, decision: &Decision) {
        let failure = Failure::permanent(ErrorCode::InsufficientMemory, decision.reasoning.clone());
        self.dispose(broker, m, None, failure).await;
    }
}
