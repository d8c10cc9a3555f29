//! Self-service: a citizen asks for a link (sent only to a verified
//! contact), and with it views, edits, pauses, exports or deletes their
//! registration. A link is signed and expires after an hour.

use super::signup::{Signup, SignupApp};
use crate::AppError;
use crate::ports::{MessageKind, OutboundMessage};
use bealert_core::error::ValidationErrors;
use bealert_core::signup::{ContactKind, Registration, RegistrationState};
use bealert_core::subscriber::{AddressInput, SubscriberInput, normalise_email, normalise_phone};
use bealert_core::{Channel, Language};
use serde::Serialize;
use std::net::IpAddr;

/// How long a self-service link works.
pub const LINK_TTL_MS: i64 = 3_600_000;
/// Links asked for one contact per hour.
const LINKS_PER_CONTACT_PER_HOUR: u64 = 3;

/// A signed self-service link's parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManageLink {
    pub id: String,
    pub until: i64,
    pub sig: String,
}

impl ManageLink {
    /// The link's path and query.
    pub fn path(&self) -> String {
        format!("/manage/{}?until={}&sig={}", self.id, self.until, self.sig)
    }
}

/// Everything kept about a registration (the GDPR export and the manage page).
#[derive(Debug, Clone, Serialize)]
pub struct RegistrationExport {
    pub id: String,
    pub state: RegistrationState,
    pub language: Language,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<ContactExport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<ContactExport>,
    /// Channels chosen; `active_channels` are those whose contact is verified.
    pub channels: Vec<Channel>,
    pub active_channels: Vec<Channel>,
    pub addresses: Vec<AddressExport>,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ContactExport {
    pub value: String,
    pub verified: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct AddressExport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub lat: f64,
    pub lon: f64,
}

/// What deleting a registration removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeletionReport {
    pub registration: bool,
    pub subscriber: bool,
    pub addresses: usize,
    pub groups: usize,
    /// Past deliveries whose contact was erased.
    pub deliveries: u64,
    /// Queued jobs or dead letters the contact was removed from.
    pub queued_jobs: u64,
}

/// A change of a registration from the manage page: contacts stay (a new
/// contact is a new registration, with its own code).
#[derive(Debug, Clone)]
pub struct RegistrationEdit {
    pub language: String,
    pub channels: Vec<String>,
    pub addresses: Vec<AddressInput>,
}

impl Signup {
    /// The keyed hash a contact is found by (no plain index of contacts).
    pub fn contact_key(&self, normalised: &str) -> String {
        self.token("contact", normalised)
    }

    pub fn manage_link(&self, id: &str, until: i64) -> ManageLink {
        ManageLink {
            id: id.to_string(),
            until,
            sig: self.token("manage", &format!("{id}.{until}")),
        }
    }

    fn check_link(&self, link: &ManageLink, now: i64) -> Result<(), AppError> {
        if !self.check_token("manage", &format!("{}.{}", link.id, link.until), &link.sig) {
            return Err(AppError::Forbidden(
                "this link is not valid; ask for a new one at /manage".into(),
            ));
        }
        if now > link.until {
            return Err(AppError::Forbidden(
                "this link has expired (after an hour); ask for a new one at /manage".into(),
            ));
        }
        Ok(())
    }
}

/// A typed contact, normalised: a phone if it starts with `+`, else an e-mail.
fn normalise_contact(raw: &str) -> Result<(ContactKind, String), AppError> {
    let raw = raw.trim();
    let parsed = if raw.starts_with('+') {
        normalise_phone(raw).map(|p| (ContactKind::Phone, p))
    } else {
        normalise_email(raw).map(|e| (ContactKind::Email, e))
    };
    parsed.map_err(|m| AppError::Invalid(ValidationErrors::single("contact", m)))
}

fn export(r: &Registration) -> RegistrationExport {
    let contact = |k| {
        r.contact(k).map(|c| ContactExport {
            value: c.value.clone(),
            verified: c.verified,
        })
    };
    RegistrationExport {
        id: r.id.clone(),
        state: r.state(),
        language: r.profile.language,
        phone: contact(ContactKind::Phone),
        email: contact(ContactKind::Email),
        channels: r.profile.channels.iter().collect(),
        active_channels: r.verified_channels().iter().collect(),
        addresses: r
            .profile
            .addresses
            .iter()
            .map(|a| AddressExport {
                label: a.label.clone(),
                lat: a.lat,
                lon: a.lon,
            })
            .collect(),
        created_at: crate::format_ms(r.created_at),
    }
}

impl SignupApp<'_> {
    /// Sends a self-service link to `contact` if a registration has it
    /// verified. The answer is the same whether or not one has (nobody
    /// learns who is registered); at most 3 links per contact an hour.
    pub async fn request_manage_link(
        &self,
        contact: &str,
        client: Option<IpAddr>,
    ) -> Result<(), AppError> {
        let s = self.signup;
        let (kind, value) = normalise_contact(contact)?;
        let now = self.app.now_ms();
        let key = s.contact_key(&value);
        let asked = s
            .ports
            .counters
            .bump(&format!("link:{key}"), 1, 3_600_000, now)
            .await?;
        if asked > LINKS_PER_CONTACT_PER_HOUR {
            return Err(AppError::TooManyRequests(
                "three links were asked for this contact this hour; use the last one or wait"
                    .into(),
            ));
        }
        let _ = client;
        for id in s.ports.registrations.registrations_by_key(&key).await? {
            let Some(r) = s.ports.registrations.get_registration(&id).await? else {
                continue;
            };
            if !r
                .contact(kind)
                .is_some_and(|c| c.verified && c.value == value)
            {
                continue;
            }
            let link = s.manage_link(&r.id, now + LINK_TTL_MS);
            let url = format!("{}{}", s.config.public_url, link.path());
            let text = match r.profile.language {
                Language::Nl => format!("Beheer uw bealert-inschrijving (1 uur geldig): {url}"),
                Language::Fr => {
                    format!("Gérez votre inscription bealert (valable 1 heure) : {url}")
                }
                Language::De => {
                    format!("Verwalten Sie Ihre bealert-Anmeldung (1 Stunde gültig): {url}")
                }
                Language::En => format!("Manage your bealert registration (valid 1 hour): {url}"),
            };
            // A link cannot be read out on a call: a fixed line gets none
            // (the answer stays the same).
            let Some(channel) = super::signup::code_channel(kind, &value)
                .filter(|c| matches!(c, Channel::Sms | Channel::Email))
            else {
                continue;
            };
            s.spend_budget(now).await?;
            let message = OutboundMessage {
                key: format!("link:{}:{now}", r.id),
                kind: MessageKind::SelfService,
                channel,
                to: value.clone(),
                language: r.profile.language,
                subject: (channel == Channel::Email).then(|| "bealert".to_string()),
                text,
                signature: None,
                not_after: now + 60_000,
                provider: None,
                unsubscribe: None,
            };
            // The signup's own gateways, as codes: never the alerts'.
            if let Some(Err(e)) = s.ports.gateways.get(channel).send(&[message]).await.pop() {
                tracing::warn!(registration = %r.id, error = %e, "self-service link not sent");
                return Err(AppError::NotNow(
                    "the link could not be sent just now; try again in a minute".into(),
                ));
            }
        }
        Ok(())
    }

    /// The registration a link is for, once its signature and age are checked.
    async fn linked(&self, link: &ManageLink) -> Result<Registration, AppError> {
        let s = self.signup;
        s.check_link(link, self.app.now_ms())?;
        s.ports
            .registrations
            .get_registration(&link.id)
            .await?
            .ok_or_else(|| AppError::NotFound("this registration no longer exists".into()))
    }

    /// Everything kept about the registration (also the GDPR export).
    pub async fn manage_view(&self, link: &ManageLink) -> Result<RegistrationExport, AppError> {
        let r = self.linked(link).await?;
        Ok(export(&r))
    }

    /// Applies `change` over the stored registration (retrying on a
    /// concurrent write), then stores what alerts may see.
    async fn change_registration(
        &self,
        link: &ManageLink,
        change: impl Fn(&mut Registration) -> Result<(), AppError>,
    ) -> Result<RegistrationExport, AppError> {
        for _ in 0..5 {
            let mut r = self.linked(link).await?;
            change(&mut r)?;
            r.version += 1;
            if self
                .signup
                .ports
                .registrations
                .replace_registration(&r)
                .await?
            {
                self.app.project(&r).await?;
                return Ok(export(&r));
            }
        }
        Err(AppError::Conflict(
            "the registration kept changing; try again".into(),
        ))
    }

    /// Pauses (alerts skip the citizen) or resumes the registration.
    pub async fn manage_pause(
        &self,
        link: &ManageLink,
        paused: bool,
    ) -> Result<RegistrationExport, AppError> {
        self.change_registration(link, |r| {
            r.paused = paused;
            Ok(())
        })
        .await
    }

    /// Changes language, channels and addresses (validated as at signup).
    pub async fn manage_edit(
        &self,
        link: &ManageLink,
        edit: RegistrationEdit,
    ) -> Result<RegistrationExport, AppError> {
        self.change_registration(link, |r| {
            let input = SubscriberInput {
                external_id: r.profile.external_id.clone(),
                language: edit.language.clone(),
                phone: r.profile.phone.clone(),
                email: r.profile.email.clone(),
                channels: edit.channels.clone(),
                addresses: edit.addresses.clone(),
                groups: r.profile.groups.clone(),
            };
            r.profile = input.validate()?;
            Ok(())
        })
        .await
    }

    /// Deletes the registration and every trace of the citizen bealert
    /// keeps: the subscriber with its addresses and groups, the contact in
    /// past deliveries and in queued jobs; says what it removed.
    pub async fn manage_delete(&self, link: &ManageLink) -> Result<DeletionReport, AppError> {
        let r = self.linked(link).await?;
        let now = self.app.now_ms();
        let subscriber = r.subscriber_id;
        let mut report = DeletionReport {
            subscriber: self
                .app
                .ports
                .subscribers
                .remove_subscriber(subscriber)
                .await?,
            ..DeletionReport::default()
        };
        if report.subscriber {
            report.addresses = r.profile.addresses.len();
            report.groups = r.profile.groups.len();
        }
        report.deliveries = self
            .app
            .ports
            .deliveries
            .forget_subscriber(subscriber, "the subscriber deleted their registration", now)
            .await?;
        report.queued_jobs = self.app.ports.queue.forget_subscriber(subscriber).await?;
        report.registration = self
            .signup
            .ports
            .registrations
            .delete_registration(&r.id)
            .await?;
        tracing::info!(registration = %r.id, ?report, "registration deleted by its citizen");
        Ok(report)
    }
}
