//! Response bodies.

use chrono::{DateTime, Utc};
use orfeas_shared::db::{JobRecord, StageRecord};
use orfeas_shared::heartbeat::WorkerHeartbeat;
use orfeas_vocab::{Artifact, Device, JobId, JobSpec, JobStatus, Stage};
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
    /// Seconds per stage of the attempt that finished the job.
    pub timings: Vec<StageTiming>,
    pub outputs: Vec<OutputLink>,
    pub links: JobLinks,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
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

#[derive(Debug, Serialize, ToSchema)]
pub struct JobLinks {
    #[serde(rename = "self")]
    pub this: String,
    pub cancel: String,
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
        let outputs = if job.status == JobStatus::Succeeded {
            job.outputs
                .iter()
                .enumerate()
                .map(|(i, &a)| OutputLink {
                    artifact: a,
                    format: a.extension(),
                    url: format!("{base}/outputs/{a}"),
                    content_type: a.content_type().to_owned(),
                    sha256: job.output_sha256.get(i).cloned(),
                })
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
            timings,
            outputs,
            links: JobLinks {
                cancel: format!("{base}/cancel"),
                this: base,
            },
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
        }
    }
}
