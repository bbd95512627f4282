//! Domain types: job ids, statuses, and the validated job specification parsed at the edge.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{BackgroundMode, MeshFormat};

/// A job id: a UUIDv7, so ids sort by creation time.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(transparent)]
#[schema(value_type = String, format = Uuid)]
pub struct JobId(pub Uuid);

impl JobId {
    pub fn new() -> Self {
        JobId(Uuid::now_v7())
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for JobId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(JobId)
    }
}

/// Lifecycle: `queued → running → succeeded | failed | canceled` (a queued job may be canceled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, ToSchema)]
#[sqlx(type_name = "job_status", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Canceled,
}

impl JobStatus {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Canceled
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Canceled => "canceled",
        }
    }
}

impl FromStr for JobStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            JobStatus::Queued,
            JobStatus::Running,
            JobStatus::Succeeded,
            JobStatus::Failed,
            JobStatus::Canceled,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
        .ok_or_else(|| {
            format!("unknown status `{s}` (queued, running, succeeded, failed, canceled)")
        })
    }
}

/// Shape engines a job can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// Weights-free silhouette inflation.
    Inflate,
    /// Tencent's Hunyuan3D-2 shape model (needs a checkpoint on the workers).
    Hunyuan3d,
}

impl Engine {
    pub const ALL: [Engine; 2] = [Engine::Inflate, Engine::Hunyuan3d];

    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Inflate => "inflate",
            Engine::Hunyuan3d => "hunyuan3d",
        }
    }
}

impl FromStr for Engine {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Engine::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| format!("unknown engine `{s}` (available: inflate, hunyuan3d)"))
    }
}

/// Job options as a client sends them (the `options` part of `POST /api/jobs`), before
/// validation. Every field is optional; defaults follow Hunyuan3D-2's server.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobOptionsInput {
    /// `inflate` (default) or `hunyuan3d` (where the deployment enables it).
    pub engine: Option<String>,
    pub seed: Option<u64>,
    /// Denoising steps, 1–200 (default 50).
    pub steps: Option<u32>,
    /// Classifier-free guidance, 0–100 (default 5.0).
    pub guidance_scale: Option<f32>,
    /// Volume grid resolution, 64–512 (default 256).
    pub octree_resolution: Option<u32>,
    /// Query points per decoder call, 1000–1000000 (default 8000).
    pub num_chunks: Option<u32>,
    /// Reduce the mesh to at most this many faces, 100–2000000 (default: no reduction).
    pub face_count: Option<u64>,
    /// Any of glb, obj, stl, ply (default ["glb"]).
    pub formats: Option<Vec<String>>,
    /// auto, always or never (default auto).
    pub remove_background: Option<String>,
    /// Colour the mesh from the image (default true).
    pub texture: Option<bool>,
    /// 0 (default) to 9; higher runs first among the jobs a worker holds.
    pub priority: Option<u8>,
    /// RFC 3339 time after which the job should not start; it then fails with `deadline_exceeded`.
    pub deadline: Option<String>,
}

/// A field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}`: {reason}")]
pub struct InvalidOption {
    pub field: &'static str,
    pub reason: String,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> InvalidOption {
    InvalidOption {
        field,
        reason: reason.into(),
    }
}

/// Validated job options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobSpec {
    pub engine: Engine,
    pub seed: u64,
    pub steps: u32,
    pub guidance_scale: f32,
    pub octree_resolution: u32,
    pub num_chunks: u32,
    pub face_count: Option<u64>,
    #[schema(value_type = Vec<String>)]
    pub formats: Vec<MeshFormat>,
    #[schema(value_type = String)]
    pub remove_background: BackgroundMode,
    pub texture: bool,
    pub priority: u8,
    pub deadline: Option<DateTime<Utc>>,
}

fn range<T: PartialOrd + fmt::Display + Copy>(
    field: &'static str,
    v: T,
    lo: T,
    hi: T,
) -> Result<T, InvalidOption> {
    if v < lo || v > hi {
        Err(invalid(field, format!("{v} is outside {lo}..={hi}")))
    } else {
        Ok(v)
    }
}

impl JobOptionsInput {
    /// Validates every field; the first invalid one is reported by name.
    pub fn validate(self, now: DateTime<Utc>) -> Result<JobSpec, InvalidOption> {
        let engine: Engine = self
            .engine
            .as_deref()
            .unwrap_or("inflate")
            .parse()
            .map_err(|e: String| invalid("engine", e))?;
        let guidance_scale = self.guidance_scale.unwrap_or(5.0);
        if !guidance_scale.is_finite() {
            return Err(invalid("guidance_scale", "must be a finite number"));
        }
        let formats = match self.formats {
            None => vec![MeshFormat::Glb],
            Some(list) if list.is_empty() => {
                return Err(invalid("formats", "must name at least one format"));
            }
            Some(list) => {
                let mut out = list
                    .iter()
                    .map(|f| f.parse::<MeshFormat>().map_err(|e| invalid("formats", e)))
                    .collect::<Result<Vec<_>, _>>()?;
                out.sort();
                out.dedup();
                out
            }
        };
        let remove_background = match self.remove_background.as_deref() {
            None => BackgroundMode::Auto,
            Some(s) => s
                .parse()
                .map_err(|e: String| invalid("remove_background", e))?,
        };
        let deadline = match self.deadline.as_deref() {
            None => None,
            Some(s) => {
                let t = DateTime::parse_from_rfc3339(s)
                    .map_err(|e| invalid("deadline", format!("not an RFC 3339 time: {e}")))?
                    .with_timezone(&Utc);
                if t <= now {
                    return Err(invalid("deadline", "is in the past"));
                }
                Some(t)
            }
        };
        Ok(JobSpec {
            engine,
            seed: self.seed.unwrap_or(1234),
            steps: range("steps", self.steps.unwrap_or(50), 1, 200)?,
            guidance_scale: range("guidance_scale", guidance_scale, 0.0, 100.0)?,
            octree_resolution: range(
                "octree_resolution",
                self.octree_resolution.unwrap_or(256),
                64,
                512,
            )?,
            num_chunks: range(
                "num_chunks",
                self.num_chunks.unwrap_or(8000),
                1000,
                1_000_000,
            )?,
            face_count: self
                .face_count
                .map(|n| range("face_count", n, 100, 2_000_000))
                .transpose()?,
            formats,
            remove_background,
            texture: self.texture.unwrap_or(true),
            priority: range("priority", self.priority.unwrap_or(0), 0, 9)?,
            deadline,
        })
    }
}

/// The message a job travels as on the queue. Besides the id it carries what the worker's batch
/// optimizer needs to size and group a batch before touching the database. The trace context
/// travels in the message headers, not here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobMessage {
    pub job_id: JobId,
    pub priority: u8,
    pub engine: Engine,
    pub octree_resolution: u32,
    pub num_chunks: u32,
    pub steps: u32,
}

impl JobMessage {
    pub fn for_job(job_id: JobId, spec: &JobSpec) -> Self {
        JobMessage {
            job_id,
            priority: spec.priority,
            engine: spec.engine,
            octree_resolution: spec.octree_resolution,
            num_chunks: spec.num_chunks,
            steps: spec.steps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    #[test]
    fn defaults() {
        let spec = JobOptionsInput::default().validate(now()).expect("valid");
        assert_eq!(spec.engine, Engine::Inflate);
        assert_eq!(spec.formats, vec![MeshFormat::Glb]);
        assert_eq!(spec.octree_resolution, 256);
        assert!(spec.texture);
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases: Vec<(&str, JobOptionsInput)> = vec![
            (
                "engine",
                JobOptionsInput {
                    engine: Some("magic".into()),
                    ..Default::default()
                },
            ),
            (
                "steps",
                JobOptionsInput {
                    steps: Some(0),
                    ..Default::default()
                },
            ),
            (
                "guidance_scale",
                JobOptionsInput {
                    guidance_scale: Some(f32::NAN),
                    ..Default::default()
                },
            ),
            (
                "octree_resolution",
                JobOptionsInput {
                    octree_resolution: Some(1024),
                    ..Default::default()
                },
            ),
            (
                "num_chunks",
                JobOptionsInput {
                    num_chunks: Some(5),
                    ..Default::default()
                },
            ),
            (
                "face_count",
                JobOptionsInput {
                    face_count: Some(3),
                    ..Default::default()
                },
            ),
            (
                "formats",
                JobOptionsInput {
                    formats: Some(vec!["fbx".into()]),
                    ..Default::default()
                },
            ),
            (
                "formats",
                JobOptionsInput {
                    formats: Some(vec![]),
                    ..Default::default()
                },
            ),
            (
                "remove_background",
                JobOptionsInput {
                    remove_background: Some("maybe".into()),
                    ..Default::default()
                },
            ),
            (
                "priority",
                JobOptionsInput {
                    priority: Some(10),
                    ..Default::default()
                },
            ),
            (
                "deadline",
                JobOptionsInput {
                    deadline: Some("tomorrow".into()),
                    ..Default::default()
                },
            ),
            (
                "deadline",
                JobOptionsInput {
                    deadline: Some("2001-01-01T00:00:00Z".into()),
                    ..Default::default()
                },
            ),
        ];
        for (field, input) in cases {
            let err = input.validate(now()).expect_err(field);
            assert_eq!(err.field, field, "{err}");
        }
    }

    #[test]
    fn formats_are_deduplicated_and_sorted() {
        let spec = JobOptionsInput {
            formats: Some(vec!["ply".into(), "GLB".into(), "ply".into()]),
            ..Default::default()
        }
        .validate(now())
        .expect("valid");
        assert_eq!(spec.formats, vec![MeshFormat::Glb, MeshFormat::Ply]);
    }

    #[test]
    fn status_round_trip() {
        for s in ["queued", "running", "succeeded", "failed", "canceled"] {
            assert_eq!(s.parse::<JobStatus>().expect("known").as_str(), s);
        }
        assert!("done".parse::<JobStatus>().is_err());
    }
}
