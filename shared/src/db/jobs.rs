//! The jobs aggregate: insertion (with idempotency keys), reads, and every status transition,
//! each one statement guarded by the expected state and attempt.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use orfeas_vocab::{Artifact, ErrorCode, JobId, JobSpec, JobStatus, Stage};
use sqlx::Row;

use super::ledger::{StageRecord, insert_stage_records};
use super::{Db, DbError};

/// A job as stored.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub id: JobId,
    pub status: JobStatus,
    pub spec: JobSpec,
    pub input_key: String,
    pub input_bytes: i64,
    pub stage: Option<Stage>,
    pub progress: i16,
    pub attempt: i32,
    pub worker_id: Option<String>,
    pub cancel_requested: bool,
    pub error_code: Option<ErrorCode>,
    pub error_message: Option<String>,
    /// The artifacts stored under `outputs/{id}/` (the job's outputs manifest).
    pub outputs: Vec<Artifact>,
    pub enqueued_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A job to insert.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: JobId,
    pub spec: JobSpec,
    pub input_key: String,
    pub input_bytes: i64,
    pub idempotency_key: Option<String>,
    pub request_hash: Option<String>,
    /// W3C trace context (`traceparent`, `tracestate`) of the accepting request.
    pub trace_context: HashMap<String, String>,
}

#[derive(Debug)]
pub enum InsertOutcome {
    Created(JobRecord),
    /// The idempotency key was seen before: the first job, and whether the request matched.
    Existing {
        job: JobRecord,
        same_request: bool,
    },
}

#[derive(Debug, PartialEq)]
pub enum CancelOutcome {
    /// A queued job was canceled; it will never run.
    Canceled,
    /// A running job will stop at its next stage boundary.
    Requested,
    AlreadyTerminal(JobStatus),
    NotFound,
}

#[derive(Debug)]
pub enum StartOutcome {
    /// The job is now running as this attempt.
    Started(Box<JobRecord>),
    /// Nothing to run: the job is terminal (a redelivery of finished work) or unknown.
    Skip(Option<JobStatus>),
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEnd {
    Succeeded { outputs: Vec<Artifact> },
    Failed { code: ErrorCode, message: String },
    Canceled,
}

/// The columns `job_from_row` reads (a macro so queries stay `'static` strings).
macro_rules! job_columns {
    () => {
        "id, status, spec, input_key, input_bytes, stage, progress, attempt, worker_id, \
         cancel_requested, error_code, error_message, outputs, enqueued_at, created_at, \
         started_at, finished_at"
    };
}

fn job_from_row(row: &sqlx::postgres::PgRow) -> Result<JobRecord, DbError> {
    let id = JobId(row.try_get("id")?);
    let corrupt =
        |what: &str, e: &dyn std::fmt::Display| DbError::Corrupt(format!("job {id}: {what}: {e}"));
    let spec: serde_json::Value = row.try_get("spec")?;
    let spec: JobSpec = serde_json::from_value(spec).map_err(|e| corrupt("spec", &e))?;
    let outputs: Vec<String> = row.try_get("outputs")?;
    let outputs = outputs
        .iter()
        .map(|s| s.parse::<Artifact>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| corrupt("outputs", &e))?;
    Ok(JobRecord {
        id,
        status: row.try_get("status")?,
        spec,
        input_key: row.try_get("input_key")?,
        input_bytes: row.try_get("input_bytes")?,
        stage: row.try_get("stage")?,
        progress: row.try_get("progress")?,
        attempt: row.try_get("attempt")?,
        worker_id: row.try_get("worker_id")?,
        cancel_requested: row.try_get("cancel_requested")?,
        error_code: row.try_get("error_code")?,
        error_message: row.try_get("error_message")?,
        outputs,
        enqueued_at: row.try_get("enqueued_at")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

impl Db {
    /// Inserts a job, or returns the one an earlier request with the same idempotency key made.
    pub async fn insert_job(&self, job: &NewJob) -> Result<InsertOutcome, DbError> {
        let spec = serde_json::to_value(&job.spec)
            .map_err(|e| DbError::Corrupt(format!("job {}: spec: {e}", job.id)))?;
        let trace = serde_json::to_value(&job.trace_context)
            .map_err(|e| DbError::Corrupt(format!("job {}: trace context: {e}", job.id)))?;
        let inserted = sqlx::query(concat!(
            "INSERT INTO jobs (id, engine, spec, input_key, input_bytes, priority, deadline, \
             idempotency_key, request_hash, trace_context) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (idempotency_key) DO NOTHING RETURNING ",
            job_columns!()
        ))
        .bind(job.id.0)
        .bind(job.spec.engine)
        .bind(spec)
        .bind(&job.input_key)
        .bind(job.input_bytes)
        .bind(i16::from(job.spec.priority))
        .bind(job.spec.deadline)
        .bind(&job.idempotency_key)
        .bind(&job.request_hash)
        .bind(trace)
        .fetch_optional(self.pool())
        .await?;
        if let Some(row) = inserted {
            return Ok(InsertOutcome::Created(job_from_row(&row)?));
        }
        // Only a conflicting idempotency key makes the insert do nothing.
        let key = job.idempotency_key.as_deref().unwrap_or_default();
        let (existing, hash) = self.find_by_idempotency_key(key).await?.ok_or_else(|| {
            DbError::Corrupt(format!(
                "job {}: insert skipped without a key conflict",
                job.id
            ))
        })?;
        Ok(InsertOutcome::Existing {
            job: existing,
            same_request: hash == job.request_hash,
        })
    }

    /// The job an idempotency key created, and the fingerprint of that request.
    pub async fn find_by_idempotency_key(
        &self,
        key: &str,
    ) -> Result<Option<(JobRecord, Option<String>)>, DbError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            ", request_hash FROM jobs WHERE idempotency_key = $1"
        ))
        .bind(key)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| Ok((job_from_row(&r)?, r.try_get("request_hash")?)))
            .transpose()
    }

    pub async fn get_job(&self, id: JobId) -> Result<Option<JobRecord>, DbError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// Newest first; `before` is the last id of the previous page.
    pub async fn list_jobs(
        &self,
        status: Option<JobStatus>,
        before: Option<JobId>,
        limit: i64,
    ) -> Result<Vec<JobRecord>, DbError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE ($1::job_status IS NULL OR status = $1) \
             AND ($2::uuid IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
        ))
        .bind(status)
        .bind(before.map(|b| b.0))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(job_from_row).collect()
    }

    /// Number of jobs per status.
    pub async fn jobs_by_status(&self) -> Result<Vec<(JobStatus, i64)>, DbError> {
        Ok(
            sqlx::query_as("SELECT status, count(*) FROM jobs GROUP BY status")
                .fetch_all(self.pool())
                .await?,
        )
    }

    pub async fn count_queued(&self) -> Result<i64, DbError> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM jobs WHERE status = 'queued'")
                .fetch_one(self.pool())
                .await?,
        )
    }

    async fn status_of(&self, id: JobId) -> Result<Option<JobStatus>, DbError> {
        Ok(sqlx::query_scalar("SELECT status FROM jobs WHERE id = $1")
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?)
    }

    /// Cancels a queued job outright, or asks a running one to stop at its next stage boundary.
    pub async fn request_cancel(&self, id: JobId) -> Result<CancelOutcome, DbError> {
        let canceled = sqlx::query(
            "UPDATE jobs SET status = 'canceled', error_code = $2, \
             error_message = 'canceled before it started', finished_at = now(), updated_at = now() \
             WHERE id = $1 AND status = 'queued'",
        )
        .bind(id.0)
        .bind(ErrorCode::Canceled)
        .execute(self.pool())
        .await?;
        if canceled.rows_affected() == 1 {
            return Ok(CancelOutcome::Canceled);
        }
        let requested = sqlx::query(
            "UPDATE jobs SET cancel_requested = TRUE, updated_at = now() \
             WHERE id = $1 AND status = 'running'",
        )
        .bind(id.0)
        .execute(self.pool())
        .await?;
        if requested.rows_affected() == 1 {
            return Ok(CancelOutcome::Requested);
        }
        Ok(match self.status_of(id).await? {
            None => CancelOutcome::NotFound,
            // It changed between the two statements; a retry of the request will see it.
            Some(JobStatus::Queued) | Some(JobStatus::Running) => CancelOutcome::Requested,
            Some(s) => CancelOutcome::AlreadyTerminal(s),
        })
    }

    /// Starts a new attempt of a queued job, or takes over a running one whose worker died
    /// (its message came back). Terminal and canceled jobs are skipped.
    pub async fn start_attempt(&self, id: JobId, worker_id: &str) -> Result<StartOutcome, DbError> {
        let row = sqlx::query(concat!(
            "UPDATE jobs SET status = 'running', attempt = attempt + 1, worker_id = $2, \
             stage = NULL, progress = 0, started_at = COALESCE(started_at, now()), updated_at = now() \
             WHERE id = $1 AND status IN ('queued', 'running') AND NOT cancel_requested \
             RETURNING ", job_columns!()
        ))
        .bind(id.0)
        .bind(worker_id)
        .fetch_optional(self.pool())
        .await?;
        if let Some(row) = row {
            return Ok(StartOutcome::Started(Box::new(job_from_row(&row)?)));
        }
        // A running job with a pending cancel request that lost its worker: cancel it now.
        sqlx::query(
            "UPDATE jobs SET status = 'canceled', error_code = $2, \
             error_message = 'canceled while running', finished_at = now(), updated_at = now() \
             WHERE id = $1 AND status = 'running' AND cancel_requested",
        )
        .bind(id.0)
        .bind(ErrorCode::Canceled)
        .execute(self.pool())
        .await?;
        Ok(StartOutcome::Skip(self.status_of(id).await?))
    }

    /// Records the stage an attempt is entering; returns whether the attempt should stop (a
    /// cancel was requested, or another attempt owns the job now).
    pub async fn enter_stage(
        &self,
        id: JobId,
        attempt: i32,
        stage: Stage,
    ) -> Result<bool, DbError> {
        let cancel: Option<bool> = sqlx::query_scalar(
            "UPDATE jobs SET stage = $3, progress = GREATEST(progress, $4), \
             updated_at = now() WHERE id = $1 AND attempt = $2 AND status = 'running' \
             RETURNING cancel_requested",
        )
        .bind(id.0)
        .bind(attempt)
        .bind(stage)
        .bind(stage.progress_percent())
        .fetch_optional(self.pool())
        .await?;
        Ok(cancel.unwrap_or(true))
    }

    /// Ends an attempt: guarded on `running` and the attempt number, with its stage rows, in
    /// one transaction. Returns false (and writes nothing) when the attempt no longer owns the job.
    pub async fn finish(
        &self,
        id: JobId,
        attempt: i32,
        end: &JobEnd,
        stages: &[StageRecord],
    ) -> Result<bool, DbError> {
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
                outputs.iter().map(|a| a.as_str()).collect(),
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
             progress = CASE WHEN $3 = 'succeeded'::job_status THEN 100 ELSE progress END, \
             stage = CASE WHEN $3 = 'succeeded'::job_status THEN NULL ELSE stage END, \
             finished_at = now(), updated_at = now() \
             WHERE id = $1 AND attempt = $2 AND status = 'running'",
        )
        .bind(id.0)
        .bind(attempt)
        .bind(status)
        .bind(code)
        .bind(message)
        .bind(&outputs)
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

    /// Puts a running attempt's job back to `queued` for a delayed retry.
    pub async fn requeue(&self, id: JobId, attempt: i32) -> Result<bool, DbError> {
        let r = sqlx::query(
            "UPDATE jobs SET status = 'queued', stage = NULL, progress = 0, updated_at = now() \
             WHERE id = $1 AND attempt = $2 AND status = 'running'",
        )
        .bind(id.0)
        .bind(attempt)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Fails a job that never started running (deadline passed, input missing, retries out).
    pub async fn fail_unstarted(
        &self,
        id: JobId,
        code: ErrorCode,
        message: &str,
    ) -> Result<bool, DbError> {
        let r = sqlx::query(
            "UPDATE jobs SET status = 'failed', error_code = $2, error_message = $3, \
             finished_at = now(), updated_at = now() WHERE id = $1 AND status IN ('queued', 'running')",
        )
        .bind(id.0)
        .bind(code)
        .bind(message)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }
}
