//! The fleet end to end on the real services: API → RabbitMQ → worker → object store +
//! PostgreSQL. Each test has its own database, queues, Redis prefix and bucket.

mod common;

use std::time::Duration;

use common::fleet::{TestEnv, id_of, sample};
use common::validate;
use orfeas_shared::queue::ERROR_CODE_HEADER;

const T: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn submit_run_and_download_every_format() {
    let env = TestEnv::new("e2e_formats").await;
    let api = env.start_api().await;
    let worker = env.start_worker().await;

    let (status, job) = api
        .submit(
            &sample("star.png"),
            Some(r#"{"formats": ["glb", "obj", "stl", "ply"], "octree_resolution": 128}"#),
            None,
        )
        .await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["status"], "queued");
    let id = id_of(&job);
    let done = api.wait_terminal(&id, T).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["progress"], 100);
    assert_eq!(done["attempt"], 1);
    let stages: Vec<&str> = done["timings"]
        .as_array()
        .expect("timings")
        .iter()
        .map(|t| t["stage"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        stages,
        [
            "image_loading",
            "image_preprocessing",
            "shape_generation",
            "texture_synthesis",
            "mesh_export"
        ]
    );

    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("fleet-downloads")
        .join(&env.name);
    std::fs::create_dir_all(&dir).expect("dir");
    let mut files = Vec::new();
    for out in done["outputs"].as_array().expect("outputs") {
        let resp = api
            .client
            .get(api.url(out["url"].as_str().expect("url")))
            .send()
            .await
            .expect("download");
        assert_eq!(resp.status(), 200);
        let ct = resp.headers()["content-type"]
            .to_str()
            .expect("ct")
            .to_owned();
        assert_eq!(ct, out["content_type"].as_str().expect("ct"));
        let bytes = resp.bytes().await.expect("body");
        assert!(bytes.len() > 1000);
        let f = dir.join(format!("mesh.{}", out["format"].as_str().expect("format")));
        std::fs::write(&f, &bytes).expect("write");
        files.push(f);
    }
    assert_eq!(files.len(), 4);
    validate(&files);

    // A live worker is listed with its heartbeat.
    let (_, workers) = api.get("/api/workers").await;
    assert_eq!(
        workers["workers"].as_array().map(Vec::len),
        Some(1),
        "{workers}"
    );
    assert_eq!(workers["workers"][0]["device"], "cpu");

    let (status, err) = api.get(&format!("/api/jobs/{id}/outputs/fbx")).await;
    assert_eq!(status, 404, "{err}");

    // Both /metrics endpoints carry the run.
    let api_metrics = api
        .client
        .get(api.url("/metrics"))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    let value = |text: &str, series: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{series} missing:\n{text}"))
    };
    assert_eq!(value(&api_metrics, "orfeas_jobs_submitted_total"), 1.0);
    assert_eq!(
        value(&api_metrics, "orfeas_jobs{status=\"succeeded\"}"),
        1.0
    );
    assert_eq!(value(&api_metrics, "orfeas_queue_depth"), 0.0);
    assert_eq!(value(&api_metrics, "orfeas_workers_live"), 1.0);
    assert!(
        value(
            &api_metrics,
            "orfeas_http_requests_total{method=\"POST\",route=\"/api/jobs\",status=\"202\"}"
        ) >= 1.0
    );
    let w = api
        .client
        .get(&worker.metrics_url)
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    assert_eq!(
        value(
            &w,
            "orfeas_jobs_finished_total{engine=\"inflate\",error_code=\"\",status=\"succeeded\"}"
        ),
        1.0
    );
    for stage in [
        "image_loading",
        "image_preprocessing",
        "shape_generation",
        "texture_synthesis",
        "mesh_export",
    ] {
        let count = value(
            &w,
            &format!("orfeas_stage_duration_seconds_count{{engine=\"inflate\",stage=\"{stage}\"}}"),
        );
        assert_eq!(count, 1.0, "{stage}");
        let sum = value(
            &w,
            &format!("orfeas_stage_duration_seconds_sum{{engine=\"inflate\",stage=\"{stage}\"}}"),
        );
        assert!(sum > 0.0 && sum < 30.0, "{stage}: {sum}");
    }
    assert_eq!(value(&w, "orfeas_batch_size_count"), 1.0);
    assert_eq!(value(&w, "orfeas_queue_wait_seconds_count"), 1.0);
    assert!(
        value(
            &w,
            "orfeas_optimizer_decisions_total{engine=\"inflate\",outcome=\"batch\"}"
        ) >= 1.0
    );
    assert!(value(&w, "orfeas_device_memory_total_bytes{device=\"cpu\"}") > 1e9);
    assert!(value(&w, "orfeas_worker_heartbeats_total") >= 1.0);
    assert_eq!(value(&w, "orfeas_jobs_in_flight"), 0.0);
    assert_eq!(value(&w, "orfeas_worker_up"), 1.0);
    worker.stop().await;
    api.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_paginates_and_filters() {
    let env = TestEnv::new("e2e_list").await;
    let api = env.start_api().await;
    let image = sample("vase.png");
    let mut ids = Vec::new();
    for _ in 0..5 {
        let (status, job) = api.submit(&image, None, None).await;
        assert_eq!(status, 202);
        ids.push(id_of(&job));
    }
    let (_, page1) = api.get("/api/jobs?limit=2").await;
    let cursor = page1["next_cursor"]
        .as_str()
        .expect("more pages")
        .to_owned();
    let (_, page2) = api.get(&format!("/api/jobs?limit=2&cursor={cursor}")).await;
    let cursor2 = page2["next_cursor"]
        .as_str()
        .expect("more pages")
        .to_owned();
    let (_, page3) = api
        .get(&format!("/api/jobs?limit=2&cursor={cursor2}"))
        .await;
    assert!(page3["next_cursor"].is_null());
    let seen: Vec<String> = [&page1, &page2, &page3]
        .iter()
        .flat_map(|p| p["jobs"].as_array().expect("jobs").iter().map(id_of))
        .collect();
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first, "every job once, newest first");

    let (_, queued) = api.get("/api/jobs?status=queued&limit=100").await;
    assert_eq!(queued["jobs"].as_array().map(Vec::len), Some(5));
    let (_, none) = api.get("/api/jobs?status=succeeded").await;
    assert_eq!(none["jobs"].as_array().map(Vec::len), Some(0));
    assert_eq!(api.get("/api/jobs?status=done").await.0, 400);
    assert_eq!(api.get("/api/jobs?cursor=nope").await.0, 400);
    assert_eq!(api.get("/api/jobs?limit=0").await.0, 400);
    api.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_queued_and_running_jobs() {
    let env = TestEnv::new("e2e_cancel").await;
    let api = env.start_api().await;
    // Queued: canceled before any worker exists; it must never run.
    let (_, job) = api.submit(&sample("vase.png"), None, None).await;
    let queued_id = id_of(&job);
    let (status, canceled) = api.post(&format!("/api/jobs/{queued_id}/cancel")).await;
    assert_eq!(status, 202, "{canceled}");
    assert_eq!(canceled["status"], "canceled");

    let worker = env.start_worker().await;
    // Running: a slow job, canceled once it runs, stops at the next stage boundary.
    let (_, job) = api
        .submit(
            &sample("apple.jpg"),
            Some(r#"{"octree_resolution": 512, "face_count": 20000}"#),
            None,
        )
        .await;
    let running_id = id_of(&job);
    api.wait_for(&running_id, T, |j| j["status"] == "running")
        .await;
    let (status, body) = api.post(&format!("/api/jobs/{running_id}/cancel")).await;
    assert_eq!(status, 202, "{body}");
    let end = api.wait_terminal(&running_id, T).await;
    assert_eq!(end["status"], "canceled", "{end}");
    assert_eq!(end["error"]["code"], "canceled");
    assert!(end["outputs"].as_array().expect("outputs").is_empty());

    // The queued one was acked without running: no attempt, no timings.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, q) = api.get(&format!("/api/jobs/{queued_id}")).await;
    assert_eq!(q["status"], "canceled");
    assert_eq!(q["attempt"], 0, "{q}");
    assert!(
        env.db()
            .stage_records(queued_id.parse().expect("id"))
            .await
            .expect("rows")
            .is_empty()
    );
    // A finished job cannot be canceled.
    assert_eq!(
        api.post(&format!("/api/jobs/{running_id}/cancel")).await.0,
        409
    );
    assert_eq!(
        api.post("/api/jobs/00000000-0000-7000-8000-000000000000/cancel")
            .await
            .0,
        404
    );
    worker.stop().await;
    api.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotent_resubmission() {
    let env = TestEnv::new("e2e_idem").await;
    let api = env.start_api().await;
    let image = sample("star.png");
    let (s1, a) = api
        .submit(&image, Some(r#"{"formats": ["stl"]}"#), Some("order-42"))
        .await;
    let (s2, b) = api
        .submit(&image, Some(r#"{"formats": ["stl"]}"#), Some("order-42"))
        .await;
    assert_eq!((s1, s2), (202, 200));
    assert_eq!(id_of(&a), id_of(&b));
    let (s3, c) = api
        .submit(&image, Some(r#"{"formats": ["glb"]}"#), Some("order-42"))
        .await;
    assert_eq!(s3, 409, "{c}");
    assert_eq!(c["error"]["code"], "idempotency_key_reused");
    let (_, all) = api.get("/api/jobs").await;
    assert_eq!(all["jobs"].as_array().map(Vec::len), Some(1));
    api.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_input_fails_and_is_dead_lettered() {
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

/// Sends a multipart upload of `total` body bytes over a raw connection, with a declared length
/// or chunked, stopping as soon as the server answers. Returns the status and the bytes sent.
async fn raw_upload(base: &str, chunked: bool, total: usize) -> (u16, usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let boundary = "orfeasboundary";
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {total}")
    };
    let head = format!(
        "POST /api/jobs HTTP/1.1\r\nHost: {addr}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n{framing}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.expect("head");
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"x.png\"\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(b"\x89PNG\r\n\x1a\n");
    let mut sent = 0usize;
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    while sent < total {
        let n = (total - sent).min(64 * 1024);
        body.resize(body.len().max(n), 0);
        let piece = &body[..n];
        let write = if chunked {
            let mut c = format!("{n:x}\r\n").into_bytes();
            c.extend_from_slice(piece);
            c.extend_from_slice(b"\r\n");
            s.write_all(&c).await
        } else {
            s.write_all(piece).await
        };
        if write.is_err() {
            break;
        }
        sent += n;
        body.clear();
        if let Ok(Ok(got)) = tokio::time::timeout(Duration::from_millis(5), s.read(&mut buf)).await
            && got > 0
        {
            response.extend_from_slice(&buf[..got]);
            break;
        }
    }
    if response.is_empty() {
        let got = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("an answer")
            .expect("read");
        response.extend_from_slice(&buf[..got]);
    }
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_requests_get_their_statuses() {
    let env = TestEnv::with("e2e_bad", &[("ORFEAS__API__MAX_UPLOAD_BYTES", "100000")]).await;
    let api = env.start_api().await;
    let png = sample("star.png");

    // Over the limit with a declared length: refused from the header, before the body is read.
    let (status, sent) = raw_upload(&api.base, false, 3 * 1024 * 1024).await;
    assert_eq!(status, 413);
    assert!(sent < 1024 * 1024, "the client got to send {sent} bytes");
    // Over the limit while streaming (chunked, no length): refused once the limit is passed.
    let (status, sent) = raw_upload(&api.base, true, 8 * 1024 * 1024).await;
    assert_eq!(status, 413);
    assert!(
        sent < 2 * 1024 * 1024,
        "the client got to send {sent} bytes"
    );

    let resp = api
        .client
        .post(api.url("/api/jobs"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 415);
    let (status, body) = api.submit(b"GIF89a not really", None, None).await;
    assert_eq!(status, 415, "{body}");
    let (status, body) = api
        .submit(&png, Some(r#"{"octree_resolution": 4096}"#), None)
        .await;
    assert_eq!(status, 422);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("octree_resolution"),
        "{body}"
    );
    let (status, body) = api
        .submit(&png, Some(r#"{"formats": ["fbx"]}"#), None)
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = api.submit(&png, Some("not json"), None).await;
    assert_eq!(status, 422);
    let form = reqwest::multipart::Form::new().text("options", "{}");
    let resp = api
        .client
        .post(api.url("/api/jobs"))
        .multipart(form)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 400, "missing image part");
    assert_eq!(api.get("/api/jobs/not-a-uuid").await.0, 400);
    assert_eq!(
        api.get("/api/jobs/00000000-0000-7000-8000-000000000000")
            .await
            .0,
        404
    );
    assert_eq!(api.get("/nope").await.0, 404);
    let (status, ready) = api.get("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(api.get("/healthz").await.0, 200);
    let (_, spec) = api.get("/openapi.json").await;
    for path in [
        "/api/jobs",
        "/api/jobs/{id}",
        "/api/jobs/{id}/outputs/{format}",
        "/api/jobs/{id}/cancel",
        "/api/workers",
        "/readyz",
    ] {
        assert!(
            spec["paths"].get(path).is_some(),
            "{path} missing from OpenAPI"
        );
    }
    // Nothing was accepted.
    let (_, all) = api.get("/api/jobs").await;
    assert_eq!(all["jobs"].as_array().map(Vec::len), Some(0));
    api.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_job_completes_exactly_once() {
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
async fn transient_failures_retry_then_dead_letter() {
    let env = TestEnv::with("e2e_transient", &[("ORFEAS__WORKER__MAX_ATTEMPTS", "3")]).await;
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
    // The worker's object store is unreachable: every attempt fails transiently.
    let mut broken = env.config.clone();
    if let orfeas_shared::config::StorageConfig::S3 { endpoint, .. } = &mut broken.storage {
        *endpoint = "http://127.0.0.1:1".into();
    }
    let worker = orfeas_worker::Worker::new(broken).await.expect("worker");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(worker.run(async move {
        let _ = rx.await;
    }));

    let (status, job) = api.submit(&sample("star.png"), None, None).await;
    assert_eq!(status, 202);
    let id = id_of(&job);
    let end = api.wait_terminal(&id, Duration::from_secs(90)).await;
    assert_eq!(end["status"], "failed", "{end}");
    assert_eq!(end["error"]["code"], "retries_exhausted");
    assert_eq!(end["attempt"], 3, "one attempt per allowed try: {end}");
    assert!(
        end["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("storage_unavailable"),
        "{end}"
    );
    let dlq = env.wait_queue(".dlq", 1, Duration::from_secs(10)).await;
    assert_eq!(dlq.len(), 1, "dead-lettered once");
    assert!(env.drain_queue(".retry").await.is_empty());
    let _ = tx.send(());
    let _ = task.await;
    api.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_optimizer_batches_compatible_jobs_and_learns_their_memory() {
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
            .find(|r| r.stage == orfeas_shared::Stage::ShapeGeneration)
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
    let learned = db.memory_model("cpu").await.expect("model");
    let buckets: Vec<i32> = learned.iter().map(|f| f.resolution_bucket).collect();
    assert!(
        buckets.contains(&128) && buckets.contains(&192),
        "{learned:?}"
    );
    assert!(
        learned
            .iter()
            .all(|f| f.engine == "inflate" && f.bytes_per_job > 0 && f.samples >= 1)
    );
    worker.stop().await;
    api.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_too_large_for_the_device_fails_or_is_routed() {
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
    cfg.worker.overflow_queue = overflow.clone();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hunyuan3d_worker_without_usable_weights_refuses_to_start() {
    let env = TestEnv::with("e2e_noweights", &[("ORFEAS__WORKER__ENGINE", "hunyuan3d")]).await;
    let err = orfeas_worker::Worker::new(env.config.clone())
        .await
        .expect_err("no weights configured");
    assert!(err.to_string().contains("worker.weights"), "{err}");
    // A truncated checkpoint: the start-up error names the file problem.
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("truncated-ckpt");
    std::fs::create_dir_all(&dir).expect("dir");
    let src = common::repo().join("pipeline/tests/fixtures/hunyuan3d/tiny");
    std::fs::copy(src.join("config.yaml"), dir.join("config.yaml")).expect("config");
    let bytes = std::fs::read(src.join("model.fp16.safetensors")).expect("weights");
    std::fs::write(
        dir.join("model.fp16.safetensors"),
        &bytes[..bytes.len() - 100],
    )
    .expect("write");
    let mut config = env.config.clone();
    config.worker.weights = dir.display().to_string();
    let err = orfeas_worker::Worker::new(config)
        .await
        .expect_err("corrupt weights");
    assert!(err.to_string().contains("safetensors"), "{err}");
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_queue_answers_429_with_retry_after() {
    let env = TestEnv::with("e2e_full", &[("ORFEAS__API__MAX_QUEUED_JOBS", "2")]).await;
    let api = env.start_api().await;
    let image = sample("star.png");
    for _ in 0..2 {
        assert_eq!(api.submit(&image, None, None).await.0, 202);
    }
    let form = reqwest::multipart::Form::new().part(
        "image",
        reqwest::multipart::Part::bytes(image.clone()).file_name("star.png"),
    );
    let resp = api
        .client
        .post(api.url("/api/jobs"))
        .multipart(form)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "5");
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "too_many_jobs");
    let (_, all) = api.get("/api/jobs").await;
    assert_eq!(
        all["jobs"].as_array().map(Vec::len),
        Some(2),
        "nothing stored for the refused one"
    );
    api.stop().await;
    env.cleanup().await;
}

/// The `hunyuan3d` engine end to end on the tiny checkpoint: the API routes its jobs to their
/// own queue, a worker configured with the weights runs them, and an inflate-only deployment
/// refuses them with 422.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hunyuan3d_jobs_run_on_workers_with_its_weights() {
    let weights = common::repo().join("pipeline/tests/fixtures/hunyuan3d/tiny");
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
