//! The text each recipient receives: language choice and rendering per channel.

use crate::alert::AlertSpec;
use crate::cap::Status;
use crate::{Channel, Language};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An alert's texts by language.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Messages(pub BTreeMap<Language, String>);

impl Messages {
    /// The language a subscriber is written to: their own if the alert has
    /// it, otherwise English if given, otherwise the first of nl, fr, de.
    pub fn pick(&self, wanted: Language) -> Option<(Language, &str)> {
        [
            wanted,
            Language::En,
            Language::Nl,
            Language::Fr,
            Language::De,
        ]
        .into_iter()
        .find_map(|l| self.0.get(&l).map(|t| (l, t.as_str())))
    }
}

/// A message ready for a gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rendered {
    pub language: Language,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub text: String,
}

/// The marker that keeps an exercise or a test from being taken for real.
fn status_prefix(status: Status, lang: Language) -> &'static str {
    match (status, lang) {
        (Status::Actual, _) => "",
        (Status::Exercise, Language::Nl) => "OEFENING - ",
        (Status::Exercise, Language::Fr) => "EXERCICE - ",
        (Status::Exercise, Language::De) => "ÜBUNG - ",
        (Status::Exercise, Language::En) => "EXERCISE - ",
        (Status::Test, _) => "TEST - ",
    }
}

/// Renders an alert for one channel in the subscriber's language (with fallback).
pub fn render(alert: &AlertSpec, channel: Channel, wanted: Language) -> Option<Rendered> {
    let (language, text) = alert.messages.pick(wanted)?;
    let prefix = status_prefix(alert.status, language);
    let rendered = match channel {
        Channel::Sms | Channel::Voice => Rendered {
            language,
            subject: None,
            text: format!("{prefix}{text}"),
        },
        Channel::Email => Rendered {
            language,
            subject: Some(match alert.headlines.get(&language) {
                Some(headline) => format!("{prefix}{headline}"),
                None => format!("{prefix}bealert: {}", alert.event),
            }),
            text: format!(
                "{prefix}{text}\n\n-- \n{} · {:?} · {:?} · {:?}\n",
                alert.event, alert.severity, alert.urgency, alert.certainty
            ),
        },
    };
    Some(rendered)
}

/// A message as the recipient gets it: the text, then the alert's
/// signature (issuing authority and time) on its own line.
pub fn signed(text: &str, signature: Option<&str>) -> String {
    match signature {
        Some(s) => format!("{}\n{s}", text.trim_end_matches('\n')),
        None => text.to_string(),
    }
}

/// A verification code's message, in the citizen's language.
pub fn verification(channel: Channel, language: Language, code: &str) -> Rendered {
    let (text, subject) = match language {
        Language::Nl => (
            format!("Uw bealert-code is {code}. Geldig 10 minuten. Deel hem met niemand."),
            "Uw bealert-code",
        ),
        Language::Fr => (
            format!(
                "Votre code bealert est {code}. Valable 10 minutes. Ne le partagez avec personne."
            ),
            "Votre code bealert",
        ),
        Language::De => (
            format!(
                "Ihr bealert-Code lautet {code}. Gültig 10 Minuten. Geben Sie ihn niemandem weiter."
            ),
            "Ihr bealert-Code",
        ),
        Language::En => (
            format!("Your bealert code is {code}. Valid for 10 minutes. Never share it."),
            "Your bealert code",
        ),
    };
    Rendered {
        language,
        subject: (channel == Channel::Email).then(|| subject.to_string()),
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(pairs: &[(Language, &str)]) -> Messages {
        Messages(pairs.iter().map(|(l, t)| (*l, t.to_string())).collect())
    }

    #[test]
    fn own_language_first_then_english_then_nl_fr_de() {
        let all = msgs(&[
            (Language::Nl, "nl"),
            (Language::Fr, "fr"),
            (Language::De, "de"),
            (Language::En, "en"),
        ]);
        assert_eq!(all.pick(Language::De), Some((Language::De, "de")));
        let no_de = msgs(&[
            (Language::Nl, "nl"),
            (Language::Fr, "fr"),
            (Language::En, "en"),
        ]);
        assert_eq!(no_de.pick(Language::De), Some((Language::En, "en")));
        let fr_de = msgs(&[(Language::Fr, "fr"), (Language::De, "de")]);
        assert_eq!(fr_de.pick(Language::Nl), Some((Language::Fr, "fr")));
        assert_eq!(fr_de.pick(Language::En), Some((Language::Fr, "fr")));
        let de = msgs(&[(Language::De, "de")]);
        assert_eq!(de.pick(Language::Fr), Some((Language::De, "de")));
        assert_eq!(Messages::default().pick(Language::Fr), None);
    }
}
