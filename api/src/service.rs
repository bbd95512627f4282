//! The jobs service the routes call: submission (engine gate, idempotency, the queue limit,
//! storage, insert, publish), reads, cancellation and output downloads. Handlers stay thin over
//! it; everything here answers with typed values or an [`ApiError`].

use std::collections::HashMap;
use std::sync::Arc;

use object_store::{GetResult, ObjectStore, ObjectStoreExt};
use orfeas_shared::db::{CancelOutcome, Db, InsertOutcome, JobRecord, NewJob, StageRecord};
use orfeas_shared::metrics::ApiMetrics;
use orfeas_shared::queue::Publisher;
use orfeas_shared::storage;
use orfeas_vocab::{Artifact, Engine, ErrorCode, JobId, JobMessage, JobStatus};
use tokio::sync::mpsc::UnboundedSender;

use crate::error::ApiError;
use crate::state::QueuedGauge;
use crate::upload::Upload;

/// What a submission led to.
#[derive(Debug)]
pub enum Submitted {
    /// A new job, accepted.
    Created(JobRecord),
    /// The same request was submitted before under this idempotency key: that job.
    Repeated(JobRecord, Vec<StageRecord>),
}

/// A page of jobs, newest first.
#[derive(Debug)]
pub struct Page {
    pub jobs: Vec<JobRecord>,
    pub next_cursor: Option<JobId>,
}

/// The deployment's rules for accepting jobs.
#[derive(Debug, Clone)]
pub struct Admission {
    /// Engines clients may ask for (`api.engines`).
    pub engines: Vec<Engine>,
    /// More waiting jobs are refused with 429 (`api.max_queued_jobs`).
    pub max_queued_jobs: i64,
}

#[derive(Debug, Clone)]
pub struct JobsService {
    pub(crate) db: Db,
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) publisher: Arc<Publisher>,
    pub(crate) queued: Arc<QueuedGauge>,
    pub(crate) metrics: Arc<ApiMetrics>,
    /// Confirmed publications, marked in PostgreSQL in batches by the outbox's marker.
    pub(crate) confirmed: UnboundedSender<JobId>,
    pub(crate) admission: Admission,
}

impl JobsService {
    /// Accepts a job once its input is stored and its row committed, then publishes its
    /// message; if the broker is down the outbox relay publishes it later.
    pub async fn submit(
        &self,
        upload: Upload,
        trace_context: HashMap<String, String>,
    ) -> Result<Submitted, ApiError> {
        let engine = upload.spec.engine;
        if !self.admission.engines.contains(&engine) {
            let enabled: Vec<&str> = self.admission.engines.iter().map(|e| e.as_str()).collect();
            return Err(ApiError::validation(format!(
                "invalid option `engine`: {engine} is not enabled on this deployment (enabled: {})",
                enabled.join(", ")
            )));
        }
        if let Some(key) = &upload.idempotency_key
            && let Some((job, hash)) = self.db.find_by_idempotency_key(key.as_str()).await?
        {
            return self.repeated(job, hash == upload.fingerprint).await;
        }
        if self.queued.get(&self.db).await? >= self.admission.max_queued_jobs {
            return Err(ApiError::new(
                ErrorCode::TooManyJobs,
                format!(
                    "{} jobs are already waiting; retry later",
                    self.admission.max_queued_jobs
                ),
            ));
        }

        let id = JobId::new();
        let input_key = storage::input_key(id, upload.format.extension());
        let input_bytes = upload.image.len() as i64;
        storage::put(self.store.as_ref(), &input_key, upload.image).await?;
        let new = NewJob {
            id,
            spec: upload.spec,
            input_key: input_key.to_string(),
            input_bytes,
            idempotency_key: upload.idempotency_key.map(|k| k.as_str().to_owned()),
            request_hash: upload.fingerprint,
            trace_context,
        };
        let job = match self.db.insert_job(&new).await {
            Ok(InsertOutcome::Created(job)) => job,
            Ok(InsertOutcome::Existing { job, same_request }) => {
                // Lost a race with a concurrent request carrying the same key.
                let _ = self.store.delete(&input_key).await;
                return self.repeated(job, same_request).await;
            }
            Err(e) => {
                let _ = self.store.delete(&input_key).await;
                return Err(e.into());
            }
        };
        self.queued.add_one();
        self.metrics.jobs_submitted.inc();
        let msg = JobMessage::for_job(job.id, &job.spec);
        match self.publisher.publish_job(&msg, &new.trace_context).await {
            Ok(()) => {
                let _ = self.confirmed.send(job.id);
            }
            Err(e) => {
                tracing::warn!(job = %job.id, error = %e, "queue unavailable; the outbox relay will publish the job");
            }
        }
        Ok(Submitted::Created(job))
    }

    async fn repeated(&self, job: JobRecord, same_request: bool) -> Result<Submitted, ApiError> {
        if !same_request {
            return Err(ApiError::new(
                ErrorCode::IdempotencyKeyReused,
                format!(
                    "this Idempotency-Key was used for a different request (job {})",
                    job.id
                ),
            ));
        }
        let stages = self.db.stage_records(job.id).await?;
        Ok(Submitted::Repeated(job, stages))
    }

    /// A job and its ledger rows.
    pub async fn get(&self, id: JobId) -> Result<(JobRecord, Vec<StageRecord>), ApiError> {
        let job = self
            .db
            .get_job(id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
        let stages = self.db.stage_records(id).await?;
        Ok((job, stages))
    }

    /// Newest first, `limit` (1–100) per page after `cursor`.
    pub async fn list(
        &self,
        status: Option<JobStatus>,
        cursor: Option<JobId>,
        limit: i64,
    ) -> Result<Page, ApiError> {
        if !(1..=100).contains(&limit) {
            return Err(ApiError::bad_request("`limit` must be 1 to 100"));
        }
        let mut jobs = self.db.list_jobs(status, cursor, limit + 1).await?;
        let more = jobs.len() as i64 > limit;
        jobs.truncate(limit as usize);
        let next_cursor = if more {
            jobs.last().map(|j| j.id)
        } else {
            None
        };
        Ok(Page { jobs, next_cursor })
    }

    /// A queued job never runs; a running one stops at its next stage boundary.
    pub async fn cancel(&self, id: JobId) -> Result<JobRecord, ApiError> {
        match self.db.request_cancel(id).await? {
            CancelOutcome::NotFound => Err(ApiError::not_found(format!("no job {id}"))),
            CancelOutcome::AlreadyTerminal(s) => {
                Err(ApiError::conflict(format!("job {id} already ended ({s})")))
            }
            CancelOutcome::Canceled | CancelOutcome::Requested => self
                .db
                .get_job(id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("no job {id}"))),
        }
    }

    /// A finished job's artifact, streamed from the object store.
    pub async fn output(&self, id: JobId, artifact: Artifact) -> Result<GetResult, ApiError> {
        let job = self
            .db
            .get_job(id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
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
            other => ApiError::unavailable(format!("storage: {other}")),
        })
    }
}
