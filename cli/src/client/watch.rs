//! `orfeas jobs submit` and `orfeas jobs watch`: the stage progress bars of `orfeas generate`,
//! driven by a running API's event stream instead of a local pipeline.

// The outcome lines (and submitted ids) are the commands' output, on stdout.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use orfeas_vocab::JobEventData;

use super::{ApiClient, OutputRef, StreamedEvent};

#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// The job API's base URL.
    #[arg(long, env = "ORFEAS_API_URL", default_value = "http://127.0.0.1:8080")]
    pub api: String,
    /// API key (sent as `Authorization: Bearer`).
    #[arg(long, env = "ORFEAS_API_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// No progress bars (the outcome lines are still printed).
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Submit images as jobs; with `--wait`, follow them to the end.
    Submit(SubmitArgs),
    /// Follow jobs' progress until they end.
    Watch(WatchArgs),
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// Job options as JSON (the API's `options` part), e.g. `{"formats":["glb","stl"]}`.
    #[arg(long)]
    pub options: Option<String>,
    /// Follow the jobs until they end (exit status 1 if any did not succeed).
    #[arg(long)]
    pub wait: bool,
    /// With `--wait`: download the outputs of succeeded jobs here.
    #[arg(long, requires = "wait")]
    pub out: Option<PathBuf>,
    /// Images (PNG, JPEG, WebP).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// With the jobs' ends: download the outputs of succeeded jobs here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Job ids.
    #[arg(required = true)]
    pub jobs: Vec<String>,
}

/// How one job ended, as followed.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub job: String,
    pub event: Option<StreamedEvent>,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        matches!(
            self.event.as_ref().map(|e| &e.event),
            Some(JobEventData::Succeeded { .. })
        )
    }

    fn line(&self) -> String {
        match self.event.as_ref().map(|e| &e.event) {
            Some(JobEventData::Succeeded { outputs, seconds }) => format!(
                "{} succeeded in {:.1}s: {}",
                self.job,
                seconds.unwrap_or_default(),
                outputs
                    .iter()
                    .map(|o| o.url.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Some(JobEventData::Failed { code, message, .. }) => {
                format!("{} failed [{code}]: {message}", self.job)
            }
            Some(JobEventData::Canceled { .. }) => format!("{} canceled", self.job),
            _ => format!("{} lost: the stream ended before the job did", self.job),
        }
    }
}

fn bar_message(e: &StreamedEvent) -> Option<(Option<u64>, String)> {
    Some(match &e.event {
        JobEventData::Queued {
            position,
            eta_seconds,
            ..
        } => {
            let pos = position.map_or(String::new(), |p| format!(", {p} ahead"));
            let eta = eta_seconds.map_or(String::new(), |s| format!(", ~{s:.0}s"));
            (Some(0), format!("queued{pos}{eta}"))
        }
        JobEventData::Started {
            worker,
            device,
            batch_size,
            attempt,
        } => (
            None,
            format!(
                "started on {} ({}, batch of {}, attempt {attempt})",
                worker.as_deref().unwrap_or("?"),
                device.map_or("?".to_owned(), |d| d.to_string()),
                batch_size.unwrap_or(1)
            ),
        ),
        JobEventData::StageStarted { stage } => (
            Some(orfeas_vocab::overall_percent(*stage, None) as u64),
            stage.to_string(),
        ),
        JobEventData::StageFinished { stage, seconds, ok } => (
            None,
            if *ok {
                format!("{stage} done in {seconds:.2}s")
            } else {
                format!("{stage} failed after {seconds:.2}s")
            },
        ),
        JobEventData::Progress {
            percent,
            stage,
            step,
            done,
            total,
        } => {
            let step = match (step, done, total) {
                (Some(s), Some(d), Some(t)) => format!(" {s} {d}/{t}"),
                _ => String::new(),
            };
            (Some(*percent as u64), format!("{stage}{step}"))
        }
        _ => return None,
    })
}

/// Follows every job to its end with a bar each; returns how each ended.
pub async fn follow_all(
    client: &ApiClient,
    jobs: &[(String, String)],
    quiet: bool,
) -> Vec<Outcome> {
    let multi = MultiProgress::with_draw_target(if quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    });
    let style = ProgressStyle::with_template("{prefix:>24} [{bar:20}] {pos:>3}% {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let tasks = jobs.iter().map(|(id, label)| {
        let bar = multi.add(ProgressBar::new(100));
        bar.set_style(style.clone());
        bar.set_prefix(label.clone());
        let mut events = Box::pin(client.follow(id, 0));
        let id = id.clone();
        async move {
            let mut last = None;
            while let Some(item) = events.next().await {
                match item {
                    Ok(e) => {
                        if let Some((pos, msg)) = bar_message(&e) {
                            if let Some(p) = pos {
                                bar.set_position(p.max(bar.position()));
                            }
                            bar.set_message(msg);
                        }
                        if e.kind().is_terminal() {
                            last = Some(e);
                        }
                    }
                    Err(err) => {
                        bar.abandon_with_message(format!("{err:#}"));
                        break;
                    }
                }
            }
            let outcome = Outcome {
                job: id,
                event: last,
            };
            if outcome.succeeded() {
                bar.set_position(100);
                bar.finish_with_message("succeeded");
            } else if !bar.is_finished() {
                bar.abandon_with_message(outcome.line());
            }
            outcome
        }
    });
    futures::future::join_all(tasks).await
}

async fn download(
    client: &ApiClient,
    outcomes: &[Outcome],
    out: &std::path::Path,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    for o in outcomes {
        if let Some(JobEventData::Succeeded { outputs, .. }) = o.event.as_ref().map(|e| &e.event) {
            for OutputRef { artifact, url } in outputs {
                let dest = out.join(format!("{}.{}", o.job, artifact.extension()));
                client.download(url, &dest).await?;
            }
        }
    }
    Ok(())
}

fn report(outcomes: &[Outcome]) -> ExitCode {
    for o in outcomes {
        println!("{}", o.line());
    }
    if outcomes.iter().all(Outcome::succeeded) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn run(cmd: JobsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        JobsCommand::Submit(a) => {
            let client = ApiClient::new(&a.api.api, a.api.key.clone());
            let mut jobs = Vec::new();
            for image in &a.images {
                let job = client.submit(image, a.options.as_deref()).await?;
                let id = job["id"].as_str().unwrap_or_default().to_owned();
                if !a.wait {
                    println!("{id} {}", image.display());
                }
                let label = image
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| id.clone());
                jobs.push((id, label));
            }
            if !a.wait {
                return Ok(ExitCode::SUCCESS);
            }
            let outcomes = follow_all(&client, &jobs, a.api.quiet).await;
            if let Some(out) = &a.out {
                download(&client, &outcomes, out).await?;
            }
            Ok(report(&outcomes))
        }
        JobsCommand::Watch(a) => {
            let client = ApiClient::new(&a.api.api, a.api.key.clone());
            let jobs: Vec<(String, String)> =
                a.jobs.iter().map(|j| (j.clone(), j.clone())).collect();
            let outcomes = follow_all(&client, &jobs, a.api.quiet).await;
            if let Some(out) = &a.out {
                download(&client, &outcomes, out).await?;
            }
            Ok(report(&outcomes))
        }
    }
}

/// `orfeas jobs …`.
pub fn main(cmd: JobsCommand) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cmd)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
