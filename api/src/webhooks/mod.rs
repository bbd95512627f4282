//! Signed webhooks (Standard Webhooks): [`guard`] decides where they may go, [`dispatch`]
//! delivers the outbox the database fills as job events are recorded.

pub mod dispatch;
pub mod guard;

pub use dispatch::Dispatcher;
