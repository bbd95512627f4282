//! A second copy of a running job's message (what an outbox relay publishes when its confirm mark
//! lags, or every API replica's relay after a broker outage) must leave the job to its owner.

use std::time::Duration;

use orfeas_vocab::{Engine, JobMessage, TextureMode};

use crate::env::{TestEnv, id_of, sample, services_exclusive};
use crate::fast_reliability;

const T: Duration = Duration::from_secs(90);

async fn duplicate_of_a_running_job(name: &str, deadline_in: Option<Duration>) {
    let _services = services_exclusive().await;
    let env = TestEnv::with(name, &fast_reliability()).await;
    let api = env.start_api().await;
    let owner = env.start_worker().await;
    let idle = env.start_worker().await;
    let deadline = deadline_in.map(|d| {
        (chrono::Utc::now() + chrono::Duration::from_std(d).expect("duration")).to_rfc3339()
    });
    let options = match &deadline {
        Some(d) => {
            format!(r#"{{"octree_resolution": 512, "face_count": 20000, "deadline": "{d}"}}"#)
        }
        None => r#"{"octree_resolution": 512, "face_count": 20000}"#.to_owned(),
    };
    let (status, job) = api.submit(&sample("apple.jpg"), Some(&options), None).await;
    assert_eq!(status, 202, "{job}");
    let id = id_of(&job);
    api.wait_for(&id, T, |j| j["status"] == "running").await;
    if let Some(d) = deadline_in {
        // The deadline passes while the job runs (it may start a job, not finish one).
        tokio::time::sleep(d + Duration::from_millis(300)).await;
    }
    let (_, running) = api.get(&format!("/api/jobs/{id}")).await;
    assert_eq!(running["status"], "running", "still running: {running}");
    let copy = JobMessage {
        job_id: id.parse().expect("id"),
        priority: 0,
        engine: Engine::Inflate,
        octree_resolution: 512,
        num_chunks: 8000,
        steps: None,
        texture: TextureMode::default(),
    };
    env.publish_raw("", &copy.encode()).await;
    let end = api.wait_terminal(&id, T).await;
    assert_eq!(end["status"], "succeeded", "{end}");
    assert_eq!(end["attempt"], 1, "the owner finished it: {end}");
    let rows = env
        .db()
        .stage_records(id.parse().expect("id"))
        .await
        .expect("rows");
    assert_eq!(rows.len(), 5, "one set of stage rows: {rows:?}");
    assert!(rows.iter().all(|r| r.attempt == 1));
    assert!(
        env.drain_queue(".dlq").await.is_empty(),
        "nothing dead-lettered"
    );
    idle.stop().await;
    owner.stop().await;
    api.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_duplicate_message_of_a_running_job_leaves_it_to_its_owner() {
    duplicate_of_a_running_job("dup", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_duplicate_after_the_deadline_does_not_fail_a_running_job() {
    duplicate_of_a_running_job("dup_deadline", Some(Duration::from_millis(1500))).await;
}
