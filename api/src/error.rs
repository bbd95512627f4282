//! The API's one error type, mapped to `{error: {code, message}}` and its HTTP status in one
//! place, through the shared error-code table.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orfeas_shared::db::DbError;
use orfeas_shared::errors;
use orfeas_shared::storage::StorageError;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code (see the README's error table).
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new("bad_request", m)
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new("not_found", m)
    }
    pub fn conflict(m: impl Into<String>) -> Self {
        Self::new("conflict", m)
    }
    pub fn too_large(m: impl Into<String>) -> Self {
        Self::new("payload_too_large", m)
    }
    pub fn unsupported(m: impl Into<String>) -> Self {
        Self::new("unsupported_media_type", m)
    }
    pub fn validation(m: impl Into<String>) -> Self {
        Self::new("validation_failed", m)
    }
    pub fn unavailable(m: impl Into<String>) -> Self {
        Self::new("service_unavailable", m)
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(errors::lookup(self.code).http_status)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(code = self.code, message = %self.message, "request failed");
        }
        let mut resp = (
            status,
            Json(ErrorBody {
                error: ErrorDetail {
                    code: self.code.to_owned(),
                    message: self.message,
                },
            }),
        )
            .into_response();
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        resp
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Corrupt(..) => ApiError::new("internal", e.to_string()),
            other => ApiError::unavailable(format!("database: {other}")),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        ApiError::unavailable(format!("storage: {e}"))
    }
}
