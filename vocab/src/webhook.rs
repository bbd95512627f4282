//! Webhooks a job asks for: where, and which of its events. The event classes follow
//! Replicate's `webhook_events_filter`; [`WebhookEvent::of`] is the one mapping from job events
//! (the database's delivery trigger is checked against it by a test).

use serde::{Deserialize, Serialize};

use crate::names::named_enum;
use crate::{InvalidOption, JobEventKind};

named_enum! {
    /// A class of job events a webhook may receive.
    pub enum WebhookEvent: "webhook event" {
        /// An attempt started (`started`).
        Started = "started",
        /// Stage starts and ends and step progress (`stage_started`, `stage_finished`,
        /// `progress`).
        Progress = "progress",
        /// The end (`succeeded`, `failed`, `canceled`).
        Completed = "completed",
    }
}

impl WebhookEvent {
    /// The class of a job event; `queued` has none (the submission's answer says it).
    pub const fn of(kind: JobEventKind) -> Option<WebhookEvent> {
        match kind {
            JobEventKind::Queued => None,
            JobEventKind::Started => Some(WebhookEvent::Started),
            JobEventKind::StageStarted | JobEventKind::StageFinished | JobEventKind::Progress => {
                Some(WebhookEvent::Progress)
            }
            JobEventKind::Succeeded | JobEventKind::Failed | JobEventKind::Canceled => {
                Some(WebhookEvent::Completed)
            }
        }
    }
}

/// Longest accepted webhook URL.
pub const MAX_URL_LEN: usize = 2048;

/// A job's webhook: an http(s) URL and the event classes sent to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Webhook {
    pub url: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub events: Vec<WebhookEvent>,
}

impl Webhook {
    /// Checks the URL's form (scheme, host, no credentials, length) and the filter (default:
    /// every class). Where the URL points is checked when the job is submitted and again at
    /// each delivery, by the API.
    pub fn parse(url: &str, events: Option<&[String]>) -> Result<Webhook, InvalidOption> {
        let bad = |why: &str| InvalidOption::new("webhook", why.to_owned());
        if url.len() > MAX_URL_LEN {
            return Err(bad("is longer than 2048 characters"));
        }
        let parsed = url::Url::parse(url).map_err(|e| bad(&format!("not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad("must be an http or https URL"));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(bad("has no host"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(bad(
                "must not carry credentials (put a token in the path or query)",
            ));
        }
        let mut events = match events {
            None => WebhookEvent::ALL.to_vec(),
            Some(list) => list
                .iter()
                .map(|e| {
                    e.parse::<WebhookEvent>()
                        .map_err(|e| InvalidOption::new("webhook_events", e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        if events.is_empty() {
            return Err(InvalidOption::new(
                "webhook_events",
                "must name at least one of started, progress, completed",
            ));
        }
        events.sort();
        events.dedup();
        Ok(Webhook {
            url: parsed.to_string(),
            events,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_filters_are_checked() {
        let w = Webhook::parse("https://example.com/hook?t=1", None).expect("valid");
        assert_eq!(w.events, WebhookEvent::ALL.to_vec());
        let w = Webhook::parse(
            "http://example.com/h",
            Some(&["completed".into(), "started".into(), "completed".into()]),
        )
        .expect("valid");
        assert_eq!(
            w.events,
            vec![WebhookEvent::Started, WebhookEvent::Completed]
        );
        for bad in [
            "ftp://x/y",
            "not a url",
            "https://user:pw@example.com/",
            "file:///etc/passwd",
        ] {
            assert!(Webhook::parse(bad, None).is_err(), "{bad}");
        }
        assert!(Webhook::parse("https://example.com/", Some(&[])).is_err());
        assert!(Webhook::parse("https://example.com/", Some(&["logs".into()])).is_err());
    }

    #[test]
    fn every_event_but_queued_has_a_class() {
        for k in JobEventKind::ALL {
            assert_eq!(
                WebhookEvent::of(k).is_none(),
                k == JobEventKind::Queued,
                "{k}"
            );
        }
    }
}
