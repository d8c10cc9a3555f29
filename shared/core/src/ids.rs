//! Identifiers of subscribers and alerts.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A subscriber, as a positive 63-bit integer shown as 16 hex digits.
///
/// Integers keep the per-address rows small and fast to scan; the hex form
/// keeps JSON clients (and JavaScript's 53-bit numbers) out of trouble.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriberId(u64);

impl SubscriberId {
    /// Builds an id from any 64 random bits (the top bit is cleared, zero avoided).
    pub fn from_random(bits: u64) -> Self {
        Self((bits & (u64::MAX >> 1)).max(1))
    }

    /// A time-ordered id: milliseconds since the epoch in the high bits,
    /// 20 random bits below. New subscribers then append to ordered stores
    /// instead of landing at random places in them.
    pub fn time_ordered(unix_ms: i64, random: u64) -> Self {
        Self::from_random(((unix_ms.max(0) as u64) << 20) | (random & 0xF_FFFF))
    }

    /// The id of a subscriber known by an external id: a stable hash, so a
    /// store without transactions across items (DynamoDB) needs no separate
    /// uniqueness record to make re-imports update the same subscriber.
    pub fn from_external_id(external_id: &str) -> Self {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(external_id.as_bytes());
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&digest[..8]);
        Self::from_random(u64::from_be_bytes(bytes))
    }

    pub fn from_i64(v: i64) -> Option<Self> {
        (v > 0).then_some(Self(v as u64))
    }

    pub fn as_i64(self) -> i64 {
        self.0 as i64
    }
}

impl fmt::Display for SubscriberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for SubscriberId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a subscriber id (16 hex digits)");
        if s.len() != 16 {
            return Err(bad());
        }
        let v = u64::from_str_radix(s, 16).map_err(|_| bad())?;
        i64::try_from(v)
            .ok()
            .and_then(SubscriberId::from_i64)
            .ok_or_else(bad)
    }
}

impl Serialize for SubscriberId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SubscriberId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An alert: a time-ordered UUID (v7), so ids sort by creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AlertId(pub uuid::Uuid);

impl AlertId {
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7())
    }
}

impl Default for AlertId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for AlertId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for AlertId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s)
            .map(AlertId)
            .map_err(|_| format!("{s:?} is not an alert id (a UUID)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriber_id_round_trips_and_is_never_zero_or_negative() {
        for bits in [0, 1, u64::MAX, 0x8000_0000_0000_0000, 42] {
            let id = SubscriberId::from_random(bits);
            assert!(id.as_i64() > 0);
            assert_eq!(id.to_string().parse::<SubscriberId>().unwrap(), id);
        }
        assert!("xyz".parse::<SubscriberId>().is_err());
        let (a, b) = (
            SubscriberId::time_ordered(1_800_000_000_000, u64::MAX),
            SubscriberId::time_ordered(1_800_000_000_001, 0),
        );
        assert!(a < b, "later ids sort after earlier ones");
        assert!("ffffffffffffffff".parse::<SubscriberId>().is_err());
    }
}
