//! The batch optimizer's learned memory model: one figure per workload (a shape engine, or
//! `paint`), resolution bucket and device, so a restarted worker starts from what its
//! predecessors measured. The `engine` column holds the workload's name.

use orfeas_vocab::{Device, Workload};
use sqlx::Row;

use super::{Db, DbError};

/// A learned memory figure of the batch optimizer.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryFigure {
    pub workload: Workload,
    pub resolution_bucket: i32,
    pub device: Device,
    pub bytes_per_job: i64,
    pub samples: i64,
}

impl Db {
    /// The learned figures for a device.
    pub async fn memory_model(&self, device: Device) -> Result<Vec<MemoryFigure>, DbError> {
        let rows = sqlx::query(
            "SELECT engine, resolution_bucket, device, bytes_per_job, samples FROM memory_model \
             WHERE device = $1",
        )
        .bind(device)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MemoryFigure {
                    workload: r.try_get("engine")?,
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
        .bind(f.workload)
        .bind(f.resolution_bucket)
        .bind(f.device)
        .bind(f.bytes_per_job.max(1))
        .bind(f.samples)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
