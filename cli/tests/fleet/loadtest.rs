//! `orfeas loadtest`, the real binary, against a fleet on the real services (the API and one
//! inflate worker): its JSON report must agree with what the fleet recorded, thresholds must
//! pass and fail as the figures say, and a bad threshold must stop it before any load.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use orfeas_vocab::Stage;
use serde_json::Value;

use crate::env::{TestEnv, services_shared};
use crate::validate::repo;

/// Small, quick jobs: the test is about the measurement, not the engine.
const OPTIONS: &str = r#"{"octree_resolution": 64, "formats": ["stl"]}"#;

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("loadtest")
        .join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// Runs `orfeas loadtest` with `args` (the API and the images given here) to its end.
async fn loadtest(api: &str, args: &[&str]) -> Output {
    let samples = repo().join("samples");
    tokio::process::Command::new(env!("CARGO_BIN_EXE_orfeas"))
        .arg("loadtest")
        .args(["--api", api, "--images"])
        .arg(&samples)
        .args(["--options", OPTIONS, "--quiet"])
        .args(args)
        .env_remove("ORFEAS_API_KEY")
        .env_remove("ORFEAS_API_URL")
        .output()
        .await
        .expect("run orfeas loadtest")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("report written"))
        .expect("report is JSON")
}

fn count(report: &Value, name: &str) -> u64 {
    report["counts"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("counts.{name}: {}", report["counts"]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_report_holds_the_fleets_own_figures_and_thresholds_pass() {
    let _services = services_shared().await;
    let env = TestEnv::new("e2e_loadtest").await;
    let api = env.start_api().await;
    let worker = env.start_worker().await;
    let dir = scratch("pass");
    let json = dir.join("report.json");
    let markdown = dir.join("report.md");
    let out = loadtest(
        &api.base,
        &[
            "--rate",
            "3/s",
            "--duration",
            "4s",
            "--seed",
            "11",
            "--drain-timeout",
            "60s",
            "--threshold",
            "error_rate<0.01",
            "--threshold",
            "e2e_p99<60s",
            "--threshold",
            "submit_p95 < 10s",
            "--json",
            json.to_str().expect("path"),
            "--markdown",
            markdown.to_str().expect("path"),
        ],
    )
    .await;
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&out.stderr)
    );
    for t in ["error_rate<0.01", "e2e_p99<60s", "submit_p95<10s"] {
        assert!(
            stdout.contains(&format!("PASS {t}: actual ")),
            "{t}:\n{stdout}"
        );
    }
    let report = read_json(&json);

    // Every arrival sent, accepted and ended as a success, none dropped or left behind.
    let sent = count(&report, "sent");
    assert!(sent > 0, "{report}");
    assert_eq!(count(&report, "arrivals"), sent);
    for same in ["accepted", "completed", "succeeded"] {
        assert_eq!(count(&report, same), sent, "{same}: {}", report["counts"]);
    }
    for none in [
        "dropped",
        "refused",
        "no_answer",
        "failed",
        "lost",
        "unfinished",
    ] {
        assert_eq!(count(&report, none), 0, "{none}: {}", report["counts"]);
    }

    // Each job's figures against the fleet's own records: the job ended succeeded, its
    // end-to-end time covers its queue wait and run time, and the run time covers the stages
    // the worker recorded in the ledger.
    let db = env.db();
    let jobs = report["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len() as u64, sent);
    for j in jobs {
        let id = j["id"].as_str().expect("job id");
        let (status, view) = api.get(&format!("/api/jobs/{id}")).await;
        assert_eq!((status, view["status"].as_str()), (200, Some("succeeded")));
        let secs = |k: &str| j[k].as_f64().unwrap_or_else(|| panic!("{k}: {j}"));
        let (e2e, wait, run) = (secs("e2e_s"), secs("queue_wait_s"), secs("run_s"));
        assert!(e2e >= run && wait >= 0.0, "{j}");
        // Microsecond timestamps: allow their rounding.
        assert!(e2e + 1e-3 >= wait + run, "{j}");
        let stages = db
            .stage_records(id.parse().expect("id"))
            .await
            .expect("stage rows");
        let staged: f64 = stages.iter().map(|s| s.duration_seconds).sum();
        assert!(
            staged > 0.0 && staged <= run + 1e-3,
            "{staged} > {run}: {j}"
        );
        let batch = j["batch_size"].as_i64().expect("batch size");
        assert!(
            stages.iter().all(|s| i64::from(s.batch_size) == batch),
            "{j}"
        );
    }

    // The summaries are over those jobs.
    let lat = &report["latency_s"];
    for series in ["e2e", "queue_wait", "run", "submit"] {
        let s = &lat[series];
        assert_eq!(s["count"].as_u64(), Some(sent), "{series}: {s}");
        let f = |k: &str| s[k].as_f64().unwrap_or(f64::NAN);
        assert!(
            f("min") <= f("p50")
                && f("p50") <= f("p90")
                && f("p90") <= f("p99")
                && f("p99") <= f("max"),
            "{series}: {s}"
        );
    }
    assert!(lat["e2e"]["max"].as_f64() >= lat["run"]["max"].as_f64());
    let stage_names: Vec<&str> = report["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| {
            assert_eq!(s["count"].as_u64(), Some(sent), "{s}");
            assert!(s["avg_s"].as_f64().is_some_and(|a| a > 0.0), "{s}");
            s["stage"].as_str().expect("stage")
        })
        .collect();
    assert_eq!(stage_names, Stage::NAMES, "every stage, in pipeline order");
    let batched: u64 = report["batch_sizes"]
        .as_object()
        .expect("batch sizes")
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(batched, sent);
    assert!(
        report["throughput"]["completed_per_s"]
            .as_f64()
            .is_some_and(|r| r > 0.0)
    );
    assert!(
        report["thresholds"]
            .as_array()
            .expect("verdicts")
            .iter()
            .all(|v| v["pass"] == true)
    );
    let md = std::fs::read_to_string(&markdown).expect("markdown written");
    assert!(
        md.contains("## Latency") && md.contains("`shape_generation`"),
        "{md}"
    );

    worker.stop().await;
    api.stop().await;
    env.cleanup().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_threshold_the_run_misses_fails_it_by_name() {
    let _services = services_shared().await;
    let env = TestEnv::new("e2e_loadtest_fail").await;
    let api = env.start_api().await;
    let worker = env.start_worker().await;
    let dir = scratch("fail");
    let json = dir.join("report.json");
    // No job runs in a microsecond; every job ends, so the error rate holds.
    let out = loadtest(
        &api.base,
        &[
            "--rate",
            "2",
            "--duration",
            "2s",
            "--seed",
            "5",
            "--threshold",
            "run_max<1us",
            "--threshold",
            "error_rate<=0%",
            "--json",
            json.to_str().expect("path"),
        ],
    )
    .await;
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("PASS ") || l.starts_with("FAIL "))
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with("FAIL run_max<1us: actual "),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("PASS error_rate<=0%: actual "),
        "{lines:?}"
    );
    let report = read_json(&json);
    let verdicts = report["thresholds"].as_array().expect("verdicts");
    assert_eq!(verdicts[0]["threshold"], "run_max<1us");
    assert_eq!(verdicts[0]["pass"], false);
    assert_eq!(verdicts[0]["actual"], report["latency_s"]["run"]["max"]);

    worker.stop().await;
    api.stop().await;
    env.cleanup().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_bad_threshold_is_a_usage_error_before_any_request() {
    // Nothing listens on the discard port: a request would fail differently.
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        loadtest(
            "http://127.0.0.1:9",
            &[
                "--rate",
                "1",
                "--duration",
                "1s",
                "--threshold",
                "e2e_p95<30",
            ],
        ),
    )
    .await
    .expect("exits at once");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("e2e_p95<30") && stderr.contains("needs a unit"),
        "{stderr}"
    );
    assert!(!stderr.contains("does not answer"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refusals_and_jobs_left_waiting_are_counted_as_the_api_answered() {
    let _services = services_shared().await;
    // A queue that takes two jobs and no worker: the API answers 429 once it sees them
    // waiting, and what it accepted never runs.
    let env = TestEnv::with(
        "e2e_loadtest_full",
        &[("ORFEAS__API__MAX_QUEUED_JOBS", "2")],
    )
    .await;
    let api = env.start_api().await;
    let dir = scratch("full");
    let json = dir.join("report.json");
    let out = loadtest(
        &api.base,
        &[
            "--rate",
            "10",
            "--duration",
            "2s",
            "--drain-timeout",
            "1s",
            "--threshold",
            "throttled_rate<0.01",
            "--json",
            json.to_str().expect("path"),
        ],
    )
    .await;
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("FAIL throttled_rate<0.01: actual "),
        "{stdout}"
    );
    let report = read_json(&json);
    let (sent, accepted) = (count(&report, "sent"), count(&report, "accepted"));
    assert_eq!(count(&report, "arrivals"), sent);
    assert!(
        accepted >= 1 && count(&report, "refused_429") >= 1,
        "{}",
        report["counts"]
    );
    assert_eq!(accepted + count(&report, "refused"), sent);
    assert_eq!(count(&report, "unfinished"), accepted, "none ran");
    assert_eq!(count(&report, "completed"), 0);
    let refused = report["refused"].as_array().expect("refusals");
    assert!(
        refused.iter().any(|r| r["status"] == 429
            && r["code"] == "too_many_jobs"
            && r["retry_after"].as_array().is_some_and(|v| !v.is_empty())),
        "{refused:?}"
    );
    // What the API holds: exactly the accepted jobs, all still waiting.
    let (status, list) = api.get("/api/jobs?limit=100").await;
    assert_eq!(status, 200);
    let jobs = list["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len() as u64, accepted);
    assert!(jobs.iter().all(|j| j["status"] == "queued"), "{list}");

    api.stop().await;
    env.cleanup().await;
    let _ = std::fs::remove_dir_all(dir);
}
