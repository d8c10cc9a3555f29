//! Alerts: the request an operator sends, its validation, and its life cycle.

use crate::area::{Area, AreaRequest};
use crate::broadcast::{BroadcastMode, BroadcastRequest, BroadcastSpec, cb_problem};
use crate::cap::{Certainty, MsgType, Scope, Severity, Status, Urgency};
use crate::channel::parse_channels;
use crate::error::{Collector, ValidationErrors};
use crate::estimate::Estimate;
use crate::lifecycle::FollowUp;
use crate::message::{Messages, render};
use crate::sms::{SmsEncoding, analyse, first_non_gsm};
use crate::subscriber::validate_group;
use crate::zone::Zone;
use crate::{Channel, ChannelSet, Language};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The most SMS segments one alert text may need.
pub const MAX_SMS_SEGMENTS: usize = 6;
/// The longest text accepted for any channel, in characters.
pub const MAX_TEXT_CHARS: usize = 4000;

/// `POST /v1/alerts` body (api.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRequest {
    pub status: Status,
    pub event: String,
    pub severity: Severity,
    pub urgency: Urgency,
    pub certainty: Certainty,
    pub messages: BTreeMap<String, String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::error::present"
    )]
    pub area: Option<AreaRequest>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::error::present"
    )]
    pub channels: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Alert-SMS: every phone in the zone, through the mobile networks.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::error::present"
    )]
    pub broadcast: Option<BroadcastRequest>,
    /// CAP `expires`: RFC 3339 with an offset; sending stops on every
    /// channel once it passes.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::error::present"
    )]
    pub expires: Option<String>,
    /// CAP `scope`: Public (default), Restricted or Private.
    #[serde(default, skip_serializing_if = "Scope::is_public")]
    pub scope: Scope,
    /// The place as people know it ("Zwijndrecht, port of Antwerp"): the
    /// e-mail subject names it beside the event, and the CAP `areaDesc`
    /// starts with it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::error::present"
    )]
    pub place: Option<String>,
    /// Public channels: social media, digital signs, sirens.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::error::present"
    )]
    pub public: Option<crate::outlet::PublicRequest>,
}

/// A validated alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertSpec {
    pub status: Status,
    pub event: String,
    pub severity: Severity,
    pub urgency: Urgency,
    pub certainty: Certainty,
    pub messages: Messages,
    pub area: Area,
    pub channels: ChannelSet,
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broadcast: Option<BroadcastSpec>,
    /// The Alert-SMS estimate when the alert was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<Estimate>,
    /// CAP `msgType`: `Update` and `Cancel` follow up [`Self::references`].
    #[serde(default, skip_serializing_if = "MsgType::is_alert")]
    pub msg_type: MsgType,
    /// CAP `references`: the alert this one updates, cancels or clears.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub references: Option<crate::AlertId>,
    /// CAP `responseType` `AllClear`: the danger is over.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all_clear: bool,
    /// An update that changed the zone: it goes to whoever is in its own
    /// zone, resolved anew, not to the original's audience.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub own_zone: bool,
    /// CAP `expires` (Unix ms): nothing of the alert leaves after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
    #[serde(default, skip_serializing_if = "Scope::is_public")]
    pub scope: Scope,
    /// Each language's headline (CAP `headline`): its e-mail subject.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headlines: BTreeMap<Language, String>,
    /// CAP `references` of an imported Update that follows up a message
    /// bealert did not send (exported back as given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap_references: Option<String>,
    /// Who issued it and when (`Crisiscentrum, 29/11/2026 10:00`): every
    /// message ends with it, so a citizen can tell it from a forgery and
    /// check it on the public page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// The place as people know it (see [`AlertRequest::place`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
    /// The public channels (outlets named; see [`crate::outlet::PublicSpec`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<crate::outlet::PublicSpec>,
}

impl AlertSpec {
    /// Signs the alert with its issuing authority and Belgian time (Unix
    /// ms), and checks that every text still fits its channels.
    pub fn sign(&mut self, authority: &str, at: i64) -> Result<(), ValidationErrors> {
        self.signature = Some(format!("{authority}, {}", crate::cap::brussels_short(at)));
        let mut errors = Collector::default();
        check_texts(self, &mut errors);
        errors.finish(())
    }

    /// Whether the alert's `expires` has passed at `now` (Unix ms).
    pub fn expired_at(&self, now: i64) -> bool {
        self.expires.is_some_and(|e| now >= e)
    }
}

/// Where an alert is in its life (see [`crate::lifecycle`] for the moves).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Prepared, not yet handed over: nothing is sent.
    Draft,
    /// Waiting for a second person's approval: nothing is sent.
    AwaitingApproval,
    /// Accepted; its zone is being turned into recipients.
    Resolving,
    /// Every recipient is known; deliveries are under way.
    Sending,
    /// Every delivery has a final outcome and at least one was sent (or
    /// the zone held nobody to send to).
    Sent,
    /// Every delivery has a final outcome and none could be sent, or the
    /// alert could not be resolved at all.
    Failed,
    /// Rejected by an approver, or cancelled: nothing more is sent.
    Cancelled,
    /// Its approval wait or its `expires` passed: nothing more is sent.
    Expired,
}

impl AlertState {
    pub const ALL: [AlertState; 8] = [
        AlertState::Draft,
        AlertState::AwaitingApproval,
        AlertState::Resolving,
        AlertState::Sending,
        AlertState::Sent,
        AlertState::Failed,
        AlertState::Cancelled,
        AlertState::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Draft => "draft",
            AlertState::AwaitingApproval => "awaiting_approval",
            AlertState::Resolving => "resolving",
            AlertState::Sending => "sending",
            AlertState::Sent => "sent",
            AlertState::Failed => "failed",
            AlertState::Cancelled => "cancelled",
            AlertState::Expired => "expired",
        }
    }

    /// Sent, failed, cancelled or expired: nothing more will happen to the
    /// alert.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            AlertState::Sent | AlertState::Failed | AlertState::Cancelled | AlertState::Expired
        )
    }

    /// Whether anything of the alert may be sent now.
    pub fn may_send(self) -> bool {
        matches!(self, AlertState::Resolving | AlertState::Sending)
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl AlertRequest {
    /// How much geometry validating this alert means (see [`AreaRequest::work`]).
    pub fn geometry_work(&self) -> usize {
        self.area.as_ref().map_or(0, AreaRequest::work)
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, ValidationErrors> {
        crate::error::parse_json(bytes)
    }

    pub fn validate(self) -> Result<AlertSpec, ValidationErrors> {
        self.validate_with(&[])
    }

    /// [`AlertRequest::validate`], with the area's geocodes resolved by the caller.
    pub fn validate_with(
        self,
        geocodes: &[crate::area::ResolvedGeocode],
    ) -> Result<AlertSpec, ValidationErrors> {
        let mut errors = Collector::default();

        // Lengths count what was sent (as the OpenAPI document's maxLength does).
        let event = self.event.trim().to_string();
        if event.is_empty() || self.event.chars().count() > 200 {
            errors.push(
                "event",
                "describe the event in 1 to 200 characters, e.g. \"Chemical leak\"",
            );
        }

        let channels = match &self.channels {
            None => ChannelSet::ALL,
            Some(names) => {
                if names.is_empty() && self.broadcast.is_none() && self.public.is_none() {
                    errors.push("channels", "choose at least one of sms, voice, email, or leave channels out for all three (an empty list needs a broadcast or public channels)");
                }
                parse_channels("channels", names, &mut errors)
            }
        };

        let messages = parse_messages(&self.messages, true, &mut errors);

        let area = match &self.area {
            Some(a) => match a.validate_with("area", geocodes) {
                Ok(area) => area,
                Err(e) => {
                    errors.extend(e);
                    Area::default()
                }
            },
            None => Area::default(),
        };
        let area_given = self.area.as_ref().is_some_and(|a| !a.is_empty());
        if !area_given && self.groups.is_empty() {
            errors.push(
                "area",
                "give an area (geojson, circles or geocodes), groups, or both",
            );
        }
        if !area.is_empty()
            && let Err(e) = Zone::new(&area).check_size()
        {
            errors.push("area", e.to_string());
        }

        for (i, g) in self.groups.iter().enumerate() {
            if let Err(msg) = validate_group(g) {
                errors.push(format!("groups[{i}]"), msg);
            }
        }

        let broadcast = self.broadcast.as_ref().map(|b| {
            if !area_given {
                errors.push(
                    "broadcast",
                    "a broadcast reaches the phones in an area: give an area too",
                );
            }
            if let Some(names) = &b.networks {
                if names.is_empty() {
                    errors.push(
                        "broadcast.networks",
                        "name at least one network, or leave networks out for every network",
                    );
                }
                for (i, n) in names.iter().enumerate() {
                    if let Err(msg) = crate::network::validate_network_name(n) {
                        errors.push(format!("broadcast.networks[{i}]"), msg);
                    }
                }
            }
            BroadcastSpec {
                networks: b.networks.clone().unwrap_or_default(),
                mode: b.mode,
            }
        });

        let public = self.public.as_ref().map(|p| {
            if !area_given {
                errors.push(
                    "public",
                    "public channels warn the people of an area: give an area too",
                );
            }
            crate::outlet::validate_public(p, self.status, self.scope.is_public(), &mut errors)
        });

        let place = self.place.as_deref().map(str::trim).map(str::to_string);
        if let (Some(p), Some(sent)) = (&place, &self.place)
            && (p.is_empty() || sent.chars().count() > 100 || p.chars().any(char::is_control))
        {
            errors.push(
                "place",
                "name the place in 1 to 100 characters on one line, e.g. \"Zwijndrecht, port of Antwerp\"",
            );
        }

        let expires = self.expires.as_deref().and_then(|e| {
            let parsed = crate::cap::parse_time(e);
            if parsed.is_none() {
                errors.push(
                    "expires",
                    format!("{e:?} is not a time; give RFC 3339 with an offset, e.g. 2026-11-29T18:00:00+01:00"),
                );
            }
            parsed
        });
        let spec = AlertSpec {
            status: self.status,
            event,
            severity: self.severity,
            urgency: self.urgency,
            certainty: self.certainty,
            messages,
            area,
            channels,
            groups: self.groups,
            broadcast,
            estimate: None,
            msg_type: MsgType::Alert,
            references: None,
            all_clear: false,
            own_zone: false,
            expires,
            scope: self.scope,
            headlines: BTreeMap::new(),
            cap_references: None,
            signature: None,
            place,
            public,
        };

        check_texts(&spec, &mut errors);
        errors.finish(spec)
    }
}

/// The texts of a request by language, each checked (`required`: at least one).
fn parse_messages(
    given: &BTreeMap<String, String>,
    required: bool,
    errors: &mut Collector,
) -> Messages {
    let mut messages = Messages::default();
    if required && given.is_empty() {
        errors.push(
            "messages",
            "give the text in at least one of nl, fr, de, en",
        );
    }
    for (code, text) in given {
        let path = format!("messages.{code}");
        let Some(lang) = Language::from_code(code) else {
            errors.push(
                path,
                format!("unknown language {code:?}; {}", Language::EXPECTED),
            );
            continue;
        };
        let sent = text;
        let text = text.trim();
        if text.is_empty() {
            errors.push(path, "the text is empty");
        } else if sent.chars().count() > MAX_TEXT_CHARS {
            errors.push(
                path,
                format!("the text is longer than {MAX_TEXT_CHARS} characters"),
            );
        } else {
            messages.0.insert(lang, text.to_string());
        }
    }

    messages
}

/// What every channel can carry: SMS segments, cell-broadcast pages.
fn check_texts(spec: &AlertSpec, errors: &mut Collector) {
    let lbsms = spec
        .broadcast
        .as_ref()
        .is_some_and(|b| b.mode == BroadcastMode::Lbsms);
    if spec.channels.contains(Channel::Sms) || lbsms {
        for lang in spec.messages.0.keys() {
            if let Some(r) = render(spec, Channel::Sms, *lang) {
                let sent = crate::message::signed(&r.text, spec.signature.as_deref());
                let info = analyse(&sent);
                if info.segments > MAX_SMS_SEGMENTS {
                    let why = match (info.encoding, first_non_gsm(&sent)) {
                        (SmsEncoding::Ucs2, Some(c)) => format!(
                            " (it is sent as UCS-2, 67 characters a part, because of {c:?})"
                        ),
                        _ => String::new(),
                    };
                    errors.push(
                            format!("messages.{lang}"),
                            format!(
                                "the SMS needs {} segments{why}; at most {MAX_SMS_SEGMENTS} are sent: shorten the text",
                                info.segments
                            ),
                        );
                }
            }
        }
    }
    if spec
        .broadcast
        .as_ref()
        .is_some_and(|b| b.mode == BroadcastMode::CellBroadcast)
    {
        for lang in spec.messages.0.keys() {
            if let Some(r) = render(spec, Channel::Sms, *lang)
                && let Some(why) =
                    cb_problem(&crate::message::signed(&r.text, spec.signature.as_deref()))
            {
                errors.push(
                    format!("messages.{lang}"),
                    format!("the {lang} text: {why}"),
                );
            }
        }
    }
}

impl AlertSpec {
    /// The alert that follows this one up (`:update`, `:cancel`,
    /// `:all_clear`): the same status, event, zone, channels and networks,
    /// `msgType` and `references` set, and in each language the text given
    /// or else the default one naming this alert's event and Belgian time
    /// (`sent_at`, Unix ms).
    pub fn follow_up(
        &self,
        original: crate::AlertId,
        kind: FollowUp,
        given: &BTreeMap<String, String>,
        sent_at: i64,
    ) -> Result<AlertSpec, ValidationErrors> {
        let mut errors = Collector::default();
        let given = parse_messages(given, false, &mut errors);
        let at = crate::cap::brussels_short(sent_at);
        let mut messages = Messages(
            Language::ALL
                .into_iter()
                .map(|l| (l, kind.default_text(l, &self.event, &at)))
                .collect(),
        );
        messages.0.extend(given.0);
        let spec = AlertSpec {
            messages,
            msg_type: kind.msg_type(),
            references: Some(original),
            all_clear: kind == FollowUp::AllClear,
            // A follow-up is sent whatever the original's expiry.
            expires: None,
            headlines: BTreeMap::new(),
            cap_references: None,
            signature: None,
            ..self.clone()
        };
        check_texts(&spec, &mut errors);
        errors.finish(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(v: serde_json::Value) -> Result<AlertSpec, ValidationErrors> {
        AlertRequest::from_json(v.to_string().as_bytes())?.validate()
    }

    fn base() -> serde_json::Value {
        json!({
            "status": "Actual", "event": "Chemical leak", "severity": "Severe",
            "urgency": "Immediate", "certainty": "Observed",
            "messages": {"nl": "Sluit ramen en deuren", "fr": "Fermez portes et fenêtres"},
            "area": {"circles": [{"lat": 51.23, "lon": 4.40, "radius_km": 3}]}
        })
    }

    #[test]
    fn a_valid_alert_defaults_to_every_channel() {
        let spec = request(base()).unwrap();
        assert_eq!(spec.channels, ChannelSet::ALL);
        assert_eq!(spec.area.circles.len(), 1);
    }

    #[test]
    fn cap_vocabularies_are_enforced_with_the_allowed_values() {
        let mut v = base();
        v["severity"] = json!("Catastrophic");
        let e = request(v).unwrap_err().to_string();
        assert!(
            e.starts_with("severity: unknown variant `Catastrophic`"),
            "{e}"
        );
        assert!(e.contains("Extreme"), "{e}");
        let mut v = base();
        v["status"] = json!("Draft");
        assert!(request(v).unwrap_err().to_string().contains("status"));
    }

    #[test]
    fn unknown_languages_and_channels_are_refused() {
        let mut v = base();
        v["messages"]["es"] = json!("Cierren las ventanas");
        v["channels"] = json!(["sms", "pigeon"]);
        let e = request(v).unwrap_err();
        let paths: Vec<_> = e.0.iter().map(|f| f.path.as_str()).collect();
        assert!(
            paths.contains(&"messages.es") && paths.contains(&"channels[1]"),
            "{e}"
        );
    }

    #[test]
    fn an_alert_needs_an_area_or_groups() {
        let mut v = base();
        v.as_object_mut().unwrap().remove("area");
        assert!(
            request(v.clone())
                .unwrap_err()
                .to_string()
                .starts_with("area:")
        );
        v["groups"] = json!(["rescuers"]);
        assert!(request(v).is_ok());
    }

    #[test]
    fn too_long_sms_is_refused_with_the_reason() {
        let mut v = base();
        v["messages"]["fr"] = json!("ê".repeat(500));
        let e = request(v).unwrap_err().to_string();
        assert!(e.contains("messages.fr") && e.contains("UCS-2"), "{e}");
    }

    #[test]
    fn a_broadcast_only_alert_and_its_limits() {
        let mut v = base();
        v["channels"] = json!([]);
        assert!(
            request(v.clone())
                .unwrap_err()
                .to_string()
                .starts_with("channels:")
        );
        v["broadcast"] = json!({"mode": "cell_broadcast"});
        let spec = request(v.clone()).unwrap();
        assert!(spec.channels.is_empty());
        assert_eq!(
            spec.broadcast.as_ref().unwrap().networks,
            Vec::<String>::new()
        );
        v["broadcast"] = json!({"mode": "lbsms", "networks": ["proximus", "Bad Name"]});
        let e = request(v.clone()).unwrap_err().to_string();
        assert!(e.contains("broadcast.networks[1]"), "{e}");
        // Cell broadcast: 15 pages of 93 characters at most, per language.
        v["broadcast"] = json!({"mode": "cell_broadcast"});
        v["messages"]["fr"] = json!("a".repeat(1400));
        let e = request(v.clone()).unwrap_err();
        assert_eq!(e.0[0].path, "messages.fr");
        assert!(
            e.0[0].message.contains("the fr text") && e.0[0].message.contains("1395 characters"),
            "{e}"
        );
        // A broadcast needs an area.
        let mut g = base();
        g.as_object_mut().unwrap().remove("area");
        g["groups"] = json!(["rescuers"]);
        g["broadcast"] = json!({"mode": "lbsms"});
        assert!(
            request(g)
                .unwrap_err()
                .to_string()
                .starts_with("broadcast:")
        );
    }

    #[test]
    fn a_follow_up_speaks_every_language_and_fits_an_sms() {
        let long_event = "é".repeat(200);
        let original: AlertSpec = serde_json::from_value::<AlertRequest>(serde_json::json!({
            "status": "Exercise", "event": long_event, "severity": "Severe",
            "urgency": "Immediate", "certainty": "Observed",
            "messages": {"nl": "Brand", "fr": "Incendie"},
            "area": {"circles": [{"lat": 50.85, "lon": 4.35, "radius_km": 1}]}
        }))
        .unwrap()
        .validate()
        .unwrap();
        let id = crate::AlertId::new();
        for kind in FollowUp::ALL {
            let f = original
                .follow_up(id, kind, &BTreeMap::new(), 1_795_942_800_000)
                .unwrap_or_else(|e| panic!("{kind:?}: {e:?}"));
            assert_eq!(f.references, Some(id));
            assert_eq!(f.msg_type, kind.msg_type());
            assert_eq!(f.all_clear, kind == FollowUp::AllClear);
            assert_eq!(f.status, Status::Exercise, "an exercise stays one");
            assert_eq!(f.messages.0.len(), 4, "{kind:?}: a text in every language");
            for text in f.messages.0.values() {
                assert!(text.contains("29/11/2026 10:00"), "{text}");
            }
        }
        let given = BTreeMap::from([("fr".to_string(), "Fausse alerte.".to_string())]);
        let f = original.follow_up(id, FollowUp::Cancel, &given, 0).unwrap();
        assert_eq!(f.messages.0[&Language::Fr], "Fausse alerte.");
        assert!(f.messages.0[&Language::Nl].starts_with("INGETROKKEN"));
        let bad = BTreeMap::from([("xx".to_string(), "?".to_string())]);
        let e = original
            .follow_up(id, FollowUp::Cancel, &bad, 0)
            .unwrap_err();
        assert_eq!(e.0[0].path, "messages.xx");
    }

    #[test]
    fn a_place_is_one_short_line() {
        let with = |place: &str| {
            serde_json::from_value::<AlertRequest>(serde_json::json!({
                "status": "Actual", "event": "Fire", "severity": "Severe",
                "urgency": "Immediate", "certainty": "Observed", "place": place,
                "messages": {"nl": "Binnen blijven."},
                "area": {"circles": [{"lat": 51.2, "lon": 4.3, "radius_km": 2}]}
            }))
            .unwrap()
            .validate()
        };
        assert_eq!(
            with("  Zwijndrecht ").unwrap().place.as_deref(),
            Some("Zwijndrecht")
        );
        for bad in ["", "   ", "two\nlines", &"x".repeat(101)] {
            let e = with(bad).unwrap_err().to_string();
            assert!(e.contains("place"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn the_signature_counts_towards_the_sms_limit() {
        let body = |text: String| {
            serde_json::from_value::<AlertRequest>(serde_json::json!({
                "status": "Actual", "event": "E", "severity": "Severe",
                "urgency": "Immediate", "certainty": "Observed",
                "messages": {"nl": text},
                "area": {"circles": [{"lat": 50.85, "lon": 4.35, "radius_km": 1}]}
            }))
            .unwrap()
            .validate()
            .unwrap()
        };
        // Six GSM segments of 153 characters: exactly the limit, unsigned.
        let mut full = body("a".repeat(918));
        let e = full.sign("Crisiscentrum", 1_795_942_800_000).unwrap_err();
        assert_eq!(e.0[0].path, "messages.nl");
        let mut short = body("Sluit ramen.".into());
        short.sign("Crisiscentrum", 1_795_942_800_000).unwrap();
        assert_eq!(
            short.signature.as_deref(),
            Some("Crisiscentrum, 29/11/2026 10:00")
        );
        assert_eq!(
            crate::message::signed("Sluit ramen.", short.signature.as_deref()),
            "Sluit ramen.\nCrisiscentrum, 29/11/2026 10:00"
        );
    }
}
