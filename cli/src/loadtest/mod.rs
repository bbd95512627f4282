//! `orfeas loadtest`: open-loop load against a running job API. Jobs arrive on a seeded Poisson
//! schedule (`--rate`, or `--ramp FROM:TO`), each is followed to its end, and the run reports
//! what the fleet did with them: accepted and refused submissions (by status and error code),
//! submit and end-to-end latency with the queue wait and run time from the jobs' own
//! timestamps, completed jobs per second, failures by code, batch sizes and stage times —
//! on stdout, as JSON (`--json`) and Markdown (`--markdown`) — and checks k6-style
//! `--threshold`s against it.
//!
//! Exit status: 0 when every threshold holds, 1 when one fails, 2 when the command could not
//! run (a bad argument or threshold — before any load is sent — or an API that does not answer).

// The report is the command's output, on stdout.
#![allow(clippy::print_stdout)]

pub mod args;
pub mod collector;
pub mod follow;
pub mod progress;
pub mod report;
pub mod results;
pub mod runner;
pub mod schedule;
pub mod stats;
pub mod submit;
pub mod threshold;

use std::process::ExitCode;

use anyhow::Context;

pub use args::LoadtestArgs;
use args::Plan;
use report::{LoadAverage, Report};

/// A threshold failed.
const THRESHOLD_FAILED: u8 = 1;
/// The command could not run.
const COULD_NOT_RUN: u8 = 2;

/// `orfeas loadtest`.
pub fn main(args: LoadtestArgs) -> ExitCode {
    let plan = match args.plan() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(COULD_NOT_RUN);
        }
    };
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("runtime")
        .and_then(|rt| rt.block_on(run(&plan)));
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(THRESHOLD_FAILED),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(COULD_NOT_RUN)
        }
    }
}

/// Runs, reports; whether every threshold held.
async fn run(plan: &Plan) -> anyhow::Result<bool> {
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let load_start = report::load_average();
    let mut results = runner::run(plan).await?;
    let verdicts: Vec<_> = plan
        .thresholds
        .iter()
        .map(|t| t.check(&mut results))
        .collect();
    let all_pass = verdicts.iter().all(|v| v.pass);
    let lines: Vec<String> = verdicts.iter().map(threshold::Verdict::line).collect();
    let report = Report::new(
        plan,
        started_at,
        LoadAverage {
            start: load_start,
            end: report::load_average(),
        },
        results,
        verdicts,
    );
    let markdown = report.markdown();
    if let Some(path) = &plan.json {
        let json = serde_json::to_string_pretty(&report).context("the JSON report")?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &plan.markdown {
        std::fs::write(path, &markdown).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("{markdown}");
    for line in lines {
        println!("{line}");
    }
    Ok(all_pass)
}
