//! ORFEAS Studio in a real browser against a real fleet: the API (keys in force) and, once the
//! page asks for one, a worker. The browser side is `api/studio/tests/e2e.mjs` (Debian's
//! Chromium through Playwright, axe-core on every view); this side starts what it needs, answers
//! its line protocol, then checks what it brought back: the downloaded GLB passes the validators
//! and is byte for byte the stored output. `scripts/test.sh` installs Chromium and the pinned
//! packages and sets `ORFEAS_STUDIO_NODE_MODULES` and `ORFEAS_REQUIRE_BROWSER=1`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use orfeas_shared::auth::{self, KeyLimits};
use orfeas_vocab::Scope;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::env::{TestEnv, services_shared};
use crate::validate::{repo, validate};

const CHROMIUM: &str = "/usr/bin/chromium";

/// The browser and the packages, or why the test cannot run.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let modules = std::env::var("ORFEAS_STUDIO_NODE_MODULES")
        .ok()
        .map(PathBuf::from);
    let chromium = PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| CHROMIUM.into()));
    let required = std::env::var("ORFEAS_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    match modules {
        Some(m) if chromium.exists() && m.join("playwright-core").exists() => Some((chromium, m)),
        _ => {
            assert!(
                !required,
                "browser required: Chromium at {} and ORFEAS_STUDIO_NODE_MODULES (run scripts/test.sh)",
                chromium.display()
            );
            eprintln!(
                "studio browser test skipped: run scripts/test.sh to install Chromium and Playwright"
            );
            None
        }
    }
}

async fn make_key(env: &TestEnv, name: &str, scope: Scope, limits: KeyLimits) -> String {
    let key = auth::generate().expect("random");
    env.db()
        .insert_key(&key, name, scope, &limits)
        .await
        .expect("key");
    key.token
}

/// `GET url` as `key`, as JSON.
async fn get_json(client: &reqwest::Client, url: &str, key: &str) -> Value {
    client
        .get(url)
        .bearer_auth(key)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

/// A uniform image: nothing in it stands out, so it fails with `no_foreground`.
fn blank_png(path: &std::path::Path) {
    image::RgbImage::from_pixel(256, 256, image::Rgb([128, 128, 128]))
        .save(path)
        .expect("blank.png");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn studio_journey_in_chromium() {
    let Some((chromium, modules)) = browser() else {
        return;
    };
    let _services = services_shared().await;
    let env = TestEnv::new("studio").await;
    // One job at a time, so the page meets a 429 (and its Retry-After) for real.
    let one_at_a_time = KeyLimits {
        max_concurrent: Some(1),
        ..KeyLimits::default()
    };
    let jobs_key = make_key(&env, "studio user", Scope::Jobs, one_at_a_time).await;
    let admin_key = make_key(&env, "studio operator", Scope::Admin, KeyLimits::default()).await;
    let api = env.start_api().await;

    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("studio")
        .join(&env.name);
    let samples = out.join("samples");
    std::fs::create_dir_all(&samples).expect("samples folder");
    for name in ["star.png", "vase.png"] {
        std::fs::copy(repo().join("samples").join(name), samples.join(name)).expect("sample");
    }
    blank_png(&samples.join("blank.png"));

    let mut child = tokio::process::Command::new("node")
        .arg(repo().join("api/studio/tests/e2e.mjs"))
        .env("STUDIO_URL", &api.base)
        .env("JOBS_KEY", &jobs_key)
        .env("ADMIN_KEY", &admin_key)
        .env("SAMPLES", &samples)
        .env("OUT", out.join("artefacts"))
        .env("STUDIO_NODE_MODULES", &modules)
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs the browser test");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut worker = None;
    let mut result = None;
    let run = async {
        while let Some(line) = lines.next_line().await.expect("read the browser test") {
            let msg: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if msg["phase"] == "need_worker" {
                worker = Some(env.start_worker().await);
                // Ready once its heartbeat is visible, as the page's operators view reads it.
                let client = reqwest::Client::new();
                let start = std::time::Instant::now();
                loop {
                    let live = get_json(&client, &api.url("/api/workers"), &admin_key).await;
                    if live["workers"].as_array().is_some_and(|w| !w.is_empty()) {
                        break;
                    }
                    assert!(start.elapsed() < Duration::from_secs(30), "no heartbeat");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                stdin
                    .write_all(b"{\"worker\":\"ready\"}\n")
                    .await
                    .expect("answer the browser test");
            } else if let Some(r) = msg.get("result") {
                result = Some(r.clone());
            }
        }
        child.wait().await.expect("node exits")
    };
    let status = tokio::time::timeout(Duration::from_secs(600), run)
        .await
        .expect("the browser test finishes within 10 minutes");
    assert!(
        status.success(),
        "the browser test failed (its reason is above)"
    );
    let result = result.expect("the browser test reports its result");
    eprintln!(
        "studio: screenshots and the GLB in {}",
        out.join("artefacts").display()
    );

    // The downloaded GLB is valid and is the stored output, byte for byte.
    let glb = PathBuf::from(result["glb"].as_str().expect("glb path"));
    validate(std::slice::from_ref(&glb));
    let job = result["job"].as_str().expect("job id");
    let client = reqwest::Client::new();
    let view = get_json(&client, &api.url(&format!("/api/jobs/{job}")), &admin_key).await;
    let stored = view["outputs"]
        .as_array()
        .and_then(|o| o.iter().find(|o| o["artifact"] == "glb"))
        .and_then(|o| o["sha256"].as_str())
        .expect("the GLB's digest");
    let bytes = std::fs::read(&glb).expect("downloaded GLB");
    let digest: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(digest, stored, "the download is the stored GLB");
    // The job the page canceled never ran; the one it ran twice ran with the same options.
    let job_url = |field: &str| {
        api.url(&format!(
            "/api/jobs/{}",
            result[field].as_str().expect("id")
        ))
    };
    let canceled = get_json(&client, &job_url("canceled"), &admin_key).await;
    assert_eq!(canceled["status"], "canceled");
    assert!(canceled["started_at"].is_null(), "canceled while queued");
    let rerun = get_json(&client, &job_url("rerun"), &admin_key).await;
    assert_eq!(rerun["status"], "succeeded");
    assert_eq!(
        rerun["options"], view["options"],
        "run again keeps the options"
    );

    if let Some(w) = worker {
        w.stop().await;
    }
    api.stop().await;
    env.cleanup().await;
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value, reqwest::header::HeaderMap) {
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, resp.json().await.unwrap_or(Value::Null), headers)
}

fn form(image: Vec<u8>, options: &str) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new()
        .part(
            "image",
            reqwest::multipart::Part::bytes(image).file_name("input.png"),
        )
        .text("options", options.to_owned())
}

/// What the Studio relies on, through the API alone: the public files and capabilities, the
/// option a 422 names, running a job again, and a share link following its job's events.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn studio_api_capabilities_field_errors_and_rerun() {
    let _services = services_shared().await;
    let env = TestEnv::new("studio-api").await;
    let key = make_key(&env, "studio api", Scope::Jobs, KeyLimits::default()).await;
    let api = env.start_api().await;
    let worker = env.start_worker().await;
    let c = reqwest::Client::new();

    // Public without a key although keys are in force: the page, its files, the capabilities.
    let resp = c.get(api.url("/")).send().await.expect("index");
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-security-policy"]
            .to_str()
            .expect("ascii")
            .contains("default-src 'self'")
    );
    assert!(resp.text().await.expect("html").contains("ORFEAS Studio"));
    let js = c
        .get(api.url("/studio/js/app.js"))
        .send()
        .await
        .expect("js");
    assert_eq!(js.status(), 200);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/javascript")
    );
    assert_eq!(
        c.get(api.url("/studio/nope.js"))
            .send()
            .await
            .expect("404")
            .status(),
        404
    );
    let (status, caps, _) = send(c.get(api.url("/api/capabilities"))).await;
    assert_eq!(status, 200, "{caps}");
    assert_eq!(caps["keys_required"], true);
    assert_eq!(caps["engines"], serde_json::json!(["inflate"]));
    assert_eq!(caps["options"]["face_count"]["min"], 100.0);
    assert_eq!(caps["defaults"]["engine"], "inflate");
    let codes = caps["error_codes"].as_array().expect("codes");
    assert!(
        codes
            .iter()
            .any(|c| c["code"] == "no_foreground" && c["http_status"] == 422)
    );
    // Other routes still need the key.
    assert_eq!(send(c.get(api.url("/api/jobs"))).await.0, 401);

    // A 422 names the option it is about.
    for (options, field) in [
        (r#"{"face_count": 5}"#, "face_count"),
        (r#"{"formats": ["glb", "xyz"]}"#, "formats"),
        (r#"{"engine": "hunyuan3d"}"#, "engine"),
        (r#"{"texture": "paint"}"#, "texture"),
    ] {
        let (status, body, _) = send(
            c.post(api.url("/api/jobs"))
                .bearer_auth(&key)
                .multipart(form(crate::env::sample("star.png"), options)),
        )
        .await;
        assert_eq!(status, 422, "{options}: {body}");
        assert_eq!(body["error"]["field"], field, "{options}: {body}");
    }

    // Run again: the same options, a new job; an Idempotency-Key names one rerun.
    let options =
        r#"{"face_count": 2000, "seed": 7, "formats": ["glb", "stl"], "texture": "vertex"}"#;
    let (status, first, _) = send(
        c.post(api.url("/api/jobs"))
            .bearer_auth(&key)
            .multipart(form(crate::env::sample("star.png"), options)),
    )
    .await;
    assert_eq!(status, 202, "{first}");
    let first_id = first["id"].as_str().expect("id").to_owned();
    let wait = |id: String| {
        let c = c.clone();
        let key = key.clone();
        let url = api.url(&format!("/api/jobs/{id}"));
        async move {
            let start = std::time::Instant::now();
            loop {
                let (_, v, _) = send(c.get(&url).bearer_auth(&key)).await;
                if matches!(
                    v["status"].as_str(),
                    Some("succeeded" | "failed" | "canceled")
                ) {
                    return v;
                }
                assert!(start.elapsed() < Duration::from_secs(120), "{v}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let done = wait(first_id.clone()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let rerun_url = api.url(&format!("/api/jobs/{first_id}/rerun"));
    let (status, again, headers) = send(
        c.post(&rerun_url)
            .bearer_auth(&key)
            .header("Idempotency-Key", "rerun-1"),
    )
    .await;
    assert_eq!(status, 202, "{again}");
    assert!(headers.contains_key("location"));
    let again_id = again["id"].as_str().expect("id").to_owned();
    assert_ne!(again_id, first_id);
    let (status, repeat, _) = send(
        c.post(&rerun_url)
            .bearer_auth(&key)
            .header("Idempotency-Key", "rerun-1"),
    )
    .await;
    assert_eq!(status, 200, "{repeat}");
    assert_eq!(repeat["id"], again_id.as_str());
    let again_done = wait(again_id.clone()).await;
    assert_eq!(again_done["status"], "succeeded", "{again_done}");
    assert_eq!(again_done["options"], done["options"]);
    let digest = |v: &Value, a: &str| {
        v["outputs"]
            .as_array()
            .and_then(|o| o.iter().find(|o| o["artifact"] == a))
            .map(|o| o["sha256"].clone())
    };
    // Same input, same options, same seed: the same STL, byte for byte.
    assert_eq!(digest(&again_done, "stl"), digest(&done, "stl"));

    // A share link follows its own job's events through the many-jobs stream, and no other.
    let (status, links, _) = send(
        c.post(api.url(&format!("/api/jobs/{first_id}/share")))
            .bearer_auth(&key),
    )
    .await;
    assert_eq!(status, 201, "{links}");
    let token = links["token"].as_str().expect("token");
    let own = c
        .get(api.url(&format!("/api/events?jobs={first_id}&token={token}")))
        .send()
        .await
        .expect("events");
    assert_eq!(own.status(), 200);
    assert!(
        own.text()
            .await
            .expect("stream")
            .contains("event: succeeded")
    );
    let other = c
        .get(api.url(&format!("/api/events?jobs={again_id}&token={token}")))
        .send()
        .await
        .expect("events");
    assert_eq!(other.status(), 404);

    // Once its files are deleted, a job cannot run again.
    let del = c
        .delete(api.url(&format!("/api/jobs/{first_id}")))
        .bearer_auth(&key)
        .send()
        .await
        .expect("delete");
    assert!(del.status().is_success(), "{}", del.status());
    let (status, gone, _) = send(c.post(&rerun_url).bearer_auth(&key)).await;
    assert_eq!(status, 410, "{gone}");

    worker.stop().await;
    api.stop().await;
    env.cleanup().await;
}
