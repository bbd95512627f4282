//! The per-stage ledger: one row per job, stage and attempt (written with the attempt's terminal
//! state), and the operator summary computed from it in SQL.

use chrono::{DateTime, Utc};
use orfeas_vocab::{Device, ErrorCode, JobId, JobStatus, Stage};
use sqlx::Row;

use super::{Db, DbError};
use crate::performance::{Durations, LedgerFigures, StageShare, Summary, Window};

/// The longest window answered from raw rows.
pub const RAW_SUMMARY_MAX: std::time::Duration = std::time::Duration::from_secs(2 * 86_400);

/// One ledger row.
#[derive(Debug, Clone, PartialEq)]
pub struct StageRecord {
    pub stage: Stage,
    pub attempt: i32,
    pub worker_id: String,
    pub device: Device,
    pub batch_size: i32,
    pub started_at: DateTime<Utc>,
    pub duration_seconds: f64,
    /// Growth of the worker's resident memory during the stage (for `shape_generation`, the
    /// whole batch's).
    pub peak_memory_bytes: Option<i64>,
}

pub(super) async fn insert_stage_records(
    tx: &mut sqlx::PgTransaction<'_>,
    id: JobId,
    stages: &[StageRecord],
) -> Result<(), DbError> {
    for s in stages {
        sqlx::query(
            "INSERT INTO stage_timings (job_id, stage, attempt, worker_id, device, batch_size, \
             started_at, duration_seconds, peak_memory_bytes) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
        )
        .bind(id.0)
        .bind(s.stage)
        .bind(s.attempt)
        .bind(&s.worker_id)
        .bind(s.device)
        .bind(s.batch_size)
        .bind(s.started_at)
        .bind(s.duration_seconds)
        .bind(s.peak_memory_bytes)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl Db {
    pub async fn stage_records(&self, id: JobId) -> Result<Vec<StageRecord>, DbError> {
        let rows = sqlx::query(
            "SELECT stage, attempt, worker_id, device, batch_size, started_at, \
             duration_seconds, peak_memory_bytes FROM stage_timings WHERE job_id = $1 \
             ORDER BY attempt, stage",
        )
        .bind(id.0)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StageRecord {
                    stage: r.try_get("stage")?,
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

    /// The operator summary of the last `window`: from the raw ledger up to
    /// [`RAW_SUMMARY_MAX`] (exact percentiles), from the hourly rollups beyond (retention may
    /// have deleted the raw rows; percentiles are histogram estimates).
    pub async fn summary(&self, window: Window) -> Result<Summary, DbError> {
        if window.seconds() > RAW_SUMMARY_MAX.as_secs() as i64 {
            self.summary_from_rollups(window).await
        } else {
            self.summary_from_rows(window).await
        }
    }

    /// The ledger over the last `window`: per-job durations and queue waits (percentiles in
    /// SQL), per-stage shares, failures by code and the succeeded jobs' average options.
    async fn summary_from_rows(&self, window: Window) -> Result<Summary, DbError> {
        let pool = self.pool();
        let secs = window.seconds() as f64;
        let per_job = sqlx::query(
            "WITH runs AS (
                 SELECT j.id, sum(s.duration_seconds) AS total,
                        EXTRACT(EPOCH FROM (j.started_at - j.created_at))::float8 AS wait,
                        max(s.batch_size) FILTER (WHERE s.stage = 'shape_generation') AS batch
                 FROM jobs j JOIN stage_timings s ON s.job_id = j.id AND s.attempt = j.attempt
                 WHERE j.status = 'succeeded' AND j.finished_at >= now() - make_interval(secs => $1)
                 GROUP BY j.id, j.started_at, j.created_at)
             SELECT count(*) AS n,
                    COALESCE(avg(total), 0)::float8 AS avg,
                    COALESCE(percentile_cont(0.5) WITHIN GROUP (ORDER BY total), 0)::float8 AS p50,
                    COALESCE(percentile_cont(0.95) WITHIN GROUP (ORDER BY total), 0)::float8 AS p95,
                    COALESCE(avg(wait), 0)::float8 AS wavg,
                    COALESCE(percentile_cont(0.5) WITHIN GROUP (ORDER BY wait), 0)::float8 AS w50,
                    COALESCE(percentile_cont(0.95) WITHIN GROUP (ORDER BY wait), 0)::float8 AS w95,
                    COALESCE(avg(batch), 0)::float8 AS batch
             FROM runs",
        )
        .bind(secs)
        .fetch_one(pool)
        .await?;
        let stage_rows = sqlx::query(
            "SELECT s.stage, count(*) AS n, avg(s.duration_seconds)::float8 AS avg,
                    sum(s.duration_seconds)::float8 AS total
             FROM jobs j JOIN stage_timings s ON s.job_id = j.id AND s.attempt = j.attempt
             WHERE j.status = 'succeeded' AND j.finished_at >= now() - make_interval(secs => $1)
             GROUP BY s.stage ORDER BY s.stage",
        )
        .bind(secs)
        .fetch_all(pool)
        .await?;
        let ends = sqlx::query(
            "SELECT status, error_code, count(*) AS n FROM jobs
             WHERE status IN ('failed', 'canceled') AND finished_at >= now() - make_interval(secs => $1)
             GROUP BY status, error_code ORDER BY n DESC, error_code",
        )
        .bind(secs)
        .fetch_all(pool)
        .await?;
        let options = sqlx::query(
            "SELECT COALESCE(avg((spec->>'octree_resolution')::float8), 0)::float8 AS res,
                    COALESCE(avg((spec->>'steps')::float8), 0)::float8 AS steps,
                    COALESCE(avg(input_bytes), 0)::float8 AS bytes
             FROM jobs WHERE status = 'succeeded' AND finished_at >= now() - make_interval(secs => $1)",
        )
        .bind(secs)
        .fetch_one(pool)
        .await?;

        let mut stages = Vec::new();
        for r in &stage_rows {
            stages.push((
                r.try_get::<Stage, _>("stage")?,
                r.try_get::<i64, _>("n")?,
                r.try_get::<f64, _>("avg")?,
                r.try_get::<f64, _>("total")?,
            ));
        }
        let mut failed = 0;
        let mut canceled = 0;
        let mut failures = Vec::new();
        for r in &ends {
            let status: JobStatus = r.try_get("status")?;
            let n: i64 = r.try_get("n")?;
            if status == JobStatus::Failed {
                failed += n;
                let code: Option<ErrorCode> = r.try_get("error_code")?;
                failures.push((code.unwrap_or(ErrorCode::Internal), n));
            } else {
                canceled += n;
            }
        }
        Ok(Summary::from(LedgerFigures {
            window,
            pipelines: per_job.try_get("n")?,
            failed,
            canceled,
            duration: Durations::new(
                per_job.try_get("avg")?,
                per_job.try_get("p50")?,
                per_job.try_get("p95")?,
            ),
            queue_wait: Durations::new(
                per_job.try_get("wavg")?,
                per_job.try_get("w50")?,
                per_job.try_get("w95")?,
            ),
            stages: StageShare::from_totals(&stages),
            average_batch_size: per_job.try_get("batch")?,
            failures,
            average_octree_resolution: options.try_get("res")?,
            average_steps: options.try_get("steps")?,
            average_input_bytes: options.try_get("bytes")?,
        }))
    }
}
