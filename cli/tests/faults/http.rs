//! Clients that stall, and methods no client should send, cost the API nothing lasting: stalled
//! uploads and slow headers are dropped within the configured time while `/healthz` answers, and
//! junk methods add no label set to `/metrics`.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::env::{TestEnv, services_exclusive};
use crate::fast_reliability;

/// Reads until the server closes the connection or answers; `None` if it does neither in time.
async fn outcome(mut s: tokio::net::TcpStream, within: Duration) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(within, s.read(&mut buf)).await {
        Ok(Ok(0)) => Some("closed".into()),
        Ok(Ok(n)) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Ok(Err(e)) => Some(format!("reset: {e}")),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stalled_clients_are_dropped_while_the_api_answers() {
    let _services = services_exclusive().await;
    let mut settings = fast_reliability();
    settings.extend([
        ("ORFEAS__API__HEADER_TIMEOUT_MS", "1000"),
        ("ORFEAS__API__BODY_TIMEOUT_MS", "1500"),
    ]);
    let env = TestEnv::with("stalls", &settings).await;
    let api = env.start_api().await;
    let addr = api.base.trim_start_matches("http://").to_owned();
    let mut slow_headers = Vec::new();
    let mut stalled_bodies = Vec::new();
    for _ in 0..16 {
        let mut s = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        s.write_all(b"POST /api/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form")
            .await
            .expect("partial head");
        slow_headers.push(s);
        let mut s = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        let head = format!(
            "POST /api/jobs HTTP/1.1\r\nHost: {addr}\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 10000000\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"x.png\"\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await.expect("head");
        s.write_all(b"\x89PNG\r\n\x1a\n").await.expect("signature");
        s.write_all(&vec![0u8; 64 * 1024]).await.expect("some body");
        stalled_bodies.push(s);
    }
    let started = Instant::now();
    // The API keeps answering meanwhile.
    for _ in 0..5 {
        assert_eq!(api.get("/healthz").await.0, 200);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for s in slow_headers {
        let got = outcome(s, Duration::from_secs(5)).await;
        assert!(got.is_some(), "a slow-header client was kept open");
    }
    for s in stalled_bodies {
        let got = outcome(s, Duration::from_secs(5)).await;
        let got = got.expect("a stalled upload was kept open");
        assert!(
            got == "closed" || got.starts_with("reset") || got.starts_with("HTTP/1.1 408"),
            "{got}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(api.get("/healthz").await.0, 200);
    api.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn junk_methods_add_no_label_sets() {
    let _services = services_exclusive().await;
    let env = TestEnv::with("junk_methods", &fast_reliability()).await;
    let api = env.start_api().await;
    let series = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("orfeas_http_requests_total{"))
            .count()
    };
    let scrape = || async {
        api.client
            .get(&api.metrics_url)
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("text")
    };
    let before = series(&scrape().await);
    for i in 0..100 {
        let method = reqwest::Method::from_bytes(format!("JUNK{i}").as_bytes()).expect("method");
        let _ = api
            .client
            .request(method, api.url("/api/jobs"))
            .send()
            .await
            .expect("send");
        let _ = api
            .client
            .request(
                reqwest::Method::from_bytes(b"BREW").expect("method"),
                api.url(&format!("/no/such/route/{i}")),
            )
            .send()
            .await
            .expect("send");
    }
    let text = scrape().await;
    let after = series(&text);
    assert!(
        after <= before + 3,
        "{before} → {after} series:\n{}",
        text.lines()
            .filter(|l| l.starts_with("orfeas_http_requests_total{"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(!text.contains("JUNK"), "raw methods are not label values");
    api.stop().await;
    env.cleanup().await;
}
