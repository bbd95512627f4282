//! The operator endpoints over a crafted ledger in the real PostgreSQL, and the GPU status from
//! a live worker's heartbeats in the real Redis.

use std::time::Duration;

use chrono::Utc;
use orfeas_vocab::{JobId, JobOptionsInput};

use crate::env::{TestEnv, services_shared};

/// Inserts a finished job: `stages` seconds per stage (in order), waiting `wait` s in the queue.
async fn craft(
    pool: &sqlx::PgPool,
    status: &str,
    code: Option<&str>,
    resolution: u32,
    wait: f64,
    stages: [f64; 5],
) {
    let spec = JobOptionsInput {
        octree_resolution: Some(resolution),
        ..Default::default()
    }
    .validate(Utc::now())
    .expect("spec");
    let id = JobId::new();
    let total: f64 = stages.iter().sum();
    sqlx::query(
        "INSERT INTO jobs (id, status, engine, spec, input_key, input_bytes, attempt, error_code, \
         created_at, started_at, finished_at, enqueued_at) \
         VALUES ($1, $2::job_status, 'inflate', $3, 'inputs/x', 1000, 1, $4, \
         now() - make_interval(secs => $5 + $6), now() - make_interval(secs => $6), now(), now())",
    )
    .bind(id.0)
    .bind(status)
    .bind(serde_json::to_value(&spec).expect("json"))
    .bind(code)
    .bind(wait)
    .bind(total)
    .execute(pool)
    .await
    .expect("job row");
    if status != "succeeded" {
        return;
    }
    let names = [
        "image_loading",
        "image_preprocessing",
        "shape_generation",
        "texture_synthesis",
        "mesh_export",
    ];
    for (stage, secs) in names.iter().zip(stages) {
        sqlx::query(
            "INSERT INTO stage_timings (job_id, stage, attempt, worker_id, device, batch_size, started_at, \
             duration_seconds) VALUES ($1, $2::pipeline_stage, 1, 'w1', 'cpu', 2, now(), $3)",
        )
        .bind(id.0)
        .bind(*stage)
        .bind(secs)
        .execute(pool)
        .await
        .expect("stage row");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn summary_recommendations_and_gpu_status() {
    let _services = services_shared().await;
    let env = TestEnv::new("operator").await;
    let db = env.db();
    // Ten pipelines of 10 s (shape_generation 6 s = 60 %) that each waited 80 s, at resolution
    // 512; two failures without foreground.
    for i in 0..10 {
        let jitter = f64::from(i) * 0.1;
        craft(
            db.pool(),
            "succeeded",
            None,
            512,
            80.0,
            [0.5, 1.0, 6.0 + jitter, 1.5, 1.0 - jitter / 2.0],
        )
        .await;
    }
    craft(
        db.pool(),
        "failed",
        Some("no_foreground"),
        256,
        1.0,
        [0.0; 5],
    )
    .await;
    craft(
        db.pool(),
        "failed",
        Some("no_foreground"),
        256,
        1.0,
        [0.0; 5],
    )
    .await;

    let api = env.start_api().await;
    let (status, s) = api.get("/api/performance/summary?window=1h").await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["pipelines"], 10);
    assert_eq!(s["failed"], 2);
    assert_eq!(s["failures"][0][0], "no_foreground");
    let avg = s["duration"]["average_seconds"].as_f64().expect("avg");
    assert!((avg - 10.225).abs() < 0.01, "{avg}");
    let p95 = s["duration"]["p95_seconds"].as_f64().expect("p95");
    assert!(p95 > avg, "{p95}");
    assert!(
        (s["queue_wait"]["average_seconds"].as_f64().expect("wait") - 80.0).abs() < 1.0,
        "{s}"
    );
    let shape = s["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|x| x["stage"] == "shape_generation")
        .expect("shape");
    let share = shape["share_percent"].as_f64().expect("share");
    assert!((share - 63.1).abs() < 0.5, "{share}");
    assert_eq!(s["bottlenecks"][0]["stage"], "shape_generation");
    assert_eq!(s["bottlenecks"][0]["severity"], "critical");
    assert_eq!(s["average_batch_size"], 2.0);
    assert_eq!(s["average_octree_resolution"], 512.0);
    // The product's documented fields, one by one.
    assert_eq!(s["total_pipelines"], 10);
    let documented_avg = s["avg_duration"].as_f64().expect("avg_duration");
    assert!((documented_avg - 10.225).abs() < 0.01, "{documented_avg}");
    let breakdown = s["stage_breakdown"].as_object().expect("stage_breakdown");
    assert_eq!(breakdown.len(), 5, "{s}");
    let shape_row = &breakdown["shape_generation"];
    assert_eq!(shape_row["count"], 10);
    assert!((shape_row["avg_duration"].as_f64().expect("avg") - 6.45).abs() < 0.01);
    assert!((shape_row["avg_percent"].as_f64().expect("pct") - 63.08).abs() < 0.05);
    assert!(
        (breakdown["image_loading"]["avg_duration"]
            .as_f64()
            .expect("avg")
            - 0.5)
            .abs()
            < 1e-9
    );
    let bottlenecks = s["bottlenecks"].as_array().expect("bottlenecks");
    assert_eq!(
        bottlenecks.len(),
        1,
        "texture at 14.7 % is under the 15 % line: {s}"
    );
    assert_eq!(
        bottlenecks[0]["avg_percent"], shape_row["avg_percent"],
        "the same share in both forms"
    );
    assert_eq!(
        api.get("/api/performance/summary?window=forever").await.0,
        400
    );

    let (status, r) = api.get("/api/performance/recommendations?window=1h").await;
    assert_eq!(status, 200, "{r}");
    let details = r["details"].as_array().expect("details");
    let ids: Vec<&str> = details.iter().filter_map(|x| x["id"].as_str()).collect();
    // The documented form: the same advice as text, in the same order.
    let texts: Vec<&str> = r["recommendations"]
        .as_array()
        .expect("recommendations")
        .iter()
        .map(|x| x.as_str().expect("text"))
        .collect();
    let advice: Vec<&str> = details
        .iter()
        .map(|x| x["advice"].as_str().expect("advice"))
        .collect();
    assert_eq!(texts, advice);
    assert!(
        ids.contains(&"add_workers")
            && ids.contains(&"lower_resolution")
            && ids.contains(&"failing_inputs"),
        "{ids:?}"
    );
    assert_eq!(ids[0], "add_workers", "critical first");
    let add = &details[0];
    assert!(
        (add["evidence"]["average_queue_wait_seconds"]
            .as_f64()
            .expect("evidence")
            - 80.0)
            .abs()
            < 1.0
    );
    // An empty window advises nothing.
    let env2 = TestEnv::new("operator_empty").await;
    let api2 = env2.start_api().await;
    let (_, empty) = api2.get("/api/performance/recommendations").await;
    assert_eq!(
        empty["recommendations"].as_array().map(Vec::len),
        Some(0),
        "{empty}"
    );
    let (_, nothing) = api2.get("/api/performance/summary").await;
    assert_eq!(nothing["pipelines"], 0);
    api2.stop().await;
    env2.cleanup().await;

    // GPU status: one live worker with device samples.
    let worker = env.start_worker().await;
    let mut g = serde_json::Value::Null;
    for _ in 0..50 {
        let (status, body) = api.get("/api/gpu/status").await;
        assert_eq!(status, 200, "{body}");
        if body["devices"][0]["memory_total_bytes"]
            .as_u64()
            .unwrap_or(0)
            > 0
        {
            g = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(g["fleet"]["workers"], 1, "{g}");
    let d = &g["devices"][0];
    assert_eq!(d["device"], "cpu");
    assert!(d["memory_used_percent"].as_f64().expect("pct") > 0.0);
    assert!(["rising", "stable", "falling"].contains(&d["trend"].as_str().expect("trend")));
    assert!(
        g["fleet"]["memory_total_bytes"].as_u64().expect("total")
            >= d["memory_total_bytes"].as_u64().expect("d")
    );
    // The documented fields: the fleet aggregate (one live device here).
    assert_eq!(g["memory"]["used_bytes"], g["fleet"]["memory_used_bytes"]);
    assert_eq!(g["memory"]["total_bytes"], d["memory_total_bytes"]);
    assert_eq!(
        g["memory"]["utilization_percent"], d["memory_used_percent"],
        "{g}"
    );
    assert!(g["memory"]["utilization_percent"].as_f64().expect("pct") > 0.0);
    assert_eq!(g["trends"]["avg_utilization"], d["utilization_percent"]);
    assert!(
        ["rising", "stable", "falling"].contains(&g["trends"]["trend"].as_str().expect("trend"))
    );
    assert!(g["recommendations"].as_array().is_some(), "{g}");

    let (_, spec) = api.get("/openapi.json").await;
    for path in [
        "/api/performance/summary",
        "/api/performance/recommendations",
        "/api/gpu/status",
    ] {
        let op = &spec["paths"][path]["get"];
        assert!(
            op["responses"]["200"]["content"]["application/json"]["example"].is_object(),
            "{path} has an example"
        );
    }
    // The documented fields are in the OpenAPI description.
    let schemas = &spec["components"]["schemas"];
    for (schema, fields) in [
        (
            "Summary",
            &[
                "total_pipelines",
                "avg_duration",
                "bottlenecks",
                "stage_breakdown",
            ][..],
        ),
        ("RecommendationsReport", &["recommendations", "details"][..]),
        (
            "GpuStatus",
            &["memory", "trends", "recommendations", "devices", "fleet"][..],
        ),
        ("MemorySummary", &["utilization_percent"][..]),
        ("Trends", &["trend", "avg_utilization"][..]),
        ("Bottleneck", &["stage", "avg_percent", "severity"][..]),
    ] {
        for field in fields {
            assert!(
                schemas[schema]["properties"].get(*field).is_some(),
                "{schema}.{field} missing from the OpenAPI document"
            );
        }
    }
    assert_eq!(
        schemas["RecommendationsReport"]["properties"]["recommendations"]["items"]["type"],
        "string"
    );
    worker.stop().await;
    api.stop().await;
    env.cleanup().await;
}

/// A job row: `status`, `engine`, accepted `age` seconds ago; `published`: the broker confirmed
/// its message (otherwise it is in the outbox).
async fn job_row(
    pool: &sqlx::PgPool,
    status: &str,
    engine: &str,
    age: f64,
    published: bool,
) -> JobId {
    let spec = JobOptionsInput::default()
        .validate(Utc::now())
        .expect("spec");
    let id = JobId::new();
    sqlx::query(
        "INSERT INTO jobs (id, status, engine, spec, input_key, input_bytes, created_at, \
         enqueued_at) VALUES ($1, $2::job_status, $3, $4, 'inputs/x', 1000, \
         now() - make_interval(secs => $5), CASE WHEN $6 THEN now() END)",
    )
    .bind(id.0)
    .bind(status)
    .bind(engine)
    .bind(serde_json::to_value(&spec).expect("json"))
    .bind(age)
    .bind(published)
    .execute(pool)
    .await
    .expect("job row");
    id
}

/// The fleet gauges the alerting rules read (`deploy/prometheus/rules/`): queued jobs and the
/// oldest one's age by engine, live workers by engine, the outboxes' backlog, and the worker's
/// engine and memory target.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn alerting_gauges() {
    let _services = services_shared().await;
    // The relay stays asleep, so the unconfirmed job stays in the outbox.
    let env = TestEnv::with(
        "alerting_gauges",
        &[("ORFEAS__API__OUTBOX_INTERVAL_MS", "3600000")],
    )
    .await;
    let pool = env.db().pool().clone();
    job_row(&pool, "queued", "inflate", 120.0, true).await;
    job_row(&pool, "queued", "inflate", 30.0, false).await;
    job_row(&pool, "queued", "hunyuan3d", 600.0, true).await;
    let done = job_row(&pool, "succeeded", "inflate", 5000.0, true).await;
    // One delivery due for 45 s, one due in an hour, one delivered: only the first is backlog.
    for (seq, status, due_in) in [
        (1, "pending", -45.0),
        (2, "pending", 3600.0),
        (3, "delivered", -90.0),
    ] {
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, job_id, seq, kind, url, payload, status, next_at) \
             VALUES ($1, $2, $3, 'succeeded', 'https://example.com/hook', '{}', $4, \
             now() + make_interval(secs => $5))",
        )
        .bind(format!("msg_{}_{seq}", done.0.simple()))
        .bind(done.0)
        .bind(seq)
        .bind(status)
        .bind(due_in)
        .execute(&pool)
        .await
        .expect("delivery row");
    }

    let api = env.start_api().await;
    let worker = env.start_worker().await;
    let scrape = |url: String| {
        let client = api.client.clone();
        async move {
            client
                .get(url)
                .send()
                .await
                .expect("scrape")
                .text()
                .await
                .expect("text")
        }
    };
    let value = |text: &str, series: &str| -> f64 {
        text.lines()
            .find(|l| l.split(' ').next() == Some(series))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{series} missing:\n{text}"))
    };
    // The worker's heartbeat reaches Redis within a few intervals.
    let mut text = String::new();
    for _ in 0..100 {
        text = scrape(api.metrics_url.clone()).await;
        if text.contains("orfeas_engine_workers_live{engine=\"inflate\"} 1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        value(&text, "orfeas_engine_workers_live{engine=\"inflate\"}"),
        1.0
    );
    assert_eq!(
        value(&text, "orfeas_engine_workers_live{engine=\"hunyuan3d\"}"),
        0.0
    );
    assert_eq!(value(&text, "orfeas_jobs_queued{engine=\"inflate\"}"), 2.0);
    assert_eq!(
        value(&text, "orfeas_jobs_queued{engine=\"hunyuan3d\"}"),
        1.0
    );
    let oldest = value(
        &text,
        "orfeas_jobs_queued_oldest_seconds{engine=\"inflate\"}",
    );
    assert!((120.0..180.0).contains(&oldest), "{oldest}");
    let oldest = value(
        &text,
        "orfeas_jobs_queued_oldest_seconds{engine=\"hunyuan3d\"}",
    );
    assert!((600.0..660.0).contains(&oldest), "{oldest}");
    assert_eq!(value(&text, "orfeas_outbox_backlog{outbox=\"jobs\"}"), 1.0);
    let oldest = value(&text, "orfeas_outbox_oldest_seconds{outbox=\"jobs\"}");
    assert!((30.0..90.0).contains(&oldest), "{oldest}");
    assert_eq!(
        value(&text, "orfeas_outbox_backlog{outbox=\"webhooks\"}"),
        1.0
    );
    let oldest = value(&text, "orfeas_outbox_oldest_seconds{outbox=\"webhooks\"}");
    assert!((45.0..105.0).contains(&oldest), "{oldest}");

    let w = scrape(worker.metrics_url.clone()).await;
    assert_eq!(
        value(
            &w,
            "orfeas_worker_info{device=\"cpu\",engine=\"inflate\",segmentation_weights=\"none\",weights=\"none\"}"
        ),
        1.0
    );
    assert_eq!(
        value(&w, "orfeas_optimizer_target_utilization_ratio"),
        env.config.worker.target_utilization
    );
    worker.stop().await;
    api.stop().await;
    env.cleanup().await;
}
