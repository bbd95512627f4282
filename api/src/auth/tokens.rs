//! Browser credentials, for what cannot send an `Authorization` header (EventSource, WebSocket,
//! `<model-viewer src>`, download links): a session cookie a key was exchanged for, and share
//! links for one job. Both are HMAC-SHA256-signed with `api.session_secret`, name the key they
//! act for (so revoking the key ends them), and expire.
//!
//! Formats: `s1.<key id>.<expiry, unix s>.<signature>` and
//! `j1.<key id>.<job id>.<expiry>.<signature>`, the signature base64url over the rest.

use chrono::{DateTime, Utc};
use orfeas_shared::auth::{base64url, constant_time_eq, hmac_sha256};
use orfeas_vocab::JobId;
use uuid::Uuid;

/// The cookie the session lives in.
pub const SESSION_COOKIE: &str = "orfeas_session";

#[derive(Clone)]
pub struct Signer {
    secret: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(…)")
    }
}

/// What a valid token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    Session { key: Uuid },
    Share { key: Uuid, job: JobId },
}

impl Signer {
    pub fn new(secret: Vec<u8>) -> Signer {
        Signer { secret }
    }

    fn sign(&self, body: &str) -> String {
        base64url(&hmac_sha256(&self.secret, body.as_bytes()))
    }

    fn seal(&self, body: String) -> String {
        let sig = self.sign(&body);
        format!("{body}.{sig}")
    }

    pub fn session(&self, key: Uuid, expires: DateTime<Utc>) -> String {
        self.seal(format!("s1.{}.{}", key.simple(), expires.timestamp()))
    }

    pub fn share(&self, key: Uuid, job: JobId, expires: DateTime<Utc>) -> String {
        self.seal(format!(
            "j1.{}.{}.{}",
            key.simple(),
            job.0.simple(),
            expires.timestamp()
        ))
    }

    /// What `token` grants now, if it is genuine and unexpired.
    pub fn open(&self, token: &str, now: DateTime<Utc>) -> Option<Grant> {
        let (body, sig) = token.rsplit_once('.')?;
        let expected = self.sign(body);
        if !constant_time_eq(expected.as_bytes(), sig.as_bytes()) {
            return None;
        }
        let parts: Vec<&str> = body.split('.').collect();
        let (grant, expiry) = match parts.as_slice() {
            ["s1", key, exp] => (
                Grant::Session {
                    key: Uuid::try_parse(key).ok()?,
                },
                exp,
            ),
            ["j1", key, job, exp] => (
                Grant::Share {
                    key: Uuid::try_parse(key).ok()?,
                    job: JobId(Uuid::try_parse(job).ok()?),
                },
                exp,
            ),
            _ => return None,
        };
        let expiry: i64 = expiry.parse().ok()?;
        (now.timestamp() < expiry).then_some(grant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_open_only_unaltered_and_unexpired() {
        let s = Signer::new(b"secret".to_vec());
        let now = Utc::now();
        let key = Uuid::now_v7();
        let job = JobId::new();
        let later = now + chrono::Duration::minutes(5);
        let t = s.session(key, later);
        assert_eq!(s.open(&t, now), Some(Grant::Session { key }));
        assert_eq!(s.open(&t, later), None, "expired");
        let share = s.share(key, job, later);
        assert_eq!(s.open(&share, now), Some(Grant::Share { key, job }));
        // Another job in the same signed body is refused.
        let other = share.replace(
            &job.0.simple().to_string(),
            &JobId::new().0.simple().to_string(),
        );
        assert_eq!(s.open(&other, now), None);
        assert_eq!(Signer::new(b"other".to_vec()).open(&t, now), None);
        assert_eq!(s.open("s1.x.1", now), None);
    }
}
