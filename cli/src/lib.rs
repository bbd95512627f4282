//! The `orfeas` command line. `main.rs` only parses and dispatches; the commands live here so
//! tests can drive them. Each command is behind a cargo feature (`generate`, `api`, `worker`),
//! so an API-only build links no pipeline and no burn.

// The command line talks to its user on stderr.
#![allow(clippy::print_stderr)]

#[cfg(feature = "client")]
pub mod client;
pub mod config;
#[cfg(feature = "generate")]
pub mod generate;
pub mod keys;
#[cfg(feature = "client")]
pub mod loadtest;
#[cfg(feature = "generate")]
pub mod report;
pub mod serve;
