//! Mayors and governors alert their own territory, in both homes: the
//! jurisdiction matrix on real boundaries (Elsene/Ixelles and Etterbeek,
//! two municipalities that are each one judicial canton, inside the
//! Brussels-Capital Region), geocodes resolved through the loaded units,
//! and no delivery ever planned for an address outside the sender's
//! territory — even when a hand-drawn zone reaches over the border within
//! the 10 m tolerance.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use bealert_app::usecases::AppConfig;
use bealert_app::{App, AppError};
use bealert_core::area::Area;
use bealert_core::geography::{Level, Unit, parse_units};
use bealert_core::operator::Operator;
use bealert_core::subscriber::{AddressInput, SubscriberInput};
use geo::{Bearing, Destination, Geodesic, InteriorPoint, Point};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const ELSENE: &str = "21009";
const ETTERBEEK: &str = "21005";
const BRUSSELS: &str = "04000";

/// The shipped units the matrix needs (parsed once per test binary).
fn units() -> &'static [Unit] {
    static UNITS: OnceLock<Vec<Unit>> = OnceLock::new();
    UNITS.get_or_init(|| {
        parse_units(&bealert_geodata::belgium_units())
            .unwrap()
            .into_iter()
            .filter(|u| {
                (u.level == Level::Municipality && [ELSENE, ETTERBEEK].contains(&u.code.as_str()))
                    || (u.level == Level::Region && u.code == BRUSSELS)
            })
            .collect()
    })
}

fn unit(code: &str) -> &'static Unit {
    units().iter().find(|u| u.code == code).unwrap()
}

/// A point well inside a unit `[lat, lon]`.
fn inside(code: &str) -> (f64, f64) {
    let p = unit(code).area().geo_polygons()[0]
        .interior_point()
        .unwrap();
    (p.y(), p.x())
}

/// The vertex of a unit's exterior ring nearest to `(lat, lon)`.
fn border_near(code: &str, lat: f64, lon: f64) -> (f64, f64) {
    unit(code).polygons[0][0]
        .iter()
        .map(|p| (p[1], p[0]))
        .min_by(|a, b| {
            let d = |q: &(f64, f64)| (q.0 - lat).powi(2) + (q.1 - lon).powi(2);
            d(a).total_cmp(&d(b))
        })
        .unwrap()
}

fn circle(lat: f64, lon: f64, km: f64) -> Value {
    json!({"circles": [{"lat": lat, "lon": lon, "radius_km": km}]})
}

/// A rectangle between two points, widened by `pad` degrees.
fn rectangle(a: (f64, f64), b: (f64, f64), pad: f64) -> Value {
    let (s, n) = (a.0.min(b.0) - pad, a.0.max(b.0) + pad);
    let (w, e) = (a.1.min(b.1) - pad, a.1.max(b.1) + pad);
    json!({"geojson": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}})
}

fn alert(area: Value) -> Vec<u8> {
    json!({
        "status": "Exercise", "event": "Jurisdiction drill", "severity": "Minor", "urgency": "Future",
        "certainty": "Possible", "messages": {"nl": "Oefening", "fr": "Exercice"},
        "channels": ["sms"], "area": area
    })
    .to_string()
    .into_bytes()
}

/// Citizens inside each unit, just either side of Elsene's border with
/// Etterbeek (2 m), and outside Brussels.
fn citizens() -> Vec<SubscriberInput> {
    let (elsene, etterbeek) = (inside(ELSENE), inside(ETTERBEEK));
    let edge = border_near(ELSENE, etterbeek.0, etterbeek.1);
    let mut points = vec![
        ("in-elsene", elsene),
        ("in-etterbeek", etterbeek),
        ("in-leuven", (50.8798, 4.7005)),
    ];
    // Along the line from the border vertex towards each interior point.
    for (name, towards, m) in [
        ("edge-elsene-side", elsene, 2.0),
        ("edge-etterbeek-side", etterbeek, 2.0),
        ("edge-elsene-far", elsene, 30.0),
    ] {
        let bearing =
            Geodesic.bearing(Point::new(edge.1, edge.0), Point::new(towards.1, towards.0));
        let p = Geodesic.destination(Point::new(edge.1, edge.0), bearing, m);
        points.push((name, (p.y(), p.x())));
    }
    points
        .into_iter()
        .enumerate()
        .map(|(i, (name, (lat, lon)))| SubscriberInput {
            external_id: Some(name.into()),
            language: "fr".into(),
            phone: Some(bealert_synth::phone(7_000_000 + i as u64)),
            email: None,
            channels: vec!["sms".into()],
            addresses: vec![AddressInput {
                label: None,
                lat,
                lon,
            }],
            groups: vec![],
        })
        .collect()
}

struct Home {
    app: Arc<App>,
    national: Operator,
    governor: Operator,
    mayor: Operator,
    stop: tokio_util::sync::CancellationToken,
    subs: Vec<SubscriberInput>,
}

async fn prepare(app: Arc<App>, tag: &str) -> Home {
    app.ports.geography.put_units(units()).await.unwrap();
    let stop = common::workers(&app, Duration::from_millis(50));
    let national = app
        .create_operator(&format!("crisis-{tag}"), "national")
        .await
        .unwrap()
        .0;
    // A municipality is refused until its boundary is loaded.
    let e = app
        .create_operator(&format!("mayor-of-nowhere-{tag}"), "municipality:99999")
        .await
        .unwrap_err();
    assert!(
        matches!(e, AppError::BadRequest(ref m) if m.contains("not loaded")),
        "{e}"
    );
    let governor = app
        .create_operator(&format!("governor-{tag}"), &format!("province:{BRUSSELS}"))
        .await
        .unwrap()
        .0;
    let mayor = app
        .create_operator(&format!("mayor-{tag}"), &format!("municipality:{ELSENE}"))
        .await
        .unwrap()
        .0;
    let subs = citizens();
    let body = serde_json::to_vec(&json!({"subscribers": subs})).unwrap();
    let r = app.import_subscribers(&national, &body).await.unwrap();
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    // Imports stay national.
    assert!(matches!(
        app.import_subscribers(&mayor, &body).await,
        Err(AppError::Forbidden(_))
    ));
    Home {
        app,
        national,
        governor,
        mayor,
        stop,
        subs,
    }
}

async fn reached(h: &Home, op: &Operator, id: &str) -> BTreeSet<String> {
    for _ in 0..600 {
        if h.app.alert_view(op, id).await.unwrap().state == bealert_core::alert::AlertState::Sent {
            let page = h
                .app
                .deliveries_page(op, id, None, Some(1000))
                .await
                .unwrap();
            return page
                .items
                .iter()
                .filter_map(|d| d.external_id.clone())
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("alert {id} was not sent in time");
}

/// Who is inside a unit, by the naive point-in-polygon.
fn inside_unit(h: &Home, code: &str) -> BTreeSet<String> {
    let area: Area = unit(code).area();
    h.subs
        .iter()
        .filter(|s| {
            s.addresses
                .iter()
                .any(|a| area.contains_naive(a.lat, a.lon))
        })
        .map(|s| s.external_id.clone().unwrap())
        .collect()
}

async fn matrix(h: Home) {
    let (elsene, etterbeek) = (inside(ELSENE), inside(ETTERBEEK));
    let edge = border_near(ELSENE, etterbeek.0, etterbeek.1);
    let region_edge = border_near(BRUSSELS, 50.88, 4.70);
    let cases: Vec<(&str, Value, [bool; 3])> = vec![
        // (zone, area, [mayor, governor, national] may send)
        (
            "inside Elsene",
            circle(elsene.0, elsene.1, 0.2),
            [true, true, true],
        ),
        (
            "Elsene by its NIS code",
            json!({"geocodes": [{"name": "NIS", "value": ELSENE}]}),
            [true, true, true],
        ),
        (
            "straddling Elsene and Etterbeek",
            rectangle(elsene, etterbeek, 0.001),
            [false, true, true],
        ),
        (
            "inside Etterbeek",
            circle(etterbeek.0, etterbeek.1, 0.2),
            [false, true, true],
        ),
        (
            "the neighbour's NIS code",
            json!({"geocodes": [{"name": "NIS", "value": ETTERBEEK}]}),
            [false, true, true],
        ),
        (
            "a circle across the region's border",
            circle(region_edge.0, region_edge.1, 1.0),
            [false, false, true],
        ),
        (
            "outside, in Leuven",
            circle(50.8798, 4.7005, 1.0),
            [false, false, true],
        ),
        (
            "the region by NIS code",
            json!({"geocodes": [{"name": "NIS", "value": BRUSSELS}]}),
            [false, true, true],
        ),
        // Elsene, and a 5 m circle on its border: within the tolerance, so
        // accepted, and cut to the border (the citizen 2 m over is not reached).
        (
            "Elsene and a circle 5 m over its border",
            json!({"geocodes": [{"name": "NIS", "value": ELSENE}], "circles": [{"lat": edge.0, "lon": edge.1, "radius_km": 0.005}]}),
            [true, true, true],
        ),
    ];
    let ops = [
        (&h.mayor, ELSENE),
        (&h.governor, BRUSSELS),
        (&h.national, ""),
    ];
    for (zone, area, allowed) in &cases {
        for ((op, territory), may) in ops.iter().zip(allowed) {
            let preview = h
                .app
                .preview(op, json!({"area": area}).to_string().as_bytes())
                .await;
            let created = h.app.create_alert(op, &alert(area.clone())).await;
            if !may {
                for e in [
                    preview.map(|_| ()).unwrap_err(),
                    created.map(|_| ()).unwrap_err(),
                ] {
                    let AppError::Forbidden(m) = &e else {
                        panic!("{} / {zone}: {e:?}", op.name)
                    };
                    assert!(
                        m.contains("outside it") && (m.contains("km²") || m.contains(" m²")),
                        "{m}"
                    );
                }
                continue;
            }
            let preview = preview.unwrap_or_else(|e| panic!("{} / {zone}: {e:?}", op.name));
            let id = created.unwrap().id.to_string();
            let got = reached(&h, op, &id).await;
            assert_eq!(preview.recipients, got.len() as u64, "{} / {zone}", op.name);
            if !territory.is_empty() {
                let allowed = inside_unit(&h, territory);
                assert!(
                    got.is_subset(&allowed),
                    "{} / {zone}: reached {:?} outside its territory",
                    op.name,
                    got.difference(&allowed).collect::<Vec<_>>()
                );
            }
            if *zone == "Elsene and a circle 5 m over its border" && op.name.starts_with("mayor") {
                assert!(
                    got.contains("edge-elsene-side") && !got.contains("edge-etterbeek-side"),
                    "{got:?}"
                );
            }
            if *zone == "Elsene by its NIS code" {
                assert!(
                    got.contains("in-elsene")
                        && got.contains("edge-elsene-far")
                        && !got.contains("in-etterbeek"),
                    "{got:?}"
                );
            }
            // The sender sees its alert; a mayor sees the governor's alerts inside Elsene only.
            h.app.alert_view(op, &id).await.unwrap();
            let mayor_sees = h.app.alert_view(&h.mayor, &id).await.is_ok();
            assert_eq!(
                mayor_sees, allowed[0],
                "{} / {zone}: the mayor sees it",
                op.name
            );
        }
    }

    // Unknown codes, a municipality whose boundary is not loaded, a postal code of one.
    for (geocode, says) in [
        (
            json!({"name": "NIS", "value": "99999"}),
            "no region, province or municipality has NIS code 99999",
        ),
        (
            json!({"name": "NIS", "value": "21004"}),
            "21004 is a municipality whose boundary is not loaded",
        ),
        (
            json!({"name": "canton", "value": "atlantis"}),
            "no canton has code \"atlantis\"",
        ),
        (json!({"name": "postcode", "value": "1040"}), "21004"),
        (
            json!({"name": "zip", "value": "1050"}),
            "unknown geocode name",
        ),
    ] {
        let e = h
            .app
            .preview(
                &h.national,
                json!({"area": {"geocodes": [geocode]}})
                    .to_string()
                    .as_bytes(),
            )
            .await
            .unwrap_err();
        let AppError::Invalid(v) = &e else {
            panic!("{e:?}")
        };
        assert!(
            v.0[0].path == "area.geocodes[0]" && v.0[0].message.contains(says),
            "{v}"
        );
    }
    // Postal code 1050 covers Brussels (21004, not loaded) and Elsene; 1050 alone would be approximate.
    // A zone outside Belgium: allowed for national operators, with a warning.
    let far = h
        .app
        .create_alert(&h.national, &alert(circle(48.85, 2.35, 2.0)))
        .await
        .unwrap();
    assert!(
        far.warnings[0].contains("outside Belgium"),
        "{:?}",
        far.warnings
    );

    // Groups: national operators alert any group; others only those granted.
    let group_alert = |g: &str| {
        json!({"status": "Exercise", "event": "Drill", "severity": "Minor", "urgency": "Future",
            "certainty": "Possible", "messages": {"nl": "Oefening"}, "groups": [g]})
        .to_string()
        .into_bytes()
    };
    h.app
        .create_alert(&h.national, &group_alert("rescuers"))
        .await
        .unwrap();
    let e = h
        .app
        .create_alert(&h.mayor, &group_alert("rescuers"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, AppError::Forbidden(m) if m.contains("rescuers") && m.contains("operator grant")),
        "{e:?}"
    );
    h.app.grant_group(&h.mayor.name, "rescuers").await.unwrap();
    let mayor = Operator {
        groups: vec!["rescuers".into()],
        ..h.mayor.clone()
    };
    h.app
        .create_alert(&mayor, &group_alert("rescuers"))
        .await
        .unwrap();
    units_by_key(&h).await;
    h.stop.cancel();
}

/// Addresses record their units: once indexed, a zone that is exactly
/// units is read by key (one shard per part) and reaches who its geometry
/// reaches; a replaced boundary goes by geometry until `geo load`'s
/// backfill has brought the addresses up to date, then by key again.
async fn units_by_key(h: &Home) {
    use bealert_app::ports::UNIT_PARTS;
    use bealert_app::usecases::geography::index_addresses;
    let nis = |code: &str| json!({"geocodes": [{"name": "NIS", "value": code}]});
    let send = async |op: &Operator, area: Value| {
        let id = h.app.create_alert(op, &alert(area)).await.unwrap().id;
        let got = reached(h, op, &id.to_string()).await;
        let shards = h
            .app
            .ports
            .alerts
            .get_alert(id)
            .await
            .unwrap()
            .unwrap()
            .shards_total;
        (shards, got)
    };
    let index = async || {
        index_addresses(
            h.app.ports.subscribers.as_ref(),
            h.app.ports.geography.as_ref(),
            &|_| {},
        )
        .await
        .unwrap()
    };

    // Not indexed yet: by geometry.
    let (shards, by_geometry) = send(&h.national, nis(ELSENE)).await;
    assert_ne!(shards, Some(UNIT_PARTS));
    let report = index().await;
    assert_eq!(report.subscribers, h.subs.len() as u64);
    assert_eq!(report.updated, 0, "the import recorded the units already");
    for (op, code) in [
        (&h.mayor, ELSENE),
        (&h.governor, BRUSSELS),
        (&h.national, ETTERBEEK),
    ] {
        let (shards, got) = send(op, nis(code)).await;
        assert_eq!(shards, Some(UNIT_PARTS), "{code} is read by key");
        assert_eq!(got, inside_unit(h, code), "{code}");
    }
    let (_, by_key) = send(&h.mayor, nis(ELSENE)).await;
    assert_eq!(by_key, by_geometry);
    // A unit with a circle is not whole units: geometry.
    let (elsene, edge) = (inside(ELSENE), inside(ETTERBEEK));
    let mixed = json!({"geocodes": [{"name": "NIS", "value": ELSENE}],
        "circles": [{"lat": edge.0, "lon": edge.1, "radius_km": 0.1}]});
    let (shards, got) = send(&h.national, mixed).await;
    assert_ne!(shards, Some(UNIT_PARTS));
    assert!(
        got.contains("in-elsene") && got.contains("in-etterbeek"),
        "{got:?}"
    );

    // Elsene's code now names Etterbeek's shape: geometry until indexed.
    let mut moved = unit(ETTERBEEK).clone();
    moved.code = ELSENE.into();
    moved.names = unit(ELSENE).names.clone();
    h.app.ports.geography.put_units(&[moved]).await.unwrap();
    let (shards, got) = send(&h.national, nis(ELSENE)).await;
    assert_ne!(
        shards,
        Some(UNIT_PARTS),
        "a replaced unit is not read by stale keys"
    );
    assert_eq!(got, inside_unit(h, ETTERBEEK));
    let report = index().await;
    let changed: BTreeSet<String> = inside_unit(h, ELSENE)
        .union(&inside_unit(h, ETTERBEEK))
        .cloned()
        .collect();
    assert_eq!(report.updated, changed.len() as u64, "{changed:?}");
    let (shards, got) = send(&h.national, nis(ELSENE)).await;
    assert_eq!(shards, Some(UNIT_PARTS));
    assert_eq!(got, inside_unit(h, ETTERBEEK));
    assert!(!got.contains("in-elsene") && elsene.0 != 0.0);

    // Someone registering now records the new boundary at once.
    let newcomer = SubscriberInput {
        external_id: Some("newcomer".into()),
        ..h.subs
            .iter()
            .find(|s| s.external_id.as_deref() == Some("in-etterbeek"))
            .unwrap()
            .clone()
    };
    let body = serde_json::to_vec(&json!({"subscribers": [newcomer]})).unwrap();
    h.app.import_subscribers(&h.national, &body).await.unwrap();
    let (shards, got) = send(&h.national, nis(ELSENE)).await;
    assert_eq!(shards, Some(UNIT_PARTS));
    assert!(got.contains("newcomer"), "{got:?}");
    h.app
        .ports
        .geography
        .put_units(&[unit(ELSENE).clone()])
        .await
        .unwrap();
    index().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jurisdiction_matrix_holds_in_the_embedded_home() {
    let dir = tempfile::tempdir().unwrap();
    let embedded = bealert_embedded::Embedded::open(dir.path()).unwrap();
    let app = Arc::new(App::new(embedded.ports(), AppConfig::default()));
    matrix(prepare(app, "embedded").await).await;
}

#[cfg(feature = "aws")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jurisdiction_matrix_holds_in_the_aws_home() {
    use bealert_aws::testkit;
    testkit::require_stack().await;
    let prefix = testkit::unique_prefix("juris");
    let settings = bealert_aws::Settings {
        tables: bealert_aws::Tables::with_prefix(&prefix),
        queue_prefix: prefix.clone(),
        queue_urls: Default::default(),
        sms_sender_id: None,
        email_from: Some("alerts@bealert.example".into()),
        voice_origination: None,
        email_configuration_set: None,
        voice_configuration_set: None,
        retention_days: 90,
        place_index: None,
        signup_secret: None,
        public_url: None,
        uploads_bucket: None,
        drill_function_arn: None,
        scheduler_role_arn: None,
        schedule_group: "default".into(),
        codes: Default::default(),
        signup_codes_per_hour: None,
        signup_no_script_per_hour: None,
    };
    let aws =
        bealert_aws::AwsHome::with_dynamodb(&testkit::sdk_config(), testkit::dynamodb(), settings);
    aws.setup().await.unwrap();
    let app = Arc::new(App::new(aws.ports(), AppConfig::default()));
    matrix(prepare(app, "aws").await).await;
}
