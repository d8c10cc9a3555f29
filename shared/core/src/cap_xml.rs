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
use geo::{BooleanOps, BoundingRect, Coord, LineString, Polygon, Rect};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

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
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    // Writing to a Vec cannot fail.
    let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    let _ = w
        .create_element("alert")
        .with_attribute(("xmlns", NAMESPACE))
        .write_inner_content(|w| {
            text(w, "identifier", &header.identifier);
            text(w, "sender", &header.sender);
            text(w, "sent", &brussels_rfc3339(header.sent_ms));
            text(w, "status", spec.status.as_str());
            text(w, "msgType", spec.msg_type.as_str());
            text(w, "scope", spec.scope.as_str());
            match spec.scope {
                crate::cap::Scope::Restricted => text(
                    w,
                    "restriction",
                    "for the recipients of the issuing authority only",
                ),
                crate::cap::Scope::Private => text(w, "addresses", &header.sender),
                crate::cap::Scope::Public => {}
            }
            if let (Some(r), MsgType::Update | MsgType::Cancel) =
                (&header.references, spec.msg_type)
            {
                text(w, "references", r);
            }
            for (language, body) in &spec.messages.0 {
                info(w, header, spec, *language, body);
            }
            Ok(())
        });
    String::from_utf8(w.into_inner()).unwrap_or_default()
}

fn text(w: &mut Writer<Vec<u8>>, name: &str, value: &str) {
    let _ = w
        .create_element(name)
        .write_text_content(BytesText::new(value));
}

fn info(w: &mut Writer<Vec<u8>>, header: &CapHeader, spec: &AlertSpec, l: Language, body: &str) {
    let _ = w.create_element("info").write_inner_content(|w| {
        text(w, "language", cap_language(l));
        text(w, "category", "Safety");
        text(w, "event", &spec.event);
        if spec.all_clear {
            text(w, "responseType", "AllClear");
        }
        text(w, "urgency", &format!("{:?}", spec.urgency));
        text(w, "severity", &format!("{:?}", spec.severity));
        text(w, "certainty", &format!("{:?}", spec.certainty));
        if let Some(e) = spec.expires {
            text(w, "expires", &brussels_rfc3339(e));
        }
        text(w, "senderName", &header.sender_name);
        text(w, "headline", &spec.event);
        text(w, "description", body);
        if !spec.area.is_empty() {
            area(w, spec);
        }
        Ok(())
    });
}

fn area(w: &mut Writer<Vec<u8>>, spec: &AlertSpec) {
    let a = &spec.area;
    let mut desc: Vec<String> = a
        .geocodes
        .iter()
        .map(|g| format!("{} {}", g.name, g.value))
        .collect();
    if a.polygons.len() > a.geocodes.len() {
        desc.push("a drawn zone".into());
    }
    for c in &a.circles {
        desc.push(format!(
            "{} km around {:.5},{:.5}",
            c.radius_km, c.lat, c.lon
        ));
    }
    let _ = w.create_element("area").write_inner_content(|w| {
        text(w, "areaDesc", &desc.join("; "));
        for rings in &a.polygons {
            for ring in hole_free(rings) {
                let pairs: Vec<String> = ring
                    .iter()
                    .map(|[lon, lat]| format!("{},{}", num(*lat), num(*lon)))
                    .collect();
                text(w, "polygon", &pairs.join(" "));
            }
        }
        for c in &a.circles {
            text(
                w,
                "circle",
                &format!("{},{} {}", num(c.lat), num(c.lon), num(c.radius_km)),
            );
        }
        for g in &a.geocodes {
            let _ = w.create_element("geocode").write_inner_content(|w| {
                text(w, "valueName", &g.name);
                text(w, "value", &g.value);
                Ok(())
            });
        }
        Ok(())
    });
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
