// The command line talks to its user on stderr.
#![allow(clippy::print_stderr)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use orfeas::serve::{self, ConfigArgs};

/// ORFEAS: images to 3D meshes, locally (`generate`) or as a fleet (`api`, `worker`, `migrate`).
#[derive(Debug, Parser)]
#[command(name = "orfeas", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Turn images into meshes on this machine (no services, no model weights).
    #[cfg(feature = "generate")]
    Generate(orfeas::generate::GenerateArgs),
    /// Serve the job API.
    #[cfg(feature = "api")]
    Api(ConfigArgs),
    /// Consume jobs from RabbitMQ and run them through the pipeline.
    #[cfg(feature = "worker")]
    Worker(ConfigArgs),
    /// Create the database if needed and apply the migrations.
    Migrate(ConfigArgs),
    /// One retention pass: roll up the ledger, delete expired jobs and orphan inputs.
    Gc(ConfigArgs),
    /// API keys: create, list, revoke.
    #[command(subcommand)]
    Keys(orfeas::keys::KeysCommand),
    /// Check the configuration the services would load (file and ORFEAS__ variables).
    #[command(subcommand)]
    Config(orfeas::config::ConfigCommand),
    /// Submit and follow jobs on a running API.
    #[cfg(feature = "client")]
    #[command(subcommand)]
    Jobs(orfeas::client::watch::JobsCommand),
    /// Open-loop load against a running API: Poisson arrivals, latency, throughput, thresholds.
    #[cfg(feature = "client")]
    Loadtest(orfeas::loadtest::LoadtestArgs),
}

type ServiceFuture = std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>>>>;

fn run_service(
    args: &ConfigArgs,
    service: &'static str,
    what: fn(orfeas_shared::Config) -> ServiceFuture,
) -> ExitCode {
    let result = args.load().and_then(|config| {
        // Logs to stderr; spans to the configured OTLP collector, if any. Flushed on exit.
        let _telemetry = orfeas_shared::telemetry::init(service, &config.telemetry);
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(what(config))
    });
    exit_code(result)
}

/// Success, or the error and its causes on stderr.
fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        #[cfg(feature = "api")]
        Command::Api(args) => run_service(&args, "orfeas-api", |c| Box::pin(serve::api(c))),
        #[cfg(feature = "worker")]
        Command::Worker(args) => {
            run_service(&args, "orfeas-worker", |c| Box::pin(serve::worker(c)))
        }
        Command::Migrate(args) => run_service(&args, "orfeas-migrate", |c| {
            Box::pin(async move { serve::migrate(&c).await })
        }),
        Command::Gc(args) => run_service(&args, "orfeas-gc", |c| {
            Box::pin(async move { serve::gc(&c).await })
        }),
        #[cfg(feature = "generate")]
        Command::Generate(args) => orfeas::generate::main(&args),
        Command::Keys(cmd) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            exit_code(
                rt.map_err(anyhow::Error::from)
                    .and_then(|rt| rt.block_on(orfeas::keys::run(cmd))),
            )
        }
        Command::Config(cmd) => exit_code(orfeas::config::run(&cmd)),
        #[cfg(feature = "client")]
        Command::Jobs(cmd) => orfeas::client::watch::main(cmd),
        #[cfg(feature = "client")]
        Command::Loadtest(args) => orfeas::loadtest::main(args),
    }
}
