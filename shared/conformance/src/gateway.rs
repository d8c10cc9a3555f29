//! Conformance of the gateway port: at most one send per idempotency key.

use bealert_app::ports::{Gateway, MessageKind, OutboundMessage, Sent};
use bealert_core::{AlertId, Channel, Language, SubscriberId};
use std::sync::Arc;

fn message(alert: AlertId, n: u64) -> OutboundMessage {
    let subscriber = SubscriberId::from_random(n);
    OutboundMessage {
        key: bealert_core::delivery::idempotency_key(alert, Channel::Sms, subscriber),
        kind: MessageKind::Alert {
            alert_id: alert,
            subscriber_id: subscriber,
        },
        channel: Channel::Sms,
        to: format!("+3247000{n:04}"),
        language: Language::Nl,
        subject: None,
        text: "Sluit ramen en deuren".into(),
        signature: None,
        not_after: i64::MAX,
        provider: None,
        unsubscribe: None,
    }
}

/// What each answer was, without the provider's ids (which differ per run).
fn kinds(answers: &[Result<Sent, bealert_app::ports::GatewayError>]) -> Vec<&'static str> {
    answers
        .iter()
        .map(|a| match a {
            Ok(Sent::Accepted(_)) => "accepted",
            Ok(Sent::AlreadySent) => "already sent",
            Err(_) => "error",
        })
        .collect()
}

/// `open` must return a gateway over the same durable state each time.
pub async fn gateway(open: &dyn Fn() -> Arc<dyn Gateway>) {
    let alert = AlertId::new();
    let gw = open();
    let batch = vec![message(alert, 1), message(alert, 2)];
    let first = gw.send(&batch).await;
    assert_eq!(kinds(&first), ["accepted", "accepted"]);
    let mixed = gw.send(&[message(alert, 2), message(alert, 3)]).await;
    assert_eq!(
        kinds(&mixed),
        ["already sent", "accepted"],
        "a key is sent once"
    );
    drop(gw);
    let reopened = open();
    let after = reopened.send(&[message(alert, 1), message(alert, 3)]).await;
    assert_eq!(
        kinds(&after),
        ["already sent", "already sent"],
        "even after a restart"
    );

    // A message whose claim may have run out is not sent, and says so.
    let mut late = message(alert, 4);
    late.not_after = 0;
    let answer = reopened.send(&[late.clone()]).await;
    assert!(
        matches!(
            answer[0],
            Err(bealert_app::ports::GatewayError::Retryable(_))
        ),
        "{answer:?}"
    );
    late.not_after = i64::MAX;
    assert_eq!(
        kinds(&reopened.send(&[late]).await),
        ["accepted"],
        "it was not sent before"
    );
}
