//! The reaper: every `api.reaper_interval_ms`, running jobs whose worker's lease expired (the
//! worker died, hung, or lost its database) go back to the queue through the outbox — or, when
//! their attempts are used up, fail with `worker_lost` and their message is dead-lettered once
//! with the reason; queued jobs untouched for `api.requeue_stale_after_s` are published again.
//! The statements claim their rows, so every API replica runs a reaper safely. Retention runs
//! beside it ([`retention`]).

use orfeas_vocab::ErrorCode;

use crate::state::AppState;

/// Jobs handled per pass.
const REAP_BATCH: i64 = 100;

pub async fn run(state: AppState) {
    let interval = state.config.api.reaper_interval;
    loop {
        tokio::time::sleep(interval).await;
        if let Err(e) = pass(&state).await {
            tracing::debug!(error = %e, "reaper: database unavailable");
        }
    }
}

async fn pass(state: &AppState) -> Result<(), orfeas_shared::db::DbError> {
    let reaped = state.db.reap_expired(REAP_BATCH).await?;
    for id in &reaped.requeued {
        tracing::warn!(job = %id, "reaper: the worker's lease expired; job back in the queue");
    }
    for id in &reaped.canceled {
        tracing::info!(job = %id, "reaper: the worker's lease expired; pending cancel applied");
    }
    for lost in &reaped.lost {
        tracing::warn!(job = %lost.message.job_id, reason = %lost.reason, "reaper: job failed");
        let published = state
            .publisher
            .publish_dead_letter(&lost.message, ErrorCode::WorkerLost.as_str(), &lost.reason)
            .await;
        if let Err(e) = published {
            // The job's state is recorded; the dead letter is for inspection.
            tracing::warn!(job = %lost.message.job_id, error = %e, "reaper: dead letter not published");
        }
    }
    let stale = state
        .db
        .republish_stale(state.config.api.requeue_stale_after, REAP_BATCH)
        .await?;
    if stale > 0 {
        tracing::warn!(
            jobs = stale,
            "reaper: queued jobs untouched for long; publishing again"
        );
    }
    Ok(())
}

/// Retention: a pass (rollups, expired jobs, orphan inputs) at start and then every
/// `retention.interval_s`; one process at a time does the work (the pass takes a PostgreSQL
/// advisory lock). The pass at start catches up the rollups of an upgraded deployment's history
/// in the background, so the first long-window summary does not do it in the request.
pub async fn retention(state: AppState) {
    let policy = state.config.retention.policy();
    let mut first = true;
    loop {
        if !first {
            tokio::time::sleep(state.config.retention.interval).await;
        }
        first = false;
        match orfeas_shared::retention::gc_pass(&state.db, state.store.as_ref(), &policy).await {
            Ok(r) if r.skipped => tracing::debug!("retention: another process holds the pass"),
            Ok(r) => tracing::info!(
                hours_rolled_up = r.hours_rolled_up,
                jobs_deleted = r.jobs_deleted,
                objects_deleted = r.objects_deleted,
                orphan_inputs_deleted = r.orphan_inputs_deleted,
                "retention pass"
            ),
            Err(e) => tracing::warn!(error = %e, "retention pass failed"),
        }
    }
}

/// Run times recent enough to estimate a queued job's: the last six hours.
const RUNS_WINDOW: std::time::Duration = std::time::Duration::from_secs(6 * 3_600);
/// The engines' throughput is measured over the last quarter hour.
const RATE_WINDOW: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Refreshes the figures queue positions' ETAs are computed from, every
/// `api.estimates_interval_s` (several replicas doing it is harmless: it is an upsert).
pub async fn estimates(state: AppState) {
    loop {
        if let Err(e) = state.db.refresh_estimates(RUNS_WINDOW, RATE_WINDOW).await {
            tracing::debug!(error = %e, "queue estimates not refreshed");
        }
        tokio::time::sleep(state.config.api.estimates_interval).await;
    }
}
