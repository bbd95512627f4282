//! What a job stored: its outputs, downloaded, and its input, run again with the same options.
//! Both need the job's files still there: deleted by their owner is `gone`.

use std::collections::HashMap;

use object_store::{GetResult, ObjectStoreExt};
use orfeas_shared::db::JobRecord;
use orfeas_shared::storage;
use orfeas_vocab::{Artifact, ErrorCode, JobId, JobStatus};

use super::{JobsService, Submitted};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::upload::{IdempotencyKey, InputFormat, Upload};

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::unavailable(format!("storage: {e}"))
}

impl JobsService {
    /// The caller's job, unless its owner deleted its files.
    async fn stored(&self, id: JobId, caller: &Principal) -> Result<JobRecord, ApiError> {
        let job = self.require(id, caller).await?;
        if job.purged_at.is_some() {
            return Err(ApiError::new(
                ErrorCode::Gone,
                format!("job {id}'s input and outputs were deleted by its owner"),
            ));
        }
        Ok(job)
    }

    /// A new job from a finished job's stored input and options (its deadline dropped: it was
    /// for the first run). Admission, quotas and idempotency apply as to any submission.
    pub async fn rerun(
        &self,
        id: JobId,
        idempotency_key: Option<IdempotencyKey>,
        trace_context: HashMap<String, String>,
        caller: &Principal,
    ) -> Result<Submitted, ApiError> {
        let job = self.stored(id, caller).await?;
        let key = object_store::path::Path::from(job.input_key.as_str());
        let got = self.store.get(&key).await.map_err(|e| match e {
            object_store::Error::NotFound { .. } => ApiError::new(
                ErrorCode::Gone,
                format!("job {id}'s input is no longer stored (retention)"),
            ),
            other => unavailable(other),
        })?;
        let image = got.bytes().await.map_err(unavailable)?;
        let format = InputFormat::sniff(&image).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InputMissing,
                format!("job {id}'s stored input is not an image"),
            )
        })?;
        let mut spec = job.spec;
        spec.deadline = None;
        // The same fingerprint for the same source job, so a repeated key names the same rerun.
        let fingerprint = idempotency_key.as_ref().map(|_| format!("rerun:{id}"));
        let upload = Upload {
            image,
            format,
            spec,
            idempotency_key,
            fingerprint,
        };
        self.submit(upload, trace_context, caller).await
    }

    /// A finished job's artifact, streamed from the object store.
    pub async fn output(
        &self,
        id: JobId,
        artifact: Artifact,
        caller: &Principal,
    ) -> Result<GetResult, ApiError> {
        let job = self.stored(id, caller).await?;
        if job.status != JobStatus::Succeeded {
            return Err(ApiError::conflict(format!(
                "job {id} is {}; outputs exist once it has succeeded",
                job.status
            )));
        }
        if !job.outputs.contains(&artifact) {
            return Err(ApiError::not_found(format!(
                "job {id} has no {artifact} output"
            )));
        }
        let key = storage::output_key(id, artifact);
        self.store.get(&key).await.map_err(|e| match e {
            object_store::Error::NotFound { .. } => {
                ApiError::not_found(format!("{key} is missing from the object store"))
            }
            other => unavailable(other),
        })
    }
}
