//! Failure classification, in one place: every error a job can meet becomes a [`Failure`], and
//! the error-code table's retry class decides whether it is permanent (fail + dead-letter) or
//! transient (retry with backoff, then fail + dead-letter).

use std::time::Duration;

use orfeas_pipeline::PipelineError;
use orfeas_shared::db::DbError;
use orfeas_shared::queue::QueueError;
use orfeas_shared::storage::StorageError;
use orfeas_vocab::{ErrorCode, MessageError, RetryClass};

#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// Retrying cannot help: the job fails with `code`, the message is dead-lettered.
    Permanent { code: ErrorCode, message: String },
    /// Worth another attempt: retried after a backoff while attempts are left.
    Transient { code: ErrorCode, message: String },
    /// A dependency (object store, PostgreSQL, RabbitMQ) is down: retried after a backoff
    /// without using an attempt, within the outage budget.
    Outage { code: ErrorCode, message: String },
    /// The job was canceled while running.
    Canceled,
    /// The queue message itself is unreadable (or of a version this worker does not read); it
    /// is dead-lettered, and its job failed when the message names one.
    Malformed(MessageError),
}

impl Failure {
    pub fn permanent(code: ErrorCode, message: impl Into<String>) -> Self {
        Failure::Permanent {
            code,
            message: message.into(),
        }
    }

    /// Classifies by the code's retry class.
    pub fn from_code(code: ErrorCode, message: impl Into<String>) -> Self {
        let message = message.into();
        match code.retry() {
            RetryClass::Transient => Failure::Transient { code, message },
            RetryClass::Outage => Failure::Outage { code, message },
            RetryClass::Permanent | RetryClass::NotApplicable => {
                Failure::Permanent { code, message }
            }
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
            DbError::Corrupt(..) => Failure::permanent(ErrorCode::Internal, e.to_string()),
            other => Failure::from_code(ErrorCode::DatabaseUnavailable, other.to_string()),
        }
    }
}

impl From<StorageError> for Failure {
    fn from(e: StorageError) -> Self {
        Failure::from_code(ErrorCode::StorageUnavailable, e.to_string())
    }
}

impl From<object_store::Error> for Failure {
    fn from(e: object_store::Error) -> Self {
        Failure::from_code(ErrorCode::StorageUnavailable, e.to_string())
    }
}

impl From<QueueError> for Failure {
    fn from(e: QueueError) -> Self {
        Failure::from_code(ErrorCode::QueueUnavailable, e.to_string())
    }
}

/// Exponential backoff with full jitter: uniform in [0, min(base·2^retry, max)], so retries of
/// many jobs that failed together spread out instead of returning in waves.
pub fn backoff(retry: u32, base: Duration, max: Duration) -> Duration {
    let base_ms = u64::try_from(base.as_millis()).unwrap_or(u64::MAX);
    let max_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    let cap = base_ms
        .saturating_mul(1u64 << retry.min(20))
        .min(max_ms)
        .max(1);
    Duration::from_millis(fastrand::u64(0..=cap))
}

#[cfg(test)]
mod tests {
    use super::*;
    use orfeas_pipeline::error::{LoadError, PreprocessError, ShapeError};

    #[test]
    fn classification_follows_the_table() {
        let bad = PipelineError::from(LoadError::Empty);
        assert_eq!(
            Failure::from(&bad),
            Failure::permanent(ErrorCode::EmptyInput, bad.to_string())
        );
        let nofg = PipelineError::from(PreprocessError::NoForeground { reason: "x".into() });
        assert!(matches!(
            Failure::from(&nofg),
            Failure::Permanent {
                code: ErrorCode::NoForeground,
                ..
            }
        ));
        let engine = PipelineError::from(ShapeError::Engine {
            engine: "e".into(),
            detail: "crash".into(),
        });
        assert!(matches!(
            Failure::from(&engine),
            Failure::Transient {
                code: ErrorCode::EngineFailure,
                ..
            }
        ));
        let canceled = PipelineError::Canceled {
            stage: orfeas_pipeline::Stage::MeshExport,
        };
        assert_eq!(Failure::from(&canceled), Failure::Canceled);
        let store = object_store::Error::Generic {
            store: "s3",
            source: "down".into(),
        };
        assert!(matches!(
            Failure::from(store),
            Failure::Outage {
                code: ErrorCode::StorageUnavailable,
                ..
            }
        ));
        assert!(matches!(
            Failure::from(DbError::Corrupt("x".into())),
            Failure::Permanent {
                code: ErrorCode::Internal,
                ..
            }
        ));
    }

    #[test]
    fn backoff_is_full_jitter_under_a_growing_cap() {
        let base = Duration::from_millis(100);
        let max = Duration::from_millis(5_000);
        for retry in 0..10u32 {
            let cap = (100u64 << retry).min(5_000);
            let samples: Vec<u64> = (0..2000)
                .map(|_| backoff(retry, base, max).as_millis() as u64)
                .collect();
            assert!(samples.iter().all(|&b| b <= cap), "retry {retry}");
            // Full jitter spans the whole range: some retries come almost at once, some near
            // the cap (each bound fails with probability 0.9^2000).
            assert!(samples.iter().any(|&b| b * 10 < cap), "retry {retry}");
            assert!(samples.iter().any(|&b| b * 10 > cap * 9), "retry {retry}");
        }
    }
}
