//! Broadcast through the mobile networks (Alert-SMS): the modes, cell
//! broadcast pages and message identifiers, and the delivery targets that
//! have no subscriber.

use crate::cap::{Certainty, Severity, Status, Urgency};
use crate::sms::{SmsEncoding, first_non_gsm};
use serde::{Deserialize, Serialize};
use std::fmt;

/// How a network carries the alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BroadcastMode {
    /// Location-based SMS: the network texts every active device on the
    /// selected cells, and reports counts.
    Lbsms,
    /// Cell broadcast (EU-Alert, ETSI TS 102 900): one message per cell,
    /// received by every phone camped on it.
    CellBroadcast,
}

impl BroadcastMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BroadcastMode::Lbsms => "lbsms",
            BroadcastMode::CellBroadcast => "cell_broadcast",
        }
    }
}

/// `"broadcast"` in `POST /v1/alerts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BroadcastRequest {
    /// The networks to use; left out, every network bealert knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks: Option<Vec<String>>,
    pub mode: BroadcastMode,
}

/// A validated broadcast: the networks are named explicitly (the app fills
/// in every known network when the request left them out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastSpec {
    pub networks: Vec<String>,
    pub mode: BroadcastMode,
}

/// Characters of one cell broadcast page (GSM 7-bit: 82 octets hold 93 septets).
pub const CB_PAGE_GSM7: usize = 93;
/// UCS-2 characters of one page (82 octets).
pub const CB_PAGE_UCS2: usize = 41;
/// The most pages of one cell broadcast message.
pub const CB_MAX_PAGES: usize = 15;

/// How a text travels as cell broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CbInfo {
    pub encoding: SmsEncoding,
    pub units: usize,
    pub pages: usize,
}

/// The pages a text needs (an escape pair never split across pages).
pub fn cb_pages(text: &str) -> CbInfo {
    let info = crate::sms::analyse(text);
    let per_page = match info.encoding {
        SmsEncoding::Gsm7 => CB_PAGE_GSM7,
        SmsEncoding::Ucs2 => CB_PAGE_UCS2,
    };
    let widths: Vec<usize> = match info.encoding {
        SmsEncoding::Gsm7 => text
            .chars()
            .map(|c| {
                if "^{}\\[~]|€\u{000C}".contains(c) {
                    2
                } else {
                    1
                }
            })
            .collect(),
        SmsEncoding::Ucs2 => text.chars().map(char::len_utf16).collect(),
    };
    let (mut pages, mut used) = (1, 0);
    for w in widths {
        if used + w > per_page {
            pages += 1;
            used = 0;
        }
        used += w;
    }
    CbInfo {
        encoding: info.encoding,
        units: info.units,
        pages,
    }
}

/// Why a text does not fit cell broadcast, in words for the sender.
pub fn cb_problem(text: &str) -> Option<String> {
    let info = cb_pages(text);
    (info.pages > CB_MAX_PAGES).then(|| {
        let limit = match info.encoding {
            SmsEncoding::Gsm7 => format!("{} characters", CB_PAGE_GSM7 * CB_MAX_PAGES),
            SmsEncoding::Ucs2 => format!(
                "{} characters as UCS-2{}",
                CB_PAGE_UCS2 * CB_MAX_PAGES,
                first_non_gsm(text)
                    .map(|c| format!(", used because of {c:?}"))
                    .unwrap_or_default()
            ),
        };
        format!(
            "the cell broadcast needs {} pages; at most {CB_MAX_PAGES} pages ({limit}) are sent: shorten the text",
            info.pages
        )
    })
}

/// The cell broadcast message identifier (3GPP TS 23.041 §9.4.1.2.2, used
/// by EU-Alert, ETSI TS 102 900): the channel a phone shows the alert on.
/// `additional_language` gives the identifier of the same level for a
/// language other than the network's first (identifier + 13 for the
/// alert levels).
pub fn message_identifier(
    status: Status,
    severity: Severity,
    urgency: Urgency,
    certainty: Certainty,
    additional_language: bool,
) -> u16 {
    let base = match status {
        Status::Exercise => 4381,
        Status::Test => 4380,
        Status::Actual => {
            let immediate = matches!(urgency, Urgency::Immediate);
            let observed = matches!(certainty, Certainty::Observed);
            match severity {
                Severity::Extreme => match (immediate, observed) {
                    (true, true) => 4371,
                    (true, false) => 4372,
                    (false, true) => 4373,
                    (false, false) => 4374,
                },
                _ => match (immediate, observed) {
                    (true, true) => 4375,
                    (true, false) => 4376,
                    (false, true) => 4377,
                    (false, false) => 4378,
                },
            }
        }
    };
    if additional_language { base + 13 } else { base }
}

/// A delivery target that is not a subscriber: one delivery per alert and
/// target. Networks (Alert-SMS), and the outlets of the public channels:
/// social media accounts, siren groups, digital sign networks.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Target {
    Network(String),
    Social(String),
    Siren(String),
    Sign(String),
}

impl Target {
    /// The target of a public channel's outlet.
    pub fn outlet(kind: crate::outlet::OutletKind, name: &str) -> Target {
        use crate::outlet::OutletKind;
        match kind {
            OutletKind::Social => Target::Social(name.into()),
            OutletKind::Siren => Target::Siren(name.into()),
            OutletKind::Sign => Target::Sign(name.into()),
        }
    }

    /// `network:<name>`, `social:<name>`…: the delivery's key within its alert.
    pub fn key(&self) -> String {
        self.to_string()
    }

    pub fn parse(key: &str) -> Option<Target> {
        let (kind, name) = key.split_once(':')?;
        if name.is_empty() {
            return None;
        }
        match kind {
            "network" => Some(Target::Network(name.into())),
            _ => crate::outlet::OutletKind::from_code(kind).map(|k| Target::outlet(k, name)),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Target::Network(n) | Target::Social(n) | Target::Siren(n) | Target::Sign(n) => n,
        }
    }

    /// The public channel of an outlet's target; `None` for a network.
    pub fn outlet_kind(&self) -> Option<crate::outlet::OutletKind> {
        use crate::outlet::OutletKind;
        match self {
            Target::Network(_) => None,
            Target::Social(_) => Some(OutletKind::Social),
            Target::Siren(_) => Some(OutletKind::Siren),
            Target::Sign(_) => Some(OutletKind::Sign),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.outlet_kind() {
            None => write!(f, "network:{}", self.name()),
            Some(k) => write!(f, "{k}:{}", self.name()),
        }
    }
}

/// What a network reported for one alert. A public outlet reports in the
/// same terms: a siren group's sirens (`requested`), those activated
/// (`accepted`) and those that acknowledged (`delivered`); a sign
/// network's displays; a social post is one message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkReport {
    /// Cells the message went to.
    pub cells: u64,
    /// Active devices on those cells (what a healthy network reaches).
    pub requested: u64,
    /// Devices the network took the message for.
    pub accepted: u64,
    pub delivered: u64,
    pub failed: u64,
    /// Area of the selected cells outside the zone.
    pub overshoot_km2: f64,
}

impl NetworkReport {
    /// `n` messages (posts, displays) asked for, taken and delivered.
    pub fn reached(n: u64) -> Self {
        NetworkReport {
            requested: n,
            accepted: n,
            delivered: n,
            ..NetworkReport::default()
        }
    }

    /// A siren group's answer: `sirens` asked, `activated`, `acknowledged`.
    pub fn sirens(sirens: u64, activated: u64, acknowledged: u64) -> Self {
        NetworkReport {
            requested: sirens,
            accepted: activated,
            delivered: acknowledged,
            failed: sirens.saturating_sub(acknowledged),
            ..NetworkReport::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_of_93_gsm_or_41_ucs2_characters() {
        assert_eq!(cb_pages("a").pages, 1);
        assert_eq!(cb_pages(&"a".repeat(93)).pages, 1);
        assert_eq!(cb_pages(&"a".repeat(94)).pages, 2);
        assert_eq!(cb_pages(&"a".repeat(93 * 15)).pages, 15);
        assert!(cb_problem(&"a".repeat(93 * 15)).is_none());
        let e = cb_problem(&"a".repeat(93 * 15 + 1)).unwrap();
        assert!(
            e.contains("16 pages") && e.contains("1395 characters"),
            "{e}"
        );
        assert_eq!(cb_pages(&"ж".repeat(41)).pages, 1);
        assert_eq!(cb_pages(&"ж".repeat(42)).pages, 2);
        let e = cb_problem(&"ж".repeat(41 * 15 + 1)).unwrap();
        assert!(e.contains("615 characters as UCS-2"), "{e}");
        // An escape pair (€ is two septets) is not split across pages.
        assert_eq!(cb_pages(&format!("{}€", "a".repeat(92))).pages, 2);
    }

    #[test]
    fn identifiers_follow_the_eu_alert_levels() {
        use Certainty::*;
        use Severity::*;
        use Urgency::*;
        assert_eq!(
            message_identifier(Status::Actual, Extreme, Immediate, Observed, false),
            4371
        );
        assert_eq!(
            message_identifier(Status::Actual, Severe, Expected, Likely, false),
            4378
        );
        assert_eq!(
            message_identifier(Status::Actual, Severe, Expected, Likely, true),
            4391
        );
        assert_eq!(
            message_identifier(Status::Exercise, Extreme, Immediate, Observed, false),
            4381
        );
        assert_eq!(
            message_identifier(Status::Test, Minor, Future, Certainty::Unknown, false),
            4380
        );
    }

    #[test]
    fn targets_round_trip_through_their_keys() {
        let t = Target::Network("proximus".into());
        assert_eq!(t.key(), "network:proximus");
        assert_eq!(Target::parse(&t.key()), Some(t));
        assert_eq!(Target::parse("network:"), None);
        assert_eq!(Target::parse("siren:"), None);
        assert_eq!(Target::parse("fax:x"), None);
        let s = Target::Siren("port".into());
        assert_eq!(s.key(), "siren:port");
        assert_eq!(Target::parse("siren:port"), Some(s));
    }
}
