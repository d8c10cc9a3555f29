//! The send-public handler on its sample event (events/send-public.json):
//! three jobs from the three public queues, in-process on the embedded home.
#![allow(clippy::unwrap_used)]

use aws_lambda_events::event::sqs::SqsEvent;
use bealert_core::AlertId;
use bealert_core::delivery::DeliveryStatus;
use bealert_embedded::testing::{TestHome, check_refuses_to_start_without_configuration};
use bealert_providers::publicsim::Published;

const EVENT: &str = include_str!("../../../events/send-public.json");

#[tokio::test]
async fn each_queues_job_reaches_its_outlet_once_and_settles_the_alert() {
    each_outlet_once_and_settled(TestHome::new().await).await;
}

/// Outlets' deliveries are kept apart from Alert-SMS: a home without
/// mobile networks publishes the same (before, every public job failed
/// there: "Alert-SMS is not set up in this home").
#[tokio::test]
async fn public_channels_work_in_a_home_without_alert_sms() {
    each_outlet_once_and_settled(TestHome::without_networks().await).await;
}

async fn each_outlet_once_and_settled(home: TestHome) {
    let event = || serde_json::from_str::<SqsEvent>(EVENT).unwrap();
    let body: serde_json::Value =
        serde_json::from_str(event().records[0].body.as_deref().unwrap()).unwrap();
    let id: AlertId = body["alert_id"].as_str().unwrap().parse().unwrap();
    home.outlet(serde_json::json!({"name": "mastodon-be", "kind": "social", "url": "sim", "preset": "mastodon"}))
        .await;
    home.outlet(
        serde_json::json!({"name": "zwijndrecht", "kind": "siren", "url": "sim",
        "position": [4.355, 50.855], "sirens": 6}),
    )
    .await;
    home.outlet(serde_json::json!({"name": "vms-flanders", "kind": "sign", "url": "sim"}))
        .await;
    home.public_alert(
        id,
        serde_json::json!({"social": ["mastodon-be"], "signs": ["vms-flanders"],
            "sirens": {"groups": ["zwijndrecht"], "tone": "test"}}),
    )
    .await;
    let run = async |e| {
        send_public::handler(
            &home.app,
            lambda_runtime::LambdaEvent::new(e, lambda_runtime::Context::default()),
        )
        .await
        .unwrap()
    };
    let first = run(event()).await;
    assert!(
        first.batch_item_failures.is_empty(),
        "{:?}",
        first.batch_item_failures
    );
    let sim = &home.embedded.public_simulator;
    let again = run(event()).await;
    assert!(again.batch_item_failures.is_empty());
    for outlet in ["mastodon-be", "zwijndrecht", "vms-flanders"] {
        assert_eq!(
            sim.requests(outlet),
            1,
            "{outlet}: a redelivered job publishes no more"
        );
    }
    assert_eq!(
        sim.published("mastodon-be").len(),
        2,
        "one post per language"
    );
    assert!(matches!(
        sim.published("zwijndrecht")[0].1,
        Published::Sound {
            tone: bealert_core::outlet::Tone::Test,
            activated: 6,
            acknowledged: 6
        }
    ));
    let op = home
        .app
        .authenticate(Some(&format!(
            "Bearer {}",
            bealert_embedded::testing::SAMPLE_KEY
        )))
        .await
        .unwrap();
    let view = home.app.alert_view(&op, &id.to_string()).await.unwrap();
    assert_eq!(view.public.len(), 3, "{:?}", view.public);
    assert!(
        view.public
            .values()
            .all(|o| o.state == DeliveryStatus::Sent)
    );
    assert_eq!(view.state, bealert_core::alert::AlertState::Sent);

    // A body that is not a job fails its record only.
    let mut broken = event();
    broken.records[0].body = Some("{not json".into());
    let r = run(broken).await;
    assert_eq!(r.batch_item_failures.len(), 1);
}

#[test]
fn it_consumes_the_public_queues() {
    for kind in bealert_core::outlet::OutletKind::ALL {
        let q = bealert_app::jobs::public_queue(kind);
        assert!(EVENT.contains(&format!("bealert-prod-{q}\"")), "{q}");
    }
}

#[test]
fn without_its_configuration_the_function_refuses_to_start_naming_what_is_missing() {
    check_refuses_to_start_without_configuration(
        env!("CARGO_BIN_EXE_send-public"),
        send_public::REQUIRED_ENV,
        "BEALERT_PUBLIC_SIREN_QUEUE_URL",
    );
}
