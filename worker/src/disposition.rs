//! What happens to a message whose job did not succeed: the job's state is recorded in
//! PostgreSQL (canceled, failed, or back to queued), the message is republished to a retry queue
//! or the dead-letter queue with the reason in its headers, and only then is it acked. If any of
//! that is impossible (database or broker down), the message is returned to its queue after a
//! pause.
//!
//! Attempts are counted in PostgreSQL when they start, so the limit holds whatever ended them
//! (a crash included). An attempt that ended because a dependency was down is given back and the
//! job waits — within `worker.outage_budget_s` — instead of failing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lapin::types::AMQPValue;
use orfeas_shared::db::{Db, DbError, JobEnd, Requeued};
use orfeas_shared::queue::{
    ERROR_CODE_HEADER, ERROR_MESSAGE_HEADER, QueueError, RETRIES_HEADER, Topology,
};
use orfeas_vocab::{ErrorCode, JobId, JobStatus};

use crate::broker::{Broker, Incoming};
use crate::failure::{Failure, backoff};
use crate::startup::Worker;

/// The attempt a worker holds: the job, its attempt number, the attempts counted so far and
/// when its current run of dependency outages began.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Held {
    pub id: JobId,
    pub attempt: i32,
    pub counted: i32,
    pub outage_since: Option<DateTime<Utc>>,
}

/// The retry rules of this worker (`worker.max_attempts`, `retry_base_ms`, `retry_max_ms`,
/// `outage_budget_s`, `overflow_queue`).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub max: Duration,
    pub outage_budget: Duration,
    /// Where jobs too large for this device go (for workers on larger devices).
    pub overflow_queue: Option<String>,
}

/// What is done with the message.
#[derive(Debug, Clone, PartialEq)]
pub enum Disposition {
    /// Nothing to send: ack (a canceled job).
    Ack,
    /// Back through a retry queue after `delay`, carrying retry count `next`. `outage`: the
    /// attempt is given back.
    Retry {
        next: u32,
        delay: Duration,
        code: ErrorCode,
        message: String,
        outage: bool,
    },
    /// To the dead-letter queue; the job fails with `code`.
    DeadLetter { code: ErrorCode, message: String },
    /// To another queue (the overflow queue for larger devices); the job waits there and the
    /// attempt is given back.
    Route { queue: String, reason: String },
}

/// Decides from the failure, the attempt held (if one started) and the retries the message has
/// seen (the backoff's exponent).
pub fn plan(
    failure: &Failure,
    held: Option<&Held>,
    retries: u32,
    policy: &RetryPolicy,
    now: DateTime<Utc>,
) -> Disposition {
    let retry = |code: ErrorCode, message: &str, outage: bool| Disposition::Retry {
        next: retries + 1,
        delay: backoff(retries, policy.base, policy.max),
        code,
        message: message.to_owned(),
        outage,
    };
    match failure {
        Failure::Canceled => Disposition::Ack,
        Failure::Malformed(e) => Disposition::DeadLetter {
            code: ErrorCode::MalformedMessage,
            message: e.to_string(),
        },
        Failure::Permanent {
            code: ErrorCode::InsufficientMemory,
            message,
        } if policy.overflow_queue.is_some() => Disposition::Route {
            queue: policy.overflow_queue.clone().unwrap_or_default(),
            reason: message.clone(),
        },
        Failure::Permanent { code, message } => Disposition::DeadLetter {
            code: *code,
            message: message.clone(),
        },
        Failure::Transient { code, message } => {
            // Counted when it started: this attempt is already in `counted`.
            let counted = held.map_or(retries + 1, |h| u32::try_from(h.counted).unwrap_or(0));
            if counted >= policy.max_attempts {
                Disposition::DeadLetter {
                    code: ErrorCode::RetriesExhausted,
                    message: format!(
                        "gave up after {counted} attempts; last error [{code}] {message}"
                    ),
                }
            } else {
                retry(*code, message, false)
            }
        }
        Failure::Outage { code, message } => {
            let waited = held
                .and_then(|h| h.outage_since)
                .and_then(|since| (now - since).to_std().ok())
                .unwrap_or_default();
            if waited > policy.outage_budget {
                Disposition::DeadLetter {
                    code: *code,
                    message: format!(
                        "a dependency was down for {} s, over worker.outage_budget_s ({} s): {message}",
                        waited.as_secs(),
                        policy.outage_budget.as_secs()
                    ),
                }
            } else {
                retry(*code, message, true)
            }
        }
    }
}

/// The broker's part: republish to a retry queue or the dead-letter queue (keeping the
/// message's headers, the trace context among them). The caller acks afterwards.
pub async fn send(
    broker: &impl Broker,
    topology: &Topology,
    m: &Incoming,
    d: &Disposition,
) -> Result<(), QueueError> {
    match d {
        Disposition::Ack => Ok(()),
        Disposition::Retry {
            next, delay, code, ..
        } => {
            let props = m.forward([
                (RETRIES_HEADER, AMQPValue::LongUInt(*next)),
                (
                    ERROR_CODE_HEADER,
                    AMQPValue::LongString(code.as_str().into()),
                ),
            ]);
            match topology.retry_queue(*delay) {
                Some((queue, _)) => broker.publish(&queue, &m.body, props).await,
                // No retry queues (a topology without levels): straight back to the jobs queue.
                None => broker.publish(&topology.jobs, &m.body, props).await,
            }
        }
        Disposition::DeadLetter { code, message } => {
            let props = m.forward([
                (
                    ERROR_CODE_HEADER,
                    AMQPValue::LongString(code.as_str().into()),
                ),
                (
                    ERROR_MESSAGE_HEADER,
                    AMQPValue::LongString(message.as_str().into()),
                ),
            ]);
            broker.publish(&topology.dead_letter, &m.body, props).await
        }
        Disposition::Route { queue, .. } => {
            broker.declare_quorum(queue).await?;
            broker.publish(queue, &m.body, m.forward([])).await
        }
    }
}

/// What the database said about the job: whether the message should still go on (to a retry
/// or dead-letter queue), and the job's state.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Recorded {
    send: bool,
    status: Option<JobStatus>,
}

/// The database's part, guarded by the attempt and its owner: a job this attempt no longer
/// owns is left alone, and its message is acked without being republished.
async fn record(
    db: &Db,
    owner: &str,
    m: &Incoming,
    held: Option<&Held>,
    d: &Disposition,
) -> Result<Recorded, DbError> {
    let skip = Recorded {
        send: false,
        status: None,
    };
    match (d, held) {
        (Disposition::Ack, Some(h)) => {
            let owned = db
                .finish(h.id, h.attempt, owner, &JobEnd::Canceled, &[])
                .await?;
            Ok(Recorded {
                send: false,
                status: owned.then_some(JobStatus::Canceled),
            })
        }
        (Disposition::Ack, None) => Ok(skip),
        (Disposition::Retry { .. } | Disposition::Route { .. }, Some(h)) => {
            // A route to larger devices gives the attempt back, as an outage does.
            let refund = matches!(
                d,
                Disposition::Route { .. } | Disposition::Retry { outage: true, .. }
            );
            Ok(match db.requeue(h.id, h.attempt, owner, refund).await? {
                Requeued::Queued { .. } => Recorded {
                    send: true,
                    status: Some(JobStatus::Queued),
                },
                Requeued::Canceled => Recorded {
                    send: false,
                    status: Some(JobStatus::Canceled),
                },
                Requeued::NotOwner => skip,
            })
        }
        (Disposition::Retry { .. } | Disposition::Route { .. }, None) => Ok(Recorded {
            send: true,
            status: None,
        }),
        (Disposition::DeadLetter { code, message }, Some(h)) => {
            let end = JobEnd::Failed {
                code: *code,
                message: message.clone(),
            };
            let owned = db.finish(h.id, h.attempt, owner, &end, &[]).await?;
            Ok(Recorded {
                send: owned,
                status: owned.then_some(JobStatus::Failed),
            })
        }
        (Disposition::DeadLetter { code, message }, None) => {
            // Before an attempt started: the message names the job, if it is readable at all;
            // only a queued job is failed (a running one belongs to a live attempt).
            let id = match m.message() {
                Ok(msg) => Some(msg.job_id),
                Err(e) => e.job_id(),
            };
            let failed = match id {
                Some(id) => db.fail_unstarted(id, *code, message).await?,
                None => false,
            };
            Ok(Recorded {
                // An unreadable message naming no job is still dead-lettered for inspection.
                send: failed || id.is_none(),
                status: failed.then_some(JobStatus::Failed),
            })
        }
    }
}

impl Worker {
    /// Takes a failed message to its outcome and acks it; returns it to the queue after a pause
    /// if the outcome cannot be recorded.
    pub(crate) async fn dispose(
        &self,
        broker: &impl Broker,
        m: &Incoming,
        held: Option<Held>,
        failure: Failure,
    ) {
        let retries = m.retries();
        let d = plan(
            &failure,
            held.as_ref(),
            retries,
            &self.retry_policy(),
            Utc::now(),
        );
        let done = async {
            let recorded = record(&self.db, &self.id, m, held.as_ref(), &d)
                .await
                .map_err(|e| e.to_string())?;
            if recorded.send {
                send(broker, &self.topology, m, &d)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok::<_, String>(recorded)
        }
        .await;
        match done {
            Ok(recorded) => {
                self.count_disposition(held.map(|h| h.id), &d, recorded);
                if let Err(e) = broker.ack(m).await {
                    // The channel is gone: the broker redelivers, and the job's state says
                    // what to do with it then.
                    tracing::warn!(error = %e, "ack failed");
                }
            }
            Err(e) => {
                let pause = backoff(
                    retries,
                    self.config.worker.retry_base,
                    self.config.worker.retry_max,
                );
                tracing::warn!(error = %e, ?pause, "could not record the failure; returning the message");
                tokio::time::sleep(pause).await;
                let _ = broker.requeue(m).await;
            }
        }
    }

    pub(crate) fn retry_policy(&self) -> RetryPolicy {
        let w = &self.config.worker;
        RetryPolicy {
            max_attempts: w.max_attempts,
            base: w.retry_base,
            max: w.retry_max,
            outage_budget: w.outage_budget,
            overflow_queue: w.overflow_queue.clone(),
        }
    }

    fn count_disposition(&self, job: Option<JobId>, d: &Disposition, recorded: Recorded) {
        let engine = self.engine().as_str();
        let m = &self.metrics;
        match d {
            _ if !recorded.send && recorded.status.is_none() && job.is_some() => {
                tracing::info!(?job, "another attempt owns the job; its message is acked");
            }
            Disposition::Ack => {
                tracing::info!(?job, "canceled while running");
            }
            Disposition::Retry {
                next,
                delay,
                code,
                message,
                outage,
            } => {
                m.job_retries.with_label_values(&[code.as_str()]).inc();
                tracing::warn!(?job, %code, %message, retry = next, delay_ms = delay.as_millis() as u64,
                    outage, "retrying");
            }
            Disposition::DeadLetter { code, message } => {
                tracing::warn!(?job, %code, %message, "job failed; message dead-lettered");
            }
            Disposition::Route { queue, reason } => {
                tracing::info!(?job, %queue, %reason, "job routed to a queue for larger devices");
            }
        }
        if let Some(s @ (JobStatus::Failed | JobStatus::Canceled)) = recorded.status {
            let code = match d {
                Disposition::DeadLetter { code, .. } => code.as_str(),
                _ => ErrorCode::Canceled.as_str(),
            };
            m.jobs_finished
                .with_label_values(&[s.as_str(), code, engine])
                .inc();
        }
    }
}

#[cfg(test)]
mod tests;
