//! Event-stream throughput of one API process: `bench/sse.sh` starts `orfeas api` and runs
//! this against it. It makes JOBS running jobs, opens STREAMS SSE streams spread over them,
//! reads the API's resident memory before and after (memory per stream), then records
//! EVENTS progress events per job from PRODUCERS PostgreSQL connections as fast as they go and
//! measures the events delivered to the streams per second, checking that every stream got
//! every event of its job, in order, once.
//!
//!   sse_bench API_URL DATABASE_URL API_PID [JOBS STREAMS EVENTS PRODUCERS]

// A bench program reports on stdout and stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use orfeas::client::sse::SseParser;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let api = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let db_url = args.get(2).cloned().expect("DATABASE_URL");
    let pid: u32 = args.get(3).and_then(|a| a.parse().ok()).expect("API_PID");
    let num = |i: usize, d: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (jobs, streams, events, producers) = (num(4, 50), num(5, 1000), num(6, 400), num(7, 6));

    let pool = PgPoolOptions::new()
        .max_connections(producers as u32 + 2)
        .connect(&db_url)
        .await?;
    let ids: Vec<Uuid> = (0..jobs).map(|_| Uuid::now_v7()).collect();
    let spec = serde_json::to_value(orfeas_vocab::JobSpec::default())?;
    for id in &ids {
        sqlx::query(
            "INSERT INTO jobs (id, engine, spec, input_key, input_bytes) \
             VALUES ($1, 'inflate', $2, 'bench', 1)",
        )
        .bind(id)
        .bind(&spec)
        .execute(&pool)
        .await?;
        sqlx::query(
            "UPDATE jobs SET status = 'running', attempt = 1, worker_id = 'bench', \
             started_at = now() WHERE id = $1",
        )
        .bind(id)
        .execute(&pool)
        .await?;
        sqlx::query(
            "SELECT orfeas_attempt_event($1, 1, 'stage_started', \
             '{\"stage\": \"shape_generation\"}', 'shape_generation', 30::smallint)",
        )
        .bind(id)
        .execute(&pool)
        .await?;
    }
    // queued, started, stage_started: read back from the table when a stream opens.
    let initial = 3u64;
    let total_per_stream = initial + events as u64 + 1;

    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = rss_kib(pid);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let delivered = Arc::new(AtomicU64::new(0));
    let caught_up = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for s in 0..streams {
        let id = ids[s % jobs];
        let url = format!("{api}/api/jobs/{id}/events");
        let client = client.clone();
        let delivered = delivered.clone();
        let caught_up = caught_up.clone();
        tasks.push(tokio::spawn(async move {
            let resp = client.get(url).send().await.expect("stream");
            let status = resp.status();
            if status != 200 {
                let body = resp.text().await.unwrap_or_default();
                panic!("stream refused: {status} {body}");
            }
            let mut body = resp.bytes_stream();
            let mut parser = SseParser::new();
            let mut seqs = 0u64;
            let mut last_at = Instant::now();
            while let Some(chunk) = body.next().await {
                let Ok(chunk) = chunk else { break };
                for m in parser.feed(&chunk) {
                    seqs += 1;
                    let seq: u64 = m.id.as_deref().and_then(|i| i.parse().ok()).unwrap_or(0);
                    assert_eq!(seq, seqs, "in order, no gaps, no repeats");
                    if seqs == initial {
                        caught_up.fetch_add(1, Ordering::Relaxed);
                    } else if seqs > initial {
                        delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    last_at = Instant::now();
                }
            }
            (seqs, last_at)
        }));
    }
    let opened = Instant::now();
    while caught_up.load(Ordering::Relaxed) < streams as u64 {
        anyhow::ensure!(
            opened.elapsed() < Duration::from_secs(120),
            "streams did not open"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let open_s = opened.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_open = rss_kib(pid);

    let start = Instant::now();
    let per_producer = jobs.div_ceil(producers);
    let mut prods = Vec::new();
    for chunk in ids.chunks(per_producer) {
        let chunk = chunk.to_vec();
        let pool = pool.clone();
        prods.push(tokio::spawn(async move {
            for k in 1..=events {
                for id in &chunk {
                    let data = format!(
                        r#"{{"percent": 40, "stage": "shape_generation", "step": "denoising", "done": {k}, "total": {events}}}"#
                    );
                    sqlx::query(
                        "SELECT orfeas_attempt_event($1, 1, 'progress', $2::jsonb, \
                         'shape_generation', 40::smallint)",
                    )
                    .bind(id)
                    .bind(data)
                    .execute(&pool)
                    .await
                    .expect("event");
                }
            }
        }));
    }
    for p in prods {
        p.await?;
    }
    let produced_s = start.elapsed().as_secs_f64();
    sqlx::query(
        "UPDATE jobs SET status = 'succeeded', outputs = '{glb}', finished_at = now() \
         WHERE id = ANY($1)",
    )
    .bind(&ids)
    .execute(&pool)
    .await?;
    let mut last = start;
    for t in tasks {
        let (seqs, at) = t.await?;
        anyhow::ensure!(
            seqs == total_per_stream,
            "a stream got {seqs} of {total_per_stream}"
        );
        last = last.max(at);
    }
    let span = (last - start).as_secs_f64();
    let n = delivered.load(Ordering::Relaxed);
    println!(
        "jobs={jobs} streams={streams} events/job={events} producers={producers}: \
         {n} events delivered in {span:.2} s = {:.0} events/s per API process \
         (recorded {:.0} events/s); streams opened in {open_s:.2} s; \
         API RSS {rss_before} KiB → {rss_open} KiB with the streams open = {:.1} KiB per stream",
        n as f64 / span,
        (jobs * events) as f64 / produced_s,
        (rss_open.saturating_sub(rss_before)) as f64 / streams as f64
    );
    Ok(())
}
