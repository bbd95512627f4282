//! The probes an orchestrator asks, served next to `/metrics`: `GET /healthz` (the process
//! answers: liveness) and `GET /readyz` (the worker takes jobs: readiness). Readiness is the
//! session's state as the consume loop reports it over the status channel, plus the heartbeat's
//! notion of a stuck batch; a rollout waits for it, so a new worker counts as available only
//! once its model is loaded and its consumer is on the queue.

use std::time::Duration;

use axum::http::StatusCode;

use crate::heartbeat::WorkerStatus;

/// Where the worker's AMQP session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Session {
    /// Not connected yet, or reconnecting after the broker went away.
    #[default]
    Connecting,
    /// A consumer is on the engine's jobs queue.
    Consuming,
    /// Asked to stop: no new batch starts; the batch in hand finishes and is acked.
    Draining,
    /// The session is closed; the process is about to exit.
    Stopped,
}

impl Session {
    pub fn as_str(self) -> &'static str {
        match self {
            Session::Connecting => "connecting",
            Session::Consuming => "consuming",
            Session::Draining => "draining",
            Session::Stopped => "stopped",
        }
    }

    /// The state after `next` is reported. A stopping worker never reads as ready again: a
    /// reconnect that completes after SIGTERM must not put it back behind a rollout's count.
    pub fn then(self, next: Session) -> Session {
        match (self, next) {
            (Session::Stopped, _) | (Session::Draining, Session::Stopped) => Session::Stopped,
            (Session::Draining, _) => Session::Draining,
            (_, next) => next,
        }
    }
}

/// The answer of `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub session: Session,
    /// The batch in hand has outlived the job timeout plus one lease (a stage stopped
    /// answering); its leases are no longer renewed.
    pub stuck: bool,
}

impl Readiness {
    pub fn of(status: &WorkerStatus, stuck_after: Duration) -> Readiness {
        Readiness {
            session: status.session,
            stuck: status.stuck(stuck_after),
        }
    }

    pub fn ready(&self) -> bool {
        self.session == Session::Consuming && !self.stuck
    }

    pub fn status_code(&self) -> StatusCode {
        if self.ready() {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        }
    }

    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "ready": self.ready(),
            "session": self.session.as_str(),
            "stuck": self.stuck,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn ready_only_while_consuming_and_not_stuck() {
        let limit = Duration::from_secs(60);
        let mut status = WorkerStatus::default();
        assert_eq!(Readiness::of(&status, limit).status_code(), 503);
        status.session = Session::Consuming;
        let r = Readiness::of(&status, limit);
        assert_eq!(r.status_code(), 200);
        assert_eq!(
            r.body(),
            serde_json::json!({"ready": true, "session": "consuming", "stuck": false})
        );
        status.batch_started = Instant::now().checked_sub(Duration::from_secs(61));
        let r = Readiness::of(&status, limit);
        assert!(r.stuck && !r.ready(), "{r:?}");
        for s in [Session::Connecting, Session::Draining, Session::Stopped] {
            status.batch_started = None;
            status.session = s;
            assert_eq!(Readiness::of(&status, limit).status_code(), 503, "{s:?}");
        }
    }

    #[test]
    fn stopping_is_never_undone() {
        use Session::*;
        assert_eq!(Connecting.then(Consuming), Consuming);
        assert_eq!(Consuming.then(Connecting), Connecting);
        assert_eq!(Consuming.then(Draining), Draining);
        assert_eq!(Draining.then(Consuming), Draining);
        assert_eq!(Draining.then(Connecting), Draining);
        assert_eq!(Draining.then(Stopped), Stopped);
        assert_eq!(Stopped.then(Consuming), Stopped);
        assert_eq!(Stopped.then(Draining), Stopped);
    }
}
