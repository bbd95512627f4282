//! The outbox's two tasks: marking confirmed publications (in batches), and republishing queued
//! jobs whose message the broker never confirmed (RabbitMQ was down when they were accepted).

use std::time::Duration;

use orfeas_shared::db::Db;
use orfeas_vocab::JobId;

use crate::state::AppState;

/// Jobs younger than this are left to their request's own publish.
const RELAY_AFTER: Duration = Duration::from_secs(2);
/// Jobs republished per round.
const RELAY_BATCH: i64 = 200;
/// How long a relay holds the jobs it claimed (a relay that dies leaves them to others then).
const RELAY_CLAIM: Duration = Duration::from_secs(30);

/// Marks confirmed publications in batches: one UPDATE for all confirms that arrived while the
/// previous one ran, instead of one per request. A mark lost to a crash only means the relay
/// publishes that job once more, which workers tolerate.
pub async fn confirm_marker(db: Db, mut rx: tokio::sync::mpsc::UnboundedReceiver<JobId>) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 1000).await > 0 {
        if let Err(e) = db.mark_enqueued(&batch).await {
            tracing::debug!(error = %e, jobs = batch.len(), "confirms not marked; the relay will republish");
        }
        batch.clear();
    }
}

/// Republishes unconfirmed jobs every `api.outbox_interval_ms`. Each round claims its jobs
/// (`FOR UPDATE SKIP LOCKED` and a claim that expires), so API replicas publish each once. Runs
/// until the process ends.
pub async fn relay(state: AppState) {
    let interval = state
        .config
        .api
        .outbox_interval
        .max(Duration::from_millis(50));
    loop {
        tokio::time::sleep(interval).await;
        let pending = match state
            .db
            .claim_outbox(RELAY_AFTER, RELAY_BATCH, RELAY_CLAIM)
            .await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(error = %e, "outbox: database unavailable");
                continue;
            }
        };
        let mut unpublished = Vec::new();
        for entry in pending {
            let job_id = entry.message.job_id;
            if !unpublished.is_empty() {
                unpublished.push(job_id);
                continue;
            }
            match state
                .publisher
                .publish_job(&entry.message, &entry.trace_context)
                .await
            {
                Ok(()) => {
                    tracing::info!(job = %job_id, "outbox: published");
                    let _ = state.jobs.confirmed.send(job_id);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "outbox: queue still unavailable");
                    unpublished.push(job_id);
                }
            }
        }
        if !unpublished.is_empty()
            && let Err(e) = state.db.release_outbox(&unpublished).await
        {
            tracing::debug!(error = %e, "outbox: claims not released; they expire");
        }
    }
}
