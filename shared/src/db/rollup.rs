//! Hourly rollups of the ledger, so performance history outlives the raw rows retention deletes:
//! per hour, engine, stage, device and batch size (stage runs and their time), and per hour,
//! engine, status and error code (jobs, pipeline time and queue wait with histogram counts for
//! percentiles, the succeeded jobs' option sums). Windows longer than raw history keeps are
//! answered from them.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration as Span, DurationRound, Utc};
use orfeas_vocab::{ErrorCode, JobStatus, Stage};
use sqlx::Row;

use super::{Db, DbError};
use crate::performance::{Durations, LedgerFigures, StageShare, Summary, Window};

/// Upper bounds (seconds) of the histogram buckets kept for pipeline time and queue wait; the
/// last bucket is everything above.
pub const HISTOGRAM_BOUNDS: [f64; 23] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    1_200.0, 1_800.0, 3_600.0, 7_200.0, 21_600.0, 43_200.0, 86_400.0,
];

/// A histogram over [`HISTOGRAM_BOUNDS`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Histogram(Vec<i64>);

impl Histogram {
    fn empty() -> Self {
        Histogram(vec![0; HISTOGRAM_BOUNDS.len() + 1])
    }

    fn add(&mut self, v: f64) {
        let i = HISTOGRAM_BOUNDS
            .iter()
            .position(|&b| v <= b)
            .unwrap_or(HISTOGRAM_BOUNDS.len());
        self.0[i] += 1;
    }

    fn merge(&mut self, other: &[i64]) {
        for (a, b) in self.0.iter_mut().zip(other) {
            *a += b;
        }
    }

    /// The `q` quantile, interpolated linearly inside its bucket.
    pub fn quantile(&self, q: f64) -> f64 {
        let total: i64 = self.0.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let rank = q * total as f64;
        let mut seen = 0.0;
        for (i, &n) in self.0.iter().enumerate() {
            if n == 0 {
                continue;
            }
            if seen + n as f64 >= rank {
                let lo = if i == 0 { 0.0 } else { HISTOGRAM_BOUNDS[i - 1] };
                let hi = HISTOGRAM_BOUNDS.get(i).copied().unwrap_or(lo * 2.0);
                return lo + (hi - lo) * ((rank - seen) / n as f64).clamp(0.0, 1.0);
            }
            seen += n as f64;
        }
        HISTOGRAM_BOUNDS[HISTOGRAM_BOUNDS.len() - 1]
    }
}

/// Rollups wait this long after an hour ends, for jobs committed just after it.
const GRACE_MINUTES: i64 = 5;

#[derive(Default)]
struct JobsRow {
    jobs: i64,
    pipeline_sum: f64,
    pipeline: Histogram,
    wait_sum: f64,
    wait: Histogram,
    batch_size_sum: f64,
    resolution_sum: f64,
    steps_sum: f64,
    steps_jobs: i64,
    input_bytes_sum: f64,
}

impl Db {
    /// Rolls up every complete hour not rolled up yet; returns the hours done.
    pub async fn rollup(&self) -> Result<u32, DbError> {
        let until: DateTime<Utc> = (Utc::now() - Span::minutes(GRACE_MINUTES))
            .duration_trunc(Span::hours(1))
            .map_err(|e| DbError::Corrupt(e.to_string()))?;
        let mut done = 0;
        loop {
            let from: DateTime<Utc> = sqlx::query_scalar("SELECT rolled_until FROM rollup_state")
                .fetch_one(self.pool())
                .await?;
            if from >= until {
                return Ok(done);
            }
            self.rollup_hour(from).await?;
            done += 1;
        }
    }

    async fn rollup_hour(&self, hour: DateTime<Utc>) -> Result<(), DbError> {
        let next = hour + Span::hours(1);
        let mut tx = self.pool().begin().await?;
        // Claim the hour: a concurrent rollup waits here and then finds it done.
        let claimed: Option<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT rolled_until FROM rollup_state WHERE rolled_until = $1 FOR UPDATE",
        )
        .bind(hour)
        .fetch_optional(&mut *tx)
        .await?;
        if claimed.is_none() {
            tx.rollback().await?;
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO ledger_hourly (hour, engine, stage, device, batch_size, runs, seconds_sum, seconds_max) \
             SELECT $1, j.engine, s.stage, s.device, s.batch_size, count(*), sum(s.duration_seconds), \
                    max(s.duration_seconds) \
             FROM jobs j JOIN stage_timings s ON s.job_id = j.id AND s.attempt = j.attempt \
             WHERE j.status = 'succeeded' AND j.finished_at >= $1 AND j.finished_at < $2 \
             GROUP BY j.engine, s.stage, s.device, s.batch_size \
             ON CONFLICT (hour, engine, stage, device, batch_size) DO UPDATE SET \
               runs = EXCLUDED.runs, seconds_sum = EXCLUDED.seconds_sum, seconds_max = EXCLUDED.seconds_max",
        )
        .bind(hour)
        .bind(next)
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query(
            "SELECT j.engine, j.status, COALESCE(j.error_code, '') AS code, \
                    COALESCE(sum(s.duration_seconds), 0)::float8 AS total, \
                    COALESCE(EXTRACT(EPOCH FROM (j.started_at - j.created_at)), 0)::float8 AS wait, \
                    COALESCE(max(s.batch_size) FILTER (WHERE s.stage = 'shape_generation'), 0)::float8 AS batch, \
                    (j.spec->>'octree_resolution')::float8 AS res, (j.spec->>'steps')::float8 AS steps, \
                    j.input_bytes::float8 AS bytes \
             FROM jobs j LEFT JOIN stage_timings s ON s.job_id = j.id AND s.attempt = j.attempt \
             WHERE j.status IN ('succeeded', 'failed', 'canceled') \
               AND j.finished_at >= $1 AND j.finished_at < $2 \
             GROUP BY j.id",
        )
        .bind(hour)
        .bind(next)
        .fetch_all(&mut *tx)
        .await?;
        let mut groups: BTreeMap<(String, String, String), JobsRow> = BTreeMap::new();
        for r in &rows {
            let status: JobStatus = r.try_get("status")?;
            let key = (
                r.try_get::<String, _>("engine")?,
                status.as_str().to_owned(),
                r.try_get::<String, _>("code")?,
            );
            let g = groups.entry(key).or_insert_with(|| JobsRow {
                pipeline: Histogram::empty(),
                wait: Histogram::empty(),
                ..JobsRow::default()
            });
            let total: f64 = r.try_get("total")?;
            let wait: f64 = r.try_get("wait")?;
            g.jobs += 1;
            g.pipeline_sum += total;
            g.pipeline.add(total);
            g.wait_sum += wait;
            g.wait.add(wait);
            g.batch_size_sum += r.try_get::<f64, _>("batch")?;
            g.resolution_sum += r.try_get::<Option<f64>, _>("res")?.unwrap_or(0.0);
            if let Some(steps) = r.try_get::<Option<f64>, _>("steps")? {
                g.steps_sum += steps;
                g.steps_jobs += 1;
            }
            g.input_bytes_sum += r.try_get::<f64, _>("bytes")?;
        }
        for ((engine, status, code), g) in groups {
            sqlx::query(
                "INSERT INTO jobs_hourly (hour, engine, status, error_code, jobs, pipeline_sum, \
                 pipeline_buckets, wait_sum, wait_buckets, batch_size_sum, resolution_sum, steps_sum, \
                 steps_jobs, input_bytes_sum) \
                 VALUES ($1, $2, $3::job_status, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                 ON CONFLICT (hour, engine, status, error_code) DO UPDATE SET jobs = EXCLUDED.jobs, \
                 pipeline_sum = EXCLUDED.pipeline_sum, pipeline_buckets = EXCLUDED.pipeline_buckets, \
                 wait_sum = EXCLUDED.wait_sum, wait_buckets = EXCLUDED.wait_buckets, \
                 batch_size_sum = EXCLUDED.batch_size_sum, resolution_sum = EXCLUDED.resolution_sum, \
                 steps_sum = EXCLUDED.steps_sum, steps_jobs = EXCLUDED.steps_jobs, \
                 input_bytes_sum = EXCLUDED.input_bytes_sum",
            )
            .bind(hour)
            .bind(&engine)
            .bind(&status)
            .bind(&code)
            .bind(g.jobs)
            .bind(g.pipeline_sum)
            .bind(&g.pipeline.0)
            .bind(g.wait_sum)
            .bind(&g.wait.0)
            .bind(g.batch_size_sum)
            .bind(g.resolution_sum)
            .bind(g.steps_sum)
            .bind(g.steps_jobs)
            .bind(g.input_bytes_sum)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE rollup_state SET rolled_until = $1")
            .bind(next)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The summary of `window` from the hourly rollups (complete hours only; percentiles are
    /// estimated from the histograms).
    pub async fn summary_from_rollups(&self, window: Window) -> Result<Summary, DbError> {
        self.rollup().await?;
        let from = Utc::now() - Span::seconds(window.seconds());
        let jobs = sqlx::query(
            "SELECT status, error_code, jobs, pipeline_sum, pipeline_buckets, wait_sum, wait_buckets, \
             batch_size_sum, resolution_sum, steps_sum, steps_jobs, input_bytes_sum \
             FROM jobs_hourly WHERE hour >= $1",
        )
        .bind(from)
        .fetch_all(self.pool())
        .await?;
        let mut ok = JobsRow {
            pipeline: Histogram::empty(),
            wait: Histogram::empty(),
            ..JobsRow::default()
        };
        let mut failed = 0;
        let mut canceled = 0;
        let mut failures: BTreeMap<String, i64> = BTreeMap::new();
        for r in &jobs {
            let n: i64 = r.try_get("jobs")?;
            match r.try_get::<JobStatus, _>("status")? {
                JobStatus::Succeeded => {
                    ok.jobs += n;
                    ok.pipeline_sum += r.try_get::<f64, _>("pipeline_sum")?;
                    ok.pipeline
                        .merge(&r.try_get::<Vec<i64>, _>("pipeline_buckets")?);
                    ok.wait_sum += r.try_get::<f64, _>("wait_sum")?;
                    ok.wait.merge(&r.try_get::<Vec<i64>, _>("wait_buckets")?);
                    ok.batch_size_sum += r.try_get::<f64, _>("batch_size_sum")?;
                    ok.resolution_sum += r.try_get::<f64, _>("resolution_sum")?;
                    ok.steps_sum += r.try_get::<f64, _>("steps_sum")?;
                    ok.steps_jobs += r.try_get::<i64, _>("steps_jobs")?;
                    ok.input_bytes_sum += r.try_get::<f64, _>("input_bytes_sum")?;
                }
                JobStatus::Failed => {
                    failed += n;
                    *failures.entry(r.try_get("error_code")?).or_default() += n;
                }
                _ => canceled += n,
            }
        }
        let stage_rows = sqlx::query(
            "SELECT stage, sum(runs)::int8 AS n, sum(seconds_sum)::float8 AS total \
             FROM ledger_hourly WHERE hour >= $1 GROUP BY stage ORDER BY stage",
        )
        .bind(from)
        .fetch_all(self.pool())
        .await?;
        let mut stages = Vec::new();
        for r in &stage_rows {
            let n: i64 = r.try_get("n")?;
            let total: f64 = r.try_get("total")?;
            stages.push((
                r.try_get::<Stage, _>("stage")?,
                n,
                total / n.max(1) as f64,
                total,
            ));
        }
        let mut failures: Vec<(ErrorCode, i64)> = failures
            .into_iter()
            .map(|(code, n)| (code.parse().unwrap_or(ErrorCode::Internal), n))
            .collect();
        failures.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        let per = |sum: f64, n: i64| if n > 0 { sum / n as f64 } else { 0.0 };
        Ok(Summary::from(LedgerFigures {
            window,
            pipelines: ok.jobs,
            failed,
            canceled,
            duration: Durations::new(
                per(ok.pipeline_sum, ok.jobs),
                ok.pipeline.quantile(0.5),
                ok.pipeline.quantile(0.95),
            ),
            queue_wait: Durations::new(
                per(ok.wait_sum, ok.jobs),
                ok.wait.quantile(0.5),
                ok.wait.quantile(0.95),
            ),
            stages: StageShare::from_totals(&stages),
            average_batch_size: per(ok.batch_size_sum, ok.jobs),
            failures,
            average_octree_resolution: per(ok.resolution_sum, ok.jobs),
            average_steps: per(ok.steps_sum, ok.steps_jobs),
            average_input_bytes: per(ok.input_bytes_sum, ok.jobs),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_inside_their_bucket() {
        let mut h = Histogram::empty();
        for v in [0.3, 0.4, 0.45, 3.0] {
            h.add(v);
        }
        // Three in (0.25, 0.5], one in (2.5, 5].
        let p50 = h.quantile(0.5);
        assert!(p50 > 0.25 && p50 <= 0.5, "{p50}");
        let p95 = h.quantile(0.95);
        assert!(p95 > 2.5 && p95 <= 5.0, "{p95}");
        assert_eq!(Histogram::empty().quantile(0.5), 0.0);
        let mut big = Histogram::empty();
        big.add(1e6);
        assert!(big.quantile(0.5) >= 86_400.0);
    }
}
