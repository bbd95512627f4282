//! API keys end to end: every route's answer from one table (no key, wrong key, revoked key,
//! another owner's key, the owner's, an admin's), share links and browser sessions, deleting a
//! job's files, the security default, and per-key rate limits and quotas enforced across two
//! real `orfeas api` processes.

use std::io::BufRead;

use chrono::Timelike;
use object_store::ObjectStoreExt;
use std::time::Duration;

use orfeas_shared::auth::{self, KeyLimits, RateLimit};
use orfeas_shared::db::Db;
use orfeas_vocab::Scope;
use reqwest::Method;

use crate::env::{Api, TestEnv, id_of, sample, services_shared};

const T: Duration = Duration::from_secs(60);

async fn make_key(db: &Db, name: &str, scope: Scope, limits: KeyLimits) -> String {
    let key = auth::generate().expect("random");
    db.insert_key(&key, name, scope, &limits)
        .await
        .expect("key");
    key.token
}

async fn call(
    api: &Api,
    method: Method,
    path: &str,
    key: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut req = api.client.request(method, api.url(path));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

async fn submit_as(api: &Api, key: &str) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
    let form = reqwest::multipart::Form::new().part(
        "image",
        reqwest::multipart::Part::bytes(sample("star.png")).file_name("star.png"),
    );
    let resp = api
        .client
        .post(api.url("/api/jobs"))
        .bearer_auth(key)
        .multipart(form)
        .send()
        .await
        .expect("submit");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, resp.json().await.unwrap_or_default(), headers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_route_answers_by_one_table() {
    let _services = services_shared().await;
    let env = TestEnv::with("auth_table", &[("ORFEAS__API__KEY_CACHE_MS", "100")]).await;
    let api = env.start_api().await;
    // Without any key, the loopback API is open (the README's quick start).
    let (s, _) = call(&api, Method::GET, "/api/jobs", None).await;
    assert_eq!(s, 200);

    let db = env.db();
    let alice = make_key(&db, "alice", Scope::Jobs, KeyLimits::default()).await;
    let bob = make_key(&db, "bob", Scope::Jobs, KeyLimits::default()).await;
    let admin = make_key(&db, "ops", Scope::Admin, KeyLimits::default()).await;
    let revoked = make_key(&db, "gone", Scope::Jobs, KeyLimits::default()).await;
    db.revoke_key("gone")
        .await
        .expect("revoke")
        .expect("revoked");
    // A key of the right shape that was never issued.
    let wrong = {
        let mut w = alice.clone();
        let last = w.pop().expect("char");
        w.push(if last == 'x' { 'y' } else { 'x' });
        w
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    let worker = env.start_worker().await;
    let (s, job, _) = submit_as(&api, &alice).await;
    assert_eq!(s, 202, "{job}");
    let id = id_of(&job);
    let start = std::time::Instant::now();
    loop {
        let (_, j) = call(&api, Method::GET, &format!("/api/jobs/{id}"), Some(&alice)).await;
        if j["status"] == "succeeded" {
            break;
        }
        assert!(start.elapsed() < T, "{j}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.stop().await;

    // method, path, then the status for: no key, wrong key, revoked, other owner, owner, admin.
    let job = format!("/api/jobs/{id}");
    let table: Vec<(Method, String, [u16; 6])> = vec![
        (Method::GET, "/healthz".into(), [200; 6]),
        (Method::GET, "/openapi.json".into(), [200; 6]),
        (
            Method::GET,
            "/api/jobs".into(),
            [401, 401, 401, 200, 200, 200],
        ),
        (Method::GET, job.clone(), [401, 401, 401, 404, 200, 200]),
        (
            Method::GET,
            format!("{job}/outputs/glb"),
            [401, 401, 401, 404, 200, 200],
        ),
        (
            Method::GET,
            format!("{job}/events"),
            [401, 401, 401, 404, 200, 200],
        ),
        (
            Method::POST,
            format!("{job}/cancel"),
            [401, 401, 401, 404, 409, 409],
        ),
        (
            Method::POST,
            format!("{job}/share"),
            [401, 401, 401, 404, 201, 201],
        ),
        (
            Method::GET,
            format!("/api/events?jobs={id}"),
            [401, 401, 401, 404, 200, 200],
        ),
        (
            Method::GET,
            "/api/me".into(),
            [401, 401, 401, 200, 200, 200],
        ),
        (
            Method::GET,
            "/api/workers".into(),
            [401, 401, 401, 403, 403, 200],
        ),
        (
            Method::GET,
            "/api/performance/summary".into(),
            [401, 401, 401, 403, 403, 200],
        ),
        (
            Method::GET,
            "/api/performance/recommendations".into(),
            [401, 401, 401, 403, 403, 200],
        ),
        (
            Method::GET,
            "/api/gpu/status".into(),
            [401, 401, 401, 403, 403, 200],
        ),
        (
            Method::GET,
            "/no/such/route".into(),
            [401, 401, 401, 404, 404, 404],
        ),
    ];
    let callers = [
        None,
        Some(wrong.as_str()),
        Some(revoked.as_str()),
        Some(bob.as_str()),
        Some(alice.as_str()),
        Some(admin.as_str()),
    ];
    let names = [
        "no key",
        "wrong key",
        "revoked",
        "other owner",
        "owner",
        "admin",
    ];
    for (method, path, expected) in &table {
        for ((caller, name), want) in callers.iter().zip(names).zip(expected) {
            let (got, body) = call(&api, method.clone(), path, *caller).await;
            assert_eq!(got, *want, "{method} {path} as {name}: {body}");
            if got == 401 {
                assert_eq!(body["error"]["code"], "unauthorized", "{body}");
            }
            if got == 403 {
                assert_eq!(body["error"]["code"], "forbidden", "{body}");
            }
        }
    }
    // Lists are scoped: bob sees none of alice's jobs, the admin sees them.
    let (_, bobs) = call(&api, Method::GET, "/api/jobs", Some(&bob)).await;
    assert_eq!(bobs["jobs"].as_array().map(Vec::len), Some(0));
    let (_, all) = call(&api, Method::GET, "/api/jobs", Some(&admin)).await;
    assert_eq!(all["jobs"][0]["id"], id);

    // A share link reads its job, events and outputs without a key, and nothing else.
    let (_, links) = call(
        &api,
        Method::POST,
        &format!("{job}/share?ttl_s=60"),
        Some(&alice),
    )
    .await;
    for path in [
        links["job"].as_str(),
        links["events"].as_str(),
        links["outputs"][0].as_str(),
    ] {
        let (s, body) = call(&api, Method::GET, path.expect("link"), None).await;
        assert_eq!(s, 200, "{path:?}: {body}");
    }
    let token = links["token"].as_str().expect("token");
    let (s, _) = call(&api, Method::GET, &format!("/api/jobs?token={token}"), None).await;
    assert_eq!(s, 403);
    let (s, _) = call(
        &api,
        Method::POST,
        &format!("{job}/cancel?token={token}"),
        None,
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = call(&api, Method::GET, &format!("{job}?token={token}x"), None).await;
    assert_eq!(s, 401, "an altered link");

    // A browser session: the cookie authenticates reads; a change needs our own Origin.
    let resp = api
        .client
        .post(api.url("/api/session"))
        .bearer_auth(&alice)
        .send()
        .await
        .expect("session");
    assert_eq!(resp.status(), 201);
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().expect("pair").to_owned();
    let with_cookie = |m: Method, p: &str| {
        api.client
            .request(m, api.url(p))
            .header("cookie", pair.clone())
    };
    assert_eq!(
        with_cookie(Method::GET, &job)
            .send()
            .await
            .expect("get")
            .status(),
        200
    );
    let host = api.base.trim_start_matches("http://").to_owned();
    let cross = with_cookie(Method::POST, &format!("{job}/cancel"))
        .header("origin", "http://evil.example")
        .send()
        .await
        .expect("post");
    assert_eq!(cross.status(), 403);
    let bare = with_cookie(Method::POST, &format!("{job}/cancel"))
        .send()
        .await
        .expect("post");
    assert_eq!(bare.status(), 403, "a change without Origin");
    let same = with_cookie(Method::POST, &format!("{job}/cancel"))
        .header("origin", format!("http://{host}"))
        .send()
        .await
        .expect("post");
    assert_eq!(same.status(), 409, "passes auth, then: already finished");

    // Deleting: only the owner; the files go, the job answers 410 with what remains.
    let (s, _) = call(&api, Method::DELETE, &job, Some(&bob)).await;
    assert_eq!(s, 404);
    let (s, gone) = call(&api, Method::DELETE, &job, Some(&alice)).await;
    assert_eq!(s, 200, "{gone}");
    let (s, view) = call(&api, Method::GET, &job, Some(&alice)).await;
    assert_eq!(s, 410, "{view}");
    assert_eq!(view["status"], "succeeded");
    assert!(
        view["deleted_at"].is_string() && view["outputs"].as_array().is_some_and(Vec::is_empty)
    );
    assert!(!view["timings"].as_array().expect("timings").is_empty());
    let (s, _) = call(
        &api,
        Method::GET,
        &format!("{job}/outputs/glb"),
        Some(&alice),
    )
    .await;
    assert_eq!(s, 410);
    let record = db
        .get_job(id.parse().expect("id"))
        .await
        .expect("db")
        .expect("job");
    let store = orfeas_shared::storage::build(&env.config.storage).expect("store");
    let input = store
        .head(&object_store::path::Path::from(record.input_key.as_str()))
        .await;
    assert!(
        matches!(input, Err(object_store::Error::NotFound { .. })),
        "{input:?}"
    );

    api.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_public_listener_without_keys_refuses_to_start() {
    let _services = services_shared().await;
    let env = TestEnv::with("auth_default", &[("ORFEAS__API__LISTEN", "0.0.0.0:0")]).await;
    let refused = orfeas_api::build_state(env.config.clone()).await;
    let err = refused.expect_err("refused").to_string();
    assert!(err.contains("api.auth"), "{err}");
    let mut open = env.config.clone();
    open.api.auth = orfeas_shared::config::AuthMode::Disabled;
    assert!(orfeas_api::build_state(open).await.is_ok());
    make_key(&env.db(), "k", Scope::Jobs, KeyLimits::default()).await;
    assert!(
        orfeas_api::build_state(env.config.clone()).await.is_ok(),
        "a key exists"
    );
    env.cleanup().await;
}

/// A real `orfeas api` process on a free port; returns it and its base URL.
fn spawn_api(env: &TestEnv) -> (std::process::Child, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_orfeas"))
        .arg("api")
        .envs(env.vars.iter().cloned())
        .env("ORFEAS__API__LISTEN", "127.0.0.1:0")
        .env("ORFEAS__API__METRICS_LISTEN", "off")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn orfeas api");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = std::io::BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the API logs where it listens")
            .expect("line");
        if line.contains("API listening") {
            let at = line.find("addr=").expect("addr") + 5;
            break line[at..]
                .split_whitespace()
                .next()
                .expect("addr")
                .to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, format!("http://{addr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limits_and_quotas_hold_across_two_api_processes() {
    let _services = services_shared().await;
    let env = TestEnv::new("auth_limits").await;
    let db = env.db();
    let limited = make_key(
        &db,
        "limited",
        Scope::Jobs,
        KeyLimits {
            rate: Some(RateLimit {
                count: 10,
                period: Duration::from_secs(60),
            }),
            ..KeyLimits::default()
        },
    )
    .await;
    let quota = make_key(
        &db,
        "quota",
        Scope::Jobs,
        KeyLimits {
            max_concurrent: Some(3),
            ..KeyLimits::default()
        },
    )
    .await;
    let daily = make_key(
        &db,
        "daily",
        Scope::Jobs,
        KeyLimits {
            quota_daily: Some(2),
            ..KeyLimits::default()
        },
    )
    .await;
    let (mut a, base_a) = spawn_api(&env);
    let (mut b, base_b) = spawn_api(&env);
    let client = reqwest::Client::new();

    // 30 requests at once, half to each process: exactly the allowance of 10 gets through.
    let requests = (0..30).map(|i| {
        let url = format!("{}/api/me", if i % 2 == 0 { &base_a } else { &base_b });
        let req = client.get(url).bearer_auth(&limited);
        async move { req.send().await.expect("request") }
    });
    let answers = futures::future::join_all(requests).await;
    let ok: Vec<_> = answers.iter().filter(|r| r.status() == 200).collect();
    let limited_answers: Vec<_> = answers.iter().filter(|r| r.status() == 429).collect();
    assert_eq!((ok.len(), limited_answers.len()), (10, 20));
    for r in &ok {
        assert_eq!(r.headers()["ratelimit-policy"], "\"key\";q=10;w=60");
        assert!(
            r.headers()["ratelimit"]
                .to_str()
                .expect("header")
                .starts_with("\"key\";r=")
        );
    }
    for r in &limited_answers {
        let retry: u64 = r.headers()["retry-after"]
            .to_str()
            .expect("h")
            .parse()
            .expect("secs");
        assert!((1..=6).contains(&retry), "one request per 6 s: {retry}");
        assert!(
            r.headers()["ratelimit"]
                .to_str()
                .expect("h")
                .starts_with("\"key\";r=0;")
        );
    }

    // 12 submissions at once to both processes with 3 allowed at once: exactly 3 accepted.
    let image = sample("star.png");
    let submits = (0..12).map(|i| {
        let url = format!("{}/api/jobs", if i % 2 == 0 { &base_a } else { &base_b });
        let form = reqwest::multipart::Form::new().part(
            "image",
            reqwest::multipart::Part::bytes(image.clone()).file_name("star.png"),
        );
        let req = client.post(url).bearer_auth(&quota).multipart(form);
        async move { req.send().await.expect("submit") }
    });
    let answers = futures::future::join_all(submits).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        9,
        "{statuses:?}"
    );
    let me: serde_json::Value = client
        .get(format!("{base_a}/api/me"))
        .bearer_auth(&quota)
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert_eq!(me["usage"]["active_jobs"], 3, "{me}");
    assert_eq!(me["limits"]["max_concurrent"], 3);

    // The daily quota: the third of the day is refused until midnight UTC.
    for expected in [202, 202, 429] {
        let form = reqwest::multipart::Form::new().part(
            "image",
            reqwest::multipart::Part::bytes(image.clone()).file_name("star.png"),
        );
        let r = client
            .post(format!("{base_b}/api/jobs"))
            .bearer_auth(&daily)
            .multipart(form)
            .send()
            .await
            .expect("submit");
        assert_eq!(r.status().as_u16(), expected);
        if expected == 429 {
            let retry: i64 = r.headers()["retry-after"]
                .to_str()
                .expect("h")
                .parse()
                .expect("secs");
            let now = chrono::Utc::now();
            let to_midnight = 86_400 - i64::from(now.time().num_seconds_from_midnight());
            assert!((retry - to_midnight).abs() <= 5, "{retry} vs {to_midnight}");
            let body: serde_json::Value = r.json().await.expect("json");
            assert_eq!(body["error"]["code"], "quota_exceeded");
        }
    }
    let _ = a.kill();
    let _ = b.kill();
    let _ = a.wait();
    let _ = b.wait();
    env.cleanup().await;
}
