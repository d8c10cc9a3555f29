//! The api-networks routes on their sample event (events/api-networks.json), in-process on the embedded home.
#![allow(clippy::unwrap_used)]

use bealert_embedded::testing::{TestHome, check_refuses_to_start_without_configuration};

const EVENT: &str = include_str!("../../../events/api-networks.json");

async fn call(home: &TestHome, event: &str) -> (u16, serde_json::Value) {
    TestHome::call_http(api_networks::router(home.app.clone()), event).await
}

#[tokio::test]
async fn the_sample_request_lists_the_networks() {
    let home = TestHome::new().await;
    home.network_with_cells("orange").await;
    let (status, body) = call(&home, EVENT).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"][0]["name"], "orange");
    assert_eq!(body["items"][0]["cells"], 9);
}

#[tokio::test]
async fn an_operator_key_cannot_replace_cells_and_other_routes_are_not_served_here() {
    let home = TestHome::new().await;
    home.network_with_cells("orange").await;
    let put = EVENT
        .replace("\"GET\"", "\"PUT\"")
        .replace("/v1/networks", "/v1/networks/orange/cells")
        .replace(
            "\"body\": null",
            "\"body\": \"{\\\"type\\\": \\\"FeatureCollection\\\", \\\"features\\\": []}\"",
        );
    let (status, body) = call(&home, &put).await;
    assert_eq!(status, 403, "{body}");
    let other = EVENT.replace("/v1/networks", "/v1/alerts");
    assert_eq!(call(&home, &other).await.0, 404);
}

#[test]
fn without_its_configuration_the_function_refuses_to_start_naming_what_is_missing() {
    check_refuses_to_start_without_configuration(
        env!("CARGO_BIN_EXE_api-networks"),
        api_networks::REQUIRED_ENV,
        "BEALERT_NETWORKS_TABLE",
    );
}
