//! The jobs aggregate: insertion (with idempotency keys), reads and cancellation. The
//! transitions of a running attempt are in `attempts`, the reaper's in `reaper`.

use std::collections::HashMap;
use std::time::Duration;

use orfeas_vocab::{ErrorCode, JobId, JobSpec, JobStatus};
use sqlx::Row;
use uuid::Uuid;

pub use super::job_row::JobRecord;
use super::job_row::job_from_row;
use super::{Db, DbError};

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
    /// The submitting key.
    pub owner: Option<Uuid>,
}

/// An owner's job quotas, checked atomically with the insert (one owner's submissions are
/// serialized by an advisory lock, so concurrent requests to several API replicas cannot
/// overshoot).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quota {
    /// Jobs queued + running at once.
    pub max_active: Option<u32>,
    /// Jobs submitted per UTC day.
    pub daily: Option<u32>,
}

/// Which quota refused a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaHit {
    Concurrent { limit: u32 },
    Daily { limit: u32 },
}

#[derive(Debug)]
pub enum InsertOutcome {
    Created(JobRecord),
    /// The owner's quota is used up; nothing was inserted.
    OverQuota(QuotaHit),
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

impl Db {
    /// Inserts a job, or returns the one an earlier request with the same idempotency key (of
    /// the same owner, within `idempotency_ttl`) made, or refuses it over the owner's quota.
    pub async fn insert_job(
        &self,
        job: &NewJob,
        quota: Quota,
        idempotency_ttl: Duration,
    ) -> Result<InsertOutcome, DbError> {
        let spec = serde_json::to_value(&job.spec)
            .map_err(|e| DbError::Corrupt(format!("job {}: spec: {e}", job.id)))?;
        let trace = serde_json::to_value(&job.trace_context)
            .map_err(|e| DbError::Corrupt(format!("job {}: trace context: {e}", job.id)))?;
        let quota_applies =
            job.owner.is_some() && (quota.max_active.is_some() || quota.daily.is_some());
        if job.idempotency_key.is_none() && !quota_applies {
            // The common case: one statement, no transaction round trips.
            let row = self
                .insert_statement(job, spec, trace)
                .fetch_one(self.pool())
                .await?;
            return Ok(InsertOutcome::Created(job_from_row(&row)?));
        }
        let mut tx = self.pool().begin().await?;
        if let Some(key) = &job.idempotency_key {
            // An expired key is forgotten, so it may name a new job.
            sqlx::query(
                "UPDATE jobs SET idempotency_key = NULL WHERE owner_key = \
                 COALESCE($1, '00000000-0000-0000-0000-000000000000'::uuid) \
                 AND idempotency_key = $2 AND created_at < now() - make_interval(secs => $3)",
            )
            .bind(job.owner)
            .bind(key)
            .bind(idempotency_ttl.as_secs_f64())
            .execute(&mut *tx)
            .await?;
        }
        if let Some(owner) = job.owner.filter(|_| quota_applies) {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7))")
                .bind(owner)
                .execute(&mut *tx)
                .await?;
            let usage = super::keys::usage_of(&mut *tx, owner).await?;
            if let Some(limit) = quota.max_active
                && usage.active >= i64::from(limit)
            {
                return Ok(InsertOutcome::OverQuota(QuotaHit::Concurrent { limit }));
            }
            if let Some(limit) = quota.daily
                && usage.today >= i64::from(limit)
            {
                return Ok(InsertOutcome::OverQuota(QuotaHit::Daily { limit }));
            }
        }
        let inserted = self
            .insert_statement(job, spec, trace)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        if let Some(row) = inserted {
            return Ok(InsertOutcome::Created(job_from_row(&row)?));
        }
        // Only a conflicting idempotency key makes the insert do nothing.
        let key = job.idempotency_key.as_deref().unwrap_or_default();
        let (existing, hash) = self
            .find_by_idempotency_key(job.owner, key, idempotency_ttl)
            .await?
            .ok_or_else(|| {
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

    fn insert_statement(
        &self,
        job: &NewJob,
        spec: serde_json::Value,
        trace: serde_json::Value,
    ) -> sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments> {
        sqlx::query(concat!(
            "INSERT INTO jobs (id, engine, spec, input_key, input_bytes, priority, deadline, \
             idempotency_key, request_hash, trace_context, owner) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (owner_key, idempotency_key) DO NOTHING RETURNING ",
            job_columns!()
        ))
        .bind(job.id.0)
        .bind(job.spec.engine)
        .bind(spec)
        .bind(job.input_key.clone())
        .bind(job.input_bytes)
        .bind(i16::from(job.spec.priority))
        .bind(job.spec.deadline)
        .bind(job.idempotency_key.clone())
        .bind(job.request_hash.clone())
        .bind(trace)
        .bind(job.owner)
    }

    /// The job an owner's idempotency key created within `ttl`, and the fingerprint of that
    /// request.
    pub async fn find_by_idempotency_key(
        &self,
        owner: Option<Uuid>,
        key: &str,
        ttl: Duration,
    ) -> Result<Option<(JobRecord, Option<String>)>, DbError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            ", request_hash FROM jobs WHERE owner_key = \
             COALESCE($1, '00000000-0000-0000-0000-000000000000'::uuid) \
             AND idempotency_key = $2 AND created_at >= now() - make_interval(secs => $3)"
        ))
        .bind(owner)
        .bind(key)
        .bind(ttl.as_secs_f64())
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

    /// Newest first; `before` is the last id of the previous page; `owner`: only that key's.
    pub async fn list_jobs(
        &self,
        owner: Option<Uuid>,
        status: Option<JobStatus>,
        before: Option<JobId>,
        limit: i64,
    ) -> Result<Vec<JobRecord>, DbError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE ($1::job_status IS NULL OR status = $1) \
             AND ($2::uuid IS NULL OR id < $2) AND ($4::uuid IS NULL OR owner = $4) \
             ORDER BY id DESC LIMIT $3"
        ))
        .bind(status)
        .bind(before.map(|b| b.0))
        .bind(limit)
        .bind(owner)
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

    /// Jobs waiting to start by engine: how many, and seconds since the oldest was accepted (a
    /// job sent back for a retry keeps its acceptance time, so its wait includes earlier
    /// attempts).
    pub async fn queued_by_engine(&self) -> Result<Vec<(String, i64, f64)>, DbError> {
        Ok(sqlx::query_as(
            "SELECT engine, count(*), \
             COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 \
             FROM jobs WHERE status = 'queued' GROUP BY engine",
        )
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn count_queued(&self) -> Result<i64, DbError> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM jobs WHERE status = 'queued'")
                .fetch_one(self.pool())
                .await?,
        )
    }

    pub(super) async fn status_of(&self, id: JobId) -> Result<Option<JobStatus>, DbError> {
        Ok(sqlx::query_scalar("SELECT status FROM jobs WHERE id = $1")
            .bind(id.0)
            .fetch_optional(self.pool())
            .await?)
    }

    /// Marks a finished job's files deleted by its owner (they are gone from the store).
    pub async fn mark_purged(&self, id: JobId) -> Result<Option<JobRecord>, DbError> {
        let row = sqlx::query(concat!(
            "UPDATE jobs SET purged_at = COALESCE(purged_at, now()), updated_at = now() \
             WHERE id = $1 AND status IN ('succeeded', 'failed', 'canceled') RETURNING ",
            job_columns!()
        ))
        .bind(id.0)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// Cancels a queued job outright, or asks a running one to stop at its next stage boundary:
    /// one statement, so the answer always matches what was written.
    pub async fn request_cancel(&self, id: JobId) -> Result<CancelOutcome, DbError> {
        let changed: Option<JobStatus> = sqlx::query_scalar(
            "UPDATE jobs SET \
               status = CASE WHEN status = 'queued' THEN 'canceled'::job_status ELSE status END, \
               cancel_requested = cancel_requested OR status = 'running', \
               error_code = CASE WHEN status = 'queued' THEN $2 ELSE error_code END, \
               error_message = CASE WHEN status = 'queued' THEN 'canceled before it started' \
                               ELSE error_message END, \
               finished_at = CASE WHEN status = 'queued' THEN now() ELSE finished_at END, \
               updated_at = now() \
             WHERE id = $1 AND status IN ('queued', 'running') RETURNING status",
        )
        .bind(id.0)
        .bind(ErrorCode::Canceled)
        .fetch_optional(self.pool())
        .await?;
        Ok(match changed {
            Some(JobStatus::Canceled) => CancelOutcome::Canceled,
            Some(_) => CancelOutcome::Requested,
            None => match self.status_of(id).await? {
                None => CancelOutcome::NotFound,
                Some(s) => CancelOutcome::AlreadyTerminal(s),
            },
        })
    }
}
