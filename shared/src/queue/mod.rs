//! RabbitMQ: the topology (a durable quorum jobs queue, retry queues of fixed delays that
//! dead-letter their messages back to it, and a dead-letter queue), a publisher with mandatory,
//! confirmed publishes, and consumers.

pub mod policy;
mod publisher;

use std::time::Duration;

use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};

use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, Consumer};

use orfeas_vocab::Engine;

pub use publisher::Publisher;

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
