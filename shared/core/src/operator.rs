//! Operators (the authorities that send alerts), their jurisdiction and API keys.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// The territory an operator may warn. NIS codes are Statbel's 5-digit codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Jurisdiction {
    National,
    Province(String),
    Municipality(String),
}

/// The NIS codes of Belgium's ten provinces and the Brussels-Capital Region.
pub const PROVINCE_NIS_CODES: [(&str, &str); 11] = [
    ("10000", "Antwerpen"),
    ("20001", "Vlaams-Brabant"),
    ("20002", "Brabant wallon"),
    ("30000", "West-Vlaanderen"),
    ("40000", "Oost-Vlaanderen"),
    ("50000", "Hainaut"),
    ("60000", "Liège"),
    ("70000", "Limburg"),
    ("80000", "Luxembourg"),
    ("90000", "Namur"),
    ("04000", "Brussels-Capital Region"),
];

impl Jurisdiction {
    pub fn is_national(&self) -> bool {
        matches!(self, Jurisdiction::National)
    }
}

impl FromStr for Jurisdiction {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let nis = |code: &str| code.len() == 5 && code.bytes().all(|b| b.is_ascii_digit());
        match s.split_once(':') {
            None if s == "national" => Ok(Jurisdiction::National),
            Some(("province", code)) if PROVINCE_NIS_CODES.iter().any(|(c, _)| *c == code) => {
                Ok(Jurisdiction::Province(code.to_string()))
            }
            Some(("province", code)) => Err(format!(
                "{code:?} is not a province NIS code; use one of {}",
                PROVINCE_NIS_CODES
                    .iter()
                    .map(|(c, n)| format!("{c} ({n})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Some(("municipality", code)) if nis(code) => {
                Ok(Jurisdiction::Municipality(code.to_string()))
            }
            Some(("municipality", code)) => Err(format!(
                "{code:?} is not a municipality NIS code (5 digits, e.g. 21004 for Brussels)"
            )),
            _ => Err(format!(
                "{s:?} is not a jurisdiction; use national, province:<NIS code> or municipality:<NIS code>"
            )),
        }
    }
}

impl TryFrom<String> for Jurisdiction {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Jurisdiction> for String {
    fn from(j: Jurisdiction) -> Self {
        j.to_string()
    }
}

impl fmt::Display for Jurisdiction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Jurisdiction::National => f.write_str("national"),
            Jurisdiction::Province(c) => write!(f, "province:{c}"),
            Jurisdiction::Municipality(c) => write!(f, "municipality:{c}"),
        }
    }
}

/// An operator (an authority) as one of its people acts for it: every
/// person has keys of their own (only their hashes are stored), so two
/// people of one authority are told apart (four-eyes, the audit log) and a
/// key is revoked without touching the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operator {
    pub name: String,
    pub jurisdiction: Jurisdiction,
    /// The person whose key was used (an operator's first person is named
    /// as the operator unless told otherwise).
    pub user: String,
    /// Groups this operator may alert besides its territory (national
    /// operators may alert every group).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// What this person may do (`bealert user create --may ...`).
    #[serde(default)]
    pub rights: Rights,
    /// When the key this request came with stops working (milliseconds
    /// since the epoch); `None` for a key made before keys expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_expires_at_ms: Option<i64>,
}

/// How long a new key works unless told otherwise (90 days).
pub const DEFAULT_KEY_LIFETIME_MS: i64 = 90 * 24 * 3600 * 1000;
/// How long before its end a key is warned of (the console, `GET
/// /v1/operator`'s `key_expires_soon`): 14 days.
pub const KEY_WARNING_MS: i64 = 14 * 24 * 3600 * 1000;

/// A key as it is stored: its hash and when it stops working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyGrant {
    pub hash: String,
    /// Milliseconds since the epoch; `None`: never (only keys made before
    /// keys expired are stored so).
    pub expires_at_ms: Option<i64>,
}

impl KeyGrant {
    /// A new key's grant: `key` hashed, working for `lifetime_ms` from `now_ms`.
    pub fn new(key: &str, now_ms: i64, lifetime_ms: i64) -> Self {
        Self {
            hash: hash_key(key),
            expires_at_ms: Some(now_ms.saturating_add(lifetime_ms)),
        }
    }
}

/// When an old key ends after a rotation with an overlap: the sooner of
/// its own end and the overlap's (an overlap never lengthens a key's life).
pub fn overlap_end(current: Option<i64>, until_ms: i64) -> i64 {
    current.map_or(until_ms, |c| c.min(until_ms))
}

/// One right a person holds (`--may send,approve,contacts,halt,admin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Right {
    /// Create alerts, follow them up, schedule drills.
    Send,
    /// Approve or reject another person's alert.
    Approve,
    /// See recipients' full phone numbers and e-mail addresses (each read
    /// is written to the alert's audit log); others see them masked.
    Contacts,
    /// Stop and resume all sending (national operators).
    Halt,
    /// Prepare templates, outlets, imports, invitations (national operators).
    Admin,
}

impl Right {
    pub const ALL: [Right; 5] = [
        Right::Send,
        Right::Approve,
        Right::Contacts,
        Right::Halt,
        Right::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Right::Send => "send",
            Right::Approve => "approve",
            Right::Contacts => "contacts",
            Right::Halt => "halt",
            Right::Admin => "admin",
        }
    }
}

/// The rights a person holds. A person stored without a list (created
/// before rights existed, or without `--may`) holds [`Rights::DEFAULT`]:
/// what every person could do before, and no more — seeing contacts and
/// stopping everything are always given explicitly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct Rights(std::collections::BTreeSet<Right>);

impl Rights {
    pub const DEFAULT: [Right; 3] = [Right::Send, Right::Approve, Right::Admin];

    pub fn has(&self, right: Right) -> bool {
        self.0.contains(&right)
    }

    pub fn iter(&self) -> impl Iterator<Item = Right> + '_ {
        self.0.iter().copied()
    }

    /// The list, or "read only" for a person with no right (as printed).
    pub fn shown(&self) -> String {
        if self.0.is_empty() {
            "read only".into()
        } else {
            self.to_list()
        }
    }

    /// `send,approve` as stored and printed.
    pub fn to_list(&self) -> String {
        self.iter().map(Right::as_str).collect::<Vec<_>>().join(",")
    }
}

impl Default for Rights {
    fn default() -> Self {
        Rights(Self::DEFAULT.into_iter().collect())
    }
}

impl FromIterator<Right> for Rights {
    fn from_iter<I: IntoIterator<Item = Right>>(iter: I) -> Self {
        Rights(iter.into_iter().collect())
    }
}

impl FromStr for Rights {
    type Err = String;
    /// A comma-separated list (`send,approve`); `none` or nothing for a
    /// read-only person.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() || s == "none" {
            return Ok(Rights(Default::default()));
        }
        s.split(',')
            .map(|r| {
                let r = r.trim();
                Right::ALL
                    .into_iter()
                    .find(|k| k.as_str() == r)
                    .ok_or_else(|| {
                        format!(
                            "{r:?} is not a right; give a comma-separated list of send, approve, contacts, halt, admin (or none)"
                        )
                    })
            })
            .collect()
    }
}

impl TryFrom<Vec<String>> for Rights {
    type Error = String;
    fn try_from(v: Vec<String>) -> Result<Self, Self::Error> {
        v.join(",").parse()
    }
}

impl From<Rights> for Vec<String> {
    fn from(r: Rights) -> Self {
        r.iter().map(|r| r.as_str().to_string()).collect()
    }
}

/// What a person may do. Some tasks are national operators' only: the use
/// cases check [`Operator::may`] and `GET /v1/operator` lists
/// [`Operator::tasks`], so the console offers exactly what the API accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Send alerts inside the territory (and to granted groups).
    Alert,
    /// Approve or reject another person's alert (four-eyes).
    Approve,
    /// Schedule drills and read their reports.
    Drills,
    /// Prepare alert templates.
    Templates,
    /// Import already-verified subscribers.
    Import,
    /// Register public outlets (social accounts, sirens, signs).
    Outlets,
    /// List the mobile networks and their cells.
    Networks,
    /// Invite citizens into groups.
    Invitations,
}

impl Task {
    pub const ALL: [Task; 8] = [
        Task::Alert,
        Task::Approve,
        Task::Drills,
        Task::Templates,
        Task::Import,
        Task::Outlets,
        Task::Networks,
        Task::Invitations,
    ];

    fn national_only(self) -> bool {
        matches!(
            self,
            Task::Templates | Task::Import | Task::Outlets | Task::Networks | Task::Invitations
        )
    }

    /// The right a person needs for it (listing networks needs none).
    pub fn right(self) -> Option<Right> {
        match self {
            Task::Alert | Task::Drills => Some(Right::Send),
            Task::Approve => Some(Right::Approve),
            Task::Templates | Task::Import | Task::Outlets | Task::Invitations => {
                Some(Right::Admin)
            }
            Task::Networks => None,
        }
    }
}

impl Operator {
    /// Why the key this request came with is refused at `now_ms`, if it
    /// has expired (a 401's detail).
    pub fn key_expired(&self, now_ms: i64) -> Option<String> {
        let end = self.key_expires_at_ms.filter(|end| now_ms >= *end)?;
        Some(format!(
            "this key of {} ({}) expired at {}; a person with access to the data directory (or the AWS home) gives a new one with `bealert key rotate --operator {:?} --user {:?}`",
            self.user,
            self.name,
            crate::cap::brussels_rfc3339(end),
            self.name,
            self.user
        ))
    }

    /// Whether the key ends within the warning time ([`KEY_WARNING_MS`]).
    pub fn key_expires_soon(&self, now_ms: i64) -> bool {
        self.key_expires_at_ms
            .is_some_and(|end| end.saturating_sub(now_ms) <= KEY_WARNING_MS)
    }

    /// Whether this person may do `task` at all (where, the territory
    /// decides).
    pub fn may(&self, task: Task) -> bool {
        self.refusal(task).is_none()
    }

    /// Why this person may not do `task` (a 403's detail), if they may not.
    pub fn refusal(&self, task: Task) -> Option<String> {
        if task.national_only() && !self.jurisdiction.is_national() {
            return Some(format!(
                "only national operators may do this; your jurisdiction is {}",
                self.jurisdiction
            ));
        }
        self.lacks(task.right()?)
    }

    /// Why this person may not act with `right`, if they do not hold it.
    pub fn lacks(&self, right: Right) -> Option<String> {
        (!self.rights.has(right)).then(|| {
            format!(
                "{} of {} lacks the right {:?}; a person with access to the data directory (or the AWS home) gives it with `bealert user update --operator {:?} --name {:?} --may {}`",
                self.user,
                self.name,
                right.as_str(),
                self.name,
                self.user,
                {
                    let mut all: Vec<&str> = self.rights.iter().map(Right::as_str).collect();
                    all.push(right.as_str());
                    all.join(",")
                }
            )
        })
    }

    /// Every task this person may do.
    pub fn tasks(&self) -> Vec<Task> {
        Task::ALL.into_iter().filter(|t| self.may(*t)).collect()
    }
}

/// Prefix of every operator API key, so leaked keys are recognisable.
pub const KEY_PREFIX: &str = "bea_";

/// The stored form of an API key. Keys carry 256 random bits, so a plain
/// SHA-256 (no slow KDF) cannot be brute-forced.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Checks an operator name: 1–64 characters, letters, digits, space, `-_.`.
pub fn validate_name(name: &str) -> Result<(), String> {
    check_name(name, "an operator name")
}

/// Checks a person's name within an operator (the same characters).
pub fn validate_user(name: &str) -> Result<(), String> {
    check_name(name, "a person's name")
}

fn check_name(name: &str, what: &str) -> Result<(), String> {
    let ok = !name.trim().is_empty()
        && name.chars().count() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not {what}: use 1 to 64 letters, digits, spaces, '-', '_' or '.'"
        ))
    }
}

#[cfg(test)]
mod task_tests {
    use super::*;

    #[test]
    fn a_key_works_until_its_end_and_is_warned_of_fourteen_days_ahead() {
        const DAY: i64 = 24 * 3600 * 1000;
        let now = 1_800_000_000_000;
        let grant = KeyGrant::new("bea_x", now, DEFAULT_KEY_LIFETIME_MS);
        assert_eq!(grant.hash, hash_key("bea_x"));
        let op = Operator {
            name: "centre".into(),
            jurisdiction: Jurisdiction::National,
            user: "bea".into(),
            groups: vec![],
            rights: Default::default(),
            key_expires_at_ms: grant.expires_at_ms,
        };
        assert_eq!(op.key_expired(now + 90 * DAY - 1), None);
        let why = op.key_expired(now + 90 * DAY).unwrap();
        assert!(
            why.contains("expired") && why.contains("bealert key rotate"),
            "{why}"
        );
        assert!(!op.key_expires_soon(now + 75 * DAY) && op.key_expires_soon(now + 76 * DAY));
        let old = Operator {
            key_expires_at_ms: None,
            ..op
        };
        assert!(old.key_expired(i64::MAX).is_none() && !old.key_expires_soon(i64::MAX));
        // An overlap never lengthens a key's life.
        assert_eq!(overlap_end(Some(now), now + DAY), now);
        assert_eq!(overlap_end(Some(now + 2 * DAY), now + DAY), now + DAY);
        assert_eq!(overlap_end(None, now + DAY), now + DAY);
    }

    #[test]
    fn national_tasks_are_national_operators_only() {
        let op = |j: &str| Operator {
            name: "x".into(),
            jurisdiction: j.parse().unwrap(),
            user: "x".into(),
            groups: vec![],
            rights: Default::default(),
            key_expires_at_ms: None,
        };
        assert_eq!(op("national").tasks(), Task::ALL);
        assert_eq!(
            op("municipality:21009").tasks(),
            [Task::Alert, Task::Approve, Task::Drills]
        );
        assert!(!op("province:10000").may(Task::Import));
    }

    #[test]
    fn rights_decide_what_a_person_may_do_and_a_refusal_names_the_right() {
        let person = |may: &str| Operator {
            name: "centre".into(),
            jurisdiction: Jurisdiction::National,
            user: "bea".into(),
            groups: vec![],
            rights: may.parse().unwrap(),
            key_expires_at_ms: None,
        };
        let approver = person("approve");
        assert!(approver.may(Task::Approve) && !approver.may(Task::Alert));
        let why = approver.refusal(Task::Alert).unwrap();
        assert!(
            why.contains("\"send\"") && why.contains("--may approve,send"),
            "{why}"
        );
        let read_only = person("none");
        assert!(
            read_only.tasks() == [Task::Networks],
            "{:?}",
            read_only.tasks()
        );
        assert!(!Rights::default().has(Right::Contacts));
        assert!(!Rights::default().has(Right::Halt));
        assert!(
            "send,launch"
                .parse::<Rights>()
                .unwrap_err()
                .contains("launch")
        );
        let all: Rights = "send,approve,contacts,halt,admin".parse().unwrap();
        assert_eq!(all.to_list(), "send,approve,contacts,halt,admin");
        let json = serde_json::to_value(&all).unwrap();
        assert_eq!(
            json,
            serde_json::json!(["send", "approve", "contacts", "halt", "admin"])
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jurisdictions_parse_and_print_back() {
        for s in ["national", "province:10000", "municipality:21004"] {
            assert_eq!(s.parse::<Jurisdiction>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn jurisdiction_errors_say_what_is_accepted() {
        let e = "province:12345".parse::<Jurisdiction>().unwrap_err();
        assert!(e.contains("10000 (Antwerpen)"), "{e}");
        let e = "municipality:12".parse::<Jurisdiction>().unwrap_err();
        assert!(e.contains("5 digits"), "{e}");
        assert!("world".parse::<Jurisdiction>().is_err());
    }

    #[test]
    fn key_hash_is_stable_hex_sha256() {
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
