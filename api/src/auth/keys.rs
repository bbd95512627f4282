//! Key lookup and whether keys are in force. Verified keys are cached for `api.key_cache_ms`
//! (so a request costs no database round trip), which is also about how long a revocation or a
//! first key takes to reach every replica.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orfeas_shared::auth;
use orfeas_shared::config::AuthMode;
use orfeas_shared::db::{Db, DbError, KeyRecord};
use uuid::Uuid;

/// Why a presented key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Malformed,
    Unknown,
    Revoked,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Malformed => "the credential is not an ORFEAS API key",
            Refusal::Unknown => "unknown API key",
            Refusal::Revoked => "this API key was revoked",
        }
    }
}

#[derive(Debug)]
struct Cached<T> {
    at: Instant,
    value: T,
}

#[derive(Debug)]
pub struct KeyStore {
    db: Db,
    mode: AuthMode,
    ttl: Duration,
    keys: Mutex<HashMap<Uuid, Cached<Option<Arc<KeyRecord>>>>>,
    /// The last reading of whether any live key exists (refreshed by `start`).
    in_force: Mutex<Option<bool>>,
}

impl KeyStore {
    pub fn new(db: Db, mode: AuthMode, ttl: Duration) -> KeyStore {
        KeyStore {
            db,
            mode,
            ttl,
            keys: Mutex::new(HashMap::new()),
            in_force: Mutex::new(None),
        }
    }

    /// Whether requests need a credential: always (`required`), never (`disabled`), or while
    /// any live key exists (`auto`). Answered from the last reading, which [`KeyStore::start`]
    /// refreshes every `api.key_cache_ms` in the background, so no request waits for the
    /// database here (an upload refused from its headers is refused at once).
    pub async fn in_force(&self) -> Result<bool, DbError> {
        match self.mode {
            AuthMode::Required => return Ok(true),
            AuthMode::Disabled => return Ok(false),
            AuthMode::Auto => {}
        }
        let cached = *self.in_force.lock().unwrap_or_else(|p| p.into_inner());
        match cached {
            Some(value) => Ok(value),
            None => self.refresh_in_force().await,
        }
    }

    /// Reads whether keys are in force now, then keeps the reading fresh until the store is
    /// dropped.
    pub async fn start(self: &Arc<Self>) -> Result<(), DbError> {
        if self.mode != AuthMode::Auto {
            return Ok(());
        }
        self.refresh_in_force().await?;
        let weak = Arc::downgrade(self);
        let every = self.ttl;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(store) = weak.upgrade() else { return };
                if let Err(e) = store.refresh_in_force().await {
                    tracing::debug!(error = %e, "keys: could not refresh whether keys are in force");
                }
            }
        });
        Ok(())
    }

    async fn refresh_in_force(&self) -> Result<bool, DbError> {
        let value = self.db.any_live_key().await?;
        *self.in_force.lock().unwrap_or_else(|p| p.into_inner()) = Some(value);
        Ok(value)
    }

    /// The live key with this id.
    pub async fn by_id(&self, id: Uuid) -> Result<Result<Arc<KeyRecord>, Refusal>, DbError> {
        let cached = {
            let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
            keys.get(&id)
                .filter(|c| c.at.elapsed() < self.ttl)
                .map(|c| c.value.clone())
        };
        let record = match cached {
            Some(r) => r,
            None => {
                let r = self.db.get_key(id).await?.map(Arc::new);
                if r.is_some() {
                    let db = self.db.clone();
                    tokio::spawn(async move {
                        let _ = db.touch_key(id).await;
                    });
                }
                let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
                // Bounded: a flood of made-up ids must not grow the cache for ever.
                if keys.len() > 10_000 {
                    keys.retain(|_, c| c.at.elapsed() < self.ttl);
                }
                keys.insert(
                    id,
                    Cached {
                        at: Instant::now(),
                        value: r.clone(),
                    },
                );
                r
            }
        };
        Ok(match record {
            None => Err(Refusal::Unknown),
            Some(k) if k.revoked_at.is_some() => Err(Refusal::Revoked),
            Some(k) => Ok(k),
        })
    }

    /// The live key `token` is.
    pub async fn verify(&self, token: &str) -> Result<Result<Arc<KeyRecord>, Refusal>, DbError> {
        let Some(id) = auth::key_id(token) else {
            return Ok(Err(Refusal::Malformed));
        };
        Ok(match self.by_id(id).await? {
            Ok(k) if auth::matches(token, &k.token_sha256) => Ok(k),
            Ok(_) => Err(Refusal::Unknown),
            Err(r) => Err(r),
        })
    }
}
