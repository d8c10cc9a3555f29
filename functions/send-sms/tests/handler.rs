//! The send-sms handler on its sample event (events/send-sms.json), in-process on the embedded home.
#![allow(clippy::unwrap_used)]

use aws_lambda_events::event::sqs::SqsEvent;
use bealert_core::{AlertId, Channel, Language, SubscriberId};
use bealert_embedded::testing::TestHome;
use lambda_runtime::{Context, LambdaEvent};

const EVENT: &str = include_str!("../../../events/send-sms.json");

fn event() -> SqsEvent {
    serde_json::from_str(EVENT).unwrap()
}

fn alert_id() -> AlertId {
    let body: serde_json::Value =
        serde_json::from_str(event().records[0].body.as_deref().unwrap()).unwrap();
    body["alert_id"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn the_sample_batch_is_sent_once_and_a_redelivery_sends_nothing() {
    let home = TestHome::new().await;
    let sub = |s: &str| s.parse::<SubscriberId>().unwrap();
    home.alert_with(
        alert_id(),
        Channel::Sms,
        &[
            (sub("1a2b3c4d5e6f7a8b"), "+32470123456", Language::Nl),
            (sub("2b3c4d5e6f7a8b9c"), "+32471234567", Language::Fr),
        ],
    )
    .await;
    let first = send_sms::handler(&home.app, LambdaEvent::new(event(), Context::default()))
        .await
        .unwrap();
    assert!(
        first.batch_item_failures.is_empty(),
        "{:?}",
        first.batch_item_failures
    );
    let sent = home.outbox(Channel::Sms);
    assert_eq!(sent.len(), 2);
    assert!(
        sent.iter()
            .any(|l| l["to"] == "+32471234567" && l["language"] == "fr")
    );
    let again = send_sms::handler(&home.app, LambdaEvent::new(event(), Context::default()))
        .await
        .unwrap();
    assert!(again.batch_item_failures.is_empty());
    assert_eq!(
        home.outbox(Channel::Sms).len(),
        2,
        "a redelivered batch sends nothing again"
    );
}

#[tokio::test]
async fn an_unreadable_record_is_reported_as_a_batch_item_failure() {
    let home = TestHome::new().await;
    let mut e = event();
    e.records[0].body = Some("{not json".into());
    let r = send_sms::handler(&home.app, LambdaEvent::new(e, Context::default()))
        .await
        .unwrap();
    assert_eq!(r.batch_item_failures.len(), 1);
    assert_eq!(
        r.batch_item_failures[0].item_identifier,
        "send-sms-message-1"
    );
}

#[test]
fn without_its_configuration_the_function_refuses_to_start_naming_what_is_missing() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_send-sms"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for var in send_sms::REQUIRED_ENV {
        assert!(stderr.contains(var), "{var} not named in: {stderr}");
    }
    assert!(stderr.contains("BEALERT_SMS_QUEUE_URL"));
}
