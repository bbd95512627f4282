//! Signed webhooks end to end: a receiver verifying signatures with the `standardwebhooks`
//! package sees every event of a job once (de-duplicated by a `webhook-id` that is stable
//! across retries) after forced retries and an API restart; filters, `Retry-After`, 410 Gone,
//! and refused private addresses; an attempt cut short by the API going away still counts.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use orfeas_shared::webhook::WebhookSecret;
use orfeas_vocab::{JobEventKind, WebhookEvent};
use serde_json::Value;

use crate::env::{TestEnv, id_of, sample, services_shared};
use crate::validate::repo;

const T: Duration = Duration::from_secs(60);

struct Receiver {
    child: std::process::Child,
    base: String,
    log: PathBuf,
}

impl Receiver {
    fn start(secret: &str, name: &str) -> Option<Receiver> {
        let Ok(python) = std::env::var("ORFEAS_PYTHON") else {
            assert!(
                !std::env::var("ORFEAS_REQUIRE_VALIDATORS").is_ok_and(|v| v == "1"),
                "ORFEAS_PYTHON unset (run scripts/test.sh)"
            );
            eprintln!("skipping the webhook receiver: ORFEAS_PYTHON unset (run scripts/test.sh)");
            return None;
        };
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("webhooks-{name}.jsonl"));
        let _ = std::fs::remove_file(&log);
        let mut child = std::process::Command::new(python)
            .arg(repo().join("cli/tests/support/webhook_receiver.py"))
            .arg(secret)
            .arg(&log)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("receiver");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("port");
        Some(Receiver {
            child,
            base: format!("http://127.0.0.1:{}", line.trim()),
            log,
        })
    }

    fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("record"))
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_arrive_signed_once_per_event_after_retries_and_a_restart() {
    let _services = services_shared().await;
    let secret = WebhookSecret::generate().expect("secret");
    let Some(receiver) = Receiver::start(&secret, "e2e") else {
        return;
    };
    let env = TestEnv::with(
        "webhooks",
        &[
            ("ORFEAS__WEBHOOKS__SECRET", secret.as_str()),
            ("ORFEAS__WEBHOOKS__ALLOW", r#"["127.0.0.1/32"]"#),
            (
                "ORFEAS__WEBHOOKS__RETRY_SCHEDULE_MS",
                "[300, 600, 1200, 2400]",
            ),
            ("ORFEAS__WEBHOOKS__POLL_MS", "50"),
        ],
    )
    .await;
    // The database's mapping of events to webhook classes is the vocabulary's.
    let db = env.db();
    for k in JobEventKind::ALL {
        let class = db.webhook_class(k.as_str()).await.expect("class");
        assert_eq!(
            class.as_deref(),
            WebhookEvent::of(k).map(|c| c.as_str()),
            "{k}"
        );
    }

    let api = env.start_api().await;
    let worker = env.start_worker().await;
    let options = format!(r#"{{"webhook": "{}/flaky/all"}}"#, receiver.base);
    let (status, job) = api.submit(&sample("star.png"), Some(&options), None).await;
    assert_eq!(status, 202, "{job}");
    let id = id_of(&job);
    let done = api.wait_terminal(&id, T).await;
    assert_eq!(done["status"], "succeeded");
    // The API goes away with deliveries still being retried; a new process finishes them.
    api.stop().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let api = env.start_api().await;
    let start = Instant::now();
    let view = loop {
        let (_, view) = api.get(&format!("/api/jobs/{id}")).await;
        let hooks = view["webhooks"].as_array().cloned().unwrap_or_default();
        if !hooks.is_empty() && hooks.iter().all(|h| h["status"] == "delivered") {
            break view;
        }
        assert!(start.elapsed() < T, "deliveries did not finish: {view}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let deliveries = view["webhooks"].as_array().expect("log");
    // One delivery per job event of the three classes: everything but `queued`.
    let events: Vec<i64> = sqlx::query_scalar(
        "SELECT seq FROM job_events WHERE job_id = $1::uuid AND kind <> 'queued' ORDER BY seq",
    )
    .bind(&id)
    .fetch_all(db.pool())
    .await
    .expect("events");
    let delivered: Vec<i64> = deliveries
        .iter()
        .map(|d| d["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(delivered, events);
    for d in deliveries {
        assert!(
            d["attempts"].as_i64().expect("attempts") >= 2,
            "the first attempt got a 500: {d}"
        );
        assert_eq!(d["last_status"], 200);
    }
    // The receiver verified every request, and got each event's id first with a 500, then a 200.
    let records = receiver.records();
    assert!(records.iter().all(|r| r["verified"] == true), "{records:?}");
    let mut accepted: Vec<&Value> = records.iter().filter(|r| r["status"] == 200).collect();
    accepted.sort_by_key(|r| r["payload"]["data"]["seq"].as_i64());
    let ids: std::collections::HashSet<&str> = accepted
        .iter()
        .map(|r| r["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), accepted.len(), "each event accepted once");
    assert_eq!(accepted.len(), events.len());
    for (r, d) in accepted.iter().zip(deliveries) {
        assert_eq!(r["id"], d["id"], "the webhook-id is stable across retries");
        assert!(r["attempt"].as_i64().expect("n") >= 2);
        let payload = &r["payload"];
        assert_eq!(
            payload["type"],
            format!("job.{}", d["event"].as_str().expect("event"))
        );
        assert_eq!(payload["data"]["job"], id);
    }
    let last = accepted.last().expect("deliveries");
    assert_eq!(last["payload"]["type"], "job.succeeded");
    assert_eq!(last["payload"]["data"]["data"]["outputs"][0], "glb");

    // A filter, and a 429 with Retry-After honoured.
    let options = format!(
        r#"{{"webhook": "{}/busy/completed", "webhook_events": ["completed"]}}"#,
        receiver.base
    );
    let (_, job) = api.submit(&sample("star.png"), Some(&options), None).await;
    let busy = id_of(&job);
    api.wait_terminal(&busy, T).await;
    let start = Instant::now();
    loop {
        let (_, view) = api.get(&format!("/api/jobs/{busy}")).await;
        let hooks = view["webhooks"].as_array().cloned().unwrap_or_default();
        if hooks.len() == 1 && hooks[0]["status"] == "delivered" {
            assert_eq!(hooks[0]["event"], "succeeded");
            assert_eq!(hooks[0]["attempts"], 2, "{view}");
            break;
        }
        assert!(start.elapsed() < T, "{view}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tries: Vec<Value> = receiver
        .records()
        .into_iter()
        .filter(|r| r["path"] == "/busy/completed")
        .collect();
    assert_eq!(tries.len(), 2);

    // 410 Gone disables the endpoint: the next event for it is not sent.
    let options = format!(
        r#"{{"webhook": "{}/gone/x", "webhook_events": ["started", "completed"]}}"#,
        receiver.base
    );
    let (_, job) = api.submit(&sample("star.png"), Some(&options), None).await;
    let gone = id_of(&job);
    api.wait_terminal(&gone, T).await;
    let start = Instant::now();
    loop {
        let (_, view) = api.get(&format!("/api/jobs/{gone}")).await;
        let hooks = view["webhooks"].as_array().cloned().unwrap_or_default();
        if hooks.len() == 2 && hooks.iter().all(|h| h["status"] == "disabled") {
            break;
        }
        assert!(start.elapsed() < T, "{view}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let hits = receiver
        .records()
        .into_iter()
        .filter(|r| r["path"] == "/gone/x")
        .count();
    assert_eq!(hits, 1, "nothing is sent after the 410");
    worker.stop().await;

    // Webhooks to inside addresses are refused at submission.
    for url in [
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest",
        "http://[::1]:9/x",
    ] {
        let options = format!(r#"{{"webhook": "{url}"}}"#);
        let (status, body) = api.submit(&sample("star.png"), Some(&options), None).await;
        assert_eq!(status, 422, "{url}: {body}");
        assert_eq!(body["error"]["code"], "webhook_refused", "{body}");
    }
    let (status, body) = api
        .submit(
            &sample("star.png"),
            Some(r#"{"webhook": "ftp://example.com/x"}"#),
            None,
        )
        .await;
    assert_eq!(status, 422, "{body}");
    api.stop().await;
    env.cleanup().await;
}

/// An attempt cut short by the API going away still counts. The receiver holds the first
/// request open and never answers it; the API process is stopped meanwhile (its dispatcher is
/// dropped mid-request, as in a crash), and the next process retries once the claim lapses. The
/// delivery log must say 2 attempts, as the receiver counted them: an attempt counted only when
/// its outcome was recorded would be lost with the process, and the log would say 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_attempt_cut_short_by_the_api_going_away_still_counts() {
    let _services = services_shared().await;
    let secret = WebhookSecret::generate().expect("secret");
    let Some(receiver) = Receiver::start(&secret, "held") else {
        return;
    };
    // The attempt's timeout outlasts the API's stop by far; the claim's lease is twice the
    // timeout plus 5 s, which is how long the retry waits.
    let timeout = Duration::from_secs(4);
    let env = TestEnv::with(
        "webhooks_held",
        &[
            ("ORFEAS__WEBHOOKS__SECRET", secret.as_str()),
            ("ORFEAS__WEBHOOKS__ALLOW", r#"["127.0.0.1/32"]"#),
            ("ORFEAS__WEBHOOKS__TIMEOUT_MS", "4000"),
            ("ORFEAS__WEBHOOKS__POLL_MS", "50"),
        ],
    )
    .await;
    let api = env.start_api().await;
    let worker = env.start_worker().await;
    let options = format!(
        r#"{{"webhook": "{}/hold/x", "webhook_events": ["completed"]}}"#,
        receiver.base
    );
    let (status, job) = api.submit(&sample("star.png"), Some(&options), None).await;
    assert_eq!(status, 202, "{job}");
    let id = id_of(&job);
    api.wait_terminal(&id, T).await;
    let held = |r: &Value| r["path"] == "/hold/x";
    let start = Instant::now();
    while !receiver.records().iter().any(held) {
        assert!(start.elapsed() < T, "the first attempt never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let arrived = Instant::now();
    api.stop().await;
    assert!(
        arrived.elapsed() < timeout,
        "the API took longer to stop than the attempt's timeout: nothing was cut short"
    );
    let api = env.start_api().await;
    let start = Instant::now();
    let hook = loop {
        let (_, view) = api.get(&format!("/api/jobs/{id}")).await;
        let hooks = view["webhooks"].as_array().cloned().unwrap_or_default();
        if hooks.len() == 1 && hooks[0]["status"] == "delivered" {
            break hooks[0].clone();
        }
        assert!(start.elapsed() < T, "{view}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let tries: Vec<Value> = receiver.records().into_iter().filter(held).collect();
    assert_eq!(tries.len(), 2, "{tries:?}");
    assert_eq!(tries[0]["status"], Value::Null, "the first attempt is held");
    assert_eq!(tries[1]["status"], 200);
    assert_eq!(hook["attempts"], 2, "{hook}");
    assert_eq!(hook["last_status"], 200, "{hook}");
    worker.stop().await;
    api.stop().await;
    env.cleanup().await;
}
