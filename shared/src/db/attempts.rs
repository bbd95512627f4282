//! The transitions of an attempt, each one statement guarded by the expected state, the attempt
//! number and the owner:
//!
//! - an attempt **starts** only on a queued job, or on a running job whose owner's lease has
//!   expired, and only while the job has attempts left — counted here, when they start, so an
//!   attempt that kills its worker counts too;
//! - a worker **renews** the leases of the attempts it holds; a delivery of a job whose lease is
//!   live is not a takeover (the owner is alive and keeps it);
//! - an attempt **ends** (finished, failed, canceled, back to the queue) only if it still owns
//!   the job; a job that never started fails only while queued.

use std::time::Duration;

use chrono::{DateTime, Utc};
use orfeas_vocab::{
    Artifact, Device, ErrorCode, JobId, JobStatus, JobWeights, Segmentation, WeightsIdentity,
};
use sqlx::Row;

use super::job_row::job_from_row;
use super::ledger::{StageRecord, insert_stage_records};
use super::{Db, DbError, JobRecord};

#[derive(Debug)]
pub enum StartOutcome {
    /// The job is now running as this attempt.
    Started(Box<JobRecord>),
    /// Another attempt owns the job under a live lease: leave it alone.
    Owned {
        attempt: i32,
        worker_id: Option<String>,
    },
    /// This delivery ended the job: its attempts are used up (`worker_lost` when the last one's
    /// worker vanished). The message should be dead-lettered with the reason.
    Ended { code: ErrorCode, message: String },
    /// A cancel that was pending took effect.
    Canceled,
    /// Nothing to run: the job is terminal (a redelivery of finished work) or unknown.
    Skip(Option<JobStatus>),
}

/// An artifact the attempt stored, with the SHA-256 (hex) of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOutput {
    pub artifact: Artifact,
    pub sha256: String,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEnd {
    Succeeded { outputs: Vec<StoredOutput> },
    Failed { code: ErrorCode, message: String },
    Canceled,
}

/// Where a requeued attempt left its job.
#[derive(Debug, Clone, PartialEq)]
pub enum Requeued {
    /// Back in the queue for a retry; with the start of the job's current run of outages.
    Queued { outage_since: Option<DateTime<Utc>> },
    /// A cancel was pending: the job is canceled instead.
    Canceled,
    /// The attempt no longer owns the job.
    NotOwner,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl Db {
    /// Starts an attempt for `worker_id`, with a lease of `lease` and at most `max_attempts`
    /// counted attempts; `device` and `batch_size` are shown in its `started` event.
    pub async fn start_attempt(
        &self,
        id: JobId,
        worker_id: &str,
        lease: Duration,
        max_attempts: u32,
        device: Device,
        batch_size: usize,
    ) -> Result<StartOutcome, DbError> {
        let max = i32::try_from(max_attempts).unwrap_or(i32::MAX);
        let row = sqlx::query(concat!(
            "UPDATE jobs SET status = 'running', attempt = attempt + 1, \
             counted_attempts = counted_attempts + 1, max_attempts = $4, worker_id = $2, \
             lease_expires_at = now() + make_interval(secs => $3), stage = NULL, progress = 0, \
             started_at = COALESCE(started_at, now()), updated_at = now(), \
             device = $5, batch_size = $6 \
             WHERE id = $1 AND NOT cancel_requested AND counted_attempts < $4 \
             AND (status = 'queued' OR (status = 'running' AND lease_expires_at < now())) \
             RETURNING ",
            job_columns!()
        ))
        .bind(id.0)
        .bind(worker_id)
        .bind(secs(lease))
        .bind(max)
        .bind(device.to_string())
        .bind(i32::try_from(batch_size).unwrap_or(i32::MAX))
        .fetch_optional(self.pool())
        .await?;
        if let Some(row) = row {
            return Ok(StartOutcome::Started(Box::new(job_from_row(&row)?)));
        }
        // A cancel pending on a job nobody runs any more takes effect now.
        let canceled = sqlx::query(
            "UPDATE jobs SET status = 'canceled', error_code = $2, \
             error_message = 'canceled while running', finished_at = now(), \
             lease_expires_at = NULL, updated_at = now() \
             WHERE id = $1 AND cancel_requested \
             AND (status = 'queued' OR (status = 'running' AND lease_expires_at < now()))",
        )
        .bind(id.0)
        .bind(ErrorCode::Canceled)
        .execute(self.pool())
        .await?;
        if canceled.rows_affected() == 1 {
            return Ok(StartOutcome::Canceled);
        }
        // Attempts used up: the last one's worker vanished (its lease expired) or, for a job
        // back in the queue, its retries ran out.
        let ended = sqlx::query(
            "UPDATE jobs SET status = 'failed', \
             error_code = CASE WHEN status = 'running' THEN $2 ELSE $3 END, \
             error_message = CASE WHEN status = 'running' THEN \
               format('the worker running attempt %s stopped during %s (its lease expired); %s of %s attempts used', \
                      attempt, COALESCE(stage::text, 'its start'), counted_attempts, $4) \
               ELSE format('%s of %s attempts used', counted_attempts, $4) END, \
             finished_at = now(), lease_expires_at = NULL, updated_at = now() \
             WHERE id = $1 AND counted_attempts >= $4 \
             AND (status = 'queued' OR (status = 'running' AND lease_expires_at < now())) \
             RETURNING error_code, error_message",
        )
        .bind(id.0)
        .bind(ErrorCode::WorkerLost)
        .bind(ErrorCode::RetriesExhausted)
        .bind(max)
        .fetch_optional(self.pool())
        .await?;
        if let Some(row) = ended {
            return Ok(StartOutcome::Ended {
                code: row.try_get("error_code")?,
                message: row.try_get("error_message")?,
            });
        }
        let owner = sqlx::query("SELECT status, attempt, worker_id FROM jobs WHERE id = $1")
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?;
        Ok(match owner {
            Some(r) if r.try_get::<JobStatus, _>("status")? == JobStatus::Running => {
                StartOutcome::Owned {
                    attempt: r.try_get("attempt")?,
                    worker_id: r.try_get("worker_id")?,
                }
            }
            Some(r) => StartOutcome::Skip(Some(r.try_get("status")?)),
            None => StartOutcome::Skip(None),
        })
    }

    /// Extends the leases of the attempts `worker_id` holds; returns the jobs it still owns,
    /// each with whether a cancel was requested.
    pub async fn renew_leases(
        &self,
        worker_id: &str,
        attempts: &[(JobId, i32)],
        lease: Duration,
    ) -> Result<Vec<(JobId, bool)>, DbError> {
        if attempts.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<uuid::Uuid> = attempts.iter().map(|(id, _)| id.0).collect();
        let numbers: Vec<i32> = attempts.iter().map(|(_, a)| *a).collect();
        let rows = sqlx::query(
            "UPDATE jobs j SET lease_expires_at = now() + make_interval(secs => $4) \
             FROM unnest($2::uuid[], $3::int[]) AS a(id, attempt) \
             WHERE j.id = a.id AND j.attempt = a.attempt AND j.status = 'running' \
             AND j.worker_id = $1 RETURNING j.id, j.cancel_requested",
        )
        .bind(worker_id)
        .bind(&ids)
        .bind(&numbers)
        .bind(secs(lease))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((JobId(r.try_get("id")?), r.try_get("cancel_requested")?)))
            .collect()
    }

    /// Whether a running attempt should stop: a cancel was requested, or another attempt (or
    /// a final state) took the job over.
    pub async fn should_stop(&self, id: JobId, attempt: i32) -> Result<bool, DbError> {
        let keep: Option<bool> = sqlx::query_scalar(
            "SELECT status = 'running' AND attempt = $2 AND NOT cancel_requested FROM jobs WHERE id = $1",
        )
        .bind(id.0)
        .bind(attempt)
        .fetch_optional(self.pool())
        .await?;
        Ok(!keep.unwrap_or(false))
    }

    /// Records how an attempt's object mask was found (only while that attempt is the job's
    /// latest: a late writer never overwrites a newer attempt's figure).
    pub async fn record_segmentation(
        &self,
        id: JobId,
        attempt: i32,
        seg: &Segmentation,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE jobs SET segmentation_method = $3, mask_share = $4 WHERE id = $1 AND attempt = $2",
        )
        .bind(id.0)
        .bind(attempt)
        .bind(seg.method)
        .bind(seg.mask_share.clamp(0.0, 1.0))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records the weights an attempt ran with (only while that attempt is the job's latest,
    /// as [`Db::record_segmentation`]).
    pub async fn record_weights(
        &self,
        id: JobId,
        attempt: i32,
        weights: &JobWeights,
    ) -> Result<(), DbError> {
        let name = |w: &Option<WeightsIdentity>| w.as_ref().map(|w| w.name.clone());
        let digest = |w: &Option<WeightsIdentity>| w.as_ref().map(|w| w.sha256.clone());
        sqlx::query(
            "UPDATE jobs SET engine_weights = $3, engine_weights_sha256 = $4, \
             segmentation_weights = $5, segmentation_weights_sha256 = $6 \
             WHERE id = $1 AND attempt = $2",
        )
        .bind(id.0)
        .bind(attempt)
        .bind(name(&weights.engine))
        .bind(digest(&weights.engine))
        .bind(name(&weights.segmentation))
        .bind(digest(&weights.segmentation))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Ends an attempt: guarded on `running`, the attempt number and its owner, with its stage
    /// rows, in one transaction. Returns false (and writes nothing) when the attempt no longer
    /// owns the job.
    pub async fn finish(
        &self,
        id: JobId,
        attempt: i32,
        owner: &str,
        end: &JobEnd,
        stages: &[StageRecord],
    ) -> Result<bool, DbError> {
        let digests: Vec<&str> = match end {
            JobEnd::Succeeded { outputs } => outputs.iter().map(|o| o.sha256.as_str()).collect(),
            _ => Vec::new(),
        };
        let (status, code, message, outputs): (
            JobStatus,
            Option<ErrorCode>,
            Option<&str>,
            Vec<&str>,
        ) = match end {
            JobEnd::Succeeded { outputs } => (
                JobStatus::Succeeded,
                None,
                None,
                outputs.iter().map(|o| o.artifact.as_str()).collect(),
            ),
            JobEnd::Failed { code, message } => (
                JobStatus::Failed,
                Some(*code),
                Some(message.as_str()),
                Vec::new(),
            ),
            JobEnd::Canceled => (
                JobStatus::Canceled,
                Some(ErrorCode::Canceled),
                Some("canceled while running"),
                Vec::new(),
            ),
        };
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE jobs SET status = $3, error_code = $4, error_message = $5, outputs = $6, \
             output_sha256 = $8, \
             progress = CASE WHEN $3 = 'succeeded'::job_status THEN 100 ELSE progress END, \
             stage = CASE WHEN $3 = 'succeeded'::job_status THEN NULL ELSE stage END, \
             lease_expires_at = NULL, outage_since = NULL, finished_at = now(), updated_at = now() \
             WHERE id = $1 AND attempt = $2 AND worker_id = $7 AND status = 'running'",
        )
        .bind(id.0)
        .bind(attempt)
        .bind(status)
        .bind(code)
        .bind(message)
        .bind(&outputs)
        .bind(owner)
        .bind(&digests)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_stage_records(&mut tx, id, stages).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Puts an attempt's job back in the queue for a delayed retry — or cancels it, when a
    /// cancel arrived meanwhile. `outage`: the attempt ended because a dependency was down, so
    /// it does not count (and the job's current run of outages is timed).
    pub async fn requeue(
        &self,
        id: JobId,
        attempt: i32,
        owner: &str,
        outage: bool,
    ) -> Result<Requeued, DbError> {
        let row = sqlx::query(
            "UPDATE jobs SET \
               status = CASE WHEN cancel_requested THEN 'canceled'::job_status ELSE 'queued' END, \
               error_code = CASE WHEN cancel_requested THEN $4 ELSE error_code END, \
               error_message = CASE WHEN cancel_requested THEN 'canceled while running' \
                               ELSE error_message END, \
               finished_at = CASE WHEN cancel_requested THEN now() ELSE finished_at END, \
               counted_attempts = counted_attempts - CASE WHEN $5 THEN 1 ELSE 0 END, \
               outage_since = CASE WHEN $5 THEN COALESCE(outage_since, now()) ELSE NULL END, \
               lease_expires_at = NULL, stage = NULL, progress = 0, updated_at = now() \
             WHERE id = $1 AND attempt = $2 AND worker_id = $3 AND status = 'running' \
             RETURNING status, outage_since",
        )
        .bind(id.0)
        .bind(attempt)
        .bind(owner)
        .bind(ErrorCode::Canceled)
        .bind(outage)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(Requeued::NotOwner);
        };
        Ok(match row.try_get::<JobStatus, _>("status")? {
            JobStatus::Canceled => Requeued::Canceled,
            _ => Requeued::Queued {
                outage_since: row.try_get("outage_since")?,
            },
        })
    }

    /// Fails a job no attempt of which is running: only a queued job (a message that cannot
    /// run here, or cannot be read), never one a live attempt owns.
    pub async fn fail_unstarted(
        &self,
        id: JobId,
        code: ErrorCode,
        message: &str,
    ) -> Result<bool, DbError> {
        let r = sqlx::query(
            "UPDATE jobs SET status = 'failed', error_code = $2, error_message = $3, \
             finished_at = now(), updated_at = now() WHERE id = $1 AND status = 'queued'",
        )
        .bind(id.0)
        .bind(code)
        .bind(message)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }
}
