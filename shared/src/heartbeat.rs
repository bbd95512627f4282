//! Worker heartbeats in Redis: one key per worker with a TTL, so a dead worker disappears from
//! `GET /api/workers` by itself.

use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use orfeas_vocab::{Device, Engine, JobId};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkerHeartbeat {
    pub id: String,
    pub host: String,
    /// The device the worker computes on.
    pub device: Device,
    pub engine: Engine,
    /// Jobs in the batch being processed now.
    pub current_batch: Vec<JobId>,
    /// False once the batch in hand is stuck past the job timeout (the worker then lets its
    /// leases go).
    #[serde(default = "healthy")]
    pub healthy: bool,
    pub jobs_done: u64,
    pub started_at: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub memory_total_bytes: u64,
    pub memory_used_bytes: u64,
    /// Busy share of the device (0–1) over the last heartbeat interval.
    pub utilization: f64,
    /// The last samples, oldest first (for trends).
    pub samples: Vec<DeviceSample>,
    /// The batch optimizer's last decision and its reasoning.
    pub batch_size: usize,
    pub optimizer_reasoning: Option<String>,
}

/// One device reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeviceSample {
    pub at: DateTime<Utc>,
    pub memory_used_bytes: u64,
    pub utilization: f64,
}

fn healthy() -> bool {
    true
}

fn key(prefix: &str, id: &str) -> String {
    format!("{prefix}:workers:{id}")
}

/// Opens a connection manager, which reconnects by itself after Redis restarts.
pub async fn connect(url: &str) -> redis::RedisResult<ConnectionManager> {
    let client = redis::Client::open(url)?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(std::time::Duration::from_secs(3)))
        .set_response_timeout(Some(std::time::Duration::from_secs(3)));
    ConnectionManager::new_with_config(client, config).await
}

pub async fn beat(
    conn: &mut ConnectionManager,
    prefix: &str,
    hb: &WorkerHeartbeat,
    ttl: std::time::Duration,
) -> redis::RedisResult<()> {
    let body = serde_json::to_string(hb).unwrap_or_default();
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    conn.pset_ex::<_, _, ()>(key(prefix, &hb.id), body, ttl_ms)
        .await
}

pub async fn remove(
    conn: &mut ConnectionManager,
    prefix: &str,
    id: &str,
) -> redis::RedisResult<()> {
    conn.del::<_, ()>(key(prefix, id)).await
}

/// Live workers (keys not yet expired), sorted by id.
pub async fn list(
    conn: &mut ConnectionManager,
    prefix: &str,
) -> redis::RedisResult<Vec<WorkerHeartbeat>> {
    let pattern = format!("{prefix}:workers:*");
    let mut keys: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(500)
            .query_async(conn)
            .await?;
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let values: Vec<Option<String>> = conn.mget(&keys).await?;
    let mut workers: Vec<WorkerHeartbeat> = values
        .into_iter()
        .flatten()
        .filter_map(|v| serde_json::from_str(&v).ok())
        .collect();
    workers.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(workers)
}
