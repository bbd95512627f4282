//! RabbitMQ: the topology (a durable quorum jobs queue, a retry queue that delays messages and
//! dead-letters them back, and a dead-letter queue), a publisher with confirms, and consumers.

use std::time::Duration;

use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};
use tokio::sync::Mutex;

use orfeas_vocab::{Engine, JobMessage};

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue unavailable: {0}")]
    Unavailable(#[from] lapin::Error),
    #[error("the broker refused the message (nack)")]
    Nacked,
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
    pub retry: String,
    pub dead_letter: String,
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
            retry: format!("{jobs}.retry"),
            dead_letter: format!("{jobs}.dlq"),
        }
    }

    /// Declares the three queues (idempotent).
    pub async fn declare(&self, channel: &Channel) -> Result<(), QueueError> {
        declare_quorum(channel, &self.jobs).await?;
        declare_quorum(channel, &self.dead_letter).await?;
        // Classic queue: per-message TTL delays a retry, expiry dead-letters it back to `jobs`.
        let mut retry = FieldTable::default();
        retry.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString("".into()),
        );
        retry.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(self.jobs.as_str().into()),
        );
        channel
            .queue_declare(self.retry.as_str().into(), durable(), retry)
            .await?;
        Ok(())
    }

    /// Messages ready in the jobs queue.
    pub async fn depth(&self, channel: &Channel) -> Result<u32, QueueError> {
        ready_messages(channel, &self.jobs).await
    }

    /// The three queue names.
    pub fn queues(&self) -> [&str; 3] {
        [&self.jobs, &self.retry, &self.dead_letter]
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

/// Publishes to a queue and waits for the broker's confirm.
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
            BasicPublishOptions::default(),
            payload,
            props,
        )
        .await?
        .await?;
    if confirm.is_ack() {
        Ok(())
    } else {
        Err(QueueError::Nacked)
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
            Topology::for_engine(&self.topology.jobs, engine)
                .declare(&ch)
                .await?;
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
            let queue = Topology::for_engine(&self.topology.jobs, msg.engine).jobs;
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
            let topology = Topology::for_engine(&self.topology.jobs, engine);
            for queue in topology.queues() {
                let n = tokio::time::timeout(self.timeout, ready_messages(&ch, queue))
                    .await
                    .map_err(|_| QueueError::Timeout(self.timeout))??;
                out.push((queue.to_owned(), n));
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
