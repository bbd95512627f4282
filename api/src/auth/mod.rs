//! Who is asking, and what they may do: API keys (`Authorization: Bearer`), browser sessions
//! (an HttpOnly cookie a key was exchanged for) and signed share links, checked by one
//! middleware before any handler runs; per-key rate limits and quotas.
//!
//! - [`access`]: the one table of what each route needs;
//! - [`keys`]: key lookup (cached briefly), verification and whether keys are in force;
//! - [`rate`]: the per-key GCRA rate limit, its state in Redis so replicas share one limit;
//! - [`tokens`]: signed session cookies and share links;
//! - [`middleware`]: the request path that ties them together.

pub mod access;
pub mod keys;
pub mod middleware;
pub mod rate;
pub mod tokens;

use std::sync::Arc;

use orfeas_shared::db::KeyRecord;
use orfeas_vocab::{JobId, Scope};
use uuid::Uuid;

/// The caller of a request, as the middleware established it.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The key acting (none: keys are not in force here, and everyone may do everything).
    pub key: Option<Arc<KeyRecord>>,
    /// A share link: only this job, read only.
    pub only_job: Option<JobId>,
}

impl Principal {
    pub fn open() -> Principal {
        Principal {
            key: None,
            only_job: None,
        }
    }

    /// The owner recorded on jobs this caller submits.
    pub fn owner(&self) -> Option<Uuid> {
        self.key.as_ref().map(|k| k.id)
    }

    /// Whose jobs this caller sees: `None` for all (no keys in force, or an admin key).
    pub fn visible_owner(&self) -> Option<Uuid> {
        match &self.key {
            Some(k) if k.scope != Scope::Admin => Some(k.id),
            _ => None,
        }
    }

    /// Whether this caller may see `job` (owned by `owner`); other owners' jobs are answered
    /// as missing, not forbidden, so ids cannot be probed.
    pub fn may_see(&self, job: JobId, owner: Option<Uuid>) -> bool {
        if self.only_job.is_some_and(|j| j != job) {
            return false;
        }
        match self.visible_owner() {
            None => true,
            Some(me) => owner == Some(me),
        }
    }
}
