//! PostgreSQL: the jobs table (with its outbox column) and the per-stage ledger.
//!
//! Every status transition is one statement guarded by the expected current state (and, for a
//! running job, by the attempt number), so a redelivered message or a second worker can never
//! move a job twice. An attempt's stage rows are written in the transaction that ends it.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool, Row};

use crate::domain::{JobId, JobMessage, JobSpec, JobStatus};
use crate::{MeshFormat, Stage};

/// The embedded migrations of `migrations/`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database unavailable: {0}")]
    Unavailable(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the database schema is not up to date ({0}); run `orfeas migrate`")]
    SchemaOutdated(String),
    #[error("invalid database URL: {0}")]
    BadUrl(String),
    #[error("stored job {0} is unreadable: {1}")]
    Corrupt(JobId, String),
}

/// Handle to the job database (a connection pool; cheap to clone).
#[derive(Debug, Clone)]
pub struct Db {
    pool: PgPool,
}

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
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub outputs: Vec<MeshFormat>,
    pub enqueued_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// One ledger row.
#[derive(Debug, Clone, PartialEq)]
pub struct StageRecord {
    pub stage: Stage,
    pub attempt: i32,
    pub worker_id: String,
    pub device: String,
    pub batch_size: i32,
    pub started_at: DateTime<Utc>,
    pub duration_seconds: f64,
    /// Growth of the worker's resident memory during the stage (for `shape_generation`, the
    /// whole batch's).
    pub peak_memory_bytes: Option<i64>,
}

/// A learned memory figure of the batch optimizer.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryFigure {
    pub engine: String,
    pub resolution_bucket: i32,
    pub device: String,
    pub bytes_per_job: i64,
    pub samples: i64,
}

/// A job waiting in the outbox.
#[derive(Debug, Clone)]
pub struct OutboxEntry {
    pub message: JobMessage,
    pub trace_context: std::collections::HashMap<String, String>,
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
    pub trace_context: std::collections::HashMap<String, String>,
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

/// The columns `job_from_row` reads (a macro so queries stay `'static` strings).
macro_rules! job_columns {
    () => {
        "id, status, spec, input_key, input_bytes, stage::text AS stage, progress, attempt, \
         worker_id, cancel_requested, error_code, error_message, outputs, enqueued_at, created_at, \
         started_at, finished_at"
    };
}

fn job_from_row(row: &sqlx::postgres::PgRow) -> Result<JobRecord, DbError> {
    let id = JobId(row.try_get("id")?);
    let spec: serde_json::Value = row.try_get("spec")?;
    let spec: JobSpec =
        serde_json::from_value(spec).map_err(|e| DbError::Corrupt(id, e.to_string()))?;
    let stage: Option<String> = row.try_get("stage")?;
    let stage = stage
        .map(|s| Stage::from_str(&s))
        .transpose()
        .map_err(|e| DbError::Corrupt(id, e.to_string()))?;
    let outputs: Vec<String> = row.try_get("outputs")?;
    let outputs = outputs
        .iter()
        .map(|s| MeshFormat::from_str(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| DbError::Corrupt(id, e))?;
    Ok(JobRecord {
        id,
        status: row.try_get("status")?,
        spec,
        input_key: row.try_get("input_key")?,
        input_bytes: row.try_get("input_bytes")?,
        stage,
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

fn parse_options(url: &str) -> Result<PgConnectOptions, DbError> {
    PgConnectOptions::from_str(url).map_err(|e| DbError::BadUrl(e.to_string()))
}

impl Db {
    /// Connects lazily: the pool opens connections on demand and replaces broken ones, so a
    /// PostgreSQL restart heals without operator action.
    pub fn connect_lazy(url: &str, max_connections: u32) -> Result<Db, DbError> {
        let opts = parse_options(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .test_before_acquire(true)
            .connect_lazy_with(opts);
        Ok(Db { pool })
    }

    /// Creates the database if it is missing, then applies every pending migration.
    pub async fn migrate(url: &str) -> Result<Db, DbError> {
        let opts = parse_options(url)?;
        let name = opts.get_database().unwrap_or("postgres").to_owned();
        let admin = opts.clone().database("postgres");
        let mut conn = admin.connect().await?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(&name)
                .fetch_one(&mut conn)
                .await?;
        if !exists {
            let quoted = name.replace('"', "\"\"");
            // The name is quoted with embedded quotes doubled, so it cannot break out.
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{quoted}\"")))
                .execute(&mut conn)
                .await?;
            tracing::info!(database = %name, "created database");
        }
        conn.close().await?;
        let db = Db::connect_lazy(url, 2)?;
        MIGRATOR.run(&db.pool).await?;
        Ok(db)
    }

    /// Fails unless every embedded migration has been applied (checked at startup).
    pub async fn check_schema(&self) -> Result<(), DbError> {
        let applied: Vec<i64> = sqlx::query_scalar(
            "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(ref d) if d.code().as_deref() == Some("42P01") => {
                DbError::SchemaOutdated("no migrations applied".into())
            }
            other => DbError::Unavailable(other),
        })?;
        for m in MIGRATOR.iter() {
            if !applied.contains(&m.version) {
                return Err(DbError::SchemaOutdated(format!(
                    "migration {} ({}) missing",
                    m.version, m.description
                )));
            }
        }
        Ok(())
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Inserts a job, or returns the one an earlier request with the same idempotency key made.
    pub async fn insert_job(&self, job: &NewJob) -> Result<InsertOutcome, DbError> {
        let spec =
            serde_json::to_value(&job.spec).map_err(|e| DbError::Corrupt(job.id, e.to_string()))?;
        let inserted = sqlx::query(concat!(
            "INSERT INTO jobs (id, engine, spec, input_key, input_bytes, priority, deadline, \
             idempotency_key, request_hash, trace_context) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (idempotency_key) DO NOTHING RETURNING ",
            job_columns!()
        ))
        .bind(job.id.0)
        .bind(job.spec.engine.as_str())
        .bind(spec)
        .bind(&job.input_key)
        .bind(job.input_bytes)
        .bind(i16::from(job.spec.priority))
        .bind(job.spec.deadline)
        .bind(&job.idempotency_key)
        .bind(&job.request_hash)
        .bind(serde_json::to_value(&job.trace_context).unwrap_or_default())
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = inserted {
            return Ok(InsertOutcome::Created(job_from_row(&row)?));
        }
        let row = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            ", request_hash FROM jobs WHERE idempotency_key = $1"
        ))
        .bind(&job.idempotency_key)
        .fetch_one(&self.pool)
        .await?;
        let hash: Option<String> = row.try_get("request_hash")?;
        Ok(InsertOutcome::Existing {
            job: job_from_row(&row)?,
            same_request: hash == job.request_hash,
        })
    }

    /// The job an idempotency key created, and the fingerprint of that request.
    pub async fn find_by_idempotency_key(
        &self,
        key: &str,
    ) -> Result<Option<(uuid::Uuid, Option<String>)>, DbError> {
        Ok(
            sqlx::query_as("SELECT id, request_hash FROM jobs WHERE idempotency_key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Marks jobs' messages as confirmed by the queue (they leave the outbox).
    pub async fn mark_enqueued(&self, ids: &[JobId]) -> Result<(), DbError> {
        let ids: Vec<uuid::Uuid> = ids.iter().map(|i| i.0).collect();
        sqlx::query(
            "UPDATE jobs SET enqueued_at = now() WHERE id = ANY($1) AND enqueued_at IS NULL",
        )
        .bind(&ids)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Queued jobs whose message the queue has not confirmed, oldest first, as messages with
    /// the trace context of the request that accepted them.
    pub async fn outbox(
        &self,
        older_than: Duration,
        limit: i64,
    ) -> Result<Vec<OutboxEntry>, DbError> {
        let rows = sqlx::query(
            "SELECT id, spec, trace_context FROM jobs WHERE enqueued_at IS NULL AND status = 'queued' \
             AND created_at < now() - make_interval(secs => $1) ORDER BY created_at LIMIT $2",
        )
        .bind(older_than.as_secs_f64())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let id = JobId(r.try_get("id")?);
                let spec: serde_json::Value = r.try_get("spec")?;
                let spec: JobSpec = serde_json::from_value(spec)
                    .map_err(|e| DbError::Corrupt(id, e.to_string()))?;
                let trace: serde_json::Value = r.try_get("trace_context")?;
                Ok(OutboxEntry {
                    message: JobMessage::for_job(id, &spec),
                    trace_context: serde_json::from_value(trace).unwrap_or_default(),
                })
            })
            .collect()
    }

    pub async fn get_job(&self, id: JobId) -> Result<Option<JobRecord>, DbError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
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
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(job_from_row).collect()
    }

    /// Number of jobs per status.
    pub async fn jobs_by_status(&self) -> Result<Vec<(JobStatus, i64)>, DbError> {
        Ok(
            sqlx::query_as("SELECT status, count(*) FROM jobs GROUP BY status")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn count_queued(&self) -> Result<i64, DbError> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM jobs WHERE status = 'queued'")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    pub async fn stage_records(&self, id: JobId) -> Result<Vec<StageRecord>, DbError> {
        let rows = sqlx::query(
            "SELECT stage::text AS stage, attempt, worker_id, device, batch_size, started_at, \
             duration_seconds, peak_memory_bytes FROM stage_timings WHERE job_id = $1 \
             ORDER BY attempt, stage_timings.stage",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let stage: String = r.try_get("stage")?;
                Ok(StageRecord {
                    stage: Stage::from_str(&stage)
                        .map_err(|e| DbError::Corrupt(id, e.to_string()))?,
                    attempt: r.try_get("attempt")?,
                    worker_id: r.try_get("worker_id")?,
                    device: r.try_get("device")?,
                    batch_size: r.try_get("batch_size")?,
                    started_at: r.try_get("started_at")?,
                    duration_seconds: r.try_get("duration_seconds")?,
                    peak_memory_bytes: r.try_get("peak_memory_bytes")?,
                })
            })
            .collect()
    }

    /// Cancels a queued job outright, or asks a running one to stop at its next stage boundary.
    pub async fn request_cancel(&self, id: JobId) -> Result<CancelOutcome, DbError> {
        let canceled = sqlx::query(
            "UPDATE jobs SET status = 'canceled', error_code = 'canceled', \
             error_message = 'canceled before it started', finished_at = now(), updated_at = now() \
             WHERE id = $1 AND status = 'queued'",
        )
        .bind(id.0)
        .execute(&self.pool)
        .await?;
        if canceled.rows_affected() == 1 {
            return Ok(CancelOutcome::Canceled);
        }
        let requested = sqlx::query(
            "UPDATE jobs SET cancel_requested = TRUE, updated_at = now() \
             WHERE id = $1 AND status = 'running'",
        )
        .bind(id.0)
        .execute(&self.pool)
        .await?;
        if requested.rows_affected() == 1 {
            return Ok(CancelOutcome::Requested);
        }
        let status: Option<JobStatus> = sqlx::query_scalar("SELECT status FROM jobs WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match status {
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
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = row {
            return Ok(StartOutcome::Started(Box::new(job_from_row(&row)?)));
        }
        // A running job with a pending cancel request that lost its worker: cancel it now.
        sqlx::query(
            "UPDATE jobs SET status = 'canceled', error_code = 'canceled', \
             error_message = 'canceled while running', finished_at = now(), updated_at = now() \
             WHERE id = $1 AND status = 'running' AND cancel_requested",
        )
        .bind(id.0)
        .execute(&self.pool)
        .await?;
        let status: Option<JobStatus> = sqlx::query_scalar("SELECT status FROM jobs WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        Ok(StartOutcome::Skip(status))
    }

    /// Records the stage an attempt is entering; returns whether a cancel was requested.
    pub async fn enter_stage(
        &self,
        id: JobId,
        attempt: i32,
        stage: Stage,
        progress: i16,
    ) -> Result<bool, DbError> {
        let cancel: Option<bool> = sqlx::query_scalar(
            "UPDATE jobs SET stage = $3::pipeline_stage, progress = GREATEST(progress, $4), \
             updated_at = now() WHERE id = $1 AND attempt = $2 AND status = 'running' \
             RETURNING cancel_requested",
        )
        .bind(id.0)
        .bind(attempt)
        .bind(stage.as_str())
        .bind(progress)
        .fetch_optional(&self.pool)
        .await?;
        // No row: another attempt owns the job now, so this one should stop too.
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
        let mut tx = self.pool.begin().await?;
        let (status, code, message, outputs): (JobStatus, Option<&str>, Option<&str>, Vec<String>) =
            match end {
                JobEnd::Succeeded { outputs } => (
                    JobStatus::Succeeded,
                    None,
                    None,
                    outputs.iter().map(|f| f.extension().to_owned()).collect(),
                ),
                JobEnd::Failed { code, message } => (
                    JobStatus::Failed,
                    Some(code.as_str()),
                    Some(message.as_str()),
                    Vec::new(),
                ),
                JobEnd::Canceled => (
                    JobStatus::Canceled,
                    Some("canceled"),
                    Some("canceled while running"),
                    Vec::new(),
                ),
            };
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
        for s in stages {
            sqlx::query(
                "INSERT INTO stage_timings (job_id, stage, attempt, worker_id, device, batch_size, \
                 started_at, duration_seconds, peak_memory_bytes) \
                 VALUES ($1, $2::pipeline_stage, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
            )
            .bind(id.0)
            .bind(s.stage.as_str())
            .bind(s.attempt)
            .bind(&s.worker_id)
            .bind(&s.device)
            .bind(s.batch_size)
            .bind(s.started_at)
            .bind(s.duration_seconds)
            .bind(s.peak_memory_bytes)
            .execute(&mut *tx)
            .await?;
        }
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
        .fetch_optional(&self.pool)
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
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The optimizer's learned memory figures for a device.
    pub async fn memory_model(&self, device: &str) -> Result<Vec<MemoryFigure>, DbError> {
        let rows = sqlx::query(
            "SELECT engine, resolution_bucket, device, bytes_per_job, samples FROM memory_model \
             WHERE device = $1",
        )
        .bind(device)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MemoryFigure {
                    engine: r.try_get("engine")?,
                    resolution_bucket: r.try_get("resolution_bucket")?,
                    device: r.try_get("device")?,
                    bytes_per_job: r.try_get("bytes_per_job")?,
                    samples: r.try_get("samples")?,
                })
            })
            .collect()
    }

    pub async fn save_memory_figure(&self, f: &MemoryFigure) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO memory_model (engine, resolution_bucket, device, bytes_per_job, samples) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (engine, resolution_bucket, device) DO UPDATE \
             SET bytes_per_job = EXCLUDED.bytes_per_job, samples = EXCLUDED.samples, updated_at = now()",
        )
        .bind(&f.engine)
        .bind(f.resolution_bucket)
        .bind(&f.device)
        .bind(f.bytes_per_job.max(1))
        .bind(f.samples)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Fails a job that never started running (deadline passed, input missing, retries out).
    pub async fn fail_unstarted(
        &self,
        id: JobId,
        code: &str,
        message: &str,
    ) -> Result<bool, DbError> {
        let r = sqlx::query(
            "UPDATE jobs SET status = 'failed', error_code = $2, error_message = $3, \
             finished_at = now(), updated_at = now() WHERE id = $1 AND status IN ('queued', 'running')",
        )
        .bind(id.0)
        .bind(code)
        .bind(message)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEnd {
    Succeeded { outputs: Vec<MeshFormat> },
    Failed { code: String, message: String },
    Canceled,
}
