//! Retries of different delays do not queue behind each other: a retry due in 100 ms comes back
//! before one due in 10 s that was published first (each delay has its own queue).

use std::time::{Duration, Instant};

use lapin::options::ConfirmSelectOptions;
use orfeas_shared::queue::{self, Topology};
use orfeas_vocab::{Engine, JobId, JobMessage, TextureMode};

use crate::env::{TestEnv, services_exclusive};
use crate::fast_reliability;

fn body() -> (JobId, Vec<u8>) {
    let id = JobId::new();
    let m = JobMessage {
        job_id: id,
        priority: 0,
        engine: Engine::Inflate,
        octree_resolution: 64,
        num_chunks: 8000,
        steps: None,
        texture: TextureMode::default(),
    };
    (id, m.encode())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_short_retry_does_not_wait_behind_a_long_one() {
    let _services = services_exclusive().await;
    let mut settings = fast_reliability();
    settings.extend([
        ("ORFEAS__WORKER__RETRY_BASE_MS", "100"),
        ("ORFEAS__WORKER__RETRY_MAX_MS", "10000"),
    ]);
    let env = TestEnv::with("retry_levels", &settings).await;
    let w = &env.config.worker;
    let topology =
        Topology::new(&env.config.amqp.queue).with_retry_levels(w.retry_base, w.retry_max);
    let conn = queue::connect(&env.config.amqp.url).await.expect("amqp");
    let ch = conn.create_channel().await.expect("channel");
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    topology.declare(&ch).await.expect("topology");
    let (long_id, long) = body();
    let (short_id, short) = body();
    let (q10, d10) = topology
        .retry_queue(Duration::from_secs(10))
        .expect("levels");
    let (q01, d01) = topology
        .retry_queue(Duration::from_millis(100))
        .expect("levels");
    assert_eq!(
        (d10, d01),
        (Duration::from_secs(10), Duration::from_millis(100))
    );
    let props = || queue::properties(0, Default::default());
    let sent = Instant::now();
    queue::publish_confirmed(&ch, &q10, &long, props())
        .await
        .expect("long retry");
    queue::publish_confirmed(&ch, &q01, &short, props())
        .await
        .expect("short retry");
    let first = env.wait_queue("", 1, Duration::from_secs(20)).await;
    let first_at = sent.elapsed();
    assert_eq!(first.len(), 1, "a retry came back");
    let first_id = JobMessage::decode(&first[0].delivery.data)
        .expect("msg")
        .job_id;
    assert_eq!(first_id, short_id, "the 100 ms retry came back first");
    assert!(first_at < Duration::from_secs(3), "{first_at:?}");
    let second = env.wait_queue("", 1, Duration::from_secs(20)).await;
    let second_at = sent.elapsed();
    assert_eq!(
        JobMessage::decode(&second[0].delivery.data)
            .expect("msg")
            .job_id,
        long_id
    );
    assert!(second_at >= Duration::from_secs(9), "{second_at:?}");
    // A publish to a queue that does not exist is an error, not a silent drop.
    let missing = format!("{}.no-such-queue", env.config.amqp.queue);
    let err = queue::publish_confirmed(&ch, &missing, &short, props())
        .await
        .expect_err("unroutable");
    assert!(err.to_string().contains("no-such-queue"), "{err}");
    let _ = conn.close(200, "done".into()).await;
    env.cleanup().await;
}
