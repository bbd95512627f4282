use std::process::ExitCode;

use clap::{Parser, Subcommand};
use orfeas::generate::{self, GenerateArgs};
use orfeas::serve::{self, ConfigArgs};
use tracing_subscriber::EnvFilter;

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
    Generate(GenerateArgs),
    /// Serve the job API.
    Api(ConfigArgs),
    /// Consume jobs from RabbitMQ and run them through the pipeline.
    Worker(ConfigArgs),
    /// Create the database if needed and apply the migrations.
    Migrate(ConfigArgs),
}

fn run_service(
    args: &ConfigArgs,
    service: &'static str,
    what: fn(orfeas_shared::Config) -> ServiceFuture,
) -> ExitCode {
    let result = args.load().and_then(|config| {
        // Logs to stderr; spans to the configured OTLP collector, if any. Flushed on exit.
        let _telemetry = orfeas_shared::telemetry::init(service, &config.telemetry.otlp_endpoint);
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(what(config))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

type ServiceFuture = std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>>>>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Api(args) => run_service(&args, "orfeas-api", |c| Box::pin(serve::api(c))),
        Command::Worker(args) => {
            run_service(&args, "orfeas-worker", |c| Box::pin(serve::worker(c)))
        }
        Command::Migrate(args) => run_service(&args, "orfeas-migrate", |c| {
            Box::pin(async move { serve::migrate(&c).await })
        }),
        Command::Generate(args) => match run_generate(&args) {
            Ok(summary) => {
                let mut text = String::new();
                for path in &summary.written {
                    text.push_str(&format!("wrote {}\n", path.display()));
                }
                for (path, err) in &summary.failures {
                    text.push_str(&format!("FAILED {}: {err}\n", path.display()));
                }
                text.push('\n');
                text.push_str(&summary.table);
                print_out(&text);
                if summary.failures.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        },
    }
}

fn run_generate(args: &GenerateArgs) -> anyhow::Result<generate::GenerateSummary> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    generate::run(args)
}

#[allow(clippy::print_stdout)]
fn print_out(text: &str) {
    print!("{text}");
}
