//! Failing jobs end visibly: a poison input fails and is dead-lettered, a SIGKILLed worker's
//! job completes exactly once on another, transient failures retry and then dead-letter.

use std::time::Duration;

use orfeas_shared::queue::ERROR_CODE_HEADER;

use crate::env::{TestEnv, id_of, sample, services_shared};

const T: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_input_fails_and_is_dead_lettered() {
    let _services = services_shared().await;
    let env = TestEnv::new("e2e_poison").await;
    let api = env.start_api().await;
    let worker = env.start_worker().await;
    let good = sample("star.png");
    // A PNG signature (so the API accepts it) with the rest cut off.
    let (status, job) = api.submit(&good[..good.len() / 3], None, None).await;
    assert_eq!(status, 202);
    let id = id_of(&job);
    let end = api.wait_terminal(&id, T).await;
    assert_eq!(end["status"], "failed");
    assert_eq!(end["error"]["code"], "truncated_image", "{end}");
    assert!(
        end["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("image_loading")
    );
    let dlq = env.wait_queue(".dlq", 1, Duration::from_secs(10)).await;
    assert_eq!(dlq.len(), 1);
    let headers = dlq[0]
        .delivery
        .properties
        .headers()
        .clone()
        .expect("headers");
    let code = headers
        .inner()
        .iter()
        .find(|(k, _)| k.as_str() == ERROR_CODE_HEADER)
        .and_then(|(_, v)| match v {
            lapin::types::AMQPValue::LongString(s) => Some(s.to_string()),
            _ => None,
        })
        .unwrap_or_default();
    assert_eq!(code, "truncated_image");
    worker.stop().await;
    api.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_job_completes_exactly_once() {
    let _services = services_shared().await;
    let env = TestEnv::new("e2e_sigkill").await;
    let api = env.start_api().await;
    let mut first = env.spawn_worker_process("victim");
    let (_, job) = api
        .submit(
            &sample("apple.jpg"),
            Some(r#"{"octree_resolution": 512, "face_count": 20000, "formats": ["glb", "ply"]}"#),
            None,
        )
        .await;
    let id = id_of(&job);
    api.wait_for(&id, T, |j| j["status"] == "running").await;
    first.kill().expect("SIGKILL");
    let _ = first.wait();
    let mut second = env.spawn_worker_process("survivor");
    let end = api.wait_terminal(&id, Duration::from_secs(90)).await;
    assert_eq!(end["status"], "succeeded", "{end}");
    assert_eq!(end["attempt"], 2, "the second attempt finished it");
    let rows = env
        .db()
        .stage_records(id.parse().expect("id"))
        .await
        .expect("rows");
    assert_eq!(
        rows.len(),
        5,
        "one row per stage, none from the killed attempt: {rows:?}"
    );
    assert!(
        rows.iter()
            .all(|r| r.attempt == 2 && r.worker_id == "survivor")
    );
    for format in ["glb", "ply"] {
        let resp = api
            .client
            .get(api.url(&format!("/api/jobs/{id}/outputs/{format}")))
            .send()
            .await
            .expect("get");
        assert_eq!(resp.status(), 200);
    }
    // SIGTERM drains and exits 0.
    let (_, job2) = api
        .submit(
            &sample("star.png"),
            Some(r#"{"octree_resolution": 512}"#),
            None,
        )
        .await;
    let id2 = id_of(&job2);
    api.wait_for(&id2, T, |j| j["status"] == "running").await;
    let pid = second.id().to_string();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(term.success());
    let exit = second.wait().expect("wait");
    assert!(exit.success(), "worker exit status {exit:?}");
    let (_, after) = api.get(&format!("/api/jobs/{id2}")).await;
    assert_eq!(
        after["status"], "succeeded",
        "in-flight job finished before exit: {after}"
    );
    api.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_object_store_down_past_the_outage_budget_fails_the_job() {
    let _services = services_shared().await;
    let env = TestEnv::with(
        "e2e_outage",
        &[
            ("ORFEAS__WORKER__MAX_ATTEMPTS", "2"),
            ("ORFEAS__WORKER__OUTAGE_BUDGET_S", "2"),
        ],
    )
    .await;
    if !env
        .vars
        .iter()
        .any(|(k, v)| k == "ORFEAS__STORAGE__KIND" && v == "s3")
    {
        eprintln!("skipped: needs the S3 test server (run scripts/test.sh)");
        env.cleanup().await;
        return;
    }
    let api = env.start_api().await;
    // The worker's object store is unreachable: every attempt meets the outage.
    let mut broken = env.config.clone();
    if let orfeas_shared::config::StorageConfig::S3 { endpoint, .. } = &mut broken.storage {
        *endpoint = Some("http://127.0.0.1:1".into());
    }
    let worker = env.start_worker_with(broken).await;

    let (status, job) = api.submit(&sample("star.png"), None, None).await;
    assert_eq!(status, 202);
    let id = id_of(&job);
    let end = api.wait_terminal(&id, Duration::from_secs(90)).await;
    assert_eq!(end["status"], "failed", "{end}");
    assert_eq!(end["error"]["code"], "storage_unavailable", "{end}");
    // An outage does not use attempts: more tries than worker.max_attempts were made.
    assert!(end["attempt"].as_i64().unwrap_or(0) > 2, "{end}");
    assert!(
        end["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("outage_budget_s"),
        "{end}"
    );
    let dlq = env.wait_queue(".dlq", 1, Duration::from_secs(10)).await;
    assert_eq!(dlq.len(), 1, "dead-lettered once");
    worker.stop().await;
    api.stop().await;
    env.cleanup().await;
}
