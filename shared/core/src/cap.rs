//! CAP 1.2 vocabularies (OASIS Common Alerting Protocol) used by an alert.
//!
//! Only the values CAP 1.2 defines are accepted; serde's error for anything
//! else lists the allowed values. `System` and `Draft` statuses are valid CAP
//! but are never sent to the public, so an alert request cannot use them.

use serde::{Deserialize, Serialize};

/// `<status>`: whether this is a real alert, an exercise or a technical test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    Actual,
    Exercise,
    Test,
}

/// `<severity>` of the subject event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Severity {
    Extreme,
    Severe,
    Moderate,
    Minor,
    Unknown,
}

/// `<urgency>`: how soon responsive action should be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Urgency {
    Immediate,
    Expected,
    Future,
    Past,
    Unknown,
}

/// `<certainty>` of the subject event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Certainty {
    Observed,
    Likely,
    Possible,
    Unlikely,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Actual => "Actual",
            Status::Exercise => "Exercise",
            Status::Test => "Test",
        }
    }
}

/// `<scope>`: who the alert is for. `Restricted` and `Private` alerts go
/// to their recipients only and are never listed on the public page or feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Scope {
    #[default]
    Public,
    Restricted,
    Private,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Public => "Public",
            Scope::Restricted => "Restricted",
            Scope::Private => "Private",
        }
    }

    pub fn is_public(&self) -> bool {
        *self == Scope::Public
    }
}

/// An RFC 3339 time with its offset (`2026-11-29T10:00:00+01:00`, or `Z`
/// in JSON) as Unix ms.
pub fn parse_time(s: &str) -> Option<i64> {
    Some(s.parse::<jiff::Timestamp>().ok()?.as_millisecond())
}

/// `<msgType>`: a new alert, or an update or cancel of an earlier one
/// (named in `references`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum MsgType {
    #[default]
    Alert,
    Update,
    Cancel,
}

impl MsgType {
    pub fn as_str(self) -> &'static str {
        match self {
            MsgType::Alert => "Alert",
            MsgType::Update => "Update",
            MsgType::Cancel => "Cancel",
        }
    }

    pub fn is_alert(&self) -> bool {
        *self == MsgType::Alert
    }
}

/// Belgian local time (Europe/Brussels) of a Unix-ms instant, as
/// `2026-11-29T10:00:00+01:00` (CAP's form: an offset, never `Z`).
pub fn brussels_rfc3339(ms: i64) -> String {
    brussels(ms)
        .map(|z| z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string())
        .unwrap_or_default()
}

/// The same instant as a person reads it in a message: `29/11/2026 10:00`.
pub fn brussels_short(ms: i64) -> String {
    brussels(ms)
        .map(|z| z.strftime("%d/%m/%Y %H:%M").to_string())
        .unwrap_or_default()
}

fn brussels(ms: i64) -> Option<jiff::ZonedDateTime> {
    let tz = jiff::tz::TimeZone::get("Europe/Brussels").ok()?;
    Some(
        jiff::Timestamp::from_millisecond(ms)
            .ok()?
            .to_zoned_datetime(tz),
    )
}

#[cfg(test)]
mod time_tests {
    use super::*;

    #[test]
    fn brussels_time_has_its_offset_in_winter_and_summer() {
        // 2026-11-29T09:00:00Z: winter time, +01:00.
        assert_eq!(
            brussels_rfc3339(1_795_942_800_000),
            "2026-11-29T10:00:00+01:00"
        );
        // 2026-07-01T08:00:00Z: summer time, +02:00.
        assert_eq!(
            brussels_rfc3339(1_782_892_800_000),
            "2026-07-01T10:00:00+02:00"
        );
        assert_eq!(brussels_short(1_795_942_800_000), "29/11/2026 10:00");
        assert_eq!(
            parse_time("2026-11-29T10:00:00+01:00"),
            Some(1_795_942_800_000)
        );
        assert_eq!(parse_time("2026-11-29T09:00:00Z"), Some(1_795_942_800_000));
        assert_eq!(parse_time("29/11/2026"), None);
    }
}
