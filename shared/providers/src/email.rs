//! Alert e-mails as MIME, for SES `SendRawEmail` and SMTP: one message per
//! recipient with a text and an HTML part ([`bealert_core::message::email_parts`]),
//! `List-Unsubscribe` pointing at the self-service page, a `Message-ID`
//! made from the delivery's idempotency key (a copy sent again by accident
//! is one message to the recipient's mail program), and the language.

use bealert_app::ports::{GatewayError, OutboundMessage};
use bealert_core::message::{email_parts, message_id};
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};

/// `List-Unsubscribe: <url>` (RFC 2369).
#[derive(Debug, Clone)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.trim_matches(['<', '>']).to_string()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), format!("<{}>", self.0))
    }
}

/// `Content-Language: nl` (RFC 3282).
#[derive(Debug, Clone)]
struct ContentLanguage(String);

impl Header for ContentLanguage {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Content-Language")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.to_string()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// The whole message, ready to hand over (`from`: `Name <address>` or an
/// address). An address that cannot be written is a permanent failure.
pub fn raw_email(m: &OutboundMessage, from: &str) -> Result<Vec<u8>, GatewayError> {
    Ok(email_message(m, from)?.formatted())
}

/// The message with its envelope (for SMTP); see [`raw_email`].
pub fn email_message(m: &OutboundMessage, from: &str) -> Result<lettre::Message, GatewayError> {
    let sender: Mailbox = from
        .parse()
        .map_err(|e| GatewayError::Permanent(format!("the sender {from:?}: {e}")))?;
    let to: Mailbox =
        m.to.parse()
            .map_err(|e| GatewayError::Permanent(format!("not an e-mail address: {e}")))?;
    let (text, html) = email_parts(&m.body(), m.language, m.unsubscribe.as_deref());
    let mut builder = lettre::Message::builder()
        .message_id(Some(message_id(&m.key, sender.email.as_ref())))
        .from(sender)
        .to(to)
        .subject(m.subject.clone().unwrap_or_else(|| "bealert".into()))
        .header(ContentLanguage(m.language.code().to_string()));
    if let Some(url) = &m.unsubscribe {
        builder = builder.header(ListUnsubscribe(url.clone()));
    }
    builder
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| GatewayError::Permanent(format!("the message cannot be written: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bealert_app::ports::MessageKind;
    use bealert_core::{AlertId, Channel, Language, SubscriberId};

    fn mail(to: &str, unsubscribe: Option<&str>) -> OutboundMessage {
        let (alert, subscriber) = (AlertId::new(), SubscriberId::from_random(7));
        OutboundMessage {
            key: bealert_core::delivery::idempotency_key(alert, Channel::Email, subscriber),
            kind: MessageKind::Alert {
                alert_id: alert,
                subscriber_id: subscriber,
            },
            channel: Channel::Email,
            to: to.into(),
            language: Language::Fr,
            subject: Some("Fuite chimique – Zwijndrecht".into()),
            text: "Fermez portes & fenêtres.".into(),
            signature: Some("Centre de crise, 30/11/2026 10:00".into()),
            not_after: i64::MAX,
            provider: None,
            unsubscribe: unsubscribe.map(str::to_string),
        }
    }

    #[test]
    fn an_alert_email_carries_both_parts_and_the_headers_that_keep_it_out_of_spam() {
        let m = mail("anne@example.be", Some("https://alert.example/manage"));
        let raw = String::from_utf8(raw_email(&m, "BE-Alert <alerts@be-alert.example>").unwrap())
            .unwrap();
        let id = message_id(&m.key, "alerts@be-alert.example");
        for header in [
            "From: BE-Alert <alerts@be-alert.example>".to_string(),
            "To: anne@example.be".into(),
            format!("Message-ID: {id}"),
            "List-Unsubscribe: <https://alert.example/manage>".into(),
            "Content-Language: fr".into(),
            "Content-Type: multipart/alternative".into(),
        ] {
            assert!(raw.contains(&header), "{header} missing in\n{raw}");
        }
        assert!(
            raw.contains("Subject: Fuite chimique =?utf-8?b?4oCT?= Zwijndrecht"),
            "an encoded subject: {raw}"
        );
        assert!(raw.contains("Content-Type: text/plain; charset=utf-8"));
        assert!(raw.contains("Content-Type: text/html; charset=utf-8"));
        // Sent again, it is the same message to the mail program.
        let again = String::from_utf8(raw_email(&m, "alerts@be-alert.example").unwrap()).unwrap();
        assert!(again.contains(&format!("Message-ID: {id}")));
    }

    #[test]
    fn a_bad_address_fails_for_good_and_no_page_means_no_unsubscribe_header() {
        assert!(matches!(
            raw_email(&mail("not an address", None), "alerts@be-alert.example"),
            Err(GatewayError::Permanent(_))
        ));
        let raw = raw_email(&mail("a@example.be", None), "alerts@be-alert.example").unwrap();
        assert!(!String::from_utf8(raw).unwrap().contains("List-Unsubscribe"));
    }
}
