//! The resolve-zone handler on its sample event (events/resolve-zone.json), in-process on the embedded home.
#![allow(clippy::unwrap_used)]

use aws_lambda_events::event::sqs::SqsEvent;
use bealert_core::AlertId;
use bealert_core::alert::AlertState;
use bealert_embedded::testing::{TestHome, check_refuses_to_start_without_configuration};
use lambda_runtime::{Context, LambdaEvent};

const EVENT: &str = include_str!("../../../events/resolve-zone.json");

#[tokio::test]
async fn the_sample_plan_and_shard_resolve_group_members_and_queue_the_zone() {
    let home = TestHome::new().await;
    let event: SqsEvent = serde_json::from_str(EVENT).unwrap();
    let body: serde_json::Value =
        serde_json::from_str(event.records[0].body.as_deref().unwrap()).unwrap();
    let id: AlertId = body["alert_id"].as_str().unwrap().parse().unwrap();
    home.insert_alert(id, AlertState::Resolving, serde_json::json!({
        "status": "Exercise", "event": "Sample", "severity": "Minor", "urgency": "Future", "certainty": "Possible",
        "messages": {"nl": "Oefening"}, "area": {"circles": [{"lat": 50.85, "lon": 4.35, "radius_km": 1}]},
        "groups": ["rescuers"]
    }))
    .await;
    let rescuer = serde_json::json!({"subscribers": [{"external_id": "r1", "language": "nl", "phone": "+32470123456",
        "channels": ["sms"], "addresses": [{"lat": 51.2, "lon": 4.4}], "groups": ["rescuers"]}]});
    home.import(rescuer).await;

    let r = resolve_zone::handler(&home.app, LambdaEvent::new(event, Context::default()))
        .await
        .unwrap();
    assert!(
        r.batch_item_failures.is_empty(),
        "{:?}",
        r.batch_item_failures
    );
    let alert = home.app.ports.alerts.get_alert(id).await.unwrap().unwrap();
    assert_eq!(
        alert.shards_total,
        Some(2),
        "one zone shard and one group shard planned"
    );
    let counts = home.app.ports.deliveries.counts(id).await.unwrap();
    assert_eq!(
        counts.recipients, 1,
        "the rescuer, found by the sample's group shard"
    );
    assert!(
        home.embedded
            .queue
            .depth(resolve_zone::QUEUE)
            .await
            .unwrap()
            >= 2,
        "the planned shards were queued"
    );
}

#[test]
fn without_its_configuration_the_function_refuses_to_start_naming_what_is_missing() {
    check_refuses_to_start_without_configuration(
        env!("CARGO_BIN_EXE_resolve-zone"),
        resolve_zone::REQUIRED_ENV,
        "BEALERT_EMAIL_QUEUE_URL",
    );
}
