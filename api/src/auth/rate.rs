//! The per-key rate limit: GCRA (the generic cell rate algorithm), whose one number per key —
//! the theoretical arrival time of the next request — lives in Redis and is updated by one
//! script, so every API replica enforces one shared limit. A key may burst up to its whole
//! allowance, then gets one request per `period / count`.
//!
//! Answers carry the IETF `RateLimit-Policy` / `RateLimit` headers
//! (draft-ietf-httpapi-ratelimit-headers): `"key";q=<count>;w=<period s>` and
//! `"key";r=<remaining>;t=<seconds until the allowance is whole again>`.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use orfeas_shared::auth::RateLimit;
use redis::aio::ConnectionManager;
use uuid::Uuid;

const GCRA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if now < allow_at then
  return {0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return {1, 0, new_tat - now}
"#;

/// What the limiter decided for one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: RateLimit,
    pub remaining: u32,
    /// Until the next request would be allowed (zero when this one was).
    pub retry_after: Duration,
    /// Until the whole allowance is available again.
    pub reset: Duration,
}

impl Decision {
    /// The `RateLimit-Policy` and `RateLimit` headers (and `Retry-After` when refused).
    pub fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        let policy = format!(
            "\"key\";q={};w={}",
            self.limit.count,
            self.limit.period.as_secs().max(1)
        );
        let state = format!(
            "\"key\";r={};t={}",
            self.remaining,
            self.reset.as_secs_f64().ceil() as u64
        );
        if let Ok(v) = HeaderValue::from_str(&policy) {
            h.insert("ratelimit-policy", v);
        }
        if let Ok(v) = HeaderValue::from_str(&state) {
            h.insert("ratelimit", v);
        }
        if !self.allowed {
            let secs = self.retry_after.as_secs_f64().ceil().max(1.0) as u64;
            h.insert("retry-after", HeaderValue::from(secs));
        }
        h
    }
}

/// Counts one request of `key` against `limit`.
pub async fn check(
    conn: &mut ConnectionManager,
    prefix: &str,
    key: Uuid,
    limit: RateLimit,
) -> redis::RedisResult<Decision> {
    let interval_us = (limit.period.as_micros() / u128::from(limit.count.max(1))).max(1) as u64;
    let (allowed, retry_us, reset_us): (i64, i64, i64) = redis::Script::new(GCRA)
        .key(format!("{prefix}:rate:{key}"))
        .arg(interval_us)
        .arg(limit.count)
        .invoke_async(conn)
        .await?;
    let used = u64::try_from(reset_us).unwrap_or(0).div_ceil(interval_us);
    Ok(Decision {
        allowed: allowed == 1,
        limit,
        remaining: u32::try_from(u64::from(limit.count).saturating_sub(used)).unwrap_or(0),
        retry_after: Duration::from_micros(u64::try_from(retry_us).unwrap_or(0)),
        reset: Duration::from_micros(u64::try_from(reset_us).unwrap_or(0)),
    })
}
