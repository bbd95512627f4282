//! Following one job: the events after a given sequence number, in order, without gaps or
//! repeats, ending after the terminal event. Catch-up and gaps are read from PostgreSQL; live
//! events arrive through the [`EventHub`]. A follower that hears nothing for a while reads the
//! table anyway, so even a notification lost without a reconnect costs seconds, not the stream.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use orfeas_shared::db::{Db, DbError};
use orfeas_vocab::{JobEvent, JobId};
use tokio::sync::broadcast::error::RecvError;

use super::hub::{EventHub, Signal, Subscription};

/// Events read from the database at once.
const PAGE: i64 = 500;
/// A quiet follower reads the table this often.
const SAFETY_POLL: Duration = Duration::from_secs(10);

struct Follower {
    db: Db,
    job: JobId,
    sub: Subscription,
    last: i64,
    ready: VecDeque<Arc<JobEvent>>,
    finished: bool,
}

impl Follower {
    async fn catch_up(&mut self) -> Result<(), DbError> {
        let events = self.db.events_after(self.job, self.last, PAGE).await?;
        self.ready.extend(events.into_iter().map(Arc::new));
        Ok(())
    }

    fn push(&mut self, e: Arc<JobEvent>) -> bool {
        let expected = self.ready.back().map_or(self.last, |b| b.seq) + 1;
        if e.seq < expected {
            return true;
        }
        if e.seq > expected {
            return false;
        }
        self.ready.push_back(e);
        true
    }

    async fn next(&mut self) -> Option<Result<Arc<JobEvent>, DbError>> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                self.last = e.seq;
                if e.kind().is_terminal() {
                    self.finished = true;
                }
                return Some(Ok(e));
            }
            if self.finished {
                return None;
            }
            let signal = tokio::time::timeout(SAFETY_POLL, self.sub.recv()).await;
            let in_order = match signal {
                Ok(Ok(Signal::Event(e))) if e.job == self.job => self.push(e),
                Ok(Ok(_)) | Ok(Err(RecvError::Lagged(_))) | Err(_) => false,
                Ok(Err(RecvError::Closed)) => return None,
            };
            if !in_order && let Err(e) = self.catch_up().await {
                return Some(Err(e));
            }
        }
    }
}

/// The events of `job` after `after`, live until its terminal event.
pub async fn follow(
    hub: &EventHub,
    db: Db,
    job: JobId,
    after: i64,
) -> Result<impl Stream<Item = Result<Arc<JobEvent>, DbError>> + Send + use<>, DbError> {
    // Subscribe before reading, so an event recorded in between arrives on the channel.
    let sub = hub.subscribe(job);
    let mut follower = Follower {
        db,
        job,
        sub,
        last: after.max(0),
        ready: VecDeque::new(),
        finished: false,
    };
    follower.catch_up().await?;
    if follower.ready.is_empty()
        && let Some((seq, kind)) = follower.db.last_event(job).await?
        && seq <= follower.last
        && kind.is_terminal()
    {
        // The client has seen the end already.
        follower.finished = true;
    }
    Ok(futures::stream::unfold(follower, |mut f| async move {
        f.next().await.map(|item| (item, f))
    }))
}
