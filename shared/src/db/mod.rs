//! PostgreSQL, split by aggregate: [`jobs`] (the job rows: insert, read, cancel), [`attempts`]
//! (an attempt's guarded transitions and its lease), [`reaper`] (jobs whose worker was lost),
//! [`outbox`] (jobs whose queue message is not yet confirmed), [`ledger`] (per-stage rows and
//! the summaries read from them), [`events`] (what a watching client sees) and [`memory`]
//! (the batch optimizer's learned figures).
//!
//! Every status transition is one statement guarded by the expected current state (and, for a
//! running job, by the attempt number), so a redelivered message or a second worker can never
//! move a job twice. An attempt's stage rows are written in the transaction that ends it.

#[macro_use]
mod job_row;
pub mod attempts;
pub mod events;
pub mod jobs;
pub mod keys;
pub mod ledger;
pub mod memory;
pub mod outbox;
pub mod reaper;
pub mod retention;
pub mod rollup;
pub mod webhooks;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

pub use attempts::{JobEnd, Requeued, StartOutcome, StoredOutput};
pub use events::{EVENTS_CHANNEL, EventListener, Notice, QueueEstimate};
pub use jobs::{CancelOutcome, InsertOutcome, JobRecord, NewJob, Quota, QuotaHit};
pub use keys::{KeyRecord, Usage};
pub use ledger::StageRecord;
pub use memory::MemoryFigure;
pub use outbox::OutboxEntry;
pub use reaper::{Lost, Reaped};
pub use retention::Expired;
pub use webhooks::{Attempted, Delivery, DeliveryLog};

/// The embedded migrations of `migrations/`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database unavailable: {0}")]
    Unavailable(sqlx::Error),
    /// A stored value this build cannot read (a bug, or a row written by a newer version).
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the database schema is not up to date ({0}); run `orfeas migrate`")]
    SchemaOutdated(String),
    #[error("invalid database URL: {0}")]
    BadUrl(String),
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::TypeNotFound { .. } => DbError::Corrupt(e.to_string()),
            other => DbError::Unavailable(other),
        }
    }
}

/// Handle to the job database (a connection pool; cheap to clone).
#[derive(Debug, Clone)]
pub struct Db {
    pool: PgPool,
}

fn parse_options(url: &str) -> Result<PgConnectOptions, DbError> {
    PgConnectOptions::from_str(url).map_err(|e| DbError::BadUrl(e.to_string()))
}

impl Db {
    /// Connects lazily: the pool opens connections on demand and replaces broken ones, so a
    /// PostgreSQL restart heals without operator action.
    pub fn connect_lazy(url: &str, max_connections: u32) -> Result<Db, DbError> {
        let opts = parse_options(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .test_before_acquire(true)
            .connect_lazy_with(opts);
        Ok(Db { pool })
    }

    /// Creates the database if it is missing, then applies every pending migration.
    pub async fn migrate(url: &str) -> Result<Db, DbError> {
        let opts = parse_options(url)?;
        let name = opts.get_database().unwrap_or("postgres").to_owned();
        let admin = opts.clone().database("postgres");
        let mut conn = admin.connect().await?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(&name)
                .fetch_one(&mut conn)
                .await?;
        if !exists {
            let quoted = name.replace('"', "\"\"");
            // The name is quoted with embedded quotes doubled, so it cannot break out.
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{quoted}\"")))
                .execute(&mut conn)
                .await?;
            tracing::info!(database = %name, "created database");
        }
        conn.close().await?;
        let db = Db::connect_lazy(url, 2)?;
        MIGRATOR.run(&db.pool).await?;
        Ok(db)
    }

    /// Fails unless every embedded migration has been applied (checked at startup).
    pub async fn check_schema(&self) -> Result<(), DbError> {
        let applied: Vec<i64> = sqlx::query_scalar(
            "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(ref d) if d.code().as_deref() == Some("42P01") => {
                DbError::SchemaOutdated("no migrations applied".into())
            }
            other => DbError::from(other),
        })?;
        for m in MIGRATOR.iter() {
            if !applied.contains(&m.version) {
                return Err(DbError::SchemaOutdated(format!(
                    "migration {} ({}) missing",
                    m.version, m.description
                )));
            }
        }
        Ok(())
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
