//! The drill handler on its sample event (events/drill.json), in-process on
//! the embedded home: one run per scheduled time, an Exercise.
#![allow(clippy::unwrap_used)]

use bealert_embedded::testing::{
    SAMPLE_KEY, TestHome, check_refuses_to_start_without_configuration,
};

const EVENT: &str = include_str!("../../../events/drill.json");

#[tokio::test]
async fn the_sample_event_runs_its_drill_once() {
    let home = TestHome::new().await;
    let op = home
        .app
        .authenticate(Some(&format!("Bearer {SAMPLE_KEY}")))
        .await
        .unwrap();
    let template = serde_json::json!({"event": "Monthly test", "severity": "Minor",
        "urgency": "Immediate", "certainty": "Observed", "messages": {"nl": "Test."}});
    home.app
        .put_template(&op, "monthly", template.to_string().as_bytes())
        .await
        .unwrap();
    let drill = home
        .app
        .create_drill(
            &op,
            &bealert_core::operator::hash_key(SAMPLE_KEY),
            br#"{"schedule": "cron(0 10 ? * MON#1 *)", "template": "monthly", "groups": ["crew"]}"#,
        )
        .await
        .unwrap();
    let mut event: serde_json::Value = serde_json::from_str(EVENT).unwrap();
    event["drill_id"] = serde_json::json!(drill.id);
    let run = async |e: serde_json::Value| {
        drill::handler(
            &home.app,
            lambda_runtime::LambdaEvent::new(e, lambda_runtime::Context::default()),
        )
        .await
    };
    let first = run(event.clone()).await.unwrap();
    let alert = first["alert_id"].as_str().unwrap().to_string();
    let again = run(event.clone()).await.unwrap();
    assert_eq!(
        again["alert_id"],
        alert.as_str(),
        "EventBridge may deliver twice: one run"
    );
    let view = home.app.alert_view(&op, &alert).await.unwrap();
    assert_eq!(view.status, bealert_core::cap::Status::Exercise);
    let runs = home.app.drill_runs(&op, &drill.id).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].scheduled_at, "2026-12-07T10:00:00+01:00");

    let gone = run(serde_json::json!({"drill_id": "no-such-drill"}))
        .await
        .unwrap();
    assert!(gone["alert_id"].is_null(), "a deleted drill sends nothing");
    assert!(run(serde_json::json!({"nothing": 1})).await.is_err());
}

#[tokio::test]
async fn a_canary_drill_sends_a_test_alert() {
    let home = TestHome::new().await;
    let op = home
        .app
        .authenticate(Some(&format!("Bearer {SAMPLE_KEY}")))
        .await
        .unwrap();
    let template = serde_json::json!({"event": "Heartbeat", "severity": "Minor",
        "urgency": "Immediate", "certainty": "Observed", "messages": {"en": "Canary."}});
    home.app
        .put_template(&op, "canary", template.to_string().as_bytes())
        .await
        .unwrap();
    let drill = home
        .app
        .create_drill(
            &op,
            &bealert_core::operator::hash_key(SAMPLE_KEY),
            br#"{"schedule": "rate(1 hour)", "template": "canary", "groups": ["canary"], "status": "Test"}"#,
        )
        .await
        .unwrap();
    assert_eq!(
        drill.status,
        bealert_app::usecases::drills::DrillStatus::Test
    );
    let ran = drill::handler(
        &home.app,
        lambda_runtime::LambdaEvent::new(
            serde_json::json!({"drill_id": drill.id}),
            lambda_runtime::Context::default(),
        ),
    )
    .await
    .unwrap();
    let view = home
        .app
        .alert_view(&op, ran["alert_id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(view.status, bealert_core::cap::Status::Test);
    // Only Exercise and Test: a drill never sends an Actual alert.
    let refused = home
        .app
        .create_drill(
            &op,
            &bealert_core::operator::hash_key(SAMPLE_KEY),
            br#"{"schedule": "rate(1 hour)", "template": "canary", "groups": ["canary"], "status": "Actual"}"#,
        )
        .await;
    assert!(refused.is_err());
}

#[test]
fn the_function_refuses_to_start_without_its_configuration() {
    check_refuses_to_start_without_configuration(
        env!("CARGO_BIN_EXE_drill"),
        drill::REQUIRED_ENV,
        "BEALERT_ALERTS_TABLE",
    );
}
