//! The HTTP routes, thin over the state's services.

pub mod account;
pub mod events;
pub mod jobs;
pub mod ops;
pub mod performance;
