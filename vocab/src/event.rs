//! Job events: what a client watching a job sees, in order. Each event has a per-job sequence
//! number (1, 2, …) assigned by PostgreSQL when the event is recorded, which is the event's
//! SSE `id` and what a reconnecting client resumes after.
//!
//! The progress percentages live here too: each stage covers a fixed band of the job's 0–100,
//! and within `shape_generation` each sub-step a fixed band of the stage's, so the figure only
//! moves forward and every layer computes it the same way.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::names::named_enum;
use crate::{Artifact, Device, ErrorCode, JobId, Stage, Step};

named_enum! {
    /// The kind of a job event: the SSE `event` name and the `type` of a WebSocket message.
    pub enum JobEventKind: "job event" {
        /// Waiting in its engine's queue (after submission, and again before a retry).
        Queued = "queued",
        /// An attempt started on a worker.
        Started = "started",
        StageStarted = "stage_started",
        StageFinished = "stage_finished",
        /// Progress within the running stage (at most about two per second per job).
        Progress = "progress",
        Succeeded = "succeeded",
        Failed = "failed",
        Canceled = "canceled",
    }
}

#[cfg(feature = "sqlx")]
crate::names::sql_name!(text JobEventKind);

impl JobEventKind {
    /// The last event of a job: streams close after it.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            JobEventKind::Succeeded | JobEventKind::Failed | JobEventKind::Canceled
        )
    }
}

/// What happened, with its details. `O` is how outputs are shown: artifact names as recorded,
/// download links in the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum JobEventData<O = Artifact> {
    Queued {
        /// Jobs of the same engine ahead of this one when it was queued (0: next to start).
        position: Option<i64>,
        /// Estimated seconds until the job finishes: the wait for the jobs ahead at the
        /// engine's recent rate plus this job's own run time, both from the ledger's recent
        /// per-stage figures for the same engine and options. `null` without history.
        eta_seconds: Option<f64>,
        /// Attempts started so far (0 on submission).
        attempt: i32,
    },
    Started {
        attempt: i32,
        worker: Option<String>,
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "cuda:0"))]
        device: Option<Device>,
        batch_size: Option<i32>,
    },
    StageStarted {
        stage: Stage,
    },
    StageFinished {
        stage: Stage,
        seconds: f64,
        ok: bool,
    },
    Progress {
        /// Overall, 0–100.
        percent: i16,
        stage: Stage,
        /// The stage's own step: in `shape_generation` denoising step k of N, volume decoding
        /// chunks, marching-cubes layers; in a `paint` texture's `texture_synthesis` the delight
        /// and multiview denoising steps and the bake.
        step: Option<Step>,
        done: Option<u32>,
        total: Option<u32>,
    },
    Succeeded {
        outputs: Vec<O>,
        /// From the first attempt's start to the end.
        seconds: Option<f64>,
    },
    Failed {
        code: ErrorCode,
        message: String,
        /// The stage it failed in, when known.
        stage: Option<Stage>,
    },
    Canceled {
        message: Option<String>,
    },
}

impl<O> JobEventData<O> {
    pub fn kind(&self) -> JobEventKind {
        match self {
            JobEventData::Queued { .. } => JobEventKind::Queued,
            JobEventData::Started { .. } => JobEventKind::Started,
            JobEventData::StageStarted { .. } => JobEventKind::StageStarted,
            JobEventData::StageFinished { .. } => JobEventKind::StageFinished,
            JobEventData::Progress { .. } => JobEventKind::Progress,
            JobEventData::Succeeded { .. } => JobEventKind::Succeeded,
            JobEventData::Failed { .. } => JobEventKind::Failed,
            JobEventData::Canceled { .. } => JobEventKind::Canceled,
        }
    }

    /// The same event with its outputs shown another way.
    pub fn map_outputs<P>(self, f: impl FnMut(O) -> P) -> JobEventData<P> {
        match self {
            JobEventData::Queued {
                position,
                eta_seconds,
                attempt,
            } => JobEventData::Queued {
                position,
                eta_seconds,
                attempt,
            },
            JobEventData::Started {
                attempt,
                worker,
                device,
                batch_size,
            } => JobEventData::Started {
                attempt,
                worker,
                device,
                batch_size,
            },
            JobEventData::StageStarted { stage } => JobEventData::StageStarted { stage },
            JobEventData::StageFinished { stage, seconds, ok } => {
                JobEventData::StageFinished { stage, seconds, ok }
            }
            JobEventData::Progress {
                percent,
                stage,
                step,
                done,
                total,
            } => JobEventData::Progress {
                percent,
                stage,
                step,
                done,
                total,
            },
            JobEventData::Succeeded { outputs, seconds } => JobEventData::Succeeded {
                outputs: outputs.into_iter().map(f).collect(),
                seconds,
            },
            JobEventData::Failed {
                code,
                message,
                stage,
            } => JobEventData::Failed {
                code,
                message,
                stage,
            },
            JobEventData::Canceled { message } => JobEventData::Canceled { message },
        }
    }
}

/// The details of a recorded event as stored (`kind` column and `data` JSON), parsed.
impl JobEventData {
    pub fn from_stored(kind: &str, data: serde_json::Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(serde_json::json!({ "type": kind, "data": data }))
    }

    /// The `data` part alone, as stored beside the kind.
    pub fn stored_data(&self) -> serde_json::Value {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut m)) => {
                m.remove("data").unwrap_or(serde_json::Value::Null)
            }
            _ => serde_json::Value::Null,
        }
    }
}

/// One recorded event of one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobEvent<O = Artifact> {
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub job: JobId,
    /// 1, 2, … per job; the SSE `id`.
    pub seq: i64,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub event: JobEventData<O>,
}

impl<O> JobEvent<O> {
    pub fn kind(&self) -> JobEventKind {
        self.event.kind()
    }
}

impl Stage {
    /// The band of a job's overall progress (percent) this stage covers: from its start to the
    /// next stage's start, the stages' usual shares of a job's time.
    pub const fn progress_band(self) -> (i16, i16) {
        let start = self.progress_percent();
        let end = match self {
            Stage::ImageLoading => Stage::ImagePreprocessing.progress_percent(),
            Stage::ImagePreprocessing => Stage::ShapeGeneration.progress_percent(),
            Stage::ShapeGeneration => Stage::TextureSynthesis.progress_percent(),
            Stage::TextureSynthesis => Stage::MeshExport.progress_percent(),
            Stage::MeshExport => 100,
        };
        (start, end)
    }
}

impl Step {
    /// The band of its stage this step covers (fractions 0–1): denoising dominates a diffusion
    /// engine's shape time, then volume decoding; the multiview loop dominates painting.
    pub const fn band(self) -> (f64, f64) {
        match self {
            Step::Conditioning => (0.0, 0.05),
            Step::Denoising => (0.05, 0.7),
            Step::VolumeDecoding => (0.7, 0.95),
            Step::SurfaceExtraction => (0.95, 1.0),
            Step::Delight => (0.0, 0.3),
            Step::MultiviewDiffusion => (0.3, 0.9),
            Step::Baking => (0.9, 1.0),
        }
    }
}

/// Overall percent with `done` of `total` units of `step` (within its stage) done, or at the
/// start of `stage` when there is no step.
pub fn overall_percent(stage: Stage, step: Option<(Step, u32, u32)>) -> i16 {
    let (lo, hi) = stage.progress_band();
    let Some((step, done, total)) = step else {
        return lo;
    };
    let (a, b) = step.band();
    let within = if total == 0 {
        1.0
    } else {
        f64::from(done.min(total)) / f64::from(total)
    };
    let fraction = a + (b - a) * within;
    lo + ((f64::from(hi - lo)) * fraction).floor() as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_the_stored_form() {
        let events: Vec<JobEventData> = vec![
            JobEventData::Queued {
                position: Some(3),
                eta_seconds: Some(12.5),
                attempt: 0,
            },
            JobEventData::Started {
                attempt: 1,
                worker: Some("w1".into()),
                device: Some(Device::Cuda(1)),
                batch_size: Some(4),
            },
            JobEventData::Progress {
                percent: 41,
                stage: Stage::ShapeGeneration,
                step: Some(Step::Denoising),
                done: Some(7),
                total: Some(50),
            },
            JobEventData::Succeeded {
                outputs: vec![Artifact::Glb, Artifact::Stl],
                seconds: Some(3.0),
            },
            JobEventData::Failed {
                code: ErrorCode::NoForeground,
                message: "x".into(),
                stage: Some(Stage::ImagePreprocessing),
            },
            JobEventData::Canceled { message: None },
        ];
        for e in events {
            let kind = e.kind();
            let back = JobEventData::from_stored(kind.as_str(), e.stored_data()).expect("parses");
            assert_eq!(back, e);
        }
    }

    #[test]
    fn an_event_is_flat_json_with_type_and_data() {
        let e = JobEvent {
            job: JobId(uuid::Uuid::nil()),
            seq: 7,
            at: DateTime::<Utc>::from_timestamp(0, 0).expect("epoch"),
            event: JobEventData::<Artifact>::StageStarted {
                stage: Stage::MeshExport,
            },
        };
        let v = serde_json::to_value(&e).expect("serializes");
        assert_eq!(v["type"], "stage_started");
        assert_eq!(v["data"]["stage"], "mesh_export");
        assert_eq!(v["seq"], 7);
        let back: JobEvent = serde_json::from_value(v).expect("parses");
        assert_eq!(back, e);
    }

    #[test]
    fn the_stored_kind_names_match_the_serde_tags() {
        // A stored row's `kind` must parse back as the same variant.
        for k in JobEventKind::ALL {
            let data = match k {
                JobEventKind::Queued => {
                    serde_json::json!({"position": null, "eta_seconds": null, "attempt": 0})
                }
                JobEventKind::Started => {
                    serde_json::json!({"attempt": 1, "worker": null, "device": null, "batch_size": null})
                }
                JobEventKind::StageStarted => serde_json::json!({"stage": "image_loading"}),
                JobEventKind::StageFinished => {
                    serde_json::json!({"stage": "image_loading", "seconds": 1.0, "ok": true})
                }
                JobEventKind::Progress => {
                    serde_json::json!({"percent": 1, "stage": "image_loading", "step": null, "done": null, "total": null})
                }
                JobEventKind::Succeeded => serde_json::json!({"outputs": [], "seconds": null}),
                JobEventKind::Failed => {
                    serde_json::json!({"code": "internal", "message": "m", "stage": null})
                }
                JobEventKind::Canceled => serde_json::json!({"message": null}),
            };
            let e = JobEventData::from_stored(k.as_str(), data).expect("parses");
            assert_eq!(e.kind(), k);
        }
    }

    #[test]
    fn percent_moves_forward_through_stages_and_steps() {
        let mut last = -1;
        for stage in Stage::ALL {
            let at_start = overall_percent(stage, None);
            assert!(at_start > last, "{stage}: {at_start} after {last}");
            last = at_start;
            let steps: Vec<Step> = Step::ALL
                .into_iter()
                .filter(|s| s.stage() == stage)
                .collect();
            for &step in &steps {
                for done in [0, 5, 10] {
                    let p = overall_percent(stage, Some((step, done, 10)));
                    assert!(p >= last, "{step} {done}/10: {p} after {last}");
                    last = p;
                }
            }
            if !steps.is_empty() {
                // The last step's end is the next stage's start.
                assert_eq!(last, stage.progress_band().1, "{stage}");
                last -= 1;
            }
        }
        assert!(overall_percent(Stage::MeshExport, None) < 100);
    }
}
