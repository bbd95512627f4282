//! `orfeas config check`: the configuration loaded exactly as `orfeas api`, `worker` and
//! `migrate` load it (built-in defaults, the file, `ORFEAS__…` variables), without connecting to
//! anything, so a deployment's settings can be checked before any service starts with them: an
//! unknown key or a bad value fails here with the loader's own message.

// The confirmation is the command's output.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;

use clap::Subcommand;

use crate::serve::ConfigArgs;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load the configuration as the services do; fail with the loader's error, if any.
    Check(ConfigArgs),
}

pub fn run(cmd: &ConfigCommand) -> anyhow::Result<()> {
    match cmd {
        ConfigCommand::Check(args) => {
            args.load()?;
            println!("configuration is valid ({})", sources(args));
            Ok(())
        }
    }
}

/// Where the configuration came from, as the confirmation names it.
fn sources(args: &ConfigArgs) -> String {
    // The same precedence as `Config::from_env`: `--config`, then `ORFEAS_CONFIG`.
    let file = args
        .config
        .clone()
        .or_else(|| std::env::var_os("ORFEAS_CONFIG").map(PathBuf::from));
    let vars = std::env::vars_os()
        .filter(|(k, _)| k.to_string_lossy().starts_with("ORFEAS__"))
        .count();
    let file = match file {
        Some(path) => format!("file {}", path.display()),
        None => "no file".to_owned(),
    };
    let plural = if vars == 1 { "" } else { "s" };
    format!("{file}, {vars} ORFEAS__ variable{plural}")
}
