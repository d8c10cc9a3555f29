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
