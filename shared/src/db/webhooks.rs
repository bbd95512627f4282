//! The webhook outbox (`webhook_deliveries`): claimed by the API's dispatchers with a lease (so
//! replicas never send one delivery twice at once), and its per-delivery log.

use std::time::Duration;

use chrono::{DateTime, Utc};
use orfeas_vocab::JobId;
use sqlx::Row;

use super::{Db, DbError};

/// A delivery due now, claimed.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub job: JobId,
    pub url: String,
    pub payload: serde_json::Value,
    /// Attempts made before this one.
    pub attempts: i32,
}

/// How a delivery attempt went.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempted {
    Delivered {
        status: u16,
    },
    /// Try again at `next`, or give up (`next` = None).
    Retry {
        status: Option<u16>,
        error: String,
        next: Option<Duration>,
    },
    /// The endpoint answered 410 Gone: disable it.
    Gone,
}

/// One delivery as the job view shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct DeliveryLog {
    /// The `webhook-id` (stable across retries).
    pub id: String,
    /// The job event it carries.
    pub event: String,
    pub seq: i64,
    /// `pending`, `delivered`, `failed` (retries used up) or `disabled` (the endpoint answered
    /// 410 Gone).
    pub status: String,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl Db {
    /// Claims up to `limit` due deliveries for `lease`. The claim counts the attempt: an
    /// attempt cut short by a crash or a restart (its receiver may well have seen it) is still
    /// in `attempts` when the lease lapses and another dispatcher tries again.
    pub async fn claim_deliveries(
        &self,
        limit: i64,
        lease: Duration,
    ) -> Result<Vec<Delivery>, DbError> {
        let rows = sqlx::query(
            "UPDATE webhook_deliveries d SET claimed_until = now() + make_interval(secs => $2), \
               attempts = d.attempts + 1 \
             WHERE d.id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' \
               AND next_at <= now() AND (claimed_until IS NULL OR claimed_until < now()) \
               ORDER BY next_at LIMIT $1 FOR UPDATE SKIP LOCKED) \
             RETURNING d.id, d.job_id, d.url, d.payload, d.attempts - 1 AS attempts",
        )
        .bind(limit)
        .bind(lease.as_secs_f64())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Delivery {
                    id: r.try_get("id")?,
                    job: JobId(r.try_get("job_id")?),
                    url: r.try_get("url")?,
                    payload: r.try_get("payload")?,
                    attempts: r.try_get("attempts")?,
                })
            })
            .collect()
    }

    /// Records an attempt's outcome (the attempt itself was counted when it was claimed).
    pub async fn record_delivery(&self, d: &Delivery, outcome: &Attempted) -> Result<(), DbError> {
        match outcome {
            Attempted::Delivered { status } => {
                sqlx::query(
                    "UPDATE webhook_deliveries SET status = 'delivered', last_status = $2, \
                     last_error = NULL, delivered_at = now(), \
                     claimed_until = NULL WHERE id = $1",
                )
                .bind(&d.id)
                .bind(i32::from(*status))
                .execute(self.pool())
                .await?;
            }
            Attempted::Retry {
                status,
                error,
                next,
            } => {
                sqlx::query(
                    "UPDATE webhook_deliveries SET last_status = $2, last_error = $3, \
                     claimed_until = NULL, \
                     status = CASE WHEN $4::float8 IS NULL THEN 'failed' ELSE status END, \
                     next_at = CASE WHEN $4::float8 IS NULL THEN next_at \
                               ELSE now() + make_interval(secs => $4) END \
                     WHERE id = $1",
                )
                .bind(&d.id)
                .bind(status.map(i32::from))
                .bind(error)
                .bind(next.map(|n| n.as_secs_f64()))
                .execute(self.pool())
                .await?;
            }
            Attempted::Gone => {
                let mut tx = self.pool().begin().await?;
                sqlx::query(
                    "INSERT INTO webhook_endpoints (url, reason) VALUES ($1, $2) \
                     ON CONFLICT (url) DO NOTHING",
                )
                .bind(&d.url)
                .bind(format!("answered 410 Gone to {}", d.id))
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE webhook_deliveries SET status = 'disabled', claimed_until = NULL, \
                     last_status = CASE WHEN id = $2 THEN 410 ELSE last_status END, \
                     last_error = 'the endpoint answered 410 Gone; it is disabled' \
                     WHERE url = $1 AND status = 'pending'",
                )
                .bind(&d.url)
                .bind(&d.id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// A job's deliveries, oldest first.
    pub async fn deliveries_of(&self, job: JobId) -> Result<Vec<DeliveryLog>, DbError> {
        let rows = sqlx::query(
            "SELECT id, kind, seq, status, attempts, last_status, last_error, \
             CASE WHEN status = 'pending' THEN next_at END AS next_at, delivered_at \
             FROM webhook_deliveries WHERE job_id = $1 ORDER BY seq",
        )
        .bind(job.0)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeliveryLog {
                    id: r.try_get("id")?,
                    event: r.try_get("kind")?,
                    seq: r.try_get("seq")?,
                    status: r.try_get("status")?,
                    attempts: r.try_get("attempts")?,
                    last_status: r.try_get("last_status")?,
                    last_error: r.try_get("last_error")?,
                    next_attempt_at: r.try_get("next_at")?,
                    delivered_at: r.try_get("delivered_at")?,
                })
            })
            .collect()
    }

    /// The class the database gives a job event kind (checked against the vocabulary's).
    pub async fn webhook_class(&self, kind: &str) -> Result<Option<String>, DbError> {
        Ok(sqlx::query_scalar("SELECT orfeas_webhook_class($1)")
            .bind(kind)
            .fetch_one(self.pool())
            .await?)
    }
}
