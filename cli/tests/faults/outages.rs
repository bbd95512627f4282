//! An object-store outage longer than the jobs' attempts would survive, but shorter than the
//! outage budget: every job waits it out and succeeds.

use std::process::{Child, Command};
use std::time::Duration;

use orfeas_shared::config::StorageConfig;

use crate::env::{TestEnv, id_of, sample, services_exclusive};
use crate::fast_reliability;

/// A second s3s-fs over the test server's root, on its own port, that this test stops and
/// starts: a real outage of the store the fleet under test uses.
struct Store {
    bin: String,
    root: String,
    port: u16,
    child: Option<Child>,
}

impl Store {
    fn start(&mut self) {
        let child = Command::new(&self.bin)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--access-key",
                &std::env::var("ORFEAS_TEST_S3_ACCESS_KEY").unwrap_or_default(),
                "--secret-key",
                &std::env::var("ORFEAS_TEST_S3_SECRET_KEY").unwrap_or_default(),
            ])
            .arg(&self.root)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("s3s-fs starts");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("s3s-fs did not listen on {}", self.port);
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_object_store_outage_within_the_budget_loses_no_job() {
    let _services = services_exclusive().await;
    let (Ok(bin), Ok(root)) = (
        std::env::var("ORFEAS_TEST_S3_BIN"),
        std::env::var("ORFEAS_TEST_S3_ROOT"),
    ) else {
        eprintln!("skipped: needs the S3 test server's binary (run scripts/test.sh)");
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut store = Store {
        bin,
        root,
        port,
        child: None,
    };
    store.start();
    let mut settings = fast_reliability();
    settings.extend([
        ("ORFEAS__WORKER__MAX_ATTEMPTS", "2"),
        ("ORFEAS__WORKER__RETRY_BASE_MS", "100"),
        ("ORFEAS__WORKER__RETRY_MAX_MS", "800"),
        ("ORFEAS__WORKER__OUTAGE_BUDGET_S", "120"),
        ("ORFEAS__STORAGE__REQUEST_TIMEOUT_MS", "1000"),
    ]);
    let mut env = TestEnv::with("s3_outage", &settings).await;
    if let StorageConfig::S3 { endpoint, .. } = &mut env.config.storage {
        *endpoint = Some(format!("http://127.0.0.1:{port}"));
    } else {
        eprintln!("skipped: needs the S3 test server (run scripts/test.sh)");
        env.cleanup().await;
        return;
    }
    let api = env.start_api().await;
    let worker = env.start_worker().await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        let (status, job) = api
            .submit(
                &sample("star.png"),
                Some(r#"{"octree_resolution": 96}"#),
                None,
            )
            .await;
        assert_eq!(status, 202, "{job}");
        ids.push(id_of(&job));
    }
    // The store goes away while the jobs are queued and running, for much longer than two
    // attempts' retries take (100–800 ms backoffs): every job meets it more than twice.
    store.stop();
    tokio::time::sleep(Duration::from_secs(8)).await;
    store.start();
    for id in &ids {
        let end = api.wait_terminal(id, Duration::from_secs(90)).await;
        assert_eq!(end["status"], "succeeded", "{end}");
    }
    let (_, some) = api.get(&format!("/api/jobs/{}", ids[0])).await;
    assert!(
        some["attempt"].as_i64().unwrap_or(0) > 2,
        "the outage outlasted worker.max_attempts tries: {some}"
    );
    worker.stop().await;
    api.stop().await;
    env.cleanup().await;
}
