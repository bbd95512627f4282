//! The batch optimizer in the fleet: compatible jobs share batches and teach the memory model;
//! a job too large for the device fails or is routed; a GPU worker without a driver refuses to
//! start.

use std::time::Duration;

use orfeas_vocab::{Device, Engine, Stage, Workload};

use crate::env::{TestEnv, id_of, sample, services_shared};

const T: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_optimizer_batches_compatible_jobs_and_learns_their_memory() {
    let _services = services_shared().await;
    let env = TestEnv::with(
        "e2e_batching",
        &[
            ("ORFEAS__WORKER__BATCH_SIZE", "4"),
            ("ORFEAS__WORKER__BATCH_WAIT_MS", "300"),
        ],
    )
    .await;
    let api = env.start_api().await;
    let image = sample("star.png");
    let mut jobs = Vec::new();
    for (res, n) in [(96, 6), (192, 3)] {
        for _ in 0..n {
            let (status, job) = api
                .submit(
                    &image,
                    Some(&format!(r#"{{"octree_resolution": {res}}}"#)),
                    None,
                )
                .await;
            assert_eq!(status, 202);
            jobs.push((id_of(&job), res));
        }
    }
    let worker = env.start_worker().await;
    let db = env.db();
    let mut batch_sizes = Vec::new();
    for (id, res) in &jobs {
        let end = api.wait_terminal(id, T).await;
        assert_eq!(end["status"], "succeeded", "{end}");
        let rows = db
            .stage_records(id.parse().expect("id"))
            .await
            .expect("rows");
        let shape = rows
            .iter()
            .find(|r| r.stage == Stage::ShapeGeneration)
            .expect("shape row");
        batch_sizes.push((*res, shape.batch_size));
        assert!(
            rows.iter().all(|r| r.peak_memory_bytes.is_some()),
            "peak memory recorded: {rows:?}"
        );
    }
    // Jobs waiting together ran together, never beyond the cap, never across resolutions.
    assert!(batch_sizes.iter().any(|(_, b)| *b > 1), "{batch_sizes:?}");
    assert!(
        batch_sizes
            .iter()
            .all(|(res, b)| *b <= 4 && (*res != 192 || *b <= 3)),
        "{batch_sizes:?}"
    );
    // The memory model learned figures and persisted them.
    let learned = db.memory_model(Device::Cpu).await.expect("model");
    let buckets: Vec<i32> = learned.iter().map(|f| f.resolution_bucket).collect();
    assert!(
        buckets.contains(&128) && buckets.contains(&192),
        "{learned:?}"
    );
    assert!(
        learned
            .iter()
            .all(|f| f.workload == Workload::Shape(Engine::Inflate)
                && f.bytes_per_job > 0
                && f.samples >= 1)
    );
    worker.stop().await;
    api.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_too_large_for_the_device_fails_or_is_routed() {
    let _services = services_shared().await;
    // A worker limited to 100 MB: a resolution-256 inflate job is estimated at 161 MiB, so not
    // even one fits.
    let env = TestEnv::with(
        "e2e_nofit",
        &[("ORFEAS__WORKER__MEMORY_LIMIT_BYTES", "100000000")],
    )
    .await;
    let api = env.start_api().await;
    let worker = env.start_worker().await;
    let (_, job) = api.submit(&sample("star.png"), None, None).await;
    let end = api.wait_terminal(&id_of(&job), T).await;
    assert_eq!(end["status"], "failed");
    assert_eq!(end["error"]["code"], "insufficient_memory", "{end}");
    assert!(
        end["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("0 fit"),
        "the reasoning: {end}"
    );
    worker.stop().await;

    // With a queue for larger devices configured, the job goes there and stays queued.
    let overflow = format!("{}.large", env.config.amqp.queue);
    let mut cfg = env.config.clone();
    cfg.worker.overflow_queue = Some(overflow.clone());
    let routed_worker = orfeas_worker::Worker::new(cfg).await.expect("worker");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(routed_worker.run(async move {
        let _ = rx.await;
    }));
    let (_, job) = api.submit(&sample("star.png"), None, None).await;
    let id = id_of(&job);
    let routed = env.wait_queue(".large", 1, Duration::from_secs(10)).await;
    assert_eq!(routed.len(), 1, "routed to {overflow}");
    let msg: serde_json::Value = serde_json::from_slice(&routed[0].delivery.data).expect("json");
    assert_eq!(msg["job_id"], id);
    let (_, still) = api.get(&format!("/api/jobs/{id}")).await;
    assert_eq!(still["status"], "queued");
    let _ = tx.send(());
    let _ = task.await;
    if let Ok(conn) = orfeas_shared::queue::connect(&env.config.amqp.url).await
        && let Ok(ch) = conn.create_channel().await
    {
        let _ = ch
            .queue_delete(
                overflow.as_str().into(),
                lapin::options::QueueDeleteOptions::default(),
            )
            .await;
    }
    api.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gpu_worker_without_a_driver_refuses_to_start() {
    let _services = services_shared().await;
    if std::path::Path::new("/proc/driver/nvidia").exists() {
        eprintln!("skipped: this machine has an NVIDIA driver");
        return;
    }
    let env = TestEnv::with("e2e_nogpu", &[("ORFEAS__WORKER__DEVICE", "cuda:0")]).await;
    let err = orfeas_worker::Worker::new(env.config.clone())
        .await
        .expect_err("no NVML here");
    assert!(err.to_string().contains("NVML"), "{err}");
    env.cleanup().await;
}
