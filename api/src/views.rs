//! Response bodies.

use chrono::{DateTime, Utc};
use orfeas_shared::db::{DeliveryLog, JobRecord, QueueEstimate, StageRecord};
use orfeas_shared::heartbeat::WorkerHeartbeat;
use orfeas_vocab::{Artifact, Device, JobId, JobSpec, JobStatus, JobWeights, Segmentation, Stage};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ErrorDetail;

#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    pub id: JobId,
    pub status: JobStatus,
    /// The stage the job is in while running (or where it failed).
    pub stage: Option<Stage>,
    /// 0–100.
    pub progress: i16,
    pub attempt: i32,
    pub options: JobSpec,
    pub error: Option<ErrorDetail>,
    /// While queued: its place in its engine's queue and the estimated seconds until it
    /// finishes (from the ledger's recent figures for the same engine and options).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueView>,
    /// The job's webhook deliveries (each event once, with its attempts and last answer).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<DeliveryLog>,
    /// How the object was cut out of the image and how much of it the mask covers, once an
    /// attempt preprocessed it (the `cutout` output, when asked for, shows the mask itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segmentation: Option<Segmentation>,
    /// The weights the job ran with (name and SHA-256 of the engine's checkpoint and of the
    /// segmentation model); absent for the weights-free engine and methods.
    #[serde(skip_serializing_if = "JobWeights::is_empty")]
    pub weights: JobWeights,
    /// Seconds per stage of the attempt that finished the job.
    pub timings: Vec<StageTiming>,
    pub outputs: Vec<OutputLink>,
    pub links: JobLinks,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// When its owner deleted the job's input and outputs (it then answers 410).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueView {
    /// Jobs of the same engine ahead of this one (0: next).
    pub position: Option<i64>,
    /// `null` until the ledger has figures for the engine.
    pub eta_seconds: Option<f64>,
}

impl From<QueueEstimate> for QueueView {
    fn from(q: QueueEstimate) -> Self {
        QueueView {
            position: q.position,
            eta_seconds: q.eta_seconds,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StageTiming {
    pub stage: Stage,
    pub seconds: f64,
    pub worker_id: String,
    pub device: Device,
    pub batch_size: i32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutputLink {
    /// `glb`, `obj`, `stl`, `ply` or `cutout`.
    pub artifact: Artifact,
    /// The file's extension (`glb`, …, `png` for the cut-out).
    #[schema(example = "glb")]
    pub format: &'static str,
    pub url: String,
    /// SHA-256 (hex) of the stored file, to verify a download.
    pub sha256: Option<String>,
    pub content_type: String,
}

impl OutputLink {
    pub fn new(job: JobId, artifact: Artifact, sha256: Option<String>) -> OutputLink {
        OutputLink {
            artifact,
            format: artifact.extension(),
            url: format!("/api/jobs/{job}/outputs/{artifact}"),
            content_type: artifact.content_type().to_owned(),
            sha256,
        }
    }
}

/// A job event as streams show it: outputs as download links.
pub type EventView = orfeas_vocab::JobEvent<OutputLink>;

/// Shows a recorded event, outputs as links.
pub fn event_view(e: &orfeas_vocab::JobEvent) -> EventView {
    let job = e.job;
    orfeas_vocab::JobEvent {
        job,
        seq: e.seq,
        at: e.at,
        event: e
            .event
            .clone()
            .map_outputs(|a| OutputLink::new(job, a, None)),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobLinks {
    #[serde(rename = "self")]
    pub this: String,
    pub cancel: String,
    /// The job's live events (Server-Sent Events; `…/ws` for a WebSocket).
    pub events: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    pub jobs: Vec<JobView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<JobId>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkerList {
    pub workers: Vec<WorkerHeartbeat>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    pub database: String,
    pub queue: String,
    pub object_store: String,
}

impl JobView {
    pub fn from_record(job: JobRecord, stages: &[StageRecord]) -> JobView {
        let base = format!("/api/jobs/{}", job.id);
        let error = job.error_code.map(|code| ErrorDetail {
            code,
            message: job.error_message.unwrap_or_default(),
            field: None,
        });
        let timings = stages
            .iter()
            .filter(|s| s.attempt == job.attempt)
            .map(|s| StageTiming {
                stage: s.stage,
                seconds: s.duration_seconds,
                worker_id: s.worker_id.clone(),
                device: s.device,
                batch_size: s.batch_size,
            })
            .collect();
        let outputs = if job.status == JobStatus::Succeeded && job.purged_at.is_none() {
            job.outputs
                .iter()
                .enumerate()
                .map(|(i, &a)| OutputLink::new(job.id, a, job.output_sha256.get(i).cloned()))
                .collect()
        } else {
            Vec::new()
        };
        JobView {
            id: job.id,
            status: job.status,
            stage: job.stage,
            progress: job.progress,
            attempt: job.attempt,
            options: job.spec,
            error,
            queue: None,
            webhooks: Vec::new(),
            segmentation: job.segmentation,
            weights: job.weights,
            timings,
            outputs,
            links: JobLinks {
                cancel: format!("{base}/cancel"),
                events: format!("{base}/events"),
                this: base,
            },
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
            deleted_at: job.purged_at,
        }
    }
}
