//! API keys: how they look, how they are made and checked, and their limits.
//!
//! A key is `orfeas_<id>_<secret>`: the id (32 hex digits) finds the stored record, the secret
//! (43 base64url characters, 256 random bits from the OS) proves possession. Only the SHA-256
//! of the whole key is stored, and it is compared in constant time, so neither the table nor
//! the comparison's timing tells anything about a key.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

const PREFIX: &str = "orfeas_";

/// A freshly made key: the token to show once, and what is stored.
#[derive(Debug)]
pub struct NewKey {
    pub id: Uuid,
    pub token: String,
    pub token_sha256: [u8; 32],
}

#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct RandomError(String);

/// Fills `buf` from the operating system's cryptographic random source.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), RandomError> {
    getrandom::fill(buf).map_err(|e| RandomError(e.to_string()))
}

/// Makes a new key.
pub fn generate() -> Result<NewKey, RandomError> {
    let id = Uuid::now_v7();
    let mut secret = [0u8; 32];
    random_bytes(&mut secret)?;
    let token = format!(
        "{PREFIX}{}_{}",
        id.simple(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    );
    let token_sha256 = digest(&token);
    Ok(NewKey {
        id,
        token,
        token_sha256,
    })
}

/// HMAC-SHA256 of `message` under `secret` (sessions, share links, webhook signatures).
pub fn hmac_sha256(secret: &[u8], message: &[u8]) -> [u8; 32] {
    use hmac::Mac;
    let mut mac =
        hmac::Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Equality whose time does not depend on where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// base64url without padding (tokens, links).
pub fn base64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The id a presented key claims, if it has a key's shape.
pub fn key_id(token: &str) -> Option<Uuid> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    if id.len() != 32 || secret.len() != 43 {
        return None;
    }
    Uuid::try_parse(id).ok()
}

/// Whether `token` is the key whose digest is `stored` (constant time in the digest).
pub fn matches(token: &str, stored: &[u8]) -> bool {
    constant_time_eq(&digest(token), stored)
}

/// `N` requests per period: `600/min`, `10/s`, `5000/h`, `20000/day`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub count: u32,
    pub period: Duration,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("`{0}` is not a rate: use N/s, N/min, N/h or N/day with N ≥ 1")]
pub struct BadRate(String);

impl FromStr for RateLimit {
    type Err = BadRate;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadRate(s.to_owned());
        let (n, unit) = s.trim().split_once('/').ok_or_else(bad)?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        let secs = match unit.trim() {
            "s" | "sec" | "second" => 1,
            "m" | "min" | "minute" => 60,
            "h" | "hour" => 3_600,
            "d" | "day" => 86_400,
            _ => return Err(bad()),
        };
        if count == 0 {
            return Err(bad());
        }
        Ok(RateLimit {
            count,
            period: Duration::from_secs(secs),
        })
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.period.as_secs() {
            1 => "s".to_owned(),
            60 => "min".to_owned(),
            3_600 => "h".to_owned(),
            86_400 => "day".to_owned(),
            s => format!("{s}s"),
        };
        write!(f, "{}/{unit}", self.count)
    }
}

/// A key's limits (none: unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct KeyLimits {
    pub rate: Option<RateLimit>,
    pub max_concurrent: Option<u32>,
    pub quota_daily: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_found_by_its_id_and_checked_by_its_digest() {
        let k = generate().expect("random");
        assert_eq!(key_id(&k.token), Some(k.id));
        assert!(matches(&k.token, &k.token_sha256));
        // The same id with another secret of the same shape is refused.
        let mut forged = k.token.clone();
        let last = forged.pop().expect("char");
        forged.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(key_id(&forged), Some(k.id));
        assert!(!matches(&forged, &k.token_sha256));
        assert!(!matches(&k.token, &k.token_sha256[..31]));
        assert_eq!(key_id("orfeas_nothex_x"), None);
        assert_eq!(key_id("Bearer something"), None);
        // Two keys never share a secret.
        assert_ne!(generate().expect("random").token, k.token);
    }

    #[test]
    fn rates_parse_and_print() {
        let r: RateLimit = "600/min".parse().expect("rate");
        assert_eq!(r.count, 600);
        assert_eq!(r.period, Duration::from_secs(60));
        assert_eq!(r.to_string(), "600/min");
        assert_eq!(
            "10/s".parse::<RateLimit>().map(|r| r.period.as_secs()),
            Ok(1)
        );
        assert!("0/min".parse::<RateLimit>().is_err());
        assert!("600".parse::<RateLimit>().is_err());
        assert!("5/week".parse::<RateLimit>().is_err());
    }
}
