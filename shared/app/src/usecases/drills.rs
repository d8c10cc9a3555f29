//! Drills: recurring exercise alerts that test the chain.
//! `POST /v1/drills`, `GET /v1/drills`, `DELETE /v1/drills/{id}`,
//! `GET /v1/drills/{id}/runs`. Every run is an `Exercise` alert from an
//! alert template; its report says whom it reached, when the first and last
//! message left per channel, and what failed. A run the embedded server
//! was stopped for is reported as missed, never silently skipped.
//!
//! A drill is its author's: its zone is checked against the author's
//! territory when it is made, and every run acts with the key it was made
//! with, read afresh (the person's current rights and territory). Once
//! that key is revoked (or the person removed), the next run sends nothing:
//! it records why and stops the drill, in both homes.

use super::App;
use crate::error::parse_body;
use crate::{AppError, format_ms};
use bealert_core::cap::brussels_rfc3339;
use bealert_core::delivery::DeliveryStatus;
use bealert_core::operator::Operator;
use bealert_core::schedule::Schedule;
use bealert_core::{AlertId, Channel, ValidationErrors};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const DRILL: &str = "drill";
const RUN: &str = "drill-run";
/// A run found this late is reported missed rather than sent late.
pub const MISSED_AFTER_MS: i64 = 120_000;
/// Missed runs reported at most per drill and restart.
const MAX_MISSED: usize = 50;

/// `POST /v1/drills` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillRequest {
    pub schedule: String,
    pub template: String,
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    #[serde(default)]
    pub area: Option<serde_json::Value>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// `Exercise` (the default), or `Test`: a heartbeat canary, a technical
    /// test of the chain (CAP Test: not for the public).
    #[serde(default)]
    pub status: DrillStatus,
}

/// What a drill's runs are: exercises, or technical tests (a canary).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DrillStatus {
    #[default]
    Exercise,
    Test,
}

impl DrillStatus {
    fn as_str(self) -> &'static str {
        match self {
            DrillStatus::Exercise => "Exercise",
            DrillStatus::Test => "Test",
        }
    }
}

/// A drill as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Drill {
    pub id: String,
    pub schedule: String,
    pub template: String,
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    #[serde(default)]
    pub area: Option<serde_json::Value>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// Who made it: its runs are this operator's exercises.
    pub operator: Operator,
    /// The hash of the key it was made with: each run acts with that key's
    /// person as they are then, and none runs once it is revoked. `None`
    /// for a drill made before drills were bound to a key: it does not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_hash: Option<String>,
    /// Why it runs no more (its author's key was revoked); `next_run` is
    /// then `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    pub created_at: i64,
    /// Unix ms; `None` once the schedule has no more runs.
    pub next_run: Option<i64>,
    #[serde(default)]
    pub status: DrillStatus,
}

/// One run as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrillRun {
    pub scheduled_at: i64,
    #[serde(default)]
    pub started_at: Option<i64>,
    #[serde(default)]
    pub alert_id: Option<AlertId>,
    /// Why no alert could be made (its template gone, a zone refused).
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub missed: bool,
}

/// A drill as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DrillView {
    pub id: String,
    pub schedule: String,
    pub template: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub area: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    pub operator: String,
    /// Belgian time, with its offset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_run: Option<String>,
    pub status: DrillStatus,
    /// Why the drill runs no more (its author's key was revoked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

/// One channel of a run's report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunChannel {
    pub sent: u64,
    pub failed: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub cancelled: u64,
    pub queued: u64,
    /// Milliseconds from the run's start to the first and the last message sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_ms: Option<i64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub reasons: BTreeMap<String, u64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// `GET /v1/drills/{id}/runs`, one item.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub scheduled_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// missed, refused (no alert could be made), running, ok, or failed
    /// (some delivery failed, with the reasons per channel).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<AlertId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_state: Option<bealert_core::alert::AlertState>,
    pub reach: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub channels: BTreeMap<Channel, RunChannel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn run_id(drill: &str, at: i64) -> String {
    format!("{drill}#{:013}", at.max(0))
}

fn view(d: &Drill) -> DrillView {
    DrillView {
        id: d.id.clone(),
        schedule: d.schedule.clone(),
        template: d.template.clone(),
        values: d.values.clone(),
        area: d.area.clone(),
        groups: d.groups.clone(),
        operator: d.operator.name.clone(),
        next_run: d.next_run.map(brussels_rfc3339),
        status: d.status,
        stopped: d.stopped.clone(),
    }
}

/// The hash of an `Authorization: Bearer <key>` header's key: what a
/// drill made with it keeps ([`App::create_drill`]).
pub fn key_hash_of(authorization: Option<&str>) -> Result<String, AppError> {
    super::operators::bearer(authorization, "operator key").map(bealert_core::operator::hash_key)
}

/// After a person's keys are rotated (`bealert key rotate`): their drills
/// that still run act with the new key from now on. A drill stops when its
/// author's access ends (every key revoked, or ended), not because its
/// author switched keys on time. How many drills were moved.
pub async fn rebind_drills(
    documents: &dyn crate::ports::DocumentStore,
    operator: &str,
    user: &str,
    key_hash: &str,
) -> Result<usize, AppError> {
    let mut moved = 0;
    for (id, doc) in documents.documents(DRILL, "").await? {
        let Ok(mut d) = serde_json::from_value::<Drill>(doc) else {
            continue;
        };
        if d.operator.name != operator || d.operator.user != user || d.stopped.is_some() {
            continue;
        }
        d.key_hash = Some(key_hash.to_string());
        let json = serde_json::to_value(&d).map_err(internal)?;
        documents.put_document(DRILL, &id, &json).await?;
        moved += 1;
    }
    Ok(moved)
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(e.to_string())
}

impl App {
    /// The alert request a drill's run sends.
    fn drill_alert(d: &Drill) -> serde_json::Value {
        let mut body = serde_json::json!({
            "template": d.template,
            "values": d.values,
            "status": d.status.as_str(),
        });
        if let Some(a) = &d.area {
            body["area"] = a.clone();
        }
        if !d.groups.is_empty() {
            body["groups"] = serde_json::json!(d.groups);
        }
        body
    }

    /// `POST /v1/drills`, by the person of the key whose hash is
    /// `key_hash` (its runs act with that key).
    pub async fn create_drill(
        &self,
        operator: &Operator,
        key_hash: &str,
        body: &[u8],
    ) -> Result<DrillView, AppError> {
        super::operators::require(
            operator,
            bealert_core::operator::Task::Drills,
            "schedule drills",
        )?;
        let req = parse_body::<DrillRequest>(body)?;
        let schedule =
            Schedule::parse(&req.schedule).map_err(|e| ValidationErrors::single("schedule", e))?;
        let now = self.now_ms();
        let mut drill = Drill {
            id: AlertId::new().to_string(),
            schedule: req.schedule.trim().to_string(),
            template: req.template,
            values: req.values,
            area: req.area,
            groups: req.groups,
            operator: operator.clone(),
            key_hash: Some(key_hash.to_string()),
            stopped: None,
            created_at: now,
            next_run: None,
            status: req.status,
        };
        drill.next_run = schedule.next_after(now, now);
        // What each run will send must be valid now: the template, its
        // values, the zone and the groups.
        let filled = self
            .with_template(&serde_json::to_vec(&Self::drill_alert(&drill)).map_err(internal)?)
            .await?
            .unwrap_or_default();
        let request = parse_body::<bealert_core::alert::AlertRequest>(&filled)?;
        if let Some(area) = &request.area {
            let resolved = self.resolve_geocodes(area).await?;
            let area = area.validate_with("area", &resolved.geocodes)?;
            // The author's territory, as every run's alert will be checked.
            self.require_inside_territory(operator, area, |e| {
                format!("this drill's area is outside your territory: {e}")
            })
            .await?;
        }
        if request.area.is_none() && request.groups.is_empty() {
            return Err(ValidationErrors::single("area", "give an area, groups, or both").into());
        }
        Self::check_groups(operator, &request.groups)?;
        if drill.next_run.is_none() {
            return Err(ValidationErrors::single("schedule", "this schedule never runs").into());
        }
        let json = serde_json::to_value(&drill).map_err(internal)?;
        self.ports
            .documents
            .put_document(DRILL, &drill.id, &json)
            .await?;
        if let Some(s) = &self.drill_scheduler
            && let Err(e) = s.schedule(&drill.id, &drill.schedule).await
        {
            self.ports
                .documents
                .delete_document(DRILL, &drill.id)
                .await?;
            return Err(e.into());
        }
        tracing::info!(drill = %drill.id, schedule = %drill.schedule, "drill created");
        Ok(view(&drill))
    }

    async fn drill(&self, id: &str) -> Result<Option<Drill>, AppError> {
        self.ports
            .documents
            .get_document(DRILL, id)
            .await?
            .map(|j| serde_json::from_value(j).map_err(internal))
            .transpose()
    }

    async fn all_drills(&self) -> Result<Vec<Drill>, AppError> {
        self.ports
            .documents
            .documents(DRILL, "")
            .await?
            .into_iter()
            .map(|(_, j)| serde_json::from_value(j).map_err(internal))
            .collect()
    }

    /// A drill this operator may see: its own, or any for a national one.
    async fn visible_drill(&self, operator: &Operator, id: &str) -> Result<Drill, AppError> {
        match self.drill(id).await? {
            Some(d) if d.operator.name == operator.name || operator.jurisdiction.is_national() => {
                Ok(d)
            }
            _ => Err(AppError::NotFound(format!("no drill has id {id:?}"))),
        }
    }

    /// `GET /v1/drills`.
    pub async fn drills(&self, operator: &Operator) -> Result<Vec<DrillView>, AppError> {
        Ok(self
            .all_drills()
            .await?
            .iter()
            .filter(|d| d.operator.name == operator.name || operator.jurisdiction.is_national())
            .map(view)
            .collect())
    }

    /// `DELETE /v1/drills/{id}`: no more runs; the reports stay.
    pub async fn delete_drill(&self, operator: &Operator, id: &str) -> Result<(), AppError> {
        let d = self.visible_drill(operator, id).await?;
        if let Some(s) = &self.drill_scheduler {
            s.unschedule(&d.id).await?;
        }
        self.ports.documents.delete_document(DRILL, &d.id).await?;
        Ok(())
    }

    /// Runs a drill for one scheduled time (the AWS home's drill function,
    /// or [`Self::fire_due_drills`]); a time already run is not run again.
    pub async fn run_drill(
        &self,
        id: &str,
        scheduled_at: i64,
    ) -> Result<Option<AlertId>, AppError> {
        let Some(d) = self.drill(id).await? else {
            tracing::warn!(
                drill = id,
                "a run of a drill that no longer exists; nothing sent"
            );
            return Ok(None);
        };
        if let Some(why) = &d.stopped {
            // A schedule the stop could not delete (the drill function
            // may not): its run said why; nothing more is sent or recorded.
            tracing::warn!(drill = id, reason = %why, "a run of a stopped drill; nothing sent");
            return Ok(None);
        }
        let key = run_id(id, scheduled_at);
        if let Some(done) = self.ports.documents.get_document(RUN, &key).await? {
            let done: DrillRun = serde_json::from_value(done).map_err(internal)?;
            return Ok(done.alert_id);
        }
        let mut run = DrillRun {
            scheduled_at,
            started_at: Some(self.now_ms()),
            alert_id: None,
            error: None,
            missed: false,
        };
        match self.drill_author(&d).await? {
            Ok(author) => {
                let body = serde_json::to_vec(&Self::drill_alert(&d)).map_err(internal)?;
                match self.create_alert_from(&author, &body, "schedule").await {
                    Ok(created) => run.alert_id = Some(created.id),
                    Err(e) => run.error = Some(e.to_string()),
                }
            }
            Err(why) => {
                run.error = Some(why.clone());
                self.stop_drill(d, why).await?;
            }
        }
        let json = serde_json::to_value(&run).map_err(internal)?;
        self.ports.documents.put_document(RUN, &key, &json).await?;
        tracing::info!(drill = id, alert = ?run.alert_id, error = ?run.error, "drill run");
        Ok(run.alert_id)
    }

    /// The person a drill's runs act as: who holds the key it was made with
    /// now; `Err` says why it may not run (the key revoked or expired, the
    /// person removed, or a drill made before drills were bound to a key).
    async fn drill_author(&self, d: &Drill) -> Result<Result<Operator, String>, AppError> {
        let who = format!("{} of {}", d.operator.user, d.operator.name);
        let Some(hash) = &d.key_hash else {
            return Ok(Err(format!(
                "this drill was scheduled before drills were bound to their author's key, so whether {who} may still send cannot be checked; it is stopped: schedule it again (POST /v1/drills)"
            )));
        };
        Ok(
            match self.ports.operators.operator_by_key_hash(hash).await? {
                Some(op) if op.name == d.operator.name && op.user == d.operator.user => {
                    match op.key_expired(self.now_ms()) {
                        None => Ok(op),
                        Some(_) => Err(format!(
                            "the key {who} scheduled this drill with has expired; the drill is stopped and sends nothing: a person who may send schedules it again"
                        )),
                    }
                }
                _ => Err(format!(
                    "the key {who} scheduled this drill with was revoked (or the person removed); the drill is stopped and sends nothing: a person who may send schedules it again"
                )),
            },
        )
    }

    /// Stops a drill for good: no next run, the reason kept, its schedule
    /// removed where this process may (`bealert serve` on the AWS home; the
    /// drill function may not, and refuses the schedule's later runs).
    async fn stop_drill(&self, mut d: Drill, why: String) -> Result<(), AppError> {
        tracing::warn!(drill = %d.id, reason = %why, "drill stopped");
        d.next_run = None;
        d.stopped = Some(why);
        let json = serde_json::to_value(&d).map_err(internal)?;
        self.ports
            .documents
            .put_document(DRILL, &d.id, &json)
            .await?;
        if let Some(s) = &self.drill_scheduler {
            s.unschedule(&d.id).await?;
        }
        Ok(())
    }

    /// The embedded home's scheduler: runs every drill whose time has
    /// come, and reports as missed the runs whose time passed while the
    /// server was stopped. Returns the runs started.
    pub async fn fire_due_drills(&self) -> Result<usize, AppError> {
        let now = self.now_ms();
        let mut started = 0;
        for mut d in self.all_drills().await? {
            let Some(next) = d.next_run else { continue };
            if next > now {
                continue;
            }
            let schedule = Schedule::parse(&d.schedule)
                .map_err(|e| AppError::Internal(format!("drill {}: {e}", d.id)))?;
            if now - next > MISSED_AFTER_MS {
                // Missed: each time it should have run, reported.
                let mut at = Some(next);
                let mut n = 0;
                while let Some(t) = at.filter(|t| now - *t > MISSED_AFTER_MS) {
                    if n == MAX_MISSED {
                        break;
                    }
                    let missed = DrillRun {
                        scheduled_at: t,
                        started_at: None,
                        alert_id: None,
                        error: Some("bealert was not running at this time".into()),
                        missed: true,
                    };
                    let json = serde_json::to_value(&missed).map_err(internal)?;
                    let key = run_id(&d.id, t);
                    if self
                        .ports
                        .documents
                        .get_document(RUN, &key)
                        .await?
                        .is_none()
                    {
                        self.ports.documents.put_document(RUN, &key, &json).await?;
                    }
                    tracing::warn!(drill = %d.id, scheduled_at = %format_ms(t), "drill run missed");
                    n += 1;
                    at = schedule.next_after(t, d.created_at);
                }
            } else {
                self.run_drill(&d.id, next).await?;
                started += 1;
                if self
                    .drill(&d.id)
                    .await?
                    .is_none_or(|now| now.stopped.is_some())
                {
                    continue; // stopped by its run: no next one
                }
            }
            d.next_run = schedule.next_after(now, d.created_at);
            let json = serde_json::to_value(&d).map_err(internal)?;
            self.ports
                .documents
                .put_document(DRILL, &d.id, &json)
                .await?;
        }
        Ok(started)
    }

    /// `GET /v1/drills/{id}/runs`: every run, newest first, with its report.
    pub async fn drill_runs(
        &self,
        operator: &Operator,
        id: &str,
    ) -> Result<Vec<RunReport>, AppError> {
        let d = self.visible_drill(operator, id).await?;
        let mut runs: Vec<DrillRun> = self
            .ports
            .documents
            .documents(RUN, &format!("{}#", d.id))
            .await?
            .into_iter()
            .map(|(_, j)| serde_json::from_value(j).map_err(internal))
            .collect::<Result<_, _>>()?;
        runs.sort_by_key(|r| std::cmp::Reverse(r.scheduled_at));
        let mut out = Vec::with_capacity(runs.len());
        for r in runs {
            out.push(self.run_report(&r).await?);
        }
        Ok(out)
    }

    async fn run_report(&self, r: &DrillRun) -> Result<RunReport, AppError> {
        let mut report = RunReport {
            scheduled_at: brussels_rfc3339(r.scheduled_at),
            started_at: r.started_at.map(brussels_rfc3339),
            status: if r.missed { "missed" } else { "refused" },
            alert_id: r.alert_id,
            alert_state: None,
            reach: 0,
            channels: BTreeMap::new(),
            error: r.error.clone(),
        };
        let Some(alert_id) = r.alert_id else {
            return Ok(report);
        };
        let Some(alert) = self.ports.alerts.get_alert_head(alert_id).await? else {
            return Ok(report);
        };
        let counts = self.ports.deliveries.counts(alert_id).await?;
        report.alert_state = Some(alert.state);
        report.reach = counts.recipients;
        let start = r.started_at.unwrap_or(alert.created_at);
        for (c, n) in &counts.channels {
            report.channels.insert(
                *c,
                RunChannel {
                    sent: n.left(),
                    failed: n.failed,
                    cancelled: n.cancelled,
                    queued: n.pending(),
                    ..RunChannel::default()
                },
            );
        }
        // When the first and the last message left, and why any failed.
        let mut after = None;
        loop {
            let page = self
                .ports
                .deliveries
                .list_deliveries(alert_id, after, super::alerts::MAX_PAGE)
                .await?;
            for d in &page {
                let Some(ch) = report.channels.get_mut(&d.channel) else {
                    continue;
                };
                match d.status {
                    DeliveryStatus::Sent | DeliveryStatus::Delivered => {
                        let t = d.updated_at - start;
                        ch.first_ms = Some(ch.first_ms.map_or(t, |f| f.min(t)));
                        ch.last_ms = Some(ch.last_ms.map_or(t, |l| l.max(t)));
                    }
                    DeliveryStatus::Failed => {
                        let why = d.error.clone().unwrap_or_else(|| "unknown".into());
                        *ch.reasons.entry(why).or_default() += 1;
                    }
                    _ => {}
                }
            }
            match page.last() {
                Some(last) if page.len() == super::alerts::MAX_PAGE => {
                    after = Some((last.channel, last.subscriber_id));
                }
                _ => break,
            }
        }
        let failed = report.channels.values().any(|c| c.failed > 0)
            || alert.state == bealert_core::alert::AlertState::Failed;
        report.status = if failed {
            "failed"
        } else if alert.state.is_final() {
            "ok"
        } else {
            "running"
        };
        Ok(report)
    }
}
