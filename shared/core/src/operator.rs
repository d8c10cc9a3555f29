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
}

impl Operator {
    /// Whether this person may do `task` at all (where, the territory
    /// decides).
    pub fn may(&self, task: Task) -> bool {
        !task.national_only() || self.jurisdiction.is_national()
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
    fn national_tasks_are_national_operators_only() {
        let op = |j: &str| Operator {
            name: "x".into(),
            jurisdiction: j.parse().unwrap(),
            user: "x".into(),
            groups: vec![],
        };
        assert_eq!(op("national").tasks(), Task::ALL);
        assert_eq!(
            op("municipality:21009").tasks(),
            [Task::Alert, Task::Approve, Task::Drills]
        );
        assert!(!op("province:10000").may(Task::Import));
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
