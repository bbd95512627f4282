//! What an API key may do.

use crate::names::named_enum;

named_enum! {
    /// An API key's scope.
    pub enum Scope: "key scope" {
        /// Its own jobs: submit, read, follow, download, cancel, delete.
        Jobs = "jobs",
        /// Everything: every job, and the operator endpoints (`/api/workers`,
        /// `/api/performance/*`, `/api/gpu/status`).
        Admin = "admin",
    }
}

impl Scope {
    /// Whether a key of this scope may use what `needed` guards.
    pub const fn allows(self, needed: Scope) -> bool {
        matches!(
            (self, needed),
            (Scope::Admin, _) | (Scope::Jobs, Scope::Jobs)
        )
    }
}
