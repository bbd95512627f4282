//! The `orfeas` command line. `main.rs` only parses and dispatches; the commands live here so
//! tests can drive them.

pub mod generate;
pub mod report;
pub mod serve;
