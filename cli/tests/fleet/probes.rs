//! The worker's probes as an orchestrator sees them: `/healthz` answers while the process
//! lives; `/readyz` is 200 only while the worker consumes its queue — 503 while the broker is
//! unreachable, and from SIGTERM on while the batch in hand drains.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::env::{TestEnv, id_of, sample, services_shared};

const T: Duration = Duration::from_secs(60);

async fn probe(client: &reqwest::Client, base: &str, path: &str) -> (u16, String) {
    let resp = client
        .get(format!("{base}{path}"))
        .send()
        .await
        .expect("probe answers");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

async fn readyz(client: &reqwest::Client, base: &str) -> (u16, Value) {
    let (status, body) = probe(client, base, "/readyz").await;
    (
        status,
        serde_json::from_str(&body).expect("readyz answers JSON"),
    )
}

/// Polls `/readyz` until its session reads `session`; panics after `timeout`.
async fn wait_session(
    client: &reqwest::Client,
    base: &str,
    session: &str,
    timeout: Duration,
) -> (u16, Value) {
    let start = Instant::now();
    loop {
        let (status, body) = readyz(client, base).await;
        if body["session"] == session {
            return (status, body);
        }
        assert!(
            start.elapsed() < timeout,
            "readyz never read {session} in {timeout:?}: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readyz_is_503_while_the_broker_is_unreachable() {
    let _services = services_shared().await;
    let env = TestEnv::new("probes_broker").await;
    let mut config = env.config.clone();
    config.amqp.url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", free_port());
    let worker = env.start_worker_with(config).await;
    let base = worker.metrics_url.trim_end_matches("/metrics").to_owned();
    let client = reqwest::Client::new();

    // Several reads across the reconnect backoff: never ready.
    for _ in 0..5 {
        let (status, body) = readyz(&client, &base).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(
            body,
            serde_json::json!({"ready": false, "session": "connecting", "stuck": false})
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(probe(&client, &base, "/healthz").await, (200, "ok".into()));
    worker.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readyz_is_200_while_consuming_and_503_once_sigterm_drains() {
    let _services = services_shared().await;
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let env = TestEnv::with(
        "probes_drain",
        &[("ORFEAS__WORKER__METRICS_LISTEN", listen.as_str())],
    )
    .await;
    let api = env.start_api().await;
    let mut worker = env.spawn_worker_process("probed");
    let base = format!("http://{listen}");
    let client = reqwest::Client::new();

    // The real binary: probes are up once it has started; ready once its consumer is on.
    let start = Instant::now();
    let (status, body) = loop {
        match client.get(format!("{base}/readyz")).send().await {
            Ok(resp) if resp.status() == 200 => {
                break (200, resp.json::<Value>().await.expect("json"));
            }
            _ => {
                assert!(start.elapsed() < T, "the worker never became ready");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(
        (status, body),
        (
            200,
            serde_json::json!({"ready": true, "session": "consuming", "stuck": false})
        )
    );
    assert_eq!(probe(&client, &base, "/healthz").await, (200, "ok".into()));

    // A batch in hand that takes a while (the largest grid), so the drain is observable.
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (status, job) = api
            .submit(
                &sample("apple.jpg"),
                Some(r#"{"octree_resolution": 512, "formats": ["glb", "ply"]}"#),
                None,
            )
            .await;
        assert_eq!(status, 202, "{job}");
        ids.push(id_of(&job));
    }
    api.wait_for(&ids[0], T, |j| j["status"] == "running").await;
    let (status, body) = readyz(&client, &base).await;
    assert_eq!(status, 200, "ready while running a batch: {body}");

    let term = std::process::Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    let (status, body) = wait_session(&client, &base, "draining", Duration::from_secs(10)).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["ready"], false, "{body}");
    assert!(
        worker.try_wait().expect("try_wait").is_none(),
        "answered while the batch drains, before exit"
    );
    assert_eq!(probe(&client, &base, "/healthz").await, (200, "ok".into()));

    let exit = worker.wait().expect("wait");
    assert!(exit.success(), "worker exit status {exit:?}");
    let (_, first) = api.get(&format!("/api/jobs/{}", ids[0])).await;
    assert_eq!(
        first["status"], "succeeded",
        "the batch in hand finished before exit: {first}"
    );
    api.stop().await;
    env.cleanup().await;
}
