//! Object storage (S3 and S3-compatible servers, a local directory, or memory) and the
//! deterministic keys jobs use, so a retry overwrites rather than duplicates:
//! `inputs/{job}/input.{ext}` and `outputs/{job}/{artifact file name}` (`mesh.glb`, …,
//! `cutout.png`).

use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use orfeas_vocab::{Artifact, JobId};

use crate::config::StorageConfig;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("object store configuration: {0}")]
    Config(String),
}

pub fn build(cfg: &StorageConfig) -> Result<Arc<dyn ObjectStore>, StorageError> {
    Ok(match cfg {
        StorageConfig::Local { path } => {
            std::fs::create_dir_all(path)
                .map_err(|e| StorageError::Config(format!("creating {}: {e}", path.display())))?;
            Arc::new(LocalFileSystem::new_with_prefix(path)?)
        }
        StorageConfig::Memory => Arc::new(InMemory::new()),
        StorageConfig::S3 {
            bucket,
            endpoint,
            region,
            access_key_id,
            secret_access_key,
            allow_http,
            path_style,
            request_timeout,
        } => {
            // The worker retries jobs itself, so the client gives up after a few quick tries
            // (within about one request timeout) instead of object_store's default of ten within
            // three minutes; a store that stalls fails in bounded time.
            let retry = object_store::RetryConfig {
                max_retries: 3,
                retry_timeout: *request_timeout,
                ..object_store::RetryConfig::default()
            };
            let client = object_store::ClientOptions::new()
                .with_timeout(*request_timeout)
                .with_connect_timeout((*request_timeout).min(std::time::Duration::from_secs(5)));
            let mut b = AmazonS3Builder::new()
                .with_retry(retry)
                .with_client_options(client)
                .with_bucket_name(bucket)
                .with_region(region)
                .with_allow_http(*allow_http)
                .with_virtual_hosted_style_request(!*path_style);
            if let Some(endpoint) = endpoint {
                b = b.with_endpoint(endpoint);
            }
            if let Some(key_id) = access_key_id {
                b = b
                    .with_access_key_id(key_id)
                    .with_secret_access_key(secret_access_key);
            }
            Arc::new(b.build()?)
        }
    })
}

/// `inputs/{job}/input.{ext}`
pub fn input_key(id: JobId, ext: &str) -> Path {
    Path::from(format!("inputs/{id}/input.{ext}"))
}

/// `outputs/{job}/{file}`: `mesh.glb`, …, `cutout.png`.
pub fn output_key(id: JobId, artifact: Artifact) -> Path {
    Path::from(format!("outputs/{id}/{}", artifact.file_name()))
}

/// Whether the store answers: a listing of one object under a fixed prefix.
pub async fn ping(store: &dyn ObjectStore) -> Result<(), StorageError> {
    use futures::StreamExt;
    let mut list = store.list(Some(&Path::from("inputs")));
    match list.next().await {
        None | Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(e.into()),
    }
}

/// Re-exported so callers need not name the extension trait's crate.
pub use object_store::PutPayload;

pub async fn put(
    store: &dyn ObjectStore,
    key: &Path,
    bytes: bytes::Bytes,
) -> Result<(), StorageError> {
    store.put(key, PutPayload::from(bytes)).await?;
    Ok(())
}
