//! The HTTP contract of api.md, through the real `bealert serve`.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{Api, Server, alert_body, operator, outbox};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

fn sub(
    ext: &str,
    lang: &str,
    channels: &[&str],
    points: &[(f64, f64)],
    groups: &[&str],
    n: u32,
) -> Value {
    json!({
        "external_id": ext, "language": lang,
        "phone": format!("+3247{n:07}"), "email": format!("{ext}@example.be"),
        "channels": channels,
        "addresses": points.iter().map(|(lat, lon)| json!({"lat": lat, "lon": lon})).collect::<Vec<_>>(),
        "groups": groups
    })
}

/// An exercise to a 1 km circle in Brussels.
fn brussels_exercise() -> Value {
    let mut body =
        alert_body(json!({"circles": [{"lat": 50.851, "lon": 4.353, "radius_km": 1.0}]}));
    body["status"] = json!("Exercise");
    body
}

/// An outbox line's text, after checking its signature (the line sent
/// after the text) names `authority` and a Belgian time.
fn unsigned(line: &Value, authority: &str) -> String {
    let signature = line["signature"].as_str().expect("a signed message");
    let (who, when) = signature.rsplit_once(", ").expect("authority, time");
    assert_eq!(who, authority, "{line}");
    assert!(
        when.len() == 16 && when.as_bytes()[2] == b'/' && when.as_bytes()[13] == b':',
        "dd/mm/yyyy hh:mm: {when}"
    );
    line["text"].as_str().expect("a text").to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_inputs_get_problem_details_that_say_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let key = operator(dir.path(), "national-centre", "national");
    let province = operator(dir.path(), "antwerp-governor", "province:10000");
    let server = Server::start(dir.path(), &[]);
    let api = Api::new(&server.url, &key);

    let circle =
        |lat: f64, lon: f64, r: f64| json!({"circles": [{"lat": lat, "lon": lon, "radius_km": r}]});
    let polygon = |ring: Value| json!({"geojson": {"type": "Polygon", "coordinates": [ring]}});
    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = alert_body(circle(50.85, 4.35, 2.0));
        f(&mut b);
        b.to_string().into_bytes()
    };
    let alert = |area: Value| alert_body(area).to_string().into_bytes();

    struct Case {
        name: &'static str,
        method: Method,
        path: String,
        body: Option<Vec<u8>>,
        key: Option<String>,
        content_type: Option<&'static str>,
        status: u16,
        says: &'static str,
    }
    let post = |name, path: &str, body: Vec<u8>, status, says| Case {
        name,
        method: Method::POST,
        path: path.to_string(),
        body: Some(body),
        key: Some(key.clone()),
        content_type: Some("application/json"),
        status,
        says,
    };
    let cases = vec![
        Case {
            key: None,
            ..post(
                "missing key",
                "/v1/alerts",
                alert(circle(50.85, 4.35, 2.0)),
                401,
                "Authorization: Bearer",
            )
        },
        Case {
            key: Some("bea_wrong".into()),
            ..post(
                "wrong key",
                "/v1/alerts",
                alert(circle(50.85, 4.35, 2.0)),
                401,
                "not known",
            )
        },
        Case {
            key: Some(province.clone()),
            ..post(
                "province operator outside its province",
                "/v1/alerts",
                alert(circle(50.85, 4.35, 2.0)),
                403,
                "outside it",
            )
        },
        post(
            "broken JSON",
            "/v1/alerts",
            b"{\"status\": \"Actual\",".to_vec(),
            400,
            "not valid JSON",
        ),
        post(
            "ring of 3 positions",
            "/v1/alerts",
            alert(polygon(json!([[4.3, 50.8], [4.4, 50.8], [4.3, 50.8]]))),
            422,
            "ring has 3 positions",
        ),
        post(
            "unclosed ring",
            "/v1/alerts",
            alert(polygon(json!([
                [4.3, 50.8],
                [4.4, 50.8],
                [4.4, 50.9],
                [4.3, 50.9]
            ]))),
            422,
            "not closed",
        ),
        post(
            "self-intersecting polygon",
            "/v1/alerts",
            alert(polygon(json!([
                [4.0, 50.0],
                [4.1, 50.1],
                [4.1, 50.0],
                [4.0, 50.1],
                [4.0, 50.0]
            ]))),
            422,
            "self-intersection",
        ),
        post(
            "zero radius",
            "/v1/alerts",
            alert(circle(50.85, 4.35, 0.0)),
            422,
            "greater than 0",
        ),
        // Found by schemathesis: accepted, then covered for an hour.
        post(
            "a circle across the 180th meridian near the South Pole",
            "/v1/alerts",
            alert(circle(-88.6, -150.9, 87.8)),
            422,
            "180th meridian",
        ),
        post(
            "a circle reaching the North Pole (preview)",
            "/v1/zones:preview",
            serde_json::json!({"area": circle(89.99999999999999, -19.3, 94.8)}).to_string().into_bytes(),
            422,
            "pole",
        ),
        post(
            "channels given as null (the OpenAPI document says an array)",
            "/v1/alerts",
            with(&|b| b["channels"] = Value::Null),
            422,
            "invalid type: null",
        ),
        post(
            "an event of spaces",
            "/v1/alerts",
            with(&|b| b["event"] = json!("   ")),
            422,
            "describe the event",
        ),
        post(
            "geojson given as null",
            "/v1/zones:preview",
            json!({"area": {"geojson": null}}).to_string().into_bytes(),
            422,
            "not valid GeoJSON",
        ),
        post(
            "an unknown member of a preview",
            "/v1/zones:preview",
            json!({"area": {"circles": [{"lat": 50.0, "lon": 4.0, "radius_km": 1}]}, "mode": "fast"}).to_string().into_bytes(),
            422,
            "unknown field `mode`",
        ),
        post(
            "negative radius",
            "/v1/alerts",
            alert(circle(50.85, 4.35, -1.0)),
            422,
            "greater than 0",
        ),
        post(
            "latitude out of range",
            "/v1/alerts",
            alert(circle(95.0, 4.35, 1.0)),
            422,
            "outside -90..90",
        ),
        post(
            "longitude out of range in GeoJSON",
            "/v1/alerts",
            alert(polygon(json!([
                [200.0, 50.8],
                [4.4, 50.8],
                [4.4, 50.9],
                [200.0, 50.8]
            ]))),
            422,
            "longitude 200",
        ),
        post(
            "unknown language",
            "/v1/alerts",
            with(&|b| b["messages"]["es"] = json!("Cierren")),
            422,
            "unknown language \"es\"",
        ),
        post(
            "unknown channel",
            "/v1/alerts",
            with(&|b| b["channels"] = json!(["sms", "fax"])),
            422,
            "unknown channel \"fax\"",
        ),
        post(
            "unknown CAP severity",
            "/v1/alerts",
            with(&|b| b["severity"] = json!("Apocalyptic")),
            422,
            "severity",
        ),
        post(
            "a municipality whose boundary is not loaded",
            "/v1/alerts",
            alert(json!({"geocodes": [{"name": "NIS", "value": "21004"}]})),
            422,
            "21004 is a municipality whose boundary is not loaded",
        ),
        post(
            "no area and no groups",
            "/v1/alerts",
            with(&|b| {
                b.as_object_mut().unwrap().remove("area");
            }),
            422,
            "give an area",
        ),
        post(
            "unknown field",
            "/v1/alerts",
            with(&|b| b["aera"] = json!({})),
            422,
            "aera",
        ),
        post(
            "body over 1 MiB",
            "/v1/alerts",
            with(&|b| b["event"] = json!("x".repeat(1_100_000))),
            413,
            "larger than",
        ),
        Case {
            content_type: Some("text/plain"),
            ..post(
                "not JSON",
                "/v1/alerts",
                alert(circle(50.85, 4.35, 2.0)),
                415,
                "Content-Type: application/json",
            )
        },
        post(
            "preview without area",
            "/v1/zones:preview",
            json!({"area": {}}).to_string().into_bytes(),
            422,
            "give geojson",
        ),
        post(
            "import not a list",
            "/v1/subscribers:import",
            json!({"subscribers": 3}).to_string().into_bytes(),
            422,
            "subscribers",
        ),
        Case {
            method: Method::GET,
            body: None,
            content_type: None,
            ..post(
                "unknown alert",
                &format!("/v1/alerts/{}", uuid_like()),
                vec![],
                404,
                "no alert",
            )
        },
        Case {
            method: Method::GET,
            body: None,
            content_type: None,
            ..post(
                "malformed alert id",
                "/v1/alerts/not-an-id",
                vec![],
                404,
                "no alert",
            )
        },
        Case {
            method: Method::GET,
            body: None,
            content_type: None,
            ..post("unknown route", "/v1/nothing", vec![], 404, "no route")
        },
        Case {
            method: Method::DELETE,
            body: None,
            content_type: None,
            ..post("wrong method", "/v1/alerts", vec![], 405, "does not accept")
        },
    ];
    for c in cases {
        let a = api
            .send(c.method, &c.path, c.body, c.key.as_deref(), c.content_type)
            .await;
        assert_eq!(a.status, c.status, "{}: {:?}", c.name, a.body);
        assert_eq!(a.content_type, "application/problem+json", "{}", c.name);
        let detail = a.body["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(c.says),
            "{}: detail {detail:?} should say {:?}",
            c.name,
            c.says
        );
        assert_eq!(a.body["status"], c.status, "{}", c.name);
    }
    let health = api.get("/healthz").await;
    assert_eq!(health.status, 200, "the server keeps running");
}

fn uuid_like() -> &'static str {
    "01900000-0000-7000-8000-000000000000"
}

#[tokio::test(flavor = "multi_thread")]
async fn import_keeps_good_entries_and_reports_bad_ones_by_index() {
    let dir = tempfile::tempdir().unwrap();
    let key = operator(dir.path(), "centre", "national");
    let server = Server::start(dir.path(), &[]);
    let api = Api::new(&server.url, &key);
    let bxl = (50.85, 4.35);
    let mut bad_phone = sub("b", "fr", &["sms"], &[bxl], &[], 2);
    bad_phone["phone"] = json!("0470 12 34 56");
    let six = sub("d", "nl", &["email"], &[bxl; 6], &[], 4);
    let a = api
        .post("/v1/subscribers:import", &json!({"subscribers": [sub("a", "nl", &["sms"], &[bxl], &[], 1), bad_phone, sub("c", "de", &["email"], &[bxl], &[], 3), six]}))
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["imported"], 2);
    let rejected = a.body["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2);
    assert_eq!(rejected[0]["index"], 1);
    assert!(rejected[0]["detail"].as_str().unwrap().contains("E.164"));
    assert_eq!(rejected[1]["index"], 3);
    assert!(
        rejected[1]["detail"]
            .as_str()
            .unwrap()
            .contains("addresses")
    );

    // Same external id again: an update, not a new subscriber.
    let again = api
        .post(
            "/v1/subscribers:import",
            &json!({"subscribers": [sub("a", "fr", &["sms"], &[bxl], &[], 1)]}),
        )
        .await;
    assert_eq!(
        (
            again.body["created"].as_u64(),
            again.body["updated"].as_u64()
        ),
        (Some(0), Some(1))
    );
    let health = api.get("/healthz").await;
    assert_eq!(
        health.body,
        json!({"status": "ok"}),
        "/healthz reveals nothing about the data"
    );
    let preview = api
        .post(
            "/v1/zones:preview",
            &json!({"area": {"circles": [{"lat": 50.85, "lon": 4.35, "radius_km": 1}]}}),
        )
        .await;
    assert_eq!(preview.body["by_language"], json!({"fr": 1, "de": 1}));

    // Imports may exceed the 1 MiB of other routes.
    let many: Vec<Value> = (0..6000)
        .map(|i| {
            sub(
                &format!("bulk-{i}"),
                "nl",
                &["sms", "email"],
                &[bxl],
                &[],
                100 + i,
            )
        })
        .collect();
    let body = json!({"subscribers": many});
    assert!(body.to_string().len() > 1024 * 1024);
    let big = api.post("/v1/subscribers:import", &body).await;
    assert_eq!(big.status, 200, "{:?}", big.body);
    assert_eq!(big.body["imported"], 6000);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alert_reaches_each_subscriber_once_per_channel_in_their_language() {
    let dir = tempfile::tempdir().unwrap();
    let key = operator(dir.path(), "centre", "national");
    let server = Server::start(dir.path(), &[]);
    let api = Api::new(&server.url, &key);
    let (inside1, inside2, outside) = ((50.850, 4.350), (50.852, 4.356), (51.2, 4.4));
    let subs = json!({"subscribers": [
        sub("anna", "nl", &["sms", "email"], &[inside1, inside2], &[], 1),
        sub("bernd", "de", &["sms"], &[inside1], &[], 2),
        sub("chloe", "fr", &["email"], &[outside], &[], 3),
        sub("dirk", "nl", &["voice"], &[outside], &["rescuers"], 4),
        sub("elise", "fr", &["sms"], &[outside, inside2], &[], 5),
    ]});
    assert_eq!(
        api.post("/v1/subscribers:import", &subs).await.body["imported"],
        5
    );

    let area = json!({"circles": [{"lat": 50.851, "lon": 4.353, "radius_km": 1.0}]});
    let preview = api.post("/v1/zones:preview", &json!({"area": area})).await;
    assert_eq!(preview.status, 200);
    assert_eq!(
        preview.body["recipients"], 3,
        "anna counted once for two addresses"
    );
    assert_eq!(preview.body["by_channel"], json!({"sms": 3, "email": 1}));
    assert_eq!(
        preview.body["by_language"],
        json!({"nl": 1, "fr": 1, "de": 1})
    );

    let mut body = alert_body(area);
    body["groups"] = json!(["rescuers"]);
    let created = api.post("/v1/alerts", &body).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let done = api.wait_sent(&id, Duration::from_secs(30)).await;
    assert_eq!(done["recipients"], 4);

    // Every move is in the audit log: who, from which client, from which
    // state to which; bealert's own steps are its own.
    let audit = api.get(&format!("/v1/alerts/{id}/audit")).await;
    assert_eq!(audit.status, 200, "{:?}", audit.body);
    let items = audit.body["items"].as_array().unwrap();
    let steps: Vec<(&str, &str, &str)> = items
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["user"].as_str().unwrap(),
                e["to"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            ("create", "centre", "resolving"),
            ("sending", "bealert", "sending"),
            ("sent", "bealert", "sent")
        ]
    );
    assert!(items[0]["client"].as_str().unwrap().starts_with("http "));
    assert_eq!(items[0]["operator"], "centre");
    assert!(items[0].get("from").is_none() && items[2]["from"] == "sending");
    assert_eq!(api.get("/v1/alerts/not-an-alert/audit").await.status, 404);
    let counts = |c: &Value| json!([c["queued"], c["sent"], c["delivered"], c["failed"]]);
    assert_eq!(counts(&done["channels"]["sms"]), json!([0, 3, 0, 0]));
    assert_eq!(counts(&done["channels"]["email"]), json!([0, 1, 0, 0]));
    // Per language, and the time from release to sent.
    let sms = &done["channels"]["sms"];
    for lang in ["nl", "fr", "en"] {
        assert_eq!(
            counts(&sms["languages"][lang]),
            json!([0, 1, 0, 0]),
            "{lang}"
        );
    }
    assert_eq!(sms["times"]["to_sent"]["count"], 3);
    assert!(
        sms["times"]["to_sent"]["p99_ms"].as_u64().unwrap()
            >= sms["times"]["to_sent"]["p50_ms"].as_u64().unwrap()
    );
    assert!(
        sms["times"].get("to_delivered").is_none(),
        "no receipts from the outbox"
    );
    assert_eq!(counts(&done["channels"]["voice"]), json!([0, 1, 0, 0]));

    let sms = outbox(dir.path(), "sms");
    let by_to = |to: &str| {
        sms.iter()
            .filter(|l| l["to"] == to)
            .cloned()
            .collect::<Vec<_>>()
    };
    let anna = by_to("+32470000001");
    assert_eq!(anna.len(), 1, "one SMS for two addresses inside");
    assert_eq!(anna[0]["language"], "nl");
    assert_eq!(unsigned(&anna[0], "centre"), "Sluit ramen en deuren");
    assert_eq!(anna[0]["alert_id"], id.as_str());
    let bernd = by_to("+32470000002");
    assert_eq!(
        (
            bernd[0]["language"].as_str(),
            unsigned(&bernd[0], "centre").as_str()
        ),
        (Some("en"), "Close windows and doors"),
        "no German text: English"
    );
    assert_eq!(
        unsigned(&by_to("+32470000005")[0], "centre"),
        "Fermez portes et fenêtres"
    );
    assert!(by_to("+32470000003").is_empty(), "chloe lives outside");
    let voice = outbox(dir.path(), "voice");
    assert_eq!(
        voice.len(),
        1,
        "dirk is a rescuer, alerted wherever he lives"
    );
    assert_eq!(voice[0]["to"], "+32470000004");
    let email = outbox(dir.path(), "email");
    assert_eq!(email.len(), 1);
    assert_eq!(email[0]["to"], "anna@example.be");
    // An e-mail leads to the self-service page (its List-Unsubscribe).
    assert_eq!(
        email[0]["unsubscribe"].as_str(),
        Some(format!("{}/manage", server.url).as_str()),
        "{}",
        email[0]
    );
    assert!(sms[0].get("unsubscribe").is_none());
    for line in sms.iter().chain(&voice).chain(&email) {
        for field in ["alert_id", "channel", "to", "language", "text", "at"] {
            assert!(
                line.get(field).is_some(),
                "outbox line lacks {field}: {line}"
            );
        }
    }

    // Deliveries page through with a cursor.
    let mut items = Vec::new();
    let mut path = format!("/v1/alerts/{id}/deliveries?limit=2");
    loop {
        let page = api.get(&path).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        items.extend(page.body["items"].as_array().unwrap().clone());
        match page.body["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/alerts/{id}/deliveries?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(items.len(), 5);
    assert!(items.iter().all(|d| d["status"] == "sent"));
    let anna_email = items.iter().find(|d| d["channel"] == "email").unwrap();
    assert_eq!(anna_email["external_id"], "anna");
    let bad_cursor = api
        .get(&format!("/v1/alerts/{id}/deliveries?cursor=zzz"))
        .await;
    assert_eq!(bad_cursor.status, 400);
}

/// A flood from one address gets 429s with Retry-After before it reaches
/// storage; an operator on another address is served all the while.
/// Four-eyes: an `Actual` alert waits, sending nothing, until another
/// person with jurisdiction over its zone approves it; a rejection cancels
/// it; exercises go at once (the default policy, `actual`).
#[tokio::test(flavor = "multi_thread")]
async fn an_actual_alert_waits_for_another_person_to_approve_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let ann = operator(p, "centre", "national");
    let bea = common::created(
        p,
        &["user", "create", "--operator", "centre", "--name", "bea"],
    );
    let antwerp = operator(p, "antwerpen", "province:10000");
    // Where the centre's approvers are told; a bad phone is refused.
    let bad = std::process::Command::new(common::BIN)
        .args(["operator", "notify", "--name", "centre", "--phone", "12"])
        .arg("--data-dir")
        .arg(p)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("phone[0]"));
    common::created(
        p,
        &[
            "operator",
            "notify",
            "--name",
            "centre",
            "--phone",
            "+32470999111",
            "--email",
            "duty@crisis.example.be",
        ],
    );
    let server = Server::start(p, &[("BEALERT_APPROVAL", "actual")]);
    let (api, bea_api, antwerp_api) = (
        Api::new(&server.url, &ann),
        Api::new(&server.url, &bea),
        Api::new(&server.url, &antwerp),
    );
    let here = (50.850, 4.350);
    let subs = json!({"subscribers": [
        sub("anna", "nl", &["sms"], &[here], &[], 1),
        sub("bert", "fr", &["sms"], &[here], &[], 2),
    ]});
    assert_eq!(
        api.post("/v1/subscribers:import", &subs).await.body["imported"],
        2
    );
    let area = json!({"circles": [{"lat": 50.851, "lon": 4.353, "radius_km": 1.0}]});
    let actual = alert_body(area.clone());

    let created = api.post("/v1/alerts", &actual).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["state"], "awaiting_approval");
    let id = created.body["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Nothing leaves before approval but the notice to the approvers.
    let notices: Vec<Value> = outbox(p, "sms")
        .into_iter()
        .chain(outbox(p, "email"))
        .collect();
    assert_eq!(notices.len(), 2, "{notices:?}");
    for n in &notices {
        assert_eq!(n["kind"], "approval");
        assert!(
            n["text"]
                .as_str()
                .unwrap()
                .contains(&format!("/v1/alerts/{id}:approve")),
            "{n}"
        );
        assert!(n["text"].as_str().unwrap().contains("by centre"), "{n}");
    }
    assert_eq!(notices[0]["to"], "+32470999111");
    assert_eq!(notices[1]["to"], "duty@crisis.example.be");
    assert_eq!(
        api.get(&format!("/v1/alerts/{id}")).await.body["state"],
        "awaiting_approval"
    );

    // Not by the person who wrote it, not from outside the zone's
    // jurisdiction, not an action that does not exist.
    let own = api
        .post(&format!("/v1/alerts/{id}:approve"), &json!({}))
        .await;
    assert_eq!(own.status, 403, "{:?}", own.body);
    assert!(
        own.body["detail"]
            .as_str()
            .unwrap()
            .contains("another person")
    );
    let outside = antwerp_api
        .post(&format!("/v1/alerts/{id}:approve"), &json!({}))
        .await;
    assert_eq!(outside.status, 403, "{:?}", outside.body);
    assert!(
        outside.body["detail"]
            .as_str()
            .unwrap()
            .contains("may not approve"),
        "{:?}",
        outside.body
    );
    let odd = bea_api
        .post(&format!("/v1/alerts/{id}:launch"), &json!({}))
        .await;
    assert_eq!(odd.status, 404);

    let approved = bea_api
        .post(&format!("/v1/alerts/{id}:approve"), &json!({}))
        .await;
    assert_eq!(approved.status, 200, "{:?}", approved.body);
    assert_eq!(approved.body["state"], "resolving");
    let done = api.wait_sent(&id, Duration::from_secs(30)).await;
    assert_eq!(done["channels"]["sms"]["sent"], 2);
    let again = bea_api
        .post(&format!("/v1/alerts/{id}:approve"), &json!({}))
        .await;
    assert_eq!(again.status, 409, "{:?}", again.body);
    assert!(
        again.body["detail"]
            .as_str()
            .unwrap()
            .contains("cannot be approved")
    );
    let audit = api.get(&format!("/v1/alerts/{id}/audit")).await.body;
    let steps: Vec<(String, String)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().into(),
                e["user"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expect = |v: &[(&str, &str)]| {
        v.iter()
            .map(|(a, u)| (a.to_string(), u.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        steps,
        expect(&[
            ("create", "centre"),
            ("approve", "bea"),
            ("sending", "bealert"),
            ("sent", "bealert")
        ])
    );

    // A rejection cancels an alert before anything is sent.
    let second = api.post("/v1/alerts", &actual).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let rejected = bea_api
        .post(
            &format!("/v1/alerts/{second}:reject"),
            &json!({"reason": "wrong zone"}),
        )
        .await;
    assert_eq!(rejected.status, 200, "{:?}", rejected.body);
    assert_eq!(rejected.body["state"], "cancelled");
    let audit = api.get(&format!("/v1/alerts/{second}/audit")).await.body;
    assert_eq!(audit["items"][1]["detail"], "wrong zone");
    assert_eq!(audit["items"][1]["to"], "cancelled");
    let late = bea_api
        .post(&format!("/v1/alerts/{second}:approve"), &json!({}))
        .await;
    assert_eq!(late.status, 409);

    // An exercise goes at once.
    let mut exercise = alert_body(area);
    exercise["status"] = json!("Exercise");
    let exercise = api.post("/v1/alerts", &exercise).await;
    assert_eq!(exercise.body["state"], "resolving");
    let id3 = exercise.body["id"].as_str().unwrap().to_string();
    api.wait_sent(&id3, Duration::from_secs(30)).await;
    let sms = outbox(p, "sms");
    assert_eq!(
        sms.iter().filter(|l| l["kind"] == "alert").count(),
        4,
        "the approved alert and the exercise; not the rejected one"
    );
    assert_eq!(
        sms.iter().filter(|l| l["kind"] == "approval").count(),
        2,
        "the approvers were told of both alerts that waited, not of the exercise"
    );
}

/// Trust issue, item 1: four-eyes cannot be bypassed through `:cancel`.
/// A cancel that says anything of its own waits for a second person like a
/// new Actual alert (before, it went out at once to everyone the original
/// reached); a cancel in fixed words (bealert's, or a template marked as
/// cancel wording) still goes at once; nothing is cancelled twice.
#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_with_words_of_its_own_waits_for_a_second_person() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let ann = operator(p, "centre", "national");
    let bea = common::created(
        p,
        &["user", "create", "--operator", "centre", "--name", "bea"],
    );
    let server = Server::start(p, &[("BEALERT_APPROVAL", "actual")]);
    let (api, bea_api) = (Api::new(&server.url, &ann), Api::new(&server.url, &bea));
    let here = (50.850, 4.350);
    let subs = json!({"subscribers": [
        sub("anna", "nl", &["sms"], &[here], &[], 1),
        sub("bert", "en", &["sms"], &[here], &[], 2),
    ]});
    assert_eq!(
        api.post("/v1/subscribers:import", &subs).await.body["imported"],
        2
    );
    let area = json!({"circles": [{"lat": 50.851, "lon": 4.353, "radius_km": 1.0}]});
    // An Actual alert, approved by Bea and sent.
    let sent_alert = || async {
        let created = api.post("/v1/alerts", &alert_body(area.clone())).await;
        assert_eq!(created.body["state"], "awaiting_approval");
        let id = created.body["id"].as_str().unwrap().to_string();
        let ok = bea_api
            .post(&format!("/v1/alerts/{id}:approve"), &json!({}))
            .await;
        assert_eq!(ok.status, 200, "{:?}", ok.body);
        api.wait_sent(&id, Duration::from_secs(30)).await;
        id
    };
    let texts_of = |alert: &str| -> Vec<String> {
        outbox(p, "sms")
            .iter()
            .filter(|l| l["alert_id"] == alert)
            .map(|l| l["text"].as_str().unwrap().to_string())
            .collect()
    };

    // The hole: one person's "cancel" carrying an evacuation order.
    let first = sent_alert().await;
    let evacuate = json!({"messages": {"nl": "EVACUEER ONMIDDELLIJK", "en": "EVACUATE NOW"}});
    let held = api
        .post(&format!("/v1/alerts/{first}:cancel"), &evacuate)
        .await;
    assert_eq!(held.status, 201, "{:?}", held.body);
    assert_eq!(
        held.body["state"], "awaiting_approval",
        "a cancel with its own text waits for a second person"
    );
    let held_id = held.body["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        texts_of(&held_id).is_empty(),
        "nothing left before approval"
    );
    assert!(
        !outbox(p, "sms")
            .iter()
            .any(|l| l["text"].as_str().unwrap().contains("EVACU")),
        "the evacuation text went out without a second person"
    );
    let own = api
        .post(&format!("/v1/alerts/{held_id}:approve"), &json!({}))
        .await;
    assert_eq!(own.status, 403, "{:?}", own.body);

    // A plain cancel (bealert's own words) goes at once, alone.
    let plain = api
        .post(&format!("/v1/alerts/{first}:cancel"), &json!({}))
        .await;
    assert_eq!(plain.status, 201, "{:?}", plain.body);
    assert_eq!(
        plain.body["state"], "resolving",
        "a plain cancel is instant"
    );
    let plain_id = plain.body["id"].as_str().unwrap().to_string();
    api.wait_sent(&plain_id, Duration::from_secs(30)).await;
    assert_eq!(texts_of(&plain_id).len(), 2);
    // Now the held one is moot, and nothing cancels the original again.
    let moot = bea_api
        .post(&format!("/v1/alerts/{held_id}:approve"), &json!({}))
        .await;
    assert_eq!(moot.status, 409, "{:?}", moot.body);
    assert!(
        moot.body["detail"].as_str().unwrap().contains(&plain_id),
        "{:?}",
        moot.body
    );
    let twice = api
        .post(&format!("/v1/alerts/{first}:cancel"), &json!({}))
        .await;
    assert_eq!(twice.status, 409, "{:?}", twice.body);
    assert!(
        twice.body["detail"]
            .as_str()
            .unwrap()
            .contains("cancelled it already"),
        "{:?}",
        twice.body
    );
    assert!(texts_of(&held_id).is_empty());

    // A cancel with its own words, approved by a second person, goes out
    // to everyone the original reached.
    let second = sent_alert().await;
    let words = json!({"messages": {"nl": "Vals alarm: er is geen gevaar.", "en": "False alarm: there is no danger."}});
    let held = api
        .post(&format!("/v1/alerts/{second}:cancel"), &words)
        .await;
    assert_eq!(held.body["state"], "awaiting_approval", "{:?}", held.body);
    let held_id = held.body["id"].as_str().unwrap().to_string();
    let ok = bea_api
        .post(&format!("/v1/alerts/{held_id}:approve"), &json!({}))
        .await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    api.wait_sent(&held_id, Duration::from_secs(30)).await;
    let mut texts = texts_of(&held_id);
    texts.sort();
    assert_eq!(
        texts,
        [
            "False alarm: there is no danger.",
            "Vals alarm: er is geen gevaar."
        ]
    );
    let audit = api.get(&format!("/v1/alerts/{held_id}/audit")).await.body;
    assert_eq!(audit["items"][1]["action"], "approve");
    assert_eq!(audit["items"][1]["user"], "bea");

    // A template a national operator marked as cancel wording is fixed
    // words: instant. One with blanks a person fills cannot be marked, and
    // an unmarked one cannot stand in for a cancel's words.
    let put = |name: &str, body: Value| {
        let api = &api;
        let path = format!("/v1/alert-templates/{name}");
        async move {
            api.send(
                Method::PUT,
                &path,
                Some(body.to_string().into_bytes()),
                Some(&api.key),
                Some("application/json"),
            )
            .await
        }
    };
    let fixed = json!({"event": "Cancel", "cancel_wording": true,
        "severity": "Minor", "urgency": "Past", "certainty": "Observed",
        "messages": {"nl": "Het alarm {event} van {at} is ingetrokken.", "en": "The alert {event} of {at} is withdrawn."}});
    assert_eq!(put("withdrawn", fixed).await.status, 201);
    let blanks = json!({"event": "Cancel", "cancel_wording": true,
        "severity": "Minor", "urgency": "Past", "certainty": "Observed",
        "messages": {"en": "{anything}"}});
    let refused = put("sneaky", blanks).await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    let plain_template = json!({"event": "Flood", "severity": "Severe", "urgency": "Immediate",
        "certainty": "Likely", "messages": {"en": "EVACUATE NOW"}});
    assert_eq!(put("flood", plain_template).await.status, 201);
    let third = sent_alert().await;
    let unmarked = api
        .post(
            &format!("/v1/alerts/{third}:cancel"),
            &json!({"template": "flood"}),
        )
        .await;
    assert_eq!(unmarked.status, 422, "{:?}", unmarked.body);
    assert!(
        unmarked.body["detail"]
            .as_str()
            .unwrap()
            .contains("cancel wording"),
        "{:?}",
        unmarked.body
    );
    let by_template = api
        .post(
            &format!("/v1/alerts/{third}:cancel"),
            &json!({"template": "withdrawn"}),
        )
        .await;
    assert_eq!(by_template.status, 201, "{:?}", by_template.body);
    assert_eq!(by_template.body["state"], "resolving");
    let cancel_id = by_template.body["id"].as_str().unwrap().to_string();
    api.wait_sent(&cancel_id, Duration::from_secs(30)).await;
    let texts = texts_of(&cancel_id);
    assert_eq!(texts.len(), 2);
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("The alert Chemical leak of ")),
        "{texts:?}"
    );
}

/// Trust issue, item 2: citizens' contacts are not handed out in bulk.
/// `GET /v1/alerts/{id}/deliveries` masks `to` (before, every phone and
/// address was there for anyone who could see the alert); a person holding
/// the `contacts` right sees them, and each such read is in the audit log.
/// Rights are per person (`user create --may`, `user update`): a missing
/// one is a 403 that names it.
#[tokio::test(flavor = "multi_thread")]
async fn contacts_are_masked_unless_the_person_holds_the_contacts_right() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let ann = operator(p, "centre", "national");
    let carl = common::created(
        p,
        &[
            "user",
            "create",
            "--operator",
            "centre",
            "--name",
            "carl",
            "--may",
            "send,contacts",
        ],
    );
    let dave = common::created(
        p,
        &[
            "user",
            "create",
            "--operator",
            "centre",
            "--name",
            "dave",
            "--may",
            "none",
        ],
    );
    let server = Server::start(p, &[]);
    let (api, carl_api, dave_api) = (
        Api::new(&server.url, &ann),
        Api::new(&server.url, &carl),
        Api::new(&server.url, &dave),
    );
    let here = (50.850, 4.350);
    let subs = json!({"subscribers": [
        sub("anna", "nl", &["sms", "email"], &[here], &[], 1),
    ]});
    assert_eq!(
        api.post("/v1/subscribers:import", &subs).await.body["imported"],
        1
    );
    let body = brussels_exercise();
    let id = api.post("/v1/alerts", &body).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    api.wait_sent(&id, Duration::from_secs(30)).await;
    let path = format!("/v1/alerts/{id}/deliveries");
    let tos = |page: &Value| -> Vec<String> {
        let mut v: Vec<String> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["to"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let contact_reads = || async {
        api.get(&format!("/v1/alerts/{id}/audit")).await.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "contacts")
            .cloned()
            .collect::<Vec<Value>>()
    };

    // Without the right: masked, and nothing to record.
    let masked = api.get(&path).await;
    assert_eq!(masked.status, 200, "{:?}", masked.body);
    assert_eq!(tos(&masked.body), ["+32 47• ••• •01", "a•••@example.be"]);
    assert_eq!(tos(&dave_api.get(&path).await.body), tos(&masked.body));
    assert!(contact_reads().await.is_empty());

    // With it: the contacts, and the read on record.
    let full = carl_api.get(&path).await;
    assert_eq!(tos(&full.body), ["+32470000001", "anna@example.be"]);
    let reads = contact_reads().await;
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert_eq!(reads[0]["user"], "carl");
    assert!(
        reads[0]["detail"]
            .as_str()
            .unwrap()
            .contains("2 recipients")
    );

    // A read-only person reads, but sends nothing; the 403 names the right.
    let refused = dave_api.post("/v1/alerts", &body).await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    let why = refused.body["detail"].as_str().unwrap();
    assert!(
        why.contains("\"send\"") && why.contains("user update"),
        "{why}"
    );
    let cancel = dave_api
        .post(&format!("/v1/alerts/{id}:cancel"), &json!({}))
        .await;
    assert_eq!(cancel.status, 403, "{:?}", cancel.body);
    // Given the right, from the next request on.
    common::created(
        p,
        &[
            "user",
            "update",
            "--operator",
            "centre",
            "--name",
            "dave",
            "--may",
            "send",
        ],
    );
    assert_eq!(dave_api.post("/v1/alerts", &body).await.status, 201);
}

/// Trust issue, item 9: public traffic must not starve alert sending. 64
/// clients reading the public pages from one address (citizens behind a
/// crisis centre's NAT) use up that address's budget; the operator's
/// `POST /v1/alerts` from the same address is still served (before, 429).
#[tokio::test(flavor = "multi_thread")]
async fn public_traffic_from_one_address_does_not_starve_an_operator_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = operator(dir.path(), "centre", "national");
    let server = Server::start(
        dir.path(),
        &[("BEALERT_CLIENT_RATE", "5"), ("BEALERT_CLIENT_BURST", "10")],
    );
    let http = reqwest::Client::new();
    let mut readers = Vec::new();
    for i in 0..64 {
        let (http, url) = (http.clone(), server.url.clone());
        let path = ["/alerts", "/feed.atom", "/console", "/"][i % 4];
        readers.push(tokio::spawn(async move {
            http.get(format!("{url}{path}"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut limited = 0;
    for r in readers {
        if r.await.unwrap() == 429 {
            limited += 1;
        }
    }
    assert!(
        limited >= 40,
        "only {limited} of 64 public reads were limited"
    );
    let body = brussels_exercise();
    let api = Api::new(&server.url, &key);
    let created = api.post("/v1/alerts", &body).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    // Random keys from the same address buy no budget of their own.
    let mut refused = 0;
    for i in 0..40 {
        let res = http
            .get(format!("{}/v1/operator", server.url))
            .header("authorization", format!("Bearer bea_not_a_key_{i}"))
            .send()
            .await
            .unwrap();
        if res.status() == 429 {
            refused += 1;
        }
    }
    assert!(
        refused >= 25,
        "only {refused} of 40 made-up keys were limited"
    );
    assert_eq!(
        api.get("/v1/operator").await.status,
        200,
        "the operator still is served"
    );
}

/// Trust issue, item 5: a global stop. A national person holding `halt`
/// stops every channel; queued work waits, counted; resume sends the rest,
/// each message once. Without the right, a 403 that names it.
#[tokio::test(flavor = "multi_thread")]
async fn halt_stops_all_sending_until_resume_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let ann = operator(p, "centre", "national");
    let hal = common::created(
        p,
        &[
            "user",
            "create",
            "--operator",
            "centre",
            "--name",
            "hal",
            "--may",
            "send,halt",
        ],
    );
    // 20 SMS a second: 120 people take six seconds.
    let server = Server::start(p, &[("BEALERT_SMS_RATE", "20")]);
    let (api, hal_api) = (Api::new(&server.url, &ann), Api::new(&server.url, &hal));
    let here = (50.850, 4.350);
    let people: Vec<Value> = (0..120)
        .map(|i| sub(&format!("p{i}"), "nl", &["sms"], &[here], &[], i + 1))
        .collect();
    api.post("/v1/subscribers:import", &json!({ "subscribers": people }))
        .await;
    let refused = api.post("/v1/sending:halt", &json!({})).await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("\"halt\"")
    );

    let body = brussels_exercise();
    let id = api.post("/v1/alerts", &body).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let sent = || outbox(p, "sms").len();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while sent() < 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "the alert never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let halted = hal_api
        .post(
            "/v1/sending:halt",
            &json!({"reason": "false alarm suspected"}),
        )
        .await;
    assert_eq!(halted.status, 200, "{:?}", halted.body);
    assert_eq!(halted.body["halted"], true);
    // Whatever was being handed over may finish; then nothing leaves.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let at_halt = sent();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sent(), at_halt, "a message left while sending was halted");
    assert!(at_halt < 120, "the halt came after everything was sent");
    let view = api.get("/v1/sending").await.body;
    assert_eq!(view["halted"], true, "{view}");
    assert!(view["by"].as_str().unwrap().contains("hal"), "{view}");
    assert_eq!(view["log"][0]["reason"], "false alarm suspected");
    let queued: u64 = view["queued_jobs"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(queued > 0, "the waiting work is counted: {view}");
    let alert = api.get(&format!("/v1/alerts/{id}")).await.body;
    assert_eq!(alert["state"], "sending", "{alert}");

    let resumed = hal_api.post("/v1/sending:resume", &json!({})).await;
    assert_eq!(resumed.status, 200, "{:?}", resumed.body);
    assert_eq!(resumed.body["halted"], false);
    let done = api.wait_sent(&id, Duration::from_secs(60)).await;
    assert_eq!(done["channels"]["sms"]["sent"], 120, "{done}");
    let lines = outbox(p, "sms");
    let mut who: Vec<&str> = lines
        .iter()
        .map(|l| l["subscriber_id"].as_str().unwrap())
        .collect();
    who.sort();
    who.dedup();
    assert_eq!((lines.len(), who.len()), (120, 120), "each once");
    let log = api.get("/v1/sending").await.body["log"].clone();
    assert_eq!(log.as_array().unwrap().len(), 2, "{log}");

    // The same switch from the command line, beside the running server.
    common::created(p, &["sending", "halt", "--reason", "from the CLI"]);
    let view = api.get("/v1/sending").await.body;
    assert_eq!(view["halted"], true, "{view}");
    assert_eq!(view["reason"], "from the CLI");
    common::created(p, &["sending", "resume"]);
    assert_eq!(api.get("/v1/sending").await.body["halted"], false);
}

/// Trust issue, item 6: a retried request must not send twice. The same
/// `Idempotency-Key` from the same person returns the first answer and
/// creates nothing new (before, every retry was a new alert, sent again);
/// the same key with another body is a 422; another person's key is theirs.
#[tokio::test(flavor = "multi_thread")]
async fn a_retried_request_with_the_same_idempotency_key_sends_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let ann = operator(p, "centre", "national");
    let bea = common::created(
        p,
        &["user", "create", "--operator", "centre", "--name", "bea"],
    );
    let server = Server::start(p, &[]);
    let api = Api::new(&server.url, &ann);
    let here = (50.850, 4.350);
    let subs = json!({"subscribers": [
        sub("anna", "nl", &["sms"], &[here], &[], 1),
        sub("bert", "fr", &["sms"], &[here], &[], 2),
    ]});
    assert_eq!(
        api.post("/v1/subscribers:import", &subs).await.body["imported"],
        2
    );
    let http = reqwest::Client::new();
    let post = |key: &str, who: &str, path: &str, body: &Value| {
        let req = http
            .post(format!("{}{path}", server.url))
            .header("authorization", format!("Bearer {who}"))
            .header("idempotency-key", key)
            .header("content-type", "application/json")
            .body(body.to_string());
        async move {
            let res = req.send().await.unwrap();
            let replayed = res.headers().get("idempotent-replayed").is_some();
            let location = res
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_string());
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap();
            (status, body, replayed, location)
        }
    };
    let alert = brussels_exercise();

    // A client retries (its first answer was lost), twice, one at the same time.
    let (first, second, third) = tokio::join!(
        post("\"retry-1\"", &ann, "/v1/alerts", &alert),
        async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            post("\"retry-1\"", &ann, "/v1/alerts", &alert).await
        },
        async {
            tokio::time::sleep(Duration::from_millis(600)).await;
            post("retry-1", &ann, "/v1/alerts", &alert).await
        },
    );
    assert_eq!(first.0, 201, "{:?}", first.1);
    assert!(!first.2, "the first answer is not a replay");
    let id = first.1["id"].as_str().unwrap().to_string();
    for again in [&second, &third] {
        assert_eq!(again.0, 201, "{:?}", again.1);
        assert_eq!(
            again.1["id"],
            id.as_str(),
            "a retry is answered with the first alert"
        );
        assert!(again.2, "a replay says so");
        assert_eq!(
            again.3.as_deref(),
            Some(format!("/v1/alerts/{id}").as_str())
        );
    }
    api.wait_sent(&id, Duration::from_secs(30)).await;
    let sent: Vec<Value> = outbox(p, "sms")
        .into_iter()
        .filter(|l| l["kind"] == "alert")
        .collect();
    assert_eq!(sent.len(), 2, "one alert, one SMS each: {sent:?}");
    assert_eq!(
        api.get("/v1/alerts").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "no second alert"
    );

    // The same key with another body is refused; another person's is theirs.
    let mut other = alert.clone();
    other["event"] = json!("Flood");
    let reused = post("retry-1", &ann, "/v1/alerts", &other).await;
    assert_eq!(reused.0, 422, "{:?}", reused.1);
    assert!(
        reused.1["detail"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"),
        "{:?}",
        reused.1
    );
    let beas = post("retry-1", &bea, "/v1/alerts", &alert).await;
    assert_eq!(beas.0, 201, "{:?}", beas.1);
    assert_ne!(beas.1["id"], id.as_str());
    assert!(!beas.2);

    // A follow-up retried: one cancel, sent once to each.
    let path = format!("/v1/alerts/{id}:cancel");
    let c1 = post("cancel-1", &ann, &path, &json!({})).await;
    let c2 = post("cancel-1", &ann, &path, &json!({})).await;
    assert_eq!((c1.0, c2.0), (201, 201), "{:?} {:?}", c1.1, c2.1);
    assert_eq!(c1.1["id"], c2.1["id"]);
    assert!(c2.2);
    let cancel_id = c1.1["id"].as_str().unwrap().to_string();
    api.wait_sent(&cancel_id, Duration::from_secs(30)).await;
    let cancels = outbox(p, "sms")
        .into_iter()
        .filter(|l| l["alert_id"] == cancel_id.as_str())
        .count();
    assert_eq!(cancels, 2);

    // A request that failed keeps nothing: its retry runs (and fails) again.
    let mut bad = alert.clone();
    bad["severity"] = json!("Apocalyptic");
    for _ in 0..2 {
        let refused = post("bad-1", &ann, "/v1/alerts", &bad).await;
        assert_eq!(refused.0, 422, "{:?}", refused.1);
        assert!(refused.1["detail"].as_str().unwrap().contains("severity"));
    }
    // A key that is not one is a 422 that says what a key is.
    let long = post(&"k".repeat(300), &ann, "/v1/alerts", &alert).await;
    assert_eq!(long.0, 422, "{:?}", long.1);
    assert!(
        long.1["detail"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flooding_client_gets_429s_while_an_operator_elsewhere_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let key = operator(dir.path(), "centre", "national");
    let server = Server::start(
        dir.path(),
        &[("BEALERT_CLIENT_RATE", "5"), ("BEALERT_CLIENT_BURST", "10")],
    );
    let flood = reqwest::Client::new();
    let mut limited = 0;
    for _ in 0..60 {
        let res = flood
            .post(format!("{}/v1/zones:preview", server.url))
            .header("authorization", "Bearer not-a-key")
            .body("{}")
            .send()
            .await
            .unwrap();
        if res.status() == 429 {
            limited += 1;
            assert!(res.headers().get("retry-after").is_some());
            assert_eq!(res.headers()["content-type"], "application/problem+json");
        }
    }
    assert!(
        limited >= 45,
        "only {limited} of 60 flood requests were limited"
    );

    let elsewhere = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let res = elsewhere
        .get(format!("{}/v1/alerts/{}", server.url, uuid_like()))
        .header("authorization", format!("Bearer {key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "the operator is answered, not limited");
}

/// Each subscriber's outbox lines of one alert, by outbox position.
fn positions(lines: &[Value], alert: &str) -> std::collections::BTreeMap<String, Vec<usize>> {
    let mut out: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
    for (i, l) in lines.iter().enumerate() {
        if l["alert_id"] == alert {
            out.entry(l["subscriber_id"].as_str().unwrap().to_string())
                .or_default()
                .push(i);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_stops_the_original_and_follows_it_to_everyone_it_reached() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let key = operator(p, "centre", "national");
    // 30 SMS a second: the original to 300 people takes ten seconds.
    let server = Server::start(p, &[("BEALERT_SMS_RATE", "30")]);
    let api = Api::new(&server.url, &key);
    let here = (50.850, 4.350);
    let people: Vec<Value> = (0..300)
        .map(|i| {
            let lang = ["nl", "fr", "de", "en"][i % 4];
            sub(&format!("p{i}"), lang, &["sms"], &[here], &[], i as u32 + 1)
        })
        .collect();
    let imported = api
        .post("/v1/subscribers:import", &json!({ "subscribers": people }))
        .await;
    assert_eq!(imported.body["imported"], 300, "{:?}", imported.body);
    let body = brussels_exercise();
    let created = api.post("/v1/alerts", &body).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let original = created.body["id"].as_str().unwrap().to_string();

    // Cancel while it is sending.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while outbox(p, "sms").len() < 40 {
        assert!(
            std::time::Instant::now() < deadline,
            "the original never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cancel = api
        .post(
            &format!("/v1/alerts/{original}:cancel"),
            &json!({"messages": {"nl": "Vals alarm, er is geen gevaar."}}),
        )
        .await;
    assert_eq!(cancel.status, 201, "{:?}", cancel.body);
    assert_eq!(
        cancel.body["state"], "resolving",
        "a cancel needs no approval"
    );
    let cancel_id = cancel.body["id"].as_str().unwrap().to_string();
    let done = api.wait_sent(&cancel_id, Duration::from_secs(60)).await;
    assert_eq!(done["msg_type"], "Cancel");
    assert_eq!(done["references"], original.as_str());

    let view = api.get(&format!("/v1/alerts/{original}")).await.body;
    assert_eq!(view["state"], "cancelled");
    let sms = &view["channels"]["sms"];
    let (sent, cancelled) = (
        sms["sent"].as_u64().unwrap(),
        sms["cancelled"].as_u64().unwrap(),
    );
    assert!(cancelled > 0, "the cancel stopped nothing: {view}");
    assert_eq!(sent + cancelled, 300, "{view}");
    assert_eq!(sms["queued"], 0, "{view}");

    // Whoever got the original got the cancel once, after it; nobody else
    // got it, and nobody got the original after their cancel.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lines = outbox(p, "sms");
    let firsts = positions(&lines, &original);
    let cancels = positions(&lines, &cancel_id);
    assert_eq!(firsts.len() as u64, sent);
    assert_eq!(
        firsts.keys().collect::<Vec<_>>(),
        cancels.keys().collect::<Vec<_>>(),
        "the cancel reaches exactly those the original reached"
    );
    for (who, at) in &cancels {
        assert_eq!(at.len(), 1, "{who} got the cancel {} times", at.len());
        assert_eq!(firsts[who].len(), 1);
        assert!(
            firsts[who][0] < at[0],
            "{who} got the original after the cancel"
        );
    }
    let texts: std::collections::BTreeMap<String, String> = lines
        .iter()
        .filter(|l| l["alert_id"] == cancel_id.as_str())
        .map(|l| {
            (
                l["language"].as_str().unwrap().to_string(),
                l["text"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(texts["nl"], "OEFENING - Vals alarm, er is geen gevaar.");
    let a_cancel = lines
        .iter()
        .find(|l| l["alert_id"] == cancel_id.as_str())
        .unwrap();
    unsigned(a_cancel, "centre");
    assert!(
        texts["fr"].starts_with("EXERCICE - ANNULÉ"),
        "{}",
        texts["fr"]
    );
    // German speakers got the original in English (it had no German
    // text): the cancel follows in the language they were written to.
    assert!(!texts.contains_key("de"));
    assert!(
        texts["en"].starts_with("EXERCISE - CANCELLED"),
        "{}",
        texts["en"]
    );

    // The original's audit names who cancelled it, and by which alert.
    let audit = api.get(&format!("/v1/alerts/{original}/audit")).await.body;
    let entry = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "cancel")
        .expect("a cancel entry");
    assert_eq!(entry["to"], "cancelled");
    assert_eq!(entry["operator"], "centre");
    assert_eq!(entry["detail"], format!("cancelled by alert {cancel_id}"));

    // Once is enough; a cancel is not followed up; nor is a cancelled alert updated.
    let again = api
        .post(&format!("/v1/alerts/{original}:cancel"), &json!({}))
        .await;
    assert_eq!(again.status, 409, "{:?}", again.body);
    assert!(again.body["detail"].as_str().unwrap().contains(&cancel_id));
    let of_cancel = api
        .post(&format!("/v1/alerts/{cancel_id}:update"), &json!({}))
        .await;
    assert_eq!(of_cancel.status, 409, "{:?}", of_cancel.body);
    let update = api
        .post(&format!("/v1/alerts/{original}:update"), &json!({}))
        .await;
    assert_eq!(update.status, 409, "{:?}", update.body);
    let bad = api
        .post(
            &format!("/v1/alerts/{cancel_id}:all_clear"),
            &json!({"messages": {"xx": "?"}}),
        )
        .await;
    assert_eq!(bad.status, 409, "{:?}", bad.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_all_clear_and_an_update_go_to_everyone_the_alert_reached_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let key = operator(p, "centre", "national");
    let server = Server::start(p, &[]);
    let api = Api::new(&server.url, &key);
    let (here, away) = ((50.850, 4.350), (51.2, 4.4));
    let subs = json!({"subscribers": [
        sub("anna", "nl", &["sms", "email"], &[here], &[], 1),
        sub("bert", "fr", &["sms"], &[here], &[], 2),
        sub("carl", "de", &["email"], &[away], &[], 3),
    ]});
    assert_eq!(
        api.post("/v1/subscribers:import", &subs).await.body["imported"],
        3
    );
    let created = api
        .post(
            "/v1/alerts",
            &alert_body(json!({"circles": [{"lat": 50.851, "lon": 4.353, "radius_km": 1.0}]})),
        )
        .await;
    let original = created.body["id"].as_str().unwrap().to_string();
    // Asked at once: each follow-up goes after the original, never before.
    let update = api
        .post(
            &format!("/v1/alerts/{original}:update"),
            &json!({"messages": {"en": "Still closed: stay inside."}}),
        )
        .await;
    assert_eq!(update.status, 201, "{:?}", update.body);
    let update_id = update.body["id"].as_str().unwrap().to_string();
    let clear = api
        .post(&format!("/v1/alerts/{original}:all_clear"), &json!({}))
        .await;
    assert_eq!(clear.status, 201, "{:?}", clear.body);
    let clear_id = clear.body["id"].as_str().unwrap().to_string();
    let view = api.wait_sent(&clear_id, Duration::from_secs(30)).await;
    assert_eq!(view["all_clear"], true);
    assert_eq!(view["msg_type"], "Update");
    assert_eq!(view["recipients"], 2, "anna and bert, not carl: {view}");
    api.wait_sent(&update_id, Duration::from_secs(30)).await;

    for channel in ["sms", "email"] {
        let lines = outbox(p, channel);
        let firsts = positions(&lines, &original);
        for follow_up in [&update_id, &clear_id] {
            let after = positions(&lines, follow_up);
            assert_eq!(
                firsts.keys().collect::<Vec<_>>(),
                after.keys().collect::<Vec<_>>(),
                "{channel}: the same audience"
            );
            for (who, at) in &after {
                assert!(
                    firsts[who][0] < at[0],
                    "{channel}: {who} got a follow-up first"
                );
            }
        }
    }
    let sms = outbox(p, "sms");
    let bert_clear = sms
        .iter()
        .find(|l| l["alert_id"] == clear_id.as_str() && l["language"] == "fr")
        .unwrap();
    assert!(
        bert_clear["text"]
            .as_str()
            .unwrap()
            .starts_with("FIN D'ALERTE"),
        "{bert_clear}"
    );

    // An update that changes the zone is resolved anew: carl lives there.
    let moved = api
        .post(
            &format!("/v1/alerts/{original}:update"),
            &json!({"area": {"circles": [{"lat": 51.2, "lon": 4.4, "radius_km": 1.0}]},
                    "messages": {"en": "The cloud moved north."}}),
        )
        .await;
    assert_eq!(moved.status, 201, "{:?}", moved.body);
    let v = api
        .wait_sent(moved.body["id"].as_str().unwrap(), Duration::from_secs(30))
        .await;
    assert_eq!(
        (v["msg_type"].as_str(), v["references"].as_str()),
        (Some("Update"), Some(original.as_str()))
    );
    assert_eq!(v["recipients"], 1, "carl only: {v}");
    let refused = api
        .post(
            &format!("/v1/alerts/{original}:all_clear"),
            &json!({"area": {"circles": [{"lat": 51.2, "lon": 4.4, "radius_km": 1.0}]}}),
        )
        .await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    assert_eq!(refused.body["errors"][0]["path"], "area");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_alert_overtakes_an_exercise_still_queued_on_the_same_channel() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let key = operator(p, "centre", "national");
    // 30 SMS a second: the exercise to 300 people takes ten seconds.
    let server = Server::start(p, &[("BEALERT_SMS_RATE", "30")]);
    let api = Api::new(&server.url, &key);
    let here = (50.850, 4.350);
    let mut people: Vec<Value> = (0..300)
        .map(|i| sub(&format!("p{i}"), "nl", &["sms"], &[here], &[], i as u32 + 1))
        .collect();
    people.push(sub("crew", "fr", &["sms"], &[(51.2, 4.4)], &["crew"], 999));
    let imported = api
        .post("/v1/subscribers:import", &json!({ "subscribers": people }))
        .await;
    assert_eq!(imported.body["imported"], 301, "{:?}", imported.body);
    let exercise = brussels_exercise();
    let ex = api.post("/v1/alerts", &exercise).await;
    let ex_id = ex.body["id"].as_str().unwrap().to_string();
    while outbox(p, "sms").len() < 10 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut actual = alert_body(json!(null));
    actual.as_object_mut().unwrap().remove("area");
    actual["groups"] = json!(["crew"]);
    let real = api.post("/v1/alerts", &actual).await;
    assert_eq!(real.status, 201, "{:?}", real.body);
    let real_id = real.body["id"].as_str().unwrap().to_string();
    api.wait_sent(&real_id, Duration::from_secs(60)).await;
    let ex_now = api.get(&format!("/v1/alerts/{ex_id}")).await.body;
    assert!(
        ex_now["channels"]["sms"]["queued"].as_u64().unwrap() > 0,
        "the real alert waited for the whole exercise: {ex_now}"
    );
    api.wait_sent(&ex_id, Duration::from_secs(60)).await;
    let lines = outbox(p, "sms");
    let real_at = lines
        .iter()
        .position(|l| l["alert_id"] == real_id.as_str())
        .unwrap();
    let ex_last = lines
        .iter()
        .rposition(|l| l["alert_id"] == ex_id.as_str())
        .unwrap();
    assert!(
        real_at < ex_last,
        "the real alert went after the exercise's last SMS"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sending_stops_when_the_alert_expires() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let ann = operator(p, "centre", "national");
    let server = Server::start(p, &[("BEALERT_SMS_RATE", "30")]);
    let api = Api::new(&server.url, &ann);
    let here = (50.850, 4.350);
    let people: Vec<Value> = (0..300)
        .map(|i| sub(&format!("p{i}"), "nl", &["sms"], &[here], &[], i as u32 + 1))
        .collect();
    api.post("/v1/subscribers:import", &json!({ "subscribers": people }))
        .await;
    let area = json!({"circles": [{"lat": 50.851, "lon": 4.353, "radius_km": 1.0}]});

    // A time that has passed, or is no time, is refused.
    let mut body = alert_body(area.clone());
    body["status"] = json!("Exercise");
    body["expires"] = json!("2020-01-01T10:00:00+01:00");
    let past = api.post("/v1/alerts", &body).await;
    assert_eq!(past.status, 422, "{:?}", past.body);
    assert_eq!(past.body["errors"][0]["path"], "expires");
    body["expires"] = json!("tomorrow");
    let bad = api.post("/v1/alerts", &body).await;
    assert_eq!(bad.status, 422, "{:?}", bad.body);
    assert_eq!(bad.body["errors"][0]["path"], "expires");

    // Three seconds to go at 30 SMS a second: about 90 of 300 leave.
    let expires = time::OffsetDateTime::now_utc() + time::Duration::seconds(3);
    body["expires"] = json!(
        expires
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    );
    body["scope"] = json!("Restricted");
    let created = api.post("/v1/alerts", &body).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let view = loop {
        let v = api.get(&format!("/v1/alerts/{id}")).await.body;
        if v["state"] == "expired" && v["channels"]["sms"]["queued"] == 0 {
            break v;
        }
        assert!(std::time::Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(view["scope"], "Restricted");
    let sms = &view["channels"]["sms"];
    let (sent, cancelled) = (
        sms["sent"].as_u64().unwrap(),
        sms["cancelled"].as_u64().unwrap(),
    );
    assert!(
        sent > 0 && cancelled > 0 && sent + cancelled == 300,
        "{view}"
    );
    let expires_ms = expires.unix_timestamp_nanos() / 1_000_000;
    for l in outbox(p, "sms")
        .iter()
        .filter(|l| l["alert_id"] == id.as_str())
    {
        let at = time::OffsetDateTime::parse(
            l["at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert!(
            at.unix_timestamp_nanos() / 1_000_000 <= expires_ms,
            "sent after expires: {l}"
        );
    }
}

/// CAP 1.2 export. With `BEALERT_CAP_OUT` set, the documents are also
/// written there, for tests/cap.sh to validate against the OASIS schema.
#[tokio::test(flavor = "multi_thread")]
async fn alerts_export_as_cap_1_2() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let key = operator(p, "centre", "national");
    let server = Server::start(p, &[]);
    let api = Api::new(&server.url, &key);
    let subs = json!({"subscribers": [sub("anna", "nl", &["sms"], &[(50.85, 4.35)], &[], 1)]});
    api.post("/v1/subscribers:import", &subs).await;
    let cap = |id: String| {
        let api = &api;
        async move {
            let a = api.get(&format!("/v1/alerts/{id}/cap")).await;
            assert_eq!(a.status, 200, "{:?}", a.body);
            assert!(
                a.content_type.starts_with("application/cap+xml"),
                "{}",
                a.content_type
            );
            a.body.as_str().unwrap().to_string()
        }
    };
    let count = |xml: &str, tag: &str| xml.matches(&format!("<{tag}>")).count();

    // A drawn zone with a hole, a circle, an expiry, three languages.
    let ring = |x0: f64, y0: f64, s: f64| {
        json!([
            [x0, y0],
            [x0 + s, y0],
            [x0 + s, y0 + s],
            [x0, y0 + s],
            [x0, y0]
        ])
    };
    let mut drawn = alert_body(json!({
        "geojson": {"type": "Polygon", "coordinates": [ring(4.30, 50.80, 0.10), ring(4.34, 50.84, 0.02)]},
        "circles": [{"lat": 50.9, "lon": 4.5, "radius_km": 2.5}]
    }));
    drawn["status"] = json!("Exercise");
    let expires = time::OffsetDateTime::now_utc() + time::Duration::hours(2);
    drawn["expires"] = json!(
        expires
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    );
    let first = api.post("/v1/alerts", &drawn).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let first_id = first.body["id"].as_str().unwrap().to_string();
    let xml = cap(first_id.clone()).await;
    assert!(
        xml.contains(r#"<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">"#),
        "{xml}"
    );
    assert_eq!(count(&xml, "info"), 3, "one info per language: {xml}");
    for lang in ["nl-BE", "fr-BE", "en"] {
        assert!(
            xml.contains(&format!("<language>{lang}</language>")),
            "{xml}"
        );
    }
    assert!(xml.contains("<status>Exercise</status>") && xml.contains("<msgType>Alert</msgType>"));
    assert!(
        count(&xml, "polygon") >= 3 * 2,
        "the hole cut open, per info: {xml}"
    );
    assert_eq!(count(&xml, "circle"), 3, "{xml}");
    assert!(xml.contains("50.9,4.5 2.5"), "lat,lon radius: {xml}");
    assert_eq!(count(&xml, "expires"), 3);
    assert!(!xml.contains("Z<"), "CAP times carry an offset: {xml}");
    let sent = xml
        .split("<sent>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap();
    assert!(
        sent.ends_with("+01:00") || sent.ends_with("+02:00"),
        "{sent}"
    );

    // Geocodes, then a follow-up of each: references name the original.
    let mut by_code = alert_body(json!({"geocodes": [{"name": "NIS", "value": "04000"}]}));
    by_code["scope"] = json!("Restricted");
    let second = api.post("/v1/alerts", &by_code).await;
    assert_eq!(second.status, 201, "{:?}", second.body);
    let second_id = second.body["id"].as_str().unwrap().to_string();
    let coded = cap(second_id.clone()).await;
    assert!(
        coded.contains("<valueName>NIS</valueName>") && coded.contains("<value>04000</value>"),
        "geocode kept"
    );
    assert!(
        coded.contains("<restriction>"),
        "a Restricted alert says to whom"
    );
    api.wait_sent(&first_id, Duration::from_secs(30)).await;
    api.wait_sent(&second_id, Duration::from_secs(30)).await;
    let cancel = api
        .post(&format!("/v1/alerts/{first_id}:cancel"), &json!({}))
        .await;
    let cancel_xml = cap(cancel.body["id"].as_str().unwrap().to_string()).await;
    assert!(cancel_xml.contains("<msgType>Cancel</msgType>"));
    let refs = cancel_xml
        .split("<references>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap();
    assert!(
        refs.starts_with(&format!("centre@bealert,urn:uuid:{first_id},")),
        "{refs}"
    );
    let clear = api
        .post(&format!("/v1/alerts/{second_id}:all_clear"), &json!({}))
        .await;
    let clear_xml = cap(clear.body["id"].as_str().unwrap().to_string()).await;
    assert!(
        clear_xml.contains("<responseType>AllClear</responseType>"),
        "{clear_xml}"
    );
    assert!(clear_xml.contains("<msgType>Update</msgType>"));
    assert_eq!(
        count(&clear_xml, "info"),
        4,
        "default texts in every language"
    );

    if let Ok(out) = std::env::var("BEALERT_CAP_OUT") {
        std::fs::create_dir_all(&out).unwrap();
        for (name, doc) in [
            ("drawn", &xml),
            ("geocode", &coded),
            ("cancel", &cancel_xml),
            ("all-clear", &clear_xml),
        ] {
            std::fs::write(format!("{out}/{name}.xml"), doc).unwrap();
        }
    }
}

/// A CAP 1.2 message in, in its languages; malformed CAP out with a 422
/// naming the element; a CAP Cancel of bealert's own alert cancels it.
#[tokio::test(flavor = "multi_thread")]
async fn a_cap_message_becomes_an_alert_in_its_languages() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let key = operator(p, "centre", "national");
    let server = Server::start(p, &[]);
    let api = Api::new(&server.url, &key);
    let subs = json!({"subscribers": [
        sub("anna", "nl", &["sms", "email"], &[(50.85, 4.35)], &[], 1),
        sub("dirk", "de", &["sms"], &[(50.85, 4.35)], &[], 2),
    ]});
    api.post("/v1/subscribers:import", &subs).await;
    let post_cap = |xml: String| {
        let api = &api;
        async move {
            api.send(
                reqwest::Method::POST,
                "/v1/alerts",
                Some(xml.into_bytes()),
                Some(&api.key),
                Some("application/cap+xml"),
            )
            .await
        }
    };
    let fixture = |name: &str| {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/cap/{name}",
            env!("CARGO_MANIFEST_DIR").trim_end_matches("/functions/local")
        ))
        .unwrap()
    };
    let expires = (time::OffsetDateTime::now_utc() + time::Duration::hours(3))
        .to_offset(time::UtcOffset::from_hms(1, 0, 0).unwrap())
        .format(&time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]+01:00"
        ))
        .unwrap();
    let info = |lang: &str, text: &str, headline: &str| {
        format!(
            "<info><language>{lang}</language><category>Met</category><event>Storm</event>\
             <urgency>Immediate</urgency><severity>Severe</severity><certainty>Observed</certainty>\
             <expires>{expires}</expires><headline>{headline}</headline><description>{text}</description>\
             <instruction>Blijf binnen.</instruction>\
             <area><areaDesc>Brussel</areaDesc><polygon>50.80,4.30 50.80,4.40 50.90,4.40 50.90,4.30 50.80,4.30</polygon>\
             <geocode><valueName>EMMA_ID</valueName><value>BE004</value></geocode></area></info>"
        )
    };
    let message = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\">\
         <identifier>2.49.0.0.56.0.test.1</identifier><sender>test@meteo.example</sender>\
         <sent>2026-11-29T10:00:00+01:00</sent><status>Actual</status><msgType>Alert</msgType><scope>Public</scope>{}{}{}</alert>",
        info("nl-BE", "Zware storm &amp; rukwinden.", "Storm in Brussel"),
        info("de", "Schwerer Sturm.", "Sturm in Brüssel"),
        info("es-ES", "Tormenta.", "Tormenta"),
    );
    let created = post_cap(message).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let warnings = created.body["warnings"].to_string();
    assert!(
        warnings.contains("es-ES") && warnings.contains("EMMA_ID BE004"),
        "{warnings}"
    );
    let id = created.body["id"].as_str().unwrap().to_string();
    let view = api.wait_sent(&id, Duration::from_secs(30)).await;
    assert_eq!(view["event"], "Storm");
    assert_eq!(view["recipients"], 2);
    let sms = outbox(p, "sms");
    let text_of = |lang: &str| {
        sms.iter()
            .find(|l| l["alert_id"] == id.as_str() && l["language"] == lang)
            .map(|l| unsigned(l, "centre"))
    };
    assert_eq!(
        text_of("nl").as_deref(),
        Some("Zware storm & rukwinden.\nBlijf binnen.")
    );
    assert_eq!(
        text_of("de").as_deref(),
        Some("Schwerer Sturm.\nBlijf binnen.")
    );
    let mail = outbox(p, "email");
    assert_eq!(
        mail[0]["subject"], "Storm in Brussel",
        "the headline is the subject"
    );

    // A CAP Cancel that references bealert's own alert cancels it.
    let exported = api.get(&format!("/v1/alerts/{id}/cap")).await.body;
    let xml = exported.as_str().unwrap();
    let field = |tag: &str| {
        xml.split(&format!("<{tag}>"))
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .to_string()
    };
    let cancel = format!(
        "<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\"><identifier>c-1</identifier><sender>test@meteo.example</sender>\
         <sent>2026-11-29T10:05:00+01:00</sent><status>Actual</status><msgType>Cancel</msgType><scope>Public</scope>\
         <references>{},{},{}</references>{}</alert>",
        field("sender"),
        field("identifier"),
        field("sent"),
        info("nl-BE", "Vals alarm.", "Ingetrokken"),
    );
    let cancelled = post_cap(cancel).await;
    assert_eq!(cancelled.status, 201, "{:?}", cancelled.body);
    let c = api
        .wait_sent(
            cancelled.body["id"].as_str().unwrap(),
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(c["msg_type"], "Cancel");
    assert_eq!(c["references"], id.as_str());

    // Refused, naming the element.
    for (file, path) in [
        ("malformed/wrong-namespace.xml", "alert"),
        ("malformed/no-info.xml", "alert.info"),
        (
            "malformed/open-polygon.xml",
            "alert.info[0].area[0].polygon[0]",
        ),
        ("malformed/z-time.xml", "alert.sent"),
        // The specification's own example expired in 2003.
        ("oasis-a2-severe-thunderstorm.xml", "alert.info[0].expires"),
        ("oasis-a4-amber-alert.xml", "alert.info[0].area"),
    ] {
        let r = post_cap(fixture(file)).await;
        assert_eq!(r.status, 422, "{file}: {:?}", r.body);
        let paths: Vec<&str> = r.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap())
            .collect();
        assert!(paths.contains(&path), "{file}: {paths:?} {:?}", r.body);
    }
    let other = api
        .send(
            reqwest::Method::POST,
            "/v1/alerts",
            Some(b"x".to_vec()),
            Some(&api.key),
            Some("text/csv"),
        )
        .await;
    assert_eq!(other.status, 415);
}

/// The public page, each public alert's CAP and the Atom feed: no key,
/// public alerts only, in force apart from ended ones.
#[tokio::test(flavor = "multi_thread")]
async fn the_public_page_and_feed_list_public_alerts_without_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let key = operator(p, "crisis centre", "national");
    let server = Server::start(p, &[]);
    let api = Api::new(&server.url, &key);
    let anyone = reqwest::Client::new();
    let subs = json!({"subscribers": [sub("anna", "fr", &["sms"], &[(50.85, 4.35)], &[], 1)]});
    api.post("/v1/subscribers:import", &subs).await;
    let area = json!({"circles": [{"lat": 50.851, "lon": 4.353, "radius_km": 1.0}]});
    let create = |event: &str, f: &dyn Fn(&mut Value)| {
        let mut b = alert_body(area.clone());
        b["event"] = json!(event);
        f(&mut b);
        b
    };
    let public = api
        .post(
            "/v1/alerts",
            &create("Gaslek", &|b| b["status"] = json!("Exercise")),
        )
        .await;
    let public_id = public.body["id"].as_str().unwrap().to_string();
    let restricted = api
        .post(
            "/v1/alerts",
            &create("Intern incident", &|b| b["scope"] = json!("Restricted")),
        )
        .await;
    let restricted_id = restricted.body["id"].as_str().unwrap().to_string();
    let cancelled = api.post("/v1/alerts", &create("Vals alarm", &|_| {})).await;
    let cancelled_id = cancelled.body["id"].as_str().unwrap().to_string();
    for id in [&public_id, &restricted_id, &cancelled_id] {
        api.wait_sent(id, Duration::from_secs(30)).await;
    }
    let cancel = api
        .post(&format!("/v1/alerts/{cancelled_id}:cancel"), &json!({}))
        .await;
    api.wait_sent(cancel.body["id"].as_str().unwrap(), Duration::from_secs(30))
        .await;

    let page = anyone
        .get(format!("{}/alerts?lang=fr", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let (in_force, ended) = html.split_once("Terminées ou annulées").unwrap();
    assert!(
        in_force.contains("Gaslek") && in_force.contains("EXERCICE"),
        "{in_force}"
    );
    assert!(
        in_force.contains("Fermez portes et fenêtres"),
        "the page's language"
    );
    assert!(in_force.contains("crisis centre"), "the issuing authority");
    assert!(
        !in_force.contains("Vals alarm"),
        "a cancelled alert is not in force"
    );
    assert!(
        ended.contains("Vals alarm") && ended.contains("ANNULÉE"),
        "{ended}"
    );
    assert!(
        !html.contains("Intern incident"),
        "a restricted alert is never public"
    );

    let cap = |id: String| {
        let anyone = anyone.clone();
        let url = server.url.clone();
        async move {
            anyone
                .get(format!("{url}/alerts/{id}.cap"))
                .send()
                .await
                .unwrap()
        }
    };
    let ok = cap(public_id.clone()).await;
    assert_eq!(ok.status(), 200);
    assert!(
        ok.text()
            .await
            .unwrap()
            .contains(&format!("urn:uuid:{public_id}"))
    );
    assert_eq!(cap(restricted_id.clone()).await.status(), 404);

    let feed = anyone
        .get(format!("{}/feed.atom", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), 200);
    assert!(
        feed.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/atom+xml")
    );
    let atom = feed.text().await.unwrap();
    assert!(atom.contains(&format!("/alerts/{public_id}.cap")), "{atom}");
    assert!(atom.contains("EXERCISE - Gaslek"));
    assert!(!atom.contains(&restricted_id));
    if let Ok(out) = std::env::var("BEALERT_CAP_OUT") {
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(format!("{out}/feed.atom"), &atom).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alert_from_a_template_only_fills_the_blanks() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let key = operator(p, "centre", "national");
    let province = operator(p, "antwerpen", "province:10000");
    let server = Server::start(p, &[]);
    let (api, gov) = (
        Api::new(&server.url, &key),
        Api::new(&server.url, &province),
    );
    async fn put(api: &Api, name: &str, body: Value) -> common::Answer {
        api.send(
            reqwest::Method::PUT,
            &format!("/v1/alert-templates/{name}"),
            Some(body.to_string().into_bytes()),
            Some(&api.key),
            Some("application/json"),
        )
        .await
    }
    let flood = json!({
        "event": "Flood", "severity": "Severe", "urgency": "Immediate", "certainty": "Likely",
        "channels": ["sms"],
        "messages": {"nl": "Overstroming van de {river}: ga naar boven.", "fr": "Crue de la {river} : montez à l'étage."}
    });
    let created = put(&api, "flood", flood.clone()).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["placeholders"], json!(["river"]));
    assert_eq!(
        put(&api, "flood", flood.clone()).await.status,
        200,
        "replaced"
    );
    assert_eq!(
        put(&gov, "flood", flood.clone()).await.status,
        403,
        "national operators only"
    );
    let mut broken = flood.clone();
    broken["messages"]["de"] = json!("Hochwasser {Fluss}");
    let bad = put(&api, "flood2", broken).await;
    assert_eq!(bad.status, 422, "{:?}", bad.body);
    assert_eq!(bad.body["errors"][0]["path"], "messages.de");
    assert_eq!(
        api.get("/v1/alert-templates/flood").await.body["event"],
        "Flood"
    );
    assert_eq!(
        gov.get("/v1/alert-templates").await.body["items"][0]["name"],
        "flood"
    );
    assert_eq!(api.get("/v1/alert-templates/none").await.status, 404);

    let subs =
        json!({"subscribers": [sub("anna", "nl", &["sms", "email"], &[(50.85, 4.35)], &[], 1)]});
    api.post("/v1/subscribers:import", &subs).await;
    let area = json!({"circles": [{"lat": 50.851, "lon": 4.353, "radius_km": 1.0}]});
    let alert = api
        .post(
            "/v1/alerts",
            &json!({"template": "flood", "values": {"river": "Zenne"}, "status": "Exercise", "area": area}),
        )
        .await;
    assert_eq!(alert.status, 201, "{:?}", alert.body);
    let id = alert.body["id"].as_str().unwrap();
    let view = api.wait_sent(id, Duration::from_secs(30)).await;
    assert_eq!(view["event"], "Flood");
    assert_eq!(view["status"], "Exercise", "the request's own status wins");
    assert!(
        view["channels"].get("email").is_none(),
        "the template's channels"
    );
    let sms = outbox(p, "sms");
    assert_eq!(
        unsigned(&sms[0], "centre"),
        "OEFENING - Overstroming van de Zenne: ga naar boven."
    );

    let missing = api
        .post(
            "/v1/alerts",
            &json!({"template": "flood", "status": "Exercise", "area": area}),
        )
        .await;
    assert_eq!(missing.status, 422);
    assert_eq!(missing.body["errors"][0]["path"], "values.river");
    let unknown = api
        .post(
            "/v1/alerts",
            &json!({"template": "storm", "status": "Exercise", "area": area}),
        )
        .await;
    assert_eq!(unknown.status, 422);
    assert_eq!(unknown.body["errors"][0]["path"], "template");
}

/// Drills through the API; `serve` fires them on time and reports a run
/// it was stopped for as missed.
#[tokio::test(flavor = "multi_thread")]
async fn drills_run_on_their_schedule_and_missed_runs_are_reported() {
    use bealert_app::ports::DocumentStore;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let key = operator(p, "centre", "national");
    let server = Server::start(p, &[]);
    let api = Api::new(&server.url, &key);
    let subs = json!({"subscribers": [sub("crew1", "nl", &["sms"], &[(51.2, 4.4)], &["crew"], 1)]});
    api.post("/v1/subscribers:import", &subs).await;
    let template = json!({"event": "Maandelijkse test", "severity": "Minor", "urgency": "Immediate",
        "certainty": "Observed", "channels": ["sms"], "messages": {"nl": "Test van de alarmketen."}});
    let put = api
        .send(
            reqwest::Method::PUT,
            "/v1/alert-templates/monthly",
            Some(template.to_string().into_bytes()),
            Some(&api.key),
            Some("application/json"),
        )
        .await;
    assert_eq!(put.status, 201, "{:?}", put.body);

    for (body, path) in [
        (
            json!({"schedule": "every day", "template": "monthly", "groups": ["crew"]}),
            "schedule",
        ),
        (
            json!({"schedule": "rate(1 day)", "template": "none", "groups": ["crew"]}),
            "template",
        ),
        (
            json!({"schedule": "rate(1 day)", "template": "monthly"}),
            "area",
        ),
    ] {
        let bad = api.post("/v1/drills", &body).await;
        assert_eq!(bad.status, 422, "{body}: {:?}", bad.body);
        assert_eq!(bad.body["errors"][0]["path"], path, "{:?}", bad.body);
    }
    let created = api
        .post(
            "/v1/drills",
            &json!({"schedule": "cron(0 10 ? * MON#1 *)", "template": "monthly", "groups": ["crew"]}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let next = created.body["next_run"].as_str().unwrap();
    assert!(
        next.ends_with("T10:00:00+01:00") || next.ends_with("T10:00:00+02:00"),
        "{next}"
    );
    assert_eq!(
        api.get("/v1/drills").await.body["items"][0]["id"],
        id.as_str()
    );

    // The server was "stopped" over a run: its time is ten minutes past.
    let store = bealert_embedded::store::SqliteStore::open(&p.join("store.db")).unwrap();
    let set_next = |ms: i64| {
        let store = &store;
        let id = id.clone();
        async move {
            let mut d = store.get_document("drill", &id).await.unwrap().unwrap();
            d["next_run"] = json!(ms);
            store.put_document("drill", &id, &d).await.unwrap();
        }
    };
    let now = bealert_app::now_ms();
    set_next(now - 600_000).await;
    let runs_until = |want: &'static str| {
        let api = &api;
        let id = id.clone();
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            loop {
                let runs = api.get(&format!("/v1/drills/{id}/runs")).await.body;
                if runs["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r["status"] == want)
                {
                    return runs;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "no {want} run: {runs}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let missed = runs_until("missed").await;
    assert!(
        missed["items"][0]["error"]
            .as_str()
            .unwrap()
            .contains("not running"),
        "{missed}"
    );
    assert!(
        outbox(p, "sms").is_empty(),
        "a missed run is reported, not sent late"
    );

    // Its time has come: it runs, and its report says whom it reached.
    set_next(bealert_app::now_ms() - 500).await;
    let ok = runs_until("ok").await;
    let run = ok["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["status"] == "ok")
        .unwrap();
    assert_eq!(run["reach"], 1);
    assert_eq!(run["channels"]["sms"]["sent"], 1, "{run}");
    assert!(run["channels"]["sms"]["first_ms"].as_i64().unwrap() >= 0);
    let sms = outbox(p, "sms");
    assert_eq!(sms.len(), 1);
    assert_eq!(
        unsigned(&sms[0], "centre"),
        "OEFENING - Test van de alarmketen.",
        "every run is an exercise"
    );
    let after = api.get("/v1/drills").await.body;
    let next_run = after["items"][0]["next_run"].as_str().unwrap();
    assert!(
        next_run.contains("T10:00:00"),
        "the next first Monday: {next_run}"
    );

    let deleted = api
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/drills/{id}"),
            None,
            Some(&api.key),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(api.get("/v1/drills").await.body["items"], json!([]));
    let again = api
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/drills/{id}"),
            None,
            Some(&api.key),
            None,
        )
        .await;
    assert_eq!(again.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_is_served_and_reads_who_is_signed_in_their_alerts_and_texts() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let ann = operator(p, "centre", "national");
    let bea = common::created(
        p,
        &["user", "create", "--operator", "centre", "--name", "bea"],
    );
    let mayor = operator(p, "elsene", "municipality:21009");
    let server = Server::start(p, &[("BEALERT_APPROVAL", "actual")]);
    let (api, bea_api, mayor_api) = (
        Api::new(&server.url, &ann),
        Api::new(&server.url, &bea),
        Api::new(&server.url, &mayor),
    );

    // The page: no key needed, no third party allowed, gzip when asked.
    let client = reqwest::Client::new();
    let page = client
        .get(format!("{}/console", server.url))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-encoding"], "gzip");
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("connect-src 'self'") && !csp.contains("http"),
        "{csp}"
    );
    let plain = client
        .get(format!("{}/console", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(plain.contains("/console/leaflet.js") && plain.contains("data-tiles=\"\""));
    for f in ["console.js", "console.css", "leaflet.js", "leaflet.css"] {
        let a = api.get(&format!("/console/{f}")).await;
        assert_eq!(a.status, 200, "{f}");
    }
    assert_eq!(api.get("/console/nothing.js").await.status, 404);
    let outlines = api.get("/console/outlines.geojson").await;
    let levels: Vec<&str> = outlines.body["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["properties"]["level"].as_str().unwrap())
        .collect();
    assert_eq!(levels.iter().filter(|l| **l == "region").count(), 3);
    assert_eq!(levels.iter().filter(|l| **l == "province").count(), 10);
    assert!(levels.contains(&"municipality"));

    // Who is signed in, and what they may do.
    let me = api.get("/v1/operator").await;
    assert_eq!(me.body["jurisdiction"], "national", "{:?}", me.body);
    assert!(
        me.body["may"]
            .as_array()
            .unwrap()
            .contains(&json!("import"))
    );
    let me = mayor_api.get("/v1/operator").await;
    assert_eq!(me.body["territory"]["code"], "21009", "{:?}", me.body);
    assert_eq!(me.body["territory"]["name"], "Elsene/Ixelles");
    assert_eq!(me.body["may"], json!(["alert", "approve", "drills"]));
    let anon = api
        .send(Method::GET, "/v1/operator", None, None, None)
        .await;
    assert_eq!(anon.status, 401);

    // The approval queue: an Actual alert waits; its texts and zone read back.
    let area = json!({"circles": [{"lat": 51.2194, "lon": 4.4025, "radius_km": 1.5}]});
    let created = api.post("/v1/alerts", &alert_body(area)).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let queue = bea_api.get("/v1/alerts?state=awaiting_approval").await;
    let ids: Vec<&str> = queue.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id.as_str()], "{:?}", queue.body);
    // Only another person than its author is offered the approval.
    assert_eq!(queue.body["items"][0]["created_by"], "centre");
    assert_eq!(queue.body["items"][0]["may_approve"], true);
    let own = api.get("/v1/alerts?state=awaiting_approval").await;
    assert_eq!(own.body["items"][0]["may_approve"], false);
    assert_eq!(
        bea_api.get("/v1/alerts?state=sent").await.body["items"],
        json!([])
    );
    // The mayor of Elsene does not see an alert in Antwerp.
    assert_eq!(mayor_api.get("/v1/alerts").await.body["items"], json!([]));
    let bad = api.get("/v1/alerts?state=bogus").await;
    assert_eq!(bad.status, 422);
    assert!(
        bad.body["detail"]
            .as_str()
            .unwrap()
            .contains("awaiting_approval")
    );
    assert_eq!(api.get("/v1/alerts?page=2").await.status, 400);
    assert_eq!(api.get("/v1/alerts?state=").await.status, 422);
    let view = bea_api.get(&format!("/v1/alerts/{id}")).await;
    assert!(view.body["messages"]["en"].is_string(), "{:?}", view.body);
    let zone = bea_api.get(&format!("/v1/alerts/{id}/area")).await;
    assert_eq!(zone.content_type, "application/geo+json");
    assert_eq!(zone.body["features"][0]["properties"]["radius_km"], 1.5);
    assert_eq!(
        zone.body["features"][0]["geometry"]["coordinates"],
        json!([4.4025, 51.2194])
    );
    assert_eq!(
        mayor_api.get(&format!("/v1/alerts/{id}/area")).await.status,
        404
    );

    // How each text leaves: the exercise marker, SMS parts, CB pages.
    let m = api
        .post(
            "/v1/messages:measure",
            &json!({"status": "Exercise", "messages": {"nl": "a".repeat(150), "fr": "Évacuez ✓"}}),
        )
        .await;
    assert_eq!(m.status, 200, "{:?}", m.body);
    assert!(
        m.body["nl"]["text"]
            .as_str()
            .unwrap()
            .starts_with("OEFENING - ")
    );
    assert_eq!(m.body["nl"]["sms"]["segments"], 2);
    assert_eq!(m.body["fr"]["sms"]["encoding"], "ucs2");
    assert_eq!(m.body["fr"]["cell_broadcast"]["pages"], 1);
    for (bad, status) in [
        (json!({"messages": {"xx": "a"}}), 422),
        // null is no status (as everywhere: a 400 naming the position).
        (json!({"status": null, "messages": {"en": "a"}}), 400),
    ] {
        let a = api.post("/v1/messages:measure", &bad).await;
        assert_eq!(a.status, status, "{bad}: {:?}", a.body);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configured_tile_server_is_the_only_third_party_the_console_may_ask() {
    let dir = tempfile::tempdir().unwrap();
    let tiles = "https://tile.openstreetmap.org/{z}/{x}/{y}.png";
    let server = Server::start(dir.path(), &[("BEALERT_CONSOLE_TILES", tiles)]);
    let page = reqwest::get(format!("{}/console", server.url))
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("img-src 'self' data: https://tile.openstreetmap.org;"),
        "{csp}"
    );
    assert!(csp.contains("connect-src 'self';"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains(&format!("data-tiles=\"{tiles}\"")), "{html}");
}
