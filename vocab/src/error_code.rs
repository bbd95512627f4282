//! The one table of error codes: every code a client or operator can see, with its HTTP status
//! and its retry class. New codes are added here and nowhere else; the API maps errors to
//! responses and the worker maps failures to ack / retry / dead-letter through this table, and
//! the README's table is generated from it ([`markdown_table`]).

use serde::Serialize;

use crate::names::named_enum;

/// What the worker does with a job that failed with a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RetryClass {
    /// Retrying cannot help: the job fails and its message goes to the dead-letter queue.
    Permanent,
    /// Worth another attempt: retried with exponential backoff until `worker.max_attempts`, then
    /// failed and dead-lettered.
    Transient,
    /// A dependency (object store, PostgreSQL, RabbitMQ) is down: the job waits and retries
    /// without using an attempt, until `worker.outage_budget_s` has passed.
    Outage,
    /// Not a job failure (a client error answered by the API, or a deliberate stop).
    NotApplicable,
}

named_enum! {
    /// A stable snake_case error code.
    pub enum ErrorCode: "error code" {
        // Pipeline failures; the job ends `failed`.
        EmptyInput = "empty_input",
        InputTooLarge = "input_too_large",
        UnsupportedFormat = "unsupported_format",
        ImageTooLarge = "image_too_large",
        ImageTooSmall = "image_too_small",
        TruncatedImage = "truncated_image",
        CorruptImage = "corrupt_image",
        NoForeground = "no_foreground",
        InvalidOption = "invalid_option",
        EmptySurface = "empty_surface",
        EmptyMesh = "empty_mesh",
        MeshTooLarge = "mesh_too_large",
        EngineFailure = "engine_failure",
        OutOfMemory = "out_of_memory",
        EngineUnavailable = "engine_unavailable",
        InsufficientMemory = "insufficient_memory",
        Canceled = "canceled",
        // Worker-level failures.
        DeadlineExceeded = "deadline_exceeded",
        JobTimeout = "job_timeout",
        InputMissing = "input_missing",
        RetriesExhausted = "retries_exhausted",
        WorkerLost = "worker_lost",
        MalformedMessage = "malformed_message",
        StorageUnavailable = "storage_unavailable",
        DatabaseUnavailable = "database_unavailable",
        QueueUnavailable = "queue_unavailable",
        // API-only answers.
        BadRequest = "bad_request",
        Unauthorized = "unauthorized",
        Forbidden = "forbidden",
        NotFound = "not_found",
        Gone = "gone",
        Conflict = "conflict",
        IdempotencyKeyReused = "idempotency_key_reused",
        PayloadTooLarge = "payload_too_large",
        UnsupportedMediaType = "unsupported_media_type",
        ValidationFailed = "validation_failed",
        WebhookRefused = "webhook_refused",
        RateLimited = "rate_limited",
        QuotaExceeded = "quota_exceeded",
        TooManyJobs = "too_many_jobs",
        TooManyUploads = "too_many_uploads",
        RequestTimeout = "request_timeout",
        ServiceUnavailable = "service_unavailable",
        Internal = "internal",
    }
}

#[cfg(feature = "sqlx")]
crate::names::sql_name!(text ErrorCode);

impl ErrorCode {
    /// HTTP status, retry class and meaning.
    const fn info(self) -> (u16, RetryClass, &'static str) {
        use ErrorCode::*;
        use RetryClass::{NotApplicable as NA, Outage as O, Permanent as P, Transient as T};
        match self {
            EmptyInput => (422, P, "the uploaded file is empty"),
            InputTooLarge => (413, P, "the input is over the byte limit"),
            UnsupportedFormat => (415, P, "not PNG, JPEG or WebP"),
            ImageTooLarge => (
                422,
                P,
                "width, height or pixel count over the limit (from the header)",
            ),
            ImageTooSmall => (422, P, "a side is under the minimum"),
            TruncatedImage => (422, P, "the image data ends early"),
            CorruptImage => (422, P, "the image data cannot be decoded"),
            NoForeground => (422, P, "no object found (fully transparent or plain image)"),
            InvalidOption => (422, P, "a job option is invalid"),
            EmptySurface => (422, P, "the engine produced no surface"),
            EmptyMesh => (422, P, "nothing to export"),
            MeshTooLarge => (422, P, "the mesh exceeds a format's limits"),
            EngineFailure => (
                500,
                T,
                "a model (shape engine, segmentation or paint) failed; retried",
            ),
            OutOfMemory => (
                503,
                T,
                "the device ran out of memory for a batch; the batch is split and retried",
            ),
            EngineUnavailable => (
                422,
                P,
                "the job reached a worker that runs another shape engine (misrouted message), or asked for `paint` on a worker without the paint models",
            ),
            InsufficientMemory => (
                422,
                P,
                "a single job needs more memory than this worker's device offers",
            ),
            Canceled => (409, NA, "the job was canceled"),
            DeadlineExceeded => (422, P, "the job's deadline passed before it could start"),
            JobTimeout => (500, P, "the job ran longer than worker.job_timeout_s"),
            InputMissing => (500, P, "the stored input is gone"),
            RetriesExhausted => (
                503,
                P,
                "the job failed worker.max_attempts times (transient failures)",
            ),
            WorkerLost => (
                500,
                P,
                "the worker running the job stopped (crash, kill, hang) on its last allowed attempt; the message names the last stage",
            ),
            MalformedMessage => (
                500,
                P,
                "the job's queue message is unreadable or of an unsupported version; dead-lettered",
            ),
            StorageUnavailable => (
                503,
                O,
                "the object store was unavailable for longer than worker.outage_budget_s",
            ),
            DatabaseUnavailable => (
                503,
                O,
                "PostgreSQL was unavailable for longer than worker.outage_budget_s",
            ),
            QueueUnavailable => (
                503,
                O,
                "RabbitMQ was unavailable for longer than worker.outage_budget_s",
            ),
            BadRequest => (
                400,
                NA,
                "malformed request (multipart, missing part, bad id or cursor)",
            ),
            Unauthorized => (
                401,
                NA,
                "no API key, or not a live one (unknown, revoked, malformed)",
            ),
            Forbidden => (
                403,
                NA,
                "the key's scope does not cover this (operator endpoints need `admin`), or a browser request failed its origin check",
            ),
            NotFound => (404, NA, "no such job (or not this key's), output or route"),
            Gone => (
                410,
                NA,
                "the job's input and outputs were deleted by its owner; the body says what remains",
            ),
            Conflict => (
                409,
                NA,
                "the job's state does not allow this (e.g. cancel a finished job)",
            ),
            IdempotencyKeyReused => (
                409,
                NA,
                "the Idempotency-Key was used for a different request",
            ),
            PayloadTooLarge => (
                413,
                NA,
                "upload over api.max_upload_bytes, refused while streaming",
            ),
            UnsupportedMediaType => (
                415,
                NA,
                "not multipart/form-data, or the image is not PNG, JPEG or WebP",
            ),
            ValidationFailed => (422, NA, "an option is invalid; the message names the field"),
            WebhookRefused => (
                422,
                NA,
                "the webhook URL is not allowed (not http(s), or it resolves to a loopback, private, link-local or metadata address)",
            ),
            RateLimited => (
                429,
                NA,
                "the key's request rate is used up; Retry-After and the RateLimit headers say when",
            ),
            QuotaExceeded => (
                429,
                NA,
                "the key's concurrent-job or daily quota is reached; Retry-After says when to try again",
            ),
            TooManyJobs => (429, NA, "api.max_queued_jobs jobs are waiting; retry later"),
            TooManyUploads => (
                503,
                NA,
                "api.max_concurrent_uploads uploads are being received; retry later",
            ),
            RequestTimeout => (
                408,
                NA,
                "the request body stalled for longer than api.body_timeout_ms",
            ),
            ServiceUnavailable => (503, NA, "a dependency (PostgreSQL, object store) is down"),
            Internal => (500, NA, "an unexpected error"),
        }
    }

    pub const fn http_status(self) -> u16 {
        self.info().0
    }

    pub const fn retry(self) -> RetryClass {
        self.info().1
    }

    pub const fn meaning(self) -> &'static str {
        self.info().2
    }
}

/// The table as Markdown (the README's error table is this text).
pub fn markdown_table() -> String {
    let mut s = String::from("| code | HTTP | retry | meaning |\n|---|---|---|---|\n");
    for c in ErrorCode::ALL {
        let retry = match c.retry() {
            RetryClass::Permanent => "permanent",
            RetryClass::Transient => "transient",
            RetryClass::Outage => "waits",
            RetryClass::NotApplicable => "—",
        };
        s.push_str(&format!(
            "| `{c}` | {} | {retry} | {} |\n",
            c.http_status(),
            c.meaning()
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_snake_case_and_statuses_valid() {
        for c in ErrorCode::ALL {
            assert!(
                c.as_str()
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch == '_'),
                "{c}"
            );
            assert!((400..600).contains(&c.http_status()), "{c}");
        }
        let unique: std::collections::HashSet<&str> = ErrorCode::NAMES.into_iter().collect();
        assert_eq!(unique.len(), ErrorCode::ALL.len());
    }

    #[test]
    fn the_readme_carries_the_current_table() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
            .expect("README.md");
        assert!(
            readme.contains(&markdown_table()),
            "README's error table is out of date; paste orfeas_vocab::error_code::markdown_table() into it"
        );
    }
}
