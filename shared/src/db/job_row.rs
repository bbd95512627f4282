//! A job row as stored: the record, the columns every job query selects, and their decoding
//! (shared by the jobs aggregate and an attempt's start).

use chrono::{DateTime, Utc};
use orfeas_vocab::{
    Artifact, ErrorCode, JobId, JobSpec, JobStatus, JobWeights, Segmentation, SegmentationMethod,
    Stage, WeightsIdentity,
};
use sqlx::Row;
use uuid::Uuid;

use super::DbError;

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
    pub error_code: Option<ErrorCode>,
    pub error_message: Option<String>,
    /// The artifacts stored under `outputs/{id}/` (the job's outputs manifest).
    pub outputs: Vec<Artifact>,
    /// The SHA-256 (hex) of each output, in the order of `outputs` (empty for jobs finished
    /// before digests were recorded).
    pub output_sha256: Vec<String>,
    pub enqueued_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// While running: when the owning attempt's lease ends unless renewed.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// Attempts charged against the limit (outage-ended attempts are given back).
    pub counted_attempts: i32,
    /// When the current run of dependency outages began.
    pub outage_since: Option<DateTime<Utc>>,
    /// The API key that submitted the job (none: submitted without keys).
    pub owner: Option<Uuid>,
    /// When its owner deleted its input and outputs.
    pub purged_at: Option<DateTime<Utc>>,
    /// How the object mask was found, once an attempt preprocessed the image.
    pub segmentation: Option<Segmentation>,
    /// The weights the last attempt that ran its batch used (empty: weights-free).
    pub weights: JobWeights,
}

/// The columns `job_from_row` reads (a macro so queries stay `'static` strings).
macro_rules! job_columns {
    () => {
        "id, status, spec, input_key, input_bytes, stage, progress, attempt, worker_id, \
         cancel_requested, error_code, error_message, outputs, enqueued_at, created_at, \
         started_at, finished_at, lease_expires_at, counted_attempts, outage_since, output_sha256, \
         owner, purged_at, segmentation_method, mask_share, engine_weights, \
         engine_weights_sha256, segmentation_weights, segmentation_weights_sha256"
    };
}

pub(super) fn job_from_row(row: &sqlx::postgres::PgRow) -> Result<JobRecord, DbError> {
    let id = JobId(row.try_get("id")?);
    let corrupt =
        |what: &str, e: &dyn std::fmt::Display| DbError::Corrupt(format!("job {id}: {what}: {e}"));
    let spec: serde_json::Value = row.try_get("spec")?;
    let spec: JobSpec = serde_json::from_value(spec).map_err(|e| corrupt("spec", &e))?;
    let outputs: Vec<String> = row.try_get("outputs")?;
    let outputs = outputs
        .iter()
        .map(|s| s.parse::<Artifact>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| corrupt("outputs", &e))?;
    let weights = |name: &str, digest: &str| -> Result<Option<WeightsIdentity>, DbError> {
        let name: Option<String> = row.try_get(name)?;
        let sha256: Option<String> = row.try_get(digest)?;
        Ok(name
            .zip(sha256)
            .map(|(name, sha256)| WeightsIdentity { name, sha256 }))
    };
    let weights = JobWeights {
        engine: weights("engine_weights", "engine_weights_sha256")?,
        segmentation: weights("segmentation_weights", "segmentation_weights_sha256")?,
    };
    let method: Option<SegmentationMethod> = row.try_get("segmentation_method")?;
    let share: Option<f32> = row.try_get("mask_share")?;
    Ok(JobRecord {
        weights,
        segmentation: method.map(|method| Segmentation {
            method,
            mask_share: share.unwrap_or(0.0),
        }),
        id,
        status: row.try_get("status")?,
        spec,
        input_key: row.try_get("input_key")?,
        input_bytes: row.try_get("input_bytes")?,
        stage: row.try_get("stage")?,
        progress: row.try_get("progress")?,
        attempt: row.try_get("attempt")?,
        worker_id: row.try_get("worker_id")?,
        cancel_requested: row.try_get("cancel_requested")?,
        error_code: row.try_get("error_code")?,
        error_message: row.try_get("error_message")?,
        outputs,
        output_sha256: row.try_get("output_sha256")?,
        enqueued_at: row.try_get("enqueued_at")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        lease_expires_at: row.try_get("lease_expires_at")?,
        counted_attempts: row.try_get("counted_attempts")?,
        outage_since: row.try_get("outage_since")?,
        owner: row.try_get("owner")?,
        purged_at: row.try_get("purged_at")?,
    })
}
