//! The HTTP routes, thin over the state's services.

pub mod account;
pub mod capabilities;
pub mod events;
pub mod jobs;
pub mod ops;
pub mod performance;

use orfeas_vocab::JobId;

use crate::error::ApiError;

/// A job id from a path or query; a malformed one is a 400 naming it.
pub(crate) fn parse_id(raw: &str) -> Result<JobId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::bad_request(format!("`{raw}` is not a job id")))
}
