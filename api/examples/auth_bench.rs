//! What authentication costs per request: the API's router driven in-process (no sockets), on
//! a route that does nothing after the middleware (an unknown path: 401 or 404), so the
//! difference between the runs is the middleware. Runs, in one process against this machine's
//! PostgreSQL and Redis:
//!   A. keys not in force (open: the middleware looks up whether keys exist, cached);
//!   B. a valid key, no rate limit (digest + cached key record);
//!   C. a valid key with a rate limit (B + the GCRA script in Redis: one round trip).
//!
//!   bash bench/auth.sh   (configured through ORFEAS__… like `orfeas api`)

// A bench program reports on stdout.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use orfeas_shared::auth::{self, KeyLimits, RateLimit};
use orfeas_shared::db::Db;
use orfeas_vocab::Scope;
use tower::ServiceExt;

const N: usize = 20_000;

async fn run(router: &axum::Router, key: Option<&str>) -> (Duration, Duration, u16) {
    let mut times = Vec::with_capacity(N);
    let mut status = 0;
    for _ in 0..N {
        let mut req = Request::get("/bench/none");
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        let req = req.body(Body::empty()).expect("request");
        let t = Instant::now();
        let resp = router.clone().oneshot(req).await.expect("infallible");
        times.push(t.elapsed());
        status = resp.status().as_u16();
    }
    times.sort();
    (times[N / 2], times[N * 99 / 100], status)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = orfeas_shared::Config::from_env(None)?;
    Db::migrate(&config.database.url).await?;
    let db = Db::connect_lazy(&config.database.url, 4)?;

    let state = orfeas_api::build_state(config.clone()).await?;
    let open = orfeas_api::router(state);
    let (a50, a99, a_status) = run(&open, None).await;

    let plain = auth::generate()?;
    db.insert_key(&plain, "bench", Scope::Jobs, &KeyLimits::default())
        .await?;
    let limited = auth::generate()?;
    let limits = KeyLimits {
        rate: Some(RateLimit {
            count: 1_000_000,
            period: Duration::from_secs(1),
        }),
        ..KeyLimits::default()
    };
    db.insert_key(&limited, "bench-limited", Scope::Jobs, &limits)
        .await?;
    let state = orfeas_api::build_state(config).await?;
    let keyed = orfeas_api::router(state);
    let (b50, b99, b_status) = run(&keyed, Some(&plain.token)).await;
    let (c50, c99, c_status) = run(&keyed, Some(&limited.token)).await;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("{N} sequential requests each, in-process router, unknown route:");
    println!(
        "  A open (no keys)            p50 {:7.1} µs  p99 {:7.1} µs  ({a_status})",
        us(a50),
        us(a99)
    );
    println!(
        "  B key                       p50 {:7.1} µs  p99 {:7.1} µs  ({b_status})",
        us(b50),
        us(b99)
    );
    println!(
        "  C key + rate limit (Redis)  p50 {:7.1} µs  p99 {:7.1} µs  ({c_status})",
        us(c50),
        us(c99)
    );
    println!(
        "  added by auth: {:.1} µs at p50; by auth + rate limit: {:.1} µs at p50",
        us(b50) - us(a50),
        us(c50) - us(a50)
    );
    Ok(())
}
