//! The send-broadcast handler on its sample event (events/send-broadcast.json), in-process on the embedded home.
#![allow(clippy::unwrap_used)]

use aws_lambda_events::event::sqs::SqsEvent;
use bealert_core::AlertId;
use bealert_embedded::testing::{TestHome, check_refuses_to_start_without_configuration};

const EVENT: &str = include_str!("../../../events/send-broadcast.json");

#[tokio::test]
async fn the_sample_job_reaches_its_network_once_and_settles_the_alert() {
    let event = || serde_json::from_str::<SqsEvent>(EVENT).unwrap();
    let body: serde_json::Value =
        serde_json::from_str(event().records[0].body.as_deref().unwrap()).unwrap();
    let id: AlertId = body["alert_id"].as_str().unwrap().parse().unwrap();
    let home = TestHome::new().await;
    home.network_with_cells("proximus").await;
    home.broadcast_alert(id, "proximus").await;
    let run = async |e| {
        send_broadcast::handler(
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
    assert_eq!(home.embedded.simulator.requests("proximus"), 1);
    let again = run(event()).await;
    assert!(again.batch_item_failures.is_empty());
    assert_eq!(
        home.embedded.simulator.requests("proximus"),
        1,
        "a redelivered job reaches the network no more"
    );
    let op = home
        .app
        .authenticate(Some(&format!(
            "Bearer {}",
            bealert_embedded::testing::SAMPLE_KEY
        )))
        .await
        .unwrap();
    let view = home.app.alert_view(&op, &id.to_string()).await.unwrap();
    let p = &view.networks["proximus"];
    assert_eq!(p.state, bealert_core::delivery::DeliveryStatus::Sent);
    assert!(p.cells >= 1 && p.requested == p.delivered, "{p:?}");
    assert_eq!(view.state, bealert_core::alert::AlertState::Sent);

    let mut broken = event();
    broken.records[0].body = Some("{not json".into());
    let r = run(broken).await;
    assert_eq!(r.batch_item_failures.len(), 1);
}

#[test]
fn it_consumes_the_apps_broadcast_queue() {
    assert_eq!(send_broadcast::QUEUE, bealert_app::jobs::BROADCAST_QUEUE);
}

#[test]
fn without_its_configuration_the_function_refuses_to_start_naming_what_is_missing() {
    check_refuses_to_start_without_configuration(
        env!("CARGO_BIN_EXE_send-broadcast"),
        send_broadcast::REQUIRED_ENV,
        "BEALERT_NETWORKS_TABLE",
    );
}
