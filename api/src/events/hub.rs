//! One LISTEN connection per API process, fanned out to the streams that follow each job.
//! A notification is a hint that saves a query, never the record: a stream that sees a gap in
//! the sequence numbers, lags behind its channel or is told the connection was lost reads what
//! it missed from PostgreSQL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orfeas_shared::db::{Db, Notice};
use orfeas_vocab::{JobEvent, JobId};
use tokio::sync::broadcast;

/// Events a slow stream may fall behind by before it reads from the database instead.
const PER_JOB_BUFFER: usize = 64;

/// What a follower of one job hears.
#[derive(Debug, Clone)]
pub enum Signal {
    Event(Arc<JobEvent>),
    /// Something may have been missed (a connection loss, an event too large to notify):
    /// read from the database.
    Resync,
}

type Channels = HashMap<JobId, broadcast::Sender<Signal>>;

#[derive(Debug, Clone)]
pub struct EventHub {
    channels: Arc<Mutex<Channels>>,
}

/// A follower's end of one job's channel; leaving drops the channel once nobody follows.
#[derive(Debug)]
pub struct Subscription {
    job: JobId,
    rx: Option<broadcast::Receiver<Signal>>,
    channels: Arc<Mutex<Channels>>,
}

impl Subscription {
    pub async fn recv(&mut self) -> Result<Signal, broadcast::error::RecvError> {
        match &mut self.rx {
            Some(rx) => rx.recv().await,
            None => Err(broadcast::error::RecvError::Closed),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        drop(self.rx.take());
        let mut channels = lock(&self.channels);
        if channels
            .get(&self.job)
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            channels.remove(&self.job);
        }
    }
}

fn lock(m: &Mutex<Channels>) -> std::sync::MutexGuard<'_, Channels> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl EventHub {
    /// Starts listening; the hub keeps reconnecting in the background while PostgreSQL is
    /// unreachable (followers then catch up from the table).
    pub fn start(db: Db) -> EventHub {
        let hub = EventHub {
            channels: Arc::new(Mutex::new(HashMap::new())),
        };
        tokio::spawn(listen(db, hub.clone()));
        hub
    }

    /// Follows `job` from now on; read what came before from the database *after* this call,
    /// so nothing falls between the two.
    pub fn subscribe(&self, job: JobId) -> Subscription {
        let mut channels = lock(&self.channels);
        let tx = channels
            .entry(job)
            .or_insert_with(|| broadcast::channel(PER_JOB_BUFFER).0);
        Subscription {
            job,
            rx: Some(tx.subscribe()),
            channels: self.channels.clone(),
        }
    }

    fn send(&self, job: JobId, signal: Signal) {
        if let Some(tx) = lock(&self.channels).get(&job) {
            let _ = tx.send(signal);
        }
    }

    fn resync_all(&self) {
        for tx in lock(&self.channels).values() {
            let _ = tx.send(Signal::Resync);
        }
    }
}

async fn listen(db: Db, hub: EventHub) {
    loop {
        let mut listener = match db.listen_events().await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(error = %e, "events: cannot listen yet");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        // Whatever happened while nobody listened is in the table.
        hub.resync_all();
        loop {
            match listener.recv().await {
                Ok(Notice::Event(e)) => hub.send(e.job, Signal::Event(Arc::from(e))),
                Ok(Notice::Hint { job, .. }) => hub.send(job, Signal::Resync),
                Ok(Notice::Reconnected) => hub.resync_all(),
                Err(orfeas_shared::db::DbError::Corrupt(detail)) => {
                    tracing::warn!(%detail, "events: unreadable notification");
                }
                Err(e) => {
                    tracing::debug!(error = %e, "events: listener lost its connection");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}
