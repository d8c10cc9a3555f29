//! The AWS home end to end: `bealert serve --backend aws` on LocalStack and
//! DynamoDB Local. An alert's SMS and e-mails are read back from LocalStack,
//! once each, in each recipient's language; a redelivered send job sends
//! nothing again; four-eyes and people's keys work there too.
#![allow(clippy::unwrap_used)]

use crate::common;

use bealert_aws::testkit;
use common::{Api, BIN, Server};
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;

fn env(prefix: &str) -> Vec<(&'static str, String)> {
    vec![
        ("BEALERT_BACKEND", "aws".into()),
        ("BEALERT_TABLE_PREFIX", prefix.into()),
        ("BEALERT_QUEUE_PREFIX", prefix.into()),
        ("BEALERT_EMAIL_FROM", "alerts@bealert.example".into()),
        ("AWS_ENDPOINT_URL", testkit::localstack_url()),
        ("AWS_ENDPOINT_URL_DYNAMODB", testkit::dynamodb_url()),
        ("AWS_REGION", "eu-west-1".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
    ]
}

fn cli(args: &[&str], env: &[(&str, String)]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bealert {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The key a CLI command prints alone on its last line.
fn cli_key(args: &[&str], env: &[(&str, String)]) -> String {
    cli(args, env).lines().last().unwrap().to_string()
}

/// A national operator "centre"; `extra` adds flags (e.g. its first person).
fn national_centre(env: &[(&str, String)], extra: &[&str]) -> String {
    let mut args = vec![
        "operator",
        "create",
        "--name",
        "centre",
        "--jurisdiction",
        "national",
    ];
    args.extend_from_slice(extra);
    cli_key(&args, env)
}

fn sms_to(sent: &Value, phones: &[String]) -> Vec<Value> {
    sent["sms_messages"]
        .as_object()
        .map(|m| {
            m.values()
                .flat_map(|v| v.as_array().cloned().unwrap_or_default())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .filter(|m| phones.iter().any(|p| m["PhoneNumber"] == p.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alert_through_the_aws_home_reaches_everyone_once_in_their_language() {
    testkit::require_stack().await;
    let prefix = testkit::unique_prefix("e2e");
    let env = env(&prefix);
    cli(&["aws", "setup"], &env);
    let key = national_centre(&env, &[]);
    let dir = tempfile::tempdir().unwrap();
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start(dir.path(), &env_ref);
    let api = Api::new(&server.url, &key);

    // Six citizens in Namur, two languages without text in the alert (de -> en).
    let base = 3_000_000 + u64::from(rand::random::<u16>()) * 10;
    let langs = ["fr", "nl", "de", "en", "fr", "fr"];
    let phones: Vec<String> = (0..6).map(|i| bealert_synth::phone(base + i)).collect();
    let subs: Vec<Value> = (0..6)
        .map(|i| {
            json!({"external_id": format!("{prefix}{i}"), "language": langs[i], "phone": phones[i],
                   "email": format!("c{i}.{base}@example.be"), "channels": if i % 2 == 0 { json!(["sms", "email"]) } else { json!(["sms"]) },
                   "addresses": [{"lat": 50.4674 + i as f64 * 0.001, "lon": 4.8720}]})
        })
        .collect();
    let imported = api
        .post("/v1/subscribers:import", &json!({"subscribers": subs}))
        .await;
    assert_eq!(imported.body["imported"], 6, "{:?}", imported.body);
    let preview = api
        .post(
            "/v1/zones:preview",
            &json!({"area": {"circles": [{"lat": 50.47, "lon": 4.872, "radius_km": 2}]}}),
        )
        .await;
    assert_eq!(preview.body["recipients"], 6, "{:?}", preview.body);

    let mut body =
        common::alert_body(json!({"circles": [{"lat": 50.47, "lon": 4.872, "radius_km": 2}]}));
    body["channels"] = json!(["sms", "email"]);
    let created = api.post("/v1/alerts", &body).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let done = api.wait_sent(&id, Duration::from_secs(120)).await;
    assert_eq!(done["recipients"], 6);
    assert_eq!(done["channels"]["sms"]["sent"], 6);
    assert_eq!(done["channels"]["email"]["sent"], 3);

    let sent = testkit::localstack_sent("/_aws/sns/sms-messages?region=eu-west-1").await;
    let sms = sms_to(&sent, &phones);
    assert_eq!(sms.len(), 6, "one SMS each: {sms:?}");
    for (i, phone) in phones.iter().enumerate() {
        let m = sms
            .iter()
            .find(|m| m["PhoneNumber"] == phone.as_str())
            .unwrap();
        let want = match langs[i] {
            "fr" => "Fermez portes et fenêtres",
            "nl" => "Sluit ramen en deuren",
            _ => "Close windows and doors",
        };
        // The text, then the signature: the authority and the time.
        let (text, signature) = m["Message"].as_str().unwrap().rsplit_once('\n').unwrap();
        assert_eq!(text, want, "{} speaks {}", phone, langs[i]);
        assert!(signature.starts_with("centre, "), "{signature}");
    }
    let mail = testkit::localstack_sent("/_aws/ses").await;
    let to_us: Vec<_> = mail["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| {
            testkit::mail_header(m, "To")
                .is_some_and(|t| t.ends_with(&format!(".{base}@example.be")))
        })
        .collect();
    assert_eq!(to_us.len(), 3, "{to_us:?}");
    // Each leads to the self-service page, and says so in its header.
    for m in &to_us {
        let unsubscribe = testkit::mail_header(m, "List-Unsubscribe").unwrap();
        assert!(unsubscribe.ends_with("/manage>"), "{unsubscribe}");
        assert!(m["RawData"].as_str().unwrap().contains("text/html"));
    }

    // Contacts are masked in the AWS home too, until the person holds the
    // `contacts` right; then the read is in the audit log (DynamoDB).
    let masked = api
        .get(&format!("/v1/alerts/{id}/deliveries?limit=100"))
        .await;
    assert!(
        masked.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["to"].as_str().unwrap().contains('•')),
        "{:?}",
        masked.body
    );
    cli(
        &[
            "user",
            "update",
            "--operator",
            "centre",
            "--name",
            "centre",
            "--may",
            "send,approve,admin,contacts",
        ],
        &env,
    );
    // SQS redelivers: the same send job again must not send again.
    let page = api
        .get(&format!("/v1/alerts/{id}/deliveries?limit=100"))
        .await;
    let audit = api.get(&format!("/v1/alerts/{id}/audit")).await.body;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "contacts" && e["user"] == "centre"),
        "{audit}"
    );
    let items: Vec<Value> = page.body["items"].as_array().unwrap().iter().filter(|d| d["channel"] == "sms")
        .map(|d| json!({"subscriber_id": d["subscriber_id"], "to": d["to"], "language": d["language"]})).collect();
    let job = json!({"alert_id": id, "channel": "sms", "deliveries": items});
    let q = bealert_aws::SqsQueue::new(testkit::sqs(), &prefix);
    use bealert_app::ports::JobQueue;
    q.send("send-sms", &[job.to_string(), job.to_string()])
        .await
        .unwrap();
    for _ in 0..100 {
        if q.receive("send-sms", 1, Duration::ZERO, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let again = sms_to(
        &testkit::localstack_sent("/_aws/sns/sms-messages?region=eu-west-1").await,
        &phones,
    );
    assert_eq!(again.len(), 6, "a redelivered job sent nothing new");
    drop(server);
}

/// Alert-SMS in the AWS home: a network created with `--backend aws`
/// uploads its cells through a presigned S3 upload, an operator estimates a
/// zone, and an alert goes out through the (simulated) network.
#[tokio::test(flavor = "multi_thread")]
async fn alert_sms_through_the_aws_home_with_a_presigned_upload() {
    testkit::require_stack().await;
    let prefix = testkit::unique_prefix("asms");
    let mut env = env(&prefix);
    env.push((
        "BEALERT_UPLOADS_BUCKET",
        format!("{}uploads", prefix.trim_end_matches('-')),
    ));
    cli(&["aws", "setup"], &env);
    let key = national_centre(&env, &[]);
    let net = cli_key(&["network", "create", "--name", "proximus"], &env);
    let dir = tempfile::tempdir().unwrap();
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start(dir.path(), &env_ref);
    let api = Api::new(&server.url, &key);

    // A 30 × 30 grid of 0.005° cells, 50 devices each.
    let mut features = Vec::new();
    for i in 0..30 {
        for j in 0..30 {
            let (x, y) = (4.30 + 0.005 * f64::from(i), 50.80 + 0.005 * f64::from(j));
            features.push(json!({"type": "Feature", "properties": {"cell_id": format!("{i}-{j}"), "active_devices": 50},
                "geometry": {"type": "Polygon", "coordinates": [[[x, y], [x + 0.005, y], [x + 0.005, y + 0.005], [x, y + 0.005], [x, y]]]}}));
        }
    }
    let file = json!({"type": "FeatureCollection", "features": features}).to_string();
    let ticket = api
        .send(
            reqwest::Method::POST,
            "/v1/networks/proximus/cells:upload",
            None,
            Some(&net),
            None,
        )
        .await;
    assert_eq!(ticket.status, 200, "{}", ticket.body);
    let put = reqwest::Client::new()
        .put(ticket.body["upload_url"].as_str().unwrap())
        .body(file)
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{:?}", put.text().await);
    let load = api
        .send(
            reqwest::Method::POST,
            "/v1/networks/proximus/cells:load",
            Some(
                json!({"upload_id": ticket.body["upload_id"]})
                    .to_string()
                    .into_bytes(),
            ),
            Some(&net),
            Some("application/json"),
        )
        .await;
    assert_eq!(load.status, 200, "{}", load.body);
    assert_eq!(load.body["cells"], 900);
    // The file is gone once loaded: a second load finds nothing.
    let again = api
        .send(
            reqwest::Method::POST,
            "/v1/networks/proximus/cells:load",
            Some(
                json!({"upload_id": ticket.body["upload_id"]})
                    .to_string()
                    .into_bytes(),
            ),
            Some(&net),
            Some("application/json"),
        )
        .await;
    assert_eq!(again.status, 404, "{}", again.body);

    // 4 × 6 cells of 50 inside, exactly.
    let zone = json!({"geojson": {"type": "Polygon", "coordinates": [[[4.32, 50.83], [4.34, 50.83], [4.34, 50.86], [4.32, 50.86], [4.32, 50.83]]]}});
    let e = api.post("/v1/zones:estimate", &json!({"area": zone})).await;
    assert_eq!(e.status, 200, "{}", e.body);
    assert_eq!(
        e.body["networks"]["proximus"]["reach_devices"], 1200,
        "{}",
        e.body
    );

    let mut alert = common::alert_body(zone);
    alert["channels"] = json!([]);
    alert["broadcast"] = json!({"mode": "cell_broadcast"});
    let created = api.post("/v1/alerts", &alert).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let v = api
        .wait_sent(
            created.body["id"].as_str().unwrap(),
            Duration::from_secs(60),
        )
        .await;
    let p = &v["networks"]["proximus"];
    assert_eq!(
        (
            p["state"].as_str(),
            p["requested"].as_u64(),
            p["delivered"].as_u64()
        ),
        (Some("sent"), Some(1200), Some(1200)),
        "{v}"
    );
}

/// Four-eyes in the AWS home: people's own keys in DynamoDB, an `Actual`
/// alert held until another person approves it, every move in the audit log.
#[tokio::test(flavor = "multi_thread")]
async fn an_actual_alert_waits_for_a_second_person_in_the_aws_home() {
    testkit::require_stack().await;
    let prefix = testkit::unique_prefix("fe");
    let env = env(&prefix);
    cli(&["aws", "setup"], &env);
    let ann = national_centre(&env, &["--user", "ann"]);
    let bob = cli_key(
        &["user", "create", "--operator", "centre", "--name", "bob"],
        &env,
    );
    let dir = tempfile::tempdir().unwrap();
    let mut env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env_ref.push(("BEALERT_APPROVAL", "actual"));
    let server = Server::start(dir.path(), &env_ref);
    let (api, bob_api) = (Api::new(&server.url, &ann), Api::new(&server.url, &bob));
    let base = 5_000_000 + u64::from(rand::random::<u16>()) * 10;
    let phone = bealert_synth::phone(base);
    let imported = api
        .post(
            "/v1/subscribers:import",
            &json!({"subscribers": [{"external_id": format!("{prefix}x"), "language": "fr",
                "phone": phone, "channels": ["sms"], "addresses": [{"lat": 50.4674, "lon": 4.8720}]}]}),
        )
        .await;
    assert_eq!(imported.body["imported"], 1, "{:?}", imported.body);

    let zone = json!({"circles": [{"lat": 50.47, "lon": 4.872, "radius_km": 2}]});
    let created = api.post("/v1/alerts", &common::alert_body(zone)).await;
    assert_eq!(
        created.body["state"], "awaiting_approval",
        "{:?}",
        created.body
    );
    let id = created.body["id"].as_str().unwrap().to_string();
    let own = api
        .post(&format!("/v1/alerts/{id}:approve"), &json!({}))
        .await;
    assert_eq!(own.status, 403, "{:?}", own.body);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held = api.get(&format!("/v1/alerts/{id}")).await.body;
    assert_eq!(held["state"], "awaiting_approval", "{held:?}");
    assert_eq!(
        held["recipients"], 0,
        "nothing planned before approval: {held:?}"
    );
    // The console's reads in this home: the approval queue, who is signed
    // in, the outlines from the DynamoDB geography table.
    let queue = bob_api.get("/v1/alerts?state=awaiting_approval").await;
    assert_eq!(
        queue.body["items"][0]["id"],
        id.as_str(),
        "{:?}",
        queue.body
    );
    assert_eq!(bob_api.get("/v1/operator").await.body["user"], "bob");
    let outlines = bob_api.get("/console/outlines.geojson").await;
    let provinces = outlines.body["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["properties"]["level"] == "province")
        .count();
    assert_eq!(provinces, 10);

    let approved = bob_api
        .post(&format!("/v1/alerts/{id}:approve"), &json!({}))
        .await;
    assert_eq!(approved.status, 200, "{:?}", approved.body);
    let done = api.wait_sent(&id, Duration::from_secs(120)).await;
    assert_eq!(done["channels"]["sms"]["sent"], 1);
    let sent = testkit::localstack_sent("/_aws/sns/sms-messages?region=eu-west-1").await;
    assert_eq!(sms_to(&sent, std::slice::from_ref(&phone)).len(), 1);
    let audit = api.get(&format!("/v1/alerts/{id}/audit")).await.body;
    let steps: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["create", "approve", "sending", "sent"]);
    assert_eq!(audit["items"][1]["user"], "bob");

    // A cancel with words of its own waits for Bob here too, and a retry
    // of it with the same Idempotency-Key creates nothing new (DynamoDB).
    let http = reqwest::Client::new();
    let cancel = || {
        http.post(format!("{}/v1/alerts/{id}:cancel", server.url))
            .header("authorization", format!("Bearer {ann}"))
            .header("idempotency-key", "cancel-once")
            .json(&json!({"messages": {"fr": "EVACUEZ IMMEDIATEMENT"}}))
            .send()
    };
    let first: Value = cancel().await.unwrap().json().await.unwrap();
    let retried = cancel().await.unwrap();
    assert_eq!(retried.status(), 201);
    assert!(retried.headers().get("idempotent-replayed").is_some());
    let retried: Value = retried.json().await.unwrap();
    assert_eq!(first["state"], "awaiting_approval", "{first}");
    assert_eq!(retried["id"], first["id"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = testkit::localstack_sent("/_aws/sns/sms-messages?region=eu-west-1").await;
    assert_eq!(
        sms_to(&sent, std::slice::from_ref(&phone)).len(),
        1,
        "nothing more without a second person"
    );
    let held = first["id"].as_str().unwrap();
    let ok = bob_api
        .post(&format!("/v1/alerts/{held}:approve"), &json!({}))
        .await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    api.wait_sent(held, Duration::from_secs(120)).await;
    let sent = testkit::localstack_sent("/_aws/sns/sms-messages?region=eu-west-1").await;
    assert_eq!(sms_to(&sent, std::slice::from_ref(&phone)).len(), 2);
    let twice = api
        .post(&format!("/v1/alerts/{id}:cancel"), &json!({}))
        .await;
    assert_eq!(twice.status, 409, "{:?}", twice.body);

    // The global stop is kept in DynamoDB: halted, then resumed, both logged.
    let refused = api.post("/v1/sending:halt", &json!({})).await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    cli(
        &[
            "user",
            "update",
            "--operator",
            "centre",
            "--name",
            "ann",
            "--may",
            "send,approve,halt",
        ],
        &env,
    );
    let halted = api.post("/v1/sending:halt", &json!({})).await;
    assert_eq!(halted.body["halted"], true, "{:?}", halted.body);
    assert_eq!(api.get("/v1/sending").await.body["halted"], true);
    let resumed = api.post("/v1/sending:resume", &json!({})).await;
    assert_eq!(resumed.body["halted"], false, "{:?}", resumed.body);
    assert_eq!(resumed.body["log"].as_array().unwrap().len(), 2);

    // Bob's key rotated: refused at once.
    let bob2 = cli_key(
        &["key", "rotate", "--operator", "centre", "--user", "bob"],
        &env,
    );
    assert_eq!(bob_api.get(&format!("/v1/alerts/{id}")).await.status, 401);
    assert_eq!(
        Api::new(&server.url, &bob2)
            .get(&format!("/v1/alerts/{id}"))
            .await
            .status,
        200
    );
}

/// A cancel in the AWS home: the original stops at once (its queued
/// deliveries cancelled in DynamoDB), and each phone it reached gets the
/// cancel after it, once, through SNS.
#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_stops_an_alert_while_it_sends_in_the_aws_home() {
    testkit::require_stack().await;
    let prefix = testkit::unique_prefix("cx");
    let env = env(&prefix);
    cli(&["aws", "setup"], &env);
    let key = national_centre(&env, &[]);
    let dir = tempfile::tempdir().unwrap();
    let mut env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // 10 SMS a second: the original to 60 phones takes six seconds.
    env_ref.push(("BEALERT_SMS_RATE", "10"));
    let server = Server::start(dir.path(), &env_ref);
    let api = Api::new(&server.url, &key);
    let base = 6_000_000 + u64::from(rand::random::<u16>()) * 100;
    let phones: Vec<String> = (0..60).map(|i| bealert_synth::phone(base + i)).collect();
    let people: Vec<Value> = phones
        .iter()
        .enumerate()
        .map(|(i, phone)| {
            json!({"external_id": format!("{prefix}{i}"), "language": "nl",
            "phone": phone, "channels": ["sms"], "addresses": [{"lat": 50.4674, "lon": 4.8720}]})
        })
        .collect();
    let imported = api
        .post("/v1/subscribers:import", &json!({ "subscribers": people }))
        .await;
    assert_eq!(imported.body["imported"], 60, "{:?}", imported.body);
    let zone = json!({"circles": [{"lat": 50.47, "lon": 4.872, "radius_km": 2}]});
    let created = api.post("/v1/alerts", &common::alert_body(zone)).await;
    let id = created.body["id"].as_str().unwrap().to_string();
    let start = std::time::Instant::now();
    loop {
        let v = api.get(&format!("/v1/alerts/{id}")).await.body;
        if v["channels"]["sms"]["sent"].as_u64().unwrap_or(0) >= 5 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cancel = api
        .post(&format!("/v1/alerts/{id}:cancel"), &json!({}))
        .await;
    assert_eq!(cancel.status, 201, "{:?}", cancel.body);
    let cancel_id = cancel.body["id"].as_str().unwrap().to_string();
    api.wait_sent(&cancel_id, Duration::from_secs(120)).await;
    let original = api.get(&format!("/v1/alerts/{id}")).await.body;
    assert_eq!(original["state"], "cancelled");
    let sms = &original["channels"]["sms"];
    let (sent, cancelled) = (
        sms["sent"].as_u64().unwrap(),
        sms["cancelled"].as_u64().unwrap(),
    );
    assert!(cancelled > 0 && sent + cancelled == 60, "{original}");

    let got = testkit::localstack_sent("/_aws/sns/sms-messages?region=eu-west-1").await;
    let mut reached = 0;
    for phone in &phones {
        let texts: Vec<String> = sms_to(&got, std::slice::from_ref(phone))
            .iter()
            .map(|m| m["Message"].as_str().unwrap_or("").to_string())
            .collect();
        match texts.as_slice() {
            [] => {}
            [first, then] => {
                assert!(first.starts_with("Sluit"), "{phone}: {texts:?}");
                assert!(then.starts_with("INGETROKKEN"), "{phone}: {texts:?}");
                reached += 1;
            }
            _ => panic!("{phone}: {texts:?}"),
        }
    }
    assert_eq!(
        reached, sent,
        "every phone the original reached got the cancel after it"
    );
}

/// Fault injection in the AWS home: SNS failing half its calls (refusing
/// some, timing out after sending others), an SMS aggregator over HTTP
/// behind it. Every phone gets the alert once, from one of the two.
#[tokio::test(flavor = "multi_thread")]
async fn sns_failing_half_its_calls_fails_over_to_an_aggregator_and_nobody_gets_two() {
    testkit::require_stack().await;
    let sim = bealert_providers::http_sms::Simulator::with_token(None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = bealert_providers::http_sms::simulator(sim.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let prefix = testkit::unique_prefix("fo");
    let env = env(&prefix);
    cli(&["aws", "setup"], &env);
    let key = national_centre(&env, &[]);
    let dir = tempfile::tempdir().unwrap();
    let providers = format!("sns,http:agg={url}");
    let mut env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env_ref.push(("BEALERT_SMS_PROVIDERS", providers.as_str()));
    env_ref.push(("BEALERT_PROVIDER_FAULTS", "sns:fail=0.5"));
    env_ref.push(("BEALERT_RETRY_BASE_MS", "50"));
    env_ref.push(("BEALERT_RECEIPT_TOKENS", "agg=agg-receipts"));
    // The aggregator is this process's emulator on 127.0.0.1.
    env_ref.push(("BEALERT_ALLOW_PRIVATE_ENDPOINTS", "1"));
    let server = Server::start(dir.path(), &env_ref);
    let api = Api::new(&server.url, &key);
    // The aggregator's receipts come back to the webhook (found in DynamoDB
    // by the aggregator's id, through the deliveries table's index).
    sim.send_receipts_to(&format!("{}/v1/receipts/agg", server.url), "agg-receipts");
    let base = 7_000_000 + u64::from(rand::random::<u16>()) * 100;
    let phones: Vec<String> = (0..40).map(|i| bealert_synth::phone(base + i)).collect();
    let people: Vec<Value> = phones
        .iter()
        .enumerate()
        .map(|(i, phone)| {
            json!({"external_id": format!("{prefix}{i}"), "language": "fr",
            "phone": phone, "channels": ["sms"], "addresses": [{"lat": 50.4674, "lon": 4.8720}]})
        })
        .collect();
    let imported = api
        .post("/v1/subscribers:import", &json!({ "subscribers": people }))
        .await;
    assert_eq!(imported.body["imported"], 40, "{:?}", imported.body);
    let zone = json!({"circles": [{"lat": 50.47, "lon": 4.872, "radius_km": 2}]});
    let created = api.post("/v1/alerts", &common::alert_body(zone)).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let done = api.wait_sent(&id, Duration::from_secs(120)).await;
    assert_eq!(
        (
            done["channels"]["sms"]["sent"].as_u64(),
            done["channels"]["sms"]["failed"].as_u64()
        ),
        (Some(40), Some(0)),
        "{done}"
    );
    let via_sns = sms_to(
        &testkit::localstack_sent("/_aws/sns/sms-messages?region=eu-west-1").await,
        &phones,
    );
    let via_agg = sim.taken();
    for phone in &phones {
        let n = via_sns
            .iter()
            .filter(|m| m["PhoneNumber"] == phone.as_str())
            .count()
            + via_agg.iter().filter(|t| t.to == *phone).count();
        assert_eq!(n, 1, "{phone} got {n} messages");
    }
    assert!(
        !via_agg.is_empty() && !via_sns.is_empty(),
        "both providers carried some"
    );
    // The deliveries say which provider took each.
    let page = api
        .get(&format!("/v1/alerts/{id}/deliveries?limit=100"))
        .await;
    let by_agg = page.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["provider"] == "agg")
        .count();
    assert_eq!(by_agg, via_agg.len());
    // Those SNS took keep SNS's MessageId, for its delivery status events;
    // one whose answer was lost (the injected timeout after sending) has
    // none: the retry finds it already sent.
    let sns_ids = page.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| {
            d["provider"] == "sns" && d["provider_id"].as_str().is_some_and(|i| !i.is_empty())
        })
        .count();
    assert!(
        sns_ids > 0 && sns_ids <= via_sns.len(),
        "{sns_ids} of {}",
        via_sns.len()
    );
    // Every message the aggregator took is confirmed delivered.
    let start = std::time::Instant::now();
    loop {
        let view = api.get(&format!("/v1/alerts/{id}")).await.body;
        let sms = &view["channels"]["sms"];
        if sms["delivered"].as_u64() == Some(via_agg.len() as u64) {
            assert_eq!(
                sms["sent"], 40,
                "delivered ones still count as sent: {view}"
            );
            assert_eq!(
                sms["times"]["to_delivered"]["count"].as_u64(),
                Some(via_agg.len() as u64)
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "receipts not applied: {view}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Public channels in the AWS home: outlets stored in DynamoDB, each
/// channel's jobs on its own LocalStack queue, a failing sign network
/// retried, every outlet published once, and a cancel stops the sirens.
#[tokio::test]
async fn public_channels_through_the_aws_home_publish_once_each() {
    use bealert_providers::publicsim::{PublicSimulator, Published};
    testkit::require_stack().await;
    let sim = PublicSimulator::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        axum::serve(listener, bealert_providers::publicsim::router(sim.clone())).into_future(),
    );

    let prefix = testkit::unique_prefix("pub");
    let mut env = env(&prefix);
    env.push(("BEALERT_RETRY_BASE_MS", "20".into()));
    // The outlets are this process's emulators on 127.0.0.1.
    env.push(("BEALERT_ALLOW_PRIVATE_ENDPOINTS", "1".into()));
    cli(&["aws", "setup"], &env);
    let key = national_centre(&env, &[]);
    let dir = tempfile::tempdir().unwrap();
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start(dir.path(), &env_ref);
    let api = Api::new(&server.url, &key);
    let put = async |name: &str, body: Value| {
        api.send(
            reqwest::Method::PUT,
            &format!("/v1/outlets/{name}"),
            Some(body.to_string().into_bytes()),
            Some(&key),
            Some("application/json"),
        )
        .await
        .status
    };
    assert_eq!(
        put(
            "masto",
            json!({"kind": "social", "url": format!("{base}/social/masto"), "preset": "mastodon"})
        )
        .await,
        201
    );
    assert_eq!(put("port", json!({"kind": "siren", "url": format!("{base}/siren/port"), "position": [4.35, 50.85], "sirens": 5})).await, 201);
    assert_eq!(
        put(
            "vms",
            json!({"kind": "sign", "url": format!("{base}/sign/vms")})
        )
        .await,
        201
    );

    sim.set("vms", "fail:2".parse().unwrap());
    let mut body =
        common::alert_body(json!({"circles": [{"lat": 50.85, "lon": 4.35, "radius_km": 2}]}));
    body["channels"] = json!([]);
    body["public"] = json!({"sirens": {"groups": ["port"], "tone": "alert"}});
    let r = api.post("/v1/alerts", &body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    let a = api.wait_sent(&id, Duration::from_secs(60)).await;
    for k in ["social:masto", "siren:port", "sign:vms"] {
        assert_eq!(a["public"][k]["state"], "sent", "{k}: {a}");
    }
    assert_eq!(a["public"]["sign:vms"]["attempts"], 3, "{a}");
    assert_eq!(a["public"]["siren:port"]["delivered"], 5, "{a}");
    assert_eq!(
        sim.published("masto").len(),
        3,
        "one post per language, once"
    );
    assert_eq!((sim.published("vms").len(), sim.requests("vms")), (1, 3));

    let r = api
        .post(&format!("/v1/alerts/{id}:cancel"), &json!({}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let c = api
        .wait_sent(r.body["id"].as_str().unwrap(), Duration::from_secs(60))
        .await;
    assert_eq!(c["public"]["siren:port"]["state"], "sent", "{c}");
    assert!(matches!(
        sim.published("port")[1].1,
        Published::Sound {
            tone: bealert_core::outlet::Tone::Stop,
            ..
        }
    ));
    assert_eq!(sim.published("port").len(), 2);
}
