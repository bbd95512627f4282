//! The broker's backstop, applied as RabbitMQ policies (a queue's arguments cannot change once
//! it exists — redeclaring it with new ones fails with PRECONDITION_FAILED — while a policy
//! applies to existing queues too): each jobs queue gets a delivery limit above
//! `worker.max_attempts` and a dead-letter target, its `.dlq`. PostgreSQL stays the authority on
//! attempts; the limit only catches a message that keeps coming back without any attempt
//! starting (a worker that dies before it reaches the database, say).
//!
//! `orfeas migrate` applies them through the management API when `amqp.management_url` is set;
//! otherwise it prints the `rabbitmqctl set_policy` commands to run.

use orfeas_vocab::Engine;

use super::Topology;
use crate::config::{Config, redact_url};

/// One policy: its name, the exact queue it matches and its definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub name: String,
    pub pattern: String,
    pub definition: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("RabbitMQ management API at {url}: {message}")]
    Management { url: String, message: String },
}

/// The vhost of an AMQP URL (`amqp://host/%2f` → `/`).
pub fn vhost(amqp_url: &str) -> String {
    let path = amqp_url
        .split_once("://")
        .map_or(amqp_url, |(_, rest)| rest)
        .split_once('/')
        .map_or("", |(_, p)| p);
    let path = path.split('?').next().unwrap_or("");
    if path.is_empty() {
        "/".to_owned()
    } else {
        path.replace("%2f", "/").replace("%2F", "/")
    }
}

/// The policies of every engine's jobs queue.
pub fn policies(config: &Config) -> Vec<Policy> {
    let base = Topology::new(&config.amqp.queue);
    Engine::ALL
        .into_iter()
        .map(|engine| {
            let t = base.of_engine(engine);
            Policy {
                name: format!("orfeas-backstop-{}", t.jobs),
                pattern: format!("^{}$", regex_escape(&t.jobs)),
                definition: serde_json::json!({
                    "delivery-limit": config.amqp.delivery_limit,
                    "dead-letter-exchange": "",
                    "dead-letter-routing-key": t.dead_letter,
                }),
            }
        })
        .collect()
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = ".^$*+?()[]{}|\\".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

/// The commands an operator runs when ORFEAS cannot apply the policies itself.
pub fn rabbitmqctl_commands(config: &Config) -> Vec<String> {
    let vhost = vhost(&config.amqp.url);
    policies(config)
        .into_iter()
        .map(|p| {
            format!(
                "rabbitmqctl set_policy -p '{vhost}' --apply-to queues --priority 10 '{}' '{}' '{}'",
                p.name, p.pattern, p.definition
            )
        })
        .collect()
}

/// Applies the policies through the management API at `management_url`
/// (`http://user:password@host:15672`).
pub async fn apply(config: &Config, management_url: &str) -> Result<(), PolicyError> {
    let err = |message: String| PolicyError::Management {
        url: redact_url(management_url),
        message,
    };
    let (base, user, password) = split_credentials(management_url);
    let vhost = vhost(&config.amqp.url).replace('/', "%2F");
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| err(e.to_string()))?;
    for p in policies(config) {
        let url = format!("{base}/api/policies/{vhost}/{}", p.name);
        let body = serde_json::json!({
            "pattern": p.pattern,
            "definition": p.definition,
            "apply-to": "queues",
            "priority": 10,
        });
        let resp = client
            .put(&url)
            .basic_auth(&user, Some(&password))
            .json(&body)
            .send()
            .await
            .map_err(|e| err(e.to_string()))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            return Err(err(format!("{status} for policy {}: {text}", p.name)));
        }
    }
    Ok(())
}

/// Removes the policies (a deployment taken down, a test cleaning up).
pub async fn remove(config: &Config, management_url: &str) -> Result<(), PolicyError> {
    let err = |message: String| PolicyError::Management {
        url: redact_url(management_url),
        message,
    };
    let (base, user, password) = split_credentials(management_url);
    let vhost = vhost(&config.amqp.url).replace('/', "%2F");
    let client = reqwest::Client::new();
    for p in policies(config) {
        let url = format!("{base}/api/policies/{vhost}/{}", p.name);
        client
            .delete(&url)
            .basic_auth(&user, Some(&password))
            .send()
            .await
            .map_err(|e| err(e.to_string()))?;
    }
    Ok(())
}

/// `scheme://user:password@host…` → (`scheme://host…`, user, password); guest/guest without
/// credentials.
fn split_credentials(url: &str) -> (String, String, String) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (
            url.trim_end_matches('/').to_owned(),
            "guest".into(),
            "guest".into(),
        );
    };
    let rest = rest.trim_end_matches('/');
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            (
                format!("{scheme}://{host}"),
                user.to_owned(),
                password.to_owned(),
            )
        }
        None => (format!("{scheme}://{rest}"), "guest".into(), "guest".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_match_each_jobs_queue_exactly() {
        let config = Config::default();
        let p = policies(&config);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].pattern, "^orfeas\\.jobs$");
        assert_eq!(
            p[0].definition["dead-letter-routing-key"],
            "orfeas.jobs.dlq"
        );
        assert_eq!(p[1].pattern, "^orfeas\\.jobs\\.hunyuan3d$");
        assert_eq!(
            p[1].definition["delivery-limit"],
            config.amqp.delivery_limit
        );
        assert_eq!(vhost("amqp://guest:guest@127.0.0.1:5672/%2f"), "/");
        assert_eq!(vhost("amqp://h/prod?heartbeat=10"), "prod");
        assert_eq!(vhost("amqp://h"), "/");
        assert_eq!(
            split_credentials("http://u:p@h:15672/"),
            ("http://h:15672".into(), "u".into(), "p".into())
        );
        let cmds = rabbitmqctl_commands(&config);
        assert!(
            cmds[0].starts_with("rabbitmqctl set_policy -p '/'"),
            "{}",
            cmds[0]
        );
    }
}
