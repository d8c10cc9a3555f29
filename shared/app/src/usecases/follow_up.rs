//! Update, cancel, all-clear: a new alert (CAP `msgType` Update or Cancel,
//! `references` the original) to the audience the original reached.
//!
//! A cancel first moves the original to `cancelled`, so no sender claims
//! any more of it, then walks the original's deliveries: those still
//! queued are stopped as `cancelled` (nobody gets them), those sent get the
//! cancel, and those a sender holds right now are watched until they end
//! (sent: they get the cancel after it). So no recipient gets the original
//! after their cancel. An update or an all-clear waits until the original
//! is done, then goes to everyone it reached.
//!
//! Four-eyes holds for follow-ups too: a cancel in fixed words (bealert's
//! own, or a template marked as cancel wording) goes at once; one that says
//! anything of its own waits for a second person like a new alert with its
//! status, and stops the original only once approved. Nothing follows up an
//! alert older than the follow-up window.

use super::{App, JobError, JobOutcome};
use crate::AppError;
use crate::error::parse_body;
use crate::ports::{AlertRecord, AuditEntry, DeliveryRow, RecipientPlan};
use crate::usecases::AlertCreated;
use bealert_core::alert::AlertState;
use bealert_core::broadcast::Target;
use bealert_core::cap::MsgType;
use bealert_core::delivery::{DeliveryStatus, PlannedDelivery};
use bealert_core::lifecycle::{self, Action, FollowUp};
use bealert_core::operator::Operator;
use bealert_core::{AlertId, Channel, SubscriberId, ValidationErrors};
use std::collections::BTreeMap;
use std::time::Duration;

/// The document kind of the mark a cancel leaves on its original.
const CANCEL_MARK: &str = "cancelled-by";

/// Deliveries of the original read per page, at most; the first page is
/// [`FIRST_WALK_PAGE`], then twice as many each time, so the first
/// follow-up messages are planned and queued after a hundred rows, not a
/// thousand.
const WALK_PAGE: usize = 1000;
const FIRST_WALK_PAGE: usize = 100;
/// How long one run of a follow-up job waits for deliveries a sender
/// holds (well under a function's timeout).
const HELD_WAIT_MS: i64 = 10_000;

/// The audit detail on the original that names its cancel.
fn cancelled_by(id: AlertId) -> String {
    format!("cancelled by alert {id}")
}

impl App {
    /// `POST /v1/alerts/{id}:update`, `:cancel`, `:all_clear` (body
    /// `{"messages": {...}}`, optional): the new alert, answered 201.
    pub async fn follow_up_alert(
        &self,
        operator: &Operator,
        id: &str,
        kind: FollowUp,
        body: &[u8],
        client: &str,
    ) -> Result<AlertCreated, AppError> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Body {
            #[serde(default)]
            messages: BTreeMap<String, String>,
            /// An update may change the zone (then it is resolved anew).
            #[serde(default)]
            area: Option<bealert_core::area::AreaRequest>,
            /// A cancel's fixed words: a template marked as cancel wording.
            #[serde(default)]
            template: Option<String>,
        }
        super::operators::require(
            operator,
            bealert_core::operator::Task::Alert,
            "follow alerts up",
        )?;
        let b = if body.iter().all(u8::is_ascii_whitespace) {
            Body {
                messages: BTreeMap::new(),
                area: None,
                template: None,
            }
        } else {
            parse_body::<Body>(body)?
        };
        if b.area.is_some() && kind != FollowUp::Update {
            return Err(ValidationErrors::single(
                "area",
                "only an update may change the zone; a cancel or an all-clear goes to whom the original reached",
            )
            .into());
        }
        // Words of its own (any text, or a zone) make a follow-up a new
        // message to the public: four-eyes as for a new alert.
        let own_words = !b.messages.is_empty() || b.area.is_some();
        let original = self.stored_alert(id).await?;
        self.check_jurisdiction(operator, &original, kind.verb())
            .await?;
        if original.spec.msg_type == MsgType::Cancel {
            return Err(AppError::Conflict(
                "this alert is itself a cancel: it cannot be followed up".into(),
            ));
        }
        self.may_follow_up(&original, kind).await?;
        let given = match b.template {
            None => b.messages,
            Some(name) => {
                self.cancel_wording(kind, &name, &b.messages, &original)
                    .await?
            }
        };
        if let Some(area) = b.area {
            return self
                .update_with_zone(operator, &original, &given, area, client)
                .await;
        }
        let mut spec = original
            .spec
            .follow_up(original.id, kind, &given, original.created_at)?;
        let created_at = self.now_ms();
        spec.sign(&operator.name, created_at)?;
        let held = kind.needs_approval(self.config.approval, spec.status, own_words);
        let record = AlertRecord::new(&operator.name, spec, created_at, held);
        let entry = |action: &str, from, to, detail: String| AuditEntry {
            at: self.now_ms(),
            operator: operator.name.clone(),
            user: operator.user.clone(),
            client: client.into(),
            action: action.into(),
            from,
            to,
            detail: Some(detail),
        };
        if kind.stops_original() && !held {
            // First of all: no sender claims anything more of the original.
            // (A cancel held for approval stops it once approved: see
            // `resolve_follow_up`.)
            self.stop_original(&original, |from, to| {
                entry("cancel", Some(from), to, cancelled_by(record.id))
            })
            .await?;
            self.mark_cancelled(original.id, record.id).await?;
        }
        let created = entry(
            "create",
            None,
            record.state,
            format!(
                "{:?} alert, {} of alert {}",
                record.spec.status,
                kind.verb(),
                original.id
            ),
        );
        self.start_alert(&record, &created, &operator.user).await?;
        tracing::info!(alert = %record.id, original = %original.id, operator = %operator.name, action = kind.verb(), held, "follow-up accepted");
        Ok(AlertCreated {
            id: record.id,
            state: record.state,
            status: record.spec.status,
            warnings: Vec::new(),
        })
    }

    /// An update that changes the zone: a new alert like the original
    /// (texts given or the defaults) on the new zone, resolved anew and
    /// checked like any alert (geocodes, territory, approval).
    async fn update_with_zone(
        &self,
        operator: &Operator,
        original: &AlertRecord,
        given: &BTreeMap<String, String>,
        area: bealert_core::area::AreaRequest,
        client: &str,
    ) -> Result<AlertCreated, AppError> {
        let texts = original
            .spec
            .follow_up(original.id, FollowUp::Update, given, original.created_at)?
            .messages;
        let request = bealert_core::alert::AlertRequest {
            place: original.spec.place.clone(),
            status: original.spec.status,
            event: original.spec.event.clone(),
            severity: original.spec.severity,
            urgency: original.spec.urgency,
            certainty: original.spec.certainty,
            messages: texts
                .0
                .into_iter()
                .map(|(l, t)| (l.code().to_string(), t))
                .collect(),
            area: Some(area),
            channels: Some(
                original
                    .spec
                    .channels
                    .iter()
                    .map(|c| c.code().to_string())
                    .collect(),
            ),
            groups: original.spec.groups.clone(),
            broadcast: original.spec.broadcast.as_ref().map(|b| {
                bealert_core::broadcast::BroadcastRequest {
                    networks: Some(b.networks.clone()),
                    mode: b.mode,
                }
            }),
            expires: None,
            scope: original.spec.scope,
            public: original.spec.public.as_ref().map(|p| {
                bealert_core::outlet::PublicRequest {
                    social: Some(p.social.clone()),
                    signs: Some(p.signs.clone()),
                    // An update sounds no siren anew.
                    sirens: None,
                }
            }),
        };
        let references = original.id;
        self.create_request(operator, request, client, move |spec| {
            spec.msg_type = MsgType::Update;
            spec.references = Some(references);
            spec.own_zone = true;
        })
        .await
    }

    /// The texts of a template marked as cancel wording, for a cancel that
    /// names it (422 for anything else).
    async fn cancel_wording(
        &self,
        kind: FollowUp,
        name: &str,
        messages: &BTreeMap<String, String>,
        original: &AlertRecord,
    ) -> Result<BTreeMap<String, String>, AppError> {
        if kind != FollowUp::Cancel {
            return Err(ValidationErrors::single(
                "template",
                "only a cancel names a template (one marked as cancel wording); give an update's texts in messages",
            )
            .into());
        }
        if !messages.is_empty() {
            return Err(ValidationErrors::single(
                "template",
                "give either messages or a cancel-wording template, not both",
            )
            .into());
        }
        let template = self.template(name).await.map_err(|e| match e {
            AppError::NotFound(why) => ValidationErrors::single("template", why).into(),
            other => other,
        })?;
        if !template.template.cancel_wording {
            return Err(ValidationErrors::single(
                "template",
                format!(
                    "template {name:?} is not marked as cancel wording; a national operator marks it with \"cancel_wording\": true, or send messages (which a second person approves)"
                ),
            )
            .into());
        }
        let at = bealert_core::cap::brussels_short(original.created_at);
        Ok(template.template.cancel_texts(&original.spec.event, &at))
    }

    /// Whether the original can be followed up this way (409 why not).
    async fn may_follow_up(&self, original: &AlertRecord, kind: FollowUp) -> Result<(), AppError> {
        use AlertState::*;
        let window = i64::try_from(self.config.follow_up_window.as_millis()).unwrap_or(i64::MAX);
        if self.now_ms().saturating_sub(original.created_at) > window {
            return Err(AppError::Conflict(format!(
                "this alert is older than the follow-up window ({}): it can no longer get {}; send a new alert instead",
                human_duration(self.config.follow_up_window),
                kind.verb()
            )));
        }
        let refuse = |why: &str| {
            Err(AppError::Conflict(format!(
                "this alert cannot get {}: {why} (state {})",
                match kind {
                    FollowUp::Update => "an update",
                    FollowUp::Cancel => "a cancel",
                    FollowUp::AllClear => "an all-clear",
                },
                original.state.as_str()
            )))
        };
        // Cancelled by a cancel alert that exists: nothing follows it up
        // again (a cancel whose creation did not finish may be done again).
        if let Some(by) = self.cancel_of(original).await?
            && self.ports.alerts.get_alert_head(by).await?.is_some()
        {
            return refuse(&format!("alert {by} cancelled it already"));
        }
        match (kind, original.state) {
            (FollowUp::Cancel, Cancelled) => {
                if self.cancel_of(original).await?.is_none() {
                    return refuse("it was rejected or cancelled before anything was sent");
                }
                Ok(())
            }
            (FollowUp::Cancel, _) => Ok(()),
            (_, Draft | AwaitingApproval) => {
                refuse("nothing of it was sent; change or reject it instead")
            }
            (_, Cancelled) => refuse("it was cancelled"),
            (_, Failed) => refuse("nothing of it could be sent"),
            (_, Resolving | Sending | Sent | Expired) => Ok(()),
        }
    }

    /// The cancel alert that took effect on `original`, if any: the mark a
    /// cancel leaves (also on an alert that had finished sending), or the
    /// audit entry of the move to `cancelled`.
    pub(crate) async fn cancel_of(
        &self,
        original: &AlertRecord,
    ) -> Result<Option<AlertId>, AppError> {
        let key = original.id.to_string();
        if let Some(mark) = self.ports.documents.get_document(CANCEL_MARK, &key).await?
            && let Some(by) = mark["alert"].as_str().and_then(|id| id.parse().ok())
        {
            return Ok(Some(by));
        }
        if original.state != AlertState::Cancelled {
            return Ok(None);
        }
        let audit = self.ports.alerts.audit(original.id).await?;
        Ok(audit
            .iter()
            .filter(|e| e.action == "cancel")
            .find_map(|e| e.detail.as_deref()?.strip_prefix("cancelled by alert "))
            .and_then(|id| id.parse::<AlertId>().ok()))
    }

    /// Leaves the mark that `by` cancels `original` (before its first
    /// message, so no second cancel follows it).
    async fn mark_cancelled(&self, original: AlertId, by: AlertId) -> Result<(), AppError> {
        self.ports
            .documents
            .put_document(
                CANCEL_MARK,
                &original.to_string(),
                &serde_json::json!({ "alert": by.to_string() }),
            )
            .await?;
        Ok(())
    }

    /// Moves the original to `cancelled` if it is still going (a few
    /// tries: a sender may settle it meanwhile); a finished one stays as it is.
    async fn stop_original(
        &self,
        original: &AlertRecord,
        entry: impl Fn(AlertState, AlertState) -> AuditEntry,
    ) -> Result<(), AppError> {
        let mut state = original.state;
        for _ in 0..5 {
            let Ok(to) = lifecycle::next(state, Action::Cancel) else {
                return Ok(());
            };
            if self
                .ports
                .alerts
                .transition(original.id, state, to, &entry(state, to))
                .await?
            {
                tracing::info!(alert = %original.id, from = state.as_str(), "alert cancelled");
                return Ok(());
            }
            state = self
                .ports
                .alerts
                .get_alert_head(original.id)
                .await?
                .map_or(AlertState::Cancelled, |a| a.state);
        }
        Err(AppError::Conflict(
            "the alert kept changing while it was being cancelled; try again".into(),
        ))
    }

    /// The resolution of a follow-up: the original's reached audience.
    pub(crate) async fn resolve_follow_up(
        &self,
        alert: &AlertRecord,
        original_id: AlertId,
    ) -> Result<JobOutcome, JobError> {
        let stops = alert.spec.msg_type == MsgType::Cancel;
        let Some(original) = self.ports.alerts.get_alert_head(original_id).await? else {
            return Err(JobError::Transient(format!(
                "alert {original_id}, which this one follows up, does not exist"
            )));
        };
        if stops {
            // A cancel that waited for a second person stops the original
            // now that it is approved (an instant one did at creation).
            self.stop_original(&original, |from, to| {
                let mut e = AuditEntry::system("cancel", Some(from), to, self.now_ms());
                e.operator = alert.operator.clone();
                e.detail = Some(cancelled_by(alert.id));
                e
            })
            .await
            .map_err(JobError::from)?;
            self.mark_cancelled(original.id, alert.id)
                .await
                .map_err(JobError::from)?;
        }
        if !stops && !original.state.is_final() {
            return Ok(JobOutcome::RetryAfter(
                Duration::from_millis(250),
                "the original is still being sent; the follow-up goes after it".into(),
            ));
        }
        self.ports.alerts.set_shard_count(alert.id, 1).await?;
        let reason = cancelled_by(alert.id);
        let mut held: Vec<DeliveryRow> = Vec::new();
        let mut after = None;
        let mut size = FIRST_WALK_PAGE;
        loop {
            let page = self
                .ports
                .deliveries
                .list_deliveries(original_id, after, size)
                .await?;
            after = page.last().map(|d| (d.channel, d.subscriber_id));
            let full = page.len() == size;
            size = (size * 2).min(WALK_PAGE);
            let (reached, open): (Vec<DeliveryRow>, Vec<DeliveryRow>) = page
                .into_iter()
                .filter(|d| !d.status.is_final() || d.status.left())
                .partition(|d| d.status.left());
            let (now_sent, busy) = if stops {
                self.stop_rows(original_id, open, &reason).await?
            } else {
                (Vec::new(), open)
            };
            held.extend(busy);
            self.plan_follow_up(alert, reached.into_iter().chain(now_sent))
                .await?;
            if !full {
                break;
            }
        }
        // Deliveries a sender held when the cancel came: wait a while for
        // them to end. Still held: the job comes back and walks again (what
        // it planned is planned once; a lease ends, then they can be stopped).
        let deadline = self.now_ms() + HELD_WAIT_MS;
        while !held.is_empty() && self.now_ms() <= deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let (now_sent, busy) = self
                .stop_rows(original_id, std::mem::take(&mut held), &reason)
                .await?;
            held = busy;
            self.plan_follow_up(alert, now_sent.into_iter()).await?;
        }
        if !held.is_empty() {
            return Ok(JobOutcome::RetryAfter(
                Duration::from_secs(1),
                format!(
                    "{} deliveries of the original are still held by a sender",
                    held.len()
                ),
            ));
        }
        if !self.follow_up_targets(alert, original_id, stops).await? {
            return Ok(JobOutcome::RetryAfter(
                Duration::from_secs(1),
                "a network or outlet is still being handed the original".into(),
            ));
        }
        self.finish_shard(alert.id, 0).await?;
        Ok(JobOutcome::Done)
    }

    /// Stops the original's open deliveries as cancelled; returns those
    /// found sent after all, and those a sender still holds.
    async fn stop_rows(
        &self,
        original: AlertId,
        rows: Vec<DeliveryRow>,
        reason: &str,
    ) -> Result<(Vec<DeliveryRow>, Vec<DeliveryRow>), JobError> {
        let mut by_channel: BTreeMap<Channel, Vec<DeliveryRow>> = BTreeMap::new();
        for r in rows {
            by_channel.entry(r.channel).or_default().push(r);
        }
        let (mut sent, mut busy) = (Vec::new(), Vec::new());
        for (channel, rows) in by_channel {
            let ids: Vec<SubscriberId> = rows.iter().map(|r| r.subscriber_id).collect();
            let after = self
                .ports
                .deliveries
                .stop_unsent(
                    original,
                    channel,
                    &ids,
                    DeliveryStatus::Cancelled,
                    reason,
                    self.now_ms(),
                )
                .await?;
            for (row, status) in rows.into_iter().zip(after) {
                match status {
                    Some(s) if s.left() => sent.push(row),
                    Some(DeliveryStatus::Sending | DeliveryStatus::Queued) => busy.push(row),
                    _ => {}
                }
            }
        }
        Ok((sent, busy))
    }

    /// Plans the follow-up to recipients of the original (one shard: 0)
    /// and hands them to the senders.
    async fn plan_follow_up(
        &self,
        alert: &AlertRecord,
        rows: impl Iterator<Item = DeliveryRow>,
    ) -> Result<(), JobError> {
        let plans: Vec<RecipientPlan> = rows
            // A subscriber deleted since has no contact left.
            .filter(|d| !d.to.is_empty())
            .map(|d| RecipientPlan {
                subscriber_id: d.subscriber_id,
                external_id: d.external_id,
                deliveries: vec![PlannedDelivery {
                    subscriber_id: d.subscriber_id,
                    channel: d.channel,
                    to: d.to,
                    language: d.language,
                }],
            })
            .collect();
        if plans.is_empty() {
            return Ok(());
        }
        let pending = self
            .ports
            .deliveries
            .plan_deliveries(alert.id, 0, &plans)
            .await?;
        self.enqueue_sends(alert.id, crate::jobs::Lane::of(&alert.spec), pending)
            .await
    }

    /// Alert-SMS and the public channels: every network and outlet that
    /// took the original gets the follow-up (networks for the same
    /// audience; a cancel stops one that has not yet). False while one is
    /// still being handed the original.
    async fn follow_up_targets(
        &self,
        alert: &AlertRecord,
        original: AlertId,
        stops: bool,
    ) -> Result<bool, JobError> {
        let store = &self.ports.targets;
        let mut rows = store.targets(original).await?;
        let deadline = self.now_ms() + HELD_WAIT_MS;
        if stops {
            for t in rows.iter().filter(|t| t.status == DeliveryStatus::Queued) {
                store
                    .fail_target(original, &t.target, &cancelled_by(alert.id), self.now_ms())
                    .await?;
            }
            // One being handed over right now: wait for its answer.
            while rows.iter().any(|t| !t.status.is_final()) && self.now_ms() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
                rows = store.targets(original).await?;
            }
            if rows.iter().any(|t| !t.status.is_final()) {
                return Ok(false);
            }
        }
        let sent = rows.iter().filter(|t| t.status == DeliveryStatus::Sent);
        let networks: Vec<String> = sent
            .clone()
            .filter_map(|t| match &t.target {
                Target::Network(n) => Some(n.clone()),
                _ => None,
            })
            .collect();
        if let Some(net) = self.networks() {
            net.plan_networks(alert, &networks).await?;
        }
        // The public channels' outlets that published the original.
        if self.public.is_some() {
            let outlets = sent
                .filter(|t| t.target.outlet_kind().is_some())
                .map(|t| t.target.clone())
                .collect();
            self.follow_up_outlets(alert, outlets).await?;
        }
        Ok(true)
    }
}

/// "48 h", "30 min", "90 s": a duration as an operator reads it.
fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 && s.is_multiple_of(3600) {
        format!("{} h", s / 3600)
    } else if s >= 60 && s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}
