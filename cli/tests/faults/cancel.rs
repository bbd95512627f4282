//! A cancel that arrives while an attempt is failing transiently (here: the object store stalls)
//! ends the job `canceled`, not `queued` forever.

use std::time::Duration;

use orfeas_shared::config::StorageConfig;

use crate::env::{TestEnv, id_of, sample, services_exclusive};
use crate::fast_reliability;

/// A TCP server that accepts connections and never answers: a stalled object store.
async fn stalled_endpoint() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (format!("http://{addr}"), task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_during_a_transient_failure_ends_canceled() {
    let _services = services_exclusive().await;
    let mut settings = fast_reliability();
    settings.extend([
        ("ORFEAS__WORKER__MAX_ATTEMPTS", "10"),
        ("ORFEAS__STORAGE__REQUEST_TIMEOUT_MS", "1500"),
    ]);
    let env = TestEnv::with("cancel_transient", &settings).await;
    if !matches!(env.config.storage, StorageConfig::S3 { .. }) {
        eprintln!("skipped: needs the S3 test server (run scripts/test.sh)");
        env.cleanup().await;
        return;
    }
    let api = env.start_api().await;
    let (stalled, server) = stalled_endpoint().await;
    let mut broken = env.config.clone();
    if let StorageConfig::S3 { endpoint, .. } = &mut broken.storage {
        *endpoint = Some(stalled);
    }
    let worker = env.start_worker_with(broken).await;
    let (_, job) = api.submit(&sample("star.png"), None, None).await;
    let id = id_of(&job);
    // The attempt hangs on the stalled store: cancel it while it runs.
    api.wait_for(&id, Duration::from_secs(30), |j| j["status"] == "running")
        .await;
    let (status, body) = api.post(&format!("/api/jobs/{id}/cancel")).await;
    assert_eq!(status, 202, "{body}");
    let end = api.wait_terminal(&id, Duration::from_secs(60)).await;
    assert_eq!(end["status"], "canceled", "{end}");
    assert_eq!(end["error"]["code"], "canceled");
    worker.stop().await;
    server.abort();
    api.stop().await;
    env.cleanup().await;
}
