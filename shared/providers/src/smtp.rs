//! E-mail through an SMTP relay: a second e-mail route beside SES (or the
//! outbox), configured as `smtp:NAME=URL` in an e-mail provider list.
//!
//! The URL is lettre's: `smtp://host:port` (plain, for a relay on a
//! private network), `smtp://host:587?tls=required` (STARTTLS) or
//! `smtps://host:465`. The account comes from `BEALERT_PROVIDER_USER_<NAME>`
//! and `BEALERT_PROVIDER_TOKEN_<NAME>` (never from a stored setting), the
//! sender from `BEALERT_EMAIL_FROM`. Each recipient gets one message
//! ([`crate::email::email_message`]: text and HTML parts, `List-Unsubscribe`,
//! and a `Message-ID` made from the delivery's key, so a copy sent again
//! after a lost answer is one message to the recipient's mail program).
//!
//! What an answer means for the [`bealert_app::providers::ProviderChain`]:
//! * `550`, `551`, `553` (no such mailbox, not local, not allowed): the
//!   address is dead; the delivery fails for good, with the relay's words;
//! * any other `5xx` (authentication, policy, a relay refusing the
//!   account): this relay certainly did not take it; the next provider may;
//! * `4xx` (greylisting, busy, over quota): throttled, tried again later or
//!   elsewhere;
//! * no connection (refused, TLS failing, nothing answering in time):
//!   nothing can have been sent, so the next provider may send it;
//! * the connection lost or timing out during the transaction: the relay
//!   may have taken it, so only this relay is asked again.

use crate::email::email_message;
use async_trait::async_trait;
use bealert_app::ports::{Gateway, GatewayError, OutboundMessage, Sent};
use futures::StreamExt;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::time::Duration;

/// Messages in flight at once (one pooled connection each).
const PARALLEL: usize = 8;

pub struct SmtpEmail {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: String,
}

impl SmtpEmail {
    /// A relay at `url` (see the module), sending as `from`, with an
    /// optional account, each command answering within `timeout`.
    pub fn new(
        url: &str,
        account: Option<(String, String)>,
        from: &str,
        timeout: Duration,
    ) -> Result<Self, String> {
        let sender: lettre::message::Mailbox = from
            .parse()
            .map_err(|e| format!("the sender {from:?} (BEALERT_EMAIL_FROM): {e}"))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("`{url}` is not an SMTP URL (smtp://host:port, smtps://…): {e}"))?
            .hello_name(ClientId::Domain(sender.email.domain().to_string()))
            .timeout(Some(timeout))
            .pool_config(PoolConfig::new().max_size(PARALLEL as u32));
        if let Some((user, password)) = account {
            builder = builder.credentials(Credentials::new(user, password));
        }
        Ok(Self {
            transport: builder.build(),
            from: from.to_string(),
        })
    }

    async fn send_one(&self, m: &OutboundMessage) -> Result<Sent, GatewayError> {
        if let Some(late) = m.too_late(bealert_app::now_ms()) {
            return Err(late);
        }
        let message = email_message(m, &self.from)?;
        let id = message.headers().get_raw("Message-ID").map(str::to_string);
        match self.transport.send(message).await {
            Ok(_) => Ok(id.map_or_else(Sent::accepted, Sent::accepted_as)),
            Err(e) => Err(classify(&e)),
        }
    }
}

/// What an SMTP failure means for the chain (see the module).
pub fn classify(e: &lettre::transport::smtp::Error) -> GatewayError {
    let said = e.to_string();
    if let Some(code) = e.status() {
        // A reply that declines it: the relay did not take the message.
        return match code.to_string().as_str() {
            "550" | "551" | "553" => GatewayError::Permanent(said),
            _ if e.is_permanent() => GatewayError::Refused(said),
            _ => GatewayError::Throttled(said),
        };
    }
    // lettre names no connection error apart from its text: a connection
    // never made (refused, unresolvable, timing out) is "Connection error";
    // a relay offering no login bealert can use fails before any message.
    let before_any_message = said.starts_with("Connection error")
        || e.is_tls()
        || e.is_transport_shutdown()
        || (e.is_client() && said.contains("authentication mechanism"));
    if before_any_message {
        GatewayError::Refused(said)
    } else {
        GatewayError::Retryable(said)
    }
}

#[async_trait]
impl Gateway for SmtpEmail {
    async fn send(&self, messages: &[OutboundMessage]) -> Vec<Result<Sent, GatewayError>> {
        futures::stream::iter(messages.to_vec())
            .map(|m| async move { self.send_one(&m).await })
            .buffered(PARALLEL)
            .collect()
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bealert_app::ports::MessageKind;
    use bealert_core::{AlertId, Channel, Language, SubscriberId};

    fn mail(to: &str) -> OutboundMessage {
        let (alert, subscriber) = (AlertId::new(), SubscriberId::from_random(3));
        OutboundMessage {
            key: bealert_core::delivery::idempotency_key(alert, Channel::Email, subscriber),
            kind: MessageKind::Alert {
                alert_id: alert,
                subscriber_id: subscriber,
            },
            channel: Channel::Email,
            to: to.into(),
            language: Language::Nl,
            subject: Some("Brand – Gent".into()),
            text: "Sluit ramen en deuren.".into(),
            signature: None,
            not_after: i64::MAX,
            provider: None,
            unsubscribe: None,
        }
    }

    #[tokio::test]
    async fn a_relay_nobody_answers_on_certainly_took_nothing() {
        // A port nothing listens on: the connection is refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let relay = SmtpEmail::new(
            &format!("smtp://127.0.0.1:{port}"),
            None,
            "alerts@be-alert.example",
            Duration::from_secs(2),
        )
        .unwrap();
        let results = relay.send(&[mail("anne@example.be")]).await;
        assert!(
            matches!(&results[0], Err(GatewayError::Refused(_))),
            "{results:?}"
        );
    }

    #[test]
    fn a_bad_url_or_sender_is_refused_with_what_to_fix() {
        let e = SmtpEmail::new("ftp://x", None, "a@b.example", Duration::from_secs(1))
            .err()
            .unwrap();
        assert!(e.contains("not an SMTP URL"), "{e}");
        let e = SmtpEmail::new(
            "smtp://localhost:25",
            None,
            "nobody",
            Duration::from_secs(1),
        )
        .err()
        .unwrap();
        assert!(e.contains("BEALERT_EMAIL_FROM"), "{e}");
    }
}
