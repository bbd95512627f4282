//! The one table of error codes: every code a client or operator can see, with its HTTP status
//! and its retry class. The API maps errors to responses and the worker maps failures to
//! ack / retry / dead-letter through this table only.

use serde::Serialize;
use utoipa::ToSchema;

/// What the worker does with a job that failed with a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RetryClass {
    /// Retrying cannot help: the job fails and its message goes to the dead-letter queue.
    Permanent,
    /// A dependency hiccup: retried with exponential backoff, then failed and dead-lettered.
    Transient,
    /// Not a job failure (a client error answered by the API, or a deliberate stop).
    NotApplicable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode {
    pub code: &'static str,
    pub http_status: u16,
    pub retry: RetryClass,
    pub meaning: &'static str,
}

use RetryClass::{NotApplicable as NA, Permanent as P, Transient as T};

pub const ERROR_CODES: &[ErrorCode] = &[
    // Pipeline failures (orfeas_pipeline::PipelineError::code); the job ends `failed`.
    ErrorCode {
        code: "empty_input",
        http_status: 422,
        retry: P,
        meaning: "the uploaded file is empty",
    },
    ErrorCode {
        code: "input_too_large",
        http_status: 413,
        retry: P,
        meaning: "the input is over the byte limit",
    },
    ErrorCode {
        code: "unsupported_format",
        http_status: 415,
        retry: P,
        meaning: "not PNG, JPEG or WebP",
    },
    ErrorCode {
        code: "image_too_large",
        http_status: 422,
        retry: P,
        meaning: "width, height or pixel count over the limit (from the header)",
    },
    ErrorCode {
        code: "image_too_small",
        http_status: 422,
        retry: P,
        meaning: "a side is under the minimum",
    },
    ErrorCode {
        code: "truncated_image",
        http_status: 422,
        retry: P,
        meaning: "the image data ends early",
    },
    ErrorCode {
        code: "corrupt_image",
        http_status: 422,
        retry: P,
        meaning: "the image data cannot be decoded",
    },
    ErrorCode {
        code: "no_foreground",
        http_status: 422,
        retry: P,
        meaning: "no object found (fully transparent or plain image)",
    },
    ErrorCode {
        code: "invalid_option",
        http_status: 422,
        retry: P,
        meaning: "a job option is invalid",
    },
    ErrorCode {
        code: "empty_surface",
        http_status: 422,
        retry: P,
        meaning: "the engine produced no surface",
    },
    ErrorCode {
        code: "empty_mesh",
        http_status: 422,
        retry: P,
        meaning: "nothing to export",
    },
    ErrorCode {
        code: "mesh_too_large",
        http_status: 422,
        retry: P,
        meaning: "the mesh exceeds a format's limits",
    },
    ErrorCode {
        code: "engine_failure",
        http_status: 500,
        retry: T,
        meaning: "the shape engine failed; retried",
    },
    ErrorCode {
        code: "out_of_memory",
        http_status: 503,
        retry: T,
        meaning: "the device ran out of memory for a batch; the batch is split and retried",
    },
    ErrorCode {
        code: "engine_unavailable",
        http_status: 422,
        retry: P,
        meaning: "the job reached a worker that runs another shape engine (misrouted message)",
    },
    ErrorCode {
        code: "insufficient_memory",
        http_status: 422,
        retry: P,
        meaning: "a single job needs more memory than this worker's device offers",
    },
    ErrorCode {
        code: "canceled",
        http_status: 409,
        retry: NA,
        meaning: "the job was canceled",
    },
    // Worker-level failures.
    ErrorCode {
        code: "deadline_exceeded",
        http_status: 422,
        retry: P,
        meaning: "the job's deadline passed before it could start",
    },
    ErrorCode {
        code: "job_timeout",
        http_status: 500,
        retry: P,
        meaning: "the job ran longer than worker.job_timeout_s",
    },
    ErrorCode {
        code: "input_missing",
        http_status: 500,
        retry: P,
        meaning: "the stored input is gone",
    },
    ErrorCode {
        code: "retries_exhausted",
        http_status: 503,
        retry: P,
        meaning: "transient failures outlasted worker.max_attempts",
    },
    ErrorCode {
        code: "storage_unavailable",
        http_status: 503,
        retry: T,
        meaning: "the object store failed",
    },
    ErrorCode {
        code: "database_unavailable",
        http_status: 503,
        retry: T,
        meaning: "PostgreSQL failed",
    },
    ErrorCode {
        code: "queue_unavailable",
        http_status: 503,
        retry: T,
        meaning: "RabbitMQ failed",
    },
    // API-only answers.
    ErrorCode {
        code: "bad_request",
        http_status: 400,
        retry: NA,
        meaning: "malformed request (multipart, missing part, bad id or cursor)",
    },
    ErrorCode {
        code: "not_found",
        http_status: 404,
        retry: NA,
        meaning: "no such job, output or route",
    },
    ErrorCode {
        code: "conflict",
        http_status: 409,
        retry: NA,
        meaning: "the job's state does not allow this (e.g. cancel a finished job)",
    },
    ErrorCode {
        code: "idempotency_key_reused",
        http_status: 409,
        retry: NA,
        meaning: "the Idempotency-Key was used for a different request",
    },
    ErrorCode {
        code: "payload_too_large",
        http_status: 413,
        retry: NA,
        meaning: "upload over api.max_upload_bytes, refused while streaming",
    },
    ErrorCode {
        code: "unsupported_media_type",
        http_status: 415,
        retry: NA,
        meaning: "not multipart/form-data, or the image is not PNG, JPEG or WebP",
    },
    ErrorCode {
        code: "validation_failed",
        http_status: 422,
        retry: NA,
        meaning: "an option is invalid; the message names the field",
    },
    ErrorCode {
        code: "too_many_jobs",
        http_status: 429,
        retry: NA,
        meaning: "api.max_queued_jobs jobs are waiting; retry later",
    },
    ErrorCode {
        code: "service_unavailable",
        http_status: 503,
        retry: NA,
        meaning: "a dependency (PostgreSQL, object store) is down",
    },
    ErrorCode {
        code: "internal",
        http_status: 500,
        retry: NA,
        meaning: "an unexpected error",
    },
];

/// Looks a code up; unknown codes are treated as internal, permanent errors.
pub fn lookup(code: &str) -> ErrorCode {
    ERROR_CODES
        .iter()
        .find(|c| c.code == code)
        .copied()
        .unwrap_or(ErrorCode {
            code: "internal",
            http_status: 500,
            retry: RetryClass::Permanent,
            meaning: "an unexpected error",
        })
}

/// The table as Markdown (the README's error table is generated from it).
pub fn markdown_table() -> String {
    let mut s = String::from("| code | HTTP | retry | meaning |\n|---|---|---|---|\n");
    for c in ERROR_CODES {
        let retry = match c.retry {
            RetryClass::Permanent => "permanent",
            RetryClass::Transient => "transient",
            RetryClass::NotApplicable => "—",
        };
        s.push_str(&format!(
            "| `{}` | {} | {retry} | {} |\n",
            c.code, c.http_status, c.meaning
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use orfeas_pipeline::Stage;
    use orfeas_pipeline::error::{
        ExportError, LoadError, PipelineError, PreprocessError, ShapeError,
    };

    #[test]
    fn codes_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for c in ERROR_CODES {
            assert!(seen.insert(c.code), "duplicate {}", c.code);
            assert!(
                c.code
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch == '_'),
                "{}",
                c.code
            );
        }
    }

    #[test]
    fn every_pipeline_error_is_in_the_table() {
        let errors = [
            PipelineError::from(LoadError::Empty),
            LoadError::TooManyBytes { size: 2, limit: 1 }.into(),
            LoadError::UnsupportedFormat {
                detail: String::new(),
            }
            .into(),
            LoadError::TooManyPixels {
                pixels: 2,
                max_pixels: 1,
            }
            .into(),
            LoadError::TooSmall {
                width: 1,
                height: 1,
                min_side: 2,
            }
            .into(),
            LoadError::Truncated {
                detail: String::new(),
            }
            .into(),
            LoadError::Corrupt {
                detail: String::new(),
            }
            .into(),
            PreprocessError::NoForeground {
                reason: String::new(),
            }
            .into(),
            ShapeError::InvalidOption {
                field: "x",
                reason: String::new(),
            }
            .into(),
            ShapeError::EmptySurface {
                reason: String::new(),
            }
            .into(),
            ShapeError::Engine {
                engine: String::new(),
                detail: String::new(),
            }
            .into(),
            ShapeError::OutOfMemory {
                detail: String::new(),
            }
            .into(),
            ExportError::EmptyMesh.into(),
            ExportError::TooLarge {
                format: "glb",
                detail: String::new(),
            }
            .into(),
            PipelineError::Canceled {
                stage: Stage::MeshExport,
            },
        ];
        for e in errors {
            let entry = lookup(e.code());
            assert_eq!(entry.code, e.code(), "{} missing from the table", e.code());
            assert_eq!(
                entry.retry == RetryClass::Transient,
                !e.is_permanent(),
                "{}",
                e.code()
            );
        }
    }
}

#[cfg(test)]
mod readme {
    #[test]
    fn the_readme_carries_the_current_table() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
            .expect("README.md");
        assert!(
            readme.contains(&super::markdown_table()),
            "README's error table is out of date; paste shared::errors::markdown_table() into it"
        );
    }
}
