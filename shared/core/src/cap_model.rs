//! CAP 1.2 as types, in the shape of the `oasiscap` crate: [`Alert`],
//! [`Info`], [`Resource`], [`Area`] and the [`ValuePair`]s (`eventCode`,
//! `parameter`, `geocode`), with the elements' names and order as in the
//! OASIS schema, (de)serialized by quick-xml's serde support.
//!
//! The structure is typed; the leaves are the text as written (trimmed by
//! the reader), so that the import ([`crate::cap_xml::import`]) can say
//! what is wrong with each value, naming its element, rather than refuse
//! the whole document on the first odd one. Every element is optional
//! when read (a missing required one is blank or empty), for the same
//! reason. [`Alert::to_xml`] writes the declaration, the CAP namespace on
//! the root and every element given, in the schema's order.
//!
//! Reading is [`crate::cap_xml::read`]: the document's bounds are checked
//! by a streaming scan first ([`crate::cap_xml::scan_document`]), and
//! only then deserialized here.

use serde::{Deserialize, Serialize};

/// A CAP `alert`: the message, with one [`Info`] per language.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename = "alert", rename_all = "camelCase", default)]
pub struct Alert {
    /// The namespace, as an attribute: [`crate::cap_xml::NAMESPACE`].
    #[serde(rename = "@xmlns")]
    pub xmlns: String,
    pub identifier: String,
    pub sender: String,
    pub sent: String,
    pub status: String,
    pub msg_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restriction: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addresses: Option<String>,
    #[serde(rename = "code", skip_serializing_if = "Vec::is_empty")]
    pub codes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub references: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incidents: Option<String>,
    #[serde(rename = "info", skip_serializing_if = "Vec::is_empty")]
    pub infos: Vec<Info>,
}

/// A CAP `info`: the alert in one language.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Info {
    /// CAP's default is `en-US`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(rename = "category", skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    pub event: String,
    #[serde(rename = "responseType", skip_serializing_if = "Vec::is_empty")]
    pub response_types: Vec<String>,
    pub urgency: String,
    pub severity: String,
    pub certainty: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    #[serde(rename = "eventCode", skip_serializing_if = "Vec::is_empty")]
    pub event_codes: Vec<EventCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub onset: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instruction: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    #[serde(rename = "parameter", skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Parameter>,
    #[serde(rename = "resource", skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
    #[serde(rename = "area", skip_serializing_if = "Vec::is_empty")]
    pub areas: Vec<Area>,
}

/// A CAP `resource`: a file that goes with the info (an image, a map).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Resource {
    pub resource_desc: String,
    pub mime_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deref_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// A CAP `area`: where the info applies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Area {
    pub area_desc: String,
    /// `lat,lon lat,lon …`, the first point repeated last.
    #[serde(rename = "polygon", skip_serializing_if = "Vec::is_empty")]
    pub polygons: Vec<String>,
    /// `lat,lon radius` (km).
    #[serde(rename = "circle", skip_serializing_if = "Vec::is_empty")]
    pub circles: Vec<String>,
    #[serde(rename = "geocode", skip_serializing_if = "Vec::is_empty")]
    pub geocodes: Vec<Geocode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub altitude: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<String>,
}

/// CAP's `valueName` and `value`, as `eventCode`, `parameter` and `geocode`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ValuePair {
    pub value_name: String,
    pub value: String,
}

/// A CAP `eventCode`.
pub type EventCode = ValuePair;
/// A CAP `parameter`.
pub type Parameter = ValuePair;
/// A CAP `geocode`.
pub type Geocode = ValuePair;

impl Alert {
    /// The CAP 1.2 document: the XML declaration, then the alert indented
    /// by two spaces, text escaped as quick-xml's writer does (`<>&'"`).
    pub fn to_xml(&self) -> String {
        use quick_xml::se::{QuoteLevel, Serializer};
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let mut ser = Serializer::new(&mut xml);
        ser.indent(' ', 2).set_quote_level(QuoteLevel::Full);
        // Strings into a String: nothing here can fail.
        match self.serialize(ser) {
            Ok(_) => xml,
            Err(_) => String::new(),
        }
    }
}

/// The text of an element, trimmed; `None` when blank (as CAP reads a
/// blank required element: missing).
pub fn given(text: &str) -> Option<&str> {
    Some(text.trim()).filter(|t| !t.is_empty())
}

/// [`given`] for an optional element.
pub fn given_opt(text: &Option<String>) -> Option<&str> {
    text.as_deref().and_then(given)
}
