//! Job identity and lifecycle.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::names::named_enum;

/// A job id: a UUIDv7, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
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

named_enum! {
    /// Lifecycle: `queued → running → succeeded | failed | canceled` (a queued job may be
    /// canceled, and a running one stops at its next stage boundary when asked to).
    pub enum JobStatus: "status" {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        Canceled = "canceled",
    }
}

#[cfg(feature = "sqlx")]
crate::names::sql_name!(pg_enum JobStatus, "job_status");

impl JobStatus {
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Canceled
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        for s in ["queued", "running", "succeeded", "failed", "canceled"] {
            assert_eq!(s.parse::<JobStatus>().expect("known").as_str(), s);
        }
        assert!("done".parse::<JobStatus>().is_err());
        let terminal: Vec<JobStatus> = JobStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(
            terminal,
            [JobStatus::Succeeded, JobStatus::Failed, JobStatus::Canceled]
        );
    }

    #[test]
    fn ids_sort_by_creation() {
        let a = JobId::new();
        let b = JobId::new();
        assert!(a < b);
        assert_eq!(a.to_string().parse::<JobId>().expect("parse"), a);
    }
}
