//! The message a job travels as on the queue. Besides the id it carries what a worker's batch
//! optimizer needs to size and group a batch before touching the database; the trace context
//! travels in the message headers.
//!
//! Messages carry a version. Workers read the current version and the one before it, so during
//! a rolling upgrade (workers first, then the API) no queued job is stranded:
//! - version 1 (no `version` field): `steps` is always a number;
//! - version 2: `version: 2`, and `steps` may be `null` (the checkpoint's default).

use serde::{Deserialize, Serialize};

use crate::{Engine, JobId, JobSpec, TextureMode};

#[derive(Debug, Clone, PartialEq)]
pub struct JobMessage {
    pub job_id: JobId,
    pub priority: u8,
    pub engine: Engine,
    pub octree_resolution: u32,
    pub num_chunks: u32,
    pub steps: Option<u32>,
    /// How the job is textured: `paint` jobs batch among themselves and their memory is learned
    /// apart (messages written before the field read as the default mode).
    pub texture: TextureMode,
}

/// A message this process cannot read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MessageError {
    #[error("not a job message: {0}")]
    Malformed(String),
    #[error(
        "job message version {version} is not supported here (this process reads versions {oldest} to {current}); upgrade the workers before the API"
    )]
    UnsupportedVersion {
        version: u32,
        oldest: u32,
        current: u32,
        /// The job, when the message names one (so it can still be failed visibly).
        job_id: Option<JobId>,
    },
}

impl MessageError {
    /// The job the message names, when it names one readably.
    pub fn job_id(&self) -> Option<JobId> {
        match self {
            MessageError::Malformed(_) => None,
            MessageError::UnsupportedVersion { job_id, .. } => *job_id,
        }
    }
}

/// The version field alone, with what every version shares, read before the body.
#[derive(Deserialize)]
struct Head {
    #[serde(default = "first_version")]
    version: u32,
    job_id: Option<JobId>,
}

fn first_version() -> u32 {
    1
}

#[derive(Serialize, Deserialize)]
struct V2 {
    version: u32,
    job_id: JobId,
    priority: u8,
    engine: Engine,
    octree_resolution: u32,
    num_chunks: u32,
    steps: Option<u32>,
    /// Added within version 2: older writers leave it out, older readers ignore it.
    #[serde(default)]
    texture: TextureMode,
}

#[derive(Deserialize)]
struct V1 {
    job_id: JobId,
    priority: u8,
    engine: Engine,
    octree_resolution: u32,
    num_chunks: u32,
    steps: u32,
}

impl JobMessage {
    /// The version this process writes.
    pub const VERSION: u32 = 2;
    /// The oldest version this process still reads.
    pub const OLDEST_VERSION: u32 = 1;

    pub fn for_job(job_id: JobId, spec: &JobSpec) -> Self {
        JobMessage {
            job_id,
            priority: spec.priority,
            engine: spec.engine,
            octree_resolution: spec.octree_resolution,
            num_chunks: spec.num_chunks,
            steps: spec.steps,
            texture: spec.texture,
        }
    }

    /// The JSON body, at the current version.
    pub fn encode(&self) -> Vec<u8> {
        let wire = V2 {
            version: Self::VERSION,
            job_id: self.job_id,
            priority: self.priority,
            engine: self.engine,
            octree_resolution: self.octree_resolution,
            num_chunks: self.num_chunks,
            steps: self.steps,
            texture: self.texture,
        };
        // Serializing plain fields of known types cannot fail.
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, MessageError> {
        let head: Head =
            serde_json::from_slice(bytes).map_err(|e| MessageError::Malformed(e.to_string()))?;
        let malformed = |e: serde_json::Error| MessageError::Malformed(e.to_string());
        let wire = match head.version {
            1 => {
                let m: V1 = serde_json::from_slice(bytes).map_err(malformed)?;
                V2 {
                    version: 2,
                    job_id: m.job_id,
                    priority: m.priority,
                    engine: m.engine,
                    octree_resolution: m.octree_resolution,
                    num_chunks: m.num_chunks,
                    steps: Some(m.steps),
                    texture: TextureMode::default(),
                }
            }
            2 => serde_json::from_slice(bytes).map_err(malformed)?,
            version => {
                return Err(MessageError::UnsupportedVersion {
                    version,
                    oldest: Self::OLDEST_VERSION,
                    current: Self::VERSION,
                    job_id: head.job_id,
                });
            }
        };
        Ok(JobMessage {
            job_id: wire.job_id,
            priority: wire.priority,
            engine: wire.engine,
            octree_resolution: wire.octree_resolution,
            num_chunks: wire.num_chunks,
            steps: wire.steps,
            texture: wire.texture,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> JobMessage {
        JobMessage {
            job_id: JobId::new(),
            priority: 3,
            engine: Engine::Hunyuan3d,
            octree_resolution: 384,
            num_chunks: 8000,
            steps: None,
            texture: TextureMode::Paint,
        }
    }

    #[test]
    fn the_current_version_round_trips() {
        let m = message();
        let bytes = m.encode();
        let json: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(json["version"], 2);
        assert!(json["steps"].is_null());
        assert_eq!(JobMessage::decode(&bytes), Ok(m));
    }

    #[test]
    fn the_previous_version_is_still_read() {
        // Exactly what the version-1 API published.
        let id = JobId::new();
        let v1 = format!(
            r#"{{"job_id":"{id}","priority":0,"engine":"inflate","octree_resolution":256,"num_chunks":8000,"steps":50}}"#
        );
        let m = JobMessage::decode(v1.as_bytes()).expect("v1");
        assert_eq!(m.job_id, id);
        assert_eq!(m.engine, Engine::Inflate);
        assert_eq!(m.steps, Some(50));
        assert_eq!(m.texture, TextureMode::Uv);
        // A version-2 message from before the texture field.
        let v2 = format!(
            r#"{{"version":2,"job_id":"{id}","priority":0,"engine":"inflate","octree_resolution":256,"num_chunks":8000,"steps":null}}"#
        );
        assert_eq!(
            JobMessage::decode(v2.as_bytes()).map(|m| m.texture),
            Ok(TextureMode::Uv)
        );
    }

    #[test]
    fn newer_and_broken_messages_are_refused_with_the_job_named_when_possible() {
        let id = JobId::new();
        let v9 = format!(r#"{{"version":9,"job_id":"{id}","whatever":true}}"#);
        let e = JobMessage::decode(v9.as_bytes()).expect_err("too new");
        assert_eq!(e.job_id(), Some(id));
        assert!(e.to_string().contains("version 9"), "{e}");
        let e = JobMessage::decode(b"not json").expect_err("garbage");
        assert_eq!(e.job_id(), None);
        let e = JobMessage::decode(br#"{"version":2,"job_id":"x"}"#).expect_err("bad id");
        assert!(matches!(e, MessageError::Malformed(_)));
    }
}
