//! Live job events end to end: SSE and WebSocket streams from submission to the terminal
//! event, resuming with `Last-Event-ID` / `?after=` (also across an API restart and on another
//! replica), queue positions with ETAs from the ledger, one stream for many jobs, and the CLI
//! following a job.

use std::time::Duration;

use futures::StreamExt;
use orfeas::client::sse::SseParser;
use serde_json::Value;

use crate::env::{Api, TestEnv, id_of, sample, services_shared};

const T: Duration = Duration::from_secs(60);

/// One SSE message: id, event name, data as JSON.
#[derive(Debug, Clone)]
pub(crate) struct Msg {
    pub(crate) id: String,
    pub(crate) event: String,
    pub(crate) data: Value,
}

/// Reads an SSE stream until the server closes it (panics after `T`); `take`: stop early.
pub(crate) async fn read_sse(
    api: &Api,
    path: &str,
    last_id: Option<&str>,
    take: Option<usize>,
) -> Vec<Msg> {
    let mut req = api.client.get(api.url(path));
    if let Some(id) = last_id {
        req = req.header("Last-Event-ID", id);
    }
    let resp = req.send().await.expect("connect");
    assert_eq!(resp.status(), 200, "{path}");
    assert_eq!(
        resp.headers()["content-type"].to_str().expect("ct"),
        "text/event-stream"
    );
    let mut body = resp.bytes_stream();
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    let read = async {
        while let Some(chunk) = body.next().await {
            for m in parser.feed(&chunk.expect("chunk")) {
                out.push(Msg {
                    id: m.id.unwrap_or_default(),
                    event: m.event,
                    data: serde_json::from_str(&m.data).expect("json data"),
                });
                if take.is_some_and(|n| out.len() >= n) {
                    return;
                }
            }
        }
    };
    tokio::time::timeout(T, read)
        .await
        .expect("stream ended in time");
    out
}

fn kinds(msgs: &[Msg]) -> Vec<&str> {
    msgs.iter().map(|m| m.event.as_str()).collect()
}

fn assert_contiguous(msgs: &[Msg], first: i64) {
    for (i, m) in msgs.iter().enumerate() {
        let seq = m.data["seq"].as_i64().expect("seq");
        assert_eq!(seq, first + i as i64, "{:?}", kinds(msgs));
        assert_eq!(m.id, seq.to_string());
        assert_eq!(m.event, m.data["type"].as_str().expect("type"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_streams_from_queued_to_succeeded_and_resumes() {
    let _services = services_shared().await;
    let env = TestEnv::with(
        "events_stream",
        &[("ORFEAS__WORKER__PROGRESS_INTERVAL_MS", "10")],
    )
    .await;
    let api = env.start_api().await;
    let replica = env.start_api().await;
    let (status, job) = api
        .submit(
            &sample("star.png"),
            Some(r#"{"octree_resolution": 256}"#),
            None,
        )
        .await;
    assert_eq!(status, 202, "{job}");
    let id = id_of(&job);
    assert_eq!(job["links"]["events"], format!("/api/jobs/{id}/events"));
    let path = format!("/api/jobs/{id}/events");

    // Follow on two replicas at once, before any worker runs: each sees it queued first.
    let first = read_sse(&api, &path, None, Some(1)).await;
    assert_eq!(kinds(&first), ["queued"]);
    assert_eq!(first[0].data["data"]["position"], 0);
    assert_eq!(first[0].data["data"]["attempt"], 0);
    let (a, b) = tokio::join!(read_sse(&api, &path, None, None), async {
        let worker = env.start_worker().await;
        let msgs = read_sse(&replica, &path, None, None).await;
        worker.stop().await;
        msgs
    });
    assert_eq!(
        a.iter().map(|m| &m.data).collect::<Vec<_>>(),
        b.iter().map(|m| &m.data).collect::<Vec<_>>(),
        "both replicas stream the same events"
    );
    assert_contiguous(&a, 1);
    let k = kinds(&a);
    assert_eq!(k[..3], ["queued", "started", "stage_started"], "{k:?}");
    assert_eq!(*k.last().expect("events"), "succeeded");
    let started = &a[1].data["data"];
    assert_eq!(started["attempt"], 1);
    assert_eq!(started["device"], "cpu");
    assert!(started["batch_size"].as_i64().expect("batch size") >= 1);
    assert!(started["worker"].as_str().is_some_and(|w| !w.is_empty()));
    // Every stage starts and finishes, in order.
    let stages = |kind: &str| -> Vec<String> {
        a.iter()
            .filter(|m| m.event == kind)
            .map(|m| m.data["data"]["stage"].as_str().expect("stage").to_owned())
            .collect()
    };
    let all: Vec<String> = orfeas_vocab::Stage::NAMES
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(stages("stage_started"), all);
    assert_eq!(stages("stage_finished"), all);
    // Step progress from inside shape generation, only moving forward, within its stage.
    let progress: Vec<&Value> = a
        .iter()
        .filter(|m| m.event == "progress")
        .map(|m| &m.data["data"])
        .collect();
    assert!(!progress.is_empty(), "{k:?}");
    let mut last = 0;
    for p in &progress {
        assert_eq!(p["stage"], "shape_generation", "{p}");
        assert!(
            p["step"].is_string() && p["total"].as_u64().is_some_and(|t| t > 0),
            "{p}"
        );
        let pct = p["percent"].as_i64().expect("percent");
        assert!(pct >= last && pct < 100, "{pct} after {last}");
        last = pct;
    }
    let end = &a.last().expect("end").data["data"];
    let outputs = end["outputs"].as_array().expect("outputs");
    assert_eq!(outputs[0]["url"], format!("/api/jobs/{id}/outputs/glb"));
    assert!(end["seconds"].as_f64().is_some_and(|s| s > 0.0));

    // Resuming after event 3 gives exactly the rest; after the last, nothing (and it closes).
    let rest = read_sse(&api, &path, Some("3"), None).await;
    assert_contiguous(&rest, 4);
    assert_eq!(rest.len(), a.len() - 3);
    let n = a.len().to_string();
    assert!(read_sse(&replica, &path, Some(&n), None).await.is_empty());

    // The WebSocket gives the same events after `?after=`, then closes normally.
    let ws_url = format!(
        "{}/api/jobs/{id}/ws?after=2",
        api.base.replace("http", "ws")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.expect("ws");
    let mut got = Vec::new();
    let mut close = None;
    while let Some(m) = tokio::time::timeout(T, ws.next())
        .await
        .expect("ws in time")
    {
        match m.expect("ws message") {
            tokio_tungstenite::tungstenite::Message::Text(t) => {
                got.push(serde_json::from_str::<Value>(&t).expect("json"))
            }
            tokio_tungstenite::tungstenite::Message::Close(c) => {
                close = c;
                break;
            }
            _ => {}
        }
    }
    assert_eq!(
        got,
        a[2..].iter().map(|m| m.data.clone()).collect::<Vec<_>>()
    );
    assert_eq!(close.map(|c| u16::from(c.code)), Some(1000));

    // Bad ids and unknown jobs are typed errors, not streams.
    let (s, body) = api
        .get(&format!("/api/jobs/{}/events", uuid::Uuid::now_v7()))
        .await;
    assert_eq!(s, 404, "{body}");
    let resp = api
        .client
        .get(api.url(&path))
        .header("Last-Event-ID", "x")
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 400);
    api.stop().await;
    replica.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_resumes_on_a_restarted_api_and_ends_on_cancel_or_failure() {
    let _services = services_shared().await;
    let env = TestEnv::new("events_restart").await;
    let api = env.start_api().await;
    let (_, job) = api.submit(&sample("star.png"), None, None).await;
    let id = id_of(&job);
    let path = format!("/api/jobs/{id}/events");
    let seen = read_sse(&api, &path, None, Some(1)).await;
    assert_eq!(kinds(&seen), ["queued"]);
    // The API goes away; the job runs meanwhile; a new API process serves the rest.
    api.stop().await;
    let worker = env.start_worker().await;
    let db = env.db();
    let start = std::time::Instant::now();
    while db
        .get_job(id.parse().expect("id"))
        .await
        .expect("db")
        .expect("job")
        .status
        != orfeas_vocab::JobStatus::Succeeded
    {
        assert!(start.elapsed() < T, "job did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.stop().await;
    let api = env.start_api().await;
    let rest = read_sse(&api, &path, Some("1"), None).await;
    assert_contiguous(&rest, 2);
    assert_eq!(kinds(&rest)[0], "started");
    assert_eq!(*kinds(&rest).last().expect("end"), "succeeded");

    // Canceled while queued: the stream ends with `canceled`.
    let (_, queued) = api.submit(&sample("star.png"), None, None).await;
    let qid = id_of(&queued);
    let qpath = format!("/api/jobs/{qid}/events");
    let (stream, _) = tokio::join!(read_sse(&api, &qpath, None, None), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        api.post(&format!("/api/jobs/{qid}/cancel")).await
    });
    assert_eq!(kinds(&stream), ["queued", "canceled"]);

    // A job that fails (a plain grey picture has no object): the stream ends with the error
    // code, the message and the stage it failed in.
    let mut grey = Vec::new();
    image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
        64,
        64,
        image::Rgb([128, 128, 128]),
    ))
    .write_to(
        &mut std::io::Cursor::new(&mut grey),
        image::ImageFormat::Png,
    )
    .expect("png");
    let worker = env.start_worker().await;
    let (status, bad) = api.submit(&grey, None, None).await;
    assert_eq!(status, 202, "{bad}");
    let failed = read_sse(
        &api,
        &format!("/api/jobs/{}/events", id_of(&bad)),
        None,
        None,
    )
    .await;
    worker.stop().await;
    let end = failed.last().expect("events");
    assert_eq!(end.event, "failed", "{:?}", kinds(&failed));
    assert_eq!(end.data["data"]["code"], "no_foreground");
    assert_eq!(end.data["data"]["stage"], "image_preprocessing");
    assert!(
        end.data["data"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    let finished = failed
        .iter()
        .find(|m| m.event == "stage_finished" && m.data["data"]["stage"] == "image_preprocessing")
        .expect("the failing stage's end");
    assert_eq!(finished.data["data"]["ok"], false);
    api.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queue_positions_and_etas_come_from_the_ledger() {
    let _services = services_shared().await;
    let env = TestEnv::new("events_eta").await;
    let api = env.start_api().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (_, job) = api.submit(&sample("star.png"), None, None).await;
        ids.push(id_of(&job));
    }
    // No history yet: positions, but no ETA.
    let (_, third) = api.get(&format!("/api/jobs/{}", ids[2])).await;
    assert_eq!(third["queue"]["position"], 2, "{third}");
    assert!(third["queue"]["eta_seconds"].is_null(), "{third}");
    let q = read_sse(&api, &format!("/api/jobs/{}/events", ids[2]), None, Some(1)).await;
    assert_eq!(q[0].data["data"]["position"], 2);

    // Run them; their run times become the ledger's figures.
    let worker = env.start_worker().await;
    for id in &ids {
        let done = api.wait_terminal(id, T).await;
        assert_eq!(done["status"], "succeeded", "{done}");
    }
    worker.stop().await;
    let db = env.db();
    db.refresh_estimates(Duration::from_secs(3600), Duration::from_secs(900))
        .await
        .expect("refresh");
    let own: f64 = sqlx::query_scalar::<_, f64>(
        "SELECT sum(duration_seconds) / count(DISTINCT job_id) FROM stage_timings",
    )
    .fetch_one(db.pool())
    .await
    .expect("ledger");
    let mut later = Vec::new();
    for _ in 0..2 {
        let (_, job) = api.submit(&sample("star.png"), None, None).await;
        later.push(id_of(&job));
    }
    let first = read_sse(
        &api,
        &format!("/api/jobs/{}/events", later[0]),
        None,
        Some(1),
    )
    .await;
    let second = read_sse(
        &api,
        &format!("/api/jobs/{}/events", later[1]),
        None,
        Some(1),
    )
    .await;
    let eta0 = first[0].data["data"]["eta_seconds"]
        .as_f64()
        .expect("eta with history");
    let eta1 = second[0].data["data"]["eta_seconds"]
        .as_f64()
        .expect("eta with history");
    assert_eq!(second[0].data["data"]["position"], 1);
    // The first waits for nobody: its own run time, as the ledger measured it.
    assert!(
        (eta0 - own).abs() <= 0.1 + own * 0.01,
        "{eta0} vs ledger {own}"
    );
    assert!(eta1 > eta0, "one job ahead adds its wait: {eta1} vs {eta0}");
    let (_, view) = api.get(&format!("/api/jobs/{}", later[1])).await;
    assert_eq!(view["queue"]["position"], 1, "{view}");
    assert!(view["queue"]["eta_seconds"].as_f64().is_some(), "{view}");
    api.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_stream_follows_many_jobs_and_the_cli_watches_them() {
    let _services = services_shared().await;
    let env = TestEnv::new("events_many").await;
    let api = env.start_api().await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (_, job) = api.submit(&sample("star.png"), None, None).await;
        ids.push(id_of(&job));
    }
    let path = format!("/api/events?jobs={},{}", ids[0], ids[1]);
    let worker = env.start_worker().await;
    let all = read_sse(&api, &path, None, None).await;
    worker.stop().await;
    let per_job = |id: &str| -> Vec<i64> {
        all.iter()
            .filter(|m| m.data["job"] == id)
            .map(|m| m.data["seq"].as_i64().expect("seq"))
            .collect()
    };
    for id in &ids {
        let seqs = per_job(id);
        assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    }
    // Each id lists the last sequence number sent per job, in the order of `jobs`.
    let last = all.last().expect("events");
    let final_id: Vec<i64> = last
        .id
        .split(',')
        .map(|s| s.parse().expect("seq"))
        .collect();
    assert_eq!(
        final_id,
        vec![per_job(&ids[0]).len() as i64, per_job(&ids[1]).len() as i64]
    );
    // Resuming from a mid-stream id gives exactly the remainder.
    let cut = all.len() / 2;
    let resumed = read_sse(&api, &path, Some(&all[cut - 1].id), None).await;
    assert_eq!(
        resumed.iter().map(|m| &m.data).collect::<Vec<_>>().len(),
        all.len() - cut
    );
    for m in &resumed {
        assert!(all[cut..].iter().any(|o| o.data == m.data), "{:?}", m.data);
    }
    let (s, _) = api.get("/api/events?jobs=").await;
    assert_eq!(s, 400);

    // The CLI follows a job to its end and prints its outcome.
    let worker = env.start_worker().await;
    let out = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("cli-watch")
        .join(&env.name);
    let image = crate::validate::repo().join("samples").join("star.png");
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_orfeas"))
        .args([
            "jobs", "submit", "--wait", "--quiet", "--api", &api.base, "--out",
        ])
        .arg(&out)
        .arg(&image)
        .output()
        .await
        .expect("orfeas jobs submit");
    worker.stop().await;
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains(" succeeded in "), "{stdout}");
    let job = stdout.split_whitespace().next().expect("job id");
    let glb = std::fs::read(out.join(format!("{job}.glb"))).expect("downloaded glb");
    assert_eq!(&glb[..4], b"glTF");
    // Watching a finished job prints its outcome at once.
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_orfeas"))
        .args(["jobs", "watch", "--quiet", "--api", &api.base, job])
        .output()
        .await
        .expect("orfeas jobs watch");
    assert!(run.status.success());
    assert!(String::from_utf8_lossy(&run.stdout).contains("succeeded"));
    api.stop().await;
    env.cleanup().await;
}
