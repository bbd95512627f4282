//! The object mask through the fleet: each job reports the method that found it and the mask's
//! share, the `cutout` output shows it, and a worker with U²-Net weights segments photos with the
//! model (the committed u2netp fixture: seeded random weights, so only the plumbing is judged).
//! Weights that do not load stop the worker at start, never a job.

use std::time::Duration;

use crate::env::{TestEnv, id_of, sample, services_shared, sha256sum};
use crate::validate::repo;

const T: Duration = Duration::from_secs(90);

fn u2netp_fixture() -> std::path::PathBuf {
    repo().join("pipeline/tests/fixtures/u2net/u2netp.onnx")
}

/// Runs `image` with a cut-out; returns the finished job and the cut-out's RGBA pixels.
async fn run_with_cutout(
    api: &crate::env::Api,
    image: &[u8],
) -> (serde_json::Value, image::RgbaImage) {
    let (status, job) = api
        .submit(
            image,
            Some(r#"{"octree_resolution": 64, "cutout": true, "formats": ["glb"]}"#),
            None,
        )
        .await;
    assert_eq!(status, 202, "{job}");
    let done = api.wait_terminal(&id_of(&job), T).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let link = done["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .find(|o| o["artifact"] == "cutout")
        .expect("a cutout output");
    let bytes = api
        .client
        .get(api.url(link["url"].as_str().expect("url")))
        .send()
        .await
        .expect("download")
        .bytes()
        .await
        .expect("body");
    let png = image::load_from_memory(&bytes).expect("png").to_rgba8();
    (done, png)
}

async fn scrape(url: &str) -> String {
    reqwest::get(url)
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

fn method_and_share(job: &serde_json::Value) -> (String, f64) {
    let seg = &job["segmentation"];
    (
        seg["method"]
            .as_str()
            .expect("segmentation.method")
            .to_owned(),
        seg["mask_share"].as_f64().expect("segmentation.mask_share"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_job_reports_its_mask_and_u2net_weights_take_over_photos() {
    let _services = services_shared().await;
    let env = TestEnv::new("segmentation").await;
    let api = env.start_api().await;

    // Without weights: real alpha, and a photo segmented by a weights-free method.
    let worker = env.start_worker().await;
    let (star, cut) = run_with_cutout(&api, &sample("star.png")).await;
    let (method, share) = method_and_share(&star);
    assert_eq!(method, "alpha", "{star}");
    assert!(share > 0.05 && share < 0.95, "{share}");
    assert_eq!(cut.dimensions(), (512, 512));
    let (apple, _) = run_with_cutout(&api, &sample("apple.jpg")).await;
    let (method, share) = method_and_share(&apple);
    assert!(
        method == "plain_background" || method == "classic",
        "{apple}"
    );
    assert!(share > 0.03 && share < 0.9, "{share}");
    // Weights-free all the way: no weights recorded, and the worker's info says so.
    assert!(apple.get("weights").is_none(), "{apple}");
    let metrics = scrape(&worker.metrics_url).await;
    assert!(
        metrics.lines().any(|l| l.starts_with("orfeas_worker_info{")
            && l.contains(r#"weights="none""#)
            && l.contains(r#"segmentation_weights="none""#)),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"orfeas_segmentation_mask_share_count{method="alpha"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            r#"orfeas_segmentation_mask_share_count{{method="{method}"}} 1"#
        )),
        "{metrics}"
    );
    worker.stop().await;

    // With U²-Net weights the photo goes to the model; the alpha image still uses its alpha.
    let mut config = env.config.clone();
    config.worker.segmentation_weights = Some(u2netp_fixture());
    let worker = env.start_worker_with(config).await;
    let (apple, cut) = run_with_cutout(&api, &sample("apple.jpg")).await;
    let (method, share) = method_and_share(&apple);
    assert_eq!(method, "u2net", "{apple}");
    let fixture = u2netp_fixture();
    let (folder, file) = (
        fixture.parent().expect("folder"),
        fixture.file_name().expect("name").to_string_lossy(),
    );
    assert_eq!(
        apple["weights"]["segmentation"]["name"], "u2netp.onnx",
        "{apple}"
    );
    assert_eq!(
        apple["weights"]["segmentation"]["sha256"],
        sha256sum(folder, &file),
        "{apple}"
    );
    // inflate has no weights of its own.
    assert!(apple["weights"].get("engine").is_none(), "{apple}");
    assert!(share > 0.0 && share <= 1.0, "{share}");
    // The cut-out carries the model's mask as its alpha: some of it kept, some of it cleared.
    let clear = cut.pixels().filter(|p| p.0[3] == 0).count();
    assert!(clear > 0 && clear < 512 * 512, "{clear}");
    let (star, _) = run_with_cutout(&api, &sample("star.png")).await;
    assert_eq!(method_and_share(&star).0, "alpha", "{star}");
    let metrics = scrape(&worker.metrics_url).await;
    assert!(
        metrics.contains(r#"orfeas_segmentation_mask_share_count{method="u2net"} 1"#),
        "{metrics}"
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn segmentation_weights_that_do_not_load_stop_the_worker_at_start() {
    let _services = services_shared().await;
    let env = TestEnv::new("segmentation_bad").await;
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("segmentation-bad");
    std::fs::create_dir_all(&dir).expect("dir");
    let garbage = dir.join("u2net.onnx");
    std::fs::write(&garbage, b"this is not an ONNX model").expect("write");
    for (path, expect) in [
        (dir.join("missing.onnx"), "missing.onnx"),
        (garbage.clone(), "u2net.onnx"),
    ] {
        let mut config = env.config.clone();
        config.worker.segmentation_weights = Some(path);
        let err = orfeas_worker::Worker::new(config)
            .await
            .expect_err("the worker refuses to start");
        let text = err.to_string();
        assert!(
            text.contains("segmentation_weights") && text.contains(expect),
            "{text}"
        );
    }
    // The same through the binary: `orfeas worker` exits with an error naming the setting.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_orfeas"))
        .arg("worker")
        .envs(env.vars.iter().cloned())
        .env("ORFEAS__WORKER__SEGMENTATION_WEIGHTS", &garbage)
        .output()
        .expect("run orfeas worker");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("segmentation_weights"), "{stderr}");
}
