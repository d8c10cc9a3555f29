//! The public signup: a citizen registers, proves each contact with a
//! one-time code, and only then becomes a subscriber alerts can reach.
//!
//! Abuse limits are decided here, once, on shared counters
//! ([`crate::ports::Counters`]): per client address (generous: after a
//! disaster many phones share one carrier-grade NAT address), per phone
//! number and e-mail address, per number prefix, allowed country codes,
//! a proof of work before any code goes to a phone (SMS pumping costs real
//! money), and one budget of codes an hour over everything, checked before
//! anything is stored. Nothing here waits: a limit answers at once.
//!
//! Codes go by SMS to mobiles only; a fixed line gets its code by a call,
//! and special-service numbers (premium rate...) get none. They leave
//! through the signup's own gateways ([`SignupPorts::gateways`]), never
//! the alerts' sending identity: signup traffic cannot spend or spoil what
//! alerts need.

use super::App;
use crate::AppError;
use crate::error::parse_body;
use crate::ports::{MessageKind, OutboundMessage, Sent, SignupPorts, StoreError, Upsert};
use bealert_core::Channel;
use bealert_core::error::{Collector, ValidationErrors};
use bealert_core::phone_line::{Line, line};
use bealert_core::signup::{
    CodeCheck, ContactKind, Registration, RegistrationState, SendRefused, country_code,
    phone_prefix,
};
use bealert_core::subscriber::{AddressInput, SubscriberInput};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::net::IpAddr;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// How long a proof-of-work challenge may be used after it was issued.
const CHALLENGE_TTL_MS: i64 = 10 * 60 * 1000;
/// How long the page's form tokens stay usable (the page checks it too).
pub const FORM_TTL_MS: i64 = 2 * HOUR_MS;
/// A page's form sent without the script's proof of work must be at least
/// this old: a person takes longer to fill it in. Checked by the token's
/// timestamp, never by waiting.
pub const NO_SCRIPT_MIN_AGE_MS: i64 = 5_000;

/// The signup's rules; defaults suit a national deployment.
#[derive(Debug, Clone)]
pub struct SignupConfig {
    /// Country calling codes whose numbers may sign up (Belgium and its
    /// neighbours by default: +32, +31, +33, +49, +352).
    pub allowed_country_codes: Vec<u16>,
    /// Signups from one client address per hour (carrier-grade NAT: keep it generous).
    pub per_client_per_hour: u64,
    /// Codes to one phone number per day, over all registrations.
    pub per_number_per_day: u64,
    /// Codes to one number prefix (`+32470`) per hour.
    pub per_prefix_per_hour: u64,
    /// Codes to one e-mail address per day, over all registrations.
    pub per_address_per_day: u64,
    /// Verification messages (codes by SMS, call and e-mail) per hour over
    /// everything: beyond it new codes are refused (429) until the next
    /// hour, and the `SignupCodesRefused` metric alarms. Alerts never
    /// count against it.
    pub codes_per_hour: u64,
    /// Phone signups from the page without its script (no proof of work)
    /// per hour over everything: a bot avoiding the proof of work is held
    /// to this share of the codes.
    pub no_script_per_hour: u64,
    /// Leading zero bits the proof of work needs (about 2^bits hashes).
    pub pow_bits: u32,
    /// The key of code hashes, challenges and tokens (32 random bytes,
    /// kept by the home: a file in the data directory, a secret on AWS).
    pub secret: Vec<u8>,
    /// Where citizens reach the page (self-service links point there).
    pub public_url: String,
}

impl SignupConfig {
    pub fn with_secret(secret: Vec<u8>) -> Self {
        Self {
            allowed_country_codes: vec![32, 31, 33, 49, 352],
            per_client_per_hour: 1_000,
            per_number_per_day: 5,
            per_prefix_per_hour: 200,
            per_address_per_day: 5,
            codes_per_hour: 2_000,
            no_script_per_hour: 200,
            pow_bits: 16,
            secret,
            public_url: "http://127.0.0.1:8080".into(),
        }
    }
}

/// How a signup shows that a person is behind it before a code goes to a
/// phone.
#[derive(Debug, Clone)]
pub enum HumanProof {
    /// The request's `proof_of_work` (the JSON API, the page's script).
    ProofOfWork,
    /// The page without its script: the form's token (`issued.mac`, as
    /// the page made it), at least [`NO_SCRIPT_MIN_AGE_MS`] old, good for
    /// one signup, within the hourly no-script budget.
    NoScriptForm(String),
}

/// The signup's ports and rules, as given to [`App::with_signup`].
pub struct Signup {
    pub ports: SignupPorts,
    pub config: SignupConfig,
}

/// What a server without the public signup answers its routes (404).
pub const NOT_OFFERED: &str = "this server does not offer the public signup";

/// The signup's use cases: the [`App`] with its signup, as [`App::signup`]
/// gives it. A server without the signup has no such value, so none of
/// these cases checks that the signup is there; they reach the shared
/// parts (ports, clock, config) through the app.
#[derive(Clone, Copy)]
pub struct SignupApp<'a> {
    pub(super) app: &'a App,
    pub(super) signup: &'a Signup,
}

impl<'a> SignupApp<'a> {
    /// The app this signup belongs to.
    pub fn app(&self) -> &'a App {
        self.app
    }

    /// The signup's own ports and rules (tokens, geocoder, country codes).
    pub fn part(&self) -> &'a Signup {
        self.signup
    }
}

/// `POST /v1/subscribers`: a citizen's registration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    pub language: String,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    pub channels: Vec<String>,
    pub addresses: Vec<AddressInput>,
    /// The citizen agreed to the consent text.
    pub consent: bool,
    /// Required when a phone channel is chosen: a solved challenge from
    /// `GET /v1/signup/challenge`.
    #[serde(default)]
    pub proof_of_work: Option<ProofOfWork>,
    /// A group invitation code (`POST /v1/groups/{name}/invitations`).
    #[serde(default)]
    pub invitation: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofOfWork {
    pub challenge: String,
    pub nonce: String,
}

/// A proof-of-work challenge for the signup form.
#[derive(Debug, Clone, Serialize)]
pub struct Challenge {
    pub challenge: String,
    /// Find `nonce` so that SHA-256(`challenge` + ":" + `nonce`) starts with this many zero bits.
    pub bits: u32,
}

/// What a signup, verification or resend did.
#[derive(Debug, Clone, Serialize)]
pub struct RegistrationView {
    pub id: String,
    pub state: RegistrationState,
    /// Contacts still to prove with a code.
    pub unverified: Vec<ContactKind>,
    pub verified: Vec<ContactKind>,
    /// Codes sent by this request.
    pub codes_sent: Vec<ContactKind>,
    /// Contacts whose code could not be sent now, and why.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub not_sent: BTreeMap<&'static str, String>,
}

/// `GET /v1/signup/stats`: today's signup counters (UTC day).
#[derive(Debug, Clone, Serialize)]
pub struct SignupStats {
    pub day_started_at: String,
    pub counters: BTreeMap<&'static str, u64>,
}

const STATS: [&str; 12] = [
    "signups",
    "codes_sent_sms",
    "codes_sent_voice",
    "codes_sent_email",
    "verified",
    "refused_country",
    "refused_number",
    "refused_address",
    "refused_prefix",
    "refused_client",
    "refused_budget",
    "refused_no_script",
];

type HmacSha256 = Hmac<Sha256>;

impl Signup {
    fn mac(&self, parts: &[&[u8]]) -> Vec<u8> {
        let mut mac = HmacSha256::new_from_slice(&self.config.secret)
            .unwrap_or_else(|_| HmacSha256::new_from_slice(&[0u8; 32]).expect("a 32-byte key"));
        for p in parts {
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p);
        }
        mac.finalize().into_bytes().to_vec()
    }

    fn code_hash(&self, registration: &str, kind: ContactKind, code: &str) -> String {
        hex::encode(self.mac(&[
            b"code",
            registration.as_bytes(),
            kind.as_str().as_bytes(),
            code.as_bytes(),
        ]))
    }

    /// The keyed hash an invitation code is stored under (case and dashes ignored).
    pub fn invitation_key(&self, code: &str) -> String {
        let plain: String = code
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .collect();
        self.token("invitation", &plain)
    }

    /// A token for `purpose` and `subject`, checkable later (forms, links).
    pub fn token(&self, purpose: &str, subject: &str) -> String {
        hex::encode(&self.mac(&[b"token", purpose.as_bytes(), subject.as_bytes()])[..16])
    }

    pub fn check_token(&self, purpose: &str, subject: &str, token: &str) -> bool {
        use subtle::ConstantTimeEq;
        let want = self.token(purpose, subject);
        want.as_bytes().ct_eq(token.as_bytes()).into()
    }

    async fn stat(&self, name: &'static str, now: i64) {
        if let Err(e) = self
            .ports
            .counters
            .bump(&format!("stats:{name}"), 1, DAY_MS, now)
            .await
        {
            tracing::warn!(error = %e, name, "signup counter not updated");
        }
    }

    /// Counts one more event under `key`; Err when it goes over `limit`.
    async fn limit(
        &self,
        key: String,
        window_ms: i64,
        limit: u64,
        now: i64,
    ) -> Result<(), StoreError> {
        let n = self.ports.counters.bump(&key, 1, window_ms, now).await?;
        if n > limit {
            Err(StoreError::Conflict(key))
        } else {
            Ok(())
        }
    }

    fn check_pow(&self, pow: &ProofOfWork, now: i64) -> Result<(), &'static str> {
        let mut parts = pow.challenge.splitn(3, '.');
        let (Some(issued), Some(random), Some(mac)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err("is not a challenge from GET /v1/signup/challenge");
        };
        let Ok(issued_ms) = issued.parse::<i64>() else {
            return Err("is not a challenge from GET /v1/signup/challenge");
        };
        if !self.check_token("pow", &format!("{issued}.{random}"), mac) {
            return Err("is not a challenge from GET /v1/signup/challenge");
        }
        if now - issued_ms > CHALLENGE_TTL_MS || issued_ms > now + 60_000 {
            return Err("has expired; fetch a new one");
        }
        if pow.nonce.len() > 64 {
            return Err("nonce is longer than 64 characters");
        }
        let digest = Sha256::digest(format!("{}:{}", pow.challenge, pow.nonce).as_bytes());
        if leading_zero_bits(&digest) < self.config.pow_bits {
            return Err("is not solved: the hash does not start with enough zero bits");
        }
        Ok(())
    }
}

impl Signup {
    /// The page's form token (`issued.mac`), if it is one of ours, unexpired
    /// and old enough to have been filled in by a person.
    fn check_form_age(&self, token: &str, now: i64) -> Result<(), AppError> {
        let expired = || {
            AppError::Invalid(ValidationErrors::single(
                "form",
                "this form is not from this page or has expired; open the page again",
            ))
        };
        let (issued, mac) = token.split_once('.').ok_or_else(expired)?;
        let issued_ms: i64 = issued.parse().map_err(|_| expired())?;
        if !self.check_token("csrf", issued, mac) || !(0..FORM_TTL_MS).contains(&(now - issued_ms))
        {
            return Err(expired());
        }
        let age = now - issued_ms;
        if age < NO_SCRIPT_MIN_AGE_MS {
            return Err(AppError::TooManyRequests(format!(
                "this form was sent {} s after it was shown; check it and send it again",
                age / 1000
            )));
        }
        Ok(())
    }

    /// Refuses a new signup while the hour's budget of codes is spent.
    async fn check_budget(&self, now: i64) -> Result<(), AppError> {
        let sent = self
            .ports
            .counters
            .count("signup:codes", HOUR_MS, now)
            .await?;
        if sent >= self.config.codes_per_hour {
            self.stat("refused_budget", now).await;
            crate::metrics::signup_codes_refused(1);
            return Err(too_many(budget_spent(now)));
        }
        Ok(())
    }
}

impl Signup {
    /// Counts one message against the hour's budget of codes; a 429 that
    /// says until when once it is spent.
    pub(super) async fn spend_budget(&self, now: i64) -> Result<(), AppError> {
        if self
            .limit(
                "signup:codes".into(),
                HOUR_MS,
                self.config.codes_per_hour,
                now,
            )
            .await
            .is_err()
        {
            self.stat("refused_budget", now).await;
            crate::metrics::signup_codes_refused(1);
            return Err(too_many(budget_spent(now)));
        }
        Ok(())
    }
}

/// What a citizen is told while the hour's budget of codes is spent.
fn budget_spent(now: i64) -> String {
    let next = now - now.rem_euclid(HOUR_MS) + HOUR_MS;
    format!(
        "too many codes were sent this hour (a cap that keeps signup traffic from ever \
         holding up alerts); ask again after {}",
        crate::format_ms(next)
    )
}

/// The channel a code to a contact travels on: e-mail, SMS to a mobile, a
/// call to a fixed line; none to a special-service number.
pub fn code_channel(kind: ContactKind, value: &str) -> Option<Channel> {
    match kind {
        ContactKind::Email => Some(Channel::Email),
        ContactKind::Phone => match line(value) {
            Line::Mobile | Line::MobileOrFixed => Some(Channel::Sms),
            Line::Fixed => Some(Channel::Voice),
            Line::Special => None,
        },
    }
}

fn leading_zero_bits(bytes: &[u8]) -> u32 {
    let mut n = 0;
    for b in bytes {
        if *b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}

/// Solves a challenge (what the page's script does; tests and the bench use it).
pub fn solve_pow(challenge: &str, bits: u32) -> String {
    (0u64..)
        .map(|n| n.to_string())
        .find(|nonce| {
            leading_zero_bits(&Sha256::digest(format!("{challenge}:{nonce}").as_bytes())) >= bits
        })
        .unwrap_or_default()
}

fn six_digits() -> String {
    format!("{:06}", rand::random_range(0..1_000_000u32))
}

fn too_many(detail: impl Into<String>) -> AppError {
    AppError::TooManyRequests(detail.into())
}

/// `POST /v1/groups/{name}/invitations`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvitationRequest {
    /// How many citizens may join with it (1 to 10,000).
    pub uses: u32,
    /// Days it stays valid (1 to 365).
    pub valid_days: u32,
}

/// A new invitation: the code is shown once.
#[derive(Debug, Clone, Serialize)]
pub struct InvitationCreated {
    pub group: String,
    pub code: String,
    pub expires_at: String,
    pub uses: u32,
}

/// Whether `operator` may create invitations (403 if not). The HTTP route
/// asks before it looks for the signup, so that a refusal answers the same
/// with or without one.
pub fn may_invite(operator: &bealert_core::operator::Operator) -> Result<(), AppError> {
    super::operators::require(
        operator,
        bealert_core::operator::Task::Invitations,
        "invite citizens to groups",
    )
}

/// The contact a code is for: `"phone"` or `"email"` (422 otherwise).
/// Public so that a route checks it before it looks for the signup, as
/// resending did before the signup was an optional part.
pub fn contact_kind(contact: &str) -> Result<ContactKind, AppError> {
    ContactKind::parse(contact).ok_or_else(|| {
        AppError::Invalid(ValidationErrors::single(
            "contact",
            "must be \"phone\" or \"email\"",
        ))
    })
}

/// Letters and digits that cannot be mistaken for one another.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

impl App {
    /// Adds the public signup (its ports and rules).
    pub fn with_signup(mut self, ports: SignupPorts, config: SignupConfig) -> Self {
        self.signup = Some(Signup { ports, config });
        self
    }

    /// The signup's use cases, if this server offers the public signup.
    pub fn signup(&self) -> Option<SignupApp<'_>> {
        self.signup
            .as_ref()
            .map(|signup| SignupApp { app: self, signup })
    }

    /// [`Self::signup`], or the 404 a server without it answers
    /// ([`NOT_OFFERED`]): for the HTTP routes.
    pub fn signup_offered(&self) -> Result<SignupApp<'_>, AppError> {
        self.signup()
            .ok_or_else(|| AppError::NotFound(NOT_OFFERED.into()))
    }

    /// Stores what alerts may see of a registration (idempotent): its
    /// reachable profile, or nothing (removed) while pending or paused.
    pub(super) async fn project(&self, registration: &Registration) -> Result<(), AppError> {
        match registration.reachable() {
            Some(profile) => {
                let profile = self
                    .label_profiles(vec![(0, profile)])
                    .await?
                    .pop()
                    .map(|(_, p)| p)
                    .ok_or_else(|| AppError::Internal("labelling lost the profile".into()))?;
                let answer = self
                    .ports
                    .subscribers
                    .upsert_subscribers(vec![(registration.subscriber_id, profile)].into())
                    .await?;
                if answer.first() == Some(&Upsert::IdTaken) {
                    return Err(AppError::Internal(format!(
                        "subscriber id of registration {} is taken",
                        registration.id
                    )));
                }
            }
            None => {
                self.ports
                    .subscribers
                    .remove_subscriber(registration.subscriber_id)
                    .await?;
            }
        }
        Ok(())
    }
}

impl SignupApp<'_> {
    /// Creates an invitation to `group` (national operators).
    pub async fn create_invitation(
        &self,
        operator: &bealert_core::operator::Operator,
        group: &str,
        body: &[u8],
    ) -> Result<InvitationCreated, AppError> {
        may_invite(operator)?;
        let s = self.signup;
        let request: InvitationRequest = parse_body(body)?;
        let mut errors = Collector::default();
        if let Err(m) = bealert_core::subscriber::validate_group(group) {
            errors.push("name", m);
        }
        if !(1..=10_000).contains(&request.uses) {
            errors.push("uses", "give 1 to 10,000 uses");
        }
        if !(1..=365).contains(&request.valid_days) {
            errors.push("valid_days", "give 1 to 365 days");
        }
        errors.finish(())?;
        let raw: String = (0..12)
            .map(|_| CODE_ALPHABET[rand::random_range(0..CODE_ALPHABET.len())] as char)
            .collect();
        let code = format!("{}-{}-{}", &raw[0..4], &raw[4..8], &raw[8..12]);
        let expires_at = self.app.now_ms() + i64::from(request.valid_days) * DAY_MS;
        let invitation = bealert_core::signup::Invitation {
            key: s.invitation_key(&code),
            group: group.to_string(),
            expires_at,
            uses_left: request.uses,
            created_by: operator.name.clone(),
        };
        s.ports.registrations.insert_invitation(&invitation).await?;
        Ok(InvitationCreated {
            group: group.to_string(),
            code,
            expires_at: crate::format_ms(expires_at),
            uses: request.uses,
        })
    }

    /// A fresh proof-of-work challenge.
    pub fn signup_challenge(&self) -> Result<Challenge, AppError> {
        let s = self.signup;
        let base = format!(
            "{}.{}",
            self.app.now_ms(),
            hex::encode(rand::random::<[u8; 8]>())
        );
        Ok(Challenge {
            challenge: format!("{base}.{}", s.token("pow", &base)),
            bits: s.config.pow_bits,
        })
    }

    /// `POST /v1/subscribers` (its body parsed by the route, so that a bad
    /// body answers the same with or without the signup): validates,
    /// applies the abuse limits, stores a pending registration and sends
    /// one code to each contact. `proof` is how a person showed to be
    /// behind it (the page without its script gives its form instead of a
    /// proof of work).
    pub async fn signup_with(
        &self,
        request: SignupRequest,
        client: Option<IpAddr>,
        proof: HumanProof,
    ) -> Result<RegistrationView, AppError> {
        let s = self.signup;
        let now = self.app.now_ms();
        let mut errors = Collector::default();
        if !request.consent {
            errors.push("consent", "agree to the consent text to register");
        }
        let input = SubscriberInput {
            external_id: None,
            language: request.language,
            phone: request.phone,
            email: request.email,
            channels: request.channels,
            addresses: request.addresses,
            groups: vec![],
        };
        let profile = match input.validate() {
            Ok(p) => Some(p),
            Err(ValidationErrors(list)) => {
                for e in list {
                    errors.push(e.path, e.message);
                }
                None
            }
        };
        let wants_phone = profile.as_ref().is_some_and(|p| {
            p.phone.is_some() && p.channels.iter().any(|c| ContactKind::Phone.carries(c))
        });
        if let Some(p) = profile.as_ref().filter(|_| wants_phone)
            && let Some(phone) = p.phone.as_deref()
        {
            match line(phone) {
                Line::Special => errors.push(
                    "phone",
                    "this number is a special service (premium rate, shared cost, free phone, \
                     pager...), which gets no code; give a mobile or a fixed line",
                ),
                Line::Fixed if p.channels.contains(Channel::Sms) => errors.push(
                    "channels",
                    format!(
                        "{phone} is a fixed line, which cannot receive SMS: choose voice \
                         (its code and alerts then come by a call)"
                    ),
                ),
                _ => {}
            }
        }
        if let Some(phone) = profile.as_ref().and_then(|p| p.phone.as_deref()) {
            let code = country_code(phone);
            if !code.is_some_and(|c| s.config.allowed_country_codes.contains(&c)) {
                let allowed: Vec<String> = s
                    .config
                    .allowed_country_codes
                    .iter()
                    .map(|c| format!("+{c}"))
                    .collect();
                errors.push(
                    "phone",
                    format!(
                        "numbers of this country are not accepted here; use a number starting with {}",
                        allowed.join(", ")
                    ),
                );
                s.stat("refused_country", now).await;
            }
        }
        let pow_required = matches!(proof, HumanProof::ProofOfWork);
        if wants_phone && pow_required {
            match &request.proof_of_work {
                None => errors.push(
                    "proof_of_work",
                    "a phone needs a solved challenge (GET /v1/signup/challenge) before a code is sent",
                ),
                Some(pow) => {
                    if let Err(why) = s.check_pow(pow, now) {
                        errors.push("proof_of_work.challenge", why);
                    }
                }
            }
        }
        errors.finish(())?;
        let Some(profile) = profile else {
            return Err(AppError::Internal(
                "validated signup without a profile".into(),
            ));
        };
        // Limits before anything is stored or sent, and never a wait.
        if let Some(ip) = client
            && s.limit(
                // Keyed hashes, not addresses or numbers, in the counters.
                format!("signup:client:{}", s.token("client", &ip.to_string())),
                HOUR_MS,
                s.config.per_client_per_hour,
                now,
            )
            .await
            .is_err()
        {
            s.stat("refused_client", now).await;
            return Err(too_many(format!(
                "too many signups from {ip} this hour; try again later"
            )));
        }
        s.check_budget(now).await?;
        if wants_phone {
            match &proof {
                HumanProof::ProofOfWork => {
                    if let Some(pow) = &request.proof_of_work {
                        // A solved challenge is good for one signup.
                        let used = s
                            .ports
                            .counters
                            .bump(
                                &format!("pow:{}", pow.challenge),
                                1,
                                2 * CHALLENGE_TTL_MS,
                                now,
                            )
                            .await?;
                        if used > 1 {
                            return Err(AppError::Invalid(ValidationErrors::single(
                                "proof_of_work.challenge",
                                "was used already; fetch a new one",
                            )));
                        }
                    }
                }
                HumanProof::NoScriptForm(token) => {
                    s.check_form_age(token, now)?;
                    let used = s
                        .ports
                        .counters
                        .bump(
                            &format!("form:{}", s.token("form", token)),
                            1,
                            2 * FORM_TTL_MS,
                            now,
                        )
                        .await?;
                    if used > 1 {
                        return Err(AppError::Invalid(ValidationErrors::single(
                            "form",
                            "this form was used already; open the page again",
                        )));
                    }
                    if s.limit(
                        "signup:no-script".into(),
                        HOUR_MS,
                        s.config.no_script_per_hour,
                        now,
                    )
                    .await
                    .is_err()
                    {
                        s.stat("refused_no_script", now).await;
                        return Err(too_many(
                            "too many phone signups without the page's script this hour; \
                             turn JavaScript on, use e-mail, or try again later",
                        ));
                    }
                }
            }
        }

        let mut profile = profile;
        if let Some(code) = request
            .invitation
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            let key = s.invitation_key(code);
            match s.ports.registrations.use_invitation(&key, now).await? {
                Some(group) => profile.groups = vec![group],
                None => {
                    return Err(AppError::Invalid(ValidationErrors::single(
                        "invitation",
                        "this invitation code is unknown, used up or expired; ask whoever gave it for a new one",
                    )));
                }
            }
        }
        let id = uuid::Uuid::now_v7().to_string();
        let mut registration = Registration::new(id, profile, now);
        registration.lookup_keys = [&registration.profile.phone, &registration.profile.email]
            .into_iter()
            .flatten()
            .map(|c| s.contact_key(c))
            .collect();
        s.ports
            .registrations
            .insert_registration(&registration)
            .await?;
        s.stat("signups", now).await;
        let kinds = registration.unverified();
        self.send_codes(registration, &kinds, now).await
    }

    /// Sends a code to each of `kinds` that may get one now, recording each
    /// code's hash before it is sent. Every limit is a counter: nothing waits.
    async fn send_codes(
        &self,
        mut registration: Registration,
        kinds: &[ContactKind],
        now: i64,
    ) -> Result<RegistrationView, AppError> {
        let s = self.signup;
        let mut not_sent = BTreeMap::new();
        let mut to_send = Vec::new();
        for &kind in kinds {
            let Some(contact) = registration.contact(kind) else {
                not_sent.insert(kind.as_str(), "no such contact was given".to_string());
                continue;
            };
            match contact.may_send(now) {
                Ok(()) => {}
                Err(SendRefused::AlreadyVerified) => continue,
                Err(SendRefused::TooSoon { retry_after_ms }) => {
                    not_sent.insert(
                        kind.as_str(),
                        format!(
                            "a code was sent just now; ask again in {} s",
                            (retry_after_ms + 999) / 1000
                        ),
                    );
                    continue;
                }
                Err(SendRefused::TooMany) => {
                    not_sent.insert(
                        kind.as_str(),
                        "three codes were sent already; register again".into(),
                    );
                    continue;
                }
            }
            let value = contact.value.clone();
            let Some(channel) = code_channel(kind, &value) else {
                not_sent.insert(
                    kind.as_str(),
                    "this number is a special service, which gets no code; register a mobile or a fixed line".into(),
                );
                continue;
            };
            let (key, stat, refused) = match kind {
                ContactKind::Phone => (
                    format!("signup:number:{}", s.contact_key(&value)),
                    "refused_number",
                    "this number received enough codes today; try tomorrow or use e-mail",
                ),
                ContactKind::Email => (
                    format!("signup:address:{}", s.contact_key(&value)),
                    "refused_address",
                    "this address received enough codes today; try tomorrow",
                ),
            };
            let per_day = match kind {
                ContactKind::Phone => s.config.per_number_per_day,
                ContactKind::Email => s.config.per_address_per_day,
            };
            if s.limit(key, DAY_MS, per_day, now).await.is_err() {
                s.stat(stat, now).await;
                not_sent.insert(kind.as_str(), refused.into());
                continue;
            }
            if kind == ContactKind::Phone
                && s.limit(
                    format!("signup:prefix:{}", phone_prefix(&value)),
                    HOUR_MS,
                    s.config.per_prefix_per_hour,
                    now,
                )
                .await
                .is_err()
            {
                s.stat("refused_prefix", now).await;
                not_sent.insert(kind.as_str(), "too many codes to numbers like this one this hour; try again later or use e-mail".into());
                continue;
            }
            // The hour's budget over everything, counted last: a code
            // refused by another limit does not spend it.
            if let Err(e) = s.spend_budget(now).await {
                not_sent.insert(kind.as_str(), e.to_string());
                continue;
            }
            let code = six_digits();
            let hash = s.code_hash(&registration.id, kind, &code);
            if let Some(c) = registration.contact_mut(kind) {
                c.issue(hash, now);
            }
            to_send.push((kind, channel, code));
        }
        if !to_send.is_empty() {
            registration.version += 1;
            if !s
                .ports
                .registrations
                .replace_registration(&registration)
                .await?
            {
                return Err(AppError::Conflict(
                    "the registration changed at the same time; try again".into(),
                ));
            }
        }
        let mut codes_sent = Vec::new();
        for (kind, channel, code) in to_send {
            let Some(contact) = registration.contact(kind) else {
                continue;
            };
            let rendered =
                bealert_core::message::verification(channel, registration.profile.language, &code);
            let message = OutboundMessage {
                key: format!(
                    "verify:{}:{}:{}",
                    registration.id,
                    kind.as_str(),
                    contact.sends
                ),
                kind: MessageKind::Verification,
                channel,
                to: contact.value.clone(),
                language: rendered.language,
                subject: rendered.subject,
                text: rendered.text,
                signature: None,
                not_after: now + 60_000,
                provider: None,
                unsubscribe: None,
            };
            // The signup's own gateways: never the alerts' sending identity.
            match s
                .ports
                .gateways
                .get(channel)
                .send(std::slice::from_ref(&message))
                .await
                .pop()
            {
                Some(Ok(Sent::Accepted(_) | Sent::AlreadySent)) => {
                    codes_sent.push(kind);
                    crate::metrics::signup_code_sent(channel);
                    s.stat(
                        match channel {
                            Channel::Sms => "codes_sent_sms",
                            Channel::Voice => "codes_sent_voice",
                            Channel::Email => "codes_sent_email",
                        },
                        now,
                    )
                    .await;
                }
                Some(Err(e)) => {
                    tracing::warn!(registration = %registration.id, contact = kind.as_str(), error = %e, "verification code not sent");
                    not_sent.insert(
                        kind.as_str(),
                        "the code could not be sent just now; ask for a new one in a minute".into(),
                    );
                }
                None => {}
            }
        }
        Ok(view(&registration, codes_sent, not_sent))
    }

    async fn registration(&self, id: &str) -> Result<Registration, AppError> {
        let s = self.signup;
        if id.len() > 64 {
            return Err(AppError::NotFound("no such registration".into()));
        }
        s.ports
            .registrations
            .get_registration(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no registration {id:?}; register again")))
    }

    /// `POST /v1/subscribers/{id}:verify`: checks a code. A verified
    /// contact turns its channels on: the registration's reachable
    /// projection is stored as a subscriber.
    pub async fn verify_contact(
        &self,
        id: &str,
        contact: &str,
        code: &str,
    ) -> Result<RegistrationView, AppError> {
        let s = self.signup;
        let kind = contact_kind(contact)?;
        let code = code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AppError::Invalid(ValidationErrors::single(
                "code",
                "type the 6 digits of the code you received",
            )));
        }
        for _ in 0..5 {
            let now = self.app.now_ms();
            let mut registration = self.registration(id).await?;
            let hash = s.code_hash(&registration.id, kind, code);
            let Some(state) = registration.contact_mut(kind) else {
                return Err(AppError::Invalid(ValidationErrors::single(
                    "contact",
                    format!("this registration has no {}", kind.as_str()),
                )));
            };
            let check = state.check(&hash, now);
            if check != CodeCheck::AlreadyVerified && check != CodeCheck::NoCode {
                registration.version += 1;
                if !s
                    .ports
                    .registrations
                    .replace_registration(&registration)
                    .await?
                {
                    continue;
                }
            }
            return match check {
                CodeCheck::Verified | CodeCheck::AlreadyVerified => {
                    if check == CodeCheck::Verified {
                        s.stat("verified", now).await;
                    }
                    self.app.project(&registration).await?;
                    Ok(view(&registration, vec![], BTreeMap::new()))
                }
                CodeCheck::Wrong { attempts_left } => {
                    Err(AppError::Invalid(ValidationErrors::single(
                        "code",
                        format!("this code is not right; {attempts_left} tries left"),
                    )))
                }
                CodeCheck::Locked => Err(AppError::Conflict(
                    "this code is locked after 5 wrong tries; ask for a new code".into(),
                )),
                CodeCheck::Expired => Err(AppError::Invalid(ValidationErrors::single(
                    "code",
                    "this code has expired (10 minutes); ask for a new code",
                ))),
                CodeCheck::NoCode => Err(AppError::Invalid(ValidationErrors::single(
                    "code",
                    "no code was sent to this contact; ask for one",
                ))),
            };
        }
        Err(AppError::Conflict(
            "the registration kept changing; try again".into(),
        ))
    }

    /// `POST /v1/subscribers/{id}:resend`: a new code for one contact.
    pub async fn resend_code(&self, id: &str, contact: &str) -> Result<RegistrationView, AppError> {
        let kind = contact_kind(contact)?;
        let registration = self.registration(id).await?;
        self.send_codes(registration, &[kind], self.app.now_ms())
            .await
    }

    /// Where a registration stands (for the page).
    pub async fn registration_view(&self, id: &str) -> Result<RegistrationView, AppError> {
        let registration = self.registration(id).await?;
        Ok(view(&registration, vec![], BTreeMap::new()))
    }

    /// A registration's contacts (as typed) and its channels turned on, for the page.
    pub async fn registration_contacts(
        &self,
        id: &str,
    ) -> Result<
        (
            std::collections::HashMap<ContactKind, String>,
            Vec<bealert_core::Channel>,
        ),
        AppError,
    > {
        let r = self.registration(id).await?;
        let contacts = [ContactKind::Phone, ContactKind::Email]
            .into_iter()
            .filter_map(|k| r.contact(k).map(|c| (k, c.value.clone())))
            .collect();
        Ok((contacts, r.verified_channels().iter().collect()))
    }

    /// `GET /v1/signup/stats` (operator): today's counters.
    pub async fn signup_stats(
        &self,
        operator: &bealert_core::operator::Operator,
    ) -> Result<SignupStats, AppError> {
        let _ = operator;
        let s = self.signup;
        let now = self.app.now_ms();
        let mut counters = BTreeMap::new();
        for name in STATS {
            counters.insert(
                name,
                s.ports
                    .counters
                    .count(&format!("stats:{name}"), DAY_MS, now)
                    .await?,
            );
        }
        Ok(SignupStats {
            day_started_at: crate::format_ms(now - now.rem_euclid(DAY_MS)),
            counters,
        })
    }
}

fn view(
    registration: &Registration,
    codes_sent: Vec<ContactKind>,
    not_sent: BTreeMap<&'static str, String>,
) -> RegistrationView {
    let verified = [ContactKind::Phone, ContactKind::Email]
        .into_iter()
        .filter(|k| registration.contact(*k).is_some_and(|c| c.verified))
        .collect();
    RegistrationView {
        id: registration.id.clone(),
        state: registration.state(),
        unverified: registration.unverified(),
        verified,
        codes_sent,
        not_sent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_solved_challenge_has_the_zero_bits() {
        let nonce = solve_pow("abc", 12);
        let d = Sha256::digest(format!("abc:{nonce}").as_bytes());
        assert!(leading_zero_bits(&d) >= 12);
        assert_eq!(leading_zero_bits(&[0, 0x10]), 11);
    }
}
