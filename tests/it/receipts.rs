//! Delivery receipts in the embedded home: the SMS aggregator simulator
//! bealert ships posts a receipt for every message it took to
//! `POST /v1/receipts/agg`, as a real aggregator's webhook would. Deliveries
//! turn `delivered` (or `failed` with the reason), the alert shows counts
//! per language and the time to delivered, and a number that does not exist
//! or opted out is not tried by the next alert.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{Api, Server, alert_body, operator};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const PEOPLE: usize = 40;
const LANGS: [&str; 4] = ["nl", "fr", "de", "en"];
const TOKEN: &str = "receipts-s3cret";

fn phone(i: usize) -> String {
    format!("+3247{:07}", i + 1)
}

async fn alert(api: &Api) -> String {
    let body = alert_body(json!({"circles": [{"lat": 50.851, "lon": 4.353, "radius_km": 1.0}]}));
    let created = api.post("/v1/alerts", &body).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    created.body["id"].as_str().unwrap().to_string()
}

/// Polls the alert until `done` holds for its SMS counts.
async fn wait_for(api: &Api, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let view = api.get(&format!("/v1/alerts/{id}")).await.body;
        if done(&view["channels"]["sms"]) {
            return view;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "receipts never arrived: {view}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn deliveries(api: &Api, id: &str) -> Vec<Value> {
    let page = api
        .get(&format!("/v1/alerts/{id}/deliveries?limit=1000"))
        .await;
    assert_eq!(page.status, 200, "{:?}", page.body);
    page.body["items"].as_array().unwrap().clone()
}

async fn webhook(api: &Api, token: Option<&str>, provider: &str, body: &str) -> common::Answer {
    api.send(
        reqwest::Method::POST,
        &format!("/v1/receipts/{provider}"),
        Some(body.as_bytes().to_vec()),
        token,
        Some("application/json"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn aggregator_receipts_mark_deliveries_delivered_and_stop_dead_numbers() {
    let sim = bealert_providers::http_sms::Simulator::with_token(Some("agg-token"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let agg = format!("http://{}", listener.local_addr().unwrap());
    let router = bealert_providers::http_sms::simulator(sim.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let dir = tempfile::tempdir().unwrap();
    let key = operator(dir.path(), "centre", "national");
    // This test reads deliveries by phone number: the contacts right.
    common::grant_contacts(dir.path(), "centre");
    let providers = format!("http:agg={agg}");
    let server = Server::start(
        dir.path(),
        &[
            ("BEALERT_SMS_PROVIDERS", &providers),
            ("BEALERT_PROVIDER_TOKEN_AGG", "agg-token"),
            ("BEALERT_RECEIPT_TOKEN_AGG", TOKEN),
            // The aggregator is this process's emulator on 127.0.0.1.
            ("BEALERT_ALLOW_PRIVATE_ENDPOINTS", "1"),
        ],
    );
    let api = Api::new(&server.url, &key);
    sim.send_receipts_to(&format!("{}/v1/receipts/agg", server.url), TOKEN);
    // Person 0's number does not exist; person 1 replied STOP once.
    sim.set_fate(&phone(0), "undeliverable");
    sim.set_fate(&phone(1), "opted_out");

    let people: Vec<Value> = (0..PEOPLE)
        .map(|i| {
            json!({
                "external_id": format!("p{i}"), "language": LANGS[i % 4],
                "phone": phone(i), "channels": ["sms", "voice"],
                "addresses": [{"lat": 50.850, "lon": 4.350}]
            })
        })
        .collect();
    let imported = api
        .post("/v1/subscribers:import", &json!({ "subscribers": people }))
        .await;
    assert_eq!(imported.body["imported"], PEOPLE, "{:?}", imported.body);

    let first = alert(&api).await;
    let view = wait_for(&api, &first, |sms| {
        sms["delivered"].as_u64().unwrap_or(0) + sms["failed"].as_u64().unwrap_or(0)
            == PEOPLE as u64
    })
    .await;
    let sms = &view["channels"]["sms"];
    assert_eq!(
        (
            sms["sent"].as_u64(),
            sms["delivered"].as_u64(),
            sms["failed"].as_u64()
        ),
        (Some(PEOPLE as u64 - 2), Some(PEOPLE as u64 - 2), Some(2)),
        "{view}"
    );
    // Per language: the alert has no German text, so German speakers get
    // the English one; the two failures are nl (person 0) and fr (1).
    let langs = &sms["languages"];
    assert_eq!(langs["nl"]["delivered"], 9, "{langs}");
    assert_eq!(langs["nl"]["failed"], 1);
    assert_eq!(langs["fr"]["failed"], 1);
    assert_eq!(langs["en"]["delivered"], 20);
    assert_eq!(langs["en"]["queued"], 0);
    assert!(langs.get("de").is_none(), "{langs}");
    let times = &sms["times"];
    assert_eq!(times["to_delivered"]["count"], PEOPLE as u64 - 2, "{times}");
    assert!(
        times["to_delivered"]["p50_ms"].as_u64() >= times["to_sent"]["p50_ms"].as_u64(),
        "delivered after sent: {times}"
    );
    let rows = deliveries(&api, &first).await;
    let row = |to: &str| {
        rows.iter()
            .find(|r| r["channel"] == "sms" && r["to"] == to)
            .unwrap()
            .clone()
    };
    assert_eq!(row(&phone(0))["status"], "failed");
    assert_eq!(
        row(&phone(0))["error"],
        "undeliverable: the number does not exist"
    );
    assert_eq!(
        row(&phone(1))["error"],
        "opted out: the recipient replied STOP"
    );
    assert_eq!(row(&phone(2))["status"], "delivered");
    assert_eq!(row(&phone(2))["provider"], "agg");

    // A repeated receipt changes nothing; an unknown one is ignored, not an error.
    let again = json!({"id": row(&phone(2))["provider_id"], "status": "failed"}).to_string();
    let answer = webhook(&api, Some(TOKEN), "agg", &again).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["unchanged"], 0, "{:?}", answer.body);
    assert_eq!(
        answer.body["applied"], 1,
        "a late failure after delivery counts"
    );
    let unknown = webhook(
        &api,
        Some(TOKEN),
        "agg",
        r#"[{"id":"agg-999999","status":"delivered"},{"key":"not-a-key","status":"delivered"}]"#,
    )
    .await;
    assert_eq!(unknown.status, 200, "{:?}", unknown.body);
    assert_eq!(unknown.body["ignored"], 2, "{:?}", unknown.body);

    // Bad calls say what to fix.
    for (token, provider, body, status, says) in [
        (
            None,
            "agg",
            r#"{"id":"x","status":"delivered"}"#,
            401,
            "Authorization",
        ),
        (
            Some("wrong"),
            "agg",
            r#"{"id":"x","status":"delivered"}"#,
            401,
            "Bearer",
        ),
        (
            Some(TOKEN),
            "sns",
            r#"{"id":"x","status":"delivered"}"#,
            404,
            "BEALERT_RECEIPT_TOKEN_SNS",
        ),
        (
            Some(TOKEN),
            "agg",
            r#"{"id":"x","status":"lost"}"#,
            400,
            "unknown variant",
        ),
        (
            Some(TOKEN),
            "agg",
            r#"{"status":"delivered"}"#,
            400,
            "Idempotency-Key",
        ),
    ] {
        let a = webhook(&api, token, provider, body).await;
        assert_eq!(a.status, status, "{body}: {:?}", a.body);
        assert!(a.body.to_string().contains(says), "{body}: {:?}", a.body);
    }

    // The next alert leaves the dead number and the STOP alone: SMS and
    // voice for the first, SMS only for the second.
    let second = alert(&api).await;
    let view = api.wait_sent(&second, Duration::from_secs(60)).await;
    let rows = deliveries(&api, &second).await;
    let to = |channel: &str, i: usize| {
        rows.iter()
            .any(|r| r["channel"] == channel && r["to"] == phone(i))
    };
    assert!(
        !to("sms", 0) && !to("voice", 0),
        "a dead number is not tried"
    );
    assert!(!to("sms", 1) && to("voice", 1), "STOP ends SMS only");
    assert!(to("sms", 2) && to("voice", 2));
    assert_eq!(
        view["channels"]["sms"]["sent"].as_u64(),
        Some(PEOPLE as u64 - 2),
        "{view}"
    );
}
