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
pub fn status_prefix(status: Status, lang: Language) -> &'static str {
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
            subject: Some(email_subject(alert, language, prefix)),
            text: format!(
                "{prefix}{text}\n\n-- \n{} · {:?} · {:?} · {:?}\n",
                alert.event, alert.severity, alert.urgency, alert.certainty
            ),
        },
    };
    Some(rendered)
}

/// An alert e-mail's subject: the marker of an exercise or test, the
/// headline (else the event), and the place when the alert names one.
fn email_subject(alert: &AlertSpec, language: Language, prefix: &str) -> String {
    let what = match (alert.headlines.get(&language), &alert.place) {
        (Some(h), _) => h.clone(),
        (None, Some(_)) => alert.event.clone(),
        (None, None) => format!("bealert: {}", alert.event),
    };
    match &alert.place {
        Some(place) if !what.contains(place.as_str()) => format!("{prefix}{what} – {place}"),
        _ => format!("{prefix}{what}"),
    }
}

/// The line under every alert e-mail that leads to the self-service page.
pub fn manage_line(language: Language, url: &str) -> String {
    match language {
        Language::Nl => format!("Uw inschrijving beheren of stopzetten: {url}"),
        Language::Fr => format!("Gérer ou arrêter votre inscription : {url}"),
        Language::De => format!("Ihre Anmeldung verwalten oder beenden: {url}"),
        Language::En => format!("Manage or stop your registration: {url}"),
    }
}

/// An alert e-mail's two parts: the plain text (the body, then the line
/// to the self-service page) and the same as HTML, escaped, one paragraph
/// per paragraph of text, in the message's language.
pub fn email_parts(body: &str, language: Language, manage_url: Option<&str>) -> (String, String) {
    let text = match manage_url {
        Some(url) => format!("{}\n\n{}\n", body.trim_end(), manage_line(language, url)),
        None => body.to_string(),
    };
    let esc = |t: &str| {
        t.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"></head><body>\n",
        language.code()
    );
    for para in body.trim_end().split("\n\n") {
        html.push_str(&format!("<p>{}</p>\n", esc(para).replace('\n', "<br>\n")));
    }
    if let Some(url) = manage_url {
        let line = manage_line(language, "");
        html.push_str(&format!(
            "<hr>\n<p><small>{}<a href=\"{}\">{}</a></small></p>\n",
            esc(&line),
            esc(url),
            esc(url)
        ));
    }
    html.push_str("</body></html>\n");
    (text, html)
}

/// A Message-ID from a message's idempotency key, in the sender's domain:
/// the same delivery always has the same id, so a copy sent again by
/// accident is one message to the recipient's mail program.
pub fn message_id(key: &str, from: &str) -> String {
    let domain = from
        .rsplit_once('@')
        .map_or("bealert.invalid", |(_, d)| d.trim_end_matches('>'));
    let local: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '.'
            }
        })
        .collect();
    format!("<{local}@{domain}>")
}

/// A message as the recipient gets it: the text, then the alert's
/// signature (issuing authority and time) on its own line.
pub fn signed(text: &str, signature: Option<&str>) -> String {
    match signature {
        Some(s) => format!("{}\n{s}", text.trim_end_matches('\n')),
        None => text.to_string(),
    }
}

/// A verification code's message, in the citizen's language. A call reads
/// the digits one by one, twice (a landline's code comes by voice).
pub fn verification(channel: Channel, language: Language, code: &str) -> Rendered {
    let spoken;
    let code = if channel == Channel::Voice {
        let digits: Vec<String> = code.chars().map(String::from).collect();
        spoken = digits.join(", ");
        spoken.as_str()
    } else {
        code
    };
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
    let text = if channel == Channel::Voice {
        format!("{text} {text}")
    } else {
        text
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
    fn a_code_by_call_is_read_digit_by_digit_twice() {
        let call = verification(Channel::Voice, Language::En, "123456");
        assert_eq!(
            call.text,
            "Your bealert code is 1, 2, 3, 4, 5, 6. Valid for 10 minutes. Never share it. \
             Your bealert code is 1, 2, 3, 4, 5, 6. Valid for 10 minutes. Never share it."
        );
        assert_eq!(call.subject, None);
        let sms = verification(Channel::Sms, Language::En, "123456");
        assert!(sms.text.contains("is 123456."), "{}", sms.text);
    }

    #[test]
    fn an_email_subject_names_the_event_and_the_place() {
        let mut a: AlertSpec =
            serde_json::from_value::<crate::alert::AlertRequest>(serde_json::json!({
                "status": "Exercise", "event": "Chemical leak", "severity": "Severe",
                "urgency": "Immediate", "certainty": "Observed", "place": "Zwijndrecht",
                "messages": {"nl": "Sluit ramen & deuren.\n\nBlijf binnen."},
                "area": {"circles": [{"lat": 51.2, "lon": 4.3, "radius_km": 2}]}
            }))
            .unwrap()
            .validate()
            .unwrap();
        let subject = |a: &AlertSpec| {
            render(a, Channel::Email, Language::Nl)
                .unwrap()
                .subject
                .unwrap()
        };
        assert_eq!(subject(&a), "OEFENING - Chemical leak – Zwijndrecht");
        a.headlines
            .insert(Language::Nl, "Gaslek in Zwijndrecht".into());
        assert_eq!(
            subject(&a),
            "OEFENING - Gaslek in Zwijndrecht",
            "named once"
        );
        a.place = None;
        a.headlines.clear();
        assert_eq!(subject(&a), "OEFENING - bealert: Chemical leak");
    }

    #[test]
    fn an_email_has_a_text_and_an_escaped_html_part_with_the_way_out() {
        let (text, html) = email_parts(
            "Sluit ramen & deuren.\n\nBlijf <binnen>.\nCrisiscentrum",
            Language::Nl,
            Some("https://alert.example/manage"),
        );
        assert!(
            text.ends_with("Uw inschrijving beheren of stopzetten: https://alert.example/manage\n")
        );
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"nl\">"));
        assert!(html.contains("<p>Sluit ramen &amp; deuren.</p>"));
        assert!(html.contains("<p>Blijf &lt;binnen&gt;.<br>\nCrisiscentrum</p>"));
        assert!(html.contains("<a href=\"https://alert.example/manage\">"));
        let (plain, _) = email_parts("Hi", Language::En, None);
        assert_eq!(plain, "Hi");
    }

    #[test]
    fn a_message_id_is_stable_per_delivery_and_in_the_senders_domain() {
        let id = message_id(
            "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b:email:123",
            "BE-Alert <alerts@be-alert.example>",
        );
        assert_eq!(
            id,
            "<0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b.email.123@be-alert.example>"
        );
        assert_eq!(message_id("k", "nobody"), "<k@bealert.invalid>");
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
