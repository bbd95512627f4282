//! Dependencies going away mid-run: RabbitMQ stopped and restarted, PostgreSQL restarted.
//! No accepted job may be lost and every component must heal by itself.
//!
//! These tests stop shared services, so each holds the services exclusively: no other test of
//! this binary runs meanwhile. A guard restarts the service even when an assertion fails.

use std::process::Command;
use std::time::Duration;

use crate::env::{TestEnv, id_of, sample, services_exclusive};

fn run(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn pg_version() -> String {
    std::fs::read_dir("/etc/postgresql")
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .unwrap_or_else(|| "15".into())
}

/// Starts RabbitMQ's application again when dropped.
struct RabbitGuard;

impl Drop for RabbitGuard {
    fn drop(&mut self) {
        run("rabbitmqctl", &["-q", "start_app"]);
        run("rabbitmqctl", &["-q", "await_startup"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rabbitmq_restart_loses_no_job() {
    let _services = services_exclusive().await;
    let env = TestEnv::new("chaos_amqp").await;
    let api = env.start_api().await;
    let worker = env.start_worker().await;
    let image = sample("star.png");
    let opts = Some(r#"{"octree_resolution": 96}"#);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (status, job) = api.submit(&image, opts, None).await;
        assert_eq!(status, 202);
        ids.push(id_of(&job));
    }
    {
        let _guard = RabbitGuard;
        assert!(
            run("rabbitmqctl", &["-q", "stop_app"]),
            "rabbitmqctl stop_app"
        );
        // Accepted while the broker is down: recorded, published later by the outbox.
        for _ in 0..3 {
            let (status, job) = api.submit(&image, opts, None).await;
            assert_eq!(status, 202, "accepted while RabbitMQ is down: {job}");
            ids.push(id_of(&job));
        }
        let (status, ready) = api.get("/readyz").await;
        assert_eq!(status, 503, "{ready}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let queue = &env.config.amqp.queue;
    for end in api
        .wait_all_terminal(&ids, Duration::from_secs(90), queue)
        .await
    {
        assert_eq!(end["status"], "succeeded", "{end}");
    }
    // Workers reconnected and the API's publisher too.
    let (status, job) = api.submit(&image, opts, None).await;
    assert_eq!(status, 202);
    let end = api
        .wait_terminal(&id_of(&job), Duration::from_secs(60))
        .await;
    assert_eq!(end["status"], "succeeded");
    assert_eq!(api.get("/readyz").await.0, 200);
    worker.stop().await;
    api.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgresql_restart_loses_no_job() {
    let _services = services_exclusive().await;
    let env = TestEnv::new("chaos_pg").await;
    let api = env.start_api().await;
    let worker = env.start_worker().await;
    let image = sample("vase.png");
    let opts = Some(r#"{"octree_resolution": 192}"#);
    let mut ids = Vec::new();
    for _ in 0..4 {
        let (status, job) = api.submit(&image, opts, None).await;
        assert_eq!(status, 202);
        ids.push(id_of(&job));
    }
    let version = pg_version();
    assert!(
        run(
            "pg_ctlcluster",
            &["--skip-systemctl-redirect", &version, "main", "restart"]
        ),
        "pg_ctlcluster restart"
    );
    // Submissions during or right after the restart either succeed (202) or are refused
    // cleanly (503) with nothing left behind.
    for _ in 0..4 {
        let (status, job) = api.submit(&image, opts, None).await;
        match status {
            202 => ids.push(id_of(&job)),
            503 => assert_eq!(job["error"]["code"], "service_unavailable"),
            other => panic!("unexpected {other}: {job}"),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let queue = &env.config.amqp.queue;
    for end in api
        .wait_all_terminal(&ids, Duration::from_secs(120), queue)
        .await
    {
        assert_eq!(end["status"], "succeeded", "{end}");
    }
    let (_, all) = api.get("/api/jobs?limit=100").await;
    assert_eq!(
        all["jobs"].as_array().map(Vec::len),
        Some(ids.len()),
        "no orphan rows"
    );
    worker.stop().await;
    api.stop().await;
    env.cleanup().await;
}
