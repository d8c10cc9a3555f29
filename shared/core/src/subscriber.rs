//! Registered citizens: what they submit, and the validated profile we store.

use crate::channel::parse_channels;
use crate::error::{Collector, ValidationErrors};
use crate::zone::cell_of;
use crate::{Channel, ChannelSet, Language, SubscriberId};
use serde::{Deserialize, Serialize};

pub const MAX_ADDRESSES: usize = 5;
pub const MAX_GROUPS: usize = 20;

/// A subscriber as clients send it (api.md `Subscriber`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriberInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub language: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub channels: Vec<String>,
    pub addresses: Vec<AddressInput>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub lat: f64,
    pub lon: f64,
}

/// A validated subscriber, ready to store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriberProfile {
    pub external_id: Option<String>,
    pub language: Language,
    /// E.164, normalised.
    pub phone: Option<String>,
    pub email: Option<String>,
    pub channels: ChannelSet,
    pub addresses: Vec<Address>,
    pub groups: Vec<String>,
}

/// One registered address, with the H3 resolution-7 cell computed directly
/// from its point (never through a finer cell's parent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub lat: f64,
    pub lon: f64,
    pub cell: u64,
    /// The administrative units the point falls in (`level:code`, see
    /// [`crate::geography::unit_key`]), recorded at registration and
    /// brought up to date when units are loaded; empty before any are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub units: Vec<String>,
}

/// What a sender needs to reach a subscriber, stored beside every address
/// and group membership so that resolving a zone reads each item once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub subscriber_id: SubscriberId,
    pub external_id: Option<String>,
    pub language: Language,
    pub channels: ChannelSet,
    pub phone: Option<String>,
    pub email: Option<String>,
}

impl Contact {
    /// The address to use on `channel`, if this subscriber chose it and gave one.
    pub fn destination(&self, channel: Channel) -> Option<&str> {
        if !self.channels.contains(channel) {
            return None;
        }
        match channel {
            Channel::Sms | Channel::Voice => self.phone.as_deref(),
            Channel::Email => self.email.as_deref(),
        }
    }

    /// The channels an alert sent on `offered` reaches this subscriber on:
    /// those both chose, except that a fixed line takes no SMS. On a fixed
    /// line, SMS and voice are one channel, the call: a landline whose
    /// subscriber chose either is called when the alert goes by either.
    pub fn reached_on(&self, offered: ChannelSet) -> ChannelSet {
        let fixed = self
            .phone
            .as_deref()
            .is_some_and(|p| crate::phone_line::line(p) == crate::phone_line::Line::Fixed);
        if !fixed {
            return offered.intersection(self.channels);
        }
        let as_call = |mut set: ChannelSet| {
            if set.contains(Channel::Sms) {
                set.remove(Channel::Sms);
                set.insert(Channel::Voice);
            }
            set
        };
        as_call(offered).intersection(as_call(self.channels))
    }

    /// Where each channel of [`Contact::reached_on`] goes.
    pub fn deliveries(&self, offered: ChannelSet) -> impl Iterator<Item = (Channel, &str)> {
        self.reached_on(offered).iter().filter_map(|c| {
            let to = match c {
                Channel::Sms | Channel::Voice => self.phone.as_deref(),
                Channel::Email => self.email.as_deref(),
            };
            to.map(|to| (c, to))
        })
    }
}

impl SubscriberProfile {
    /// The identity rule, for every store: whether `incoming`, stored where
    /// this profile is, is the same subscriber, and so replaces it. Only
    /// an external id names a subscriber: both have one and it is the same.
    /// A profile without one is no one else's, so anything else is another
    /// subscriber (the store answers `IdTaken` and writes nothing).
    pub fn is_same_subscriber(&self, incoming: &SubscriberProfile) -> bool {
        incoming.external_id.is_some() && self.external_id == incoming.external_id
    }

    pub fn contact(&self, id: SubscriberId) -> Contact {
        Contact {
            subscriber_id: id,
            external_id: self.external_id.clone(),
            language: self.language,
            channels: self.channels,
            phone: self.phone.clone(),
            email: self.email.clone(),
        }
    }
}

impl SubscriberInput {
    /// Parses one subscriber from JSON, reporting the path of any type error.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, ValidationErrors> {
        crate::error::from_value(value)
    }

    /// Checks every rule of api.md and returns every problem found.
    pub fn validate(self) -> Result<SubscriberProfile, ValidationErrors> {
        let mut errors = Collector::default();

        let external_id = self.external_id;
        if let Some(x) = &external_id
            && (x.is_empty() || x.chars().count() > 128 || x.chars().any(char::is_control))
        {
            errors.push(
                "external_id",
                "must be 1 to 128 characters without control characters",
            );
        }

        let language = Language::from_code(&self.language);
        if language.is_none() {
            errors.push(
                "language",
                format!(
                    "unknown language {:?}; {}",
                    self.language,
                    Language::EXPECTED
                ),
            );
        }

        let phone = self
            .phone
            .as_deref()
            .and_then(|p| match normalise_phone(p) {
                Ok(p) => Some(p),
                Err(msg) => {
                    errors.push("phone", msg);
                    None
                }
            });
        let email = self
            .email
            .as_deref()
            .and_then(|e| match normalise_email(e) {
                Ok(e) => Some(e),
                Err(msg) => {
                    errors.push("email", msg);
                    None
                }
            });

        let channels = parse_channels("channels", &self.channels, &mut errors);
        if self.channels.is_empty() {
            errors.push("channels", "choose at least one of sms, voice, email");
        }
        for c in channels.iter() {
            let (has, needs) = match c {
                Channel::Sms | Channel::Voice => (self.phone.is_some(), "phone"),
                Channel::Email => (self.email.is_some(), "email"),
            };
            if !has {
                errors.push(
                    needs,
                    format!("channel {c} was chosen but no {needs} was given"),
                );
            }
        }

        if self.addresses.is_empty() || self.addresses.len() > MAX_ADDRESSES {
            errors.push(
                "addresses",
                format!(
                    "give 1 to {MAX_ADDRESSES} addresses (got {})",
                    self.addresses.len()
                ),
            );
        }
        let mut addresses = Vec::with_capacity(self.addresses.len());
        for (i, a) in self.addresses.into_iter().enumerate() {
            if let Some(l) = &a.label
                && l.chars().count() > 64
            {
                errors.push(format!("addresses[{i}].label"), "at most 64 characters");
            }
            if !(a.lat.is_finite() && (-90.0..=90.0).contains(&a.lat)) {
                errors.push(
                    format!("addresses[{i}].lat"),
                    format!("latitude {} is outside -90..90", a.lat),
                );
            }
            if !(a.lon.is_finite() && (-180.0..=180.0).contains(&a.lon)) {
                errors.push(
                    format!("addresses[{i}].lon"),
                    format!("longitude {} is outside -180..180", a.lon),
                );
            }
            // Only a point that is itself valid gets a cell.
            if a.lat.is_finite()
                && a.lon.is_finite()
                && (-90.0..=90.0).contains(&a.lat)
                && (-180.0..=180.0).contains(&a.lon)
            {
                addresses.push(Address {
                    label: a.label,
                    lat: a.lat,
                    lon: a.lon,
                    cell: cell_of(a.lat, a.lon),
                    units: Vec::new(),
                });
            }
        }

        if self.groups.len() > MAX_GROUPS {
            errors.push("groups", format!("at most {MAX_GROUPS} groups"));
        }
        let mut groups: Vec<String> = Vec::new();
        for (i, g) in self.groups.iter().enumerate() {
            match validate_group(g) {
                Ok(()) if !groups.contains(g) => groups.push(g.clone()),
                Ok(()) => {}
                Err(msg) => errors.push(format!("groups[{i}]"), msg),
            }
        }

        let profile = SubscriberProfile {
            external_id,
            language: language.unwrap_or(Language::En),
            phone,
            email,
            channels,
            addresses,
            groups,
        };
        errors.finish(profile)
    }
}

/// Group names: lower-case letters, digits, `-` and `_`, 1–64 characters.
pub fn validate_group(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a group name: use 1 to 64 lower-case letters, digits, '-' or '_'"
        ))
    }
}

/// Accepts only E.164 (`+` then up to 15 digits) that is a valid number for its country.
pub fn normalise_phone(raw: &str) -> Result<String, String> {
    let digits = raw.strip_prefix('+').unwrap_or("");
    if digits.len() < 7 || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{raw:?} is not in E.164 form: write '+', the country code and the number, digits only, e.g. +32470123456"
        ));
    }
    let number =
        phonenumber::parse(None, raw).map_err(|e| format!("{raw:?} is not a phone number: {e}"))?;
    if !phonenumber::is_valid(&number) {
        return Err(format!(
            "{raw:?} is not a valid number for its country code; check the digits"
        ));
    }
    Ok(number.format().mode(phonenumber::Mode::E164).to_string())
}

pub fn normalise_email(raw: &str) -> Result<String, String> {
    let parsed: email_address::EmailAddress = raw
        .parse()
        .map_err(|e| format!("{raw:?} is not an e-mail address: {e}"))?;
    if !parsed.domain().contains('.') {
        return Err(format!(
            "{raw:?} has no domain with a dot; write a full address like name@example.be"
        ));
    }
    Ok(parsed.as_str().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(v: serde_json::Value) -> SubscriberInput {
        SubscriberInput::from_json(&v).expect("shape")
    }

    #[test]
    fn only_the_same_external_id_is_the_same_subscriber() {
        let with = |ext: Option<&str>| {
            let mut v = json!({
                "language": "nl", "email": "a@b.be", "channels": ["email"],
                "addresses": [{"lat": 50.85, "lon": 4.35}]
            });
            if let Some(ext) = ext {
                v["external_id"] = json!(ext);
            }
            input(v).validate().unwrap()
        };
        assert!(with(Some("x1")).is_same_subscriber(&with(Some("x1"))));
        assert!(!with(Some("x1")).is_same_subscriber(&with(Some("x2"))));
        assert!(!with(Some("x1")).is_same_subscriber(&with(None)));
        assert!(!with(None).is_same_subscriber(&with(Some("x1"))));
        assert!(
            !with(None).is_same_subscriber(&with(None)),
            "without an external id, nobody is anybody else"
        );
    }

    #[test]
    fn a_landline_that_chose_sms_is_called_instead_and_a_mobile_keeps_its_sms() {
        let contact = |phone: &str, channels: &[Channel]| Contact {
            subscriber_id: SubscriberId::from_external_id("x"),
            external_id: None,
            language: Language::Nl,
            channels: channels.iter().copied().collect(),
            phone: Some(phone.into()),
            email: Some("a@b.be".into()),
        };
        let all = ChannelSet::ALL;
        let sms: ChannelSet = [Channel::Sms].into_iter().collect();
        let landline = contact("+3225551234", &[Channel::Sms, Channel::Email]);
        assert_eq!(
            landline.deliveries(all).collect::<Vec<_>>(),
            vec![(Channel::Voice, "+3225551234"), (Channel::Email, "a@b.be")],
            "never an SMS to a landline"
        );
        assert_eq!(
            landline.deliveries(sms).collect::<Vec<_>>(),
            vec![(Channel::Voice, "+3225551234")],
            "an SMS-only alert calls the landline"
        );
        let both = contact("+3225551234", &[Channel::Sms, Channel::Voice]);
        assert_eq!(both.deliveries(all).count(), 1, "one call, not two");
        let voice = contact("+3225551234", &[Channel::Voice]);
        assert_eq!(
            voice.deliveries(sms).collect::<Vec<_>>(),
            vec![(Channel::Voice, "+3225551234")],
            "a landline that chose calls is called for an SMS-only alert"
        );
        let email: ChannelSet = [Channel::Email].into_iter().collect();
        assert_eq!(
            voice.deliveries(email).count(),
            0,
            "an e-mail alert does not call"
        );
        let mobile = contact("+32470123456", &[Channel::Sms]);
        assert_eq!(
            mobile.deliveries(all).collect::<Vec<_>>(),
            vec![(Channel::Sms, "+32470123456")]
        );
    }

    #[test]
    fn a_valid_subscriber_is_normalised_with_cells() {
        let p = input(json!({
            "external_id": "x1", "language": "fr", "phone": "+32470123456",
            "email": "a@b.be", "channels": ["sms", "email"],
            "addresses": [{"label": "home", "lat": 50.85, "lon": 4.35}],
            "groups": ["rescuers", "rescuers"]
        }))
        .validate()
        .unwrap();
        assert_eq!(p.language, Language::Fr);
        assert_eq!(p.phone.as_deref(), Some("+32470123456"));
        assert_eq!(p.addresses[0].cell, cell_of(50.85, 4.35));
        assert_eq!(p.groups, vec!["rescuers"]);
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let err = input(json!({
            "language": "es", "phone": "0470123456", "channels": ["sms", "fax", "email"],
            "addresses": [{"lat": 95.0, "lon": 4.35}], "groups": ["Bad Name"]
        }))
        .validate()
        .unwrap_err();
        let paths: Vec<_> = err.0.iter().map(|e| e.path.as_str()).collect();
        for p in [
            "language",
            "phone",
            "channels[1]",
            "email",
            "addresses[0].lat",
            "groups[0]",
        ] {
            assert!(paths.contains(&p), "missing {p} in {err}");
        }
        assert!(err.to_string().contains("E.164"), "{err}");
    }

    #[test]
    fn a_chosen_channel_needs_its_contact() {
        let err = input(json!({
            "language": "nl", "email": "a@b.be", "channels": ["voice"],
            "addresses": [{"lat": 51.0, "lon": 4.0}]
        }))
        .validate()
        .unwrap_err();
        assert_eq!(err.0[0].path, "phone");
        assert!(err.0[0].message.contains("voice"));
    }

    #[test]
    fn at_most_five_addresses_and_at_least_one() {
        let addr = json!({"lat": 51.0, "lon": 4.0});
        let six = vec![addr.clone(); 6];
        for addrs in [json!([]), json!(six)] {
            let err = input(json!({"language": "nl", "email": "a@b.be", "channels": ["email"], "addresses": addrs}))
                .validate()
                .unwrap_err();
            assert_eq!(err.0[0].path, "addresses");
        }
    }

    #[test]
    fn invalid_numbers_for_their_country_are_refused() {
        assert!(normalise_phone("+3247012").is_err());
        assert!(normalise_phone("+32 470 12 34 56").is_err());
        assert!(normalise_phone("+32470123456").is_ok());
        assert!(normalise_phone("+4915123456789").is_ok());
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        let err = SubscriberInput::from_json(&json!({
            "language": "nl", "channels": [], "adresses": []
        }))
        .unwrap_err();
        assert!(err.to_string().contains("adresses"), "{err}");
    }
}
