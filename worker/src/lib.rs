//! ORFEAS worker: `orfeas worker`. Consumes one engine's job queue with manual acks, sizes each
//! batch with the node's optimizer, runs it through the pipeline, stores every artifact, writes
//! the terminal state and the stage ledger in one guarded transaction, and only then acks.
//!
//! Layout, one concern per module:
//! - [`startup`]: the handles, with the engine's model loaded once;
//! - [`session`]: the AMQP session, reconnects, the idle check and drain on SIGTERM;
//! - [`batch`]: batch assembly after the optimizer's decision ([`optimizer`]: the decision, the
//!   memory model, the device probes);
//! - [`execute`] and [`executor`]: starting attempts, running the pipeline off the async runtime,
//!   storing outputs and the ledger rows ([`progress`]: step progress, throttled, to the job's
//!   events; [`learn`]: the memory model's figures from each batch);
//! - [`disposition`] (with [`failure`]): ack, retry with backoff, dead-letter, fail;
//! - [`heartbeat`]: device samples and the Redis heartbeat, fed over a `watch` channel;
//! - [`metrics_server`] (with [`health`]): `/metrics` and the probes `/healthz`, `/readyz`;
//! - [`broker`]: the channel operations, behind a trait the unit tests fake.

pub mod batch;
pub mod broker;
pub mod disposition;
pub mod execute;
pub mod executor;
pub mod failure;
pub mod health;
pub mod heartbeat;
pub mod learn;
pub mod metrics_server;
pub mod optimizer;
pub mod progress;
pub mod provenance;
pub mod session;
pub mod simulation;
pub mod startup;

pub use startup::{Worker, build_engine};
