//! The `hunyuan3d` engine in the fleet, on the tiny checkpoint: its own queue, workers that load
//! its weights at start-up (and refuse to start without usable ones), and deployments that do
//! not enable it.

use std::time::Duration;

use crate::env::{TestEnv, id_of, sample, services_shared, sha256sum};
use crate::validate::{repo, validate};

const T: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hunyuan3d_worker_without_usable_weights_refuses_to_start() {
    let _services = services_shared().await;
    let env = TestEnv::with("e2e_noweights", &[("ORFEAS__WORKER__ENGINE", "hunyuan3d")]).await;
    let err = orfeas_worker::Worker::new(env.config.clone())
        .await
        .expect_err("no weights configured");
    assert!(err.to_string().contains("worker.weights"), "{err}");
    // A truncated checkpoint: the start-up error names the file problem.
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("truncated-ckpt");
    std::fs::create_dir_all(&dir).expect("dir");
    let src = repo().join("pipeline/tests/fixtures/hunyuan3d/tiny");
    std::fs::copy(src.join("config.yaml"), dir.join("config.yaml")).expect("config");
    let bytes = std::fs::read(src.join("model.fp16.safetensors")).expect("weights");
    std::fs::write(
        dir.join("model.fp16.safetensors"),
        &bytes[..bytes.len() - 100],
    )
    .expect("write");
    let mut config = env.config.clone();
    config.worker.weights = Some(dir);
    let err = orfeas_worker::Worker::new(config)
        .await
        .expect_err("corrupt weights");
    assert!(err.to_string().contains("safetensors"), "{err}");
    env.cleanup().await;
}

/// The `hunyuan3d` engine end to end on the tiny checkpoint: the API routes its jobs to their
/// own queue, a worker configured with the weights runs them, and an inflate-only deployment
/// refuses them with 422.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hunyuan3d_jobs_run_on_workers_with_its_weights() {
    let _services = services_shared().await;
    let weights = repo().join("pipeline/tests/fixtures/hunyuan3d/tiny");
    let weights = weights.display().to_string();
    let env = TestEnv::with(
        "e2e_hunyuan3d",
        &[
            ("ORFEAS__API__ENGINES", r#"["inflate", "hunyuan3d"]"#),
            ("ORFEAS__WORKER__ENGINE", "hunyuan3d"),
            ("ORFEAS__WORKER__WEIGHTS", &weights),
        ],
    )
    .await;
    let api = env.start_api().await;
    let worker = env.start_worker().await;
    let options = r#"{"engine": "hunyuan3d", "steps": 4, "octree_resolution": 64, "formats": ["glb", "stl"]}"#;
    let (status, a) = api.submit(&sample("star.png"), Some(options), None).await;
    assert_eq!(status, 202, "{a}");
    let (status, b) = api.submit(&sample("vase.png"), Some(options), None).await;
    assert_eq!(status, 202, "{b}");
    let mut files = Vec::new();
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("fleet-downloads")
        .join(&env.name);
    std::fs::create_dir_all(&dir).expect("dir");
    for id in [id_of(&a), id_of(&b)] {
        let done = api.wait_terminal(&id, T).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        assert_eq!(done["options"]["engine"], "hunyuan3d", "{done}");
        // The ledger names the checkpoint the job ran with, by content.
        let checkpoint = repo().join("pipeline/tests/fixtures/hunyuan3d/tiny");
        assert_eq!(done["weights"]["engine"]["name"], "tiny", "{done}");
        assert_eq!(
            done["weights"]["engine"]["sha256"],
            sha256sum(&checkpoint, "* | sha256sum"),
            "{done}"
        );
        assert!(done["weights"].get("segmentation").is_none(), "{done}");
        for out in done["outputs"].as_array().expect("outputs") {
            let bytes = api
                .client
                .get(api.url(out["url"].as_str().expect("url")))
                .send()
                .await
                .expect("download")
                .bytes()
                .await
                .expect("body");
            let f = dir.join(format!("{id}.{}", out["format"].as_str().expect("format")));
            std::fs::write(&f, &bytes).expect("write");
            files.push(f);
        }
    }
    validate(&files);
    let metrics = reqwest::get(&worker.metrics_url)
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body");
    let digest = sha256sum(
        &repo().join("pipeline/tests/fixtures/hunyuan3d/tiny"),
        "* | sha256sum",
    );
    let label = format!(r#"weights="tiny@{}""#, &digest[..12]);
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("orfeas_worker_info{") && l.contains(&label)),
        "{metrics}"
    );
    // An inflate job on this deployment waits in the inflate queue (no inflate worker runs here).
    let (status, c) = api.submit(&sample("star.png"), None, None).await;
    assert_eq!(status, 202, "{c}");
    let queued = env.wait_queue("", 1, Duration::from_secs(10)).await;
    assert_eq!(queued.len(), 1, "the inflate job is in the inflate queue");
    worker.stop().await;
    api.stop().await;
    env.cleanup().await;

    // A deployment without hunyuan3d refuses such jobs up front.
    let env = TestEnv::new("hunyuan3d_disabled").await;
    let api = env.start_api().await;
    let (status, body) = api.submit(&sample("star.png"), Some(options), None).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("not enabled"), "{body}");
    api.stop().await;
    env.cleanup().await;
}
