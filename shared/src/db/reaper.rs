//! What the reaper changes: running jobs whose owner's lease expired (the worker died, hung or
//! lost its database) go back to the queue — through the outbox, so the relay publishes them —
//! or fail with `worker_lost` when their attempts are used up; queued jobs untouched for long
//! are published again (their message may be gone; a second copy is harmless). Every statement
//! claims its rows with `FOR UPDATE SKIP LOCKED`, so several API replicas reap side by side.

use std::time::Duration;

use orfeas_vocab::{ErrorCode, JobId, JobMessage, JobSpec, JobStatus};
use sqlx::Row;

use super::{Db, DbError};

/// A job whose worker was lost and which has no attempts left: failed, its message to be
/// dead-lettered with the reason.
#[derive(Debug, Clone)]
pub struct Lost {
    pub message: JobMessage,
    pub reason: String,
}

/// What one reaping pass did.
#[derive(Debug, Default)]
pub struct Reaped {
    /// Back in the queue (the outbox relay publishes them).
    pub requeued: Vec<JobId>,
    /// Canceled: a cancel was pending when their worker was lost.
    pub canceled: Vec<JobId>,
    pub lost: Vec<Lost>,
}

impl Db {
    /// Reaps at most `limit` running jobs whose lease expired.
    pub async fn reap_expired(&self, limit: i64) -> Result<Reaped, DbError> {
        let mut reaped = Reaped::default();
        let failed = sqlx::query(
            "UPDATE jobs SET status = 'failed', error_code = $2, \
             error_message = format('the worker running attempt %s stopped during %s (its lease expired); %s of %s attempts used', \
                                    attempt, COALESCE(stage::text, 'its start'), counted_attempts, \
                                    COALESCE(max_attempts, counted_attempts)), \
             finished_at = now(), lease_expires_at = NULL, updated_at = now() \
             WHERE id IN (SELECT id FROM jobs WHERE status = 'running' AND lease_expires_at < now() \
                          AND NOT cancel_requested \
                          AND counted_attempts >= COALESCE(max_attempts, counted_attempts) \
                          ORDER BY lease_expires_at LIMIT $1 FOR UPDATE SKIP LOCKED) \
             RETURNING id, spec, error_message",
        )
        .bind(limit)
        .bind(ErrorCode::WorkerLost)
        .fetch_all(self.pool())
        .await?;
        for r in &failed {
            let id = JobId(r.try_get("id")?);
            let spec: serde_json::Value = r.try_get("spec")?;
            let spec: JobSpec = serde_json::from_value(spec)
                .map_err(|e| DbError::Corrupt(format!("job {id}: spec: {e}")))?;
            reaped.lost.push(Lost {
                message: JobMessage::for_job(id, &spec),
                reason: r.try_get("error_message")?,
            });
        }
        let back = sqlx::query(
            "UPDATE jobs SET \
               status = CASE WHEN cancel_requested THEN 'canceled'::job_status ELSE 'queued' END, \
               error_code = CASE WHEN cancel_requested THEN $2 ELSE error_code END, \
               error_message = CASE WHEN cancel_requested THEN 'canceled while running' \
                               ELSE error_message END, \
               finished_at = CASE WHEN cancel_requested THEN now() ELSE finished_at END, \
               enqueued_at = NULL, lease_expires_at = NULL, stage = NULL, progress = 0, \
               updated_at = now() \
             WHERE id IN (SELECT id FROM jobs WHERE status = 'running' AND lease_expires_at < now() \
                          ORDER BY lease_expires_at LIMIT $1 FOR UPDATE SKIP LOCKED) \
             RETURNING id, status",
        )
        .bind(limit)
        .bind(ErrorCode::Canceled)
        .fetch_all(self.pool())
        .await?;
        for r in &back {
            let id = JobId(r.try_get("id")?);
            match r.try_get::<JobStatus, _>("status")? {
                JobStatus::Canceled => reaped.canceled.push(id),
                _ => reaped.requeued.push(id),
            }
        }
        Ok(reaped)
    }

    /// Queued jobs whose message was confirmed but which nothing has touched for `older_than`
    /// go back to the outbox, so the relay publishes them once more. Returns how many.
    pub async fn republish_stale(&self, older_than: Duration, limit: i64) -> Result<u64, DbError> {
        let r = sqlx::query(
            "UPDATE jobs SET enqueued_at = NULL, updated_at = now() \
             WHERE id IN (SELECT id FROM jobs WHERE status = 'queued' AND enqueued_at IS NOT NULL \
                          AND updated_at < now() - make_interval(secs => $1) \
                          ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind(older_than.as_secs_f64())
        .bind(limit)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected())
    }
}
