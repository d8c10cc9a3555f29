//! CAP 1.2 alerts built from arbitrary fields: every document has CAP's
//! structure and is well-formed, so the fuzzer spends its time in the
//! import (times, vocabularies, languages, polygons, circles, geocodes)
//! and the alert's validation rather than in XML syntax.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[path = "../../shared/core/tests/parsers_never_panic/calls.rs"]
mod calls;

/// A field's text: one of the values CAP or bealert know, or anything.
#[derive(Debug, Arbitrary)]
enum Word<'a> {
    Known(u8),
    Any(&'a str),
}

impl Word<'_> {
    fn text(&self, known: &[&str]) -> String {
        match self {
            Word::Known(i) => known[usize::from(*i) % known.len()].to_string(),
            Word::Any(s) => escape(s),
        }
    }
}

#[derive(Debug, Arbitrary)]
struct Alert<'a> {
    cap_namespace: bool,
    sent: Word<'a>,
    status: Word<'a>,
    msg_type: Word<'a>,
    scope: Word<'a>,
    references: Option<Word<'a>>,
    infos: Vec<Info<'a>>,
}

#[derive(Debug, Arbitrary)]
struct Info<'a> {
    language: Word<'a>,
    event: Word<'a>,
    urgency: Word<'a>,
    severity: Word<'a>,
    certainty: Word<'a>,
    expires: Option<Word<'a>>,
    headline: Option<&'a str>,
    description: Option<&'a str>,
    instruction: Option<&'a str>,
    areas: Vec<Area<'a>>,
}

#[derive(Debug, Arbitrary)]
struct Area<'a> {
    polygons: Vec<Vec<(f64, f64)>>,
    written_polygons: Vec<&'a str>,
    circles: Vec<(f64, f64, f64)>,
    geocodes: Vec<(Word<'a>, Word<'a>)>,
}

const TIMES: &[&str] = &[
    "2026-11-29T10:00:00+01:00",
    "2026-11-29T18:00:00+01:00",
    "2026-11-29T10:00:00Z",
    "2026-02-30T10:00:00+01:00",
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn element(xml: &mut String, name: &str, text: &str) {
    xml.push_str(&format!("<{name}>{text}</{name}>"));
}

fn render(a: &Alert) -> String {
    let ns = if a.cap_namespace {
        "urn:oasis:names:tc:emergency:cap:1.2"
    } else {
        "urn:oasis:names:tc:emergency:cap:1.1"
    };
    let mut xml = format!("<alert xmlns=\"{ns}\">");
    element(&mut xml, "identifier", "urn:uuid:x");
    element(&mut xml, "sender", "centre@bealert");
    element(&mut xml, "sent", &a.sent.text(TIMES));
    element(
        &mut xml,
        "status",
        &a.status
            .text(&["Actual", "Exercise", "Test", "System", "Draft"]),
    );
    element(
        &mut xml,
        "msgType",
        &a.msg_type
            .text(&["Alert", "Update", "Cancel", "Ack", "Error"]),
    );
    element(
        &mut xml,
        "scope",
        &a.scope.text(&["Public", "Restricted", "Private"]),
    );
    if let Some(r) = &a.references {
        element(
            &mut xml,
            "references",
            &r.text(&["centre@bealert,urn:uuid:0190b2a4-0000-7000-8000-000000000000,2026-11-29T10:00:00+01:00"]),
        );
    }
    for i in &a.infos {
        xml.push_str("<info>");
        element(
            &mut xml,
            "language",
            &i.language
                .text(&["nl-BE", "fr-BE", "de-BE", "en", "en-US", "es-US"]),
        );
        element(&mut xml, "category", "Safety");
        element(&mut xml, "event", &i.event.text(&["Brand", "Flood"]));
        element(
            &mut xml,
            "urgency",
            &i.urgency
                .text(&["Immediate", "Expected", "Future", "Past", "Unknown"]),
        );
        element(
            &mut xml,
            "severity",
            &i.severity
                .text(&["Extreme", "Severe", "Moderate", "Minor", "Unknown"]),
        );
        element(
            &mut xml,
            "certainty",
            &i.certainty
                .text(&["Observed", "Likely", "Possible", "Unlikely", "Unknown"]),
        );
        if let Some(e) = &i.expires {
            element(&mut xml, "expires", &e.text(TIMES));
        }
        for (name, text) in [
            ("headline", i.headline),
            ("description", i.description),
            ("instruction", i.instruction),
        ] {
            if let Some(t) = text {
                element(&mut xml, name, &escape(t));
            }
        }
        for area in &i.areas {
            xml.push_str("<area>");
            element(&mut xml, "areaDesc", "here");
            for p in &area.polygons {
                let pairs: Vec<String> = p
                    .iter()
                    .chain(p.first())
                    .map(|(lat, lon)| format!("{lat},{lon}"))
                    .collect();
                element(&mut xml, "polygon", &pairs.join(" "));
            }
            for p in &area.written_polygons {
                element(&mut xml, "polygon", &escape(p));
            }
            for (lat, lon, r) in &area.circles {
                element(&mut xml, "circle", &format!("{lat},{lon} {r}"));
            }
            for (name, value) in &area.geocodes {
                xml.push_str("<geocode>");
                element(
                    &mut xml,
                    "valueName",
                    &name.text(&["NIS", "postcode", "canton", "arrondissement", "SAME"]),
                );
                element(&mut xml, "value", &value.text(&["21004", "1000", "006109"]));
                xml.push_str("</geocode>");
            }
            xml.push_str("</area>");
        }
        xml.push_str("</info>");
    }
    xml + "</alert>"
}

fuzz_target!(|alert: Alert| {
    calls::cap(render(&alert).as_bytes());
});
