//! Resolution: from an alert's zone and groups to planned deliveries.
//!
//! `Plan` covers the zone with H3 cells and splits them into shards (by
//! striding, so every shard holds a sample of the whole zone and of its
//! languages); each `Shard` reads its cells once (one cell first, then twice
//! as many each time, planning as it reads), keeps the addresses in the
//! zone, adds group members, plans one delivery per recipient and channel,
//! and hands them to the channel queues in batches — while other shards are
//! still resolving, so the first messages leave within moments.

use super::matcher::Matcher;
use super::preview::zone_and_covering;
use super::{App, JobError, JobOutcome};
use crate::jobs::{Lane, RESOLVE_QUEUE, ResolveJob, SendItem, SendJob, send_queue_in};
use crate::ports::{RecipientPlan, UNIT_PARTS};
use bealert_core::alert::{AlertSpec, AlertState};
use bealert_core::area::Area;
use bealert_core::delivery::PlannedDelivery;
use bealert_core::geography::unit_key;
use bealert_core::subscriber::Contact;
use bealert_core::zone::{CoveredCell, Zone};
use bealert_core::{AlertId, Channel, SubscriberId};
use std::collections::{BTreeMap, HashSet};

/// How long a Plan job waits for its alert to be stored.
const ALERT_STORE_WAIT_MS: i64 = 60_000;
/// Recipients planned per store call within a shard: small enough that a
/// plan's write transaction holds the embedded home's one writer briefly,
/// between the senders' claims and records (5,000 held it for a tenth of
/// a second while a rate-limited channel's budget went unused).
const PLAN_CHUNK: usize = 1_000;
/// Address items of a unit part read first, then twice as many each
/// time up to [`UNIT_PAGE`].
const FIRST_UNIT_PAGE: usize = 500;
const UNIT_PAGE: usize = 16_384;
/// Messages per queue send call (SQS takes at most 10).
const SEND_CHUNK: usize = 10;

/// The deliveries one recipient gets: every channel both the alert and the
/// subscriber chose (a landline's SMS as a call: [`Contact::reached_on`]),
/// in the language the alert has for them.
pub(crate) fn plan_for(spec: &AlertSpec, contact: &Contact) -> Option<RecipientPlan> {
    let (language, _) = spec.messages.pick(contact.language)?;
    let deliveries: Vec<PlannedDelivery> = contact
        .deliveries(spec.channels)
        .map(|(channel, to)| PlannedDelivery {
            subscriber_id: contact.subscriber_id,
            channel,
            to: to.to_string(),
            language,
        })
        .collect();
    (!deliveries.is_empty()).then(|| RecipientPlan {
        subscriber_id: contact.subscriber_id,
        external_id: contact.external_id.clone(),
        deliveries,
    })
}

/// Where a shard finds its registrants.
enum Source {
    Cells(Vec<CoveredCell>),
    /// A unit's recorded registrants, one part.
    Unit(String, u32),
}

/// A deterministic shuffle key: batches mix places and languages.
fn mix(id: SubscriberId) -> u64 {
    (id.as_i64() as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(29)
}

impl App {
    pub(crate) async fn handle_resolve(&self, job: ResolveJob) -> Result<JobOutcome, JobError> {
        match job {
            ResolveJob::Plan {
                alert_id,
                approved_at,
            } => self.plan_resolution(alert_id, approved_at).await,
            ResolveJob::Shard {
                alert_id,
                shard,
                cells,
                groups,
                unit,
                part,
            } => {
                let source = match unit {
                    Some(unit) => Source::Unit(unit, part),
                    None => Source::Cells(cells),
                };
                self.resolve_shard(alert_id, shard, &source, &groups).await
            }
        }
    }

    async fn plan_resolution(
        &self,
        id: AlertId,
        approved_at: Option<i64>,
    ) -> Result<JobOutcome, JobError> {
        // The Plan job is enqueued before the alert is stored (so a crash
        // between the two can never leave a stored alert without its job):
        // a job whose alert is not there yet waits for it, a while.
        let mut found = self.ports.alerts.get_alert(id).await?;
        for _ in 0..20 {
            // Usually a matter of a millisecond: look again before postponing.
            if found.is_some() || self.now_ms() - super::alerts::created_ms(id) > 1_000 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            found = self.ports.alerts.get_alert(id).await?;
        }
        let Some(alert) = found else {
            let age = self.now_ms() - super::alerts::created_ms(id);
            if age < ALERT_STORE_WAIT_MS {
                return Ok(JobOutcome::RetryAfter(
                    std::time::Duration::from_millis(20),
                    "the alert is not stored yet".into(),
                ));
            }
            tracing::warn!(alert = %id, age_ms = age, "a plan job for an alert that was never stored; dropped");
            return Ok(JobOutcome::Done);
        };
        if alert.state == AlertState::AwaitingApproval
            && approved_at.is_some_and(|at| self.now_ms() - at < ALERT_STORE_WAIT_MS)
        {
            return Ok(JobOutcome::RetryAfter(
                std::time::Duration::from_millis(20),
                "the approval is being recorded".into(),
            ));
        }
        if alert.state != AlertState::Resolving {
            return Ok(JobOutcome::Done);
        }
        if let Some(original) = alert.spec.references
            && !alert.spec.own_zone
        {
            return self.resolve_follow_up(&alert, original).await;
        }
        // The networks first: they start while the zone is being resolved.
        self.plan_broadcast(&alert).await?;
        self.plan_public(&alert).await?;
        let mut shards: Vec<ResolveJob> = Vec::new();
        if let Some(units) = self.units_by_key(&alert.spec.area).await? {
            // Exactly whole units, indexed at their current versions: their
            // registrants are read by key, each unit in parallel parts.
            for unit in units {
                for part in 0..UNIT_PARTS {
                    shards.push(ResolveJob::Shard {
                        alert_id: id,
                        shard: shards.len() as u32,
                        cells: Vec::new(),
                        groups: Vec::new(),
                        unit: Some(unit.clone()),
                        part,
                    });
                }
            }
        } else if !alert.spec.area.is_empty() {
            let (_, covering) = zone_and_covering(alert.spec.area.clone())
                .await
                .map_err(JobError::from)?;
            let n = covering
                .cells
                .len()
                .div_ceil(self.config.cells_per_shard.max(1));
            for cells in covering.shards(n) {
                shards.push(ResolveJob::Shard {
                    alert_id: id,
                    shard: shards.len() as u32,
                    cells,
                    groups: Vec::new(),
                    unit: None,
                    part: 0,
                });
            }
        }
        if !alert.spec.groups.is_empty() || shards.is_empty() {
            shards.push(ResolveJob::Shard {
                alert_id: id,
                shard: shards.len() as u32,
                cells: Vec::new(),
                groups: alert.spec.groups.clone(),
                unit: None,
                part: 0,
            });
        }
        self.ports
            .alerts
            .set_shard_count(id, shards.len() as u32)
            .await?;
        let bodies: Vec<String> = shards
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<_, _>>()
            .map_err(JobError::from)?;
        for chunk in bodies.chunks(SEND_CHUNK) {
            self.ports.queue.send(RESOLVE_QUEUE, chunk).await?;
        }
        tracing::info!(alert = %id, shards = shards.len(), "resolution planned");
        Ok(JobOutcome::Done)
    }

    async fn resolve_shard(
        &self,
        id: AlertId,
        shard: u32,
        source: &Source,
        groups: &[String],
    ) -> Result<JobOutcome, JobError> {
        let alert = self.job_alert(id).await?;
        if alert.state.is_final() {
            return Ok(JobOutcome::Done);
        }

        // Planned as they are read: the first cell's recipients are queued
        // while the rest of the shard is still being read. A subscriber with
        // several addresses in the shard is planned once (the store keeps
        // each recipient to one shard of the alert).
        let mut seen: HashSet<SubscriberId> = HashSet::new();
        if let Source::Unit(unit, part) = source {
            // In pages, the first small and each next one twice as large:
            // the first recipients are queued after a few hundred rows.
            let (mut cursor, mut limit) = (None, FIRST_UNIT_PAGE);
            loop {
                let page = self
                    .ports
                    .subscribers
                    .addresses_in_unit_page(unit, *part, true, cursor, limit)
                    .await?;
                let contacts = page.items.into_iter().map(|i| i.contact);
                self.plan_contacts(id, &alert.spec, shard, &mut seen, contacts)
                    .await?;
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
                limit = (limit * 2).min(UNIT_PAGE);
            }
        }
        if let Source::Cells(cells) = source
            && !cells.is_empty()
        {
            let zone = Zone::new(&alert.spec.area);
            let mut rest = &cells[..];
            let mut take = 1;
            while !rest.is_empty() {
                let (now, later) = rest.split_at(take.min(rest.len()));
                rest = later;
                take *= 2;
                let matcher = Matcher::new(&zone, now);
                let ids: Vec<u64> = now.iter().map(|c| c.cell).collect();
                let items = self
                    .ports
                    .subscribers
                    .addresses_in_cells(&ids, true)
                    .await?;
                let contacts = items
                    .into_iter()
                    .filter(|item| matcher.matches(item))
                    .map(|i| i.contact);
                self.plan_contacts(id, &alert.spec, shard, &mut seen, contacts)
                    .await?;
            }
        }
        for group in groups {
            let members = self.ports.subscribers.group_members(group).await?;
            self.plan_contacts(id, &alert.spec, shard, &mut seen, members)
                .await?;
        }

        self.finish_shard(id, shard).await?;
        Ok(JobOutcome::Done)
    }

    /// Plans the deliveries of the contacts not seen yet in this shard and
    /// hands them to the channel queues.
    async fn plan_contacts(
        &self,
        id: AlertId,
        spec: &AlertSpec,
        shard: u32,
        seen: &mut HashSet<SubscriberId>,
        contacts: impl IntoIterator<Item = Contact>,
    ) -> Result<(), JobError> {
        // A cancelled alert plans nobody more (its senders stop what is planned).
        let now = self.ports.alerts.get_alert_head(id).await?;
        if now.is_none_or(|a| !a.state.may_send() || a.spec.expired_at(self.now_ms())) {
            return Ok(());
        }
        let mut plans: Vec<RecipientPlan> = contacts
            .into_iter()
            .filter(|c| seen.insert(c.subscriber_id))
            .filter_map(|c| plan_for(spec, &c))
            .collect();
        plans.sort_unstable_by_key(|p| mix(p.subscriber_id));
        for chunk in plans.chunks(PLAN_CHUNK) {
            let pending = self
                .ports
                .deliveries
                .plan_deliveries(id, shard, chunk)
                .await?;
            self.enqueue_sends(id, Lane::of(spec), pending).await?;
        }
        Ok(())
    }

    /// The units (`level:code`) an area is exactly, when every one is
    /// still at the version the alert was resolved with and the stored
    /// addresses' units are up to date with it; `None`: use the geometry.
    async fn units_by_key(&self, area: &Area) -> Result<Option<Vec<String>>, JobError> {
        if area.units.is_empty() || !area.circles.is_empty() {
            return Ok(None);
        }
        let geo = &self.ports.geography;
        let mut out = Vec::with_capacity(area.units.len());
        for u in &area.units {
            let current = geo.unit_info(u.level, &u.code).await?;
            let indexed = geo.indexed_version(u.level, &u.code).await?;
            if current.map(|i| i.version).as_ref() != Some(&u.version)
                || indexed.as_ref() != Some(&u.version)
            {
                tracing::info!(unit = %unit_key(u.level, &u.code), "unit changed or not indexed: resolving by geometry");
                return Ok(None);
            }
            out.push(unit_key(u.level, &u.code));
        }
        Ok(Some(out))
    }

    /// Hands planned deliveries to the senders, in the alert's lane.
    pub(crate) async fn enqueue_sends(
        &self,
        id: AlertId,
        lane: Lane,
        pending: Vec<PlannedDelivery>,
    ) -> Result<(), JobError> {
        let mut by_channel: BTreeMap<Channel, Vec<SendItem>> = BTreeMap::new();
        for d in pending {
            by_channel.entry(d.channel).or_default().push(SendItem {
                subscriber_id: d.subscriber_id,
                to: d.to,
                language: d.language,
            });
        }
        for (channel, items) in by_channel {
            let bodies: Vec<String> = items
                .chunks(self.config.batch_size.max(1))
                .map(|batch| {
                    serde_json::to_string(&SendJob {
                        alert_id: id,
                        channel,
                        deliveries: batch.to_vec(),
                    })
                })
                .collect::<Result<_, _>>()
                .map_err(JobError::from)?;
            for chunk in bodies.chunks(SEND_CHUNK) {
                self.ports
                    .queue
                    .send(send_queue_in(channel, lane), chunk)
                    .await?;
            }
        }
        Ok(())
    }
}
