//! What can stop a service from starting, for the API and the worker alike.

use crate::db::DbError;
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The configured device cannot be read (no NVIDIA driver for `cuda:N`, …).
    #[error("{0}")]
    Device(String),
    /// The configured engine's model could not be loaded (missing or corrupt checkpoint).
    #[error("model: {0}")]
    Model(String),
    /// The configuration would be unsafe to serve (e.g. a public listener with no API key).
    #[error("refusing to start: {0}")]
    Refused(String),
}
