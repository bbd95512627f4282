//! RabbitMQ: the topology (a durable quorum jobs queue, retry queues of fixed delays that
//! dead-letter their messages back to it, and a dead-letter queue), a publisher with mandatory,
//! confirmed publishes, and consumers.

pub mod policy;

use std::time::Duration;

use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};

use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, Consumer};
use tokio::sync::Mutex;

use orfeas_vocab::{Engine, JobMessage};

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue unavailable: {0}")]
    Unavailable(#[from] lapin::Error),
    #[error("the broker refused the message (nack)")]
    Nacked,
    #[error("no queue `{0}` took the message (returned unroutable)")]
    Unroutable(String),
    #[error("the broker did not answer within {0:?}")]
    Timeout(Duration),
}

/// Header carrying how many transient failures a job's message has seen.
pub const RETRIES_HEADER: &str = "x-orfeas-retries";
/// Headers on dead-lettered messages.
pub const ERROR_CODE_HEADER: &str = "x-orfeas-error-code";
pub const ERROR_MESSAGE_HEADER: &str = "x-orfeas-error-message";

/// Queue names derived from the configured jobs queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub jobs: String,
    pub dead_letter: String,
    /// The delays of the retry queues, shortest first. Each retry queue holds its messages for
    /// one fixed TTL and then dead-letters them back to `jobs`: one queue per delay, so a short
    /// retry never waits behind a long one (expiry happens at a queue's head only).
    retry_levels: Vec<Duration>,
}

impl Topology {
    /// The queues of one engine's jobs: `base` itself for `inflate` (the original single queue),
    /// `base.<engine>` for the others.
    pub fn for_engine(base: &str, engine: Engine) -> Self {
        match engine {
            Engine::Inflate => Topology::new(base),
            other => Topology::new(&format!("{base}.{other}")),
        }
    }

    pub fn new(jobs: &str) -> Self {
        Topology {
            jobs: jobs.to_owned(),
            dead_letter: format!("{jobs}.dlq"),
            retry_levels: Vec::new(),
        }
    }

    /// With retry queues for the backoff `base·2ⁿ` capped at `max`: delays `base, 2·base, …,
    /// max`.
    pub fn with_retry_levels(mut self, base: Duration, max: Duration) -> Self {
        let base = base.max(Duration::from_millis(1));
        let mut levels = Vec::new();
        let mut d = base;
        while d < max {
            levels.push(d);
            d *= 2;
        }
        levels.push(max.max(base));
        self.retry_levels = levels;
        self
    }

    /// The same layout (retry levels) for another engine's queues; `self` is the `inflate`
    /// topology.
    pub fn of_engine(&self, engine: Engine) -> Topology {
        Topology {
            retry_levels: self.retry_levels.clone(),
            ..Topology::for_engine(&self.jobs, engine)
        }
    }

    fn retry_name(&self, level: Duration) -> String {
        format!("{}.retry.{}ms", self.jobs, level.as_millis())
    }

    /// The retry queue for a delay, and the delay it gives: the shortest level at least as long
    /// (the longest level when the delay exceeds them all). `None` without retry levels.
    pub fn retry_queue(&self, delay: Duration) -> Option<(String, Duration)> {
        let level = self
            .retry_levels
            .iter()
            .copied()
            .find(|&l| l >= delay)
            .or_else(|| self.retry_levels.last().copied())?;
        Some((self.retry_name(level), level))
    }

    /// Declares the jobs and dead-letter queues and every retry queue (idempotent).
    pub async fn declare(&self, channel: &Channel) -> Result<(), QueueError> {
        declare_quorum(channel, &self.jobs).await?;
        declare_quorum(channel, &self.dead_letter).await?;
        for &level in &self.retry_levels {
            // Quorum queues (durable, replicated) with one TTL each; at-least-once
            // dead-lettering back to the jobs queue, so an expiry during a broker restart is not
            // lost (it needs overflow = reject-publish).
            let mut args = FieldTable::default();
            args.insert(
                "x-queue-type".into(),
                AMQPValue::LongString("quorum".into()),
            );
            args.insert(
                "x-message-ttl".into(),
                AMQPValue::LongLongInt(i64::try_from(level.as_millis()).unwrap_or(i64::MAX)),
            );
            args.insert(
                "x-dead-letter-exchange".into(),
                AMQPValue::LongString("".into()),
            );
            args.insert(
                "x-dead-letter-routing-key".into(),
                AMQPValue::LongString(self.jobs.as_str().into()),
            );
            args.insert(
                "x-dead-letter-strategy".into(),
                AMQPValue::LongString("at-least-once".into()),
            );
            args.insert(
                "x-overflow".into(),
                AMQPValue::LongString("reject-publish".into()),
            );
            channel
                .queue_declare(self.retry_name(level).as_str().into(), durable(), args)
                .await?;
        }
        Ok(())
    }

    /// Messages ready in the jobs queue.
    pub async fn depth(&self, channel: &Channel) -> Result<u32, QueueError> {
        ready_messages(channel, &self.jobs).await
    }

    /// Every queue name: jobs, dead-letter, retry levels.
    pub fn queues(&self) -> Vec<String> {
        let mut out = vec![self.jobs.clone(), self.dead_letter.clone()];
        out.extend(self.retry_levels.iter().map(|&l| self.retry_name(l)));
        out
    }
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

/// Declares a durable quorum queue (idempotent): the jobs, dead-letter and overflow queues.
pub async fn declare_quorum(channel: &Channel, queue: &str) -> Result<(), QueueError> {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    channel.queue_declare(queue.into(), durable(), args).await?;
    Ok(())
}

/// Messages ready (not delivered) in a queue, by a passive declare.
pub async fn ready_messages(channel: &Channel, queue: &str) -> Result<u32, QueueError> {
    let q = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok(q.message_count())
}

pub async fn connect(url: &str) -> Result<Connection, QueueError> {
    let props = ConnectionProperties::default()
        .with_connection_name(format!("orfeas-{}", std::process::id()).into());
    Ok(Connection::connect(url, props).await?)
}

/// Builds message properties: persistent, JSON, with headers.
pub fn properties(priority: u8, headers: FieldTable) -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_priority(priority)
        .with_headers(headers)
}

/// Publishes to a queue and waits for the broker's confirm. The publish is mandatory: a message
/// no queue takes (the queue is missing) comes back and is an error, not a silent drop.
pub async fn publish_confirmed(
    channel: &Channel,
    queue: &str,
    payload: &[u8],
    props: BasicProperties,
) -> Result<(), QueueError> {
    let confirm = channel
        .basic_publish(
            ShortString::from(""),
            queue.into(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            payload,
            props,
        )
        .await?
        .await?;
    match confirm {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(_)) => Err(QueueError::Unroutable(queue.to_owned())),
        Confirmation::Nack(_) | Confirmation::NotRequested => Err(QueueError::Nacked),
    }
}

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
    pub async fn publish_job(
        &self,
        msg: &JobMessage,
        trace: &std::collections::HashMap<String, String>,
    ) -> Result<(), QueueError> {
        let payload = msg.encode();
        let mut headers = FieldTable::default();
        for (k, v) in trace {
            headers.insert(k.as_str().into(), AMQPValue::LongString(v.as_str().into()));
        }
        let attempt = async {
            let ch = {
                let mut state = self.state.lock().await;
                self.channel(&mut state).await?
            };
            let queue = self.topology.of_engine(msg.engine).jobs;
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
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(r) => r,
            Err(_) => {
                *self.state.lock().await = None;
                Err(QueueError::Timeout(self.timeout))
            }
        }
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

/// Opens a consumer with manual acks and a prefetch bound.
pub async fn consume(
    channel: &Channel,
    queue: &str,
    tag: &str,
    prefetch: u16,
) -> Result<Consumer, QueueError> {
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    Ok(channel
        .basic_consume(
            queue.into(),
            tag.into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?)
}

/// Reads an integer header.
pub fn header_u32(props: &BasicProperties, name: &str) -> u32 {
    props
        .headers()
        .as_ref()
        .and_then(|h| {
            h.inner()
                .iter()
                .find(|(k, _)| k.as_str() == name)
                .map(|(_, v)| v)
        })
        .and_then(|v| match v {
            AMQPValue::LongUInt(n) => Some(*n),
            AMQPValue::LongInt(n) => u32::try_from(*n).ok(),
            AMQPValue::LongLongInt(n) => u32::try_from(*n).ok(),
            AMQPValue::ShortUInt(n) => Some(u32::from(*n)),
            _ => None,
        })
        .unwrap_or(0)
}

/// The trace-context headers (`traceparent`, `tracestate`) of a message.
pub fn trace_headers(props: &BasicProperties) -> std::collections::HashMap<String, String> {
    props
        .headers()
        .as_ref()
        .map(|h| {
            h.inner()
                .iter()
                .filter(|(k, _)| matches!(k.as_str(), "traceparent" | "tracestate"))
                .filter_map(|(k, v)| match v {
                    AMQPValue::LongString(s) => Some((k.as_str().to_owned(), s.to_string())),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_levels_double_up_to_the_cap_and_round_delays_up() {
        let t = Topology::new("q")
            .with_retry_levels(Duration::from_millis(100), Duration::from_secs(1));
        let levels: Vec<u128> = t.retry_levels.iter().map(|d| d.as_millis()).collect();
        assert_eq!(levels, [100, 200, 400, 800, 1000]);
        let pick = |ms| t.retry_queue(Duration::from_millis(ms)).expect("levels");
        assert_eq!(
            pick(0),
            ("q.retry.100ms".into(), Duration::from_millis(100))
        );
        assert_eq!(pick(150).1, Duration::from_millis(200));
        assert_eq!(pick(800).1, Duration::from_millis(800));
        assert_eq!(pick(60_000).1, Duration::from_secs(1), "capped");
        assert_eq!(t.queues().len(), 7);
        assert!(Topology::new("q").retry_queue(Duration::ZERO).is_none());
        let h = t.of_engine(Engine::Hunyuan3d);
        assert_eq!(h.jobs, "q.hunyuan3d");
        assert_eq!(
            h.retry_queue(Duration::ZERO).expect("levels").0,
            "q.hunyuan3d.retry.100ms"
        );
    }
}
