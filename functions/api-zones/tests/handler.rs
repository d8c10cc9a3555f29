//! The api-zones routes on their sample event (events/api-zones.json), in-process on the embedded home.
#![allow(clippy::unwrap_used)]

use bealert_embedded::testing::TestHome;
use http_body_util::BodyExt;
use tower::ServiceExt;

const EVENT: &str = include_str!("../../../events/api-zones.json");

async fn call(home: &TestHome, event: &str) -> (u16, serde_json::Value) {
    let request = lambda_http::request::from_str(event).unwrap();
    let response = api_zones::router(home.app.clone())
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn the_sample_request_is_answered() {
    let home = TestHome::new().await;
    let anna = serde_json::json!({"subscribers": [{"language": "nl", "phone": "+32470123456", "channels": ["sms"],
        "addresses": [{"lat": 50.8466, "lon": 4.3528}]}]});
    let op = home
        .app
        .authenticate(Some(&format!(
            "Bearer {}",
            bealert_embedded::testing::SAMPLE_KEY
        )))
        .await
        .unwrap();
    home.app
        .import_subscribers(&op, anna.to_string().as_bytes())
        .await
        .unwrap();
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
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_api-zones"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for var in api_zones::REQUIRED_ENV {
        assert!(stderr.contains(var), "{var} not named in: {stderr}");
    }
    assert!(stderr.contains("BEALERT_OPERATORS_TABLE"));
}
