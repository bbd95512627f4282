//! One trace from the HTTP request to the worker's stage spans, across the RabbitMQ hop,
//! captured with OpenTelemetry's in-memory exporter of the binary's subscriber
//! ([`crate::env::telemetry`]: other tests' spans reach it too; this test looks at its own trace
//! only).
//! [`across_processes`] checks the same trace from the real processes over OTLP/HTTP.

mod across_processes;
mod process;
mod receiver;

use std::time::Duration;

use crate::env::{TestEnv, id_of, sample, services_shared};
use opentelemetry_sdk::trace::SpanData;

fn attr(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_trace_from_request_to_stages() {
    let _services = services_shared().await;
    let telemetry = crate::env::telemetry();
    let env = TestEnv::new("tracing").await;
    let api = env.start_api().await;
    let worker = env.start_worker().await;
    let (status, job) = api
        .submit(
            &sample("star.png"),
            Some(r#"{"octree_resolution": 96}"#),
            None,
        )
        .await;
    assert_eq!(status, 202);
    let id = id_of(&job);
    let end = api.wait_terminal(&id, Duration::from_secs(60)).await;
    assert_eq!(end["status"], "succeeded");
    worker.stop().await;
    api.stop().await;
    let _ = telemetry.provider.force_flush();
    let spans = telemetry.spans.get_finished_spans().expect("spans");

    let job_span = spans
        .iter()
        .find(|s| s.name == "job" && attr(s, "job.id").as_deref() == Some(id.as_str()))
        .unwrap_or_else(|| {
            panic!(
                "no job span among {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        });
    assert_eq!(attr(job_span, "device").as_deref(), Some("cpu"));
    assert_eq!(attr(job_span, "batch.size").as_deref(), Some("1"));
    assert_eq!(attr(job_span, "engine").as_deref(), Some("inflate"));
    assert!(
        job_span.parent_span_is_remote,
        "the job continues a trace from another process"
    );

    // The API's publish is its parent, and the request that accepted the job the publish's,
    // in the same trace.
    let trace = job_span.span_context.trace_id();
    let publish = spans
        .iter()
        .find(|s| s.span_context.span_id() == job_span.parent_span_id)
        .expect("the publish span");
    assert_eq!(publish.name, "publish");
    assert_eq!(publish.span_context.trace_id(), trace);
    let request = spans
        .iter()
        .find(|s| s.span_context.span_id() == publish.parent_span_id)
        .expect("the request span");
    assert_eq!(request.span_context.trace_id(), trace);
    assert_eq!(request.name, "POST /api/jobs", "the request span, by route");
    assert_eq!(attr(request, "job.id").as_deref(), Some(id.as_str()));

    // Every stage under the job span, the engine's sub-steps under shape_generation.
    let job_id = job_span.span_context.span_id();
    let mut shape_id = None;
    for stage in [
        "image_loading",
        "image_preprocessing",
        "shape_generation",
        "texture_synthesis",
        "mesh_export",
    ] {
        let s = spans
            .iter()
            .find(|s| s.name == stage && s.span_context.trace_id() == trace)
            .unwrap_or_else(|| panic!("{stage} missing"));
        assert_eq!(s.parent_span_id, job_id, "{stage} under the job span");
        if stage == "shape_generation" {
            assert_eq!(attr(s, "engine").as_deref(), Some("inflate"));
            shape_id = Some(s.span_context.span_id());
        }
    }
    for sub in ["volume_decoding", "surface_extraction"] {
        let s = spans
            .iter()
            .find(|s| s.name == sub && s.span_context.trace_id() == trace)
            .unwrap_or_else(|| panic!("{sub} missing"));
        assert_eq!(
            Some(s.parent_span_id),
            shape_id,
            "{sub} under shape_generation"
        );
    }
    env.cleanup().await;
}
