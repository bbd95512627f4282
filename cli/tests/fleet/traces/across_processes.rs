//! One job's trace as an operator gets it: the real `orfeas api` and `orfeas worker` processes
//! with their default log filter, exporting over OTLP/HTTP to a receiver this test runs, and the
//! worker's log lines naming that trace.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::process::Process;
use super::receiver::{Received, Receiver};
use crate::env::{TestEnv, sample, services_shared};

const T: Duration = Duration::from_secs(30);

fn find<'a>(spans: &'a [Received], what: &str, pick: impl Fn(&Received) -> bool) -> &'a Received {
    spans.iter().find(|s| pick(s)).unwrap_or_else(|| {
        let seen: Vec<String> = spans
            .iter()
            .map(|s| format!("{}:{}", s.service, s.name()))
            .collect();
        panic!("no {what} among {seen:?}")
    })
}

async fn submit(client: &reqwest::Client, base: &str) -> String {
    let form = reqwest::multipart::Form::new()
        .part(
            "image",
            reqwest::multipart::Part::bytes(sample("star.png")).file_name("star.png"),
        )
        .text("options", r#"{"octree_resolution": 96}"#);
    let resp = client
        .post(format!("{base}/api/jobs"))
        .multipart(form)
        .send()
        .await
        .expect("submit");
    assert_eq!(resp.status(), 202);
    let job: Value = resp.json().await.expect("json");
    job["id"].as_str().expect("id").to_owned()
}

async fn wait_succeeded(client: &reqwest::Client, base: &str, id: &str) {
    let start = Instant::now();
    loop {
        let job: Value = client
            .get(format!("{base}/api/jobs/{id}"))
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        match job["status"].as_str() {
            Some("succeeded") => return,
            Some("failed" | "canceled") => panic!("{job}"),
            _ => {}
        }
        assert!(start.elapsed() < T, "not done in {T:?}: {job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_trace_from_the_api_process_through_rabbitmq_to_the_worker_process() {
    let _services = services_shared().await;
    let receiver = Receiver::start().await;
    let env = TestEnv::with(
        "traces_otlp",
        &[(
            "ORFEAS__TELEMETRY__OTLP_ENDPOINT",
            receiver.endpoint.as_str(),
        )],
    )
    .await;
    let mut api = Process::spawn(
        &env,
        "api",
        &[
            ("ORFEAS__API__LISTEN", "127.0.0.1:0"),
            ("ORFEAS__API__METRICS_LISTEN", "off"),
        ],
    );
    let worker = Process::spawn(&env, "worker", &[("ORFEAS__WORKER__METRICS_LISTEN", "off")]);
    let listening = api.wait_line(T, |l| l.contains("API listening")).await;
    let addr = listening
        .split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))
        .expect("addr");
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let id = submit(&client, &base).await;
    wait_succeeded(&client, &base, &id).await;
    // No flush but the one on shutdown: what a stopped pod sends last must arrive too.
    let worker_log = worker.terminate(T).await;
    api.terminate(T).await;
    let spans = receiver.spans();

    let job = find(&spans, "job span", |s| {
        s.name() == "job" && s.attr("job.id").as_deref() == Some(id.as_str())
    });
    assert_eq!(job.service, "orfeas-worker");
    assert_eq!(job.attr("engine").as_deref(), Some("inflate"));
    assert_eq!(job.span.kind, 5, "consumer");
    let trace = job.trace_id();

    // Across the queue: job → publish, in the API process.
    let publish = find(&spans, "job's parent", |s| s.span_id() == job.parent_id());
    assert_eq!(
        (publish.service.as_str(), publish.name()),
        ("orfeas-api", "publish")
    );
    assert_eq!(publish.trace_id(), trace);
    assert_eq!(publish.span.kind, 4, "producer");
    assert_eq!(publish.attr("job.id").as_deref(), Some(id.as_str()));
    assert_eq!(
        publish.attr("messaging.system").as_deref(),
        Some("rabbitmq")
    );

    // publish → the request that accepted the job, the trace's root.
    let request = find(&spans, "publish's parent", |s| {
        s.span_id() == publish.parent_id()
    });
    assert_eq!(request.service, "orfeas-api");
    assert_eq!(request.name(), "POST /api/jobs");
    assert_eq!(request.trace_id(), trace);
    assert_eq!(request.parent_id(), "", "the request is the root");
    assert_eq!(request.span.kind, 2, "server");
    for (key, value) in [
        ("http.request.method", "POST"),
        ("http.route", "/api/jobs"),
        ("http.response.status_code", "202"),
        ("job.id", id.as_str()),
    ] {
        assert_eq!(request.attr(key).as_deref(), Some(value), "{key}");
    }

    // The five stages under the job, the engine's sub-steps under shape_generation.
    let in_trace =
        |name: &str| find(&spans, name, |s| s.name() == name && s.trace_id() == trace).clone();
    let stages = [
        "image_loading",
        "image_preprocessing",
        "shape_generation",
        "texture_synthesis",
        "mesh_export",
    ];
    for stage in stages {
        let s = in_trace(stage);
        assert_eq!(s.parent_id(), job.span_id(), "{stage} under the job span");
        assert_eq!(s.service, "orfeas-worker");
    }
    let shape = in_trace("shape_generation");
    let steps: Vec<String> = spans
        .iter()
        .filter(|s| s.trace_id() == trace && s.parent_id() == shape.span_id())
        .map(|s| s.name().to_owned())
        .collect();
    assert!(
        steps.iter().any(|s| s == "surface_extraction"),
        "engine sub-steps under shape_generation: {steps:?}"
    );

    // The worker's log line for the job names the trace and the job span.
    let ids = format!("trace_id={trace} span_id={}", job.span_id());
    let started = worker_log
        .iter()
        .find(|l| l.contains("job started"))
        .unwrap_or_else(|| panic!("no job line in {worker_log:#?}"));
    assert!(started.ends_with(&ids), "{started}");
    assert!(started.contains(&id), "the job span's fields: {started}");

    eprintln!(
        "trace {trace}: {} → {} → {} → [{}] → shape_generation → {steps:?}\n{started}",
        request.name(),
        publish.name(),
        job.name(),
        stages.join(", "),
    );
    env.cleanup().await;
}
