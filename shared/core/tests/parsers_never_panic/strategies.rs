//! Inputs that get past the first syntax check: valid documents with a
//! few parts replaced by anything (so a share of them is valid and reaches
//! the code behind the parser), arbitrary XML trees and JSON values.

use bealert_core::cap_xml::NAMESPACE;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};

/// Text for an XML element: escaped, so the document stays well-formed.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// What may replace a part of a document: a value that is almost right,
/// arbitrary text, or raw markup that may break the document.
fn odd(values: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(values).prop_map(str::to_string),
        1 => any::<String>().prop_map(|s| escape(&s)),
        1 => "[<>&;/#xa-z0-9 =\"']{0,12}",
    ]
}

/// A part of a document: its good value, and what may replace it.
type Slot = (String, String);

fn slot(
    good: impl Strategy<Value = String> + 'static,
    odd_values: &'static [&'static str],
) -> BoxedStrategy<Slot> {
    (good, odd(odd_values)).boxed()
}

fn fixed(good: &'static str, odd_values: &'static [&'static str]) -> BoxedStrategy<Slot> {
    slot(Just(good.to_string()), odd_values)
}

/// A simple closed ring (`[lon, lat]`) of `n` vertices around a centre.
fn regular_ring(lon: f64, lat: f64, r: f64, n: usize, phase: f64) -> Vec<[f64; 2]> {
    let mut ring: Vec<[f64; 2]> = (0..n)
        .map(|i| {
            let a = phase + std::f64::consts::TAU * i as f64 / n as f64;
            [lon + r * a.cos(), lat + r * a.sin()]
        })
        .collect();
    ring.push(ring[0]);
    ring
}

/// A valid polygon in Belgium: an exterior and up to two holes, as rings.
fn polygon_rings() -> impl Strategy<Value = Vec<Vec<[f64; 2]>>> {
    (
        3.9f64..5.4,
        50.35f64..50.95,
        0.005f64..0.2,
        3usize..14,
        0.0f64..std::f64::consts::TAU,
        0usize..3,
    )
        .prop_map(|(lon, lat, r, n, phase, holes)| {
            let mut rings = vec![regular_ring(lon, lat, r, n, phase)];
            for k in 0..holes {
                let a = std::f64::consts::PI * k as f64;
                let (x, y) = (lon + 0.45 * r * a.cos(), lat + 0.45 * r * a.sin());
                rings.push(regular_ring(x, y, 0.15 * r, 6, phase));
            }
            rings
        })
}

/// A ring of random points: mostly crossing itself, sometimes not closed.
fn random_ring() -> impl Strategy<Value = Vec<[f64; 2]>> {
    (
        prop::collection::vec((2.4f64..6.5, 49.4f64..51.6), 1..9),
        any::<bool>(),
    )
        .prop_map(|(pts, close)| {
            let mut ring: Vec<[f64; 2]> = pts.iter().map(|(x, y)| [*x, *y]).collect();
            if close {
                ring.push(ring[0]);
            }
            ring
        })
}

// ---------------------------------------------------------------------------
// CAP XML.

/// A CAP `polygon`: `lat,lon` pairs of a valid ring.
fn cap_polygon() -> BoxedStrategy<Slot> {
    let good = polygon_rings().prop_map(|rings| {
        rings[0]
            .iter()
            .map(|[lon, lat]| format!("{lat},{lon}"))
            .collect::<Vec<_>>()
            .join(" ")
    });
    slot(
        good,
        &[
            "50.8,4.3 50.8,4.4 50.9,4.4",
            "50.8,4.3 50.9,4.4 50.8,4.4 50.9,4.3 50.8,4.3",
            "91,4.3 50.8,181 50.9,4.4 91,4.3",
            "NaN,4.3 50.8,inf 50.9,4.4 NaN,4.3",
            "50.8;4.3",
            "",
        ],
    )
}

fn cap_circle() -> BoxedStrategy<Slot> {
    let good = (50.35f64..50.95, 3.9f64..5.4, 0.5f64..20.0)
        .prop_map(|(lat, lon, r)| format!("{lat},{lon} {r}"));
    slot(
        good,
        &[
            "50.85,4.35 0",
            "50.85,4.35 -1",
            "50.85,4.35 251",
            "50.85,4.35",
            "1e308,4 1e308",
            "a,b c",
        ],
    )
}

/// The parts of one `info`, in the order [`render_cap`] writes them.
fn cap_info(language: &'static str) -> impl Strategy<Value = Vec<Slot>> {
    vec![
        fixed(language, &["es-US", "", "-", "_x", "nl-BE"]),
        fixed("Brand", &["", "   "]),
        fixed("Immediate", &["Now", "immediate"]),
        fixed("Severe", &["Bad", ""]),
        fixed("Observed", &["Sure"]),
        fixed(
            "2026-11-29T18:00:00+01:00",
            &[
                "2026-11-29T18:00:00Z",
                "2026-13-45T99:00:00+01:00",
                "9999-12-31T23:59:59-23:59",
                "2026-11-29T09:00:00+01:00",
            ],
        ),
        fixed("Sluit ramen en deuren", &["", " "]),
        cap_polygon(),
        cap_circle(),
        fixed("NIS", &["SAME", "postcode", "canton", ""]),
        fixed("21004", &["006109", "", "99999"]),
    ]
}

/// A CAP 1.2 alert with up to three infos, of which up to three parts
/// were replaced: a third of them valid.
pub fn cap_document() -> impl Strategy<Value = String> {
    let header = vec![
        fixed(
            NAMESPACE,
            &["urn:oasis:names:tc:emergency:cap:1.1", "", "x"],
        ),
        fixed(
            "2026-11-29T10:00:00+01:00",
            &["2026-11-29T10:00:00Z", "now", "2026-11-29T10:00:00+1:00"],
        ),
        fixed("Exercise", &["System", "Draft", "actual"]),
        fixed("Alert", &["Ack", "Error", "Update", "Cancel"]),
        fixed("Public", &["Everyone", ""]),
    ];
    let infos = prop_oneof![
        1 => Just(0usize),
        4 => Just(1usize),
        2 => Just(2usize),
        1 => Just(3usize),
    ]
    .prop_flat_map(|n| {
        ["nl-BE", "fr-BE", "de-BE"][..n]
            .iter()
            .map(|l| cap_info(l))
            .collect::<Vec<_>>()
    });
    (
        header,
        infos,
        prop::collection::vec(any::<Index>(), 0..4),
        any::<bool>(),
    )
        .prop_map(|(header, infos, edits, with_references)| {
            let mut slots: Vec<&mut Slot> = Vec::new();
            let mut header = header;
            let mut infos = infos;
            slots.extend(header.iter_mut());
            slots.extend(infos.iter_mut().flatten());
            // A replaced part takes its odd value as the one to write.
            for edit in edits.iter().skip(1) {
                let i = edit.index(slots.len());
                let (good, odd) = &mut *slots[i];
                std::mem::swap(good, odd);
            }
            let header: Vec<String> = header.into_iter().map(|s| s.0).collect();
            let infos: Vec<Vec<String>> = infos
                .into_iter()
                .map(|i| i.into_iter().map(|s| s.0).collect())
                .collect();
            render_cap(&header, &infos, with_references)
        })
}

fn render_cap(h: &[String], infos: &[Vec<String>], with_references: bool) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<alert xmlns=\"{}\">\
         <identifier>x</identifier><sender>centre@bealert</sender>\
         <sent>{}</sent><status>{}</status><msgType>{}</msgType><scope>{}</scope>",
        h[0], h[1], h[2], h[3], h[4]
    );
    if with_references {
        xml += "<references>centre@bealert,urn:uuid:0190b2a4-0000-7000-8000-000000000000,\
                2026-11-29T10:00:00+01:00</references>";
    }
    for i in infos {
        xml += &format!(
            "<info><language>{}</language><category>Safety</category>\
             <event>{}</event><urgency>{}</urgency><severity>{}</severity>\
             <certainty>{}</certainty><expires>{}</expires><headline>{1}</headline>\
             <description>{}</description><instruction>{6}</instruction>\
             <area><areaDesc>here</areaDesc><polygon>{}</polygon><circle>{}</circle>\
             <geocode><valueName>{}</valueName><value>{}</value></geocode></area></info>",
            i[0], i[1], i[2], i[3], i[4], i[5], i[6], i[7], i[8], i[9], i[10]
        );
    }
    xml + "</alert>"
}

/// An XML node: an element with children, or what can stand in one.
#[derive(Debug, Clone)]
pub enum Node {
    Element(String, Vec<Node>),
    Text(String),
    Raw(String),
}

impl Node {
    pub fn render(&self, out: &mut String) {
        match self {
            Node::Element(name, children) if children.is_empty() => {
                *out += &format!("<{name}/>");
            }
            Node::Element(name, children) => {
                *out += &format!("<{name}>");
                for c in children {
                    c.render(out);
                }
                *out += &format!("</{name}>");
            }
            Node::Text(t) => *out += &escape(t),
            Node::Raw(r) => *out += r,
        }
    }

    /// Levels of elements, this one included.
    pub fn depth(&self) -> usize {
        match self {
            Node::Element(_, children) => 1 + children.iter().map(Node::depth).max().unwrap_or(0),
            _ => 0,
        }
    }
}

/// Trees of CAP's and other names, up to 24 levels (past the bound of 16),
/// with text, references, CDATA, comments, DTDs and stray markup.
pub fn xml_tree() -> impl Strategy<Value = Node> {
    let name = prop_oneof![
        prop::sample::select(
            &[
                "info",
                "area",
                "polygon",
                "circle",
                "geocode",
                "value",
                "valueName",
                "x:a",
                "Signature",
                "a",
            ][..]
        )
        .prop_map(str::to_string),
        "[a-zA-Z_][a-zA-Z0-9_.-]{0,6}",
    ];
    let leaf = prop_oneof![
        any::<String>().prop_map(Node::Text),
        prop::sample::select(
            &[
                "&amp;",
                "&#x41;",
                "&#0;",
                "&#xD800;",
                "&#1114112;",
                "&unknown;",
                "&;",
                "<![CDATA[a]]>",
                "<![CDATA[",
                "<!-- c -->",
                "<?pi x?>",
                "</a>",
                "<",
                "&",
                "<!DOCTYPE a [<!ENTITY e \"eee\">]>",
                "&e;",
                "<a xmlns:x=\"u\" xmlns=\"\">",
            ][..]
        )
        .prop_map(|s| Node::Raw(s.to_string())),
        name.clone().prop_map(|n| Node::Element(n, Vec::new())),
    ];
    leaf.prop_recursive(24, 256, 5, move |inner| {
        (name.clone(), prop::collection::vec(inner, 0..5))
            .prop_map(|(n, children)| Node::Element(n, children))
    })
}

// ---------------------------------------------------------------------------
// JSON.

const KEYS: &[&str] = &[
    "type",
    "coordinates",
    "features",
    "geometry",
    "geometries",
    "properties",
    "bbox",
    "cell_id",
    "active_devices",
    "geojson",
    "circles",
    "geocodes",
    "lat",
    "lon",
    "radius_km",
    "name",
    "value",
    "status",
    "event",
    "messages",
    "nl",
    "area",
    "channels",
    "groups",
    "expires",
    "scope",
    "broadcast",
    "language",
    "phone",
    "email",
    "addresses",
    "label",
    "Type",
    "Message",
    "mail",
    "messageId",
    "eventType",
    "notificationType",
    "bounce",
    "bounceType",
    "bouncedRecipients",
    "delivery",
    "notification",
    "timestamp",
    "id",
    "key",
    "reason",
    "at",
    "isFinal",
    "eventTimestamp",
];

const WORDS: &[&str] = &[
    "Polygon",
    "MultiPolygon",
    "Point",
    "LineString",
    "GeometryCollection",
    "Feature",
    "FeatureCollection",
    "sms",
    "voice",
    "email",
    "nl",
    "Notification",
    "Delivery",
    "Bounce",
    "Permanent",
    "SUCCESS",
    "FAILURE",
    "TEXT_DELIVERED",
    "VOICE_COMPLETED",
    "delivered",
    "opted_out",
    "Exercise",
    "Severe",
    "+32470123456",
    "anna@example.be",
    "2026-11-29T10:00:00+01:00",
    "NIS",
    "",
];

/// JSON with the names the parsers look for, nested at random.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-200.0f64..200.0).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(WORDS).prop_map(Value::from),
        ".{0,10}".prop_map(Value::from),
        (2.4f64..6.5, 49.4f64..51.6).prop_map(|(lon, lat)| json!([lon, lat])),
    ];
    leaf.prop_recursive(10, 128, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

/// Every member and element of `v`, as JSON pointers.
fn pointers(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![(String::new(), v)];
    while let Some((at, v)) = todo.pop() {
        let children: Vec<(String, &Value)> = match v {
            Value::Object(m) => m
                .iter()
                .map(|(k, v)| {
                    (
                        format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                        v,
                    )
                })
                .collect(),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("{at}/{i}"), v))
                .collect(),
            _ => Vec::new(),
        };
        for (p, c) in children {
            out.push(p.clone());
            todo.push((p, c));
        }
    }
    out
}

/// `base` with up to three of its members replaced by arbitrary JSON (or
/// dropped, in an object): about a third are left as they were.
fn mutated(base: impl Strategy<Value = Value>) -> impl Strategy<Value = Vec<u8>> {
    (
        base,
        prop::collection::vec((any::<Index>(), prop::option::of(json_value())), 0..4),
    )
        .prop_map(|(mut v, edits)| {
            for (at, new) in edits.into_iter().skip(1) {
                let all = pointers(&v);
                if all.is_empty() {
                    break;
                }
                let p = &all[at.index(all.len())];
                match new {
                    Some(new) => {
                        if let Some(slot) = v.pointer_mut(p) {
                            *slot = new;
                        }
                    }
                    None => {
                        let (parent, key) = p.rsplit_once('/').unwrap_or(("", p));
                        if let Some(Value::Object(m)) = v.pointer_mut(parent) {
                            m.remove(&key.replace("~1", "/").replace("~0", "~"));
                        }
                    }
                }
            }
            serde_json::to_vec(&v).expect("JSON")
        })
}

fn rings_json(rings: &[Vec<[f64; 2]>]) -> Value {
    json!(rings)
}

/// A geometry: mostly valid polygons in Belgium (some with holes), some
/// random rings, points, and anything.
fn geometry() -> impl Strategy<Value = Value> {
    let polygon = prop_oneof![
        6 => polygon_rings(),
        1 => prop::collection::vec(random_ring(), 1..3),
    ];
    prop_oneof![
        6 => polygon
            .clone()
            .prop_map(|p| json!({"type": "Polygon", "coordinates": rings_json(&p)})),
        2 => prop::collection::vec(polygon, 1..3).prop_map(|ps| {
            let ps: Vec<Value> = ps.iter().map(|p| rings_json(p)).collect();
            json!({"type": "MultiPolygon", "coordinates": ps})
        }),
        1 => (3.9f64..5.4, 50.35f64..50.95)
            .prop_map(|(x, y)| json!({"type": "Point", "coordinates": [x, y]})),
        1 => json_value(),
    ]
}

/// GeoJSON as an area takes it: a geometry, in collections, features and
/// feature collections up to three deep.
fn geojson() -> impl Strategy<Value = Value> {
    geometry().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..3)
                .prop_map(|gs| json!({"type": "GeometryCollection", "geometries": gs})),
            inner
                .clone()
                .prop_map(|g| json!({"type": "Feature", "properties": {}, "geometry": g})),
            prop::collection::vec(inner, 1..3).prop_map(|gs| {
                let features: Vec<Value> = gs
                    .into_iter()
                    .map(|g| json!({"type": "Feature", "properties": {}, "geometry": g}))
                    .collect();
                json!({"type": "FeatureCollection", "features": features})
            }),
        ]
    })
}

/// `POST /v1/alerts` bodies with GeoJSON and circles, a few parts replaced.
pub fn alert_json() -> impl Strategy<Value = Vec<u8>> {
    let circle = (50.35f64..50.95, 3.9f64..5.4, 0.2f64..30.0)
        .prop_map(|(lat, lon, r)| json!({"lat": lat, "lon": lon, "radius_km": r}));
    let base = (geojson(), prop::collection::vec(circle, 0..3)).prop_map(|(g, circles)| {
        json!({
            "status": "Exercise", "event": "Brand", "severity": "Severe",
            "urgency": "Immediate", "certainty": "Observed",
            "messages": {"nl": "Sluit ramen", "fr": "Fermez les fenêtres"},
            "area": {"geojson": g, "circles": circles},
        })
    });
    mutated(base)
}

/// A network's cells: footprints and sites in Belgium, a few parts replaced.
pub fn cells_json() -> impl Strategy<Value = Vec<u8>> {
    let geometry = prop_oneof![
        2 => polygon_rings().prop_map(|p| json!({"type": "Polygon", "coordinates": rings_json(&p)})),
        3 => (3.9f64..5.4, 50.35f64..50.95)
            .prop_map(|(x, y)| json!({"type": "Point", "coordinates": [x, y]})),
    ];
    let features = prop::collection::vec((geometry, 0u64..100_000), 1..7).prop_map(|fs| {
        fs.into_iter()
            .enumerate()
            .map(|(i, (g, devices))| {
                json!({"type": "Feature",
                       "properties": {"cell_id": format!("206-01-{i}"), "active_devices": devices},
                       "geometry": g})
            })
            .collect::<Vec<_>>()
    });
    mutated(features.prop_map(|f| json!({"type": "FeatureCollection", "features": f})))
}

/// Units as `bealert geo load` reads them, a few parts replaced.
pub fn units_json() -> impl Strategy<Value = Vec<u8>> {
    let level = prop::sample::select(
        &[
            "region",
            "province",
            "arrondissement",
            "canton",
            "municipality",
        ][..],
    );
    let unit = (
        polygon_rings(),
        level,
        "[0-9]{5}|[a-z-]{1,12}",
        "[A-Za-zé -]{0,16}",
    );
    let features = prop::collection::vec(unit, 1..5).prop_map(|us| {
        us.into_iter()
            .enumerate()
            .map(|(i, (rings, level, code, name))| {
                json!({"type": "Feature",
                       "properties": {"code": format!("{code}{i}"), "level": level,
                                      "name_nl": name, "name_fr": "Naam"},
                       "geometry": {"type": "Polygon", "coordinates": rings_json(&rings)}})
            })
            .collect::<Vec<_>>()
    });
    mutated(features.prop_map(|f| json!({"type": "FeatureCollection", "features": f})))
}

/// Subscribers as the API takes them, a few parts replaced.
pub fn subscriber_json() -> impl Strategy<Value = Vec<u8>> {
    let address = (50.35f64..50.95, 3.9f64..5.4, "[a-zA-Z ]{0,20}")
        .prop_map(|(lat, lon, label)| json!({"lat": lat, "lon": lon, "label": label}));
    let base = (
        prop::sample::select(&["nl", "fr", "de", "en"][..]),
        prop::sample::subsequence(&["sms", "voice", "email"][..], 1..=3),
        prop::collection::vec(address, 1..=5),
        prop::sample::subsequence(&["brandweer", "crisiscel"][..], 0..=2),
    )
        .prop_map(|(language, channels, addresses, groups)| {
            json!({
                "language": language, "phone": "+32470123456", "email": "anna@example.be",
                "channels": channels, "addresses": addresses, "groups": groups,
            })
        });
    mutated(base)
}

/// Receipts in each provider's shape, a few parts replaced.
pub fn receipt_json() -> impl Strategy<Value = Vec<u8>> {
    let ses = json!({"eventType": "Bounce", "mail": {"messageId": "m-1"},
        "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
                   "bouncedRecipients": [{"diagnosticCode": "550 no such user"}],
                   "timestamp": "2026-11-30T10:00:00.000Z"}});
    let voice = json!({"eventType": "TEXT_DELIVERED", "messageId": "m-2", "isFinal": true,
        "messageStatusDescription": "delivered", "eventTimestamp": 1_796_032_801_123_i64});
    let sns_log = json!({"notification": {"messageId": "m-3", "timestamp": "2026-11-30 10:00:01.123"},
        "delivery": {"providerResponse": "This phone number is opted out"}, "status": "FAILURE"});
    let webhook = json!([{"id": "m-4", "status": "undeliverable", "at": "2026-11-30T10:00:00Z"},
        {"key": "a:sms:s", "status": "delivered"}]);
    let base = prop_oneof![
        Just(ses.clone()),
        Just(voice.clone()),
        Just(sns_log),
        Just(webhook),
        prop::sample::select(vec![ses, voice])
            .prop_map(|e| json!({"Type": "Notification", "Message": e.to_string()})),
    ];
    mutated(base)
}

/// Schedules in EventBridge's syntax, with parts replaced.
pub fn schedule_text() -> impl Strategy<Value = String> {
    let part = |good: &'static [&'static str]| {
        prop_oneof![
            8 => prop::sample::select(good).prop_map(str::to_string),
            1 => "[0-9*?/,LW#A-Za-z-]{1,8}",
        ]
    };
    let rate = (
        prop_oneof![
            6 => 1u64..100,
            1 => any::<u64>(),
        ],
        prop::sample::select(&["minute", "hour", "day"][..]),
        any::<bool>(),
    )
        .prop_map(|(n, unit, plural_mistake)| {
            let plural = (n != 1) != plural_mistake;
            format!("rate({n} {unit}{})", if plural { "s" } else { "" })
        });
    // Day-of-month and day-of-week: one of the two is `?`.
    let days = prop_oneof![
        (part(&["1", "L", "1-31", "31", "*/10", "*"]), part(&["?"])),
        (
            part(&["?"]),
            part(&["MON#1", "6L", "SUN-SAT", "7#5", "MON,WED", "*", "2"])
        ),
    ];
    let cron = (
        part(&["0", "*/15", "5,35", "0-59/7", "59"]),
        part(&["10", "*", "2-4", "*/5", "23"]),
        days,
        part(&["*", "FEB", "JAN-DEC", "2/3", "12"]),
        part(&["*"]),
    )
        .prop_map(|(m, h, (dom, dow), mon, y)| format!("cron({m} {h} {dom} {mon} {dow} {y})"));
    prop_oneof![
        2 => rate,
        4 => cron,
        1 => prop::collection::vec("[0-9*?/,LW#A-Za-z-]{1,8}", 0..8)
            .prop_map(|f| format!("cron({})", f.join(" "))),
        1 => any::<String>(),
    ]
}
