//! `orfeas api`, `orfeas worker`, `orfeas migrate`: thin fronts over the library crates.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use orfeas_shared::Config;
use orfeas_shared::db::Db;

#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// TOML configuration file (default: $ORFEAS_CONFIG, else built-in defaults);
    /// `ORFEAS__SECTION__KEY` environment variables override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

impl ConfigArgs {
    pub fn load(&self) -> anyhow::Result<Config> {
        Ok(Config::from_env(self.config.as_deref())?)
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested");
}

pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    Db::migrate(&config.database.url).await.with_context(|| {
        format!(
            "migrating {}",
            orfeas_shared::config::redact_url(&config.database.url)
        )
    })?;
    tracing::info!("database is up to date");
    match &config.amqp.management_url {
        Some(url) => {
            orfeas_shared::queue::policy::apply(config, url).await?;
            tracing::info!("RabbitMQ backstop policies applied");
        }
        None => {
            let commands = orfeas_shared::queue::policy::rabbitmqctl_commands(config);
            tracing::warn!(
                "amqp.management_url is off: apply the jobs queues' backstop policies with\n{}",
                commands.join("\n")
            );
        }
    }
    Ok(())
}

/// One retention pass (rollups, expired jobs, orphan inputs), for cron; prints what it did.
pub async fn gc(config: &Config) -> anyhow::Result<()> {
    let db = Db::connect_lazy(&config.database.url, 2)?;
    db.check_schema().await?;
    let store = orfeas_shared::storage::build(&config.storage)?;
    let r =
        orfeas_shared::retention::gc_pass(&db, store.as_ref(), &config.retention.policy()).await?;
    let text = if r.skipped {
        "another process is running a retention pass; nothing done\n".to_owned()
    } else {
        format!(
            "hours rolled up: {}\njobs deleted: {}\nobjects deleted: {}\norphan inputs deleted: {}\n",
            r.hours_rolled_up, r.jobs_deleted, r.objects_deleted, r.orphan_inputs_deleted
        )
    };
    std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes())?;
    Ok(())
}

#[cfg(feature = "api")]
pub async fn api(config: Config) -> anyhow::Result<()> {
    let listen = config.api.listen;
    tracing::info!(?config, "starting API");
    let metrics = config.api.metrics_listen;
    let state = orfeas_api::build_state(config).await?;
    if let Some(addr) = metrics {
        match orfeas_api::serve_metrics(&state, addr).await {
            Ok(bound) => tracing::info!(addr = %bound, "API metrics on /metrics"),
            // Several replicas on one host: only the first gets the port; the rest run on.
            Err(e) => tracing::warn!(error = %e, %addr, "API metrics not served"),
        }
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    tracing::info!(addr = %listener.local_addr()?, "API listening");
    orfeas_api::serve(state, listener, shutdown_signal()).await?;
    Ok(())
}

#[cfg(feature = "worker")]
pub async fn worker(config: Config) -> anyhow::Result<()> {
    tracing::info!(?config, "starting worker");
    let listen = config.worker.metrics_listen;
    let worker = orfeas_worker::Worker::new(config).await?;
    if let Some(listen) = listen {
        match worker.serve_metrics(listen).await {
            Ok(addr) => tracing::info!(%addr, "worker metrics on /metrics"),
            // Several workers on one host: only the first gets the port; the rest run on.
            Err(e) => tracing::warn!(error = %e, %listen, "worker metrics not served"),
        }
    }
    worker.run(shutdown_signal()).await;
    Ok(())
}
