//! What happens to a message whose job did not succeed: the job's state is recorded in
//! PostgreSQL (canceled, failed, or back to queued), the message is republished to the retry or
//! dead-letter queue with the reason in its headers, and only then is it acked. If any of that is
//! impossible (database or broker down), the message is returned to its queue after a pause.

use std::time::Duration;

use lapin::types::AMQPValue;
use orfeas_shared::db::{Db, DbError, JobEnd};
use orfeas_shared::queue::{
    ERROR_CODE_HEADER, ERROR_MESSAGE_HEADER, QueueError, RETRIES_HEADER, Topology,
};
use orfeas_vocab::{ErrorCode, JobId, JobStatus};

use crate::broker::{Broker, Incoming};
use crate::failure::{Failure, backoff};
use crate::startup::Worker;

/// The retry rules of this worker (`worker.max_attempts`, `retry_base_ms`, `retry_max_ms`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

/// What is done with the message.
#[derive(Debug, Clone, PartialEq)]
pub enum Disposition {
    /// Nothing to send: ack (a canceled job).
    Ack,
    /// Back through the retry queue after `delay`, carrying retry count `next`.
    Retry {
        next: u32,
        delay: Duration,
        code: ErrorCode,
        message: String,
    },
    /// To the dead-letter queue; the job fails with `code`.
    DeadLetter { code: ErrorCode, message: String },
}

/// Decides from the failure and the retries the message has seen.
pub fn plan(failure: &Failure, retries: u32, policy: &RetryPolicy) -> Disposition {
    match failure {
        Failure::Canceled => Disposition::Ack,
        Failure::Malformed(e) => Disposition::DeadLetter {
            code: ErrorCode::MalformedMessage,
            message: e.to_string(),
        },
        Failure::Permanent { code, message } => Disposition::DeadLetter {
            code: *code,
            message: message.clone(),
        },
        Failure::Transient { code, message } => {
            let next = retries + 1;
            if next >= policy.max_attempts {
                Disposition::DeadLetter {
                    code: ErrorCode::RetriesExhausted,
                    message: format!(
                        "gave up after {next} attempts; last error [{code}] {message}"
                    ),
                }
            } else {
                Disposition::Retry {
                    next,
                    delay: backoff(retries, policy.base, policy.max),
                    code: *code,
                    message: message.clone(),
                }
            }
        }
    }
}

/// The broker's part: republish to the retry or dead-letter queue (keeping the message's
/// headers, the trace context among them). The caller acks afterwards.
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
            let props = m
                .forward([
                    (RETRIES_HEADER, AMQPValue::LongUInt(*next)),
                    (
                        ERROR_CODE_HEADER,
                        AMQPValue::LongString(code.as_str().into()),
                    ),
                ])
                .with_expiration(delay.as_millis().to_string().into());
            broker.publish(&topology.retry, &m.body, props).await
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
    }
}

/// The database's part. `job`: the attempt this worker started, if it got that far.
async fn record(
    db: &Db,
    m: &Incoming,
    job: Option<(JobId, i32)>,
    d: &Disposition,
) -> Result<Option<JobStatus>, DbError> {
    match (d, job) {
        (Disposition::Ack, Some((id, attempt))) => {
            db.finish(id, attempt, &JobEnd::Canceled, &[]).await?;
            Ok(Some(JobStatus::Canceled))
        }
        (Disposition::Ack, None) => Ok(None),
        (Disposition::Retry { .. }, Some((id, attempt))) => {
            db.requeue(id, attempt).await?;
            Ok(Some(JobStatus::Queued))
        }
        (Disposition::Retry { .. }, None) => Ok(None),
        (Disposition::DeadLetter { code, message }, Some((id, attempt))) => {
            let end = JobEnd::Failed {
                code: *code,
                message: message.clone(),
            };
            if !db.finish(id, attempt, &end, &[]).await? {
                // Not running under this attempt (e.g. requeued): fail it from wherever it is.
                db.fail_unstarted(id, *code, message).await?;
            }
            Ok(Some(JobStatus::Failed))
        }
        (Disposition::DeadLetter { code, message }, None) => {
            // Before an attempt started: the message names the job, if it is readable at all.
            let id = match m.message() {
                Ok(msg) => Some(msg.job_id),
                Err(e) => e.job_id(),
            };
            if let Some(id) = id {
                db.fail_unstarted(id, *code, message).await?;
            }
            Ok(id.map(|_| JobStatus::Failed))
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
        job: Option<(JobId, i32)>,
        failure: Failure,
    ) {
        let retries = m.retries();
        let d = plan(&failure, retries, &self.retry_policy());
        let done = async {
            let status = record(&self.db, m, job, &d)
                .await
                .map_err(|e| e.to_string())?;
            send(broker, &self.topology, m, &d)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(status)
        }
        .await;
        match done {
            Ok(status) => {
                self.count_disposition(job, &d, status);
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
        }
    }

    fn count_disposition(
        &self,
        job: Option<(JobId, i32)>,
        d: &Disposition,
        status: Option<JobStatus>,
    ) {
        let engine = self.engine().as_str();
        let m = &self.metrics;
        match d {
            Disposition::Ack => {
                if let Some((id, _)) = job {
                    tracing::info!(job = %id, "canceled while running");
                }
            }
            Disposition::Retry {
                next,
                delay,
                code,
                message,
            } => {
                m.job_retries.with_label_values(&[code.as_str()]).inc();
                tracing::warn!(?job, %code, %message, retry = next, delay_ms = delay.as_millis() as u64, "transient failure; retrying");
            }
            Disposition::DeadLetter { code, message } => {
                tracing::warn!(?job, %code, %message, "job failed; message dead-lettered");
            }
        }
        if let Some(s @ (JobStatus::Failed | JobStatus::Canceled)) = status {
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
mod tests {
    use lapin::types::FieldTable;
    use orfeas_vocab::{Engine, JobMessage, MessageError};

    use super::*;
    use crate::broker::fake::{Event, FakeBroker};

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(100),
            max: Duration::from_millis(1_000),
        }
    }

    fn header<'a>(props: &'a lapin::BasicProperties, name: &str) -> Option<&'a AMQPValue> {
        props
            .headers()
            .as_ref()
            .and_then(|h| h.inner().iter().find(|(k, _)| k.as_str() == name))
            .map(|(_, v)| v)
    }

    #[test]
    fn permanent_malformed_and_canceled_failures() {
        let p = policy();
        let d = plan(&Failure::permanent(ErrorCode::NoForeground, "plain"), 0, &p);
        assert_eq!(
            d,
            Disposition::DeadLetter {
                code: ErrorCode::NoForeground,
                message: "plain".into()
            }
        );
        let d = plan(
            &Failure::Malformed(MessageError::Malformed("x".into())),
            0,
            &p,
        );
        assert!(matches!(
            d,
            Disposition::DeadLetter {
                code: ErrorCode::MalformedMessage,
                ..
            }
        ));
        assert_eq!(plan(&Failure::Canceled, 2, &p), Disposition::Ack);
    }

    #[test]
    fn transient_failures_retry_until_the_attempts_run_out() {
        let p = policy();
        let f = Failure::from_code(ErrorCode::StorageUnavailable, "down");
        for retries in 0..2 {
            match plan(&f, retries, &p) {
                Disposition::Retry {
                    next, delay, code, ..
                } => {
                    assert_eq!(next, retries + 1);
                    assert_eq!(code, ErrorCode::StorageUnavailable);
                    assert!(delay <= Duration::from_millis(100 << retries));
                }
                other => panic!("retry {retries}: {other:?}"),
            }
        }
        match plan(&f, 2, &p) {
            Disposition::DeadLetter { code, message } => {
                assert_eq!(code, ErrorCode::RetriesExhausted);
                assert!(message.contains("3 attempts") && message.contains("storage_unavailable"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn retries_and_dead_letters_keep_the_headers_and_add_the_reason() {
        let b = FakeBroker::default();
        let topology = Topology::for_engine("t", Engine::Inflate);
        let body = JobMessage {
            job_id: JobId::new(),
            priority: 4,
            engine: Engine::Inflate,
            octree_resolution: 128,
            num_chunks: 8000,
            steps: None,
        }
        .encode();
        let mut m = b.message(body.clone());
        let mut headers = FieldTable::default();
        headers.insert(
            "traceparent".into(),
            AMQPValue::LongString("00-abc-def-01".into()),
        );
        headers.insert(RETRIES_HEADER.into(), AMQPValue::LongUInt(1));
        m.properties = orfeas_shared::queue::properties(4, headers);
        assert_eq!(m.retries(), 1);

        let retry = plan(
            &Failure::from_code(ErrorCode::EngineFailure, "boom"),
            m.retries(),
            &policy(),
        );
        send(&b, &topology, &m, &retry).await.expect("retry");
        let dead = plan(
            &Failure::permanent(ErrorCode::CorruptImage, "bad bytes"),
            0,
            &policy(),
        );
        send(&b, &topology, &m, &dead).await.expect("dead letter");
        send(&b, &topology, &m, &Disposition::Ack)
            .await
            .expect("nothing");

        let events = b.events();
        assert_eq!(events.len(), 2, "{events:?}");
        let Event::Publish {
            queue,
            body: sent,
            properties,
        } = &events[0]
        else {
            panic!("{events:?}");
        };
        assert_eq!(queue, "t.retry");
        assert_eq!(sent, &body);
        assert_eq!(
            header(properties, RETRIES_HEADER),
            Some(&AMQPValue::LongUInt(2))
        );
        assert_eq!(
            header(properties, ERROR_CODE_HEADER),
            Some(&AMQPValue::LongString("engine_failure".into()))
        );
        assert!(
            header(properties, "traceparent").is_some(),
            "trace context kept"
        );
        assert_eq!(properties.priority(), &Some(4));
        assert!(
            properties.expiration().is_some(),
            "the delay is the message TTL"
        );

        let Event::Publish {
            queue, properties, ..
        } = &events[1]
        else {
            panic!("{events:?}");
        };
        assert_eq!(queue, "t.dlq");
        assert_eq!(
            header(properties, ERROR_CODE_HEADER),
            Some(&AMQPValue::LongString("corrupt_image".into()))
        );
        assert_eq!(
            header(properties, ERROR_MESSAGE_HEADER),
            Some(&AMQPValue::LongString("bad bytes".into()))
        );
        assert!(header(properties, "traceparent").is_some());
    }
}
