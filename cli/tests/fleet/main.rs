//! The fleet end to end on the real services: API → RabbitMQ → worker → object store +
//! PostgreSQL, with Redis heartbeats. One test binary, a module per area; each test has its own
//! database, queues, Redis prefix and bucket ([`env::TestEnv`]).

// Tests say on stderr what they skip and why.
#![allow(clippy::print_stderr)]

#[path = "../support/validate.rs"]
mod validate;

mod auth;
mod batching;
mod chaos;
mod dashboards;
mod engines;
mod env;
mod events;
mod failures;
mod lifecycle;
mod loadtest;
mod operator;
mod paint;
mod probes;
mod retention;
mod segmentation;
mod studio;
mod traces;
mod webhooks;
