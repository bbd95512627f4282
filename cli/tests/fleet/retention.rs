//! Retention deletes finished jobs past their time with everything they stored, and inputs no
//! job names; their history stays in the hourly rollups, which answer long windows.

use chrono::{Duration as Span, Utc};
use object_store::ObjectStoreExt;
use object_store::path::Path;
use orfeas_shared::retention::{RetentionPolicy, gc_pass};
use orfeas_shared::storage;
use orfeas_vocab::{Artifact, JobId, JobSpec};

use crate::env::{TestEnv, services_shared};

/// A succeeded job that finished `days_ago`, with its input, a GLB and five stage rows.
async fn finished_job(
    env: &TestEnv,
    store: &dyn object_store::ObjectStore,
    days_ago: i64,
) -> JobId {
    let id = JobId::new();
    let input = storage::input_key(id, "png");
    storage::put(store, &input, bytes::Bytes::from_static(b"png bytes"))
        .await
        .expect("input");
    storage::put(
        store,
        &storage::output_key(id, Artifact::Glb),
        bytes::Bytes::from_static(b"glb bytes"),
    )
    .await
    .expect("output");
    let finished = Utc::now() - Span::days(days_ago);
    let pool = env.db();
    sqlx::query(
        "INSERT INTO jobs (id, status, engine, spec, input_key, input_bytes, attempt, outputs, \
         created_at, started_at, finished_at, enqueued_at) \
         VALUES ($1, 'succeeded', 'inflate', $2, $3, 9, 1, '{glb}', $4 - interval '10 seconds', \
         $4 - interval '8 seconds', $4, $4)",
    )
    .bind(id.0)
    .bind(serde_json::to_value(JobSpec::default()).expect("spec"))
    .bind(input.to_string())
    .bind(finished)
    .execute(pool.pool())
    .await
    .expect("job");
    for (stage, secs) in [
        ("image_loading", 0.5),
        ("image_preprocessing", 1.0),
        ("shape_generation", 5.0),
        ("texture_synthesis", 1.0),
        ("mesh_export", 0.5),
    ] {
        sqlx::query(
            "INSERT INTO stage_timings (job_id, stage, attempt, worker_id, device, batch_size, \
             started_at, duration_seconds) VALUES ($1, $2::pipeline_stage, 1, 'w', 'cpu', 1, $3, $4)",
        )
        .bind(id.0)
        .bind(stage)
        .bind(finished)
        .bind(secs)
        .execute(pool.pool())
        .await
        .expect("stage row");
    }
    id
}

async fn exists(store: &dyn object_store::ObjectStore, key: &Path) -> bool {
    store.head(key).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn old_jobs_are_deleted_and_their_history_stays() {
    let _services = services_shared().await;
    let env = TestEnv::new("retention").await;
    let store = storage::build(&env.config.storage).expect("store");
    let db = env.db();
    // A deployment running for 50 days: everything since then is to be rolled up.
    sqlx::query(
        "UPDATE rollup_state SET rolled_until = date_trunc('hour', now() - interval '50 days')",
    )
    .execute(db.pool())
    .await
    .expect("rollup state");
    let mut old = Vec::new();
    for _ in 0..3 {
        old.push(finished_job(&env, store.as_ref(), 40).await);
    }
    let recent = finished_job(&env, store.as_ref(), 0).await;
    // An input stored by an API that died before committing its job row.
    let orphan = storage::input_key(JobId::new(), "png");
    storage::put(
        store.as_ref(),
        &orphan,
        bytes::Bytes::from_static(b"orphan"),
    )
    .await
    .expect("orphan");

    let policy = RetentionPolicy {
        finished_jobs: Some(std::time::Duration::from_secs(30 * 86_400)),
        orphan_inputs_after: std::time::Duration::ZERO,
    };
    let report = gc_pass(&db, store.as_ref(), &policy).await.expect("pass");
    assert_eq!(report.jobs_deleted, 3, "{report:?}");
    assert_eq!(report.objects_deleted, 6, "inputs and outputs: {report:?}");
    assert_eq!(report.orphan_inputs_deleted, 1, "{report:?}");
    // Hours are rolled up 5 minutes after they end: in an hour's first minutes the one just
    // ended is still waiting.
    assert!(report.hours_rolled_up >= 50 * 24 - 1, "{report:?}");
    for id in &old {
        assert!(db.get_job(*id).await.expect("read").is_none());
        assert!(db.stage_records(*id).await.expect("rows").is_empty());
        assert!(!exists(store.as_ref(), &storage::output_key(*id, Artifact::Glb)).await);
        assert!(!exists(store.as_ref(), &storage::input_key(*id, "png")).await);
    }
    assert!(!exists(store.as_ref(), &orphan).await);
    // The recent job keeps everything.
    assert!(db.get_job(recent).await.expect("read").is_some());
    assert!(exists(store.as_ref(), &storage::output_key(recent, Artifact::Glb)).await);
    assert!(exists(store.as_ref(), &storage::input_key(recent, "png")).await);
    // A second pass has nothing left to do.
    let again = gc_pass(&db, store.as_ref(), &policy).await.expect("pass");
    assert_eq!(
        (again.jobs_deleted, again.objects_deleted),
        (0, 0),
        "{again:?}"
    );

    // The deleted jobs still count in a long window, answered from the rollups.
    let api = env.start_api().await;
    let (status, s) = api.get("/api/performance/summary?window=60d").await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["total_pipelines"], 3, "{s}");
    let avg = s["avg_duration"].as_f64().expect("avg");
    assert!((avg - 8.0).abs() < 1e-6, "{avg}");
    assert_eq!(s["stage_breakdown"]["shape_generation"]["count"], 3);
    let share = s["stage_breakdown"]["shape_generation"]["avg_percent"]
        .as_f64()
        .expect("share");
    assert!((share - 62.5).abs() < 0.01, "{share}");
    let wait = s["queue_wait"]["average_seconds"].as_f64().expect("wait");
    assert!((wait - 2.0).abs() < 1e-6, "{wait}");
    api.stop().await;
    env.cleanup().await;
}
