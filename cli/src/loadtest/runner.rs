//! The open-loop run: each arrival of the schedule is sent at its time whatever happened to
//! the ones before — a slow API does not slow the arrivals, which is what makes queueing
//! visible. An arrival that finds `--max-in-flight` jobs unfinished is dropped and counted, not
//! held back. After the load window, jobs still queued or running get `--drain-timeout` to end.
//!
//! The run is one thread (the command's runtime): on a machine shared with the fleet it
//! measures, the generator takes at most one core, and the lag of each request behind its
//! scheduled time is reported so a generator that fell behind shows up.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::args::Plan;
use super::collector::{Collector, Record};
use super::follow::{Ending, follow};
use super::progress::{self, Live};
use super::results::Results;
use super::schedule::Schedule;
use super::submit::{Answer, Submitter};
use crate::client::ApiClient;

/// How long connecting to the API may take before a submission counts as unanswered.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the run's tasks share.
#[derive(Debug, Clone)]
struct Ctx {
    submitter: Submitter,
    client: ApiClient,
    records: mpsc::UnboundedSender<Record>,
    live: Arc<Live>,
}

/// Counts a job in flight until dropped (also when its task is aborted at the drain timeout).
#[derive(Debug)]
struct InFlight(Arc<Live>);

impl InFlight {
    fn new(live: &Arc<Live>) -> InFlight {
        live.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(live.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Checks the API answers and takes the key before any load is sent; says on stderr what
/// limits the key has, since they shape the results.
async fn preflight(http: &reqwest::Client, plan: &Plan) -> anyhow::Result<()> {
    let mut req = http.get(format!("{}/api/me", plan.api));
    if let Some(k) = &plan.key {
        req = req.bearer_auth(k);
    }
    let resp = req
        .timeout(CONNECT_TIMEOUT)
        .send()
        .await
        .with_context(|| format!("the API at {} does not answer", plan.api))?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
    if status == reqwest::StatusCode::UNAUTHORIZED {
        bail!(
            "the API at {} refused {} (401): give a live key with --key or ORFEAS_API_KEY",
            plan.api,
            if plan.key.is_some() {
                "the key"
            } else {
                "a request without a key"
            }
        );
    }
    if !status.is_success() {
        bail!("GET {}/api/me answered {status}: {body}", plan.api);
    }
    let limits = &body["limits"];
    let limited: Vec<String> = ["rate", "max_concurrent", "quota_daily"]
        .into_iter()
        .filter(|k| !limits[k].is_null())
        .map(|k| format!("{k} {}", limits[k]))
        .collect();
    if !limited.is_empty() {
        eprintln!(
            "note: the key is limited ({}); submissions beyond its limits are answered 429",
            limited.join(", ")
        );
    }
    Ok(())
}

/// One arrival: submit, then follow the job to its end.
async fn job(ctx: Ctx, n: u64, due: Instant, _in_flight: InFlight) {
    Live::bump(&ctx.live.sent);
    let submission = ctx.submitter.submit(n).await;
    let id = match &submission.answer {
        Answer::Accepted { id } => {
            Live::bump(&ctx.live.accepted);
            Some(id.clone())
        }
        _ => {
            Live::bump(&ctx.live.refused);
            None
        }
    };
    // The collector outlives every task; a send fails only once the run is over.
    let _ = ctx.records.send(Record::Submitted {
        n,
        image: ctx.submitter.image_name(n).to_owned(),
        due,
        submission,
    });
    if let Some(id) = id {
        let finished = follow(&ctx.client, &id).await;
        if !matches!(finished.ending, Ending::Lost { .. }) {
            Live::bump(&ctx.live.completed);
        }
        let _ = ctx.records.send(Record::Finished { n, finished });
    }
}

/// Runs the plan's load and collects what it measured.
pub async fn run(plan: &Plan) -> anyhow::Result<Results> {
    let http = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .context("HTTP client")?;
    preflight(&http, plan).await?;
    let (records, mut incoming) = mpsc::unbounded_channel::<Record>();
    let live = Arc::new(Live::default());
    let ctx = Ctx {
        submitter: Submitter::new(
            http,
            &plan.api,
            plan.key.clone(),
            plan.options.clone(),
            plan.images.clone(),
        ),
        client: ApiClient::new(&plan.api, plan.key.clone()),
        records,
        live: live.clone(),
    };
    let start = Instant::now();
    let collector = tokio::spawn(async move {
        let mut c = Collector::new(start);
        while let Some(r) = incoming.recv().await {
            c.record(r);
        }
        c
    });
    let progress = (!plan.quiet)
        .then(|| tokio::spawn(progress::show(live.clone(), plan.profile, plan.duration)));

    let mut tasks = JoinSet::new();
    for (n, offset) in Schedule::new(plan.profile, plan.duration, plan.seed).enumerate() {
        let n = n as u64;
        let due = start + offset;
        tokio::time::sleep_until(due.into()).await;
        // Finished tasks are reaped as the run goes so the set holds only live ones.
        while tasks.try_join_next().is_some() {}
        if live.in_flight.load(Ordering::Relaxed) >= plan.max_in_flight as u64 {
            Live::bump(&live.dropped);
            let _ = ctx.records.send(Record::Dropped {
                n,
                at: Instant::now(),
            });
            continue;
        }
        let in_flight = InFlight::new(&live);
        tasks.spawn(job(ctx.clone(), n, due, in_flight));
    }
    tokio::time::sleep_until((start + plan.duration).into()).await;

    let drained = tokio::time::timeout(plan.drain_timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await
    .is_ok();
    if !drained {
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
    drop(ctx);
    let collector = collector.await.context("the collector stopped")?;
    if let Some(p) = progress {
        p.abort();
    }
    progress::finish_line(plan.quiet);
    Ok(collector.finish(plan.duration))
}
