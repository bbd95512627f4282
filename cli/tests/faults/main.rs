//! The fault suite: each fleet guarantee broken for real — a duplicate message, a SIGKILLed
//! worker on every attempt, a cancel during a transient failure, two API replicas, stalled
//! clients, junk methods, retries of different delays, an object-store outage, a stalled broker
//! connection — on PostgreSQL, RabbitMQ, Redis and the S3 server. The tests are
//! timing-sensitive, so they run one at a time (each holds the services exclusively) with short
//! leases and backoffs.

// Tests say on stderr what they skip and why.
#![allow(clippy::print_stderr)]

#[path = "../support/validate.rs"]
#[allow(dead_code)] // the validators: this binary checks job states, not meshes
mod validate;

// The fleet binary's environment; the fault tests use part of it.
#[path = "../fleet/env.rs"]
#[allow(dead_code)]
mod env;

mod backstop;
mod broker_stall;
mod cancel;
mod crashes;
mod duplicates;
mod http;
mod outages;
mod outbox;
mod retries;

impl env::TestEnv {
    /// Publishes `body` persistently to one of this test's queues (`""` is the jobs queue) and
    /// waits for the broker's confirm: what a second copy of a message looks like.
    pub async fn publish_raw(&self, suffix: &str, body: &[u8]) {
        let conn = orfeas_shared::queue::connect(&self.config.amqp.url)
            .await
            .expect("amqp");
        let ch = conn.create_channel().await.expect("channel");
        ch.confirm_select(lapin::options::ConfirmSelectOptions::default())
            .await
            .expect("confirms");
        let queue = format!("{}{suffix}", self.config.amqp.queue);
        let props = orfeas_shared::queue::properties(0, Default::default());
        orfeas_shared::queue::publish_confirmed(&ch, &queue, body, props)
            .await
            .expect("published");
        let _ = conn.close(200, "done".into()).await;
    }
}

/// Short leases and backoffs, so a lost worker's job is noticed in seconds.
pub fn fast_reliability() -> Vec<(&'static str, &'static str)> {
    vec![
        ("ORFEAS__WORKER__LEASE_TTL_MS", "1500"),
        ("ORFEAS__WORKER__HEARTBEAT_INTERVAL_MS", "200"),
        ("ORFEAS__API__REAPER_INTERVAL_MS", "300"),
    ]
}
