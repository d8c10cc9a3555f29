//! The api-public routes on their sample event (events/api-public.json), in-process on the embedded home.
#![allow(clippy::unwrap_used)]

use bealert_embedded::testing::{TestHome, check_refuses_to_start_without_configuration};
use http_body_util::BodyExt;
use tower::ServiceExt;

const EVENT: &str = include_str!("../../../events/api-public.json");

/// An API Gateway event through the function's router: status, content type, body.
async fn call(home: &TestHome, event: &str) -> (u16, String, String) {
    let request = lambda_http::request::from_str(event).unwrap();
    let response = api_public::router(home.app.clone())
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, kind, String::from_utf8_lossy(&bytes).into_owned())
}

/// The sample event sent to another route.
fn to(method: &str, path: &str) -> String {
    let mut event: serde_json::Value = serde_json::from_str(EVENT).unwrap();
    event["httpMethod"] = method.into();
    event["path"] = path.into();
    event["requestContext"]["httpMethod"] = method.into();
    event["requestContext"]["path"] = format!("/api{path}").into();
    event.to_string()
}

#[tokio::test]
async fn the_sample_request_gets_the_feed() {
    let home = TestHome::new().await;
    let (status, kind, body) = call(&home, EVENT).await;
    assert_eq!(status, 200, "{body}");
    assert!(kind.starts_with("application/atom+xml"), "{kind}");
    assert!(body.contains("<feed"), "{body}");
}

#[tokio::test]
async fn the_public_page_the_console_files_and_receipts_are_served_here() {
    let home = TestHome::new().await;
    for path in ["/alerts", "/console", "/console/console.js"] {
        let (status, _, body) = call(&home, &to("GET", path)).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    // A provider without a token: the route answers, naming what to set.
    let (status, _, body) = call(&home, &to("POST", "/v1/receipts/nobody")).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("BEALERT_RECEIPT_TOKEN"), "{body}");
}

#[tokio::test]
async fn operators_routes_are_not_served_here() {
    let home = TestHome::new().await;
    for (method, path) in [
        ("POST", "/v1/alerts"),
        ("GET", "/v1/alerts"),
        ("POST", "/v1/sending:halt"),
        ("GET", "/v1/operator"),
    ] {
        let (status, _, body) = call(&home, &to(method, path)).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
    }
}

#[test]
fn without_its_configuration_the_function_refuses_to_start_naming_what_is_missing() {
    check_refuses_to_start_without_configuration(
        env!("CARGO_BIN_EXE_api-public"),
        api_public::REQUIRED_ENV,
        "BEALERT_SUBSCRIBERS_TABLE",
    );
}
