//! Citizens' own registrations: contacts proven by a one-time code, and
//! what of a registration resolution may see.
//!
//! A registration holds everything the citizen gave. Only its *reachable*
//! projection ([`Registration::reachable`]) is stored as a subscriber: the
//! channels whose contact is verified, and nothing while no contact is
//! verified or the registration is paused. So a pending or paused citizen
//! is never in the address rows that resolution reads.

use crate::subscriber::SubscriberProfile;
use crate::{Channel, ChannelSet, SubscriberId};
use serde::{Deserialize, Serialize};

/// How long a registration with no verified contact is kept.
pub const PENDING_TTL_MS: i64 = 7 * 24 * 3_600_000;

/// How long a code stays valid.
pub const CODE_TTL_MS: i64 = 10 * 60 * 1000;
/// Wrong tries after which a code is locked (a new one must be sent).
pub const MAX_CODE_ATTEMPTS: u32 = 5;
/// Codes sent to one contact of one registration, ever.
pub const MAX_CODE_SENDS: u32 = 3;
/// The wait between two codes to one contact.
pub const RESEND_AFTER_MS: i64 = 60 * 1000;

/// Which contact of a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContactKind {
    Phone,
    Email,
}

impl ContactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ContactKind::Phone => "phone",
            ContactKind::Email => "email",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "phone" => Some(ContactKind::Phone),
            "email" => Some(ContactKind::Email),
            _ => None,
        }
    }

    /// Whether this contact carries `channel`.
    pub fn carries(self, channel: Channel) -> bool {
        match self {
            ContactKind::Phone => matches!(channel, Channel::Sms | Channel::Voice),
            ContactKind::Email => channel == Channel::Email,
        }
    }
}

/// A code waiting to be typed in: only its hash is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCode {
    pub hash: String,
    pub expires_at: i64,
    pub attempts: u32,
}

/// One contact of a registration and where its proof stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactState {
    pub value: String,
    pub verified: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<PendingCode>,
    pub sends: u32,
    pub last_sent_at: i64,
}

/// What typing a code did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    Verified,
    AlreadyVerified,
    Wrong {
        attempts_left: u32,
    },
    /// Five wrong tries: this code is dead; ask for a new one.
    Locked,
    Expired,
    /// No code was sent to this contact.
    NoCode,
}

/// Why no code is sent now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendRefused {
    AlreadyVerified,
    TooSoon { retry_after_ms: i64 },
    TooMany,
}

impl ContactState {
    pub fn new(value: String) -> Self {
        Self {
            value,
            verified: false,
            code: None,
            sends: 0,
            last_sent_at: 0,
        }
    }

    /// Whether a code may be sent to this contact now.
    pub fn may_send(&self, now: i64) -> Result<(), SendRefused> {
        if self.verified {
            return Err(SendRefused::AlreadyVerified);
        }
        if self.sends >= MAX_CODE_SENDS {
            return Err(SendRefused::TooMany);
        }
        let next = self.last_sent_at + RESEND_AFTER_MS;
        if self.sends > 0 && now < next {
            return Err(SendRefused::TooSoon {
                retry_after_ms: next - now,
            });
        }
        Ok(())
    }

    /// Records a new code (its hash) as sent now; an older code dies.
    pub fn issue(&mut self, hash: String, now: i64) {
        self.code = Some(PendingCode {
            hash,
            expires_at: now + CODE_TTL_MS,
            attempts: 0,
        });
        self.sends += 1;
        self.last_sent_at = now;
    }

    /// Checks a typed code, given as its hash. Every try counts, right or
    /// wrong, until the code is locked.
    pub fn check(&mut self, given_hash: &str, now: i64) -> CodeCheck {
        if self.verified {
            return CodeCheck::AlreadyVerified;
        }
        let Some(code) = &mut self.code else {
            return CodeCheck::NoCode;
        };
        if code.attempts >= MAX_CODE_ATTEMPTS {
            return CodeCheck::Locked;
        }
        if now > code.expires_at {
            return CodeCheck::Expired;
        }
        code.attempts += 1;
        if code.hash == given_hash {
            self.verified = true;
            self.code = None;
            CodeCheck::Verified
        } else if code.attempts >= MAX_CODE_ATTEMPTS {
            CodeCheck::Locked
        } else {
            CodeCheck::Wrong {
                attempts_left: MAX_CODE_ATTEMPTS - code.attempts,
            }
        }
    }
}

/// A citizen's own registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    /// The public handle (a UUID): what links and forms carry.
    pub id: String,
    /// The subscriber it is stored as once reachable.
    pub subscriber_id: SubscriberId,
    /// Everything the citizen chose (all channels, verified or not).
    pub profile: SubscriberProfile,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<ContactState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<ContactState>,
    pub paused: bool,
    pub created_at: i64,
    /// Bumped by every write; a write succeeds only over the version read.
    pub version: u64,
    /// Keyed hashes of its contacts (set by the app): how a citizen who
    /// asks for a self-service link is found without storing a plain index.
    #[serde(default)]
    pub lookup_keys: Vec<String>,
}

/// Where a registration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationState {
    /// No contact verified yet: never resolved into an alert.
    Pending,
    Active,
    /// Chosen by the citizen: skipped by alerts until resumed.
    Paused,
}

impl Registration {
    /// A new registration of `profile`; its contacts wait for their codes.
    pub fn new(id: String, profile: SubscriberProfile, now: i64) -> Self {
        let external_id = format!("signup:{id}");
        let subscriber_id = SubscriberId::from_external_id(&external_id);
        let phone = profile.phone.clone().map(ContactState::new);
        let email = profile.email.clone().map(ContactState::new);
        Self {
            id,
            subscriber_id,
            profile: SubscriberProfile {
                external_id: Some(external_id),
                ..profile
            },
            phone,
            email,
            paused: false,
            created_at: now,
            version: 0,
            lookup_keys: Vec::new(),
        }
    }

    pub fn contact(&self, kind: ContactKind) -> Option<&ContactState> {
        match kind {
            ContactKind::Phone => self.phone.as_ref(),
            ContactKind::Email => self.email.as_ref(),
        }
    }

    pub fn contact_mut(&mut self, kind: ContactKind) -> Option<&mut ContactState> {
        match kind {
            ContactKind::Phone => self.phone.as_mut(),
            ContactKind::Email => self.email.as_mut(),
        }
    }

    /// The contacts a code must still prove, for the channels chosen.
    pub fn unverified(&self) -> Vec<ContactKind> {
        [ContactKind::Phone, ContactKind::Email]
            .into_iter()
            .filter(|k| {
                self.contact(*k).is_some_and(|c| !c.verified)
                    && self.profile.channels.iter().any(|ch| k.carries(ch))
            })
            .collect()
    }

    /// The chosen channels whose contact is verified.
    pub fn verified_channels(&self) -> ChannelSet {
        let mut set = ChannelSet::default();
        for ch in self.profile.channels.iter() {
            let verified = [ContactKind::Phone, ContactKind::Email]
                .into_iter()
                .any(|k| k.carries(ch) && self.contact(k).is_some_and(|c| c.verified));
            if verified {
                set.insert(ch);
            }
        }
        set
    }

    pub fn state(&self) -> RegistrationState {
        if self.paused {
            RegistrationState::Paused
        } else if self.verified_channels().is_empty() {
            RegistrationState::Pending
        } else {
            RegistrationState::Active
        }
    }

    /// When a registration nobody verified is deleted (its contacts may be
    /// someone else's, typed by a bot); `None` once a contact is verified.
    pub fn expires_at(&self) -> Option<i64> {
        let verified = [ContactKind::Phone, ContactKind::Email]
            .into_iter()
            .any(|k| self.contact(k).is_some_and(|c| c.verified));
        (!verified).then_some(self.created_at + PENDING_TTL_MS)
    }

    /// What resolution may see: the profile with its verified channels
    /// only (and only their contacts), or nothing while pending or paused.
    pub fn reachable(&self) -> Option<SubscriberProfile> {
        if self.state() != RegistrationState::Active {
            return None;
        }
        let channels = self.verified_channels();
        let verified = |k: ContactKind| self.contact(k).is_some_and(|c| c.verified);
        Some(SubscriberProfile {
            channels,
            phone: self
                .profile
                .phone
                .clone()
                .filter(|_| verified(ContactKind::Phone)),
            email: self
                .profile
                .email
                .clone()
                .filter(|_| verified(ContactKind::Email)),
            ..self.profile.clone()
        })
    }
}

/// A code that lets citizens join a group (rescuers, crisis staff...) at
/// signup: made by a national operator, with an expiry and a number of uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    /// The keyed hash of the code (the code itself is shown once).
    pub key: String,
    pub group: String,
    pub expires_at: i64,
    pub uses_left: u32,
    pub created_by: String,
}

/// The phone-number prefix signups are counted by (country code and the
/// operator's range: `+32470` of `+32470123456`), against SMS pumping
/// that walks through a range.
pub fn phone_prefix(e164: &str) -> &str {
    // Six bytes, or fewer so as not to cut a character (text that is not
    // E.164 must not panic here).
    let mut end = e164.len().min(6);
    while !e164.is_char_boundary(end) {
        end -= 1;
    }
    &e164[..end]
}

/// The country calling code of an E.164 number, if it parses.
pub fn country_code(e164: &str) -> Option<u16> {
    let number = phonenumber::parse(None, e164).ok()?;
    Some(number.code().value())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Language;

    fn profile(channels: &[Channel]) -> SubscriberProfile {
        let mut set = ChannelSet::default();
        for c in channels {
            set.insert(*c);
        }
        SubscriberProfile {
            external_id: None,
            language: Language::Nl,
            phone: Some("+32470123456".into()),
            email: Some("anna@example.be".into()),
            channels: set,
            addresses: vec![],
            groups: vec![],
        }
    }

    #[test]
    fn a_phone_prefix_is_cut_between_characters_whatever_the_text() {
        assert_eq!(phone_prefix("+32470123456"), "+32470");
        assert_eq!(phone_prefix("+32"), "+32");
        // Byte 6 is inside the é: the prefix stops before it.
        assert_eq!(phone_prefix("+3247\u{e9}1"), "+3247");
        assert_eq!(phone_prefix("\u{1f4de}\u{1f4de}"), "\u{1f4de}");
    }

    #[test]
    fn a_pending_registration_is_not_reachable_until_a_contact_is_verified() {
        let mut r = Registration::new("r1".into(), profile(&[Channel::Sms, Channel::Email]), 0);
        assert_eq!(r.state(), RegistrationState::Pending);
        assert_eq!(r.reachable(), None);
        assert_eq!(
            r.expires_at(),
            Some(PENDING_TTL_MS),
            "a pending one expires"
        );
        assert_eq!(r.unverified(), vec![ContactKind::Phone, ContactKind::Email]);
        r.email.as_mut().unwrap().issue("h".into(), 0);
        assert_eq!(r.email.as_mut().unwrap().check("h", 1), CodeCheck::Verified);
        let seen = r.reachable().expect("active once the e-mail is verified");
        assert_eq!(
            seen.channels.iter().collect::<Vec<_>>(),
            vec![Channel::Email]
        );
        assert_eq!(seen.phone, None, "an unverified phone is never handed out");
        assert_eq!(seen.external_id.as_deref(), Some("signup:r1"));
        assert_eq!(r.expires_at(), None, "kept once a contact is verified");
        r.paused = true;
        assert_eq!(r.state(), RegistrationState::Paused);
        assert_eq!(r.reachable(), None);
    }

    #[test]
    fn a_code_expires_and_five_wrong_tries_lock_it() {
        let mut c = ContactState::new("+32470123456".into());
        assert_eq!(c.check("h", 0), CodeCheck::NoCode);
        c.issue("h".into(), 0);
        for left in (1..MAX_CODE_ATTEMPTS).rev() {
            assert_eq!(
                c.check("x", 1),
                CodeCheck::Wrong {
                    attempts_left: left
                }
            );
        }
        assert_eq!(c.check("x", 1), CodeCheck::Locked);
        assert_eq!(c.check("h", 1), CodeCheck::Locked, "even the right code");
        let mut c = ContactState::new("+32470123456".into());
        c.issue("h".into(), 0);
        assert_eq!(c.check("h", CODE_TTL_MS + 1), CodeCheck::Expired);
    }

    #[test]
    fn codes_are_sent_at_most_three_times_a_minute_apart() {
        let mut c = ContactState::new("a@b.be".into());
        assert_eq!(c.may_send(0), Ok(()));
        c.issue("1".into(), 0);
        assert_eq!(
            c.may_send(10_000),
            Err(SendRefused::TooSoon {
                retry_after_ms: RESEND_AFTER_MS - 10_000
            })
        );
        c.issue("2".into(), RESEND_AFTER_MS);
        c.issue("3".into(), 2 * RESEND_AFTER_MS);
        assert_eq!(c.may_send(10 * RESEND_AFTER_MS), Err(SendRefused::TooMany));
        assert_eq!(
            c.check("2", 2 * RESEND_AFTER_MS),
            CodeCheck::Wrong { attempts_left: 4 },
            "an older code dies"
        );
    }

    #[test]
    fn prefixes_and_country_codes() {
        assert_eq!(phone_prefix("+32470123456"), "+32470");
        assert_eq!(country_code("+32470123456"), Some(32));
        assert_eq!(country_code("+352621123456"), Some(352));
        assert_eq!(country_code("+2341234567890"), Some(234));
    }
}
