//! The `paint` texture engine through the fleet, on the tiny seeded Hunyuan3D-Paint models of
//! `pipeline/tests/fixtures/paint_pipeline/` (64² views, 128² renders: only the plumbing is
//! judged): the API accepts `texture: paint` only where `api.texture_modes` enables it; a worker
//! without the models fails such a job visibly with `engine_unavailable`; a worker with them
//! paints it, streaming the delight and multiview denoising steps as progress, and stores a
//! textured GLB and OBJ; folders that do not load stop the worker at start, never a job.

use std::time::Duration;

use crate::env::{TestEnv, id_of, sample, services_shared};
use crate::events::read_sse;
use crate::validate::repo;

const T: Duration = Duration::from_secs(120);

const PAINT_JOB: &str = r#"{"octree_resolution": 64, "texture": "paint", "texture_size": 256, "formats": ["glb", "obj"]}"#;

fn models(config: &mut orfeas_shared::Config) {
    let dir = repo().join("pipeline/tests/fixtures/paint_pipeline");
    config.worker.paint_weights = Some(dir.join("multiview"));
    config.worker.delight_weights = Some(dir.join("delight"));
    config.worker.paint_view_size = 64;
    config.worker.paint_render_size = 128;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paint_jobs_run_where_enabled_and_report_their_denoising_steps() {
    let _services = services_shared().await;

    // A deployment that has not enabled paint refuses it at submission.
    let plain = TestEnv::new("paint_off").await;
    let api = plain.start_api().await;
    let (status, body) = api.submit(&sample("star.png"), Some(PAINT_JOB), None).await;
    assert_eq!(status, 422, "{body}");
    let text = body.to_string();
    assert!(
        text.contains("`texture`") && text.contains("none, vertex, uv"),
        "{body}"
    );
    api.stop().await;
    plain.cleanup().await;

    let env = TestEnv::with(
        "paint",
        &[
            (
                "ORFEAS__API__TEXTURE_MODES",
                r#"["none", "vertex", "uv", "paint"]"#,
            ),
            ("ORFEAS__WORKER__PROGRESS_INTERVAL_MS", "1"),
        ],
    )
    .await;
    let api = env.start_api().await;

    // Enabled, but this worker has no paint models: the job fails visibly, not silently.
    let worker = env.start_worker().await;
    let (status, job) = api.submit(&sample("star.png"), Some(PAINT_JOB), None).await;
    assert_eq!(status, 202, "{job}");
    let done = api.wait_terminal(&id_of(&job), T).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["error"]["code"], "engine_unavailable", "{done}");
    let message = done["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("texture_synthesis") && message.contains("worker.paint_weights"),
        "{done}"
    );
    worker.stop().await;

    // With the models: painted, textured outputs, the denoising loops in the event stream.
    let mut config = env.config.clone();
    models(&mut config);
    let worker = env.start_worker_with(config).await;
    let (status, job) = api.submit(&sample("star.png"), Some(PAINT_JOB), None).await;
    assert_eq!(status, 202, "{job}");
    let id = id_of(&job);
    let done = api.wait_terminal(&id, T).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let artifacts: Vec<&str> = done["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .map(|o| o["artifact"].as_str().expect("artifact"))
        .collect();
    for a in ["glb", "obj", "mtl", "texture"] {
        assert!(artifacts.contains(&a), "{a} in {artifacts:?}");
    }
    let link = done["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .find(|o| o["artifact"] == "texture")
        .expect("texture");
    let png = api
        .client
        .get(api.url(link["url"].as_str().expect("url")))
        .send()
        .await
        .expect("download")
        .bytes()
        .await
        .expect("body");
    let texture = image::load_from_memory(&png).expect("png").to_rgb8();
    assert_eq!(texture.dimensions(), (256, 256));
    let colours: std::collections::HashSet<[u8; 3]> = texture.pixels().map(|p| p.0).collect();
    // The random tiny decoder saturates (its views are mostly the 8 corners of the RGB cube): a
    // painted texture has several of them, a failed bake one flat fill.
    assert!(
        colours.len() >= 4,
        "a painted texture, not a flat fill: {colours:?}"
    );

    let events = read_sse(&api, &format!("/api/jobs/{id}/events"), None, None).await;
    let steps: Vec<(String, i64)> = events
        .iter()
        .filter(|m| m.event == "progress" && m.data["data"]["stage"] == "texture_synthesis")
        .filter_map(|m| {
            let d = &m.data["data"];
            Some((d["step"].as_str()?.to_owned(), d["percent"].as_i64()?))
        })
        .collect();
    for step in ["delight", "multiview_diffusion"] {
        assert!(
            steps.iter().any(|(s, _)| s == step),
            "{step} progress in {steps:?}"
        );
    }
    assert!(
        steps.windows(2).all(|w| w[0].1 <= w[1].1),
        "progress only moves forward: {steps:?}"
    );
    worker.stop().await;
    api.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paint_folders_that_do_not_load_stop_the_worker_at_start() {
    let _services = services_shared().await;
    let env = TestEnv::new("paint_bad").await;
    let dir = repo().join("pipeline/tests/fixtures/paint_pipeline");
    let cases = [
        // The folders swapped: the delight folder has no multiview UNet.
        (dir.join("delight"), dir.join("multiview"), "paint_weights"),
        (dir.join("multiview"), dir.join("nowhere"), "nowhere"),
    ];
    for (paint, delight, expect) in cases {
        let mut config = env.config.clone();
        config.worker.paint_weights = Some(paint);
        config.worker.delight_weights = Some(delight);
        let err = orfeas_worker::Worker::new(config)
            .await
            .expect_err("the worker refuses to start");
        let text = err.to_string();
        assert!(text.contains(expect), "{text}");
    }
    // Only one of the two folders is a configuration error naming the setting.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_orfeas"))
        .arg("worker")
        .envs(env.vars.iter().cloned())
        .env("ORFEAS__WORKER__PAINT_WEIGHTS", dir.join("multiview"))
        .output()
        .expect("run orfeas worker");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("worker.paint_weights"), "{stderr}");
    env.cleanup().await;
}
