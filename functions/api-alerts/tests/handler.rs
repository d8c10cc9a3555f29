//! The api-alerts routes on their sample event (events/api-alerts.json), in-process on the embedded home.
#![allow(clippy::unwrap_used)]

use bealert_embedded::testing::{TestHome, check_refuses_to_start_without_configuration};

const EVENT: &str = include_str!("../../../events/api-alerts.json");

async fn call(home: &TestHome, event: &str) -> (u16, serde_json::Value) {
    TestHome::call_http(api_alerts::router(home.app.clone()), event).await
}

#[tokio::test]
async fn the_sample_request_is_answered() {
    let home = TestHome::new().await;
    let (status, body) = call(&home, EVENT).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["state"], "resolving");
}

#[tokio::test]
async fn routes_of_other_functions_are_not_served_here() {
    let home = TestHome::new().await;
    let other = EVENT.replace("/v1/alerts", "/v1/subscribers:import");
    let (status, body) = call(&home, &other).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["status"], 404);
}

#[tokio::test]
async fn public_routes_are_not_served_here() {
    // They are api-public's: outside load must not take the concurrency
    // that creates, approves and cancels alerts.
    let home = TestHome::new().await;
    for (method, path) in [
        ("GET", "/alerts"),
        ("GET", "/feed.atom"),
        ("GET", "/console"),
        ("GET", "/console/console.js"),
        ("POST", "/v1/receipts/nobody"),
    ] {
        let other = EVENT
            .replace("\"POST\"", &format!("\"{method}\""))
            .replace("/v1/alerts", path);
        let (status, body) = call(&home, &other).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert_eq!(body["status"], 404);
    }
}

#[test]
fn without_its_configuration_the_function_refuses_to_start_naming_what_is_missing() {
    check_refuses_to_start_without_configuration(
        env!("CARGO_BIN_EXE_api-alerts"),
        api_alerts::REQUIRED_ENV,
        "BEALERT_RESOLVE_QUEUE_URL",
    );
}
