//! The receipts handler on its sample events, in-process on the embedded
//! home: SNS SMS delivery status logs (events/receipts-sms-logs.json, a
//! CloudWatch Logs subscription batch) and the receipts queue
//! (events/receipts-queue.json: SES events and a voice outcome in their SNS
//! envelopes, a subscription confirmation and a broken message).
#![allow(clippy::unwrap_used)]

use bealert_app::ports::{Handover, Outcome, RecipientPlan, Recorded};
use bealert_core::alert::AlertState;
use bealert_core::delivery::{DeliveryStatus, PlannedDelivery};
use bealert_core::{AlertId, Channel, Language, SubscriberId};
use bealert_embedded::testing::TestHome;
use serde_json::{Value, json};

const LOGS: &str = include_str!("../../../events/receipts-sms-logs.json");
const QUEUE: &str = include_str!("../../../events/receipts-queue.json");

async fn run(home: &TestHome, event: &str) -> Result<Value, lambda_runtime::Error> {
    receipts::handler(
        &home.app,
        lambda_runtime::LambdaEvent::new(
            serde_json::from_str(event).unwrap(),
            lambda_runtime::Context::default(),
        ),
    )
    .await
}

/// Two subscribers, an alert of `status` to them handed over on every
/// channel under the ids the sample events name.
async fn sent_alert(home: &TestHome, status: &str) -> AlertId {
    home.import(json!({"subscribers": [
        {"external_id": "a", "language": "nl", "phone": "+32470000101", "email": "a@example.be",
         "channels": ["sms", "voice", "email"], "addresses": [{"lat": 50.85, "lon": 4.35}]},
        {"external_id": "b", "language": "fr", "phone": "+32470000102", "email": "b@example.be",
         "channels": ["sms", "email"], "addresses": [{"lat": 50.85, "lon": 4.35}]}
    ]}))
    .await;
    let (a, b) = (
        SubscriberId::from_external_id("a"),
        SubscriberId::from_external_id("b"),
    );
    let id = AlertId::new();
    home.insert_alert(
        id,
        AlertState::Sending,
        json!({"status": status, "event": "Fire", "severity": "Severe", "urgency": "Immediate",
               "certainty": "Observed", "messages": {"nl": "Sluit ramen", "fr": "Fermez les fenêtres"},
               "area": {"circles": [{"lat": 50.85, "lon": 4.35, "radius_km": 1.0}]}}),
    )
    .await;
    let d = |sub, channel, to: &str, language| PlannedDelivery {
        subscriber_id: sub,
        channel,
        to: to.into(),
        language,
    };
    let store = &home.app.ports.deliveries;
    store
        .plan_deliveries(
            id,
            0,
            &[
                RecipientPlan {
                    subscriber_id: a,
                    external_id: Some("a".into()),
                    deliveries: vec![
                        d(a, Channel::Sms, "+32470000101", Language::Nl),
                        d(a, Channel::Voice, "+32470000101", Language::Nl),
                        d(a, Channel::Email, "a@example.be", Language::Nl),
                    ],
                },
                RecipientPlan {
                    subscriber_id: b,
                    external_id: Some("b".into()),
                    deliveries: vec![
                        d(b, Channel::Sms, "+32470000102", Language::Fr),
                        d(b, Channel::Email, "b@example.be", Language::Fr),
                    ],
                },
            ],
        )
        .await
        .unwrap();
    // Handed over, under the ids the sample events name.
    let now = bealert_app::now_ms();
    for (channel, sent) in [
        (
            Channel::Sms,
            vec![
                (a, "sns", "b2c1a7f0-sns-0001"),
                (b, "sns", "b2c1a7f0-sns-0002"),
            ],
        ),
        (Channel::Voice, vec![(a, "voice", "d9f1-voice-0001")]),
        (
            Channel::Email,
            vec![
                (a, "ses", "0102019a-ses-0001"),
                (b, "ses", "0102019a-ses-0002"),
            ],
        ),
    ] {
        let subs: Vec<SubscriberId> = sent.iter().map(|s| s.0).collect();
        store
            .claim(id, channel, &subs, now, std::time::Duration::from_secs(30))
            .await
            .unwrap();
        let outcomes: Vec<Recorded> = sent
            .iter()
            .map(|(sub, provider, pid)| {
                let lang = if *sub == a {
                    Language::Nl
                } else {
                    Language::Fr
                };
                Recorded::new(*sub, 1, Outcome::Sent, lang).via(Some(Handover {
                    provider: (*provider).into(),
                    id: Some((*pid).into()),
                }))
            })
            .collect();
        assert!(
            store
                .record(id, channel, &outcomes, now)
                .await
                .unwrap()
                .iter()
                .all(|r| *r)
        );
    }

    id
}

#[tokio::test]
async fn the_sample_events_mark_deliveries_and_stop_dead_contacts() {
    let home = TestHome::new().await;
    let id = sent_alert(&home, "Actual").await;
    let (a, b) = (
        SubscriberId::from_external_id("a"),
        SubscriberId::from_external_id("b"),
    );
    let store = &home.app.ports.deliveries;
    let logs = run(&home, LOGS).await.unwrap();
    assert_eq!(
        (&logs["applied"], &logs["ignored"]),
        (&json!(2), &json!(1)),
        "two of ours, one not (and a broken line skipped): {logs}"
    );
    let queue = run(&home, QUEUE).await.unwrap();
    assert_eq!(queue["applied"], 3, "{queue}");

    let rows = store.list_deliveries(id, None, 10).await.unwrap();
    let row = |sub, channel| {
        rows.iter()
            .find(|r| r.subscriber_id == sub && r.channel == channel)
            .unwrap()
    };
    assert_eq!(row(a, Channel::Sms).status, DeliveryStatus::Delivered);
    assert_eq!(row(a, Channel::Voice).status, DeliveryStatus::Delivered);
    assert_eq!(row(a, Channel::Email).status, DeliveryStatus::Delivered);
    assert_eq!(
        (
            row(b, Channel::Sms).status,
            row(b, Channel::Sms).error.as_deref()
        ),
        (
            DeliveryStatus::Failed,
            Some("This phone number is opted out")
        )
    );
    assert!(
        row(b, Channel::Email)
            .error
            .as_deref()
            .unwrap()
            .contains("550 5.1.1 user unknown")
    );
    // The opted-out number and the bounced address are off their channels.
    let subs = &home.app.ports.subscribers;
    let b_now = subs.get_subscriber(b).await.unwrap().unwrap();
    assert!(b_now.channels.is_empty(), "{:?}", b_now.channels);
    let a_now = subs.get_subscriber(a).await.unwrap().unwrap();
    assert_eq!(a_now.channels.iter().count(), 3);
    assert_eq!(queue["contacts_stopped"], 1);
    assert_eq!(logs["contacts_stopped"], 1);

    // Delivered twice (SNS and SQS deliver at least once): nothing changes.
    let again = run(&home, QUEUE).await.unwrap();
    assert_eq!(
        (again["applied"].as_u64(), again["unchanged"].as_u64()),
        (Some(0), Some(3))
    );
    let counts = store.counts(id).await.unwrap();
    assert_eq!(counts.channels[&Channel::Sms].delivered, 1);
    assert_eq!(counts.channels[&Channel::Sms].failed, 1);
    assert_eq!(counts.channels[&Channel::Email].delivered, 1);

    assert!(run(&home, r#"{"detail": {}}"#).await.is_err());
}

#[tokio::test]
async fn a_delivered_test_message_is_the_canary_metric() {
    use tracing_subscriber::prelude::*;
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let home = TestHome::new().await;
    sent_alert(&home, "Test").await;
    let buffer = Buffer::default();
    let out = buffer.clone();
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(
        bealert_aws::lambda::EmfLayer::new("bealert", move || out.clone()),
    ));
    run(&home, LOGS).await.unwrap();
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let canary: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|m| m.get("TestDelivered").is_some())
        .collect();
    assert_eq!(
        canary.len(),
        1,
        "one SMS of the Test alert delivered: {text}"
    );
    assert_eq!(
        canary[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([[]])
    );
}
