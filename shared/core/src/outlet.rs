//! Public channels: the outlets that carry an alert to the public beyond
//! registered phones — social media accounts, siren groups and digital
//! sign networks — and what an alert asks of them.
//!
//! Each outlet is one target delivery per alert ([`crate::broadcast::Target`]),
//! with its own queue, rate limit and status.

use crate::cap::{MsgType, Status};
use crate::error::Collector;
use crate::operator::Jurisdiction;
use crate::{Language, ValidationErrors};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The kinds of public channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutletKind {
    /// A social media account, posted to through a webhook.
    Social,
    /// A group of sirens behind a siren controller.
    Siren,
    /// A network of digital signs that takes CAP messages.
    Sign,
}

impl OutletKind {
    pub const ALL: [OutletKind; 3] = [OutletKind::Social, OutletKind::Siren, OutletKind::Sign];

    pub fn code(self) -> &'static str {
        match self {
            OutletKind::Social => "social",
            OutletKind::Siren => "siren",
            OutletKind::Sign => "sign",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }
}

impl fmt::Display for OutletKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// What a siren group sounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    /// The alert signal (rising and falling): go inside, close windows, listen.
    Alert,
    /// The end of the danger (one continuous tone).
    AllClear,
    /// The test signal of exercises and routine tests.
    Test,
    /// Silence now: the alert was cancelled.
    Stop,
}

impl Tone {
    pub fn code(self) -> &'static str {
        match self {
            Tone::Alert => "alert",
            Tone::AllClear => "all_clear",
            Tone::Test => "test",
            Tone::Stop => "stop",
        }
    }
}

/// A social target's length limit when none is given.
pub const DEFAULT_MAX_CHARS: usize = 500;

/// Known social targets: their length limits (characters).
pub const PRESETS: [(&str, usize); 4] = [
    ("mastodon", 500),
    ("x", 280),
    ("bluesky", 300),
    ("facebook", 63_206),
];

/// The template a social target uses when none is given.
pub const DEFAULT_TEMPLATE: &str = "{event} – {place}\n{text}\n{link}";

/// The placeholders of a social template.
pub const PLACEHOLDERS: [&str; 6] = ["event", "place", "text", "link", "sender", "language"];

/// `POST /v1/outlets`: one public channel outlet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outlet {
    /// 2 to 32 lowercase letters, digits or hyphens (`mastodon-be`).
    pub name: String,
    pub kind: OutletKind,
    /// Where bealert posts: an `https://` URL to a public address, or `sim`
    /// for the built-in simulator (embedded home only). The bearer token,
    /// if any, is `BEALERT_OUTLET_TOKEN_<NAME>` in the environment.
    pub url: String,
    /// Social and sign: whose outlet it is — `national` (the default),
    /// `province:<NIS>` or `municipality:<NIS>`. An alert uses it only when
    /// its operator's jurisdiction covers this one (a municipality's alert
    /// never goes to a national account). Sirens have none: their position
    /// decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<Jurisdiction>,
    /// At most this many messages per minute to this outlet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_minute: Option<u32>,
    /// Social: `mastodon`, `x`, `bluesky` or `facebook` (sets `max_chars`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// Social: the post, with `{event}`, `{place}`, `{text}`, `{link}`,
    /// `{sender}` and `{language}` filled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Social: the longest post, in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_chars: Option<usize>,
    /// Social: the languages posted (one post each); left out, every
    /// language of the alert.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub languages: Vec<Language>,
    /// Siren: where the group stands, `[lon, lat]`: it sounds only for a
    /// zone that holds this point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<[f64; 2]>,
    /// Siren: how many sirens the group has (what acknowledgements are
    /// counted against).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sirens: Option<u32>,
}

impl Outlet {
    /// Checks an outlet as given; fills in a preset's length limit.
    pub fn validate(mut self) -> Result<Outlet, ValidationErrors> {
        let mut errors = Collector::default();
        if let Err(e) = validate_outlet_name(&self.name) {
            errors.push("name", e);
        }
        let url_ok = self.url == "sim"
            || ((self.url.starts_with("https://") || self.url.starts_with("http://"))
                && self.url.len() > 8
                && !self.url.chars().any(char::is_whitespace));
        if !url_ok {
            errors.push(
                "url",
                "give the outlet's https URL, e.g. https://social.example/api/post, or sim for the built-in simulator",
            );
        }
        if self.per_minute == Some(0) {
            errors.push(
                "per_minute",
                "give at least 1 message per minute, or leave per_minute out for no limit",
            );
        }
        let social_only = |errors: &mut Collector, field: &str, given: bool| {
            if given && self.kind != OutletKind::Social {
                errors.push(field, format!("{field} is for social outlets only"));
            }
        };
        social_only(&mut errors, "preset", self.preset.is_some());
        social_only(&mut errors, "template", self.template.is_some());
        social_only(&mut errors, "max_chars", self.max_chars.is_some());
        social_only(&mut errors, "languages", !self.languages.is_empty());
        match (self.kind, &self.jurisdiction) {
            (OutletKind::Siren, Some(_)) => errors.push(
                "jurisdiction",
                "sirens have no jurisdiction: a siren group sounds only for zones that hold its position",
            ),
            (OutletKind::Siren, None) => {}
            (_, None) => self.jurisdiction = Some(Jurisdiction::National),
            (_, Some(_)) => {}
        }
        if self.kind != OutletKind::Siren {
            if self.position.is_some() {
                errors.push("position", "position is for siren outlets only");
            }
            if self.sirens.is_some() {
                errors.push("sirens", "sirens is for siren outlets only");
            }
        }
        match self.kind {
            OutletKind::Social => {
                if let Some(p) = &self.preset {
                    match PRESETS.iter().find(|(n, _)| n == p) {
                        Some((_, max)) => {
                            if self.max_chars.is_none() {
                                self.max_chars = Some(*max);
                            }
                        }
                        None => errors.push(
                            "preset",
                            format!(
                                "unknown preset {p:?}; use {}",
                                PRESETS.map(|(n, _)| n).join(", ")
                            ),
                        ),
                    }
                }
                if let Some(t) = &self.template
                    && let Err(e) = check_template(t)
                {
                    errors.push("template", e);
                }
                match self.max_chars {
                    Some(m) if !(40..=100_000).contains(&m) => {
                        errors.push("max_chars", "give 40 to 100000 characters")
                    }
                    _ => {}
                }
            }
            OutletKind::Siren => {
                match self.position {
                    None => errors.push(
                        "position",
                        "a siren group needs its position, [lon, lat], e.g. [4.30, 51.23]",
                    ),
                    Some([lon, lat])
                        if !(2.0..=7.0).contains(&lon) || !(49.0..=52.0).contains(&lat) =>
                    {
                        errors.push(
                            "position",
                            format!(
                                "[{lon}, {lat}] is not in Belgium; give [lon, lat], longitude first"
                            ),
                        )
                    }
                    Some(_) => {}
                }
                if self.sirens == Some(0) {
                    errors.push("sirens", "a siren group has at least 1 siren");
                }
            }
            OutletKind::Sign => {}
        }
        errors.finish(self)
    }

    /// Whose outlet it is: national unless registered for a province or a
    /// municipality (outlets stored before jurisdictions are national).
    pub fn jurisdiction(&self) -> Jurisdiction {
        self.jurisdiction.clone().unwrap_or(Jurisdiction::National)
    }

    /// A social outlet's length limit.
    pub fn max_chars(&self) -> usize {
        self.max_chars.unwrap_or(DEFAULT_MAX_CHARS)
    }

    /// The delivery target of this outlet.
    pub fn target(&self) -> crate::broadcast::Target {
        crate::broadcast::Target::outlet(self.kind, &self.name)
    }
}

/// Outlet names: like network names.
pub fn validate_outlet_name(name: &str) -> Result<(), String> {
    crate::network::validate_network_name(name)
        .map_err(|_| format!("outlet name {name:?} must be 2 to 32 lowercase letters, digits or hyphens, starting with a letter, e.g. \"mastodon-be\""))
}

fn check_template(t: &str) -> Result<(), String> {
    if t.trim().is_empty() || t.chars().count() > 1000 {
        return Err("give a template of 1 to 1000 characters".into());
    }
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err("a { has no closing }".into());
        };
        let name = &after[..close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "unknown placeholder {{{name}}}; use {}",
                PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ")
            ));
        }
        rest = &after[close + 1..];
    }
    if !t.contains("{text}") {
        return Err("the template must hold {text}, the alert's message".into());
    }
    Ok(())
}

/// What fills a social template.
#[derive(Debug, Clone, Default)]
pub struct PostFields<'a> {
    pub event: &'a str,
    pub place: &'a str,
    pub text: &'a str,
    pub link: &'a str,
    pub sender: &'a str,
    pub language: &'a str,
}

/// A social post from a template, at most `max_chars` characters: when
/// too long, the alert's text is shortened (ending in `…`), never the rest
/// (the link and the sender stay whole). Lines left empty by a missing
/// field are dropped.
pub fn render_post(template: &str, fields: &PostFields<'_>, max_chars: usize) -> String {
    let fill = |text: &str| {
        let mut out = template.to_string();
        for (name, value) in [
            ("event", fields.event),
            ("place", fields.place),
            ("link", fields.link),
            ("sender", fields.sender),
            ("language", fields.language),
            ("text", text),
        ] {
            out = out.replace(&format!("{{{name}}}"), value);
        }
        out.lines()
            .map(|l| l.trim_end().trim_end_matches(['–', '-']).trim_end())
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let full = fill(fields.text);
    let len = full.chars().count();
    if len <= max_chars {
        return full;
    }
    let text_len = fields.text.chars().count();
    let keep = text_len.saturating_sub(len - max_chars + 1);
    let mut short: String = fields.text.chars().take(keep).collect();
    short = short.trim_end().to_string();
    short.push('…');
    let out = fill(&short);
    if out.chars().count() <= max_chars {
        out
    } else {
        // The rest alone is too long: cut the whole post.
        let mut cut: String = out.chars().take(max_chars.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// `"public"` in `POST /v1/alerts`: the public channels of an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PublicRequest {
    /// Social outlets by name; left out, every social outlet; `[]` none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub social: Option<Vec<String>>,
    /// Sign networks by name; left out, every sign network; `[]` none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signs: Option<Vec<String>>,
    /// Siren groups to sound: only those named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sirens: Option<SirenRequest>,
}

/// The sirens an alert sounds, and the tone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SirenRequest {
    pub groups: Vec<String>,
    pub tone: Tone,
}

/// The validated public channels of an alert: outlets named (the app
/// fills in every outlet of a kind the request left out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PublicSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub social: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sirens: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tone: Option<Tone>,
    /// The kinds whose outlets the request left out: every outlet of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub every: Vec<OutletKind>,
}

impl PublicSpec {
    /// The targets of the alert's public channels.
    pub fn targets(&self) -> Vec<crate::broadcast::Target> {
        use crate::broadcast::Target;
        let mut out: Vec<Target> = Vec::new();
        out.extend(self.social.iter().map(|n| Target::Social(n.clone())));
        out.extend(self.signs.iter().map(|n| Target::Sign(n.clone())));
        out.extend(self.sirens.iter().map(|n| Target::Siren(n.clone())));
        out
    }
}

/// Checks `"public"` against the rest of the alert (`status`, `scope`).
pub fn validate_public(
    request: &PublicRequest,
    status: Status,
    public_scope: bool,
    errors: &mut Collector,
) -> PublicSpec {
    if !public_scope {
        errors.push(
            "public",
            "public channels are for alerts with scope Public; leave public out of a Restricted or Private alert",
        );
    }
    let mut spec = PublicSpec::default();
    let names = |path: &str, list: &Option<Vec<String>>, errors: &mut Collector| {
        let mut l = list.clone().unwrap_or_default();
        for (i, n) in l.iter().enumerate() {
            if let Err(e) = validate_outlet_name(n) {
                errors.push(format!("{path}[{i}]"), e);
            }
        }
        l.sort();
        l.dedup();
        l
    };
    spec.social = names("public.social", &request.social, errors);
    spec.signs = names("public.signs", &request.signs, errors);
    for (kind, given) in [
        (OutletKind::Social, &request.social),
        (OutletKind::Sign, &request.signs),
    ] {
        if given.is_none() {
            spec.every.push(kind);
        }
    }
    if let Some(s) = &request.sirens {
        if s.groups.is_empty() {
            errors.push(
                "public.sirens.groups",
                "name at least one siren group, or leave sirens out",
            );
        }
        spec.sirens = names("public.sirens.groups", &Some(s.groups.clone()), errors);
        match (status, s.tone) {
            (Status::Actual, Tone::Test) => errors.push(
                "public.sirens.tone",
                "an Actual alert sounds alert or all_clear; the test tone is for Exercise and Test alerts",
            ),
            (Status::Actual, _) => {}
            (_, Tone::Test) => {}
            (other, t) => errors.push(
                "public.sirens.tone",
                format!(
                    "{} alert sounds only the test tone, never {}: people must not take a drill for a real alert",
                    if other == Status::Exercise { "an Exercise" } else { "a Test" },
                    t.code()
                ),
            ),
        }
        if s.tone == Tone::Stop {
            errors.push(
                "public.sirens.tone",
                "stop silences sirens when an alert is cancelled; cancel the alert instead",
            );
        }
        spec.tone = Some(s.tone);
    }
    spec
}

/// The tone a siren group sounds for an alert: a cancel stops it, an
/// all-clear sounds the all-clear, an update sounds nothing new.
pub fn siren_tone(spec: &PublicSpec, msg_type: MsgType, all_clear: bool) -> Option<Tone> {
    match msg_type {
        MsgType::Cancel => Some(Tone::Stop),
        _ if all_clear => Some(Tone::AllClear),
        MsgType::Update => None,
        _ => spec.tone,
    }
}

/// One outlet's texts by language.
pub type Texts = BTreeMap<Language, String>;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn outlet(v: serde_json::Value) -> Result<Outlet, String> {
        serde_json::from_value::<Outlet>(v)
            .map_err(|e| e.to_string())?
            .validate()
            .map_err(|e| e.to_string())
    }

    #[test]
    fn outlets_are_checked_and_presets_set_the_length() {
        let o = outlet(json!({"name": "x-be", "kind": "social", "url": "https://x.example/post", "preset": "x"})).unwrap();
        assert_eq!(o.max_chars(), 280);
        let e = outlet(json!({"name": "Bad", "kind": "social", "url": "ftp://x", "preset": "myspace", "template": "{title}"})).unwrap_err();
        for want in ["name", "url", "myspace", "{title}"] {
            assert!(e.contains(want), "{want} in {e}");
        }
        let e = outlet(json!({"name": "port", "kind": "siren", "url": "sim"})).unwrap_err();
        assert!(e.contains("position"), "{e}");
        let e =
            outlet(json!({"name": "port", "kind": "siren", "url": "sim", "position": [51.2, 4.3]}))
                .unwrap_err();
        assert!(e.contains("longitude first"), "{e}");
        assert!(outlet(json!({"name": "port", "kind": "siren", "url": "sim", "position": [4.3, 51.2], "sirens": 12})).is_ok());
        let e = outlet(json!({"name": "vms", "kind": "sign", "url": "sim", "max_chars": 80}))
            .unwrap_err();
        assert!(e.contains("social outlets only"), "{e}");
    }

    #[test]
    fn social_and_sign_outlets_are_national_unless_registered_for_a_territory() {
        let stored_before: Outlet =
            serde_json::from_value(json!({"name": "x-be", "kind": "social", "url": "sim"}))
                .unwrap();
        assert_eq!(stored_before.jurisdiction(), Jurisdiction::National);
        let o = outlet(json!({"name": "x-be", "kind": "social", "url": "sim"})).unwrap();
        assert_eq!(o.jurisdiction, Some(Jurisdiction::National));
        let o = outlet(json!({"name": "vms-ixl", "kind": "sign", "url": "sim", "jurisdiction": "municipality:21009"})).unwrap();
        assert_eq!(o.jurisdiction(), Jurisdiction::Municipality("21009".into()));
        assert_eq!(
            serde_json::to_value(&o).unwrap()["jurisdiction"],
            "municipality:21009"
        );
        let e = outlet(json!({"name": "port", "kind": "siren", "url": "sim", "position": [4.3, 51.2], "jurisdiction": "national"})).unwrap_err();
        assert!(e.contains("position"), "{e}");
        let e = outlet(json!({"name": "x-be", "kind": "social", "url": "sim", "jurisdiction": "province:12345"})).unwrap_err();
        assert!(e.contains("10000 (Antwerpen)"), "{e}");
    }

    #[test]
    fn a_post_fits_its_limit_by_shortening_the_text_only() {
        let fields = PostFields {
            event: "Chemical leak",
            place: "Zwijndrecht",
            text: &"Close windows and doors. ".repeat(30),
            link: "https://alerts.example/a/1",
            sender: "Crisiscentrum",
            language: "en",
        };
        let post = render_post(DEFAULT_TEMPLATE, &fields, 280);
        assert_eq!(post.chars().count(), 280, "{post}");
        assert!(post.starts_with("Chemical leak – Zwijndrecht\nClose windows"));
        assert!(post.ends_with("…\nhttps://alerts.example/a/1"), "{post}");
        // Short enough: as it is. A missing place leaves no dangling dash.
        let short = PostFields {
            text: "Stay inside.",
            place: "",
            ..fields.clone()
        };
        assert_eq!(
            render_post(DEFAULT_TEMPLATE, &short, 280),
            "Chemical leak\nStay inside.\nhttps://alerts.example/a/1"
        );
        // Even a template longer than the limit gives a post within it.
        let long = render_post(&format!("{}{{text}}", "x".repeat(100)), &fields, 50);
        assert_eq!(long.chars().count(), 50);
    }

    #[test]
    fn sirens_sound_the_test_tone_only_in_drills() {
        let req = |tone| PublicRequest {
            sirens: Some(SirenRequest {
                groups: vec!["port".into()],
                tone,
            }),
            ..PublicRequest::default()
        };
        let check = |status, tone, public| {
            let mut e = Collector::default();
            let spec = validate_public(&req(tone), status, public, &mut e);
            (spec, e.finish(()).err().map(|e| e.to_string()))
        };
        let (spec, e) = check(Status::Actual, Tone::Alert, true);
        assert!(e.is_none());
        assert_eq!(spec.every, vec![OutletKind::Social, OutletKind::Sign]);
        assert_eq!(spec.sirens, vec!["port".to_string()]);
        assert!(
            check(Status::Exercise, Tone::Alert, true)
                .1
                .unwrap()
                .contains("never alert")
        );
        assert!(check(Status::Actual, Tone::Test, true).1.is_some());
        assert!(check(Status::Exercise, Tone::Test, true).1.is_none());
        assert!(
            check(Status::Actual, Tone::Alert, false)
                .1
                .unwrap()
                .contains("scope Public")
        );
        assert_eq!(siren_tone(&spec, MsgType::Cancel, false), Some(Tone::Stop));
        assert_eq!(
            siren_tone(&spec, MsgType::Update, true),
            Some(Tone::AllClear)
        );
        assert_eq!(siren_tone(&spec, MsgType::Update, false), None);
        assert_eq!(siren_tone(&spec, MsgType::Alert, false), Some(Tone::Alert));
    }
}
