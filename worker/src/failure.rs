//! Failure classification, in one place: every error a job can meet becomes a [`Failure`], and
//! the error-code table decides whether it is permanent (fail + dead-letter) or transient
//! (retry with backoff, then fail + dead-letter).

use orfeas_pipeline::PipelineError;
use orfeas_shared::db::DbError;
use orfeas_shared::errors::{self, RetryClass};
use orfeas_shared::queue::QueueError;
use orfeas_shared::storage::StorageError;

#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// Retrying cannot help: the job fails with `code`, the message is dead-lettered.
    Permanent { code: String, message: String },
    /// A dependency hiccup: retried after a backoff.
    Transient { code: String, message: String },
    /// The job was canceled while running.
    Canceled,
    /// The queue message itself is unreadable; it is dead-lettered.
    Malformed(String),
}

impl Failure {
    pub fn permanent(code: &str, message: impl Into<String>) -> Self {
        Failure::Permanent {
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// Classifies by code through the shared table.
    pub fn from_code(code: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        match errors::lookup(code).retry {
            RetryClass::Transient => Failure::Transient {
                code: code.to_owned(),
                message,
            },
            RetryClass::Permanent | RetryClass::NotApplicable => Failure::Permanent {
                code: code.to_owned(),
                message,
            },
        }
    }
}

impl From<&PipelineError> for Failure {
    fn from(e: &PipelineError) -> Self {
        match e {
            PipelineError::Canceled { .. } => Failure::Canceled,
            other => Failure::from_code(other.code(), other.to_string()),
        }
    }
}

impl From<DbError> for Failure {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Corrupt(..) => Failure::permanent("internal", e.to_string()),
            other => Failure::from_code("database_unavailable", other.to_string()),
        }
    }
}

impl From<StorageError> for Failure {
    fn from(e: StorageError) -> Self {
        Failure::from_code("storage_unavailable", e.to_string())
    }
}

impl From<object_store::Error> for Failure {
    fn from(e: object_store::Error) -> Self {
        Failure::from_code("storage_unavailable", e.to_string())
    }
}

impl From<QueueError> for Failure {
    fn from(e: QueueError) -> Self {
        Failure::from_code("queue_unavailable", e.to_string())
    }
}

/// Exponential backoff with full jitter: uniform in [base·2^n / 2, base·2^n], capped.
pub fn backoff_ms(retry: u32, base_ms: u64, max_ms: u64) -> u64 {
    let exp = base_ms
        .saturating_mul(1u64 << retry.min(20))
        .min(max_ms)
        .max(1);
    exp / 2 + fastrand::u64(0..=exp / 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use orfeas_pipeline::error::{LoadError, PreprocessError, ShapeError};

    #[test]
    fn classification_follows_the_table() {
        let bad = PipelineError::from(LoadError::Empty);
        assert!(
            matches!(Failure::from(&bad), Failure::Permanent { code, .. } if code == "empty_input")
        );
        let nofg = PipelineError::from(PreprocessError::NoForeground { reason: "x".into() });
        assert!(
            matches!(Failure::from(&nofg), Failure::Permanent { code, .. } if code == "no_foreground")
        );
        let engine = PipelineError::from(ShapeError::Engine {
            engine: "e".into(),
            detail: "oom".into(),
        });
        assert!(
            matches!(Failure::from(&engine), Failure::Transient { code, .. } if code == "engine_failure")
        );
        let canceled = PipelineError::Canceled {
            stage: orfeas_pipeline::Stage::MeshExport,
        };
        assert_eq!(Failure::from(&canceled), Failure::Canceled);
        let store = object_store::Error::Generic {
            store: "s3",
            source: "down".into(),
        };
        assert!(
            matches!(Failure::from(store), Failure::Transient { code, .. } if code == "storage_unavailable")
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for retry in 0..10 {
            let b = backoff_ms(retry, 100, 5_000);
            let exp = (100u64 << retry).min(5_000);
            assert!(b >= exp / 2 && b <= exp, "retry {retry}: {b}");
        }
    }
}
