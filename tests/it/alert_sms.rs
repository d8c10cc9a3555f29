//! Alert-SMS through the real binary: networks upload their cells, operators
//! estimate who is in a zone, alerts go out through the (simulated)
//! networks, and a failing or slow network delays nobody else.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{Api, Server, alert_body, network, operator};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A grid of square cells of `step` degrees from (lon0, lat0), each with
/// `devices` active devices.
fn grid(lon0: f64, lat0: f64, n: usize, m: usize, step: f64, devices: u64) -> Value {
    let mut features = Vec::new();
    for i in 0..n {
        for j in 0..m {
            let (x, y) = (lon0 + step * i as f64, lat0 + step * j as f64);
            features.push(json!({"type": "Feature",
                "properties": {"cell_id": format!("{i}-{j}"), "active_devices": devices},
                "geometry": {"type": "Polygon", "coordinates": [[[x, y], [x + step, y], [x + step, y + step], [x, y + step], [x, y]]]}}));
        }
    }
    json!({"type": "FeatureCollection", "features": features})
}

async fn put_cells(api: &Api, name: &str, key: &str, body: &Value) -> common::Answer {
    api.send(
        reqwest::Method::PUT,
        &format!("/v1/networks/{name}/cells"),
        Some(body.to_string().into_bytes()),
        Some(key),
        Some("application/geo+json"),
    )
    .await
}

fn rect(x0: f64, y0: f64, x1: f64, y1: f64) -> Value {
    json!({"geojson": {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}})
}

#[tokio::test]
async fn networks_upload_their_own_cells_and_operators_estimate_who_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let key = operator(dir.path(), "crisis-centre", "national");
    let proximus = network(dir.path(), "proximus");
    let orange = network(dir.path(), "orange");
    let server = Server::start(dir.path(), &[("BEALERT_DEVICES_PER_PERSON", "1.25")]);
    let api = Api::new(&server.url, &key);

    // 10,000 cells (0.005° squares over Brussels and beyond): more than
    // the API's 1 MiB body limit, loaded through the route's own limit.
    let big = grid(4.0, 50.6, 100, 100, 0.005, 80);
    assert!(big.to_string().len() > 1024 * 1024);
    let r = put_cells(&api, "proximus", &proximus, &big).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.body["cells"].as_u64(), r.body["active_devices"].as_u64()),
        (Some(10_000), Some(800_000))
    );

    // Keys: only the network's own.
    let small = grid(4.30, 50.80, 10, 10, 0.01, 100);
    assert_eq!(
        put_cells(&api, "proximus", &orange, &small).await.status,
        403
    );
    assert_eq!(put_cells(&api, "orange", &key, &small).await.status, 403);
    assert_eq!(
        put_cells(&api, "orange", "bealert_nope", &small)
            .await
            .status,
        401
    );
    // Bad cells: every problem named by its feature.
    let mut bad = small.clone();
    bad["features"][3]["properties"]["active_devices"] = json!(-5);
    bad["features"][7]["geometry"] = json!({"type": "Point", "coordinates": [-3.7, 40.4]});
    let r = put_cells(&api, "orange", &orange, &bad).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let paths: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "features[3].properties.active_devices",
            "features[7].geometry.coordinates"
        ]
    );
    let r = put_cells(&api, "orange", &orange, &small).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // A zone on orange's cell edges (3 × 4 cells of 100 devices) and half
    // a column of proximus's 0.005° cells... by hand: orange 1,200 devices
    // present; proximus's cells tile the same rectangle exactly (0.03° ×
    // 0.04° = 6 × 8 cells of 80): 3,840 devices.
    let zone = rect(4.32, 50.83, 4.35, 50.87);
    let e = api.post("/v1/zones:estimate", &json!({"area": zone})).await;
    assert_eq!(e.status, 200, "{}", e.body);
    let near = |v: &Value, want: f64| (v.as_f64().unwrap() - want).abs() < 1e-6 * want.max(1.0);
    assert!(
        near(&e.body["networks"]["orange"]["present_devices"], 1200.0),
        "{}",
        e.body
    );
    assert!(
        near(&e.body["networks"]["proximus"]["present_devices"], 3840.0),
        "{}",
        e.body
    );
    assert_eq!(e.body["networks"]["orange"]["reach_devices"], 1200);
    assert_eq!(e.body["networks"]["orange"]["cells"], 12);
    assert!(
        near(&e.body["estimated_present"], (1200.0 + 3840.0) / 1.25),
        "{}",
        e.body
    );
    assert_eq!(e.body["devices_per_person"], 1.25);
    assert_eq!(e.body["stale"], false);
    assert!(e.body["networks"]["orange"]["refreshed_at"].is_string());
    assert!(e.body["overshoot_km2"].as_f64().unwrap() < 1e-6);

    // Half a column more: the overshoot is half of orange's cells there.
    let e = api
        .post(
            "/v1/zones:estimate",
            &json!({"area": rect(4.315, 50.83, 4.35, 50.87)}),
        )
        .await;
    assert!(
        near(&e.body["networks"]["orange"]["present_devices"], 1400.0),
        "{}",
        e.body
    );
    assert_eq!(e.body["networks"]["orange"]["reach_devices"], 1600);
    assert!(near(
        &e.body["networks"]["orange"]["overshoot_people"],
        200.0 / 1.25
    ));
    assert!(
        e.body["networks"]["orange"]["overshoot_km2"]
            .as_f64()
            .unwrap()
            > 1.0
    );

    assert!(e.body.get("overshoot_cells").is_none());
    // Asked for, the cells partly outside the zone come as GeoJSON: the
    // half column of orange's cells (proximus's end on the zone's edge).
    let e = api
        .post(
            "/v1/zones:estimate",
            &json!({"area": rect(4.315, 50.83, 4.35, 50.87), "overshoot_cells": true}),
        )
        .await;
    let cells = e.body["overshoot_cells"]["features"].as_array().unwrap();
    let by: Vec<(&str, &str)> = cells
        .iter()
        .map(|f| {
            (
                f["properties"]["network"].as_str().unwrap(),
                f["geometry"]["type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(by, vec![("orange", "MultiPolygon"); 4], "{}", e.body);
    assert_eq!(e.body["overshoot_cells"]["truncated"], false);

    // The preview carries the same estimate.
    let p = api.post("/v1/zones:preview", &json!({"area": zone})).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(
        near(
            &p.body["estimate"]["networks"]["orange"]["present_devices"],
            1200.0
        ),
        "{}",
        p.body
    );

    // The networks list says how fresh each network's cells are.
    let n = api.get("/v1/networks").await;
    assert_eq!(n.body["items"].as_array().unwrap().len(), 2, "{}", n.body);
    assert_eq!(n.body["items"][0]["name"], "orange");
}

#[tokio::test]
async fn stale_cells_are_flagged_in_every_answer_that_uses_them() {
    let dir = tempfile::tempdir().unwrap();
    let key = operator(dir.path(), "crisis-centre", "national");
    let base = network(dir.path(), "base");
    let server = Server::start(dir.path(), &[("BEALERT_CELLS_STALE_AFTER_HOURS", "0")]);
    let api = Api::new(&server.url, &key);
    assert_eq!(
        put_cells(&api, "base", &base, &grid(4.30, 50.80, 10, 10, 0.01, 100))
            .await
            .status,
        200
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    let e = api
        .post(
            "/v1/zones:estimate",
            &json!({"area": rect(4.32, 50.83, 4.35, 50.87)}),
        )
        .await;
    assert_eq!(
        (
            e.body["stale"].as_bool(),
            e.body["networks"]["base"]["stale"].as_bool()
        ),
        (Some(true), Some(true)),
        "{}",
        e.body
    );
    assert_eq!(
        api.get("/v1/networks").await.body["items"][0]["stale"],
        true
    );
}

async fn alert_view(api: &Api, id: &str) -> Value {
    let a = api.get(&format!("/v1/alerts/{id}")).await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.body
}

#[tokio::test]
async fn a_failing_network_is_retried_then_failed_and_a_slow_one_delays_no_sms() {
    let dir = tempfile::tempdir().unwrap();
    let key = operator(dir.path(), "crisis-centre", "national");
    let proximus = network(dir.path(), "proximus");
    let orange = network(dir.path(), "orange");
    let server = Server::start(
        dir.path(),
        &[
            ("BEALERT_NETWORK_SIM", "orange=down,proximus=slow:3000"),
            ("BEALERT_NETWORK_RETRY_MS", "50"),
        ],
    );
    let api = Api::new(&server.url, &key);
    let cells = grid(4.30, 50.80, 10, 10, 0.01, 100);
    assert_eq!(
        put_cells(&api, "proximus", &proximus, &cells).await.status,
        200
    );
    assert_eq!(put_cells(&api, "orange", &orange, &cells).await.status, 200);
    let sub = json!({"external_id": "s1", "language": "nl", "phone": "+32470000001",
        "channels": ["sms"], "addresses": [{"lat": 50.85, "lon": 4.335}]});
    assert_eq!(
        api.post("/v1/subscribers:import", &json!({"subscribers": [sub]}))
            .await
            .status,
        200
    );

    let mut body = alert_body(rect(4.32, 50.83, 4.35, 50.87));
    body["channels"] = json!(["sms"]);
    body["broadcast"] = json!({"mode": "lbsms"});
    let created = api.post("/v1/alerts", &body).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();

    // The SMS goes out while proximus is still answering (3 s): the
    // behaviour is the order, not a time (how long it takes is no assertion).
    let start = Instant::now();
    let sms_at = loop {
        let v = alert_view(&api, &id).await;
        if v["channels"]["sms"]["sent"] == 1 {
            assert_ne!(v["networks"]["proximus"]["state"], "sent", "{v}");
            break start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!("the SMS went out after {sms_at:?}, before proximus answered");

    // Orange is retried with backoff, then declared failed with the reason;
    // proximus reports; the alert is final only then.
    let v = api.wait_sent(&id, Duration::from_secs(20)).await;
    let o = &v["networks"]["orange"];
    assert_eq!(o["state"], "failed", "{v}");
    assert_eq!(o["attempts"], 5);
    assert!(o["error"].as_str().unwrap().contains("unreachable"), "{o}");
    assert_eq!(o["requested"], 1200);
    let p = &v["networks"]["proximus"];
    assert_eq!(
        (
            p["state"].as_str(),
            p["cells"].as_u64(),
            p["requested"].as_u64(),
            p["delivered"].as_u64()
        ),
        (Some("sent"), Some(12), Some(1200), Some(1200)),
        "{v}"
    );
    assert!(
        v["estimate"]["networks"]["proximus"]["reach_devices"] == 1200,
        "{v}"
    );

    // Network deliveries are not per subscriber: /deliveries lists the SMS only.
    let d = api.get(&format!("/v1/alerts/{id}/deliveries")).await;
    assert_eq!(d.body["items"].as_array().unwrap().len(), 1, "{}", d.body);
    assert_eq!(d.body["items"][0]["channel"], "sms");

    // An all-clear reaches the same audience: the network that took the
    // original gets it through its follow-up method (its kept cells), the
    // one that failed gets nothing.
    let clear = api
        .post(&format!("/v1/alerts/{id}:all_clear"), &json!({}))
        .await;
    assert_eq!(clear.status, 201, "{}", clear.body);
    let clear_id = clear.body["id"].as_str().unwrap();
    let c = api.wait_sent(clear_id, Duration::from_secs(20)).await;
    let p = &c["networks"]["proximus"];
    assert_eq!(
        (
            p["state"].as_str(),
            p["requested"].as_u64(),
            p["cells"].as_u64()
        ),
        (Some("sent"), Some(1200), Some(12)),
        "{c}"
    );
    assert!(c["networks"].get("orange").is_none(), "{c}");
    assert_eq!(c["channels"]["sms"]["sent"], 1, "{c}");
}

#[tokio::test]
async fn broadcast_requests_are_checked_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let key = operator(dir.path(), "crisis-centre", "national");
    let base = network(dir.path(), "base");
    network(dir.path(), "orange");
    let server = Server::start(dir.path(), &[]);
    let api = Api::new(&server.url, &key);
    let mut body = alert_body(rect(4.32, 50.83, 4.35, 50.87));
    body["channels"] = json!([]);
    body["broadcast"] = json!({"mode": "cell_broadcast"});
    // No network has cells yet.
    let r = api.post("/v1/alerts", &body).await;
    assert_eq!(
        (r.status, r.body["errors"][0]["path"].as_str()),
        (422, Some("broadcast")),
        "{}",
        r.body
    );
    assert_eq!(
        put_cells(&api, "base", &base, &grid(4.30, 50.80, 10, 10, 0.01, 100))
            .await
            .status,
        200
    );
    body["broadcast"] = json!({"mode": "cell_broadcast", "networks": ["base", "nobody", "orange"]});
    let r = api.post("/v1/alerts", &body).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let errors = r.body["errors"].as_array().unwrap();
    assert_eq!(errors[0]["path"], "broadcast.networks[1]");
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("known: base, orange"),
        "{}",
        r.body
    );
    assert_eq!(errors[1]["path"], "broadcast.networks[2]");
    assert!(
        errors[1]["message"]
            .as_str()
            .unwrap()
            .contains("not uploaded"),
        "{}",
        r.body
    );
    // A text over 15 cell broadcast pages: the language and the limit.
    body["broadcast"] = json!({"mode": "cell_broadcast", "networks": ["base"]});
    body["messages"]["fr"] = json!("Fermez ".repeat(200));
    let r = api.post("/v1/alerts", &body).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["errors"][0]["path"], "messages.fr");
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("15 pages"),
        "{}",
        r.body
    );
    // Cell broadcast only, every network with cells: sent through base.
    body["messages"]["fr"] = json!("Fermez portes et fenêtres");
    body["broadcast"] = json!({"mode": "cell_broadcast"});
    let r = api.post("/v1/alerts", &body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let v = api
        .wait_sent(r.body["id"].as_str().unwrap(), Duration::from_secs(10))
        .await;
    assert_eq!(v["networks"]["base"]["delivered"], 1200, "{v}");
    assert!(v["networks"].get("orange").is_none());
    assert_eq!(v["recipients"], 0);
}

/// A home without Alert-SMS (the networks absent from the app by type):
/// its routes answer as before, an alert asking for a broadcast is refused
/// with the same 503, and one without a broadcast goes out as usual.
#[tokio::test]
async fn a_home_without_alert_sms_answers_as_before() {
    use bealert_app::App;
    use bealert_app::usecases::AppConfig;
    use bealert_core::operator::{Jurisdiction, KeyGrant, Operator, hash_key};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let embedded = bealert_embedded::Embedded::open(dir.path()).unwrap();
    let app = App::new(embedded.ports(), AppConfig::default());
    assert!(app.networks().is_none());
    for (name, jurisdiction, key) in [
        (
            "crisis-centre",
            Jurisdiction::National,
            "bea_national-test-key",
        ),
        (
            "ixelles",
            Jurisdiction::Municipality("21009".into()),
            "bea_local-test-key",
        ),
    ] {
        let op = Operator {
            name: name.into(),
            jurisdiction,
            user: name.into(),
            groups: Vec::new(),
            rights: Default::default(),
            key_expires_at_ms: None,
        };
        let grant = KeyGrant {
            hash: hash_key(key),
            expires_at_ms: None,
        };
        app.ports
            .operators
            .insert_operator(&op, &grant)
            .await
            .unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = bealert_http::router(Arc::new(app));
    tokio::spawn(async move { axum::serve(listener, router).await });
    let api = Api::new(&url, "bea_national-test-key");
    let not_set_up = |a: &common::Answer, what: &str| {
        // A part the home does not offer answers 503 and says which
        // (before: the storage's generic "cannot reach its storage").
        assert_eq!(a.status, 503, "{what}: {}", a.body);
        assert_eq!(
            a.body["detail"], "Alert-SMS (mobile networks) is not set up in this home",
            "{what}"
        );
        assert!(
            a.content_type.contains("problem+json"),
            "{what}: {}",
            a.content_type
        );
    };

    not_set_up(&api.get("/v1/networks").await, "list");
    not_set_up(
        &put_cells(
            &api,
            "base",
            "some-key",
            &grid(4.30, 50.80, 2, 2, 0.01, 100),
        )
        .await,
        "cells",
    );
    not_set_up(
        &api.post("/v1/networks/base/cells:upload", &json!({})).await,
        "upload",
    );
    not_set_up(
        &api.post("/v1/networks/base/cells:load", &json!({"upload_id": "x"}))
            .await,
        "load",
    );
    let zone = rect(4.32, 50.83, 4.35, 50.87);
    not_set_up(
        &api.post("/v1/zones:estimate", &json!({"area": zone})).await,
        "estimate",
    );
    // The operator's rights come first, with or without Alert-SMS.
    let local = Api::new(&url, "bea_local-test-key");
    assert_eq!(local.get("/v1/networks").await.status, 403);

    let mut body = alert_body(zone);
    body["channels"] = json!([]);
    body["broadcast"] = json!({"mode": "cell_broadcast"});
    not_set_up(
        &api.post("/v1/alerts", &body).await,
        "alert with a broadcast",
    );
    let preview = api
        .post("/v1/zones:preview", &json!({"area": body["area"]}))
        .await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert!(
        preview.body.get("estimate").is_none_or(Value::is_null),
        "{}",
        preview.body
    );
}
