//! Retention: finished jobs older than `retention.finished_jobs_days` are deleted with their
//! stage rows, inputs and outputs — after their hour is rolled up, so the operator history
//! keeps them — and inputs no job row names (an API that died between storing an input and
//! committing its row) are deleted once older than `retention.orphan_inputs_after_s`. One pass
//! runs at a time across every API replica and `orfeas gc` (a PostgreSQL advisory lock).

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use orfeas_vocab::JobId;

use crate::db::{Db, DbError};
use crate::storage;

/// The advisory-lock key of a retention pass ("orfe").
const LOCK: i64 = 0x6f72_6665;
/// Jobs deleted per round.
const BATCH: i64 = 500;

/// The rules of a pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetentionPolicy {
    /// Finished jobs older than this are deleted; `None`: kept forever.
    pub finished_jobs: Option<Duration>,
    /// Inputs without a job row older than this are deleted.
    pub orphan_inputs_after: Duration,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GcReport {
    /// Hours of the ledger rolled up.
    pub hours_rolled_up: u32,
    pub jobs_deleted: u64,
    pub objects_deleted: u64,
    pub orphan_inputs_deleted: u64,
    /// Another process held the lock; nothing was done.
    pub skipped: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
}

/// Deletes an object; one already gone is fine (a pass that died half-way is rerun).
async fn delete(store: &dyn ObjectStore, key: &Path) -> Result<bool, object_store::Error> {
    match store.delete(key).await {
        Ok(()) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// One pass: roll up, delete expired jobs (objects first, then rows), delete orphan inputs.
pub async fn gc_pass(
    db: &Db,
    store: &dyn ObjectStore,
    policy: &RetentionPolicy,
) -> Result<GcReport, GcError> {
    let pass = db
        .with_advisory_lock(LOCK, async || -> Result<GcReport, GcError> {
            let mut report = GcReport {
                hours_rolled_up: db.rollup().await?,
                ..GcReport::default()
            };
            if let Some(keep) = policy.finished_jobs {
                let before =
                    Utc::now() - chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
                loop {
                    let expired = db.expired_jobs(before, BATCH).await?;
                    if expired.is_empty() {
                        break;
                    }
                    for job in &expired {
                        let mut keys = vec![Path::from(job.input_key.as_str())];
                        keys.extend(job.outputs.iter().map(|&a| storage::output_key(job.id, a)));
                        for key in keys {
                            report.objects_deleted += u64::from(delete(store, &key).await?);
                        }
                    }
                    let ids: Vec<JobId> = expired.iter().map(|j| j.id).collect();
                    report.jobs_deleted += db.delete_jobs(&ids).await?;
                }
            }
            report.orphan_inputs_deleted =
                delete_orphan_inputs(db, store, policy.orphan_inputs_after).await?;
            Ok(report)
        })
        .await?;
    match pass {
        Some(report) => report,
        None => Ok(GcReport {
            skipped: true,
            ..GcReport::default()
        }),
    }
}

/// Inputs (`inputs/{job}/…`) older than `after` whose job has no row.
async fn delete_orphan_inputs(
    db: &Db,
    store: &dyn ObjectStore,
    after: Duration,
) -> Result<u64, GcError> {
    let cutoff = Utc::now() - chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX);
    let listed: Vec<object_store::ObjectMeta> = store
        .list(Some(&Path::from("inputs")))
        .try_collect()
        .await?;
    let old: Vec<(JobId, Path)> = listed
        .into_iter()
        .filter(|m| m.last_modified < cutoff)
        .filter_map(|m| {
            let id = m.location.parts().nth(1)?.as_ref().parse::<JobId>().ok()?;
            Some((id, m.location))
        })
        .collect();
    let mut deleted = 0;
    for chunk in old.chunks(BATCH as usize) {
        let ids: Vec<JobId> = chunk.iter().map(|(id, _)| *id).collect();
        let known: HashSet<JobId> = db.existing_jobs(&ids).await?;
        for (id, key) in chunk {
            if !known.contains(id) {
                deleted += u64::from(delete(store, key).await?);
            }
        }
    }
    Ok(deleted)
}
