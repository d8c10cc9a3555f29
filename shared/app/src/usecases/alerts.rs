//! Creating alerts and following them: `POST /v1/alerts`, `GET /v1/alerts/{id}[/deliveries]`.

use super::App;
use super::geography::confine_area;
use crate::error::parse_body;
use crate::jobs::{RESOLVE_QUEUE, ResolveJob};
use crate::ports::{AlertRecord, AuditEntry, Breakdown, DeliveryRow, Leg};
use crate::{AppError, format_ms};
use base64::Engine;
use bealert_core::alert::{AlertRequest, AlertState};
use bealert_core::cap::{MsgType, Scope, Status};
use bealert_core::delivery::DeliveryStatus;
use bealert_core::estimate::Estimate;
use bealert_core::latency::{Percentiles, percentiles};
use bealert_core::lifecycle::{self, Action};
use bealert_core::operator::{Operator, Task};
use bealert_core::{AlertId, Channel, Language, SubscriberId};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertCreated {
    pub id: AlertId,
    pub state: AlertState,
    /// Actual, Exercise or Test: said in every answer, never to be mistaken.
    pub status: Status,
    /// What the sender should know: a postal code approximated by its
    /// municipalities, a zone where nobody can be.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// `GET /v1/alerts/{id}/audit`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditView {
    pub items: Vec<AuditLine>,
}

/// One audit entry as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditLine {
    /// UTC, RFC 3339.
    pub at: String,
    pub operator: String,
    pub user: String,
    pub client: String,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<AlertState>,
    pub to: AlertState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertView {
    pub id: AlertId,
    pub state: AlertState,
    pub status: Status,
    /// CAP `msgType`: `Update` or `Cancel` of [`Self::references`].
    #[serde(skip_serializing_if = "MsgType::is_alert")]
    pub msg_type: MsgType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub references: Option<AlertId>,
    /// An all-clear: the danger is over.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub all_clear: bool,
    /// CAP `expires` (UTC, RFC 3339): nothing leaves after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    pub scope: Scope,
    pub event: String,
    /// The texts as given, per language (the console shows them).
    pub messages: bealert_core::message::Messages,
    pub operator: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    pub recipients: u64,
    pub channels: BTreeMap<Channel, ChannelView>,
    /// Alert-SMS: each network's part (its delivery is keyed per network,
    /// not per subscriber, and is not listed in `/deliveries`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, NetworkDeliveryView>,
    /// Public channels: each outlet's part, by `kind:name` (`social:…`,
    /// `siren:…`, `sign:…`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub public: BTreeMap<String, OutletDeliveryView>,
    /// The Alert-SMS estimate the alert was accepted with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate: Option<Estimate>,
    pub resolution: ResolutionView,
}

/// One network's part of an alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkDeliveryView {
    pub state: DeliveryStatus,
    pub cells: u64,
    /// Active devices on the selected cells.
    pub requested: u64,
    pub accepted: u64,
    pub delivered: u64,
    pub failed: u64,
    pub overshoot_km2: f64,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One public channel outlet's part of an alert: a social outlet counts
/// its posts (one per language), a siren group its sirens (`accepted`:
/// activated, `delivered`: acknowledged), a sign network its displays.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutletDeliveryView {
    pub kind: bealert_core::outlet::OutletKind,
    pub state: DeliveryStatus,
    pub requested: u64,
    pub accepted: u64,
    pub delivered: u64,
    pub failed: u64,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn none_cancelled(n: &u64) -> bool {
    *n == 0
}

/// Live counts of one channel; `queued` counts every delivery not yet final.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelView {
    pub queued: u64,
    /// Every message that left (delivered ones included).
    pub sent: u64,
    /// Of those sent, how many the provider confirmed (a delivery receipt).
    pub delivered: u64,
    pub failed: u64,
    /// Stopped before they were sent (the alert was cancelled or expired).
    #[serde(skip_serializing_if = "none_cancelled")]
    pub cancelled: u64,
    /// Once the alert is final: why deliveries failed, with how many each.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub reasons: BTreeMap<String, u64>,
    /// The same counts per language of the recipients.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub languages: BTreeMap<Language, LanguageView>,
    /// From the alert's release (approval, or creation when it needed
    /// none) to the provider's acceptance, and to its delivery receipt.
    #[serde(skip_serializing_if = "Times::is_empty")]
    pub times: Times,
}

/// One language's part of a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LanguageView {
    pub queued: u64,
    pub sent: u64,
    pub delivered: u64,
    pub failed: u64,
    #[serde(skip_serializing_if = "none_cancelled")]
    pub cancelled: u64,
    #[serde(skip_serializing_if = "Times::is_empty")]
    pub times: Times,
}

/// p50/p95/p99 in ms, read from a histogram ([`bealert_core::latency`]):
/// each at most 26 % above the exact figure, never below it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Times {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_sent: Option<Percentiles>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_delivered: Option<Percentiles>,
}

impl Times {
    fn is_empty(&self) -> bool {
        self.to_sent.is_none() && self.to_delivered.is_none()
    }

    fn of(histograms: &BTreeMap<Leg, Vec<u64>>) -> Times {
        let p = |leg| histograms.get(&leg).and_then(|h| percentiles(h));
        Times {
            to_sent: p(Leg::ToSent),
            to_delivered: p(Leg::ToDelivered),
        }
    }
}

/// Adds each channel's per-language counts and times to its view.
fn add_breakdown(channels: &mut BTreeMap<Channel, ChannelView>, breakdown: Breakdown) {
    let mut merged: BTreeMap<Channel, BTreeMap<Leg, Vec<u64>>> = BTreeMap::new();
    for ((channel, language), counts) in breakdown {
        let Some(view) = channels.get_mut(&channel) else {
            continue;
        };
        let n = |s| counts.finals.get(&s).copied().unwrap_or(0);
        let done: u64 = counts.finals.values().sum();
        for (leg, h) in &counts.latency {
            let m = merged
                .entry(channel)
                .or_default()
                .entry(*leg)
                .or_insert_with(|| vec![0; h.len()]);
            m.iter_mut().zip(h).for_each(|(a, b)| *a += b);
        }
        view.languages.insert(
            language,
            LanguageView {
                queued: counts.planned.saturating_sub(done),
                sent: n(DeliveryStatus::Sent) + n(DeliveryStatus::Delivered),
                delivered: n(DeliveryStatus::Delivered),
                failed: n(DeliveryStatus::Failed),
                cancelled: n(DeliveryStatus::Cancelled),
                times: Times::of(&counts.latency),
            },
        );
    }
    for (channel, legs) in merged {
        if let Some(view) = channels.get_mut(&channel) {
            view.times = Times::of(&legs);
        }
    }
}

/// Deliveries read to tell why a finished alert's deliveries failed.
const REASON_SCAN: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ResolutionView {
    pub shards_done: u32,
    pub shards_total: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveriesPage {
    pub items: Vec<DeliveryRow>,
    pub next_cursor: Option<String>,
}

pub const DEFAULT_PAGE: usize = 500;

/// The bealert alert a CAP `references` names (`sender,urn:uuid:<id>,sent`).
fn bealert_alert_referenced(references: &str) -> Option<AlertId> {
    references.split_whitespace().find_map(|r| {
        r.split(',')
            .nth(1)?
            .strip_prefix("urn:uuid:")?
            .parse::<AlertId>()
            .ok()
    })
}

/// When an alert was created: its id is a UUID v7, time-ordered.
pub(crate) fn created_ms(id: AlertId) -> i64 {
    id.0.get_timestamp()
        .map(|t| {
            let (secs, nanos) = t.to_unix();
            secs as i64 * 1000 + i64::from(nanos / 1_000_000)
        })
        .unwrap_or(0)
}
pub const MAX_PAGE: usize = 1000;

fn encode_cursor(channel: Channel, subscriber: SubscriberId) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{channel}:{subscriber}"))
}

fn decode_cursor(cursor: &str) -> Result<(Channel, SubscriberId), AppError> {
    let bad = || {
        AppError::BadRequest(format!(
            "cursor {cursor:?} is not one this API gave out; pass next_cursor unchanged"
        ))
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (c, s) = text.split_once(':').ok_or_else(bad)?;
    Ok((
        Channel::from_code(c).ok_or_else(bad)?,
        s.parse().map_err(|_| bad())?,
    ))
}

impl App {
    /// Validates, stores and starts an alert: its geocodes resolved, its
    /// zone and groups within the operator's jurisdiction.
    pub async fn create_alert(
        &self,
        operator: &Operator,
        body: &[u8],
    ) -> Result<AlertCreated, AppError> {
        self.create_alert_from(operator, body, "api").await
    }

    /// [`Self::create_alert`], naming the client in the audit log (e.g.
    /// `http 203.0.113.5 curl/8.5`).
    pub async fn create_alert_from(
        &self,
        operator: &Operator,
        body: &[u8],
        client: &str,
    ) -> Result<AlertCreated, AppError> {
        let filled = self.with_template(body).await?;
        let request = parse_body::<AlertRequest>(filled.as_deref().unwrap_or(body))?;
        self.create_request(operator, request, client, |_| {}).await
    }

    /// `POST /v1/alerts` with `Content-Type: application/cap+xml`: a CAP
    /// 1.2 message (e.g. the meteorological institute's) becomes an alert,
    /// subject to approval like any other; a Cancel of an alert bealert
    /// sent is that alert's `:cancel`. Errors name the CAP element.
    pub async fn create_alert_from_cap(
        &self,
        operator: &Operator,
        xml: &[u8],
        client: &str,
    ) -> Result<AlertCreated, AppError> {
        use bealert_core::cap::MsgType;
        let imported = bealert_core::cap_xml::import(xml)?;
        let ours = imported
            .references
            .as_deref()
            .and_then(bealert_alert_referenced);
        if imported.msg_type == MsgType::Cancel {
            let Some(original) = ours else {
                return Err(bealert_core::ValidationErrors::single(
                    "alert.references",
                    "names no alert bealert sent: a Cancel can only stop bealert's own alerts",
                )
                .into());
            };
            let body = serde_json::json!({"messages": imported.request.messages});
            let mut created = self
                .follow_up_alert(
                    operator,
                    &original.to_string(),
                    bealert_core::lifecycle::FollowUp::Cancel,
                    body.to_string().as_bytes(),
                    client,
                )
                .await?;
            created.warnings.extend(imported.warnings);
            return Ok(created);
        }
        let origins = imported.origins.clone();
        let (msg_type, references, headlines) = (
            imported.msg_type,
            imported.references.clone(),
            imported.headlines.clone(),
        );
        let mut created = self
            .create_request(operator, imported.request, client, move |spec| {
                spec.msg_type = msg_type;
                spec.cap_references = references;
                spec.headlines = headlines;
            })
            .await
            .map_err(|e| match e {
                // The request's own checks, told in CAP's terms.
                AppError::Invalid(mut errors) => {
                    for f in &mut errors.0 {
                        if let Some(from) = origins.get(&f.path).or_else(|| {
                            origins
                                .iter()
                                .find(|(k, _)| f.path.starts_with(k.as_str()))
                                .map(|(_, v)| v)
                        }) {
                            f.path = from.clone();
                        } else if f.path.starts_with("area") {
                            f.path = format!("alert.info[0].{}", f.path);
                        }
                    }
                    AppError::Invalid(errors)
                }
                other => other,
            })?;
        created.warnings.extend(imported.warnings);
        Ok(created)
    }

    /// Validates, stores and starts an alert request; `finish` adds what
    /// the request format cannot say (a CAP import's msgType, headlines).
    pub(crate) async fn create_request(
        &self,
        operator: &Operator,
        request: AlertRequest,
        client: &str,
        finish: impl FnOnce(&mut bealert_core::alert::AlertSpec) + Send,
    ) -> Result<AlertCreated, AppError> {
        super::operators::require(operator, Task::Alert, "send alerts")?;
        let resolved = match &request.area {
            Some(area) => Some(self.resolve_geocodes(area).await?),
            None => None,
        };
        let work = request.geometry_work() + resolved.as_ref().map_or(0, |r| r.vertices());
        // Only geocodes: the area may be exactly their units.
        let only_units = request
            .area
            .as_ref()
            .is_some_and(|a| a.geojson.is_none() && a.circles.is_empty());
        let (geocodes, mut warnings, units) = resolved
            .map(|r| (r.geocodes, r.warnings, r.units))
            .unwrap_or_default();
        let territory = self.territory(operator).await?;
        let (mut spec, confined) = self
            .geometry
            .run(work, move || {
                let mut spec = request.validate_with(&geocodes)?;
                let w = confine_area(
                    territory.as_deref(),
                    &mut spec.area,
                    only_units.then_some(units),
                )?;
                Ok((spec, w))
            })
            .await?;
        warnings.extend(confined);
        finish(&mut spec);
        let created_at = self.now_ms();
        spec.sign(&operator.name, created_at)?;
        if spec.expired_at(self.now_ms()) {
            return Err(bealert_core::ValidationErrors::single(
                "expires",
                "this time has passed: nothing would be sent; give a time in the future",
            )
            .into());
        }
        Self::check_groups(operator, &spec.groups)?;
        self.prepare_broadcast(&mut spec).await?;
        self.prepare_public(operator, &mut spec).await?;
        // Four-eyes: an alert the policy holds waits for another person.
        let held = self.config.approval.requires_approval(spec.status);
        let record = AlertRecord::new(&operator.name, spec, created_at, held);
        let entry = AuditEntry {
            at: record.created_at,
            operator: operator.name.clone(),
            user: operator.user.clone(),
            client: client.into(),
            action: "create".into(),
            from: None,
            to: record.state,
            detail: Some(format!("{:?} alert", record.spec.status)),
        };
        self.start_alert(&record, &entry, &operator.user).await?;
        tracing::info!(alert = %record.id, operator = %operator.name, "alert accepted");
        Ok(AlertCreated {
            id: record.id,
            state: record.state,
            status: record.spec.status,
            warnings,
        })
    }

    /// Stores a new alert with its creation's audit line and sets it
    /// going: its plan job, or, when it is held, word to its approvers.
    /// Job first, alert second: if the process dies in between, the job
    /// finds no alert and is dropped, and the client never got a 201. The
    /// other order could leave a stored alert that never resolves.
    pub(crate) async fn start_alert(
        &self,
        record: &AlertRecord,
        created: &AuditEntry,
        author: &str,
    ) -> Result<(), AppError> {
        let held = record.state == AlertState::AwaitingApproval;
        if !held {
            self.enqueue_plan(record.id, None).await?;
        }
        self.ports.alerts.insert_alert(record, created).await?;
        if held {
            self.notify_approvers(record, author).await;
        }
        Ok(())
    }

    pub(crate) async fn enqueue_plan(
        &self,
        id: AlertId,
        approved_at: Option<i64>,
    ) -> Result<(), AppError> {
        let job = serde_json::to_string(&ResolveJob::Plan {
            alert_id: id,
            approved_at,
        })
        .map_err(|e| AppError::Internal(e.to_string()))?;
        self.ports.queue.send(RESOLVE_QUEUE, &[job]).await?;
        Ok(())
    }

    /// `POST /v1/alerts/{id}:approve`: another person than the one who
    /// created it, with jurisdiction over the whole zone and its groups,
    /// lets an alert awaiting approval go.
    pub async fn approve_alert(
        &self,
        operator: &Operator,
        id: &str,
        client: &str,
    ) -> Result<AlertCreated, AppError> {
        let alert = self
            .alert_for_decision(operator, id, Action::Approve)
            .await?;
        self.cancel_still_needed(&alert).await?;
        // Job first, move second (as at creation): a plan job that finds
        // the alert still awaiting approval waits for the move.
        self.enqueue_plan(alert.id, Some(self.now_ms())).await?;
        self.decide(operator, &alert, Action::Approve, client, None)
            .await
    }

    /// A cancel that waited for approval is moot once its original was
    /// cancelled by another (a plain cancel goes at once): approving it
    /// would send a second cancel to everyone (409: reject it instead).
    async fn cancel_still_needed(&self, alert: &AlertRecord) -> Result<(), AppError> {
        let Some(original) = alert.spec.references else {
            return Ok(());
        };
        if alert.spec.msg_type != MsgType::Cancel {
            return Ok(());
        }
        let Some(o) = self.ports.alerts.get_alert_head(original).await? else {
            return Ok(());
        };
        match self.cancel_of(&o).await? {
            Some(by) if by != alert.id => Err(AppError::Conflict(format!(
                "alert {original}, which this cancel is for, was cancelled meanwhile by alert {by}: reject this one"
            ))),
            _ => Ok(()),
        }
    }

    /// `POST /v1/alerts/{id}:reject` (body `{"reason": "..."}`, optional):
    /// the alert is cancelled before anything was sent.
    pub async fn reject_alert(
        &self,
        operator: &Operator,
        id: &str,
        body: &[u8],
        client: &str,
    ) -> Result<AlertCreated, AppError> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Rejection {
            #[serde(default)]
            reason: Option<String>,
        }
        let reason = if body.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            parse_body::<Rejection>(body)?.reason
        };
        if reason.as_ref().is_some_and(|r| r.chars().count() > 1000) {
            return Err(AppError::BadRequest(
                "reason: at most 1000 characters".into(),
            ));
        }
        let alert = self
            .alert_for_decision(operator, id, Action::Reject)
            .await?;
        self.decide(operator, &alert, Action::Reject, client, reason)
            .await
    }

    /// The alert a person may approve or reject: visible to them, awaiting
    /// approval, created by someone else, inside their jurisdiction.
    async fn alert_for_decision(
        &self,
        operator: &Operator,
        id: &str,
        action: Action,
    ) -> Result<AlertRecord, AppError> {
        super::operators::require(
            operator,
            Task::Approve,
            &format!("{} alerts", action.as_str()),
        )?;
        let mut alert = self.stored_alert(id).await?;
        self.expire_if_due(&mut alert).await?;
        lifecycle::next(alert.state, action).map_err(|e| AppError::Conflict(e.to_string()))?;
        let created = self.ports.alerts.audit(alert.id).await?;
        let creator = created.iter().find(|e| e.action == "create");
        if creator.is_some_and(|c| c.operator == operator.name && c.user == operator.user) {
            return Err(AppError::Forbidden(format!(
                "{} created this alert: another person must {} it (four-eyes); \
                 add people with `bealert user create`",
                operator.user,
                action.as_str()
            )));
        }
        self.check_jurisdiction(operator, &alert, action.as_str())
            .await?;
        Ok(alert)
    }

    /// An alert nobody approved within the wait expires (checked when it
    /// is read or decided on: nothing is sent while it waits anyway).
    pub(crate) async fn expire_if_due(
        &self,
        alert: &mut AlertRecord,
    ) -> Result<(), crate::ports::StoreError> {
        let wait = i64::try_from(self.config.approval_wait.as_millis()).unwrap_or(i64::MAX);
        if alert.state != AlertState::AwaitingApproval
            || self.now_ms().saturating_sub(alert.created_at) < wait
        {
            return Ok(());
        }
        let mut entry = AuditEntry::system(
            "expire",
            Some(AlertState::AwaitingApproval),
            AlertState::Expired,
            self.now_ms(),
        );
        entry.detail = Some(format!(
            "nobody approved it within {} minutes",
            self.config.approval_wait.as_secs() / 60
        ));
        if self
            .ports
            .alerts
            .transition(
                alert.id,
                AlertState::AwaitingApproval,
                AlertState::Expired,
                &entry,
            )
            .await?
        {
            tracing::info!(alert = %alert.id, "alert expired awaiting approval");
            alert.state = AlertState::Expired;
        } else if let Some(now) = self.ports.alerts.get_alert_head(alert.id).await? {
            alert.state = now.state;
        }
        Ok(())
    }

    /// The alert, whole; 404 if there is none.
    pub(crate) async fn stored_alert(&self, id: &str) -> Result<AlertRecord, AppError> {
        // Not `visible_alert`: a person outside the zone's jurisdiction is
        // told so (403), not that the alert does not exist.
        let not_found = || AppError::NotFound(format!("no alert has id {id:?}"));
        let alert_id: AlertId = id.parse().map_err(|_| not_found())?;
        self.ports
            .alerts
            .get_alert(alert_id)
            .await?
            .ok_or_else(not_found)
    }

    /// 403 unless the person has jurisdiction over the alert's whole zone
    /// and its groups (`verb` says what they tried).
    pub(crate) async fn check_jurisdiction(
        &self,
        operator: &Operator,
        alert: &AlertRecord,
        verb: &'static str,
    ) -> Result<(), AppError> {
        self.require_inside_territory(operator, alert.spec.area.clone(), move |e| {
            format!("you may not {verb} it: {e}")
        })
        .await?;
        Self::check_groups(operator, &alert.spec.groups)
    }

    /// 403 (its detail from `refusal`, given why) unless `area` lies inside
    /// the person's territory; the geometry runs in its lane.
    pub(crate) async fn require_inside_territory(
        &self,
        operator: &Operator,
        mut area: bealert_core::area::Area,
        refusal: impl FnOnce(String) -> String + Send + 'static,
    ) -> Result<(), AppError> {
        let territory = self.territory(operator).await?;
        self.geometry
            .run(area.work(), move || {
                bealert_core::geography::confine(territory.as_deref(), &mut area)
                    .map(|_| ())
                    .map_err(|e| AppError::Forbidden(refusal(e.to_string())))
            })
            .await
    }

    async fn decide(
        &self,
        operator: &Operator,
        alert: &AlertRecord,
        action: Action,
        client: &str,
        detail: Option<String>,
    ) -> Result<AlertCreated, AppError> {
        let to =
            lifecycle::next(alert.state, action).map_err(|e| AppError::Conflict(e.to_string()))?;
        let entry = AuditEntry {
            at: self.now_ms(),
            operator: operator.name.clone(),
            user: operator.user.clone(),
            client: client.into(),
            action: action.as_str().into(),
            from: Some(alert.state),
            to,
            detail,
        };
        if !self
            .ports
            .alerts
            .transition(alert.id, alert.state, to, &entry)
            .await?
        {
            let now = self
                .ports
                .alerts
                .get_alert_head(alert.id)
                .await?
                .map_or(alert.state, |a| a.state);
            return Err(AppError::Conflict(
                lifecycle::next(now, action)
                    .err()
                    .map_or("the alert changed meanwhile; look again".into(), |e| {
                        e.to_string()
                    }),
            ));
        }
        tracing::info!(alert = %alert.id, operator = %operator.name, user = %operator.user, action = action.as_str(), "alert {}", to.as_str());
        Ok(AlertCreated {
            id: alert.id,
            state: to,
            status: alert.spec.status,
            warnings: Vec::new(),
        })
    }

    pub(crate) async fn visible_alert(
        &self,
        operator: &Operator,
        id: &str,
    ) -> Result<AlertRecord, AppError> {
        let not_found = || AppError::NotFound(format!("no alert has id {id:?}"));
        let id: AlertId = id.parse().map_err(|_| not_found())?;
        let alert = self
            .ports
            .alerts
            .get_alert_head(id)
            .await?
            .ok_or_else(not_found)?;
        if !self.may_see(operator, &alert).await? {
            return Err(not_found());
        }
        Ok(alert)
    }

    /// Whether a person may see an alert read as a head: their operator's
    /// own, every alert for national operators, others' inside their
    /// territory only (the head has no area, so those are read whole).
    pub(crate) async fn may_see(
        &self,
        operator: &Operator,
        head: &AlertRecord,
    ) -> Result<bool, AppError> {
        if head.operator == operator.name || operator.jurisdiction.is_national() {
            return Ok(true);
        }
        match self.ports.alerts.get_alert(head.id).await? {
            Some(whole) => self.within_territory(operator, &whole.spec.area).await,
            None => Ok(false),
        }
    }

    /// `GET /v1/alerts/{id}/cap`: the alert as CAP 1.2 XML, for whoever
    /// may see it.
    pub async fn alert_cap(&self, operator: &Operator, id: &str) -> Result<String, AppError> {
        let head = self.visible_alert(operator, id).await?;
        let alert = self.stored_alert(&head.id.to_string()).await?;
        self.cap_of(&alert).await
    }

    /// CAP 1.2 of a stored alert (its references read from the original).
    pub(crate) async fn cap_of(&self, alert: &AlertRecord) -> Result<String, AppError> {
        use bealert_core::cap_xml::{CapHeader, reference, sender_of, to_xml};
        let header = |a: &AlertRecord| CapHeader {
            identifier: format!("urn:uuid:{}", a.id),
            sender: sender_of(&a.operator),
            sender_name: a.operator.clone(),
            sent_ms: a.created_at,
            references: None,
        };
        let mut h = header(alert);
        if let Some(original) = alert.spec.references
            && let Some(o) = self.ports.alerts.get_alert_head(original).await?
        {
            h.references = Some(reference(&header(&o)));
        }
        Ok(to_xml(&h, &alert.spec))
    }

    /// `GET /v1/alerts/{id}/audit`: the alert's audit log, oldest first,
    /// for whoever may see the alert.
    pub async fn alert_audit(&self, operator: &Operator, id: &str) -> Result<AuditView, AppError> {
        let alert = self.visible_alert(operator, id).await?;
        let items = self
            .ports
            .alerts
            .audit(alert.id)
            .await?
            .into_iter()
            .map(|e| AuditLine {
                at: crate::format_ms(e.at),
                operator: e.operator,
                user: e.user,
                client: e.client,
                action: e.action,
                from: e.from,
                to: e.to,
                detail: e.detail,
            })
            .collect();
        Ok(AuditView { items })
    }

    pub async fn alert_view(&self, operator: &Operator, id: &str) -> Result<AlertView, AppError> {
        let mut alert = self.visible_alert(operator, id).await?;
        self.expire_if_due(&mut alert).await?;
        let counts = self.ports.deliveries.counts(alert.id).await?;
        let mut channels: BTreeMap<Channel, ChannelView> = alert
            .spec
            .channels
            .iter()
            .map(|c| {
                let n = counts.channels.get(&c).copied().unwrap_or_default();
                (
                    c,
                    ChannelView {
                        queued: n.pending(),
                        sent: n.left(),
                        delivered: n.delivered,
                        failed: n.failed,
                        cancelled: n.cancelled,
                        reasons: BTreeMap::new(),
                        languages: BTreeMap::new(),
                        times: Times::default(),
                    },
                )
            })
            .collect();
        if alert.state.is_final() && channels.values().any(|c| c.failed > 0) {
            self.failure_reasons(alert.id, &mut channels).await?;
        }
        add_breakdown(
            &mut channels,
            self.ports.deliveries.breakdown(alert.id).await?,
        );
        let mut networks = BTreeMap::new();
        let mut public = BTreeMap::new();
        for t in self.target_rows(alert.id).await? {
            let r = t.report.unwrap_or_default();
            match t.target.outlet_kind() {
                None => {
                    networks.insert(
                        t.target.name().to_string(),
                        NetworkDeliveryView {
                            state: t.status,
                            cells: r.cells,
                            requested: r.requested,
                            accepted: r.accepted,
                            delivered: r.delivered,
                            failed: r.failed,
                            overshoot_km2: r.overshoot_km2,
                            attempts: t.attempts,
                            error: t.error,
                        },
                    );
                }
                Some(kind) => {
                    public.insert(
                        t.target.key(),
                        OutletDeliveryView {
                            kind,
                            state: t.status,
                            requested: r.requested,
                            accepted: r.accepted,
                            delivered: r.delivered,
                            failed: r.failed,
                            attempts: t.attempts,
                            error: t.error,
                        },
                    );
                }
            }
        }
        Ok(AlertView {
            id: alert.id,
            state: alert.state,
            status: alert.spec.status,
            msg_type: alert.spec.msg_type,
            references: alert.spec.references,
            all_clear: alert.spec.all_clear,
            expires: alert.spec.expires.map(format_ms),
            scope: alert.spec.scope,
            event: alert.spec.event,
            messages: alert.spec.messages,
            operator: alert.operator,
            created_at: format_ms(alert.created_at),
            completed_at: alert.completed_at.map(format_ms),
            recipients: counts.recipients,
            channels,
            networks,
            public,
            estimate: alert.spec.estimate,
            resolution: ResolutionView {
                shards_done: alert.shards_done,
                shards_total: alert.shards_total,
            },
        })
    }

    /// Tallies the errors of a finished alert's failed deliveries (the
    /// first [`REASON_SCAN`] deliveries read).
    async fn failure_reasons(
        &self,
        id: AlertId,
        channels: &mut BTreeMap<Channel, ChannelView>,
    ) -> Result<(), AppError> {
        let mut after = None;
        let mut read = 0;
        while read < REASON_SCAN {
            let page = self
                .ports
                .deliveries
                .list_deliveries(id, after, MAX_PAGE)
                .await?;
            read += page.len();
            for d in &page {
                if d.status == bealert_core::delivery::DeliveryStatus::Failed
                    && let Some(c) = channels.get_mut(&d.channel)
                {
                    let why = d.error.clone().unwrap_or_else(|| "unknown".into());
                    *c.reasons.entry(why).or_default() += 1;
                }
            }
            match page.last() {
                Some(last) if page.len() == MAX_PAGE => {
                    after = Some((last.channel, last.subscriber_id))
                }
                _ => break,
            }
        }
        Ok(())
    }

    /// `GET /v1/alerts/{id}/deliveries`: recipients' contacts masked, unless
    /// the person holds the `contacts` right; then every page read is
    /// written to the alert's audit log (who, from where, how many).
    pub async fn deliveries_page(
        &self,
        operator: &Operator,
        id: &str,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<DeliveriesPage, AppError> {
        self.deliveries_page_from(operator, id, cursor, limit, "api")
            .await
    }

    /// [`Self::deliveries_page`], naming the client in the audit log.
    pub async fn deliveries_page_from(
        &self,
        operator: &Operator,
        id: &str,
        cursor: Option<&str>,
        limit: Option<usize>,
        client: &str,
    ) -> Result<DeliveriesPage, AppError> {
        let alert = self.visible_alert(operator, id).await?;
        let limit = limit.unwrap_or(DEFAULT_PAGE);
        if limit == 0 || limit > MAX_PAGE {
            return Err(AppError::BadRequest(format!(
                "limit must be between 1 and {MAX_PAGE}"
            )));
        }
        let after = cursor.map(decode_cursor).transpose()?;
        let mut items = self
            .ports
            .deliveries
            .list_deliveries(alert.id, after, limit)
            .await?;
        if operator.rights.has(bealert_core::operator::Right::Contacts) {
            let shown = items.iter().filter(|d| !d.to.is_empty()).count();
            if shown > 0 {
                let entry = AuditEntry {
                    at: self.now_ms(),
                    operator: operator.name.clone(),
                    user: operator.user.clone(),
                    client: client.into(),
                    action: "contacts".into(),
                    from: Some(alert.state),
                    to: alert.state,
                    detail: Some(format!(
                        "read {shown} recipients' contacts (a page of deliveries{})",
                        if cursor.is_some() {
                            ", not the first"
                        } else {
                            ""
                        }
                    )),
                };
                // No contact leaves unless its reading is on record.
                self.ports.alerts.append_audit(alert.id, &entry).await?;
            }
        } else {
            for d in &mut items {
                if !d.to.is_empty() {
                    d.to = bealert_core::contact::mask(&d.to);
                }
            }
        }
        let next_cursor = (items.len() == limit)
            .then(|| {
                items
                    .last()
                    .map(|d| encode_cursor(d.channel, d.subscriber_id))
            })
            .flatten();
        Ok(DeliveriesPage { items, next_cursor })
    }

    /// Ends the alert once resolution is over and nothing is pending:
    /// `sent` if anything was sent (or nobody was to be reached), `failed`
    /// if deliveries there were and none went out.
    /// The alert itself is not read: the transition is conditional on the
    /// alert being `sending`, so a job reads the alert once (its head).
    pub(crate) async fn settle(&self, id: AlertId) -> Result<(), crate::ports::StoreError> {
        let counts = self.ports.deliveries.channel_counts(id).await?;
        if counts.pending() > 0 {
            return Ok(());
        }
        let targets = self.target_rows(id).await?;
        if targets.iter().any(|t| !t.status.is_final()) {
            return Ok(());
        }
        let count = |s| targets.iter().filter(|t| t.status == s).count() as u64;
        let sent: u64 =
            counts.channels.values().map(|c| c.left()).sum::<u64>() + count(DeliveryStatus::Sent);
        let failed: u64 =
            counts.channels.values().map(|c| c.failed).sum::<u64>() + count(DeliveryStatus::Failed);
        let to = if sent == 0 && failed > 0 {
            AlertState::Failed
        } else {
            AlertState::Sent
        };
        if self
            .ports
            .alerts
            .transition(
                id,
                AlertState::Sending,
                to,
                &AuditEntry::system(to.as_str(), Some(AlertState::Sending), to, self.now_ms()),
            )
            .await?
        {
            tracing::info!(alert = %id, recipients = counts.recipients, sent, failed, state = to.as_str(), "alert finished");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let id = SubscriberId::from_random(12345);
        let c = encode_cursor(Channel::Email, id);
        assert_eq!(decode_cursor(&c).unwrap(), (Channel::Email, id));
        assert!(matches!(decode_cursor("!!"), Err(AppError::BadRequest(_))));
    }
}
