//! A job that kills its worker on every attempt stops after `worker.max_attempts`: it fails with
//! `worker_lost`, is dead-lettered once, and never reaches another worker.

use std::time::Duration;

use orfeas_vocab::Stage;

use crate::env::{TestEnv, id_of, sample, services_exclusive};
use crate::fast_reliability;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_that_kills_its_worker_every_time_ends_after_max_attempts() {
    let _services = services_exclusive().await;
    let mut settings = fast_reliability();
    settings.push(("ORFEAS__WORKER__MAX_ATTEMPTS", "3"));
    let env = TestEnv::with("crashloop", &settings).await;
    let api = env.start_api().await;
    let (status, job) = api
        .submit(
            &sample("apple.jpg"),
            Some(r#"{"octree_resolution": 512, "face_count": 20000}"#),
            None,
        )
        .await;
    assert_eq!(status, 202, "{job}");
    let id = id_of(&job);
    let mut kills = 0;
    let mut seen_attempt = 0;
    let end = loop {
        assert!(kills < 8, "still not ended after {kills} kills");
        let mut worker = env.spawn_worker_process(&format!("victim-{kills}"));
        let job = api
            .wait_for(&id, Duration::from_secs(60), |j| {
                j["status"] != "queued"
                    && (j["status"] != "running" || j["attempt"].as_i64() > Some(seen_attempt))
            })
            .await;
        if job["status"] != "running" {
            let _ = worker.kill();
            let _ = worker.wait();
            break job;
        }
        seen_attempt = job["attempt"].as_i64().expect("attempt");
        // The input "crashes the engine": the worker dies mid-job, every time.
        worker.kill().expect("SIGKILL");
        let _ = worker.wait();
        kills += 1;
    };
    assert_eq!(end["status"], "failed", "{end}");
    assert_eq!(end["error"]["code"], "worker_lost", "{end}");
    assert_eq!(end["attempt"], 3, "{end}");
    assert_eq!(kills, 3);
    let message = end["error"]["message"].as_str().unwrap_or("");
    assert!(
        Stage::NAMES
            .iter()
            .any(|stage| message.contains(&format!("during {stage}")))
            || message.contains("during its start"),
        "the last known stage is named: {end}"
    );
    let dlq = env.wait_queue(".dlq", 1, Duration::from_secs(10)).await;
    assert_eq!(dlq.len(), 1, "dead-lettered once");
    // Never picked up again.
    let mut survivor = env.spawn_worker_process("survivor");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _ = survivor.kill();
    let _ = survivor.wait();
    let (_, after) = api.get(&format!("/api/jobs/{id}")).await;
    assert_eq!(after["status"], "failed");
    assert_eq!(after["attempt"], 3, "{after}");
    assert!(
        env.drain_queue(".dlq").await.is_empty(),
        "no second dead letter"
    );
    api.stop().await;
    env.cleanup().await;
}
