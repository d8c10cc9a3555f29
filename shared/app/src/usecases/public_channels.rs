//! Public channels in the alert flow: social media, digital signs and
//! sirens. Outlets are registered by national operators (`PUT
//! /v1/outlets/{name}`), social accounts and sign networks for a
//! jurisdiction (national by default) that an alert's operator must cover
//! to use them, sirens at a position its zone must hold; their URLs are
//! `https` to public addresses only ([`bealert_core::endpoint`]). An alert
//! names them (`"public"`), and each outlet
//! gets one target delivery (keyed per alert and outlet) and one job on
//! its channel's queue, with its own rate limit, so a slow social network
//! never holds a siren and no channel waits for another.

use super::{App, JobError, JobOutcome};
use crate::AppError;
use crate::error::parse_body;
use crate::jobs::{PublicJob, public_queue};
use crate::ports::{AlertRecord, Claim, GatewayError, Post, PublicMessage, PublicPorts};
use bealert_core::alert::AlertSpec;
use bealert_core::broadcast::Target;
use bealert_core::message::render;
use bealert_core::operator::{Jurisdiction, Operator};
use bealert_core::outlet::{Outlet, OutletKind, PostFields, siren_tone};
use bealert_core::zone::Zone;
use bealert_core::{Channel, FieldError, ValidationErrors};
use std::time::Duration;

const KIND: &str = "outlet";

/// The window of an outlet's `per_minute` limit.
const MINUTE_MS: i64 = 60_000;

impl App {
    /// Sets up the public channels ([`PublicPorts`]); their deliveries are
    /// target deliveries, so Alert-SMS's ports must be set up too.
    pub fn with_public(mut self, ports: PublicPorts) -> Self {
        self.public = Some(ports);
        self
    }

    fn public_ports(&self) -> Result<&PublicPorts, AppError> {
        self.public
            .as_ref()
            .ok_or_else(|| AppError::NotNow("public channels are not set up in this home".into()))
    }

    /// `PUT /v1/outlets/{name}`: national operators register the outlets;
    /// `true` if it was new.
    pub async fn put_outlet(
        &self,
        operator: &Operator,
        name: &str,
        body: &[u8],
    ) -> Result<(Outlet, bool), AppError> {
        if !operator.may(bealert_core::operator::Task::Outlets) {
            return Err(AppError::Forbidden(
                "outlets (social accounts, sirens, signs) are registered by national operators; \
                 name them in an alert's \"public\""
                    .into(),
            ));
        }
        let mut v: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| AppError::BadRequest(format!("the body is not JSON: {e}")))?;
        let Some(fields) = v.as_object_mut() else {
            return Err(ValidationErrors::single(
                "",
                "give the outlet as a JSON object, e.g. {\"kind\": \"sign\", \"url\": \"https://signs.example/cap\"}",
            )
            .into());
        };
        match fields.get("name") {
            None => {
                fields.insert("name".into(), serde_json::Value::String(name.into()));
            }
            Some(n) if n.as_str() == Some(name) => {}
            Some(n) => {
                return Err(ValidationErrors::single(
                    "name",
                    format!("the body names {n}, the path {name:?}; leave name out of the body"),
                )
                .into());
            }
        }
        let outlet = parse_body::<Outlet>(v.to_string().as_bytes())?.validate()?;
        if let Some(j) = &outlet.jurisdiction {
            if !j.is_national()
                && super::geography::jurisdiction_unit(self.ports.geography.as_ref(), j)
                    .await?
                    .is_none()
            {
                return Err(ValidationErrors::single(
                    "jurisdiction",
                    format!(
                        "{j}: its boundary is not loaded, so which alerts may use this outlet could not be decided; \
                         load it first with `bealert geo load FILE`, or leave jurisdiction out for a national outlet"
                    ),
                )
                .into());
            }
            if let Some(why) = self.not_covered(operator, j).await? {
                return Err(AppError::Forbidden(format!(
                    "you may not register an outlet of {j}: {why}"
                )));
            }
        }
        if outlet.url != "sim"
            && let Some(public) = &self.public
        {
            public
                .gateway
                .reachable(&outlet.url)
                .await
                .map_err(|e| ValidationErrors::single("url", e))?;
        }
        let json = serde_json::to_value(&outlet).map_err(|e| AppError::Internal(e.to_string()))?;
        let new = self
            .ports
            .documents
            .get_document(KIND, name)
            .await?
            .is_none();
        self.ports.documents.put_document(KIND, name, &json).await?;
        tracing::info!(outlet = name, kind = %outlet.kind, operator = %operator.name, "outlet registered");
        Ok((outlet, new))
    }

    /// `GET /v1/outlets`: every outlet, by name.
    pub async fn outlets(&self) -> Result<Vec<Outlet>, AppError> {
        self.ports
            .documents
            .documents(KIND, "")
            .await?
            .into_iter()
            .map(|(_, json)| {
                serde_json::from_value(json).map_err(|e| AppError::Internal(e.to_string()))
            })
            .collect()
    }

    /// `DELETE /v1/outlets/{name}`: national operators only.
    pub async fn delete_outlet(&self, operator: &Operator, name: &str) -> Result<(), AppError> {
        if !operator.may(bealert_core::operator::Task::Outlets) {
            return Err(AppError::Forbidden(
                "outlets are removed by national operators".into(),
            ));
        }
        if !self.ports.documents.delete_document(KIND, name).await? {
            return Err(AppError::NotFound(format!("no outlet is named {name:?}")));
        }
        Ok(())
    }

    async fn outlet(&self, name: &str) -> Result<Option<Outlet>, crate::ports::StoreError> {
        Ok(self
            .ports
            .documents
            .get_document(KIND, name)
            .await?
            .and_then(|j| serde_json::from_value(j).ok()))
    }

    /// Why `operator` may not use an outlet of `target` (`None`: it may):
    /// a national operator covers every jurisdiction, any operator its
    /// own; a province the municipalities inside it. Inside is the rule of
    /// an alert's zone ([`bealert_core::geography::Territory`]) applied to
    /// the outlet's boundary, so no second notion of territory exists.
    pub(crate) async fn not_covered(
        &self,
        operator: &Operator,
        target: &Jurisdiction,
    ) -> Result<Option<String>, AppError> {
        if operator.jurisdiction.is_national() || &operator.jurisdiction == target {
            return Ok(None);
        }
        let refused = || {
            Some(format!(
                "it is an outlet of {target}, which your jurisdiction {} does not cover",
                operator.jurisdiction
            ))
        };
        if target.is_national() {
            return Ok(refused());
        }
        let unit = match super::geography::jurisdiction_unit(self.ports.geography.as_ref(), target)
            .await?
        {
            Some(info) => self.unit(info).await?,
            None => None,
        };
        let (Some(unit), Some(territory)) = (unit, self.territory(operator).await?) else {
            return Ok(refused());
        };
        let inside = tokio::task::spawn_blocking(move || {
            territory.contains(&bealert_core::geography::zone_shape(&unit.unit.area()))
        })
        .await
        .map_err(|e| AppError::Internal(format!("territory task failed: {e}")))?;
        Ok(if inside { None } else { refused() })
    }

    /// At creation: names every outlet of a kind the request left out
    /// (those the operator's jurisdiction covers), refuses unknown ones,
    /// social accounts and sign networks of a jurisdiction the operator
    /// does not cover, and siren groups outside the zone.
    pub(crate) async fn prepare_public(
        &self,
        operator: &Operator,
        spec: &mut AlertSpec,
    ) -> Result<(), AppError> {
        let Some(public) = spec.public.as_mut() else {
            return Ok(());
        };
        self.public_ports()?;
        let known = self.outlets().await?;
        // Each jurisdiction among the outlets decided once.
        let mut refusals: std::collections::HashMap<String, Option<String>> = Default::default();
        for o in known.iter().filter(|o| o.kind != OutletKind::Siren) {
            let j = o.jurisdiction();
            if let std::collections::hash_map::Entry::Vacant(e) = refusals.entry(j.to_string()) {
                e.insert(self.not_covered(operator, &j).await?);
            }
        }
        let refusal = |o: &Outlet| -> Option<&String> {
            if o.kind == OutletKind::Siren {
                return None;
            }
            refusals
                .get(&o.jurisdiction().to_string())
                .and_then(Option::as_ref)
        };
        for kind in std::mem::take(&mut public.every) {
            let list = match kind {
                OutletKind::Social => &mut public.social,
                OutletKind::Sign => &mut public.signs,
                OutletKind::Siren => &mut public.sirens,
            };
            *list = known
                .iter()
                .filter(|o| o.kind == kind && refusal(o).is_none())
                .map(|o| o.name.clone())
                .collect();
        }
        let zone = Zone::new(&spec.area);
        let mut errors = Vec::new();
        for (path, kind, names) in [
            ("public.social", OutletKind::Social, &public.social),
            ("public.signs", OutletKind::Sign, &public.signs),
            ("public.sirens.groups", OutletKind::Siren, &public.sirens),
        ] {
            let of_kind: Vec<&str> = known
                .iter()
                .filter(|o| o.kind == kind)
                .map(|o| o.name.as_str())
                .collect();
            for (i, name) in names.iter().enumerate() {
                let path = format!("{path}[{i}]");
                match known.iter().find(|o| &o.name == name && o.kind == kind) {
                    None => errors.push(FieldError {
                        path,
                        message: format!(
                            "unknown {kind} outlet {name:?}; known: {}",
                            if of_kind.is_empty() {
                                "none yet (PUT /v1/outlets/{name})".to_string()
                            } else {
                                of_kind.join(", ")
                            }
                        ),
                    }),
                    Some(o) => {
                        if let Some(why) = refusal(o) {
                            errors.push(FieldError {
                                path: path.clone(),
                                message: format!(
                                    "{kind} outlet {name:?}: {why}; name only outlets of your territory (GET /v1/outlets shows each one's jurisdiction)"
                                ),
                            });
                        }
                        if let Some([lon, lat]) = o.position
                            && !zone.contains(lat, lon)
                        {
                            errors.push(FieldError {
                                path,
                                message: format!(
                                    "siren group {name:?} stands at [{lon}, {lat}], outside the zone; \
                                     sound only the sirens of the people concerned"
                                ),
                            });
                        }
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(ValidationErrors(errors).into());
        }
        Ok(())
    }

    /// At dispatch: one delivery and one job per outlet of the alert (the
    /// sirens only where the alert sounds a tone).
    pub(crate) async fn plan_public(&self, alert: &AlertRecord) -> Result<(), JobError> {
        let Some(public) = &alert.spec.public else {
            return Ok(());
        };
        let mut targets = public.targets();
        if siren_tone(public, alert.spec.msg_type, alert.spec.all_clear).is_none() {
            targets.retain(|t| !matches!(t, Target::Siren(_)));
        }
        self.plan_outlets(alert, &targets).await
    }

    /// [`Self::plan_public`] to the outlets' targets given.
    pub(crate) async fn plan_outlets(
        &self,
        alert: &AlertRecord,
        targets: &[Target],
    ) -> Result<(), JobError> {
        if targets.is_empty() {
            return Ok(());
        }
        let store = &self.ports.targets;
        store.plan_targets(alert.id, targets, self.now_ms()).await?;
        for kind in OutletKind::ALL {
            let bodies: Vec<String> = targets
                .iter()
                .filter(|t| t.outlet_kind() == Some(kind))
                .map(|t| {
                    serde_json::to_string(&PublicJob {
                        alert_id: alert.id,
                        outlet: t.name().to_string(),
                    })
                })
                .collect::<Result<_, _>>()
                .map_err(JobError::from)?;
            for chunk in bodies.chunks(10) {
                self.ports.queue.send(public_queue(kind), chunk).await?;
            }
        }
        Ok(())
    }

    /// A job of a public channel's queue (one outlet's part of an alert).
    pub fn public_job<'a>(
        &'a self,
        queue: &'a str,
        body: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<JobOutcome, JobError>> {
        Box::pin(async move {
            let kind = crate::jobs::public_kind(queue)
                .ok_or_else(|| JobError::Poison(format!("no handler for queue {queue:?}")))?;
            let job: PublicJob =
                serde_json::from_str(body).map_err(|e| JobError::Poison(e.to_string()))?;
            if let Some(wait) = self.while_halted().await? {
                return Ok(wait);
            }
            self.handle_public(kind, job).await
        })
    }

    /// One outlet's part of one alert.
    pub(crate) async fn handle_public(
        &self,
        kind: OutletKind,
        job: PublicJob,
    ) -> Result<JobOutcome, JobError> {
        let public = self.public_ports().map_err(JobError::from)?.clone();
        let store = self.ports.targets.clone();
        let config = self.broadcast_config();
        let alert = self.job_alert_head(job.alert_id).await?;
        if alert.state.is_final() {
            return Ok(JobOutcome::Done);
        }
        let target = Target::outlet(kind, &job.outlet);
        let outlet = self.outlet(&job.outlet).await?;

        // The outlet's rate limit, before taking the delivery.
        let now = self.now_ms();
        let weight = match (&outlet, kind) {
            (Some(o), OutletKind::Social) => post_languages(&alert, o).len().max(1) as u64,
            _ => 1,
        };
        let limit_key = format!("outlet:{}", job.outlet);
        if let Some(limit) = outlet.as_ref().and_then(|o| o.per_minute) {
            // An alert's posts wider than the limit go out whole in a
            // minute of their own rather than never.
            let used = public.counters.count(&limit_key, MINUTE_MS, now).await?;
            if used > 0 && used + weight > u64::from(limit) {
                let wait = MINUTE_MS - now.rem_euclid(MINUTE_MS) + 10;
                return Ok(JobOutcome::RetryAfter(
                    Duration::from_millis(wait as u64),
                    format!("{target} is at its limit of {limit} per minute"),
                ));
            }
        }

        let lease = config.gateway_timeout * 2 + Duration::from_secs(5);
        let attempt = match store.claim_target(alert.id, &target, now, lease).await? {
            Claim::Done | Claim::Unknown => return Ok(JobOutcome::Done),
            Claim::Busy { until } => {
                return Ok(JobOutcome::RetryAfter(
                    Duration::from_millis((until - now).max(10) as u64),
                    format!("{target} is being sent by another worker"),
                ));
            }
            Claim::Claimed { attempt, .. } => attempt,
        };
        let result = match outlet {
            None => Err(GatewayError::Permanent(format!(
                "outlet {:?} was removed before its turn",
                job.outlet
            ))),
            Some(outlet) => {
                if outlet.per_minute.is_some() {
                    public
                        .counters
                        .bump(&limit_key, weight, MINUTE_MS, now)
                        .await?;
                }
                let message = self
                    .public_message(&alert, outlet, now + lease.as_millis() as i64 - 2_000)
                    .await
                    .map_err(JobError::from)?;
                match tokio::time::timeout(config.gateway_timeout, public.gateway.publish(&message))
                    .await
                {
                    Ok(r) => r,
                    // A timeout is not a refusal: the outlet may have published;
                    // the retry carries the same key, which it never publishes twice.
                    Err(_) => Err(GatewayError::Retryable(format!(
                        "{target} did not answer within {:?}",
                        config.gateway_timeout
                    ))),
                }
            }
        };
        self.finish_target(alert.id, &target, attempt, result, None)
            .await
    }

    /// What one outlet gets: the posts (social), the tone (sirens), the
    /// CAP message (signs).
    async fn public_message(
        &self,
        alert: &AlertRecord,
        outlet: Outlet,
        not_after: i64,
    ) -> Result<PublicMessage, AppError> {
        let spec = &alert.spec;
        let key = format!("{}:{}", alert.id, outlet.target());
        let mut message = PublicMessage {
            key,
            alert_id: alert.id,
            posts: Vec::new(),
            tone: None,
            cap: None,
            not_after,
            outlet,
        };
        match message.outlet.kind {
            OutletKind::Social => {
                let link = self
                    .config
                    .public_url
                    .clone()
                    .or_else(|| self.public_url())
                    .map(|u| format!("{}/alerts", u.trim_end_matches('/')))
                    .unwrap_or_default();
                let template = message
                    .outlet
                    .template
                    .clone()
                    .unwrap_or_else(|| bealert_core::outlet::DEFAULT_TEMPLATE.into());
                for language in post_languages(alert, &message.outlet) {
                    let Some(r) = render(spec, Channel::Sms, language) else {
                        continue;
                    };
                    let fields = PostFields {
                        event: &spec.event,
                        place: spec.place.as_deref().unwrap_or_default(),
                        text: &r.text,
                        link: &link,
                        sender: spec.signature.as_deref().unwrap_or(&alert.operator),
                        language: language.code(),
                    };
                    message.posts.push(Post {
                        language,
                        text: bealert_core::outlet::render_post(
                            &template,
                            &fields,
                            message.outlet.max_chars(),
                        ),
                    });
                }
            }
            OutletKind::Siren => {
                message.tone = spec
                    .public
                    .as_ref()
                    .and_then(|p| siren_tone(p, spec.msg_type, spec.all_clear));
            }
            OutletKind::Sign => {
                let full = self.stored_alert(&alert.id.to_string()).await?;
                message.cap = Some(self.cap_of(&full).await?);
            }
        }
        Ok(message)
    }

    /// A dead-lettered public job: its outlet is declared failed.
    pub(crate) async fn dead_public(
        &self,
        kind: OutletKind,
        job: PublicJob,
        why: &str,
    ) -> Result<(), crate::ports::StoreError> {
        self.dead_target(job.alert_id, &Target::outlet(kind, &job.outlet), why)
            .await
    }

    /// A follow-up to the outlets that published the original: social and
    /// signs always, sirens when it sounds (a cancel stops them, an
    /// all-clear sounds the all-clear).
    pub(crate) async fn follow_up_outlets(
        &self,
        alert: &AlertRecord,
        published: Vec<Target>,
    ) -> Result<(), JobError> {
        let sounds = alert
            .spec
            .public
            .as_ref()
            .and_then(|p| siren_tone(p, alert.spec.msg_type, alert.spec.all_clear))
            .is_some();
        let targets: Vec<Target> = published
            .into_iter()
            .filter(|t| t.outlet_kind().is_some() && (sounds || !matches!(t, Target::Siren(_))))
            .collect();
        self.plan_outlets(alert, &targets).await
    }
}

/// The languages a social outlet posts for an alert: its own list, or
/// every language of the alert.
fn post_languages(alert: &AlertRecord, outlet: &Outlet) -> Vec<bealert_core::Language> {
    alert
        .spec
        .messages
        .0
        .keys()
        .copied()
        .filter(|l| outlet.languages.is_empty() || outlet.languages.contains(l))
        .collect()
}
