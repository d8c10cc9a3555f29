//! The api-signup routes on their sample event (events/api-signup.json), in-process on the embedded home.
#![allow(clippy::unwrap_used)]

use bealert_embedded::testing::{TestHome, check_refuses_to_start_without_configuration};

const EVENT: &str = include_str!("../../../events/api-signup.json");

#[tokio::test]
async fn the_sample_signup_is_registered_pending_and_its_code_sent() {
    let home = TestHome::new().await;
    let (status, body) = TestHome::call_http(api_signup::router(home.app.clone()), EVENT).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["state"], "pending");
    assert_eq!(body["codes_sent"], serde_json::json!(["email"]));
    let outbox = std::fs::read_to_string(home.dir.path().join("outbox/email.jsonl")).unwrap();
    assert!(
        outbox.contains("\"kind\":\"verification\"") && outbox.contains("anna@example.be"),
        "{outbox}"
    );
}

#[tokio::test]
async fn operator_routes_are_not_served_here() {
    let home = TestHome::new().await;
    let other = EVENT.replace("/v1/subscribers\"", "/v1/alerts\"");
    let (status, body) = TestHome::call_http(api_signup::router(home.app.clone()), &other).await;
    assert_eq!(status, 404, "{body}");
}

#[test]
fn without_its_configuration_the_function_refuses_to_start_naming_what_is_missing() {
    check_refuses_to_start_without_configuration(
        env!("CARGO_BIN_EXE_api-signup"),
        api_signup::REQUIRED_ENV,
        "BEALERT_SIGNUP_SECRET",
    );
}
