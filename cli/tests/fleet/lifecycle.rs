//! A job's life through the fleet: submit, run, download every format, list, cancel, repeat
//! idempotently, and the API's answers to bad requests and a full queue.

use std::time::Duration;

use crate::env::{TestEnv, id_of, sample, services_shared};
use crate::validate::validate;

const T: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn submit_run_and_download_every_format() {
    let _services = services_shared().await;
    let env = TestEnv::new("e2e_formats").await;
    let api = env.start_api().await;
    let worker = env.start_worker().await;

    let (status, job) = api
        .submit(
            &sample("star.png"),
            Some(
                r#"{"formats": ["glb", "obj", "stl", "ply"], "octree_resolution": 128, "cutout": true}"#,
            ),
            None,
        )
        .await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["status"], "queued");
    assert!(
        job["options"]["steps"].is_null(),
        "the engine's default: {job}"
    );
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
    let artifacts: Vec<&str> = done["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .filter_map(|o| o["artifact"].as_str())
        .collect();
    // The UV-textured OBJ brings its material and texture.
    assert_eq!(
        artifacts,
        ["glb", "obj", "stl", "ply", "mtl", "texture", "cutout"]
    );
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
        // Saved under the name the API gives it, the OBJ finds its material and texture.
        let disposition = resp.headers()["content-disposition"]
            .to_str()
            .expect("disposition")
            .to_owned();
        let saved_as = disposition
            .split("filename=\"")
            .nth(1)
            .and_then(|rest| rest.strip_suffix('"'))
            .expect("a file name")
            .to_owned();
        let bytes = resp.bytes().await.expect("body");
        // A material library is a few lines; every other file is far larger.
        let least = if out["artifact"] == "mtl" { 50 } else { 1000 };
        assert!(bytes.len() > least, "{out}");
        // The download is what the finishing attempt stored and recorded.
        use sha2::Digest;
        assert_eq!(
            out["sha256"].as_str(),
            Some(format!("{:x}", sha2::Sha256::digest(&bytes)).as_str()),
            "{out}"
        );
        if out["artifact"] == "cutout" {
            // The preprocessed 512² image with the object mask as alpha.
            assert_eq!(ct, "image/png");
            let png = image::load_from_memory(&bytes).expect("a PNG").to_rgba8();
            assert_eq!(png.dimensions(), (512, 512));
            let opaque = png.pixels().filter(|p| p.0[3] == 255).count();
            let clear = png.pixels().filter(|p| p.0[3] == 0).count();
            assert!(opaque > 10_000 && clear > 10_000, "{opaque} {clear}");
            continue;
        }
        if out["artifact"] == "mtl" {
            let mtl = String::from_utf8_lossy(&bytes);
            assert!(mtl.contains(&format!("map_Kd {id}.texture.png")), "{mtl}");
        }
        let f = dir.join(&saved_as);
        std::fs::write(&f, &bytes).expect("write");
        files.push(f);
    }
    assert_eq!(files.len(), 6);
    let obj = std::fs::read_to_string(dir.join(format!("{id}.obj"))).expect("obj saved");
    assert!(obj.contains(&format!("mtllib {id}.mtl")));
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
        .get(&api.metrics_url)
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
    // The queue depth is RabbitMQ's: the job was consumed, nothing is ready.
    assert_eq!(
        value(
            &api_metrics,
            &format!("orfeas_queue_depth{{queue=\"{}\"}}", env.config.amqp.queue)
        ),
        0.0
    );
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
    let _services = services_shared().await;
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
    let _services = services_shared().await;
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
    let _services = services_shared().await;
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
    let _services = services_shared().await;
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
        "/api/jobs/{id}/outputs/{artifact}",
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
async fn a_full_queue_answers_429_with_retry_after() {
    let _services = services_shared().await;
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
