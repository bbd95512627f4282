//! `orfeas keys create | list | revoke`: API keys, straight in PostgreSQL (an operator's
//! command; it needs the database, not a running API). A new key is printed once — only its
//! SHA-256 is stored.

// The key and the listing are the commands' output.
#![allow(clippy::print_stdout)]

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use orfeas_shared::Config;
use orfeas_shared::auth::{self, KeyLimits, RateLimit};
use orfeas_shared::db::{Db, KeyRecord};
use orfeas_vocab::Scope;

use crate::serve::ConfigArgs;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a key and print it (once).
    Create(CreateArgs),
    /// The keys, their scopes, limits and last use.
    List(ConfigArgs),
    /// Revoke a key (by id, or by its name when that names one live key).
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Who or what the key is for.
    #[arg(long)]
    pub name: String,
    /// `jobs` (its own jobs) or `admin` (every job and the operator endpoints).
    #[arg(long, default_value = "jobs")]
    pub scope: Scope,
    /// Requests per period, e.g. `600/min`, `10/s` (default: unlimited).
    #[arg(long)]
    pub rate: Option<RateLimit>,
    /// Jobs queued + running at once (default: unlimited).
    #[arg(long)]
    pub max_concurrent: Option<u32>,
    /// Jobs per UTC day (default: unlimited).
    #[arg(long)]
    pub quota_daily: Option<u32>,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The key's id or name.
    pub key: String,
}

fn describe(k: &KeyRecord) -> String {
    let or_none = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    format!(
        "{}  {:<20} {:<6} rate={} concurrent={} daily={} created={} last_used={}{}",
        k.id,
        k.name,
        k.scope,
        or_none(k.limits.rate.map(|r| r.to_string())),
        or_none(k.limits.max_concurrent.map(|n| n.to_string())),
        or_none(k.limits.quota_daily.map(|n| n.to_string())),
        k.created_at.format("%Y-%m-%d %H:%M"),
        or_none(
            k.last_used_at
                .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        ),
        if k.revoked_at.is_some() {
            "  REVOKED"
        } else {
            ""
        }
    )
}

async fn db(config: &Config) -> anyhow::Result<Db> {
    let db = Db::connect_lazy(&config.database.url, 2)?;
    db.check_schema().await.context("the database")?;
    Ok(db)
}

pub async fn run(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Create(a) => {
            if a.name.trim().is_empty() {
                bail!("--name must not be empty");
            }
            let db = db(&a.config.load()?).await?;
            let key = auth::generate()?;
            let limits = KeyLimits {
                rate: a.rate,
                max_concurrent: a.max_concurrent,
                quota_daily: a.quota_daily,
            };
            let record = db.insert_key(&key, a.name.trim(), a.scope, &limits).await?;
            println!("{}", key.token);
            eprintln!("created {}", describe(&record));
            eprintln!("the key is shown only now; store it safely");
        }
        KeysCommand::List(c) => {
            for k in db(&c.load()?).await?.list_keys().await? {
                println!("{}", describe(&k));
            }
        }
        KeysCommand::Revoke(a) => {
            let db = db(&a.config.load()?).await?;
            match db.revoke_key(&a.key).await? {
                Some(k) => println!("revoked {}", describe(&k)),
                None => bail!("no live key has the id or unique name `{}`", a.key),
            }
        }
    }
    Ok(())
}
