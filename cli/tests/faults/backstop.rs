//! The broker's own backstop: a message that keeps coming back without any attempt starting is
//! dead-lettered by RabbitMQ after `amqp.delivery_limit` deliveries, through the policy
//! `orfeas migrate` applies.

use std::time::Duration;

use lapin::options::{BasicGetOptions, BasicNackOptions};
use orfeas_shared::queue::{self, Topology, policy};
use orfeas_vocab::{Engine, JobId, JobMessage, TextureMode};

use crate::env::{TestEnv, services_exclusive};
use crate::fast_reliability;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_broker_dead_letters_a_message_past_the_delivery_limit() {
    let _services = services_exclusive().await;
    let Ok(management) = std::env::var("ORFEAS_TEST_AMQP_MANAGEMENT") else {
        assert!(
            std::env::var("ORFEAS_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "the management API is required (run scripts/test.sh)"
        );
        eprintln!("skipped: needs RabbitMQ's management API (run scripts/test.sh)");
        return;
    };
    let mut settings = fast_reliability();
    settings.extend([
        ("ORFEAS__WORKER__MAX_ATTEMPTS", "2"),
        ("ORFEAS__AMQP__DELIVERY_LIMIT", "3"),
    ]);
    let env = TestEnv::with("backstop", &settings).await;
    policy::apply(&env.config, &management)
        .await
        .expect("policies applied");
    let topology = Topology::for_engine(&env.config.amqp.queue, Engine::Inflate);
    let conn = queue::connect(&env.config.amqp.url).await.expect("amqp");
    let ch = conn.create_channel().await.expect("channel");
    ch.confirm_select(lapin::options::ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    topology.declare(&ch).await.expect("topology");
    // Policies reach queues asynchronously, and the management API shows queues with its
    // statistics interval (5 s by default): wait until the jobs queue carries it.
    let client = reqwest::Client::new();
    let url = format!(
        "{}/api/queues/%2F/{}",
        management.replace("guest:guest@", ""),
        topology.jobs
    );
    let mut applied = false;
    for _ in 0..150 {
        let q: serde_json::Value = client
            .get(&url)
            .basic_auth("guest", Some("guest"))
            .send()
            .await
            .expect("management")
            .json()
            .await
            .unwrap_or_default();
        if q["effective_policy_definition"]["delivery-limit"] == 3 {
            applied = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(applied, "the policy never reached {}", topology.jobs);

    let msg = JobMessage {
        job_id: JobId::new(),
        priority: 0,
        engine: Engine::Inflate,
        octree_resolution: 64,
        num_chunks: 8000,
        steps: None,
        texture: TextureMode::default(),
    };
    queue::publish_confirmed(
        &ch,
        &topology.jobs,
        &msg.encode(),
        queue::properties(0, Default::default()),
    )
    .await
    .expect("published");
    // A consumer that takes the message and gives it back, as a worker dying before it reaches
    // the database would.
    let mut deliveries = 0;
    for _ in 0..50 {
        match ch
            .basic_get(
                topology.jobs.as_str().into(),
                BasicGetOptions { no_ack: false },
            )
            .await
            .expect("get")
        {
            Some(m) => {
                deliveries += 1;
                m.delivery
                    .nack(BasicNackOptions {
                        requeue: true,
                        ..BasicNackOptions::default()
                    })
                    .await
                    .expect("nack");
            }
            None => tokio::time::sleep(Duration::from_millis(50)).await,
        }
        if deliveries > 6 {
            break;
        }
    }
    let dead = env.wait_queue(".dlq", 1, Duration::from_secs(10)).await;
    assert_eq!(
        dead.len(),
        1,
        "dead-lettered by the broker after {deliveries} deliveries"
    );
    assert!(deliveries <= 4, "the limit held: {deliveries} deliveries");
    assert_eq!(
        JobMessage::decode(&dead[0].delivery.data)
            .expect("msg")
            .job_id,
        msg.job_id
    );
    policy::remove(&env.config, &management)
        .await
        .expect("policies removed");
    let _ = conn.close(200, "done".into()).await;
    env.cleanup().await;
}
