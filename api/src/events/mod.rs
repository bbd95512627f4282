//! Live job events: [`hub`] fans PostgreSQL's notifications out to followers; [`follow`]
//! turns them into one job's ordered, gap-free stream with catch-up from the table.

pub mod follow;
pub mod hub;

pub use follow::follow;
pub use hub::{EventHub, Signal, Subscription};
