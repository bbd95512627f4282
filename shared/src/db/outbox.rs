//! The outbox: queued jobs whose queue message the broker has not confirmed yet. The API marks
//! confirmed publications; its relay republishes the rest (with the accepting request's trace
//! context) once the broker is back.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use orfeas_vocab::{JobId, JobMessage, JobSpec};
use sqlx::Row;

use super::{Db, DbError};

/// A job waiting in the outbox.
#[derive(Debug, Clone)]
pub struct OutboxEntry {
    pub message: JobMessage,
    pub trace_context: HashMap<String, String>,
}

impl Db {
    /// Marks jobs' messages as confirmed by the queue (they leave the outbox).
    pub async fn mark_enqueued(&self, ids: &[JobId]) -> Result<(), DbError> {
        let ids: Vec<uuid::Uuid> = ids.iter().map(|i| i.0).collect();
        sqlx::query(
            "UPDATE jobs SET enqueued_at = now() WHERE id = ANY($1) AND enqueued_at IS NULL",
        )
        .bind(&ids)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Claims, for `claim`, queued jobs older than `older_than` whose message the queue has not
    /// confirmed, oldest first, as messages with the trace context of the request that accepted
    /// them. A claimed job is invisible to other relays until its claim ends, so several API
    /// replicas publish each pending job once; a relay that dies mid-round leaves its claims to
    /// expire.
    pub async fn claim_outbox(
        &self,
        older_than: Duration,
        limit: i64,
        claim: Duration,
    ) -> Result<Vec<OutboxEntry>, DbError> {
        let rows = sqlx::query(
            "UPDATE jobs SET outbox_claimed_until = now() + make_interval(secs => $3) \
             WHERE id IN (SELECT id FROM jobs WHERE enqueued_at IS NULL AND status = 'queued' \
                          AND created_at < now() - make_interval(secs => $1) \
                          AND (outbox_claimed_until IS NULL OR outbox_claimed_until < now()) \
                          ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
             RETURNING id, spec, trace_context, created_at",
        )
        .bind(older_than.as_secs_f64())
        .bind(limit)
        .bind(claim.as_secs_f64())
        .fetch_all(self.pool())
        .await?;
        let mut entries = rows
            .iter()
            .map(|r| {
                let id = JobId(r.try_get("id")?);
                let spec: serde_json::Value = r.try_get("spec")?;
                let spec: JobSpec = serde_json::from_value(spec)
                    .map_err(|e| DbError::Corrupt(format!("job {id}: spec: {e}")))?;
                let trace: serde_json::Value = r.try_get("trace_context")?;
                let created: DateTime<Utc> = r.try_get("created_at")?;
                Ok((
                    created,
                    OutboxEntry {
                        message: JobMessage::for_job(id, &spec),
                        trace_context: serde_json::from_value(trace).unwrap_or_default(),
                    },
                ))
            })
            .collect::<Result<Vec<_>, DbError>>()?;
        entries.sort_by_key(|(created, _)| *created);
        Ok(entries.into_iter().map(|(_, e)| e).collect())
    }

    /// The backlog of both outboxes — `jobs` (queued jobs whose message the broker has not
    /// confirmed) and `webhooks` (pending deliveries whose time has come) — as (outbox, entries
    /// due, seconds the oldest has been due). One statement, so a scrape costs one round trip.
    pub async fn outbox_backlog(&self) -> Result<Vec<(String, i64, f64)>, DbError> {
        Ok(sqlx::query_as(
            "SELECT 'jobs', count(*), \
               COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 \
             FROM jobs WHERE enqueued_at IS NULL AND status = 'queued' \
             UNION ALL \
             SELECT 'webhooks', count(*), \
               COALESCE(EXTRACT(EPOCH FROM now() - min(next_at)), 0)::float8 \
             FROM webhook_deliveries WHERE status = 'pending' AND next_at <= now()",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// Gives claimed jobs back to the outbox at once (their publish failed).
    pub async fn release_outbox(&self, ids: &[JobId]) -> Result<(), DbError> {
        let ids: Vec<uuid::Uuid> = ids.iter().map(|i| i.0).collect();
        sqlx::query("UPDATE jobs SET outbox_claimed_until = NULL WHERE id = ANY($1)")
            .bind(&ids)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
