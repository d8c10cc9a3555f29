//! Every parser of outside input answers anything with a value or an
//! `Err` that says what is wrong, never with a panic or a stack overflow:
//! the CAP XML import, an alert's area (GeoJSON), a network's cells,
//! delivery receipts, a citizen's signup, drill schedules and files of
//! administrative units.
//!
//! Arbitrary bytes first; then valid documents with a few parts replaced,
//! arbitrary XML trees and JSON values (`strategies.rs`), each property
//! checking that a share of its inputs was valid, so it keeps reaching
//! the code behind the parser; then nesting far past every bound, read on
//! a thread with a tokio worker's stack. The calls (`calls.rs`) are the
//! fuzz targets' too (`fuzz/`).

mod calls;
mod strategies;

use bealert_core::alert::AlertRequest;
use bealert_core::cap_xml::{self, MAX_DEPTH, MAX_DOCUMENT_BYTES, NAMESPACE};
use bealert_core::network;
use bealert_core::receipt::{from_queue_message, from_webhook};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;
use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};

const CASES: u32 = 512;

fn config() -> Config {
    Config {
        cases: CASES,
        // A failure is kept as a named test here, not in a file beside it.
        failure_persistence: None,
        ..Config::default()
    }
}

/// Runs `test` over `strategy`; at least `min_valid` of the cases must be
/// valid (`test` returns whether it was), so that the property reaches
/// past the parser's first checks.
fn run<S>(strategy: S, min_valid: u32, test: impl Fn(S::Value) -> bool)
where
    S: Strategy,
    S::Value: Debug,
{
    let valid = AtomicUsize::new(0);
    let result = TestRunner::new(config()).run(&strategy, |input| {
        if test(input) {
            valid.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let valid = valid.into_inner();
    assert!(
        valid >= min_valid as usize,
        "only {valid} of {CASES} inputs were valid (want {min_valid}): the inputs no longer reach past the parser"
    );
}

/// Runs `f` on a thread with the stack of a tokio worker (2 MiB), where
/// `bealert serve` and the Lambda functions parse requests.
fn on_worker_stack(f: impl FnOnce() + Send + 'static) {
    let worker = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .expect("a thread");
    if let Err(panic) = worker.join() {
        std::panic::resume_unwind(panic);
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_are_answered_by_every_parser_without_a_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        after in any::<i64>(),
        origin in any::<i64>(),
    ) {
        calls::cap(&bytes);
        let _ = calls::parse(&bytes);
        calls::area(&bytes);
        calls::cells(&bytes);
        calls::units(&bytes);
        calls::receipts(&bytes);
        calls::signup(&bytes);
        calls::schedule(&String::from_utf8_lossy(&bytes), after, origin);
    }

    #[test]
    fn arbitrary_xml_trees_are_read_no_deeper_than_the_bound(tree in strategies::xml_tree()) {
        let mut xml = format!("<alert xmlns=\"{NAMESPACE}\">");
        tree.render(&mut xml);
        xml += "</alert>";
        let read = calls::parse(xml.as_bytes());
        if 1 + tree.depth() > MAX_DEPTH {
            prop_assert!(read.is_err(), "{} levels were read", 1 + tree.depth());
        }
        calls::cap(xml.as_bytes());
    }

    #[test]
    fn arbitrary_json_is_answered_by_every_json_parser(v in strategies::json_value()) {
        let bytes = serde_json::to_vec(&v).expect("JSON");
        calls::area(&bytes);
        calls::cells(&bytes);
        calls::units(&bytes);
        calls::receipts(&bytes);
        calls::signup(&bytes);
        calls::area_only(&serde_json::to_vec(&json!({"geojson": v})).expect("JSON"));
    }
}

#[test]
fn cap_documents_with_parts_replaced_are_imported_or_refused() {
    run(strategies::cap_document(), CASES / 8, |doc| {
        calls::cap(doc.as_bytes())
    });
}

#[test]
fn alerts_with_arbitrary_geojson_are_validated_or_refused() {
    run(strategies::alert_json(), CASES / 8, |body| {
        calls::area(&body)
    });
}

#[test]
fn cell_uploads_with_parts_replaced_are_read_or_refused() {
    run(strategies::cells_json(), CASES / 8, |body| {
        calls::cells(&body)
    });
}

#[test]
fn unit_files_with_parts_replaced_are_read_or_refused() {
    run(strategies::units_json(), CASES / 8, |body| {
        calls::units(&body)
    });
}

#[test]
fn receipts_with_parts_replaced_are_read_or_refused() {
    run(strategies::receipt_json(), CASES / 8, |body| {
        calls::receipts(&body)
    });
}

#[test]
fn signups_with_parts_replaced_are_validated_or_refused() {
    run(strategies::subscriber_json(), CASES / 8, |body| {
        calls::signup(&body)
    });
    run("\\+?[0-9 ]{0,20}|.{0,24}", 0, |text| {
        calls::contact(&text);
        false
    });
}

#[test]
fn schedules_of_arbitrary_shape_are_parsed_or_refused() {
    let times = || prop_oneof![any::<i64>(), 0i64..4_102_444_800_000];
    run(
        (strategies::schedule_text(), times(), times()),
        CASES / 8,
        |(text, after, origin)| calls::schedule(&text, after, origin),
    );
}

// ---------------------------------------------------------------------------
// Nesting far past every bound, on a worker's stack.

fn arrays(depth: usize) -> String {
    "[".repeat(depth) + &"]".repeat(depth)
}

fn objects(depth: usize) -> String {
    "{\"geometry\":".repeat(depth) + "null" + &"}".repeat(depth)
}

/// GeometryCollections in GeometryCollections around one polygon.
fn collections(depth: usize) -> String {
    "{\"type\":\"GeometryCollection\",\"geometries\":[".repeat(depth)
        + "{\"type\":\"Polygon\",\"coordinates\":[[[4.3,50.8],[4.4,50.8],[4.4,50.9],[4.3,50.8]]]}"
        + &"]}".repeat(depth)
}

fn in_alert(geojson: &str) -> String {
    format!(
        r#"{{"status":"Exercise","event":"Brand","severity":"Severe","urgency":"Immediate","certainty":"Observed","messages":{{"nl":"x"}},"area":{{"geojson":{geojson}}}}}"#
    )
}

#[test]
fn json_nested_past_serde_jsons_limit_is_refused_by_every_json_parser() {
    on_worker_stack(|| {
        for depth in (1..=160).chain([1_000, 100_000]) {
            for nested in [arrays(depth), objects(depth), collections(depth)] {
                let alert = in_alert(&nested);
                let cells = format!(
                    r#"{{"type":"FeatureCollection","features":[{{"properties":{{"cell_id":"c","active_devices":1}},"geometry":{nested}}}]}}"#
                );
                let units = format!(
                    r#"{{"type":"FeatureCollection","features":[{{"properties":{{"code":"21004","level":"municipality","name_nl":"Brussel"}},"geometry":{nested}}}]}}"#
                );
                let sns = json!({"Type": "Notification", "Message": nested}).to_string();
                for doc in [&nested, &alert, &cells, &units, &sns] {
                    calls::area(doc.as_bytes());
                    calls::cells(doc.as_bytes());
                    calls::units(doc.as_bytes());
                    calls::receipts(doc.as_bytes());
                    calls::signup(doc.as_bytes());
                }
                calls::area_only(format!(r#"{{"geojson":{nested}}}"#).as_bytes());
                // serde_json's own limit (128 levels) holds: nothing deeper is read.
                if depth > 128 {
                    for refused in [
                        AlertRequest::from_json(alert.as_bytes()).map(|_| ()),
                        network::parse_cells(cells.as_bytes()).map(|_| ()),
                    ] {
                        let e = refused.expect_err("too deep");
                        assert!(e.0[0].message.contains("recursion limit"), "{e:?}");
                    }
                    let e = from_webhook("x", nested.as_bytes()).expect_err("too deep");
                    assert!(e.0.contains("recursion limit"), "{e:?}");
                    let e = from_queue_message(&sns).expect_err("too deep");
                    assert!(e.0.contains("recursion limit"), "{e:?}");
                }
            }
        }
    });
}

#[test]
fn geometry_collections_nested_as_deep_as_json_allows_are_validated() {
    on_worker_stack(|| {
        // Each collection is two levels of JSON, the alert's area three.
        let deepest = (1..100)
            .filter(|d| {
                AlertRequest::from_json(in_alert(&collections(*d)).as_bytes())
                    .ok()
                    .and_then(|r| r.validate().ok())
                    .is_some_and(|spec| spec.area.polygons.len() == 1)
            })
            .max();
        assert!(
            deepest.is_some_and(|d| d >= 60),
            "collections read up to {deepest:?} deep"
        );
    });
}

#[test]
fn xml_nested_past_the_bound_is_refused_at_any_depth() {
    on_worker_stack(|| {
        for depth in (1..=40).chain([1_000, 65_536, 120_000]) {
            for (open, close) in [("<a>", "</a>"), ("<x:a xmlns:x=\"u\">", "</x:a>")] {
                let xml = format!(
                    "<alert xmlns=\"{NAMESPACE}\">{}{}</alert>",
                    open.repeat(depth),
                    close.repeat(depth)
                );
                let read = calls::parse(xml.as_bytes());
                if depth < MAX_DEPTH {
                    assert_eq!(read, Ok(depth + 1));
                } else {
                    let e = read.expect_err("too deep");
                    let why = if xml.len() > MAX_DOCUMENT_BYTES {
                        "the document is"
                    } else {
                        "nesting deeper than 16 levels"
                    };
                    assert!(e.starts_with(why), "{e}");
                    let e = cap_xml::import(xml.as_bytes()).expect_err("too deep");
                    assert_eq!(e.0[0].path, "alert");
                    assert!(e.0[0].message.starts_with(why), "{e:?}");
                }
                // Left open: refused all the same.
                let unclosed = format!("<alert xmlns=\"{NAMESPACE}\">{}", open.repeat(depth));
                assert!(calls::parse(unclosed.as_bytes()).is_err());
            }
        }
    });
}
