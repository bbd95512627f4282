use std::process::ExitCode;

use clap::{Parser, Subcommand};
use orfeas::generate::{self, GenerateArgs};
use tracing_subscriber::EnvFilter;

/// ORFEAS: images to 3D meshes.
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
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Generate(args) => match generate::run(&args) {
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

#[allow(clippy::print_stdout)]
fn print_out(text: &str) {
    print!("{text}");
}
