//! The webhook dispatcher: every API replica claims due deliveries (a lease, so one delivery is
//! never sent by two at once), signs each attempt, resolves and checks the endpoint again and
//! connects to the address it checked, and records the outcome. Retries follow
//! `webhooks.retry_schedule_ms` (the Standard Webhooks schedule by default) with ±10 % jitter; a
//! 429 or 503 with `Retry-After` is retried when it says; 410 Gone disables the endpoint.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use orfeas_shared::db::{Attempted, Db, Delivery};
use orfeas_shared::webhook::WebhookSecret;

use super::guard::{self, Network};

/// Deliveries claimed per round.
const BATCH: i64 = 64;
/// Sent at once.
const CONCURRENCY: usize = 16;
/// A `Retry-After` further out than this is treated as this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

#[derive(Debug, Clone)]
pub struct Dispatcher {
    pub db: Db,
    pub secret: Arc<WebhookSecret>,
    pub allow: Arc<Vec<Network>>,
    pub schedule: Arc<Vec<Duration>>,
    pub timeout: Duration,
    pub poll: Duration,
}

impl Dispatcher {
    pub async fn run(self) {
        loop {
            match self.round().await {
                // A full round: more may be due right away.
                Ok(n) if n as i64 == BATCH => continue,
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "webhooks: database unavailable"),
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    /// Sends what is due; returns how many deliveries it attempted.
    pub async fn round(&self) -> Result<usize, orfeas_shared::db::DbError> {
        // The lease outlives an attempt (the timeout) comfortably.
        let due = self
            .db
            .claim_deliveries(BATCH, self.timeout * 2 + Duration::from_secs(5))
            .await?;
        let n = due.len();
        futures::stream::iter(due)
            .for_each_concurrent(CONCURRENCY, |d| async move {
                let outcome = self.attempt(&d).await;
                if let Err(e) = self.db.record_delivery(&d, &outcome).await {
                    // The claim lapses and the delivery is attempted again: at least once.
                    tracing::warn!(delivery = %d.id, error = %e, "webhooks: outcome not recorded");
                }
            })
            .await;
        Ok(n)
    }

    fn next_after_failure(&self, attempts_made: i32) -> Option<Duration> {
        let idx = usize::try_from(attempts_made).unwrap_or(usize::MAX);
        self.schedule.get(idx).map(|d| {
            let jitter = 0.9 + fastrand::f64() * 0.2;
            d.mul_f64(jitter)
        })
    }

    async fn attempt(&self, d: &Delivery) -> Attempted {
        let made = d.attempts + 1;
        let fail = |status: Option<u16>, error: String| Attempted::Retry {
            status,
            error,
            next: self.next_after_failure(made - 1),
        };
        let (host, addr) = match guard::resolve(&d.url, &self.allow).await {
            Ok(ok) => ok,
            Err(e) => return fail(None, e.to_string()),
        };
        let client = match reqwest::Client::builder()
            .resolve(&host, addr)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .user_agent(concat!("ORFEAS-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
        {
            Ok(c) => c,
            Err(e) => return fail(None, format!("http client: {e}")),
        };
        let body = d.payload.to_string().into_bytes();
        let timestamp = chrono::Utc::now().timestamp();
        let signature = self.secret.sign(&d.id, timestamp, &body);
        let sent = client
            .post(&d.url)
            .header("content-type", "application/json")
            .header("webhook-id", &d.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => return fail(None, format!("{e}")),
        };
        let status = resp.status().as_u16();
        match status {
            200..=299 => Attempted::Delivered { status },
            410 => Attempted::Gone,
            429 | 503 => {
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
                match retry_after {
                    // Honoured while the schedule still allows another attempt.
                    Some(after) if self.next_after_failure(made - 1).is_some() => {
                        Attempted::Retry {
                            status: Some(status),
                            error: format!("answered {status}; Retry-After {}s", after.as_secs()),
                            next: Some(after),
                        }
                    }
                    _ => fail(Some(status), format!("answered {status}")),
                }
            }
            _ => fail(Some(status), format!("answered {status}")),
        }
    }
}
