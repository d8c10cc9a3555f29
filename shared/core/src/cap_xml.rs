//! CAP 1.2 XML (OASIS Common Alerting Protocol): an alert as the public
//! channels, digital signs and other warning systems read it.
//!
//! One `info` per language, with the language as CAP names it (`nl-BE`,
//! `fr-BE`, `de-BE`, `en`); one `area` with every polygon, circle and
//! geocode of the zone; times in Belgian time with their offset (CAP
//! forbids `Z`). A CAP polygon has no holes, and several `polygon`
//! elements are a union, so a polygon with holes is exported as hole-free
//! pieces whose union is exactly it: it is cut along a north–south line
//! through each hole ([`hole_free`]).

use crate::Language;
use crate::alert::AlertSpec;
use crate::cap::{MsgType, brussels_rfc3339};
use crate::cap_model as model;
use geo::{BooleanOps, BoundingRect, Coord, LineString, Polygon, Rect};
use quick_xml::events::Event;

/// The CAP 1.2 namespace.
pub const NAMESPACE: &str = "urn:oasis:names:tc:emergency:cap:1.2";

/// What CAP needs beside the alert's spec.
#[derive(Debug, Clone)]
pub struct CapHeader {
    /// Globally unique: `urn:uuid:<alert id>`.
    pub identifier: String,
    /// The issuing authority, as CAP `sender` (no spaces or commas).
    pub sender: String,
    /// The authority's name as people read it (`senderName`).
    pub sender_name: String,
    /// When it was sent, Unix ms.
    pub sent_ms: i64,
    /// `sender,identifier,sent` of the alert this one follows up.
    pub references: Option<String>,
}

/// A CAP `sender` from an operator's name: no spaces, commas or `<&`.
pub fn sender_of(operator: &str) -> String {
    let clean: String = operator
        .chars()
        .map(|c| {
            if c.is_whitespace() || matches!(c, ',' | '<' | '&') {
                '-'
            } else {
                c
            }
        })
        .collect();
    format!("{clean}@bealert")
}

/// `sender,identifier,sent`: how another CAP message refers to this one.
pub fn reference(header: &CapHeader) -> String {
    format!(
        "{},{},{}",
        header.sender,
        header.identifier,
        brussels_rfc3339(header.sent_ms)
    )
}

/// CAP's language tag for one of bealert's languages (Belgian where the
/// language is an official one).
pub fn cap_language(l: Language) -> &'static str {
    match l {
        Language::Nl => "nl-BE",
        Language::Fr => "fr-BE",
        Language::De => "de-BE",
        Language::En => "en",
    }
}

/// The alert as a CAP 1.2 document.
pub fn to_xml(header: &CapHeader, spec: &AlertSpec) -> String {
    alert(header, spec).to_xml()
}

/// The alert as the CAP 1.2 model: one `info` per language.
pub fn alert(header: &CapHeader, spec: &AlertSpec) -> model::Alert {
    use crate::cap::Scope;
    model::Alert {
        xmlns: NAMESPACE.into(),
        identifier: header.identifier.clone(),
        sender: header.sender.clone(),
        sent: brussels_rfc3339(header.sent_ms),
        status: spec.status.as_str().into(),
        msg_type: spec.msg_type.as_str().into(),
        scope: spec.scope.as_str().into(),
        restriction: (spec.scope == Scope::Restricted)
            .then(|| "for the recipients of the issuing authority only".into()),
        addresses: (spec.scope == Scope::Private).then(|| header.sender.clone()),
        references: match spec.msg_type {
            MsgType::Update | MsgType::Cancel => header
                .references
                .as_ref()
                .or(spec.cap_references.as_ref())
                .cloned(),
            MsgType::Alert => None,
        },
        infos: spec
            .messages
            .0
            .iter()
            .map(|(language, body)| info(header, spec, *language, body))
            .collect(),
        ..model::Alert::default()
    }
}

fn info(header: &CapHeader, spec: &AlertSpec, l: Language, body: &str) -> model::Info {
    model::Info {
        language: Some(cap_language(l).into()),
        categories: vec!["Safety".into()],
        event: spec.event.clone(),
        response_types: if spec.all_clear {
            vec!["AllClear".into()]
        } else {
            Vec::new()
        },
        urgency: format!("{:?}", spec.urgency),
        severity: format!("{:?}", spec.severity),
        certainty: format!("{:?}", spec.certainty),
        expires: spec.expires.map(brussels_rfc3339),
        sender_name: Some(header.sender_name.clone()),
        headline: Some(spec.headlines.get(&l).unwrap_or(&spec.event).clone()),
        description: Some(body.into()),
        areas: if spec.area.is_empty() {
            Vec::new()
        } else {
            vec![area(spec)]
        },
        ..model::Info::default()
    }
}

fn area(spec: &AlertSpec) -> model::Area {
    let a = &spec.area;
    let mut desc: Vec<String> = a
        .geocodes
        .iter()
        .map(|g| format!("{} {}", g.name, g.value))
        .collect();
    if a.polygons.len() > a.geocodes.len() {
        desc.push("a drawn zone".into());
    }
    // The place as people know it comes first.
    if let Some(place) = &spec.place {
        desc.insert(0, place.clone());
    }
    for c in &a.circles {
        desc.push(format!(
            "{} km around {:.5},{:.5}",
            c.radius_km, c.lat, c.lon
        ));
    }
    model::Area {
        area_desc: desc.join("; "),
        polygons: a
            .polygons
            .iter()
            .flat_map(|rings| hole_free(rings))
            .map(|ring| {
                ring.iter()
                    .map(|[lon, lat]| format!("{},{}", num(*lat), num(*lon)))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect(),
        circles: a
            .circles
            .iter()
            .map(|c| format!("{},{} {}", num(c.lat), num(c.lon), num(c.radius_km)))
            .collect(),
        geocodes: a
            .geocodes
            .iter()
            .map(|g| model::Geocode {
                value_name: g.name.clone(),
                value: g.value.clone(),
            })
            .collect(),
        ..model::Area::default()
    }
}

/// Up to 7 decimals (about a centimetre), no trailing zeros.
fn num(x: f64) -> String {
    let s = format!("{x:.7}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// A polygon (exterior ring, then holes; `[lon, lat]`) as closed rings
/// without holes whose union is the polygon: each hole is cut open by a
/// north–south line through it, until none is left.
pub fn hole_free(rings: &[Vec<[f64; 2]>]) -> Vec<Vec<[f64; 2]>> {
    let Some((exterior, holes)) = rings.split_first() else {
        return Vec::new();
    };
    if holes.is_empty() {
        return vec![exterior.clone()];
    }
    let line =
        |r: &Vec<[f64; 2]>| LineString::from(r.iter().map(|p| (p[0], p[1])).collect::<Vec<_>>());
    let polygon = Polygon::new(line(exterior), holes.iter().map(line).collect());
    let mut out = Vec::new();
    split(polygon, 0, &mut out);
    out.into_iter()
        .map(|p| p.exterior().coords().map(|c| [c.x, c.y]).collect())
        .collect()
}

/// Cuts along x through the first hole's middle, both halves again.
fn split(p: Polygon<f64>, depth: usize, out: &mut Vec<Polygon<f64>>) {
    let (Some(hole), Some(bb)) = (p.interiors().first(), p.bounding_rect()) else {
        out.push(p);
        return;
    };
    // A hole always has width; the depth bounds a degenerate input.
    let Some(hb) = hole.bounding_rect() else {
        out.push(p);
        return;
    };
    if depth > 64 {
        out.push(Polygon::new(p.exterior().clone(), Vec::new()));
        return;
    }
    let x = (hb.min().x + hb.max().x) / 2.0;
    let (lo, hi) = (bb.min().y - 1.0, bb.max().y + 1.0);
    for half in [
        Rect::new(
            Coord {
                x: bb.min().x - 1.0,
                y: lo,
            },
            Coord { x, y: hi },
        ),
        Rect::new(
            Coord { x, y: lo },
            Coord {
                x: bb.max().x + 1.0,
                y: hi,
            },
        ),
    ] {
        for piece in p.intersection(&half.to_polygon()) {
            split(piece, depth + 1, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::Area;

    fn square(x0: f64, y0: f64, s: f64) -> Vec<[f64; 2]> {
        vec![
            [x0, y0],
            [x0 + s, y0],
            [x0 + s, y0 + s],
            [x0, y0 + s],
            [x0, y0],
        ]
    }

    #[test]
    fn a_polygon_with_holes_becomes_hole_free_pieces_of_the_same_area() {
        let rings = vec![
            square(4.0, 50.0, 1.0),
            square(4.2, 50.2, 0.2),
            square(4.6, 50.6, 0.1),
        ];
        let pieces = hole_free(&rings);
        assert!(pieces.len() >= 3, "{} pieces", pieces.len());
        let area: f64 = pieces
            .iter()
            .map(|r| {
                Polygon::new(
                    LineString::from(r.iter().map(|p| (p[0], p[1])).collect::<Vec<_>>()),
                    vec![],
                )
                .unsigned_area()
            })
            .sum();
        let expected = 1.0 - 0.04 - 0.01;
        assert!((area - expected).abs() < 1e-7, "{area} vs {expected}");
        for r in &pieces {
            assert_eq!(r.first(), r.last(), "a closed ring");
            assert!(r.len() >= 4);
        }
        // The holes' middles are in no piece.
        use geo::Contains;
        for (x, y) in [(4.3, 50.3), (4.65, 50.65)] {
            assert!(pieces.iter().all(|r| {
                !Polygon::new(
                    LineString::from(r.iter().map(|p| (p[0], p[1])).collect::<Vec<_>>()),
                    vec![],
                )
                .contains(&geo::Point::new(x, y))
            }));
        }
        assert_eq!(hole_free(&rings[..1]), vec![rings[0].clone()]);
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../tests/fixtures/cap/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn the_oasis_examples_are_read_without_losing_what_bealert_uses() {
        let t = import(&fixture("oasis-a2-severe-thunderstorm.xml")).unwrap();
        let r = &t.request;
        assert_eq!(r.status, crate::cap::Status::Actual);
        assert_eq!(t.msg_type, MsgType::Alert);
        assert_eq!(r.event, "SEVERE THUNDERSTORM");
        assert_eq!(r.severity, crate::cap::Severity::Severe);
        assert_eq!(r.urgency, crate::cap::Urgency::Immediate);
        assert_eq!(r.certainty, crate::cap::Certainty::Observed);
        let text = &r.messages["en"];
        assert!(
            text.starts_with("AT 254 PM PDT") && text.ends_with("UNTIL THE STORM PASSES."),
            "{text}"
        );
        assert_eq!(t.headlines[&Language::En], "SEVERE THUNDERSTORM WARNING");
        assert_eq!(r.expires.as_deref(), Some("2003-06-17T16:00:00-07:00"));
        let area = r.area.as_ref().unwrap();
        let ring = &area.geojson.as_ref().unwrap()["features"][0]["geometry"]["coordinates"][0];
        assert_eq!(
            ring[0],
            serde_json::json!([-120.14, 38.47]),
            "lat,lon becomes [lon, lat]"
        );
        assert_eq!(ring.as_array().unwrap().len(), 5);
        assert!(
            t.warnings.iter().any(|w| w.contains("SAME 006109")),
            "{:?}",
            t.warnings
        );

        let q = import(&fixture("oasis-a3-earthquake-update.xml")).unwrap_err();
        assert_eq!(
            q.0[0].path, "alert.info[0].area",
            "a radius-0 circle reaches nobody: {q:?}"
        );
        let amber = import(&fixture("oasis-a4-amber-alert.xml")).unwrap_err();
        assert_eq!(amber.0[0].path, "alert.info[0].area");
        assert!(amber.0[0].message.contains("SAME 006037"), "{amber:?}");
        let hs = import(&fixture("oasis-a1-homeland-security.xml")).unwrap_err();
        assert_eq!(hs.0[0].path, "alert.info[0].area");
    }

    #[test]
    fn an_update_keeps_its_references_and_languages_map_to_bealerts_four() {
        let xml = String::from_utf8(fixture("oasis-a3-earthquake-update.xml"))
            .unwrap()
            .replace("32.9525,-115.5527 0", "50.85,4.35 2");
        let t = import(xml.as_bytes()).unwrap();
        assert_eq!(t.msg_type, MsgType::Update);
        assert_eq!(
            t.references.as_deref(),
            Some("trinet@caltech.edu,TRI13970876.1,2003-06-11T20:30:00-07:00")
        );
        let area = t.request.area.as_ref().unwrap();
        assert_eq!(
            (area.circles[0].lat, area.circles[0].radius_km),
            (50.85, 2.0)
        );
        for (tag, lang) in [
            ("nl-BE", Some(Language::Nl)),
            ("fr-BE", Some(Language::Fr)),
            ("de", Some(Language::De)),
            ("en-US", Some(Language::En)),
            ("es-US", None),
        ] {
            assert_eq!(language_of(tag), lang, "{tag}");
        }
    }

    #[test]
    fn malformed_cap_is_refused_naming_the_element() {
        for (file, path, words) in [
            (
                "malformed/wrong-namespace.xml",
                "alert",
                "not a CAP 1.2 message",
            ),
            ("malformed/no-info.xml", "alert.info", "missing"),
            (
                "malformed/open-polygon.xml",
                "alert.info[0].area[0].polygon[0]",
                "does not close",
            ),
            ("malformed/z-time.xml", "alert.sent", "ends in Z"),
        ] {
            let e = import(&fixture(file)).unwrap_err();
            let hit = e.0.iter().find(|f| f.path == path);
            assert!(
                hit.is_some_and(|f| f.message.contains(words)),
                "{file}: {e:?}"
            );
        }
        let e = import(b"<alert><unclosed></alert>").unwrap_err();
        assert_eq!(e.0[0].path, "alert");
    }

    /// A minimal valid alert around `infos`.
    fn alert_of(infos: &str) -> String {
        format!(
            "<alert xmlns=\"{NAMESPACE}\"><identifier>x</identifier><sender>s</sender>\
             <sent>2026-11-29T10:00:00+01:00</sent><status>Exercise</status>\
             <msgType>Alert</msgType><scope>Public</scope>{infos}</alert>"
        )
    }

    fn info_of(language: &str, area: &str) -> String {
        format!(
            "<info><language>{language}</language><category>Safety</category><event>Brand</event>\
             <urgency>Immediate</urgency><severity>Severe</severity><certainty>Observed</certainty>\
             <description> a &amp; b &#x41; <![CDATA[<c>]]> d </description>\
             <area><areaDesc>here</areaDesc>{area}</area></info>"
        )
    }

    const RING: &str = "<polygon>50.8,4.3 50.8,4.4 50.9,4.4 50.8,4.3</polygon>";

    #[test]
    fn the_model_reads_what_the_dom_read() {
        // Text with references and CDATA; lists interleaved with other
        // elements; elements CAP does not have, at any depth, skipped;
        // a prefixed namespace.
        let area = format!(
            "{RING}<circle>50.85,4.35 2</circle><x><y><z>t</z></y></x>\
             <polygon>50.7,4.3 50.7,4.4 50.9,4.4 50.7,4.3</polygon>"
        );
        let xml = alert_of(&format!(
            "{}<note>between</note><Signature xmlns=\"http://www.w3.org/2000/09/xmldsig#\"><a><b/></a></Signature>{}",
            info_of("nl-BE", &area),
            info_of("fr-BE", RING)
        ));
        let t = import(xml.as_bytes()).unwrap();
        assert_eq!(t.request.messages["nl"], "a & b A <c> d");
        assert_eq!(t.request.messages.len(), 2);
        let area = t.request.area.unwrap();
        let features = &area.geojson.unwrap()["features"];
        assert_eq!(features.as_array().unwrap().len(), 2, "{features}");
        assert_eq!(area.circles.len(), 1);

        let prefixed = xml
            .replace("</", "\u{1}")
            .replace('<', "<cap:")
            .replace('\u{1}', "</cap:")
            .replace("<cap:![CDATA[<cap:c>", "<![CDATA[<c>")
            .replace("<cap:alert xmlns=", "<cap:alert xmlns:cap=");
        assert_eq!(
            import(prefixed.as_bytes()).unwrap().request.messages,
            t.request.messages
        );
    }

    #[test]
    fn what_the_model_cannot_read_is_refused_naming_the_element() {
        let refused = |xml: String| import(xml.as_bytes()).unwrap_err().0[0].clone();
        let e = refused(alert_of(
            &info_of("nl-BE", RING).replace("<event>Brand</event>", "<event>B<b/>r</event>"),
        ));
        assert_eq!(e.path, "alert.info[0].event", "{e:?}");
        assert!(e.message.starts_with("not read as CAP 1.2"), "{e:?}");
        let e = refused(alert_of(&info_of("nl-BE", "<polygon><a/></polygon>")));
        assert_eq!(e.path, "alert.info[0].area[0].polygon[0]", "{e:?}");
        let e = refused(
            alert_of(&info_of("nl-BE", RING))
                .replace("<scope>", "<sent>2026-11-29T10:00:00+01:00</sent><scope>"),
        );
        assert!(e.message.contains("duplicate field `sent`"), "{e:?}");
        let e = refused(format!("junk{}", alert_of(&info_of("nl-BE", RING))));
        assert_eq!(e.path, "alert");
        assert!(e.message.contains("text before the root element"), "{e:?}");
        let e = refused(alert_of(&info_of("nl-BE", RING)) + "<alert/>");
        assert!(e.message.contains("a second root element"), "{e:?}");
        // Blank and empty elements are missing ones, as before.
        let e = refused(alert_of(
            &info_of("nl-BE", RING).replace("<event>Brand</event>", "<event/>"),
        ));
        assert_eq!(
            (e.path.as_str(), e.message.as_str()),
            ("alert.info[0].event", "missing: CAP 1.2 requires it")
        );
        // Space, a byte order mark, a declaration and comments before the
        // root, and text after it, as before.
        let ok = format!(
            "\u{feff}<?xml version=\"1.0\"?>\n<!-- c -->\n{}\n",
            alert_of(&info_of("nl-BE", RING))
        );
        assert!(import(ok.as_bytes()).is_ok());
    }

    #[test]
    fn bealerts_own_cap_comes_back_as_the_same_alert() {
        let spec: AlertSpec = serde_json::from_value::<crate::alert::AlertRequest>(serde_json::json!({
            "status": "Exercise", "event": "Brand", "severity": "Severe",
            "urgency": "Immediate", "certainty": "Observed",
            "messages": {"nl": "Sluit ramen", "fr": "Fermez les fenêtres & portes"},
            "area": {"circles": [{"lat": 50.85, "lon": 4.35, "radius_km": 2}],
                     "geojson": {"type": "Polygon", "coordinates": [[[4.3,50.8],[4.4,50.8],[4.4,50.9],[4.3,50.8]]]}},
            "expires": "2026-11-29T18:00:00+01:00"
        }))
        .unwrap()
        .validate()
        .unwrap();
        let header = CapHeader {
            identifier: "urn:uuid:x".into(),
            sender: "centre@bealert".into(),
            sender_name: "centre".into(),
            sent_ms: 1_795_942_800_000,
            references: None,
        };
        let back = import(to_xml(&header, &spec).as_bytes()).unwrap();
        let again = back.request.validate().unwrap();
        assert_eq!(again.messages, spec.messages);
        assert_eq!(again.status, spec.status);
        assert_eq!(again.expires, spec.expires);
        assert_eq!(again.area.circles, spec.area.circles);
        assert_eq!(again.area.polygons.len(), spec.area.polygons.len());
    }

    /// The document as the hand-written writer wrote it before the model,
    /// byte for byte: declaration, namespace, order, indentation, escapes.
    #[test]
    fn the_export_is_the_document_bealert_always_wrote() {
        let square = vec![vec![
            [4.35, 50.84],
            [4.36, 50.84],
            [4.36, 50.85],
            [4.35, 50.85],
            [4.35, 50.84],
        ]];
        let mut spec = serde_json::from_value::<crate::alert::AlertRequest>(serde_json::json!({
            "status": "Actual", "event": "Flood", "severity": "Minor",
            "urgency": "Future", "certainty": "Likely",
            "messages": {"de": "Hochwasser"},
            "area": {"geocodes": [{"name": "NIS", "value": "21004"}, {"name": "postcode", "value": "1000"}]}
        }))
        .unwrap()
        .validate_with(&[Ok(vec![square.clone()]), Ok(vec![square])])
        .unwrap();
        spec.scope = crate::cap::Scope::Private;
        spec.msg_type = MsgType::Cancel;
        let header = CapHeader {
            identifier: "urn:uuid:x".into(),
            sender: "centre@bealert".into(),
            sender_name: "centre \"quoted\" & <co>".into(),
            sent_ms: 1_795_942_800_000,
            references: Some("a,b,c".into()),
        };
        assert_eq!(
            to_xml(&header, &spec),
            r#"<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>urn:uuid:x</identifier>
  <sender>centre@bealert</sender>
  <sent>2026-11-29T10:00:00+01:00</sent>
  <status>Actual</status>
  <msgType>Cancel</msgType>
  <scope>Private</scope>
  <addresses>centre@bealert</addresses>
  <references>a,b,c</references>
  <info>
    <language>de-BE</language>
    <category>Safety</category>
    <event>Flood</event>
    <urgency>Future</urgency>
    <severity>Minor</severity>
    <certainty>Likely</certainty>
    <senderName>centre &quot;quoted&quot; &amp; &lt;co&gt;</senderName>
    <headline>Flood</headline>
    <description>Hochwasser</description>
    <area>
      <areaDesc>NIS 21004; postcode 1000</areaDesc>
      <polygon>50.84,4.35 50.84,4.36 50.85,4.36 50.85,4.35 50.84,4.35</polygon>
      <polygon>50.84,4.35 50.84,4.36 50.85,4.36 50.85,4.35 50.84,4.35</polygon>
      <geocode>
        <valueName>NIS</valueName>
        <value>21004</value>
      </geocode>
      <geocode>
        <valueName>postcode</valueName>
        <value>1000</value>
      </geocode>
    </area>
  </info>
</alert>"#
        );
    }

    /// The issue's document: 120,000 nested elements (840 KB), read on a
    /// thread with a tokio worker's stack (2 MiB).
    fn nested(depth: usize) -> String {
        format!(
            "<alert xmlns=\"{NAMESPACE}\">{}{}</alert>",
            "<a>".repeat(depth),
            "</a>".repeat(depth)
        )
    }

    #[test]
    fn a_deeply_nested_document_is_refused_for_its_depth_not_a_stack_overflow() {
        let xml = nested(120_000);
        let e = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || import(xml.as_bytes()).unwrap_err())
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(e.0[0].path, "alert", "{e:?}");
        assert!(
            e.0[0].message.contains("nesting deeper than 16 levels"),
            "{e:?}"
        );
    }

    #[test]
    fn documents_are_read_up_to_the_depth_element_and_size_bounds_and_refused_past_them() {
        // `alert` and 15 levels under it: 16, read; one more is refused,
        // an empty element as much as a start tag.
        assert_eq!(
            scan_document(nested(MAX_DEPTH - 1).as_bytes())
                .unwrap()
                .depth,
            MAX_DEPTH
        );
        let deeper = scan_document(nested(MAX_DEPTH).as_bytes()).unwrap_err();
        assert!(
            deeper.starts_with("nesting deeper than 16 levels"),
            "{deeper}"
        );
        let empty = nested(MAX_DEPTH - 1).replacen("</a>", "<b/></a>", 1);
        let deeper = scan_document(empty.as_bytes()).unwrap_err();
        assert!(deeper.contains("(<b>)"), "{deeper}");

        let flat = |n: usize| format!("<alert>{}</alert>", "<a/>".repeat(n - 1));
        assert_eq!(
            scan_document(flat(MAX_ELEMENTS).as_bytes())
                .unwrap()
                .elements,
            MAX_ELEMENTS
        );
        let many = scan_document(flat(MAX_ELEMENTS + 1).as_bytes()).unwrap_err();
        assert!(many.starts_with("more than 50000 elements"), "{many}");

        let large = format!("<alert>{}</alert>", " ".repeat(MAX_DOCUMENT_BYTES));
        let large = import(large.as_bytes()).unwrap_err();
        assert_eq!(large.0[0].path, "alert");
        assert!(
            large.0[0]
                .message
                .contains("more than the 1048576 accepted"),
            "{large:?}"
        );
    }

    #[test]
    fn numbers_are_short_and_senders_have_no_spaces() {
        assert_eq!(num(4.35), "4.35");
        assert_eq!(num(50.0), "50");
        assert_eq!(num(-0.0000000001), "0");
        assert_eq!(
            sender_of("Gouverneur Antwerpen, kabinet"),
            "Gouverneur-Antwerpen--kabinet@bealert"
        );
    }
}

/// The deepest nesting the import reads ([`scan_document`]): CAP 1.2
/// needs fewer than 10 levels (`alert` › `info` › `area` › `geocode` ›
/// `value`; an XML signature goes a little deeper). The bound keeps the
/// deserializer, and everything after it, shallow, whatever is posted.
pub const MAX_DEPTH: usize = 16;
/// The most elements the import reads: a CAP message has tens to a few
/// thousand (one `geocode` per unit, an `info` per language).
pub const MAX_ELEMENTS: usize = 50_000;
/// The largest document the import reads, as large as `POST /v1/alerts`
/// accepts (1 MiB); a CAP message is a few kilobytes.
pub const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// An element's name as the document has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    pub namespace: Option<String>,
    pub local: String,
}

/// What [`scan_document`] saw of a document it read to the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outline {
    /// The root element.
    pub root: Name,
    /// The first child of the root outside CAP 1.2's namespace, an XML
    /// signature (`Signature`) aside.
    pub foreign_child: Option<Name>,
    /// The deepest level of elements, the root's being 1: at most
    /// [`MAX_DEPTH`].
    pub depth: usize,
    /// Elements, the root included: at most [`MAX_ELEMENTS`].
    pub elements: usize,
}

/// Reads a document as a stream of events, in a loop (never recursing),
/// keeping nothing but counts and the root's names; the error says where
/// it stopped being XML, or which bound ([`MAX_DOCUMENT_BYTES`],
/// [`MAX_DEPTH`], [`MAX_ELEMENTS`]) it passed. The import deserializes
/// only a document this accepted, so nothing deeper or larger is read.
pub fn scan_document(xml: &[u8]) -> Result<Outline, String> {
    use quick_xml::name::ResolveResult;
    if xml.len() > MAX_DOCUMENT_BYTES {
        return Err(format!(
            "the document is {} bytes, more than the {MAX_DOCUMENT_BYTES} accepted: a CAP 1.2 message is a few kilobytes; send one alert per message",
            xml.len()
        ));
    }
    let text = std::str::from_utf8(xml).map_err(|e| format!("the document is not UTF-8: {e}"))?;
    let mut reader = quick_xml::NsReader::from_str(text);
    // Elements open now, the deepest level seen, elements seen.
    let (mut open, mut depth, mut elements) = (0usize, 0usize, 0usize);
    let mut root: Option<Name> = None;
    let mut root_closed = false;
    let mut foreign_child = None;
    // The name as an error shows it: short, whatever was posted.
    let shown =
        |name: &[u8]| -> String { String::from_utf8_lossy(name).chars().take(40).collect() };
    loop {
        let at = reader.buffer_position();
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| format!("not well-formed XML at byte {at}: {e}"))?;
        match event {
            Event::Start(ref s) | Event::Empty(ref s) => {
                let level = open + 1;
                if level > MAX_DEPTH {
                    return Err(format!(
                        "nesting deeper than {MAX_DEPTH} levels at byte {at} (<{}>): a CAP 1.2 message needs fewer than 10; send the alert element itself, without extra nesting",
                        shown(s.name().as_ref())
                    ));
                }
                elements += 1;
                if elements > MAX_ELEMENTS {
                    return Err(format!(
                        "more than {MAX_ELEMENTS} elements (at byte {at}, <{}>): a CAP 1.2 message has at most a few thousand; send one alert per message",
                        shown(s.name().as_ref())
                    ));
                }
                if root_closed {
                    return Err(format!(
                        "not well-formed XML at byte {at}: a second root element (<{}>); send one alert per message",
                        shown(s.name().as_ref())
                    ));
                }
                depth = depth.max(level);
                if level <= 2 {
                    let name = Name {
                        namespace: match ns {
                            ResolveResult::Bound(n) => {
                                Some(String::from_utf8_lossy(n.as_ref()).into_owned())
                            }
                            _ => None,
                        },
                        local: String::from_utf8_lossy(s.local_name().as_ref()).into_owned(),
                    };
                    if level == 1 {
                        root = Some(name);
                    } else if foreign_child.is_none()
                        && name.namespace.as_deref() != Some(NAMESPACE)
                        && name.local != "Signature"
                    {
                        foreign_child = Some(name);
                    }
                }
                if matches!(event, Event::Start(_)) {
                    open = level;
                } else if level == 1 {
                    root_closed = true;
                }
            }
            Event::End(_) => {
                open = open.checked_sub(1).ok_or_else(|| {
                    format!("not well-formed XML at byte {at}: an end tag without a start")
                })?;
                root_closed |= open == 0;
            }
            // Text as the deserializer decodes it, checked here so that
            // its errors read as they always did.
            Event::Text(t) if open > 0 => {
                t.xml10_content()
                    .map_err(|e| format!("bad text at byte {at}: {e}"))?;
            }
            Event::CData(t) if open > 0 => {
                t.xml10_content()
                    .map_err(|e| format!("bad CDATA at byte {at}: {e}"))?;
            }
            Event::GeneralRef(r) if open > 0 && !matches!(r.resolve_char_ref(), Ok(Some(_))) => {
                let name = r
                    .decode()
                    .map_err(|e| format!("bad reference at byte {at}: {e}"))?;
                quick_xml::escape::resolve_xml_entity(&name)
                    .ok_or_else(|| format!("unknown entity &{name}; at byte {at}"))?;
            }
            // Before the root, only space: the deserializer would take
            // any other text for the document.
            Event::Text(t) if root.is_none() => {
                let t = t
                    .xml10_content()
                    .map_err(|e| format!("bad text at byte {at}: {e}"))?;
                if !t
                    .trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
                    .is_empty()
                {
                    return Err(format!(
                        "not well-formed XML at byte {at}: text before the root element; the document starts with <alert>"
                    ));
                }
            }
            Event::CData(_) | Event::GeneralRef(_) if root.is_none() => {
                return Err(format!(
                    "not well-formed XML at byte {at}: text before the root element; the document starts with <alert>"
                ));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if open > 0 {
        return Err("not well-formed XML: the document ends inside an element".into());
    }
    let root = root.ok_or("the document has no element")?;
    Ok(Outline {
        root,
        foreign_child,
        depth,
        elements,
    })
}

/// Reads a CAP 1.2 document into the model: its bounds first
/// ([`scan_document`]), then its root and namespace, then quick-xml's
/// deserializer, which goes no deeper than the document (at most
/// [`MAX_DEPTH`]) and skips elements CAP does not have in a loop. The
/// error names the element (`alert.info[0].area[0]`).
pub fn read(xml: &[u8]) -> Result<model::Alert, crate::ValidationErrors> {
    use crate::ValidationErrors;
    let outline = scan_document(xml).map_err(|e| ValidationErrors::single("alert", e))?;
    let root = &outline.root;
    if root.local != "alert" || root.namespace.as_deref() != Some(NAMESPACE) {
        return Err(ValidationErrors::single(
            "alert",
            format!(
                "not a CAP 1.2 message: the root is <{}> in namespace {:?}; expected <alert> in {NAMESPACE}",
                root.local,
                root.namespace.as_deref().unwrap_or("none")
            ),
        ));
    }
    if let Some(foreign) = &outline.foreign_child {
        return Err(ValidationErrors::single(
            format!("alert.{}", foreign.local),
            format!(
                "in namespace {:?}, not CAP 1.2's {NAMESPACE}",
                foreign.namespace.as_deref().unwrap_or("none")
            ),
        ));
    }
    let text = std::str::from_utf8(xml).map_err(|e| {
        ValidationErrors::single("alert", format!("the document is not UTF-8: {e}"))
    })?;
    let mut de = quick_xml::de::Deserializer::from_str(text);
    // The events set aside to read an interleaved list: fewer than the
    // document has (an element is at most a start, a text and an end).
    de.event_buffer_size(std::num::NonZeroUsize::new(4 * MAX_ELEMENTS));
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let path = match path.as_str() {
            "" | "." => "alert".to_string(),
            p => format!("alert.{p}"),
        };
        // Short, whatever was posted (an error may quote the text).
        let why: String = e.inner().to_string().chars().take(200).collect();
        ValidationErrors::single(path, format!("not read as CAP 1.2: {why}"))
    })
}

/// A CAP 1.2 message read for import: the alert request it makes, and
/// what CAP carries beyond it.
#[derive(Debug, Clone)]
pub struct CapImport {
    pub request: crate::alert::AlertRequest,
    pub msg_type: MsgType,
    /// CAP `references`, as given.
    pub references: Option<String>,
    /// Each language's `headline`: its e-mail subject.
    pub headlines: std::collections::BTreeMap<Language, String>,
    /// What was left out, and why (a language or geocode bealert does not know).
    pub warnings: Vec<String>,
    /// For the request's own checks: the CAP element each text came from
    /// (`messages.nl` → `alert.info[0]`).
    pub origins: std::collections::BTreeMap<String, String>,
}

/// A CAP time: RFC 3339 with an offset, never `Z` (the schema's pattern).
pub fn cap_time(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let b = s.as_bytes();
    let offset_ok = b.len() == 25 && matches!(b[19], b'+' | b'-') && b[22] == b':' && b[10] == b'T';
    if s.ends_with('Z') || s.ends_with('z') {
        return Err(format!(
            "{s:?} ends in Z: CAP 1.2 times carry an offset, e.g. 2026-11-29T10:00:00+01:00"
        ));
    }
    if !offset_ok {
        return Err(format!(
            "{s:?} is not a CAP time: give YYYY-MM-DDThh:mm:ss with an offset, e.g. 2026-11-29T10:00:00+01:00"
        ));
    }
    crate::cap::parse_time(s).ok_or_else(|| format!("{s:?} is not a valid time"))
}

/// bealert's language for a CAP language tag (`nl-BE`, `fr`, `en-US`).
pub fn language_of(tag: &str) -> Option<Language> {
    let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
    Language::from_code(&primary)
}

/// `lat,lon lat,lon …` → a closed ring of `[lon, lat]`.
fn cap_polygon(s: &str) -> Result<Vec<[f64; 2]>, String> {
    let mut ring = Vec::new();
    for (i, pair) in s.split_whitespace().enumerate() {
        let point = pair
            .split_once(',')
            .and_then(|(lat, lon)| {
                Some([
                    lon.trim().parse::<f64>().ok()?,
                    lat.trim().parse::<f64>().ok()?,
                ])
            })
            .ok_or_else(|| format!("point {} {pair:?} is not lat,lon", i + 1))?;
        ring.push(point);
    }
    if ring.len() < 4 {
        return Err(format!(
            "{} points: a CAP polygon has at least four, the first repeated last",
            ring.len()
        ));
    }
    if ring.first() != ring.last() {
        let (f, l) = (ring[0], ring[ring.len() - 1]);
        return Err(format!(
            "the polygon does not close: it starts at {},{} and ends at {},{}; repeat the first point last",
            f[1], f[0], l[1], l[0]
        ));
    }
    Ok(ring)
}

/// `lat,lon radius` (km).
fn cap_circle(s: &str) -> Result<crate::area::CircleInput, String> {
    let bad = || format!("{s:?} is not \"lat,lon radius\" (radius in km)");
    let (point, radius) = s.trim().split_once(char::is_whitespace).ok_or_else(bad)?;
    let (lat, lon) = point.split_once(',').ok_or_else(bad)?;
    Ok(crate::area::CircleInput {
        lat: lat.trim().parse().map_err(|_| bad())?,
        lon: lon.trim().parse().map_err(|_| bad())?,
        radius_km: radius.trim().parse().map_err(|_| bad())?,
    })
}

/// Reads a CAP 1.2 message for `POST /v1/alerts` (`application/cap+xml`):
/// every error names the element (`alert.info[0].area[0].polygon[1]`).
pub fn import(xml: &[u8]) -> Result<CapImport, crate::ValidationErrors> {
    use crate::error::Collector;
    use model::{given, given_opt};
    use std::collections::{BTreeMap, BTreeSet};
    let alert = read(xml)?;
    let mut errors = Collector::default();
    let required = |name: &str, value: &str, errors: &mut Collector| match given(value) {
        Some(v) => Some(v.to_string()),
        None => {
            errors.push(format!("alert.{name}"), "missing: CAP 1.2 requires it");
            None
        }
    };
    let _identifier = required("identifier", &alert.identifier, &mut errors);
    let _sender = required("sender", &alert.sender, &mut errors);
    let sent = required("sent", &alert.sent, &mut errors);
    let status = required("status", &alert.status, &mut errors);
    let msg_type = required("msgType", &alert.msg_type, &mut errors);
    let scope = required("scope", &alert.scope, &mut errors);
    if let Some(sent) = &sent
        && let Err(e) = cap_time(sent)
    {
        errors.push("alert.sent", e);
    }
    let status = status.and_then(|s| match s.as_str() {
        "Actual" => Some(crate::cap::Status::Actual),
        "Exercise" => Some(crate::cap::Status::Exercise),
        "Test" => Some(crate::cap::Status::Test),
        other => {
            errors.push(
                "alert.status",
                format!("{other:?}: only Actual, Exercise and Test messages are sent to people"),
            );
            None
        }
    });
    let msg_type = msg_type.and_then(|m| match m.as_str() {
        "Alert" => Some(MsgType::Alert),
        "Update" => Some(MsgType::Update),
        "Cancel" => Some(MsgType::Cancel),
        other => {
            errors.push(
                "alert.msgType",
                format!("{other:?} is not an alert to send (Alert, Update or Cancel)"),
            );
            None
        }
    });
    let scope = scope.and_then(|s| match s.as_str() {
        "Public" => Some(crate::cap::Scope::Public),
        "Restricted" => Some(crate::cap::Scope::Restricted),
        "Private" => Some(crate::cap::Scope::Private),
        other => {
            errors.push(
                "alert.scope",
                format!("{other:?}: use Public, Restricted or Private"),
            );
            None
        }
    });
    let references = given_opt(&alert.references).map(str::to_string);
    if msg_type.is_some_and(|m| m != MsgType::Alert) && references.is_none() {
        errors.push(
            "alert.references",
            "an Update or Cancel names what it follows up",
        );
    }

    let infos = &alert.infos;
    if infos.is_empty() {
        errors.push(
            "alert.info",
            "missing: a CAP message without info has nothing to say",
        );
    }
    let mut warnings = Vec::new();
    let mut messages = BTreeMap::new();
    let mut headlines = BTreeMap::new();
    let mut origins = BTreeMap::new();
    let mut first: Option<(usize, &model::Info)> = None;
    let mut expires = None;
    let (mut polygons, mut circles, mut geocodes) =
        (BTreeSet::<String>::new(), Vec::new(), Vec::new());
    let mut rings: Vec<Vec<[f64; 2]>> = Vec::new();
    let mut foreign_codes = BTreeSet::new();
    for (i, info) in infos.iter().enumerate() {
        let path = format!("alert.info[{i}]");
        let tag = given_opt(&info.language).unwrap_or("en-US");
        let Some(language) = language_of(tag) else {
            warnings.push(format!(
                "{path}: language {tag} is none of nl, fr, de, en; left out"
            ));
            continue;
        };
        if messages.contains_key(language.code()) {
            warnings.push(format!(
                "{path}: a second {tag} info; the first one is used"
            ));
            continue;
        }
        for (field, value) in [
            ("event", &info.event),
            ("urgency", &info.urgency),
            ("severity", &info.severity),
            ("certainty", &info.certainty),
        ] {
            if given(value).is_none() {
                errors.push(format!("{path}.{field}"), "missing: CAP 1.2 requires it");
            }
        }
        if info.categories.is_empty() {
            errors.push(format!("{path}.category"), "missing: CAP 1.2 requires it");
        }
        let text: Vec<&str> = [&info.description, &info.instruction]
            .into_iter()
            .filter_map(given_opt)
            .collect();
        if text.is_empty() {
            errors.push(
                format!("{path}.description"),
                "no description or instruction: nothing to tell people",
            );
        } else {
            messages.insert(language.code().to_string(), text.join("\n"));
            origins.insert(
                format!("messages.{}", language.code()),
                format!("{path} (description and instruction)"),
            );
        }
        if let Some(h) = given_opt(&info.headline) {
            headlines.insert(language, h.to_string());
        }
        if first.is_none() {
            first = Some((i, info));
        }
        if expires.is_none()
            && let Some(e) = given_opt(&info.expires)
        {
            match cap_time(e) {
                Ok(_) => {
                    expires = Some(e.to_string());
                    origins.insert("expires".to_string(), format!("{path}.expires"));
                }
                Err(why) => errors.push(format!("{path}.expires"), why),
            }
        }
        for (j, area) in info.areas.iter().enumerate() {
            let apath = format!("{path}.area[{j}]");
            if given(&area.area_desc).is_none() {
                errors.push(format!("{apath}.areaDesc"), "missing: CAP 1.2 requires it");
            }
            for (k, p) in area.polygons.iter().enumerate() {
                match cap_polygon(p) {
                    Ok(ring) => {
                        if polygons.insert(p.split_whitespace().collect::<Vec<_>>().join(" ")) {
                            rings.push(ring);
                        }
                    }
                    Err(e) => errors.push(format!("{apath}.polygon[{k}]"), e),
                }
            }
            for (k, c) in area.circles.iter().enumerate() {
                match cap_circle(c) {
                    Ok(c) if c.radius_km <= 0.0 => warnings.push(format!(
                        "{apath}.circle[{k}]: radius 0 is a point that reaches nobody; left out"
                    )),
                    Ok(c) => {
                        if !circles.contains(&c) {
                            circles.push(c);
                        }
                    }
                    Err(e) => errors.push(format!("{apath}.circle[{k}]"), e),
                }
            }
            for (k, g) in area.geocodes.iter().enumerate() {
                let (Some(name), Some(value)) = (given(&g.value_name), given(&g.value)) else {
                    errors.push(
                        format!("{apath}.geocode[{k}]"),
                        "needs a valueName and a value",
                    );
                    continue;
                };
                let known = matches!(
                    name.to_ascii_lowercase().as_str(),
                    "nis" | "canton" | "arrondissement" | "postcode"
                );
                let input = crate::area::GeocodeInput {
                    name: name.to_string(),
                    value: value.to_string(),
                };
                if !known {
                    foreign_codes.insert(format!("{name} {value}"));
                } else if !geocodes.contains(&input) {
                    geocodes.push(input);
                }
            }
        }
    }
    let foreign = foreign_codes.into_iter().collect::<Vec<_>>().join(", ");
    if !foreign.is_empty() {
        warnings.push(format!(
            "geocodes bealert does not know were left out ({foreign}); it knows NIS, canton, arrondissement and postcode"
        ));
    }
    if first.is_some() && rings.is_empty() && circles.is_empty() && geocodes.is_empty() {
        errors.push(
            "alert.info[0].area",
            format!(
                "no polygon, circle or geocode bealert can target (NIS, canton, arrondissement or postcode){}: nobody could be warned",
                if foreign.is_empty() { String::new() } else { format!("; left out: {foreign}") }
            ),
        );
    }
    let field = |field: &str, i: usize, value: &str| {
        (
            format!("alert.info[{i}].{field}"),
            given(value).unwrap_or_default().to_string(),
        )
    };
    let (Some(status), Some(msg_type), Some(scope), Some((i, info))) =
        (status, msg_type, scope, first)
    else {
        errors.push_if_empty("alert", "not a CAP 1.2 alert bealert can send");
        return Err(errors.into_errors());
    };
    let event = given(&info.event).unwrap_or_default().to_string();
    let mut vocabulary = |(path, v): (String, String), what: &str| -> serde_json::Value {
        let value = serde_json::Value::String(v.clone());
        let ok = match what {
            "urgency" => serde_json::from_value::<crate::cap::Urgency>(value.clone()).is_ok(),
            "severity" => serde_json::from_value::<crate::cap::Severity>(value.clone()).is_ok(),
            _ => serde_json::from_value::<crate::cap::Certainty>(value.clone()).is_ok(),
        };
        if !ok && !v.is_empty() {
            errors.push(path, format!("{v:?} is not a CAP 1.2 {what}"));
        }
        value
    };
    let (u, s, c) = (
        vocabulary(field("urgency", i, &info.urgency), "urgency"),
        vocabulary(field("severity", i, &info.severity), "severity"),
        vocabulary(field("certainty", i, &info.certainty), "certainty"),
    );
    if !errors.is_empty() {
        return Err(errors.into_errors());
    }
    let geojson = (!rings.is_empty()).then(|| {
        serde_json::json!({
            "type": "FeatureCollection",
            "features": rings.iter().map(|r| serde_json::json!({
                "type": "Feature", "properties": {},
                "geometry": {"type": "Polygon", "coordinates": [r]}
            })).collect::<Vec<_>>()
        })
    });
    let mut body = serde_json::json!({
        "status": status,
        "event": event,
        "urgency": u,
        "severity": s,
        "certainty": c,
        "messages": messages,
        "area": crate::area::AreaRequest { geojson, circles, geocodes },
        "scope": scope,
    });
    if let Some(e) = expires {
        body["expires"] = serde_json::Value::String(e);
    }
    let request = serde_json::from_value::<crate::alert::AlertRequest>(body);
    let request = match request {
        Ok(r) => r,
        Err(e) => {
            errors.push("alert", format!("cannot be read as an alert: {e}"));
            return Err(errors.into_errors());
        }
    };
    errors.finish(CapImport {
        request,
        msg_type,
        references,
        headlines,
        warnings,
        origins,
    })
}
