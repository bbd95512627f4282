//! The jobs service the routes call: submission (engine gate, idempotency, the queue limit,
//! storage, insert, publish), reads and cancellation; [`stored`] serves what a job stored
//! (output downloads, reruns from the stored input). Handlers stay thin over it; everything
//! here answers with typed values or an [`ApiError`].

mod stored;

use std::collections::HashMap;
use std::sync::Arc;

use object_store::{ObjectStore, ObjectStoreExt};
use orfeas_shared::db::{
    CancelOutcome, Db, DeliveryLog, InsertOutcome, JobRecord, NewJob, QueueEstimate, Quota,
    QuotaHit, StageRecord,
};
use orfeas_shared::metrics::ApiMetrics;
use orfeas_shared::queue::Publisher;
use orfeas_shared::storage;
use orfeas_vocab::{Engine, ErrorCode, JobId, JobMessage, JobStatus, TextureMode};
use tokio::sync::mpsc::UnboundedSender;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::QueuedGauge;
use crate::upload::Upload;
use crate::webhooks::guard::{self, Network};

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
    /// Texture modes clients may ask for (`api.texture_modes`).
    pub texture_modes: Vec<TextureMode>,
    /// More waiting jobs are refused with 429 (`api.max_queued_jobs`).
    pub max_queued_jobs: i64,
    /// How long an Idempotency-Key names its job (`api.idempotency_ttl_s`).
    pub idempotency_ttl: std::time::Duration,
    /// Whether webhooks can be signed (`webhooks.secret` is set), and where they may go.
    pub webhooks: Option<Arc<Vec<Network>>>,
}

/// The answer to a submission over its key's quota: when a slot may free up (a running job
/// ends: a guess, so soon) or the day turns (exact).
fn over_quota(hit: QuotaHit) -> ApiError {
    match hit {
        QuotaHit::Concurrent { limit } => ApiError::new(
            ErrorCode::QuotaExceeded,
            format!("this key may have {limit} jobs queued or running at once"),
        )
        .with_retry_after(5),
        QuotaHit::Daily { limit } => {
            let now = chrono::Utc::now();
            let midnight = (now.date_naive() + chrono::Days::new(1))
                .and_hms_opt(0, 0, 0)
                .map(|t| t.and_utc())
                .unwrap_or(now);
            ApiError::new(
                ErrorCode::QuotaExceeded,
                format!("this key may submit {limit} jobs per day (UTC)"),
            )
            .with_retry_after((midnight - now).num_seconds().max(1) as u64)
        }
    }
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
        caller: &Principal,
    ) -> Result<Submitted, ApiError> {
        let owner = caller.owner();
        let ttl = self.admission.idempotency_ttl;
        let engine = upload.spec.engine;
        if !self.admission.engines.contains(&engine) {
            let enabled: Vec<&str> = self.admission.engines.iter().map(|e| e.as_str()).collect();
            return Err(ApiError::invalid_field(
                "engine",
                format!(
                    "invalid option `engine`: {engine} is not enabled on this deployment (enabled: {})",
                    enabled.join(", ")
                ),
            ));
        }
        let texture = upload.spec.texture;
        if !self.admission.texture_modes.contains(&texture) {
            let enabled: Vec<&str> = self
                .admission
                .texture_modes
                .iter()
                .map(|m| m.as_str())
                .collect();
            return Err(ApiError::invalid_field(
                "texture",
                format!(
                    "invalid option `texture`: {texture} is not enabled on this deployment (enabled: {})",
                    enabled.join(", ")
                ),
            ));
        }
        if let Some(hook) = &upload.spec.webhook {
            let Some(allow) = &self.admission.webhooks else {
                return Err(ApiError::invalid_field(
                    "webhook",
                    "invalid option `webhook`: this deployment sends no webhooks (webhooks.secret is not set)",
                ));
            };
            guard::resolve(&hook.url, allow)
                .await
                .map_err(|e| ApiError::new(ErrorCode::WebhookRefused, e.to_string()))?;
        }
        if let Some(key) = &upload.idempotency_key
            && let Some((job, hash)) = self
                .db
                .find_by_idempotency_key(owner, key.as_str(), ttl)
                .await?
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
            owner,
        };
        let quota = caller.key.as_ref().map_or(Quota::default(), |k| Quota {
            max_active: k.limits.max_concurrent,
            daily: k.limits.quota_daily,
        });
        let job = match self.db.insert_job(&new, quota, ttl).await {
            Ok(InsertOutcome::Created(job)) => job,
            Ok(InsertOutcome::OverQuota(hit)) => {
                let _ = self.store.delete(&input_key).await;
                return Err(over_quota(hit));
            }
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
    pub async fn get(
        &self,
        id: JobId,
        caller: &Principal,
    ) -> Result<(JobRecord, Vec<StageRecord>), ApiError> {
        let job = self.require(id, caller).await?;
        let stages = self.db.stage_records(id).await?;
        Ok((job, stages))
    }

    /// The job, if the caller may see it; 404 otherwise (another key's job is not there).
    pub async fn require(&self, id: JobId, caller: &Principal) -> Result<JobRecord, ApiError> {
        self.db
            .get_job(id)
            .await?
            .filter(|j| caller.may_see(j.id, j.owner))
            .ok_or_else(|| ApiError::not_found(format!("no job {id}")))
    }

    /// The job's webhook deliveries (none when it asked for no webhook).
    pub async fn deliveries(&self, job: &JobRecord) -> Result<Vec<DeliveryLog>, ApiError> {
        if job.spec.webhook.is_none() {
            return Ok(Vec::new());
        }
        Ok(self.db.deliveries_of(job.id).await?)
    }

    /// Where a queued job stands in its engine's queue now (none for other jobs).
    pub async fn queue_estimate(&self, job: &JobRecord) -> Result<Option<QueueEstimate>, ApiError> {
        if job.status != JobStatus::Queued {
            return Ok(None);
        }
        Ok(Some(self.db.queue_estimate(job.id).await?))
    }

    /// Newest first, `limit` (1–100) per page after `cursor`.
    pub async fn list(
        &self,
        caller: &Principal,
        status: Option<JobStatus>,
        cursor: Option<JobId>,
        limit: i64,
    ) -> Result<Page, ApiError> {
        if !(1..=100).contains(&limit) {
            return Err(ApiError::bad_request("`limit` must be 1 to 100"));
        }
        let mut jobs = self
            .db
            .list_jobs(caller.visible_owner(), status, cursor, limit + 1)
            .await?;
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
    pub async fn cancel(&self, id: JobId, caller: &Principal) -> Result<JobRecord, ApiError> {
        self.require(id, caller).await?;
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

    /// Deletes a finished job's input and outputs from the object store, then marks it purged;
    /// returns what remains and whether it was purged already.
    pub async fn purge(
        &self,
        id: JobId,
        caller: &Principal,
    ) -> Result<(JobRecord, Vec<StageRecord>, bool), ApiError> {
        if caller.only_job.is_some() {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "a share link cannot delete",
            ));
        }
        let job = self.require(id, caller).await?;
        let stages = self.db.stage_records(id).await?;
        if job.purged_at.is_some() {
            return Ok((job, stages, true));
        }
        if !job.status.is_terminal() {
            return Err(ApiError::conflict(format!(
                "job {id} is {}; cancel it first, then delete it",
                job.status
            )));
        }
        // Files first: if a deletion fails, the job is not marked and the request can be
        // repeated.
        let mut keys = vec![object_store::path::Path::from(job.input_key.as_str())];
        keys.extend(job.outputs.iter().map(|&a| storage::output_key(id, a)));
        for key in keys {
            match self.store.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(ApiError::unavailable(format!("storage: {e}"))),
            }
        }
        let job = self.db.mark_purged(id).await?.unwrap_or(job);
        Ok((job, stages, false))
    }
}
