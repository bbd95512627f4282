//! The API's publisher: job messages onto their engine's queue with publisher confirms, each in
//! a `publish` span whose trace context travels in the message headers.

use std::collections::HashMap;
use std::time::Duration;

use lapin::options::ConfirmSelectOptions;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection};
use orfeas_vocab::{Engine, JobMessage};
use tokio::sync::Mutex;
use tracing::field::Empty;
use tracing::{Instrument, Span};

use crate::telemetry;

use super::{
    ERROR_CODE_HEADER, ERROR_MESSAGE_HEADER, QueueError, Topology, connect, properties,
    publish_confirmed, ready_messages,
};

/// The API's publisher: one confirm-mode channel, reopened on demand after a broker restart.
#[derive(Debug)]
pub struct Publisher {
    url: String,
    /// The `inflate` topology; other engines' queues derive from its name.
    topology: Topology,
    state: Mutex<Option<(Connection, Channel)>>,
    timeout: Duration,
}

impl Publisher {
    pub fn new(url: &str, topology: Topology) -> Self {
        Publisher {
            url: url.to_owned(),
            topology,
            state: Mutex::new(None),
            timeout: Duration::from_secs(5),
        }
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    async fn channel(
        &self,
        state: &mut Option<(Connection, Channel)>,
    ) -> Result<Channel, QueueError> {
        if let Some((conn, ch)) = state.as_ref()
            && conn.status().connected()
            && ch.status().connected()
        {
            return Ok(ch.clone());
        }
        *state = None;
        let conn = connect(&self.url).await?;
        let ch = conn.create_channel().await?;
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        for engine in Engine::ALL {
            self.topology.of_engine(engine).declare(&ch).await?;
        }
        *state = Some((conn, ch.clone()));
        Ok(ch)
    }

    /// Publishes a job message persistently and waits for the confirm (bounded by a timeout).
    /// The lock is held only to fetch or reopen the channel, so concurrent requests publish on
    /// the same channel and wait for their confirms in parallel.
    ///
    /// `trace` is the trace context stored with the job (its submitting request's). The publish
    /// runs in a `publish` span under it, and the message carries the `publish` span's context,
    /// so the worker's `job` span hangs under this publish, whether the request itself or the
    /// outbox relay (later, maybe on another replica) sends it.
    pub async fn publish_job(
        &self,
        msg: &JobMessage,
        trace: &HashMap<String, String>,
    ) -> Result<(), QueueError> {
        let queue = self.topology.of_engine(msg.engine).jobs;
        let span = publish_span(&queue, msg, trace);
        let mut context = telemetry::inject(&span);
        if context.is_empty() {
            // This process exports no spans: pass the stored context on, so a worker that
            // exports still joins the request's trace.
            context.clone_from(trace);
        }
        let payload = msg.encode();
        let mut headers = FieldTable::default();
        for (k, v) in &context {
            headers.insert(k.as_str().into(), AMQPValue::LongString(v.as_str().into()));
        }
        let attempt = async {
            let ch = {
                let mut state = self.state.lock().await;
                self.channel(&mut state).await?
            };
            let r =
                publish_confirmed(&ch, &queue, &payload, properties(msg.priority, headers)).await;
            if r.is_err() {
                let mut state = self.state.lock().await;
                if state.as_ref().is_some_and(|(_, c)| c.id() == ch.id()) {
                    *state = None;
                }
            }
            r
        };
        let r = match tokio::time::timeout(self.timeout, attempt)
            .instrument(span.clone())
            .await
        {
            Ok(r) => r,
            Err(_) => {
                *self.state.lock().await = None;
                Err(QueueError::Timeout(self.timeout))
            }
        };
        if let Err(e) = &r {
            span.record("otel.status_code", "error");
            span.record("error.type", error_type(e));
        }
        r
    }

    /// Publishes a job's message to its engine's dead-letter queue with the reason in its
    /// headers (the reaper's dead letters, for jobs whose worker was lost).
    pub async fn publish_dead_letter(
        &self,
        msg: &JobMessage,
        code: &str,
        message: &str,
    ) -> Result<(), QueueError> {
        let mut headers = FieldTable::default();
        headers.insert(ERROR_CODE_HEADER.into(), AMQPValue::LongString(code.into()));
        headers.insert(
            ERROR_MESSAGE_HEADER.into(),
            AMQPValue::LongString(message.into()),
        );
        let queue = self.topology.of_engine(msg.engine).dead_letter;
        let ch = {
            let mut state = self.state.lock().await;
            tokio::time::timeout(self.timeout, self.channel(&mut state))
                .await
                .map_err(|_| QueueError::Timeout(self.timeout))??
        };
        tokio::time::timeout(
            self.timeout,
            publish_confirmed(
                &ch,
                &queue,
                &msg.encode(),
                properties(msg.priority, headers),
            ),
        )
        .await
        .map_err(|_| QueueError::Timeout(self.timeout))?
    }

    /// Messages ready in every engine's jobs, retry and dead-letter queues (the operator's queue
    /// depth; passive declares on the publisher's channel).
    pub async fn depths(&self) -> Result<Vec<(String, u32)>, QueueError> {
        let ch = {
            let mut state = self.state.lock().await;
            tokio::time::timeout(self.timeout, self.channel(&mut state))
                .await
                .map_err(|_| QueueError::Timeout(self.timeout))??
        };
        let mut out = Vec::new();
        for engine in Engine::ALL {
            let topology = self.topology.of_engine(engine);
            for queue in topology.queues() {
                let n = tokio::time::timeout(self.timeout, ready_messages(&ch, &queue))
                    .await
                    .map_err(|_| QueueError::Timeout(self.timeout))??;
                out.push((queue, n));
            }
        }
        Ok(out)
    }

    /// Whether the broker answers (used by readiness).
    pub async fn ping(&self) -> Result<(), QueueError> {
        let mut state = self.state.lock().await;
        let r = tokio::time::timeout(self.timeout, self.channel(&mut state)).await;
        match r {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                *state = None;
                Err(e)
            }
            Err(_) => {
                *state = None;
                Err(QueueError::Timeout(self.timeout))
            }
        }
    }
}

/// The span of one job publish, named and attributed after OpenTelemetry's messaging
/// conventions. Its parent is the job's stored trace context rather than whatever span is
/// current, so the relay's republish lands in the same trace as the request's own attempt.
fn publish_span(queue: &str, msg: &JobMessage, parent: &HashMap<String, String>) -> Span {
    let span = tracing::info_span!(
        parent: None,
        "publish",
        otel.kind = "producer",
        otel.status_code = Empty,
        messaging.system = "rabbitmq",
        messaging.operation.type = "send",
        messaging.operation.name = "publish",
        // The default exchange routes by queue name: the queue is the destination.
        messaging.destination.name = queue,
        messaging.rabbitmq.destination.routing_key = queue,
        job.id = %msg.job_id,
        engine = msg.engine.as_str(),
        error.type = Empty,
    );
    telemetry::extract_into(&span, parent);
    span
}

/// `error.type` of a failed publish: a short, low-cardinality reason.
fn error_type(e: &QueueError) -> &'static str {
    match e {
        QueueError::Unavailable(_) => "unavailable",
        QueueError::Nacked => "nacked",
        QueueError::Unroutable(_) => "unroutable",
        QueueError::Timeout(_) => "timeout",
    }
}
