//! How configuration values that are not plain serde types are read: durations given in
//! milliseconds or seconds (the key names say which), settings that can be switched off (an
//! empty string or `off`), and limits where 0 means "none".

use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration written as whole milliseconds (`…_ms` keys).
pub mod millis {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// A duration written as whole seconds (`…_s` keys).
pub mod seconds {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

/// A setting that can be off: an empty string or `off` is `None`, anything else is parsed.
pub fn off_or<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    let raw = String::deserialize(d)?;
    let trimmed = raw.trim();
    if trimmed.is_empty() || trimmed.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    trimmed
        .parse()
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("`{trimmed}`: {e}")))
}

/// A limit where 0 means "none".
pub fn zero_is_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    u64::deserialize(d).map(|v| (v > 0).then_some(v))
}
