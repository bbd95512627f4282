//! The Grafana dashboards (`deploy/grafana/dashboards/`) and the Prometheus rules
//! (`deploy/prometheus/rules/`) proven on a live Prometheus — Debian's `prometheus` binary —
//! scraping a real test fleet: the API, two workers, a third worker whose object store and Redis
//! are unreachable, and RabbitMQ's prometheus plugin. The fleet runs ordinary jobs and the rarer
//! conditions the panels and alerts exist for (input failures, a dead-lettered unreadable
//! message, retries during a storage outage, a job refused as too large for its device, a worker
//! that consumes without heartbeats); then every panel query, with the dashboard variables
//! substituted as Grafana would, must parse and return data, every Ledger query must return rows,
//! the "slowest stage" panel must say what `GET /api/performance/summary` says, and every rule
//! must be loaded, healthy and read series that exist.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt;
use orfeas_shared::Config;
use orfeas_shared::db::MemoryFigure;
use orfeas_shared::queue::{self, Topology};
use orfeas_vocab::{Device, Engine, Workload};
use serde_json::Value;
use sqlx::Row;

use crate::env::{TestEnv, id_of, sample, services_shared};
use crate::validate::repo;

const T: Duration = Duration::from_secs(60);
/// RabbitMQ's prometheus plugin, on the broker the tests use.
const RABBITMQ_EXPORTER: &str = "127.0.0.1:15692";
/// What the harness substitutes for Grafana's interval variables: `$__rate_interval` is four
/// scrape intervals at the 15 s that production Prometheus uses; the test's 1 s scrapes put
/// many samples in it.
const RATE_INTERVAL: &str = "1m";
const INTERVAL: &str = "15s";

fn required() -> bool {
    ["ORFEAS_REQUIRE_VALIDATORS", "ORFEAS_REQUIRE_SERVICES"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|v| v == "1"))
}

/// Debian's `prometheus` on PATH.
fn prometheus_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("prometheus"))
        .find(|p| p.is_file())
}

/// The one scenario: building a fleet and a Prometheus costs most of the time, so every check
/// shares them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dashboards_and_rules_evaluate_on_a_live_fleet() {
    let Some(binary) = prometheus_binary() else {
        assert!(
            !required(),
            "prometheus is not installed: apt-get install -y --no-install-recommends prometheus"
        );
        eprintln!("skipped: no prometheus binary (apt-get install prometheus)");
        return;
    };
    let http = reqwest::Client::new();
    let exporter =
        format!("http://{RABBITMQ_EXPORTER}/metrics/detailed?family=queue_coarse_metrics");
    if !http
        .get(&exporter)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            !required(),
            "RabbitMQ's prometheus plugin does not answer on {RABBITMQ_EXPORTER}: \
             rabbitmq-plugins enable rabbitmq_prometheus"
        );
        eprintln!(
            "skipped: RabbitMQ's prometheus plugin is off (rabbitmq-plugins enable rabbitmq_prometheus)"
        );
        return;
    }
    let _services = services_shared().await;
    let started = Utc::now();
    let clock = Instant::now();
    let env = TestEnv::with(
        "dashboards",
        &[
            ("ORFEAS__WORKER__BATCH_SIZE", "4"),
            ("ORFEAS__WORKER__BATCH_WAIT_MS", "100"),
            ("ORFEAS__API__MAX_CONCURRENT_UPLOADS", "1"),
        ],
    )
    .await;
    let fleet = Fleet::start(&env).await;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("dashboards")
        .join(&env.name);
    let prom = Prometheus::start(&binary, &dir, &fleet).await;
    eprintln!(
        "fleet and Prometheus up after {:.1} s",
        clock.elapsed().as_secs_f64()
    );

    // Two rounds: a counter's first sample is its first value, so a rate only moves once the
    // series existed at an earlier scrape; the second round makes every rate non-zero.
    for round in 1..=2 {
        fleet.round(&env, round).await;
        eprintln!(
            "round {round} done after {:.1} s",
            clock.elapsed().as_secs_f64()
        );
        if round == 1 {
            tokio::time::sleep(Duration::from_millis(2500)).await;
        }
    }
    fleet.conditions_hold(&prom).await;

    let boards = Dashboards::load();
    let ctx = Context {
        from: started - chrono::Duration::seconds(60),
    };
    // Rule evaluation and the last scrapes trail the work by a second or two: retry the whole
    // check for a few seconds before calling a failure one.
    let deadline = Instant::now() + Duration::from_secs(15);
    let report = loop {
        let report = check_everything(&prom, &env, &boards, &ctx).await;
        if report.failures.is_empty() || Instant::now() > deadline {
            break report;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    for line in &report.lines {
        eprintln!("{line}");
    }
    assert!(
        report.failures.is_empty(),
        "{} failures (Prometheus's configuration and log are in {}):\n{}",
        report.failures.len(),
        dir.display(),
        report.failures.join("\n")
    );
    slowest_stage_matches_the_summary(&fleet.api, &env, &boards, &ctx).await;
    a_misspelt_metric_fails(&prom, &boards, &ctx).await;
    eprintln!(
        "dashboards and rules proven in {:.1} s",
        clock.elapsed().as_secs_f64()
    );

    drop(prom);
    let _ = std::fs::remove_dir_all(&dir);
    fleet.stop(&env).await;
    env.cleanup().await;
}

/// The API, two workers, and the constrained worker with the API that feeds it.
struct Fleet {
    api: crate::env::Api,
    api_metrics: String,
    workers: Vec<crate::env::InProcessWorker>,
    /// The second API publishes to the constrained worker's own queue, so only the jobs meant
    /// for it reach it.
    constrained_api: String,
    constrained_api_stop: tokio::sync::oneshot::Sender<()>,
    constrained_queue: String,
    client: reqwest::Client,
}

fn host_port(url: &str) -> String {
    url.trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The test's settings with some replaced; `drop` removes a whole family first (the storage
/// settings of another kind would be unknown keys).
fn overridden(
    base: &[(String, String)],
    with: &[(&str, &str)],
    drop: &str,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = base
        .iter()
        .filter(|(k, _)| !k.starts_with(drop) && !with.iter().any(|(w, _)| w == k))
        .cloned()
        .collect();
    out.extend(with.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    out
}

impl Fleet {
    async fn start(env: &TestEnv) -> Fleet {
        let api = env.start_api().await;
        let mut workers = Vec::new();
        for id in ["w1", "w2"] {
            let mut cfg = env.config.clone();
            // Two workers in one process would share `<host>-<pid>` as their id, hence one
            // heartbeat and one lease owner.
            cfg.worker.id = Some(id.into());
            workers.push(env.start_worker_with(cfg).await);
        }
        // The constrained worker's memory model says a resolution-512 job needs a petabyte, so
        // the optimizer refuses it as it would a job too large for a real device; its figure
        // is in the ledger before it starts, because a worker loads the model once.
        env.db()
            .save_memory_figure(&MemoryFigure {
                workload: Workload::Shape(Engine::Inflate),
                resolution_bucket: 512,
                device: Device::Cpu,
                bytes_per_job: 1 << 50,
                samples: 1,
            })
            .await
            .expect("memory figure");
        let constrained_queue = format!("{}.constrained", env.config.amqp.queue);
        let vars = overridden(
            &env.vars,
            &[
                ("ORFEAS__AMQP__QUEUE", constrained_queue.as_str()),
                ("ORFEAS__WORKER__ID", "w-constrained"),
                // Nothing listens on port 1: every read of the store is an outage, and no
                // heartbeat is ever written.
                ("ORFEAS__STORAGE__KIND", "s3"),
                ("ORFEAS__STORAGE__BUCKET", "unreachable"),
                ("ORFEAS__STORAGE__ENDPOINT", "http://127.0.0.1:1"),
                ("ORFEAS__STORAGE__ALLOW_HTTP", "true"),
                ("ORFEAS__STORAGE__ACCESS_KEY_ID", "k"),
                ("ORFEAS__STORAGE__SECRET_ACCESS_KEY", "s"),
                ("ORFEAS__STORAGE__REQUEST_TIMEOUT_MS", "300"),
                ("ORFEAS__REDIS__URL", "redis://127.0.0.1:1/"),
                ("ORFEAS__WORKER__OUTAGE_BUDGET_S", "1"),
            ],
            "ORFEAS__STORAGE__",
        );
        let api_vars = overridden(
            &env.vars,
            &[("ORFEAS__AMQP__QUEUE", constrained_queue.as_str())],
            "ORFEAS__AMQP__QUEUE",
        );
        let cfg = Config::load(None, vars).expect("constrained worker configuration");
        workers.push(env.start_worker_with(cfg).await);
        let api_cfg = Config::load(None, api_vars).expect("second API configuration");
        let state = orfeas_api::build_state(api_cfg).await.expect("second API");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let constrained_api = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = orfeas_api::serve(state, listener, async move {
                let _ = rx.await;
            })
            .await;
        });
        Fleet {
            api_metrics: api.metrics_url.clone(),
            api,
            workers,
            constrained_api,
            constrained_api_stop: stop,
            constrained_queue,
            client: reqwest::Client::new(),
        }
    }

    fn worker_targets(&self) -> Vec<String> {
        self.workers
            .iter()
            .map(|w| host_port(&w.metrics_url))
            .collect()
    }

    async fn submit_constrained(&self, image: &[u8], options: &str) -> String {
        let form = reqwest::multipart::Form::new()
            .part(
                "image",
                reqwest::multipart::Part::bytes(image.to_vec()).file_name("input.png"),
            )
            .text("options", options.to_owned());
        let resp = self
            .client
            .post(format!("{}/api/jobs", self.constrained_api))
            .multipart(form)
            .send()
            .await
            .expect("submit");
        assert_eq!(resp.status().as_u16(), 202);
        id_of(&resp.json::<Value>().await.expect("job"))
    }

    /// One round of work: successes at three resolutions, two kinds of input failure, a
    /// rejected submission, an unknown job, an unreadable queue message, a storage outage with
    /// its retries, and a job too large for its worker's device.
    async fn round(&self, env: &TestEnv, round: u32) {
        let api = &self.api;
        let mut ids = Vec::new();
        for (image, options) in [
            ("star.png", r#"{"octree_resolution": 128}"#),
            ("apple.jpg", r#"{"octree_resolution": 192}"#),
            ("vase.png", r#"{"octree_resolution": 256}"#),
            (
                "star.png",
                r#"{"octree_resolution": 128, "formats": ["stl"]}"#,
            ),
        ] {
            let (status, job) = api.submit(&sample(image), Some(options), None).await;
            assert_eq!(status, 202, "{job}");
            ids.push((id_of(&job), "succeeded", ""));
        }
        // A uniform image has no object in it: no_foreground in image_preprocessing.
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
        let (_, job) = api.submit(&grey, None, None).await;
        ids.push((id_of(&job), "failed", "no_foreground"));
        // A PNG cut short: accepted by its signature, truncated_image in image_loading.
        let star = sample("star.png");
        let (_, job) = api.submit(&star[..star.len() / 3], None, None).await;
        ids.push((id_of(&job), "failed", "truncated_image"));
        // Refused at the door: a 422 for the API's 4xx panels.
        let (status, _) = api
            .submit(&star, Some(r#"{"octree_resolution": 9999}"#), None)
            .await;
        assert_eq!(status, 422);
        let (status, _) = api
            .get("/api/jobs/01900000-0000-7000-8000-000000000000")
            .await;
        assert_eq!(status, 404);
        // Uploads beyond api.max_concurrent_uploads (1 here) are shed with 503: the API's only
        // 5xx that needs no broken dependency.
        // A slow upload holds the one slot: half its body, then the rest once released.
        let spawn_slow = || {
            let (release, held) = tokio::sync::oneshot::channel::<()>();
            let client = api.client.clone();
            let url = api.url("/api/jobs");
            let (head, tail) = star.split_at(star.len() / 2);
            let (head, tail) = (head.to_vec(), tail.to_vec());
            let task = tokio::spawn(async move {
                let body = futures::stream::iter([Ok::<_, std::io::Error>(head)]).chain(
                    futures::stream::once(async move {
                        let _ = held.await;
                        Ok(tail)
                    }),
                );
                let part = reqwest::multipart::Part::stream(reqwest::Body::wrap_stream(body))
                    .file_name("input.png");
                let form = reqwest::multipart::Form::new()
                    .part("image", part)
                    .text("options", r#"{"octree_resolution": 128}"#);
                client.post(url).multipart(form).send().await
            });
            (release, task)
        };
        let (mut release, mut slow) = spawn_slow();
        // Generous: the worker is baking the jobs above on the same two cores.
        let shed_by = Instant::now() + Duration::from_secs(30);
        loop {
            // The slow upload can lose the race for the slot to a probe below and be shed
            // itself; it is then sent again.
            if slow.is_finished() {
                let lost = slow.await.expect("slow upload task").expect("slow upload");
                assert_eq!(lost.status().as_u16(), 503, "the slow upload ended early");
                (release, slow) = spawn_slow();
            }
            // Invalid options: refused with 422 if it got an upload slot, so no job is made.
            let (status, body) = api
                .submit(&star, Some(r#"{"octree_resolution": 9999}"#), None)
                .await;
            if status == 503 {
                assert_eq!(body["error"]["code"], "too_many_uploads", "{body}");
                break;
            }
            assert!(
                Instant::now() < shed_by,
                "no upload was shed: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = release.send(());
        let resp = slow.await.expect("slow upload task").expect("slow upload");
        assert_eq!(resp.status().as_u16(), 202);
        ids.push((
            id_of(&resp.json::<Value>().await.expect("job")),
            "succeeded",
            "",
        ));
        // A message no worker can read: dead-lettered with malformed_message.
        let conn = queue::connect(&env.config.amqp.url).await.expect("amqp");
        let ch = conn.create_channel().await.expect("channel");
        ch.confirm_select(lapin::options::ConfirmSelectOptions::default())
            .await
            .expect("confirms");
        queue::publish_confirmed(
            &ch,
            &env.config.amqp.queue,
            format!("not a job message (round {round})").as_bytes(),
            queue::properties(0, Default::default()),
        )
        .await
        .expect("publish");
        let _ = conn.close(200, "done".into()).await;
        // The constrained worker: its store is down (retries, then storage_unavailable once
        // worker.outage_budget_s has passed), and a resolution-512 job does not fit at all.
        let outage = self
            .submit_constrained(&star, r#"{"octree_resolution": 64}"#)
            .await;
        let too_large = self
            .submit_constrained(&star, r#"{"octree_resolution": 512}"#)
            .await;
        ids.push((outage, "failed", "storage_unavailable"));
        ids.push((too_large, "failed", "insufficient_memory"));
        for (id, status, code) in ids {
            let end = api.wait_terminal(&id, T).await;
            assert_eq!(end["status"], status, "{end}");
            if !code.is_empty() {
                assert_eq!(end["error"]["code"], code, "{end}");
            }
        }
    }

    /// The rare conditions really happened, as the workers' own counters and the API's gauges
    /// say (so a panel that shows them is not showing zeros).
    async fn conditions_hold(&self, prom: &Prometheus) {
        let checks = [
            (
                "a retry during a storage outage",
                r#"sum(orfeas_job_retries_total{error_code="storage_unavailable"})"#,
            ),
            (
                "jobs failed for their input",
                r#"sum(orfeas_jobs_finished_total{status="failed", error_code=~"no_foreground|truncated_image"})"#,
            ),
            (
                "jobs failed for the fleet",
                r#"sum(orfeas_jobs_finished_total{status="failed", error_code=~"storage_unavailable|insufficient_memory"})"#,
            ),
            (
                "a job refused as too large",
                r#"sum(orfeas_optimizer_decisions_total{outcome="does_not_fit"})"#,
            ),
            (
                "dead letters",
                r#"sum(orfeas_queue_depth{queue=~".+\\.dlq"})"#,
            ),
            (
                "a worker consuming without heartbeats",
                r#"sum(orfeas_worker_up == 1 unless on (instance, job) orfeas_worker_heartbeats_total > 0)"#,
            ),
            (
                "4xx answers",
                r#"sum(orfeas_http_requests_total{status=~"4.."})"#,
            ),
            (
                "5xx answers (uploads shed)",
                r#"sum(orfeas_http_requests_total{status="503"})"#,
            ),
        ];
        let deadline = Instant::now() + Duration::from_secs(10);
        for (what, q) in checks {
            loop {
                let v = prom.instant(q).await.ok().and_then(|r| first_value(&r));
                if v.is_some_and(|v| v > 0.0) {
                    eprintln!("condition: {what} ({q} = {})", v.unwrap_or_default());
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{what} never showed: {q} = {v:?}"
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }

    async fn stop(self, env: &TestEnv) {
        let _ = self.constrained_api_stop.send(());
        for w in self.workers {
            w.stop().await;
        }
        self.api.stop().await;
        if let Ok(conn) = queue::connect(&env.config.amqp.url).await
            && let Ok(ch) = conn.create_channel().await
        {
            let w = &env.config.worker;
            let base =
                Topology::new(&self.constrained_queue).with_retry_levels(w.retry_base, w.retry_max);
            for name in Engine::ALL
                .into_iter()
                .flat_map(|e| base.of_engine(e).queues())
            {
                let _ = ch
                    .queue_delete(
                        name.as_str().into(),
                        lapin::options::QueueDeleteOptions::default(),
                    )
                    .await;
            }
            let _ = conn.close(200, "done".into()).await;
        }
    }
}

/// Debian's Prometheus, scraping the fleet every second and evaluating the project's rule
/// files every second; killed when dropped.
struct Prometheus {
    child: Child,
    base: String,
    client: reqwest::Client,
    started: DateTime<Utc>,
    dir: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The scrape jobs, named as in `deploy/prometheus/prometheus-local.yml`: the rules read
/// `up{job="orfeas-api"}`.
fn config_yaml(fleet: &Fleet, rules: &Path, port: u16) -> String {
    let list = |targets: &[String]| {
        targets
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - '{rules}/*.yml'\n\
         scrape_configs:\n\
         \x20 - job_name: orfeas-api\n    static_configs:\n      - targets: [{api}]\n\
         \x20 - job_name: orfeas-worker\n    static_configs:\n      - targets: [{workers}]\n\
         \x20 - job_name: rabbitmq-detailed\n    metrics_path: /metrics/detailed\n\
         \x20   params:\n      family: [queue_coarse_metrics, queue_consumer_count]\n\
         \x20   static_configs:\n      - targets: ['{RABBITMQ_EXPORTER}']\n\
         \x20 - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n",
        rules = rules.display(),
        api = list(&[host_port(&fleet.api_metrics)]),
        workers = list(&fleet.worker_targets()),
    )
}

impl Prometheus {
    async fn start(binary: &Path, dir: &Path, fleet: &Fleet) -> Prometheus {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).expect("prometheus directory");
        let rules = repo().join("deploy/prometheus/rules");
        let port = free_port();
        let config = config_yaml(fleet, &rules, port);
        let local = std::fs::read_to_string(repo().join("deploy/prometheus/prometheus-local.yml"))
            .expect("prometheus-local.yml");
        for job in ["orfeas-api", "orfeas-worker", "rabbitmq-detailed"] {
            assert!(
                local.contains(&format!("- job_name: {job}\n")),
                "prometheus-local.yml has no scrape job {job}: the harness would prove another configuration"
            );
        }
        std::fs::write(dir.join("prometheus.yml"), &config).expect("config");
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("log");
        let child = Command::new(binary)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let prom = Prometheus {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
            started: Utc::now(),
            dir: dir.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = prom
                .client
                .get(format!("{}/-/ready", prom.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus did not become ready: {}",
                prom.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Every target scraped, and every rule evaluated at least once, before any work: the
        // first samples of the counters are then their values at rest.
        loop {
            let targets = prom.get("/api/v1/targets?state=active").await;
            let active = targets["data"]["activeTargets"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let down: Vec<String> = active
                .iter()
                .filter(|t| t["health"] != "up")
                .map(|t| {
                    format!(
                        "{} {} ({})",
                        t["labels"]["job"], t["scrapeUrl"], t["lastError"]
                    )
                })
                .collect();
            let rules = prom.get("/api/v1/rules").await;
            let unevaluated = rule_list(&rules)
                .iter()
                .filter(|r| r["health"] == "unknown")
                .count();
            if active.len() == 3 + fleet.workers.len() && down.is_empty() && unevaluated == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "targets not all up ({} active): {down:?}; {unevaluated} rules not evaluated",
                active.len()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        prom
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    async fn get(&self, path: &str) -> Value {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("prometheus answers")
            .json()
            .await
            .expect("json")
    }

    async fn api(&self, path: &str, params: &[(&str, String)]) -> Result<Value, String> {
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let body: Value = self
            .client
            .get(format!("{}{path}?{}", self.base, query.join("&")))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        if body["status"] == "success" {
            Ok(body["data"].clone())
        } else {
            Err(format!("{}: {}", body["errorType"], body["error"]))
        }
    }

    async fn instant(&self, q: &str) -> Result<Value, String> {
        self.api("/api/v1/query", &[("query", q.to_owned())]).await
    }

    async fn range(&self, q: &str) -> Result<Value, String> {
        let now = Utc::now().timestamp();
        self.api(
            "/api/v1/query_range",
            &[
                ("query", q.to_owned()),
                ("start", self.started.timestamp().to_string()),
                ("end", now.to_string()),
                ("step", "1".into()),
            ],
        )
        .await
    }

    /// `label_values(selector, label)`, as Grafana's Prometheus variable query answers it.
    async fn label_values(&self, selector: &str, label: &str) -> Result<Vec<String>, String> {
        let data = self
            .api(
                "/api/v1/series",
                &[
                    ("match[]", selector.to_owned()),
                    ("start", self.started.timestamp().to_string()),
                ],
            )
            .await?;
        let values: BTreeSet<String> = data
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s[label].as_str().map(str::to_owned))
            .collect();
        Ok(values.into_iter().collect())
    }
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn rule_list(rules: &Value) -> Vec<Value> {
    rules["data"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// Every sample value of a query result (vector, matrix or scalar).
fn sample_values(data: &Value) -> Vec<f64> {
    let parse = |v: &Value| v[1].as_str().and_then(|s| s.parse::<f64>().ok());
    match data["resultType"].as_str() {
        Some("vector") => data["result"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| parse(&s["value"]))
            .collect(),
        Some("matrix") => data["result"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["values"].as_array().cloned().unwrap_or_default())
            .filter_map(|v| parse(&v))
            .collect(),
        Some("scalar") => parse(&data["result"]).into_iter().collect(),
        _ => Vec::new(),
    }
}

fn series_count(data: &Value) -> usize {
    match data["resultType"].as_str() {
        Some("scalar") => 1,
        _ => data["result"].as_array().map_or(0, Vec::len),
    }
}

fn first_value(data: &Value) -> Option<f64> {
    sample_values(data).into_iter().find(|v| v.is_finite())
}

// ---------------------------------------------------------------------------------------------
// PromQL, read just enough to check it: the vector selectors an expression reads, and its
// threshold comparisons made non-filtering.

const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "atan2",
    "inf",
    "nan",
];

/// Skips a quoted string starting at `i`; returns the index after it.
fn skip_string(c: &[char], mut i: usize) -> usize {
    let quote = c[i];
    i += 1;
    while i < c.len() && c[i] != quote {
        if c[i] == '\\' && quote != '`' {
            i += 1;
        }
        i += 1;
    }
    i + 1
}

/// Skips a balanced `open … close` starting at `i` (strings inside respected).
fn skip_group(c: &[char], mut i: usize, open: char, close: char) -> usize {
    let mut depth = 0;
    while i < c.len() {
        match c[i] {
            '"' | '\'' | '`' => {
                i = skip_string(c, i);
                continue;
            }
            x if x == open => depth += 1,
            x if x == close => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    i
}

fn ident_start(ch: char) -> bool {
    ch.is_ascii_alphabetic() || ch == '_' || ch == ':'
}

fn ident_char(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || ch == '_' || ch == ':'
}

fn next_non_space(c: &[char], mut i: usize) -> usize {
    while i < c.len() && c[i].is_whitespace() {
        i += 1;
    }
    i
}

/// The vector selectors of an expression (`name{matchers}` or `{matchers}`), without their
/// ranges and offsets.
fn selectors(expr: &str) -> Vec<String> {
    let c: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if matches!(ch, '"' | '\'' | '`') {
            i = skip_string(&c, i);
        } else if ch == '[' {
            i = skip_group(&c, i, '[', ']');
        } else if ch == '{' {
            let end = skip_group(&c, i, '{', '}');
            out.push(c[i..end].iter().collect());
            i = end;
        } else if ch.is_ascii_digit() || ch == '.' {
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '.') {
                i += 1;
            }
        } else if ident_start(ch) {
            let start = i;
            while i < c.len() && ident_char(c[i]) {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let next = next_non_space(&c, i);
            let lower = word.to_ascii_lowercase();
            if matches!(
                lower.as_str(),
                "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
            ) {
                if next < c.len() && c[next] == '(' {
                    i = skip_group(&c, next, '(', ')');
                }
            } else if AGGREGATIONS.contains(&lower.as_str()) || KEYWORDS.contains(&lower.as_str()) {
                // An operator: what it applies to is read on.
            } else if next < c.len() && c[next] == '(' {
                // A function call: its arguments are read on.
            } else if next < c.len() && c[next] == '{' {
                let end = skip_group(&c, next, '{', '}');
                let matchers: String = c[next..end].iter().collect();
                out.push(format!("{word}{matchers}"));
                i = end;
            } else {
                out.push(word);
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The expression with its comparisons made non-filtering (`> 0.05` → `> bool 0.05`: every
/// matched series stays, valued 0 or 1) and its `offset`s removed: what is left asks whether
/// the series exist and match as the expression joins them, not whether the alert's condition
/// holds or a day of history exists.
fn stripped(expr: &str) -> String {
    let c: Vec<char> = expr.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if matches!(ch, '"' | '\'' | '`') {
            let end = skip_string(&c, i);
            out.extend(&c[i..end.min(c.len())]);
            i = end;
        } else if ch == '{' || ch == '[' {
            let close = if ch == '{' { '}' } else { ']' };
            let end = skip_group(&c, i, ch, close);
            out.extend(&c[i..end.min(c.len())]);
            i = end;
        } else if matches!(ch, '>' | '<' | '=' | '!') {
            let two = c.get(i + 1) == Some(&'=');
            let op: String = c[i..i + if two { 2 } else { 1 }].iter().collect();
            out.push_str(&op);
            i += op.len();
            let next = next_non_space(&c, i);
            let already: String = c[next..(next + 4).min(c.len())].iter().collect();
            if already != "bool" {
                out.push_str(" bool");
            }
        } else if ident_start(ch) {
            let start = i;
            while i < c.len() && ident_char(c[i]) {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            if word == "offset" {
                // The duration after it.
                i = next_non_space(&c, i);
                while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '-') {
                    i += 1;
                }
                while out.ends_with(' ') {
                    out.pop();
                }
            } else {
                out.push_str(&word);
            }
        } else {
            out.push(ch);
            i += 1;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The dashboards, and Grafana's variable substitution.

struct Dashboards {
    boards: Vec<(String, Value)>,
}

/// A query of a panel or a variable.
struct Query {
    board: String,
    panel: String,
    kind: QueryKind,
    text: String,
    instant: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum QueryKind {
    Prometheus,
    Ledger,
}

/// The datasources the provisioning creates: `(type, uid)`.
fn provisioned_datasources() -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(
        repo().join("deploy/grafana/provisioning/datasources/datasources.yml"),
    )
    .expect("datasources.yml");
    let mut out = BTreeSet::new();
    let mut kind = None;
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("    type: ") {
            kind = Some(t.trim().to_owned());
        } else if let Some(u) = line.strip_prefix("    uid: ") {
            out.insert((kind.take().expect("type before uid"), u.trim().to_owned()));
        }
    }
    out
}

fn all_panels(board: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for p in board["panels"].as_array().into_iter().flatten() {
        out.push(p.clone());
        for inner in p["panels"].as_array().into_iter().flatten() {
            out.push(inner.clone());
        }
    }
    out
}

impl Dashboards {
    /// Every dashboard file, checked for what Grafana needs to load it as provisioned.
    fn load() -> Dashboards {
        let dir = repo().join("deploy/grafana/dashboards");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("dashboards folder")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        assert!(files.len() >= 4, "dashboards: {files:?}");
        let sources = provisioned_datasources();
        let mut uids = BTreeSet::new();
        let mut boards = Vec::new();
        for file in files {
            let name = file
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let board: Value = serde_json::from_str(&std::fs::read_to_string(&file).expect("read"))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                board["schemaVersion"].as_u64().unwrap_or(0) >= 39,
                "{name}: schemaVersion"
            );
            let uid = board["uid"].as_str().unwrap_or_default().to_owned();
            assert!(
                !uid.is_empty() && uids.insert(uid.clone()),
                "{name}: uid {uid}"
            );
            assert!(board["title"].as_str().is_some_and(|t| !t.is_empty()));
            let check_source = |ds: &Value, what: &str| {
                let pair = (
                    ds["type"].as_str().unwrap_or_default().to_owned(),
                    ds["uid"].as_str().unwrap_or_default().to_owned(),
                );
                assert!(
                    sources.contains(&pair),
                    "{name}: {what} names datasource {ds}, not one of {sources:?}"
                );
            };
            let variables: BTreeSet<String> = board["templating"]["list"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| {
                    check_source(&v["datasource"], "a variable");
                    v["name"].as_str().expect("variable name").to_owned()
                })
                .collect();
            let mut ids = BTreeSet::new();
            for p in all_panels(&board) {
                let title = p["title"].as_str().unwrap_or_default();
                assert!(
                    ids.insert(p["id"].as_u64().expect("panel id")),
                    "{name}: ids"
                );
                assert!(
                    p["gridPos"]["w"].as_u64().is_some(),
                    "{name}: {title} gridPos"
                );
                if p["type"] == "row" {
                    continue;
                }
                check_source(&p["datasource"], title);
                let targets = p["targets"].as_array().cloned().unwrap_or_default();
                assert!(!targets.is_empty(), "{name}: {title} has no query");
                for t in targets {
                    assert!(
                        t["datasource"].is_null() || t["datasource"] == p["datasource"],
                        "{name}: {title}: a query on another datasource than its panel's"
                    );
                    let text = t["expr"].as_str().or(t["rawSql"].as_str()).unwrap_or("");
                    for var in referenced_variables(text) {
                        assert!(
                            var.starts_with("__") || variables.contains(&var),
                            "{name}: {title} uses ${var}, which the dashboard does not define"
                        );
                    }
                }
            }
            boards.push((name, board));
        }
        Dashboards { boards }
    }

    fn queries(&self) -> Vec<Query> {
        let mut out = Vec::new();
        for (name, board) in &self.boards {
            for p in all_panels(board) {
                if p["type"] == "row" {
                    continue;
                }
                let kind = if p["datasource"]["type"] == "prometheus" {
                    QueryKind::Prometheus
                } else {
                    QueryKind::Ledger
                };
                for t in p["targets"].as_array().into_iter().flatten() {
                    let text = t["expr"].as_str().or(t["rawSql"].as_str()).unwrap_or("");
                    out.push(Query {
                        board: name.clone(),
                        panel: format!(
                            "{} #{}",
                            p["title"].as_str().unwrap_or_default(),
                            t["refId"].as_str().unwrap_or_default()
                        ),
                        kind,
                        text: text.to_owned(),
                        instant: t["instant"] == true,
                    });
                }
            }
        }
        out
    }
}

/// `$name`, `${name}` and `${name:format}` in a query.
fn referenced_variables(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let c: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < c.len() {
        if c[i] == '$' {
            let braced = c.get(i + 1) == Some(&'{');
            let mut j = i + 1 + usize::from(braced);
            let start = j;
            while j < c.len() && (c[j].is_ascii_alphanumeric() || c[j] == '_') {
                j += 1;
            }
            out.push(c[start..j].iter().collect());
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// The values each dashboard variable takes on the live fleet, and the time range.
struct Context {
    from: DateTime<Utc>,
}

#[derive(Clone, Debug)]
struct Variable {
    values: Vec<String>,
    multi: bool,
}

fn regex_escape(v: &str) -> String {
    let mut out = String::new();
    for ch in v.chars() {
        if "\\^$.|?*+()[]{}'".contains(ch) {
            // Inside a PromQL string: two characters, the regex's backslash escaped.
            out.push_str("\\\\");
        }
        out.push(ch);
    }
    out
}

/// Grafana's interpolation: multi-value variables as a regex alternation in PromQL (escaped as
/// Grafana escapes them) and as a quoted list in SQL, time macros as literals.
fn interpolate(
    text: &str,
    kind: QueryKind,
    vars: &BTreeMap<String, Variable>,
    ctx: &Context,
) -> Result<String, String> {
    let from = ctx.from.to_rfc3339_opts(SecondsFormat::Secs, true);
    let to =
        (Utc::now() + chrono::Duration::seconds(60)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let range_s = (Utc::now() - ctx.from).num_seconds().max(60);
    let c: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < c.len() {
        if c[i] != '$' {
            out.push(c[i]);
            i += 1;
            continue;
        }
        let braced = c.get(i + 1) == Some(&'{');
        let mut j = i + 1 + usize::from(braced);
        let start = j;
        while j < c.len() && (c[j].is_ascii_alphanumeric() || c[j] == '_') {
            j += 1;
        }
        let name: String = c[start..j].iter().collect();
        if braced {
            // `${name:format}`: the formats the dashboards use are the defaults.
            while j < c.len() && c[j] != '}' {
                j += 1;
            }
            j += 1;
        }
        let args = |j: usize| -> Result<(Vec<String>, usize), String> {
            if c.get(j) != Some(&'(') {
                return Err(format!("${name} without arguments"));
            }
            let end = skip_group(&c, j, '(', ')');
            let inner: String = c[j + 1..end - 1].iter().collect();
            Ok((inner.split(',').map(|a| a.trim().to_owned()).collect(), end))
        };
        let replacement = match (name.as_str(), kind) {
            ("__rate_interval", QueryKind::Prometheus) => RATE_INTERVAL.to_owned(),
            ("__interval", QueryKind::Prometheus) => INTERVAL.to_owned(),
            ("__range", QueryKind::Prometheus) => format!("{range_s}s"),
            ("__timeFilter", QueryKind::Ledger) => {
                let (a, end) = args(j)?;
                j = end;
                format!("{} BETWEEN '{from}' AND '{to}'", a[0])
            }
            ("__timeFrom", QueryKind::Ledger) => {
                j = args(j)?.1;
                format!("'{from}'")
            }
            ("__timeTo", QueryKind::Ledger) => {
                j = args(j)?.1;
                format!("'{to}'")
            }
            ("__timeGroupAlias", QueryKind::Ledger) => {
                let (a, end) = args(j)?;
                j = end;
                let interval = a.get(1).map(|s| s.trim_matches('\'')).unwrap_or("1m");
                let secs = parse_interval(interval)?;
                format!(
                    "floor(extract(epoch from {})/{secs})*{secs} AS \"time\"",
                    a[0]
                )
            }
            _ => {
                let v = vars
                    .get(&name)
                    .ok_or_else(|| format!("unknown variable ${name}"))?;
                match kind {
                    QueryKind::Prometheus if v.multi => format!(
                        "({})",
                        v.values
                            .iter()
                            .map(|s| regex_escape(s))
                            .collect::<Vec<_>>()
                            .join("|")
                    ),
                    QueryKind::Prometheus => v.values[0].clone(),
                    QueryKind::Ledger => v
                        .values
                        .iter()
                        .map(|s| format!("'{}'", s.replace('\'', "''")))
                        .collect::<Vec<_>>()
                        .join(","),
                }
            }
        };
        out.push_str(&replacement);
        i = j;
    }
    Ok(out)
}

fn parse_interval(s: &str) -> Result<u64, String> {
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: u64 = n.parse().map_err(|_| format!("interval {s}"))?;
    Ok(n * match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("interval {s}")),
    })
}

/// Each board's variables, resolved in order (later ones may use earlier ones), as Grafana
/// resolves `label_values(selector, label)`.
async fn resolve_variables(
    prom: &Prometheus,
    board: &Value,
    ctx: &Context,
) -> Result<BTreeMap<String, Variable>, String> {
    let mut vars = BTreeMap::new();
    for v in board["templating"]["list"].as_array().into_iter().flatten() {
        let name = v["name"].as_str().unwrap_or_default().to_owned();
        let query = v["query"]["query"]
            .as_str()
            .or(v["query"].as_str())
            .unwrap_or_default();
        let query = interpolate(query, QueryKind::Prometheus, &vars, ctx)?;
        let inner = query
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            .ok_or_else(|| format!("${name}: not label_values(…): {query}"))?;
        let (selector, label) = inner
            .rsplit_once(',')
            .ok_or_else(|| format!("${name}: {query}"))?;
        let mut values = prom.label_values(selector.trim(), label.trim()).await?;
        if values.is_empty() {
            return Err(format!("${name}: {query} finds no values"));
        }
        let multi = v["multi"] == true || v["includeAll"] == true;
        if !multi {
            // The saved selection when it exists, as Grafana keeps it.
            let current = v["current"]["value"].as_str().unwrap_or_default();
            if values.iter().any(|x| x == current) {
                values = vec![current.to_owned()];
            }
        }
        vars.insert(name, Variable { values, multi });
    }
    Ok(vars)
}

// ---------------------------------------------------------------------------------------------
// The checks.

#[derive(Default)]
struct Report {
    lines: Vec<String>,
    failures: Vec<String>,
}

/// A Prometheus query parses, returns at least one finite value, and each selector in it finds
/// series (so a misspelt name in one branch of an `or` is caught too).
async fn check_promql(prom: &Prometheus, q: &str, instant: bool) -> Result<usize, String> {
    let data = if instant {
        prom.instant(q).await?
    } else {
        prom.range(q).await?
    };
    if !sample_values(&data).iter().any(|v| v.is_finite()) {
        return Err("no data".into());
    }
    for s in selectors(q) {
        let found = prom.instant(&s).await?;
        if series_count(&found) == 0 {
            return Err(format!("selector {s} finds no series"));
        }
    }
    Ok(series_count(&data))
}

async fn run_sql(env: &TestEnv, sql: &str) -> Result<Vec<sqlx::postgres::PgRow>, String> {
    let db = env.db();
    // As Grafana's reader login runs it: read-only, bounded.
    let mut tx = db.pool().begin().await.map_err(|e| e.to_string())?;
    sqlx::query("SET TRANSACTION READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(|e| e.to_string())?;
    sqlx::query("SET LOCAL statement_timeout = '30s'")
        .execute(&mut *tx)
        .await
        .map_err(|e| e.to_string())?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| e.to_string())?;
    let _ = tx.rollback().await;
    Ok(rows)
}

async fn check_everything(
    prom: &Prometheus,
    env: &TestEnv,
    boards: &Dashboards,
    ctx: &Context,
) -> Report {
    let mut report = Report::default();
    let mut vars_by_board = BTreeMap::new();
    for (name, board) in &boards.boards {
        match resolve_variables(prom, board, ctx).await {
            Ok(vars) => {
                for (k, v) in &vars {
                    report
                        .lines
                        .push(format!("{name}: ${k} = {}", v.values.join(", ")));
                }
                vars_by_board.insert(name.clone(), vars);
            }
            Err(e) => report.failures.push(format!("{name}: {e}")),
        }
    }
    for q in boards.queries() {
        let Some(vars) = vars_by_board.get(&q.board) else {
            continue;
        };
        let label = format!("{}: {}", q.board, q.panel);
        let text = match interpolate(&q.text, q.kind, vars, ctx) {
            Ok(t) => t,
            Err(e) => {
                report.failures.push(format!("{label}: {e}"));
                continue;
            }
        };
        let result = match q.kind {
            QueryKind::Prometheus => check_promql(prom, &text, q.instant)
                .await
                .map(|n| format!("{n} series")),
            QueryKind::Ledger => match run_sql(env, &text).await {
                Ok(rows) if rows.is_empty() => Err("no rows".into()),
                Ok(rows) => Ok(format!("{} rows", rows.len())),
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(what) => report.lines.push(format!("panel {label}: {what}")),
            Err(e) => report
                .failures
                .push(format!("panel {label}: {e}\n    {text}")),
        }
    }
    check_rules(prom, &mut report).await;
    report
}

/// The rule names the files declare: `(record or alert, name)`.
fn declared_rules() -> BTreeSet<(String, String)> {
    let dir = repo().join("deploy/prometheus/rules");
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(dir).expect("rules folder") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "yml") {
            continue;
        }
        for line in std::fs::read_to_string(&path).expect("rules").lines() {
            let line = line.trim_start();
            for kind in ["record", "alert"] {
                if let Some(name) = line.strip_prefix(&format!("- {kind}: ")) {
                    out.insert((kind.to_owned(), name.trim().to_owned()));
                }
            }
        }
    }
    out
}

/// Every rule of the files is loaded, has evaluated without error, and reads series that
/// exist. A recording rule must have written its series. An alert's expression either holds
/// now (its condition was produced) or, stripped of its thresholds and offsets, finds the
/// series it compares.
async fn check_rules(prom: &Prometheus, report: &mut Report) {
    let rules = rule_list(&prom.get("/api/v1/rules").await);
    let loaded: BTreeSet<(String, String)> = rules
        .iter()
        .map(|r| {
            let kind = if r["type"] == "recording" {
                "record"
            } else {
                "alert"
            };
            (
                kind.to_owned(),
                r["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let declared = declared_rules();
    if loaded != declared {
        report.failures.push(format!(
            "rules: the files declare {declared:?}, Prometheus loaded {loaded:?}"
        ));
    }
    for r in &rules {
        let name = r["name"].as_str().unwrap_or_default();
        let expr = r["query"].as_str().unwrap_or_default();
        if r["health"] != "ok" {
            report.failures.push(format!(
                "rule {name}: health {} {}",
                r["health"], r["lastError"]
            ));
            continue;
        }
        let mut missing = Vec::new();
        for s in selectors(&stripped(expr)) {
            match prom.instant(&s).await {
                Ok(d) if series_count(&d) > 0 => {}
                Ok(_) => missing.push(s),
                Err(e) => missing.push(format!("{s}: {e}")),
            }
        }
        if !missing.is_empty() {
            report
                .failures
                .push(format!("rule {name}: no series for {missing:?}"));
            continue;
        }
        if r["type"] == "recording" {
            let written = prom.instant(name).await;
            match written {
                Ok(d) if first_value(&d).is_some() => report.lines.push(format!(
                    "recording rule {name}: {} series",
                    series_count(&d)
                )),
                other => report.failures.push(format!(
                    "recording rule {name}: wrote no finite value ({other:?})"
                )),
            }
            continue;
        }
        let holds = prom.instant(expr).await;
        let verdict = match holds {
            Ok(d) if series_count(&d) > 0 => Ok(format!(
                "its condition holds now ({} series)",
                series_count(&d)
            )),
            Ok(_) => {
                let s = stripped(expr);
                match prom.instant(&s).await {
                    Ok(d) if series_count(&d) > 0 => Ok(format!(
                        "stripped of thresholds and offsets it finds {} series",
                        series_count(&d)
                    )),
                    Ok(_) => Err(format!("finds nothing, even stripped: {s}")),
                    Err(e) => Err(format!("stripped form fails: {e}: {s}")),
                }
            }
            Err(e) => Err(e),
        };
        match verdict {
            Ok(v) => report.lines.push(format!("alert {name}: {v}")),
            Err(e) => report.failures.push(format!("alert {name}: {e}")),
        }
    }
}

/// The "Slowest stage" panel reads the ledger as `GET /api/performance/summary` does: the
/// same stage, the same share.
async fn slowest_stage_matches_the_summary(
    api: &crate::env::Api,
    env: &TestEnv,
    boards: &Dashboards,
    ctx: &Context,
) {
    let (name, board) = boards
        .boards
        .iter()
        .find(|(_, b)| b["uid"] == "orfeas-pipeline")
        .expect("the pipeline dashboard");
    let panel = all_panels(board)
        .into_iter()
        .find(|p| p["title"] == "Slowest stage")
        .expect("a Slowest stage panel");
    let sql = panel["targets"][0]["rawSql"].as_str().expect("sql");
    let vars = BTreeMap::from([(
        "engine".to_owned(),
        Variable {
            values: Engine::NAMES.iter().map(|s| (*s).to_owned()).collect(),
            multi: true,
        },
    )]);
    let sql = interpolate(sql, QueryKind::Ledger, &vars, ctx).expect("interpolate");
    let rows = run_sql(env, &sql).await.expect("slowest stage");
    let stage: String = rows[0].try_get("stage").expect("stage");
    let share: f64 = rows[0].try_get("share_percent").expect("share");
    let (status, summary) = api.get("/api/performance/summary?window=1h").await;
    assert_eq!(status, 200, "{summary}");
    let top = summary["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .max_by(|a, b| {
            a["share_percent"]
                .as_f64()
                .unwrap_or(0.0)
                .total_cmp(&b["share_percent"].as_f64().unwrap_or(0.0))
        })
        .expect("a stage");
    assert_eq!(top["stage"], stage.as_str(), "{name}: {summary}");
    let expected = top["share_percent"].as_f64().expect("share");
    assert!(
        (share - expected).abs() < 0.011,
        "{name}: the panel says {stage} {share} %, the summary {expected} %"
    );
    eprintln!("Slowest stage: {stage} ({share} %), as /api/performance/summary says");
}

/// The harness can fail: a panel query with its metric name misspelt is reported.
async fn a_misspelt_metric_fails(prom: &Prometheus, boards: &Dashboards, ctx: &Context) {
    let q = boards
        .queries()
        .into_iter()
        .find(|q| q.kind == QueryKind::Prometheus && q.text.contains("orfeas_worker_info"))
        .expect("a panel joining orfeas_worker_info");
    let (_, board) = boards
        .boards
        .iter()
        .find(|(n, _)| *n == q.board)
        .expect("board");
    let vars = resolve_variables(prom, board, ctx)
        .await
        .expect("variables");
    let misspelt = q
        .text
        .replacen("orfeas_worker_info", "orfeas_worker_inf", 1);
    let text = interpolate(&misspelt, q.kind, &vars, ctx).expect("interpolate");
    let verdict = check_promql(prom, &text, q.instant).await;
    assert!(
        verdict.is_err(),
        "a misspelt metric in {} passed: {verdict:?}",
        q.panel
    );
    eprintln!(
        "negative control: {} with orfeas_worker_inf is rejected ({})",
        q.panel,
        verdict.err().unwrap_or_default()
    );
}

#[test]
fn promql_selectors_and_stripping() {
    let e = r#"sum by (engine, le) (rate(orfeas_queue_wait_seconds_bucket[5m]) * on (instance, job) group_left (engine) orfeas_worker_info{engine=~"a|b"}) > 0.05 and on (route) up{job="x"} offset 1d"#;
    assert_eq!(
        selectors(e),
        vec![
            "orfeas_queue_wait_seconds_bucket".to_owned(),
            r#"orfeas_worker_info{engine=~"a|b"}"#.to_owned(),
            r#"up{job="x"}"#.to_owned(),
        ]
    );
    assert_eq!(
        stripped(r#"a{x!="y"} > 0.05 and on (route) b == 0 unless c offset 1d"#),
        r#"a{x!="y"} > bool 0.05 and on (route) b == bool 0 unless c"#
    );
    assert_eq!(
        selectors(r#"absent(up{job="orfeas-api"}) or vector(0)"#),
        vec![r#"up{job="orfeas-api"}"#.to_owned()]
    );
    assert_eq!(regex_escape("127.0.0.1:9"), r"127\\.0\\.0\\.1:9");
}
