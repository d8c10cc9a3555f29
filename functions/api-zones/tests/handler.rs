//! The api-zones routes on their sample event (events/api-zones.json), in-process on the embedded home.
#![allow(clippy::unwrap_used)]

use bealert_embedded::testing::{TestHome, check_refuses_to_start_without_configuration};

const EVENT: &str = include_str!("../../../events/api-zones.json");

async fn call(home: &TestHome, event: &str) -> (u16, serde_json::Value) {
    TestHome::call_http(api_zones::router(home.app.clone()), event).await
}

#[tokio::test]
async fn the_sample_request_is_answered() {
    let home = TestHome::new().await;
    let anna = serde_json::json!({"subscribers": [{"language": "nl", "phone": "+32470123456", "channels": ["sms"],
        "addresses": [{"lat": 50.8466, "lon": 4.3528}]}]});
    home.import(anna).await;
    let (status, body) = call(&home, EVENT).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["recipients"], 1);
    assert_eq!(body["by_language"]["nl"], 1);
}

#[tokio::test]
async fn routes_of_other_functions_are_not_served_here() {
    let home = TestHome::new().await;
    let other = EVENT.replace("/v1/zones:preview", "/v1/alerts");
    let (status, body) = call(&home, &other).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["status"], 404);
}

#[test]
fn without_its_configuration_the_function_refuses_to_start_naming_what_is_missing() {
    check_refuses_to_start_without_configuration(
        env!("CARGO_BIN_EXE_api-zones"),
        api_zones::REQUIRED_ENV,
        "BEALERT_OPERATORS_TABLE",
    );
}
