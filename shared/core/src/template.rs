//! Alert templates: prepared alerts per event type — texts in the four
//! languages with `{placeholders}`, default severity, urgency, certainty,
//! channels and status. An alert from a template only fills the blanks:
//! what the request gives wins.

use crate::Language;
use crate::cap::{Certainty, Severity, Status, Urgency};
use crate::channel::parse_channels;
use crate::error::{Collector, ValidationErrors};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The longest value a placeholder takes.
pub const MAX_VALUE_CHARS: usize = 200;

/// `PUT /v1/alert-templates/{name}` body, and the template as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertTemplate {
    pub event: String,
    /// Texts per language (nl, fr, de, en), with `{name}` placeholders.
    pub messages: BTreeMap<String, String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::error::present"
    )]
    pub severity: Option<Severity>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::error::present"
    )]
    pub urgency: Option<Urgency>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::error::present"
    )]
    pub certainty: Option<Certainty>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::error::present"
    )]
    pub channels: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::error::present"
    )]
    pub status: Option<Status>,
    /// Cancel wording: a cancel that names this template (`:cancel` with
    /// `{"template": name}`) says only this fixed text, so it goes at once
    /// like bealert's own cancel wording, without a second person. Its only
    /// blanks are `{event}` and `{at}`, which bealert fills from the
    /// original: nobody can slip words of their own into it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancel_wording: bool,
}

/// The blanks a cancel-wording template may have (filled by bealert).
pub const CANCEL_PLACEHOLDERS: [&str; 2] = ["event", "at"];

/// A template's name: `flood`, `chemical-leak` (lowercase, digits, dashes).
pub fn validate_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.as_bytes()[0].is_ascii_lowercase();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a template name: 1 to 64 lowercase letters, digits or dashes, starting with a letter (e.g. chemical-leak)"
        ))
    }
}

/// The placeholders of a text, or where its braces go wrong.
pub fn placeholders(text: &str) -> Result<BTreeSet<String>, String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(open) = rest.find(['{', '}']) {
        if rest.as_bytes()[open] == b'}' {
            return Err("a } without its {: write placeholders as {name}".into());
        }
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or("a { without its }: write placeholders as {name}")?;
        let name = &after[..close];
        let valid = !name.is_empty()
            && name.len() <= 40
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && name.as_bytes()[0].is_ascii_lowercase();
        if !valid {
            return Err(format!(
                "{{{name}}} is not a placeholder: use lowercase letters, digits and _ (e.g. {{river}})"
            ));
        }
        out.insert(name.to_string());
        rest = &after[close + 1..];
    }
    Ok(out)
}

impl AlertTemplate {
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = Collector::default();
        if self.event.trim().is_empty() || self.event.chars().count() > 200 {
            errors.push("event", "describe the event in 1 to 200 characters");
        }
        if self.messages.is_empty() {
            errors.push(
                "messages",
                "give the text in at least one of nl, fr, de, en",
            );
        }
        for (code, text) in &self.messages {
            let path = format!("messages.{code}");
            if Language::from_code(code).is_none() {
                errors.push(
                    path,
                    format!("unknown language {code:?}; {}", Language::EXPECTED),
                );
            } else if text.trim().is_empty() || text.chars().count() > crate::alert::MAX_TEXT_CHARS
            {
                errors.push(path, "give 1 to 4000 characters");
            } else if let Err(e) = placeholders(text) {
                errors.push(path, e);
            }
        }
        // Every alert from it (a drill's too) has CAP's three values.
        for (name, missing) in [
            ("severity", self.severity.is_none()),
            ("urgency", self.urgency.is_none()),
            ("certainty", self.certainty.is_none()),
        ] {
            if missing {
                errors.push(
                    name,
                    "give the template's default (an alert from it may still say otherwise)",
                );
            }
        }
        if self.cancel_wording {
            let other: Vec<String> = self
                .all_placeholders()
                .into_iter()
                .filter(|p| !CANCEL_PLACEHOLDERS.contains(&p.as_str()))
                .collect();
            if !other.is_empty() {
                errors.push(
                    "cancel_wording",
                    format!(
                        "a cancel wording is fixed text: its only blanks may be {{event}} and {{at}}, which bealert fills; remove {}",
                        other
                            .iter()
                            .map(|p| format!("{{{p}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
        if let Some(c) = &self.channels {
            if c.is_empty() {
                errors.push(
                    "channels",
                    "choose at least one of sms, voice, email, or leave channels out for all three",
                );
            }
            parse_channels("channels", c, &mut errors);
        }
        errors.finish(())
    }

    /// A cancel-wording template's texts for the original's event and time.
    pub fn cancel_texts(&self, event: &str, at: &str) -> BTreeMap<String, String> {
        self.messages
            .iter()
            .map(|(code, text)| {
                let filled = text.replace("{event}", event).replace("{at}", at);
                (code.clone(), filled)
            })
            .collect()
    }

    /// Every placeholder its texts use.
    pub fn all_placeholders(&self) -> BTreeSet<String> {
        self.messages
            .values()
            .filter_map(|t| placeholders(t).ok())
            .flatten()
            .collect()
    }

    /// Fills the blanks of an alert request (a JSON object naming this
    /// template): the fields it leaves out come from the template, and
    /// the template's texts get `values` in their placeholders.
    pub fn fill(
        &self,
        request: &mut serde_json::Map<String, serde_json::Value>,
        values: &BTreeMap<String, String>,
    ) -> Result<(), ValidationErrors> {
        let mut errors = Collector::default();
        let mut default = |key: &str, value: Option<serde_json::Value>| {
            if !request.contains_key(key)
                && let Some(v) = value
            {
                request.insert(key.to_string(), v);
            }
        };
        default("event", Some(self.event.clone().into()));
        default("severity", self.severity.map(|v| serde_json::json!(v)));
        default("urgency", self.urgency.map(|v| serde_json::json!(v)));
        default("certainty", self.certainty.map(|v| serde_json::json!(v)));
        default("status", self.status.map(|v| serde_json::json!(v)));
        default(
            "channels",
            self.channels.clone().map(|c| serde_json::json!(c)),
        );
        for (name, value) in values {
            if value.chars().count() > MAX_VALUE_CHARS {
                errors.push(
                    format!("values.{name}"),
                    format!("at most {MAX_VALUE_CHARS} characters"),
                );
            }
        }
        if !request.contains_key("messages") {
            let mut texts = serde_json::Map::new();
            for (code, text) in &self.messages {
                let mut filled = text.clone();
                for name in placeholders(text).unwrap_or_default() {
                    match values.get(&name) {
                        Some(v) => filled = filled.replace(&format!("{{{name}}}"), v),
                        None => errors.push(
                            format!("values.{name}"),
                            format!("the template's {code} text needs a value for {{{name}}}"),
                        ),
                    }
                }
                texts.insert(code.clone(), filled.into());
            }
            request.insert("messages".into(), texts.into());
        }
        errors.finish(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flood() -> AlertTemplate {
        serde_json::from_value(json!({
            "event": "Flood",
            "messages": {"nl": "Overstroming van de {river}. Ga naar hoger gelegen plaatsen.",
                         "fr": "Crue de la {river}. Montez à l'étage."},
            "severity": "Severe", "urgency": "Immediate", "certainty": "Likely",
            "channels": ["sms", "voice"]
        }))
        .unwrap()
    }

    #[test]
    fn a_cancel_wording_has_no_blank_a_person_could_fill() {
        let mut t = flood();
        t.cancel_wording = true;
        let e = t.validate().unwrap_err().to_string();
        assert!(e.contains("{river}"), "{e}");
        let fixed: AlertTemplate = serde_json::from_value(json!({
            "event": "Gas leak", "cancel_wording": true,
            "messages": {"nl": "Het alarm {event} van {at} is ingetrokken."},
            "severity": "Minor", "urgency": "Past", "certainty": "Observed"
        }))
        .unwrap();
        fixed.validate().unwrap();
        assert_eq!(
            fixed.cancel_texts("Brand", "7/12 03:12")["nl"],
            "Het alarm Brand van 7/12 03:12 is ingetrokken."
        );
        // An ordinary template says nothing of it.
        let shown = serde_json::to_value(flood()).unwrap();
        assert!(shown.get("cancel_wording").is_none());
    }

    #[test]
    fn a_template_fills_only_the_blanks() {
        let t = flood();
        t.validate().unwrap();
        assert_eq!(t.all_placeholders(), BTreeSet::from(["river".to_string()]));
        let mut req = json!({"status": "Exercise", "certainty": "Observed", "area": {}})
            .as_object()
            .unwrap()
            .clone();
        t.fill(&mut req, &BTreeMap::from([("river".into(), "Maas".into())]))
            .unwrap();
        assert_eq!(req["event"], "Flood");
        assert_eq!(req["certainty"], "Observed", "the request wins");
        assert_eq!(req["severity"], "Severe");
        assert_eq!(req["status"], "Exercise");
        assert_eq!(
            req["messages"]["nl"],
            "Overstroming van de Maas. Ga naar hoger gelegen plaatsen."
        );
        let mut missing = serde_json::Map::new();
        let e = t.fill(&mut missing, &BTreeMap::new()).unwrap_err();
        assert_eq!(e.0[0].path, "values.river");
        let mut own = json!({"messages": {"en": "Own words"}})
            .as_object()
            .unwrap()
            .clone();
        t.fill(&mut own, &BTreeMap::new()).unwrap();
        assert_eq!(
            own["messages"],
            json!({"en": "Own words"}),
            "own texts need no values"
        );
    }

    #[test]
    fn bad_templates_and_placeholders_are_named() {
        assert!(placeholders("a {b} c {d_2}").is_ok());
        assert!(placeholders("a {B}").is_err());
        assert!(placeholders("a {b").is_err());
        assert!(placeholders("a b}").is_err());
        let mut t = flood();
        t.messages.insert("xx".into(), "x".into());
        t.messages.insert("de".into(), "Hochwasser {Fluss}".into());
        let paths: Vec<String> = t
            .validate()
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(paths, ["messages.de", "messages.xx"]);
        assert!(validate_name("chemical-leak").is_ok());
        assert!(validate_name("Chemical").is_err());
        assert!(validate_name("").is_err());
    }
}
