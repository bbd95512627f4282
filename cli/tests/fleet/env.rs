//! An isolated fleet on the real services for each test: its own database, queues, Redis key
//! prefix and S3 bucket, the real API and worker start-up code, and helpers to drive them.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use orfeas_shared::Config;
use orfeas_shared::db::Db;
use serde_json::Value;
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard, oneshot};

use crate::validate::repo;

/// The shared services (PostgreSQL, RabbitMQ, Redis) as the tests of this binary use them:
/// most tests share them (each isolated in its own database, queues and prefix); the chaos tests
/// stop and restart them, so they run alone.
static SERVICES: RwLock<()> = RwLock::const_new(());

/// Held by an ordinary test for its whole run: no chaos test stops a service meanwhile.
pub async fn services_shared() -> RwLockReadGuard<'static, ()> {
    SERVICES.read().await
}

/// Held by a chaos test: no other test of this binary runs while it stops services.
pub async fn services_exclusive() -> RwLockWriteGuard<'static, ()> {
    SERVICES.write().await
}

/// The process-wide subscriber of a test binary, installed once by the first [`TestEnv`]: log
/// lines go through libtest's capture (so a failing test prints what its in-process API and
/// workers logged; filter: `ORFEAS_TEST_LOG`, default [`DEFAULT_LOG_FILTER`]), and spans go to an
/// in-memory exporter the trace test reads (every test's spans reach it; that test looks at its
/// own trace only).
///
/// [`DEFAULT_LOG_FILTER`]: orfeas_shared::telemetry::DEFAULT_LOG_FILTER
pub struct TestTelemetry {
    pub provider: opentelemetry_sdk::trace::SdkTracerProvider,
    pub spans: opentelemetry_sdk::trace::InMemorySpanExporter,
}

pub fn telemetry() -> &'static TestTelemetry {
    static TELEMETRY: std::sync::OnceLock<TestTelemetry> = std::sync::OnceLock::new();
    TELEMETRY.get_or_init(|| {
        use orfeas_shared::telemetry;
        let spans = opentelemetry_sdk::trace::InMemorySpanExporter::default();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_simple_exporter(spans.clone())
            .build();
        let logs = tracing_subscriber::EnvFilter::try_from_env("ORFEAS_TEST_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(telemetry::DEFAULT_LOG_FILTER));
        let subscriber = telemetry::subscriber(
            "orfeas-test",
            Some(&provider),
            &telemetry::SpanFilter::default(),
            logs,
            tracing_subscriber::fmt::TestWriter::default(),
            false,
        );
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        TestTelemetry { provider, spans }
    })
}

/// An isolated fleet: its own database, queues, Redis key prefix and bucket.
pub struct TestEnv {
    pub name: String,
    pub vars: Vec<(String, String)>,
    pub config: Config,
    bucket_dir: Option<PathBuf>,
}

fn required() -> bool {
    std::env::var("ORFEAS_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

impl TestEnv {
    pub async fn new(test: &str) -> TestEnv {
        Self::with(test, &[]).await
    }

    /// `extra`: more `ORFEAS__…` settings for this test.
    pub async fn with(test: &str, extra: &[(&str, &str)]) -> TestEnv {
        telemetry();
        let name = format!(
            "{}-{}-{}",
            test.replace('_', "-"),
            std::process::id(),
            fastrand_suffix()
        )
        .to_ascii_lowercase();
        let db_name = format!("orfeas_test_{}", name.replace('-', "_"));
        let mut vars: Vec<(String, String)> = vec![
            (
                "ORFEAS__DATABASE__URL".into(),
                format!("postgres://postgres@127.0.0.1:5432/{db_name}"),
            ),
            ("ORFEAS__DATABASE__MAX_CONNECTIONS".into(), "5".into()),
            ("ORFEAS__AMQP__QUEUE".into(), format!("orfeas.test.{name}")),
            (
                "ORFEAS__REDIS__KEY_PREFIX".into(),
                format!("orfeas-test-{name}"),
            ),
            ("ORFEAS__WORKER__BATCH_WAIT_MS".into(), "20".into()),
            ("ORFEAS__WORKER__HEARTBEAT_INTERVAL_MS".into(), "200".into()),
            ("ORFEAS__WORKER__HEARTBEAT_TTL_MS".into(), "2000".into()),
            ("ORFEAS__WORKER__RETRY_BASE_MS".into(), "100".into()),
            ("ORFEAS__WORKER__RETRY_MAX_MS".into(), "1000".into()),
            ("ORFEAS__WORKER__STALL_CHECK_MS".into(), "1000".into()),
            ("ORFEAS__API__OUTBOX_INTERVAL_MS".into(), "200".into()),
        ];
        let mut bucket_dir = None;
        match std::env::var("ORFEAS_TEST_S3_ENDPOINT") {
            Ok(endpoint) => {
                let bucket: String = format!("t-{name}").chars().take(63).collect();
                let root = std::env::var("ORFEAS_TEST_S3_ROOT")
                    .expect("ORFEAS_TEST_S3_ROOT with the endpoint");
                let dir = PathBuf::from(root).join(&bucket);
                std::fs::create_dir_all(&dir).expect("bucket directory");
                bucket_dir = Some(dir);
                vars.extend([
                    ("ORFEAS__STORAGE__KIND".into(), "s3".into()),
                    ("ORFEAS__STORAGE__BUCKET".into(), bucket),
                    ("ORFEAS__STORAGE__ENDPOINT".into(), endpoint),
                    (
                        "ORFEAS__STORAGE__ACCESS_KEY_ID".into(),
                        std::env::var("ORFEAS_TEST_S3_ACCESS_KEY").unwrap_or_default(),
                    ),
                    (
                        "ORFEAS__STORAGE__SECRET_ACCESS_KEY".into(),
                        std::env::var("ORFEAS_TEST_S3_SECRET_KEY").unwrap_or_default(),
                    ),
                    ("ORFEAS__STORAGE__ALLOW_HTTP".into(), "true".into()),
                ]);
            }
            Err(_) => {
                assert!(
                    !required(),
                    "S3 required: ORFEAS_TEST_S3_ENDPOINT unset (run scripts/test.sh)"
                );
                eprintln!(
                    "no S3 endpoint configured; using a local directory (run scripts/test.sh for S3)"
                );
                let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                    .join("fleet")
                    .join(&name);
                vars.extend([
                    ("ORFEAS__STORAGE__KIND".into(), "local".into()),
                    ("ORFEAS__STORAGE__PATH".into(), dir.display().to_string()),
                ]);
            }
        }
        for (k, v) in extra {
            vars.retain(|(key, _)| key != k);
            vars.push(((*k).to_owned(), (*v).to_owned()));
        }
        let config = Config::load(None, vars.clone()).expect("test configuration");
        Db::migrate(&config.database.url)
            .await
            .expect("migrate the test database");
        TestEnv {
            name,
            vars,
            config,
            bucket_dir,
        }
    }

    pub fn db(&self) -> Db {
        Db::connect_lazy(&self.config.database.url, 2).expect("db")
    }

    pub async fn start_api(&self) -> Api {
        let state = orfeas_api::build_state(self.config.clone())
            .await
            .expect("api state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let metrics = orfeas_api::serve_metrics(&state, ([127, 0, 0, 1], 0).into())
            .await
            .expect("api metrics");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            orfeas_api::serve(state, listener, async move {
                let _ = rx.await;
            })
            .await
            .expect("api serves");
        });
        Api {
            base,
            metrics_url: format!("http://{metrics}/metrics"),
            client: reqwest::Client::new(),
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// The real worker startup code, in this process.
    pub async fn start_worker(&self) -> InProcessWorker {
        self.start_worker_with(self.config.clone()).await
    }

    /// A worker with its own configuration (a broken object store, other limits).
    pub async fn start_worker_with(&self, config: Config) -> InProcessWorker {
        let worker = orfeas_worker::Worker::new(config)
            .await
            .expect("worker starts");
        let metrics = worker
            .serve_metrics(([127, 0, 0, 1], 0).into())
            .await
            .expect("worker metrics");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(worker.run(async move {
            let _ = rx.await;
        }));
        InProcessWorker {
            stop: Some(tx),
            task: Some(task),
            metrics_url: format!("http://{metrics}/metrics"),
        }
    }

    /// The real `orfeas worker` binary, configured through the environment.
    pub fn spawn_worker_process(&self, id: &str) -> std::process::Child {
        Command::new(env!("CARGO_BIN_EXE_orfeas"))
            .arg("worker")
            .envs(self.vars.iter().cloned())
            .env("ORFEAS__WORKER__ID", id)
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn orfeas worker")
    }

    /// Messages in one of this test's queues (`""`, `.retry`, `.dlq`, …), fetched and acked.
    pub async fn drain_queue(&self, suffix: &str) -> Vec<lapin::message::BasicGetMessage> {
        let conn = orfeas_shared::queue::connect(&self.config.amqp.url)
            .await
            .expect("amqp");
        let ch = conn.create_channel().await.expect("channel");
        let name = format!("{}{suffix}", self.config.amqp.queue);
        let mut out = Vec::new();
        // A queue that does not exist (yet) holds nothing.
        while let Ok(Some(m)) = ch
            .basic_get(
                name.as_str().into(),
                lapin::options::BasicGetOptions { no_ack: true },
            )
            .await
        {
            out.push(m);
        }
        let _ = conn.close(200, "done".into()).await;
        out
    }

    /// Drains the queue until it has yielded at least `n` messages or `timeout` passed.
    pub async fn wait_queue(
        &self,
        suffix: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<lapin::message::BasicGetMessage> {
        let start = Instant::now();
        let mut got = Vec::new();
        while got.len() < n && start.elapsed() < timeout {
            got.extend(self.drain_queue(suffix).await);
            if got.len() < n {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        got
    }

    pub async fn cleanup(self) {
        if let Ok(conn) = orfeas_shared::queue::connect(&self.config.amqp.url).await
            && let Ok(ch) = conn.create_channel().await
        {
            // Every queue of this test's topology: each engine's jobs, dead-letter and retry
            // queues, and the classic `.retry` queue older versions declared.
            let w = &self.config.worker;
            let base = orfeas_shared::queue::Topology::new(&self.config.amqp.queue)
                .with_retry_levels(w.retry_base, w.retry_max);
            let mut names: Vec<String> = orfeas_vocab::Engine::ALL
                .into_iter()
                .flat_map(|e| base.of_engine(e).queues())
                .collect();
            names.push(format!("{}.retry", self.config.amqp.queue));
            for name in names {
                let _ = ch
                    .queue_delete(
                        name.as_str().into(),
                        lapin::options::QueueDeleteOptions::default(),
                    )
                    .await;
            }
            let _ = conn.close(200, "done".into()).await;
        }
        let db_name = self
            .config
            .database
            .url
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        if let Ok(mut admin) = sqlx_admin().await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{db_name}\" WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await;
        }
        if let Some(dir) = self.bucket_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

async fn sqlx_admin() -> Result<sqlx::PgConnection, sqlx::Error> {
    use sqlx::Connection;
    sqlx::PgConnection::connect("postgres://postgres@127.0.0.1:5432/postgres").await
}

fn fastrand_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:x}", nanos ^ (std::process::id() << 8))
}

pub struct Api {
    pub base: String,
    /// `/metrics` on its own listener (`api.metrics_listen`).
    pub metrics_url: String,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Api {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs a job; returns the status and the JSON body.
    pub async fn submit(
        &self,
        image: &[u8],
        options: Option<&str>,
        key: Option<&str>,
    ) -> (u16, Value) {
        let mut form = reqwest::multipart::Form::new().part(
            "image",
            reqwest::multipart::Part::bytes(image.to_vec()).file_name("input.png"),
        );
        if let Some(o) = options {
            form = form.text("options", o.to_owned());
        }
        let mut req = self.client.post(self.url("/api/jobs")).multipart(form);
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        let resp = req.send().await.expect("submit");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self.client.get(self.url(path)).send().await.expect("get");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str) -> (u16, Value) {
        let resp = self.client.post(self.url(path)).send().await.expect("post");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Polls the job until `done(job)` holds; panics after `timeout`.
    pub async fn wait_for(
        &self,
        id: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let (status, job) = self.get(&format!("/api/jobs/{id}")).await;
            assert_eq!(status, 200, "{job}");
            if done(&job) {
                return job;
            }
            assert!(
                start.elapsed() < timeout,
                "job {id} did not get there in {timeout:?}: {job}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_terminal(&self, id: &str, timeout: Duration) -> Value {
        self.wait_for(id, timeout, |j| {
            matches!(
                j["status"].as_str(),
                Some("succeeded" | "failed" | "canceled")
            )
        })
        .await
    }

    /// Polls every job until all are terminal and returns them in order; after `timeout`
    /// panics with every job's state and the jobs queue's counters (ready, unacknowledged,
    /// consumers, from the management API when the tests have it), which say whether a job's
    /// message is waiting, held by a consumer, or gone.
    pub async fn wait_all_terminal(
        &self,
        ids: &[String],
        timeout: Duration,
        queue: &str,
    ) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let mut jobs = Vec::new();
            for id in ids {
                let (status, job) = self.get(&format!("/api/jobs/{id}")).await;
                assert_eq!(status, 200, "{job}");
                jobs.push(job);
            }
            let terminal = |j: &Value| {
                matches!(
                    j["status"].as_str(),
                    Some("succeeded" | "failed" | "canceled")
                )
            };
            if jobs.iter().all(terminal) {
                return jobs;
            }
            if start.elapsed() >= timeout {
                let states: Vec<String> = jobs
                    .iter()
                    .map(|j| {
                        format!(
                            "{} {} attempt {} stage {}",
                            j["id"], j["status"], j["attempt"], j["stage"]
                        )
                    })
                    .collect();
                panic!(
                    "jobs not terminal after {timeout:?}:\n  {}\nqueue {queue}: {}",
                    states.join("\n  "),
                    queue_counters(queue).await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

/// A queue's counters from RabbitMQ's management API, for failure messages.
pub async fn queue_counters(queue: &str) -> String {
    let Ok(management) = std::env::var("ORFEAS_TEST_AMQP_MANAGEMENT") else {
        return "unknown (no management API)".into();
    };
    // The default vhost `/`, percent-encoded; reqwest sends the URL's credentials as basic
    // auth (a second Authorization header would make the request a 400).
    let Ok(url) = reqwest::Url::parse(&management)
        .and_then(|base| base.join(&format!("api/queues/%2F/{queue}")))
    else {
        return format!("unknown (bad management URL {management})");
    };
    let resp = reqwest::Client::new().get(url).send().await;
    match resp {
        Ok(r) if !r.status().is_success() => format!("unknown (HTTP {})", r.status()),
        Ok(r) => match r.json::<Value>().await {
            Ok(q) => format!(
                "ready {}, unacknowledged {}, consumers {}",
                q["messages_ready"], q["messages_unacknowledged"], q["consumers"]
            ),
            Err(e) => format!("unknown ({e})"),
        },
        Err(e) => format!("unknown ({e})"),
    }
}

pub struct InProcessWorker {
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    pub metrics_url: String,
}

impl InProcessWorker {
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
        }
    }
}

pub fn sample(name: &str) -> Vec<u8> {
    std::fs::read(repo().join("samples").join(name)).expect("sample")
}

pub fn id_of(job: &Value) -> String {
    job["id"].as_str().expect("job id").to_owned()
}

/// The first field `sha256sum ARGS` prints in `dir` (the system tool, so digests the fleet
/// reports are checked against something other than its own code).
pub fn sha256sum(dir: &std::path::Path, args: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("sha256sum {args}"))
        .current_dir(dir)
        .output()
        .expect("sha256sum runs");
    assert!(out.status.success(), "sha256sum {args}");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_string()
}
