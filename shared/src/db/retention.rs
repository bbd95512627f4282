//! What retention reads and deletes: finished jobs older than the retention period — only once
//! their hour is rolled up, so the operator history keeps them — with their stage rows.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use orfeas_vocab::{Artifact, JobId};
use sqlx::Row;

use super::{Db, DbError};

/// A finished job past retention, with the objects it stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Expired {
    pub id: JobId,
    pub input_key: String,
    pub outputs: Vec<Artifact>,
}

impl Db {
    /// At most `limit` terminal jobs finished before `before` and already rolled up.
    pub async fn expired_jobs(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Expired>, DbError> {
        let rows = sqlx::query(
            "SELECT id, input_key, outputs FROM jobs \
             WHERE status IN ('succeeded', 'failed', 'canceled') AND finished_at < $1 \
             AND finished_at < (SELECT rolled_until FROM rollup_state) \
             ORDER BY finished_at LIMIT $2",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let id = JobId(r.try_get("id")?);
                let outputs: Vec<String> = r.try_get("outputs")?;
                let outputs = outputs
                    .iter()
                    .map(|s| s.parse::<Artifact>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| DbError::Corrupt(format!("job {id}: outputs: {e}")))?;
                Ok(Expired {
                    id,
                    input_key: r.try_get("input_key")?,
                    outputs,
                })
            })
            .collect()
    }

    /// Deletes terminal jobs and, by cascade, their stage rows; returns how many.
    pub async fn delete_jobs(&self, ids: &[JobId]) -> Result<u64, DbError> {
        let ids: Vec<uuid::Uuid> = ids.iter().map(|i| i.0).collect();
        let r = sqlx::query(
            "DELETE FROM jobs WHERE id = ANY($1) AND status IN ('succeeded', 'failed', 'canceled')",
        )
        .bind(&ids)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected())
    }

    /// Which of `ids` have a job row.
    pub async fn existing_jobs(&self, ids: &[JobId]) -> Result<HashSet<JobId>, DbError> {
        let ids: Vec<uuid::Uuid> = ids.iter().map(|i| i.0).collect();
        let found: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM jobs WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(self.pool())
            .await?;
        Ok(found.into_iter().map(JobId).collect())
    }

    /// Runs `f` while holding the cluster-wide lock `key`, if no other process holds it;
    /// `None` when another does.
    pub async fn with_advisory_lock<T, F>(&self, key: i64, f: F) -> Result<Option<T>, DbError>
    where
        F: AsyncFnOnce() -> T,
    {
        let mut conn = self.pool().acquire().await?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut *conn)
            .await?;
        if !got {
            return Ok(None);
        }
        let out = f().await;
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(key)
            .execute(&mut *conn)
            .await?;
        Ok(Some(out))
    }
}
