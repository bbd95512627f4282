//! API keys as stored, and the owner-scoped counts their quotas read.

use std::time::Duration;

use chrono::{DateTime, Utc};
use orfeas_vocab::Scope;
use sqlx::Row;
use uuid::Uuid;

use super::{Db, DbError};
use crate::auth::{KeyLimits, NewKey, RateLimit};

/// A key as stored (never the key itself).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRecord {
    pub id: Uuid,
    pub name: String,
    pub scope: Scope,
    pub token_sha256: Vec<u8>,
    pub limits: KeyLimits,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// An owner's jobs now: queued + running, and submitted since midnight (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub active: i64,
    pub today: i64,
}

fn key_from_row(row: &sqlx::postgres::PgRow) -> Result<KeyRecord, DbError> {
    let id: Uuid = row.try_get("id")?;
    let scope: String = row.try_get("scope")?;
    let scope = scope
        .parse()
        .map_err(|e| DbError::Corrupt(format!("key {id}: scope: {e}")))?;
    let count: Option<i32> = row.try_get("rate_count")?;
    let period: Option<f64> = row.try_get("rate_period_s")?;
    let rate = match (count, period) {
        (Some(c), Some(p)) if c > 0 && p > 0.0 => Some(RateLimit {
            count: u32::try_from(c).unwrap_or(u32::MAX),
            period: Duration::from_secs_f64(p),
        }),
        _ => None,
    };
    let to_u32 = |v: Option<i32>| v.and_then(|n| u32::try_from(n).ok());
    Ok(KeyRecord {
        id,
        name: row.try_get("name")?,
        scope,
        token_sha256: row.try_get("token_sha256")?,
        limits: KeyLimits {
            rate,
            max_concurrent: to_u32(row.try_get("max_concurrent")?),
            quota_daily: to_u32(row.try_get("quota_daily")?),
        },
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

const KEY_COLUMNS: &str = "id, name, scope, token_sha256, rate_count, rate_period_s, \
     max_concurrent, quota_daily, created_at, revoked_at, last_used_at";

fn opt_i32(v: Option<u32>) -> Option<i32> {
    v.map(|n| i32::try_from(n).unwrap_or(i32::MAX))
}

impl Db {
    pub async fn insert_key(
        &self,
        key: &NewKey,
        name: &str,
        scope: Scope,
        limits: &KeyLimits,
    ) -> Result<KeyRecord, DbError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO api_keys (id, name, scope, token_sha256, rate_count, rate_period_s, \
             max_concurrent, quota_daily) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             RETURNING {KEY_COLUMNS}"
        )))
        .bind(key.id)
        .bind(name)
        .bind(scope.as_str())
        .bind(key.token_sha256.as_slice())
        .bind(opt_i32(limits.rate.map(|r| r.count)))
        .bind(limits.rate.map(|r| r.period.as_secs_f64()))
        .bind(opt_i32(limits.max_concurrent))
        .bind(opt_i32(limits.quota_daily))
        .fetch_one(self.pool())
        .await?;
        key_from_row(&row)
    }

    pub async fn get_key(&self, id: Uuid) -> Result<Option<KeyRecord>, DbError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    pub async fn list_keys(&self) -> Result<Vec<KeyRecord>, DbError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at"
        )))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Revokes a key (by id, or by name when that names one live key); returns it, or `None`
    /// when there is no such live key.
    pub async fn revoke_key(&self, id_or_name: &str) -> Result<Option<KeyRecord>, DbError> {
        let id = Uuid::try_parse(id_or_name).ok();
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE api_keys SET revoked_at = now() \
             WHERE revoked_at IS NULL AND (id = $1 OR ($1 IS NULL AND name = $2) ) \
             AND (SELECT count(*) FROM api_keys k WHERE k.revoked_at IS NULL \
                  AND (k.id = $1 OR ($1 IS NULL AND k.name = $2))) = 1 \
             RETURNING {KEY_COLUMNS}"
        )))
        .bind(id)
        .bind(id_or_name)
        .fetch_all(self.pool())
        .await?;
        rows.first().map(key_from_row).transpose()
    }

    /// Whether any key is live (then the API requires one).
    pub async fn any_live_key(&self) -> Result<bool, DbError> {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM api_keys WHERE revoked_at IS NULL)")
                .fetch_one(self.pool())
                .await?,
        )
    }

    /// Notes that a key was used (at most once a minute per key, so requests do not write).
    pub async fn touch_key(&self, id: Uuid) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE api_keys SET last_used_at = now() WHERE id = $1 \
             AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
        )
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn usage(&self, owner: Uuid) -> Result<Usage, DbError> {
        usage_of(self.pool(), owner).await
    }
}

/// An owner's usage, read through `db` (the pool, or the transaction that inserts a job under
/// the owner's quota lock).
pub(super) async fn usage_of<'e>(
    db: impl sqlx::PgExecutor<'e>,
    owner: Uuid,
) -> Result<Usage, DbError> {
    let row = sqlx::query(
        "SELECT (SELECT count(*) FROM jobs WHERE owner = $1 \
                 AND status IN ('queued', 'running')) AS active, \
                (SELECT count(*) FROM jobs WHERE owner = $1 \
                 AND created_at >= date_trunc('day', now() AT TIME ZONE 'UTC') \
                                   AT TIME ZONE 'UTC') AS today",
    )
    .bind(owner)
    .fetch_one(db)
    .await?;
    Ok(Usage {
        active: row.try_get("active")?,
        today: row.try_get("today")?,
    })
}
