//! The worker's view of RabbitMQ: the few operations batch assembly and disposition need,
//! behind a trait so both are unit-tested against an in-memory broker. [`LapinBroker`] is the
//! real one, over a confirm-mode channel.

use std::future::Future;

use lapin::options::{BasicAckOptions, BasicGetOptions, BasicNackOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};
use orfeas_shared::queue::{self, QueueError, RETRIES_HEADER};
use orfeas_vocab::{JobMessage, MessageError};

/// A message in hand: its delivery tag on the channel it came from, its body and properties.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub tag: u64,
    pub body: Vec<u8>,
    pub properties: BasicProperties,
}

impl Incoming {
    pub fn from_delivery(d: lapin::message::Delivery) -> Self {
        Incoming {
            tag: d.delivery_tag,
            body: d.data,
            properties: d.properties,
        }
    }

    /// Transient failures this message has seen (its retry header).
    pub fn retries(&self) -> u32 {
        queue::header_u32(&self.properties, RETRIES_HEADER)
    }

    pub fn priority(&self) -> u8 {
        self.properties.priority().unwrap_or(0)
    }

    pub fn message(&self) -> Result<JobMessage, MessageError> {
        JobMessage::decode(&self.body)
    }

    /// Properties to publish this message's body elsewhere (retry, dead-letter, overflow): the
    /// same headers — the trace context among them — with `extra` set on top.
    pub fn forward(
        &self,
        extra: impl IntoIterator<Item = (&'static str, AMQPValue)>,
    ) -> BasicProperties {
        let mut headers: FieldTable = self.properties.headers().clone().unwrap_or_default();
        for (k, v) in extra {
            headers.insert(k.into(), v);
        }
        queue::properties(self.priority(), headers)
    }
}

/// What the worker does on its channel.
pub trait Broker: Sync {
    /// One more message from `queue`, if one is ready (`basic.get` with manual ack).
    fn pull(
        &self,
        queue: &str,
    ) -> impl Future<Output = Result<Option<Incoming>, QueueError>> + Send;
    /// Publishes and waits for the broker's confirm.
    fn publish(
        &self,
        queue: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
    /// Declares a durable quorum queue (idempotent).
    fn declare_quorum(&self, queue: &str) -> impl Future<Output = Result<(), QueueError>> + Send;
    /// Messages ready in `queue`.
    fn depth(&self, queue: &str) -> impl Future<Output = Result<u32, QueueError>> + Send;
    fn ack(&self, m: &Incoming) -> impl Future<Output = Result<(), QueueError>> + Send;
    /// Returns the message to its queue.
    fn requeue(&self, m: &Incoming) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// The broker over a lapin channel in confirm mode.
#[derive(Debug, Clone)]
pub struct LapinBroker {
    channel: Channel,
}

impl LapinBroker {
    pub fn new(channel: Channel) -> Self {
        LapinBroker { channel }
    }

    /// Whether the client still counts the channel as open (a stalled one still is).
    pub fn connected(&self) -> bool {
        self.channel.status().connected()
    }
}

impl Broker for LapinBroker {
    async fn pull(&self, queue: &str) -> Result<Option<Incoming>, QueueError> {
        let got = self
            .channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: false })
            .await?;
        Ok(got.map(|m| Incoming::from_delivery(m.delivery)))
    }

    async fn publish(
        &self,
        queue: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<(), QueueError> {
        queue::publish_confirmed(&self.channel, queue, body, properties).await
    }

    async fn declare_quorum(&self, queue: &str) -> Result<(), QueueError> {
        queue::declare_quorum(&self.channel, queue).await
    }

    async fn depth(&self, queue: &str) -> Result<u32, QueueError> {
        queue::ready_messages(&self.channel, queue).await
    }

    async fn ack(&self, m: &Incoming) -> Result<(), QueueError> {
        Ok(self
            .channel
            .basic_ack(m.tag, BasicAckOptions::default())
            .await?)
    }

    async fn requeue(&self, m: &Incoming) -> Result<(), QueueError> {
        Ok(self
            .channel
            .basic_nack(
                m.tag,
                BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                },
            )
            .await?)
    }
}

/// An in-memory broker for unit tests: queues of bodies, and a log of what was done.
#[cfg(test)]
pub mod fake {
    use std::collections::{HashMap, VecDeque};
    use std::sync::Mutex;

    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    pub enum Event {
        Ack(u64),
        Requeue(u64),
        Publish {
            queue: String,
            body: Vec<u8>,
            properties: Box<BasicProperties>,
        },
    }

    #[derive(Debug, Default)]
    pub struct FakeBroker {
        queues: Mutex<HashMap<String, VecDeque<Incoming>>>,
        events: Mutex<Vec<Event>>,
        next_tag: Mutex<u64>,
        /// `pull` fails (a lost channel) once this many messages were pulled.
        fail_pull_after: Option<usize>,
        pulled: Mutex<usize>,
    }

    impl FakeBroker {
        /// A message with this body, as the broker would hand it out (a fresh tag).
        pub fn message(&self, body: Vec<u8>) -> Incoming {
            let mut tag = self.next_tag.lock().expect("lock");
            *tag += 1;
            Incoming {
                tag: *tag,
                body,
                properties: BasicProperties::default(),
            }
        }

        /// A broker whose `pull` fails (a lost channel) after `n` messages were pulled.
        pub fn failing_after(n: usize) -> Self {
            FakeBroker {
                fail_pull_after: Some(n),
                ..FakeBroker::default()
            }
        }

        pub fn push(&self, queue: &str, m: Incoming) {
            self.queues
                .lock()
                .expect("lock")
                .entry(queue.to_owned())
                .or_default()
                .push_back(m);
        }

        pub fn events(&self) -> Vec<Event> {
            self.events.lock().expect("lock").clone()
        }

        pub fn left_in(&self, queue: &str) -> usize {
            self.queues
                .lock()
                .expect("lock")
                .get(queue)
                .map_or(0, VecDeque::len)
        }
    }

    impl Broker for FakeBroker {
        async fn pull(&self, queue: &str) -> Result<Option<Incoming>, QueueError> {
            let mut pulled = self.pulled.lock().expect("lock");
            if self.fail_pull_after.is_some_and(|n| *pulled >= n) {
                return Err(QueueError::Nacked);
            }
            let m = self
                .queues
                .lock()
                .expect("lock")
                .get_mut(queue)
                .and_then(VecDeque::pop_front);
            if m.is_some() {
                *pulled += 1;
            }
            Ok(m)
        }

        async fn publish(
            &self,
            queue: &str,
            body: &[u8],
            properties: BasicProperties,
        ) -> Result<(), QueueError> {
            self.events.lock().expect("lock").push(Event::Publish {
                queue: queue.to_owned(),
                body: body.to_vec(),
                properties: Box::new(properties),
            });
            Ok(())
        }

        async fn declare_quorum(&self, _queue: &str) -> Result<(), QueueError> {
            Ok(())
        }

        async fn depth(&self, queue: &str) -> Result<u32, QueueError> {
            Ok(self.left_in(queue) as u32)
        }

        async fn ack(&self, m: &Incoming) -> Result<(), QueueError> {
            self.events.lock().expect("lock").push(Event::Ack(m.tag));
            Ok(())
        }

        async fn requeue(&self, m: &Incoming) -> Result<(), QueueError> {
            self.events
                .lock()
                .expect("lock")
                .push(Event::Requeue(m.tag));
            Ok(())
        }
    }
}
