//! Two API replicas with one pending outbox row publish its job once.

use std::time::Duration;

use orfeas_shared::db::NewJob;
use orfeas_vocab::{JobId, JobMessage, JobSpec};

use crate::env::{TestEnv, services_exclusive};
use crate::fast_reliability;

const JOBS: usize = 600;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_publish_a_pending_job_once() {
    let _services = services_exclusive().await;
    let env = TestEnv::with("outbox_replicas", &fast_reliability()).await;
    // Jobs accepted while the broker was down: committed, never published. Enough of them that
    // a relay's round takes long enough for the other replica's round to overlap it.
    let db = env.db();
    for _ in 0..JOBS {
        db.insert_job(
            &NewJob {
                id: JobId::new(),
                spec: JobSpec::default(),
                input_key: "inputs/none/input.png".into(),
                input_bytes: 1,
                idempotency_key: None,
                request_hash: None,
                trace_context: Default::default(),
                owner: None,
            },
            Default::default(),
            Duration::from_secs(86_400),
        )
        .await
        .expect("insert");
    }
    let a = env.start_api().await;
    let b = env.start_api().await;
    // The relays pick rows older than 2 s; give both several rounds.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let published = env.drain_queue("").await;
    let mut ids: Vec<JobId> = published
        .iter()
        .map(|m| {
            JobMessage::decode(&m.delivery.data)
                .expect("message")
                .job_id
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), JOBS, "every pending job published");
    assert_eq!(published.len(), JOBS, "each of them once");
    a.stop().await;
    b.stop().await;
    env.cleanup().await;
}
