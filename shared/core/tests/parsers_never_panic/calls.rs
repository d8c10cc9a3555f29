//! The calls a request makes into each parser of outside input, and what
//! follows when the parser accepts it; every `Err` must say why. Shared by
//! the property tests beside this file and the fuzz targets in `fuzz/`
//! (which include it by path), so both exercise the same code.

#![allow(dead_code)]

use bealert_core::alert::{AlertRequest, AlertSpec};
use bealert_core::area::{AreaRequest, ResolvedGeocode};
use bealert_core::cap_xml::{self, CapHeader, MAX_DEPTH, MAX_ELEMENTS};
use bealert_core::receipt::{
    ReceiptError, from_queue_message, from_ses_event, from_sms_voice_event, from_sns_sms_log,
    from_webhook,
};
use bealert_core::schedule::Schedule;
use bealert_core::signup::{country_code, phone_prefix};
use bealert_core::subscriber::{SubscriberInput, normalise_email, normalise_phone};
use bealert_core::zone::Zone;
use bealert_core::{ValidationErrors, network};
use serde_json::Value;

/// An `Err` names at least one problem, each with a message.
pub fn says_why<T>(r: &Result<T, ValidationErrors>) {
    if let Err(e) = r {
        assert!(!e.0.is_empty(), "an error without a reason");
        assert!(e.0.iter().all(|f| !f.message.is_empty()), "{e:?}");
    }
}

fn receipt_says_why<T>(r: &Result<T, ReceiptError>) {
    if let Err(e) = r {
        assert!(!e.0.is_empty(), "a receipt error without a reason");
    }
}

/// `POST /v1/alerts` as CAP (`application/cap+xml`): the import, the alert
/// it makes, and that alert exported as CAP again. `Ok` when the alert
/// was valid.
pub fn cap(bytes: &[u8]) -> bool {
    let imported = cap_xml::import(bytes);
    says_why(&imported);
    let Ok(imported) = imported else {
        return false;
    };
    // The app looks geocodes up in the reference geography: here every
    // one is a small square in Brussels.
    let square = vec![vec![
        [4.35, 50.84],
        [4.36, 50.84],
        [4.36, 50.85],
        [4.35, 50.85],
        [4.35, 50.84],
    ]];
    let resolved: Vec<ResolvedGeocode> = imported
        .request
        .area
        .iter()
        .flat_map(|a| &a.geocodes)
        .map(|_| Ok(vec![square.clone()]))
        .collect();
    let spec = imported.request.validate_with(&resolved);
    says_why(&spec);
    spec.map(|spec| export(&spec)).is_ok()
}

/// Any XML document as the CAP import reads it: the streaming scan that
/// comes before the deserializer keeps nothing deeper than [`MAX_DEPTH`]
/// nor more than [`MAX_ELEMENTS`] elements. The depth it had, if it was
/// read.
pub fn parse(bytes: &[u8]) -> Result<usize, String> {
    let outline = cap_xml::scan_document(bytes)?;
    let (depth, elements) = (outline.depth, outline.elements);
    assert!(depth <= MAX_DEPTH, "a document {depth} deep was read");
    assert!(elements <= MAX_ELEMENTS, "{elements} elements were read");
    assert!(depth >= 1 && elements >= depth, "{outline:?}");
    Ok(depth)
}

/// A valid alert as the CAP feed publishes it.
fn export(spec: &AlertSpec) {
    let header = CapHeader {
        identifier: "urn:uuid:x".into(),
        sender: "centre@bealert".into(),
        sender_name: "centre".into(),
        sent_ms: 1_795_942_800_000,
        references: None,
    };
    let xml = cap_xml::to_xml(&header, spec);
    assert!(xml.contains("<alert"), "{xml}");
}

/// `POST /v1/alerts` as JSON (its area is GeoJSON, circles and geocodes),
/// and an area alone as the zone preview reads it. Whether the alert was
/// valid.
pub fn area(bytes: &[u8]) -> bool {
    let mut valid = false;
    let request = AlertRequest::from_json(bytes);
    says_why(&request);
    if let Ok(request) = request {
        let _ = request.geometry_work();
        let spec = request.validate();
        says_why(&spec);
        if let Ok(spec) = spec {
            export(&spec);
            valid = true;
        }
    }
    area_only(bytes);
    valid
}

/// An area request alone (`{"geojson": …, "circles": …}`).
pub fn area_only(bytes: &[u8]) -> bool {
    let area = bealert_core::error::parse_json::<AreaRequest>(bytes);
    says_why(&area);
    let Ok(area) = area else {
        return false;
    };
    let _ = area.work();
    let valid = area.validate("area");
    says_why(&valid);
    valid
        .map(|valid| {
            let _ = Zone::new(&valid).check_size();
        })
        .is_ok()
}

/// `PUT /v1/networks/{name}/cells`. Whether the upload was accepted.
pub fn cells(bytes: &[u8]) -> bool {
    let upload = network::parse_cells(bytes);
    says_why(&upload);
    upload.is_ok()
}

/// A file of administrative units (`bealert geo load FILE`): a GeoJSON
/// FeatureCollection of boundaries with their codes, levels and names.
/// Whether it was read.
pub fn units(bytes: &[u8]) -> bool {
    let read = bealert_core::geography::parse_units(bytes);
    says_why(&read);
    read.is_ok()
}

/// Every way a receipt comes in: a webhook body, a queue message (bare or
/// in an SNS notification), an SNS SMS log line, SES and SMS-voice events.
/// Whether any of them read a receipt.
pub fn receipts(bytes: &[u8]) -> bool {
    let mut read = false;
    let webhook = from_webhook("aggregator", bytes);
    receipt_says_why(&webhook);
    read |= webhook.is_ok_and(|r| !r.is_empty());
    if let Ok(text) = std::str::from_utf8(bytes) {
        let queued = from_queue_message(text);
        receipt_says_why(&queued);
        read |= matches!(queued, Ok(Some(_)));
        let log = from_sns_sms_log(text);
        receipt_says_why(&log);
        read |= log.is_ok();
    }
    if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
        let ses = from_ses_event(&v);
        receipt_says_why(&ses);
        let voice = from_sms_voice_event(&v);
        receipt_says_why(&voice);
        read |= matches!(ses, Ok(Some(_))) || matches!(voice, Ok(Some(_)));
    }
    read
}

/// A subscriber as the API and the signup page submit it, and the checks
/// the signup makes on the contacts the form gives. Whether it was valid.
pub fn signup(bytes: &[u8]) -> bool {
    if let Ok(text) = std::str::from_utf8(bytes) {
        contact(text);
    }
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
        return false;
    };
    let input = SubscriberInput::from_json(&v);
    says_why(&input);
    let Ok(input) = input else {
        return false;
    };
    let profile = input.validate();
    says_why(&profile);
    profile.is_ok()
}

/// A phone number or e-mail address as typed.
pub fn contact(text: &str) {
    if let Ok(phone) = normalise_phone(text) {
        assert!(country_code(&phone).is_some(), "{phone}");
        assert!(phone.starts_with(phone_prefix(&phone)));
    }
    let _ = normalise_email(text);
    let _ = country_code(text);
    assert!(text.starts_with(phone_prefix(text)));
}

/// A drill's schedule, and its next run from any time. Whether it parsed.
pub fn schedule(text: &str, after: i64, origin: i64) -> bool {
    match Schedule::parse(text) {
        Ok(s) => {
            let _ = s.next_after(after, origin);
            let _ = s.next_after(1_795_942_800_000, 1_795_000_000_000);
            true
        }
        Err(e) => {
            assert!(!e.is_empty());
            false
        }
    }
}
