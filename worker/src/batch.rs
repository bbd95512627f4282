//! Batch assembly: after the first message of a batch arrives and the optimizer has sized the
//! batch, the rest is pulled (`basic.get`), so the worker holds unacked messages only for the
//! batch it is about to run. Only jobs of the first one's shape join; a job of another shape goes
//! back to the queue and completes the batch (the next batch starts with it).

use std::time::Duration;

use crate::broker::{Broker, Incoming};
use crate::optimizer::JobShape;

/// How often an empty queue is polled while a batch waits for company.
const POLL: Duration = Duration::from_millis(5);

/// The messages of one batch, and the reason the channel was lost, if it was.
#[derive(Debug)]
pub struct Assembled {
    pub messages: Vec<Incoming>,
    pub lost: Option<String>,
}

/// The shape of a message's job, when the message is readable.
pub fn shape_of(m: &Incoming) -> Option<JobShape> {
    m.message().ok().map(|msg| JobShape::of_message(&msg))
}

/// Pulls messages of `shape` from `queue` until the batch has `size` jobs, the queue offers a
/// job of another shape, or `wait` has passed with the queue empty.
pub async fn assemble(
    broker: &impl Broker,
    queue: &str,
    first: Incoming,
    shape: &JobShape,
    size: usize,
    wait: Duration,
) -> Assembled {
    let mut messages = vec![first];
    let until = tokio::time::Instant::now() + wait;
    while messages.len() < size {
        match broker.pull(queue).await {
            Ok(Some(m)) if shape_of(&m).as_ref() == Some(shape) => messages.push(m),
            Ok(Some(other)) => {
                // Never mixed into this batch. A failed return means the channel is gone,
                // which returns the message too.
                let _ = broker.requeue(&other).await;
                break;
            }
            Ok(None) => {
                if tokio::time::Instant::now() >= until {
                    break;
                }
                tokio::time::sleep(POLL).await;
            }
            Err(e) => {
                return Assembled {
                    messages,
                    lost: Some(e.to_string()),
                };
            }
        }
    }
    Assembled {
        messages,
        lost: None,
    }
}

#[cfg(test)]
mod tests {
    use orfeas_vocab::{Engine, JobId, JobMessage, TextureMode};

    use super::*;
    use crate::broker::fake::{Event, FakeBroker};

    const Q: &str = "jobs";

    fn body(resolution: u32) -> Vec<u8> {
        JobMessage {
            job_id: JobId::new(),
            priority: 0,
            engine: Engine::Inflate,
            octree_resolution: resolution,
            num_chunks: 8000,
            steps: None,
            texture: TextureMode::default(),
        }
        .encode()
    }

    fn first(b: &FakeBroker, resolution: u32) -> (Incoming, JobShape) {
        let m = b.message(body(resolution));
        let shape = shape_of(&m).expect("readable");
        (m, shape)
    }

    #[tokio::test]
    async fn compatible_jobs_fill_the_batch_up_to_its_size() {
        let b = FakeBroker::default();
        for _ in 0..5 {
            b.push(Q, b.message(body(128)));
        }
        let (m, shape) = first(&b, 128);
        let got = assemble(&b, Q, m, &shape, 4, Duration::from_secs(5)).await;
        assert_eq!(got.messages.len(), 4);
        assert!(got.lost.is_none());
        assert_eq!(b.left_in(Q), 2, "only what the batch needs is taken");
        assert!(b.events().is_empty(), "nothing acked or returned yet");
    }

    #[tokio::test]
    async fn a_job_of_another_shape_goes_back_and_ends_the_batch() {
        let b = FakeBroker::default();
        b.push(Q, b.message(body(128)));
        let other = b.message(body(256));
        let other_tag = other.tag;
        b.push(Q, other);
        b.push(Q, b.message(body(128)));
        let (m, shape) = first(&b, 128);
        let got = assemble(&b, Q, m, &shape, 4, Duration::from_secs(5)).await;
        assert_eq!(got.messages.len(), 2);
        assert_eq!(b.events(), vec![Event::Requeue(other_tag)]);
        assert!(
            got.messages.iter().all(|m| shape_of(m) == Some(shape)),
            "never mixed"
        );
    }

    #[tokio::test]
    async fn an_empty_queue_is_waited_on_for_at_most_the_decided_wait() {
        let b = FakeBroker::default();
        let (m, shape) = first(&b, 128);
        let started = std::time::Instant::now();
        let got = assemble(&b, Q, m, &shape, 4, Duration::from_millis(60)).await;
        let waited = started.elapsed();
        assert_eq!(got.messages.len(), 1);
        assert!(waited >= Duration::from_millis(60), "{waited:?}");
        assert!(waited < Duration::from_secs(2), "{waited:?}");
        // A batch of one with nothing waiting is not held at all.
        let (m, shape) = first(&b, 128);
        let started = std::time::Instant::now();
        let got = assemble(&b, Q, m, &shape, 1, Duration::from_secs(5)).await;
        assert_eq!(got.messages.len(), 1);
        assert!(started.elapsed() < Duration::from_millis(50));
    }

    #[tokio::test]
    async fn a_lost_channel_keeps_what_was_pulled_and_says_why() {
        let b = FakeBroker::failing_after(1);
        for _ in 0..3 {
            b.push(Q, b.message(body(128)));
        }
        let (m, shape) = first(&b, 128);
        let got = assemble(&b, Q, m, &shape, 4, Duration::from_secs(5)).await;
        assert_eq!(got.messages.len(), 2);
        assert!(got.lost.is_some());
    }
}
