//! Delivery items: planned once per (alert, channel, subscriber), claimed
//! under a lease with conditional writes, counted in striped counter items
//! in the same transactions.
//!
//! Each step writes up to 99 deliveries per transaction (the common case:
//! nothing raced) with one counter item per channel: the stripe of the
//! transaction's first subscriber, so concurrent writers spread over
//! [`DELIVERY_BUCKETS`] counter items while a delivery pays a hundredth of
//! one. A refused condition takes its delivery out; the rest are written
//! again together. A claim moves no count ([`rules::counted_as`]), so it is
//! a conditional UpdateItem of its own per delivery (1 write unit, not 2).

use super::alerts::alert_pk;
use super::{
    DynamoStore, Item, Tx, built, get_s, item_from, key, n, opt_s, put_new, row_from, s, sdk_err,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use bealert_app::ports::{
    AlertCounts, Breakdown, ChannelCounts, Claim, DeliveryRef, DeliveryRow, DeliveryStore, Leg,
    ReceiptApplied, ReceiptChange, RecipientPlan, Recorded, StoreError,
};
use bealert_app::rules::{self, Counter};
use bealert_core::delivery::{DELIVERY_BUCKETS, DeliveryStatus, PlannedDelivery, bucket};
use bealert_core::{AlertId, Channel, Language, SubscriberId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

/// The deliveries table's index by provider message id (`pid`).
pub const PROVIDER_ID_INDEX: &str = "by-provider-id";

/// DynamoDB's limit of actions per transaction.
const MAX_ACTIONS: usize = 100;

/// Recipients whose owner items are written before their deliveries, at most.
const PLAN_CHUNK: usize = 500;

/// Owner items written at once.
const OWNER_WRITES: usize = 16;

/// Count-free changes (claims) written at once, one request each.
const SINGLE_WRITES: usize = 16;

fn delivery_pk(alert: AlertId, channel: Channel, b: u8) -> String {
    format!("D#{alert}#{channel}#{b:02}")
}

fn delivery_key(alert: AlertId, channel: Channel, sub: SubscriberId) -> Item {
    key(delivery_pk(alert, channel, bucket(sub)), sub.to_string())
}

fn recipient_key(alert: AlertId, sub: SubscriberId) -> Item {
    key(format!("R#{alert}#{:02}", bucket(sub)), sub.to_string())
}

fn counter_sk(channel: Channel, b: u8) -> String {
    format!("C#{channel}#{b:02}")
}

/// A counter item in a partition of its own (`A#<alert>#C#sms#05`/`N`):
/// concurrent senders of one alert write to 64 partitions, not one, and
/// live counts read exactly the counters (one batch read).
fn counter_key(alert: AlertId, name: &str) -> Item {
    key(format!("{}#{name}", alert_pk(alert)), "N")
}

fn column(st: DeliveryStatus) -> &'static str {
    match st {
        DeliveryStatus::Queued => "q",
        DeliveryStatus::Sending => "sg",
        DeliveryStatus::Sent => "ok",
        DeliveryStatus::Failed => "f",
        DeliveryStatus::Cancelled => "cx",
        DeliveryStatus::Delivered => "dl",
    }
}

/// A counter item's column of one language: planned (`p.nl`) or a final
/// status (`ok.nl`, `dl.nl`, `f.nl`, `cx.nl`).
fn language_column(st: Option<DeliveryStatus>, language: Language) -> String {
    format!("{}.{}", st.map_or("p", column), language.code())
}

/// A counter item's column of one latency bucket: `h0.nl.17`.
fn latency_column(leg: Leg, language: Language, b: usize) -> String {
    format!("h{}.{}.{b}", leg.index(), language.code())
}

/// A counter item's column of a counter.
fn counter_column(counter: Counter) -> String {
    match counter {
        Counter::Status(st) => column(st).to_string(),
        Counter::Planned(language) => language_column(None, language),
        Counter::Final(language, st) => language_column(Some(st), language),
        Counter::Latency(language, leg, b) => latency_column(leg, language, b),
    }
}

/// Which of `n` parts had an action refused on its condition, from a
/// cancelled transaction's reasons; `owner_of[i]` is the part of action
/// `i` (the counter actions after them belong to none).
fn refused(reasons: &[(String, Option<Item>)], owner_of: &[usize], n: usize) -> Vec<bool> {
    let mut out = vec![false; n];
    for (part, (code, _)) in owner_of.iter().zip(reasons) {
        if code == "ConditionalCheckFailed" {
            out[*part] = true;
        }
    }
    out
}

/// A delivery item (`D#<alert>#<channel>#<bucket>`/`<subscriber>`), as
/// planned; claims, records and receipts change it with conditional update
/// expressions (which set `prov`, `pid` and `err`).
#[derive(Serialize, Deserialize)]
struct DeliveryItem {
    /// [`DeliveryStatus::index`].
    st: u8,
    to: String,
    /// [`Language::index`].
    lang: u8,
    att: u32,
    lease: i64,
    #[serde(default)]
    upd: i64,
    /// The TTL (seconds).
    #[serde(default)]
    expires_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ext: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prov: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    err: Option<String>,
}

impl DeliveryItem {
    fn language(&self) -> Result<Language, StoreError> {
        Language::from_index(self.lang)
            .ok_or_else(|| StoreError::Permanent(format!("bad language {}", self.lang)))
    }

    fn status(&self) -> Result<DeliveryStatus, StoreError> {
        DeliveryStatus::from_index(self.st)
            .ok_or_else(|| StoreError::Permanent(format!("bad status {}", self.st)))
    }
}

/// Which shard owns a recipient (`R#<alert>#<bucket>`/`<subscriber>`).
#[derive(Serialize, Deserialize)]
struct OwnerItem {
    shard: u32,
    /// The TTL (seconds).
    #[serde(default)]
    expires_at: i64,
}

/// Counter deltas of one transaction, keyed by counter item sort key.
#[derive(Default)]
struct Deltas(BTreeMap<String, BTreeMap<String, i64>>);

impl Deltas {
    fn add(&mut self, sk: String, col: impl Into<String>, d: i64) {
        *self.0.entry(sk).or_default().entry(col.into()).or_default() += d;
    }

    /// No counter moves.
    fn is_empty(&self) -> bool {
        self.0.values().all(|cols| cols.values().all(|d| *d == 0))
    }

    /// Counter changes ([`rules`]) of one delivery, in a stripe's counter
    /// item (any stripe: counts are the sum over all of them).
    fn counted(
        &mut self,
        channel: Channel,
        stripe: u8,
        changes: impl IntoIterator<Item = (Counter, i64)>,
    ) {
        let sk = counter_sk(channel, stripe);
        for (counter, d) in changes {
            self.add(sk.clone(), counter_column(counter), d);
        }
    }

    /// One recipient reached.
    fn reached(&mut self, stripe: u8) {
        self.add(format!("REACH#{stripe:02}"), "n", 1);
    }

    fn planned_deliveries(&mut self, deliveries: &[PlannedDelivery], stripe: u8) {
        for d in deliveries {
            self.counted(d.channel, stripe, rules::planned(d.language));
        }
    }

    /// One change's counts: its move, and its latency.
    fn changed(&mut self, channel: Channel, stripe: u8, c: &Change) {
        self.counted(channel, stripe, rules::moved(c.from, c.to, c.language));
        if let (Some(l), Some((leg, ms))) = (c.language, c.timed) {
            self.counted(channel, stripe, [(Counter::latency(l, leg, ms), 1)]);
        }
    }

    fn actions(
        &self,
        store: &DynamoStore,
        alert: AlertId,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut out = Vec::new();
        for (sk, cols) in &self.0 {
            let cols: Vec<_> = cols.iter().filter(|(_, d)| **d != 0).collect();
            if cols.is_empty() {
                continue;
            }
            let mut u = Update::builder()
                .table_name(&store.tables.alerts)
                .set_key(Some(counter_key(alert, sk)));
            let mut expr = Vec::new();
            for (i, (col, d)) in cols.iter().enumerate() {
                u = u
                    .expression_attribute_names(format!("#c{i}"), col.to_string())
                    .expression_attribute_values(format!(":d{i}"), n(*d));
                expr.push(format!("#c{i} :d{i}"));
            }
            u = u.update_expression(format!("ADD {}", expr.join(", ")));
            out.push(
                TransactWriteItem::builder()
                    .update(built(u.build())?)
                    .build(),
            );
        }
        Ok(out)
    }
}

/// Whether none of these changes moves a count (claims): each on its own,
/// not their sum, so moves that cancel out across changes still count.
fn moves_no_count(channel: Channel, changes: &[Change]) -> bool {
    changes.iter().all(|c| {
        let mut d = Deltas::default();
        d.changed(channel, 0, c);
        d.is_empty()
    })
}

/// A conditional status change of one delivery, with its counter deltas.
struct Change {
    sub: SubscriberId,
    from: DeliveryStatus,
    /// Guard: the attempts seen when deciding (None: any, for an outcome
    /// recorded without reading first; the status guard still holds).
    attempts: Option<u32>,
    to: DeliveryStatus,
    lease_until: i64,
    bump_attempts: bool,
    error: Option<String>,
    /// The provider that took it (kept once set) and its id for it.
    provider: Option<bealert_app::ports::Handover>,
    /// Its language, to count final statuses per language.
    language: Option<Language>,
    /// A latency to add to the histogram of a leg.
    timed: Option<(Leg, i64)>,
}

impl DynamoStore {
    fn change_action(
        &self,
        alert: AlertId,
        channel: Channel,
        c: &Change,
        now: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        Ok(TransactWriteItem::builder()
            .update(self.change_update(alert, channel, c, now)?)
            .build())
    }

    /// A change's conditional update of its delivery item.
    fn change_update(
        &self,
        alert: AlertId,
        channel: Channel,
        c: &Change,
        now: i64,
    ) -> Result<Update, StoreError> {
        let mut u = Update::builder()
            .table_name(&self.tables.deliveries)
            .set_key(Some(delivery_key(alert, channel, c.sub)))
            .expression_attribute_values(":from", n(c.from.index()))
            .expression_attribute_values(":to", n(c.to.index()))
            .expression_attribute_values(":lease", n(c.lease_until))
            .expression_attribute_values(":now", n(now));
        u = match c.attempts {
            Some(att) => u
                .condition_expression("st = :from AND att = :att")
                .expression_attribute_values(":att", n(att)),
            None => u.condition_expression("st = :from"),
        };
        let mut set = "SET st = :to, lease = :lease, upd = :now".to_string();
        if c.bump_attempts {
            set.push_str(", att = att + :one");
            u = u.expression_attribute_values(":one", n(1));
        }
        match &c.error {
            Some(e) => {
                set.push_str(", err = :err");
                u = u.expression_attribute_values(":err", s(e.clone()));
            }
            None => set.push_str(" REMOVE err"),
        }
        if let Some(h) = &c.provider {
            // The first provider named stays: a retry is pinned to it.
            set = set.replacen("SET ", "SET prov = if_not_exists(prov, :prov), ", 1);
            u = u.expression_attribute_values(":prov", s(h.provider.clone()));
            if let Some(id) = &h.id {
                set = set.replacen("SET ", "SET pid = :pid, ", 1);
                u = u.expression_attribute_values(":pid", s(id.clone()));
            }
        }
        built(u.update_expression(set).build())
    }

    /// Changes that move no count (claims: [`rules::counted_as`]): a
    /// conditional UpdateItem each, [`SINGLE_WRITES`] at once, 1 write unit
    /// where an action in a transaction costs 2. Returns the subscribers
    /// whose change was written.
    async fn apply_uncounted(
        &self,
        alert: AlertId,
        channel: Channel,
        changes: Vec<Change>,
        now: i64,
    ) -> Result<Vec<SubscriberId>, StoreError> {
        use futures::{StreamExt, TryStreamExt};
        let updates = changes
            .iter()
            .map(|c| Ok((c.sub, self.change_update(alert, channel, c, now)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let written: Vec<Option<SubscriberId>> =
            futures::stream::iter(updates)
                .map(|(sub, u)| async move {
                    Ok::<_, StoreError>(self.update_if(u).await?.then_some(sub))
                })
                .buffered(SINGLE_WRITES)
                .try_collect()
                .await?;
        Ok(written.into_iter().flatten().collect())
    }

    /// One conditional update on its own: false if its condition was refused.
    async fn update_if(&self, u: Update) -> Result<bool, StoreError> {
        use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
        self.usage.request();
        let out = self
            .client
            .update_item()
            .table_name(u.table_name())
            .set_key(Some(u.key().clone()))
            .update_expression(u.update_expression())
            .set_condition_expression(u.condition_expression().map(str::to_string))
            .set_expression_attribute_names(u.expression_attribute_names().cloned())
            .set_expression_attribute_values(u.expression_attribute_values().cloned())
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(false),
                _ => Err(sdk_err(e)),
            },
        }
    }

    /// Applies changes in transactions of up to 99 changes and their one
    /// counter item (changes that move no count: one conditional write
    /// each); returns the subscribers whose change committed. A
    /// change whose condition was refused is taken out and the others are
    /// written again together; a cancellation that names no refused
    /// condition is tried again one change per transaction.
    async fn apply_changes(
        &self,
        alert: AlertId,
        channel: Channel,
        changes: Vec<Change>,
        now: i64,
    ) -> Result<Vec<SubscriberId>, StoreError> {
        if moves_no_count(channel, &changes) {
            return self.apply_uncounted(alert, channel, changes, now).await;
        }
        let mut committed = Vec::new();
        let mut singly = Vec::new();
        let mut rest = changes.into_iter().peekable();
        while rest.peek().is_some() {
            let mut chunk: Vec<Change> = rest.by_ref().take(MAX_ACTIONS - 1).collect();
            loop {
                match self.apply_chunk(alert, channel, &chunk, now).await? {
                    None => {
                        committed.extend(chunk.iter().map(|c| c.sub));
                        break;
                    }
                    Some(refused) if chunk.len() > 1 && refused.iter().any(|r| *r) => {
                        chunk = chunk
                            .into_iter()
                            .zip(refused)
                            .filter_map(|(c, refused)| (!refused).then_some(c))
                            .collect();
                    }
                    Some(_) => {
                        if chunk.len() > 1 {
                            singly.extend(chunk);
                        }
                        break;
                    }
                }
            }
        }
        for c in singly {
            if self
                .apply_chunk(alert, channel, std::slice::from_ref(&c), now)
                .await?
                .is_none()
            {
                committed.push(c.sub);
            }
        }
        Ok(committed)
    }

    /// One transaction: the changes and their counts, in the counter item
    /// of the first change's stripe. `None` if it committed, else which
    /// changes' conditions were refused.
    async fn apply_chunk(
        &self,
        alert: AlertId,
        channel: Channel,
        chunk: &[Change],
        now: i64,
    ) -> Result<Option<Vec<bool>>, StoreError> {
        let Some(first) = chunk.first() else {
            return Ok(None);
        };
        let stripe = bucket(first.sub);
        let mut deltas = Deltas::default();
        let mut actions = Vec::with_capacity(chunk.len() + 1);
        for c in chunk {
            deltas.changed(channel, stripe, c);
            actions.push(self.change_action(alert, channel, c, now)?);
        }
        actions.extend(deltas.actions(self, alert)?);
        let owner_of: Vec<usize> = (0..chunk.len()).collect();
        Ok(match self.transact(actions).await? {
            Tx::Committed => None,
            Tx::Cancelled(reasons) => Some(refused(&reasons, &owner_of, chunk.len())),
        })
    }

    /// Every channel counter item an alert can have (and its reach
    /// counters, with `reach`), in one batch read.
    async fn counter_items(&self, alert: AlertId, reach: bool) -> Result<Vec<Item>, StoreError> {
        let mut names: Vec<String> = if reach {
            (0..DELIVERY_BUCKETS)
                .map(|b| format!("REACH#{b:02}"))
                .collect()
        } else {
            Vec::new()
        };
        for channel in Channel::ALL {
            names.extend((0..DELIVERY_BUCKETS).map(|b| counter_sk(channel, b)));
        }
        let keys = names.iter().map(|n| counter_key(alert, n)).collect();
        self.batch_get(&self.tables.alerts, keys).await
    }

    /// The counts of an alert's channels, and its reach with `reach`.
    async fn read_counts(&self, alert: AlertId, reach: bool) -> Result<AlertCounts, StoreError> {
        let sums = self.counter_sums(alert, reach).await?;
        let mut out = AlertCounts::default();
        for ((name, col), v) in &sums {
            if name == "REACH" {
                out.recipients += v;
            } else if let Some(code) = name.strip_prefix("C#") {
                let channel = Channel::from_code(code)
                    .ok_or_else(|| StoreError::Permanent(format!("bad counter {name}")))?;
                let c = out
                    .channels
                    .entry(channel)
                    .or_insert_with(ChannelCounts::default);
                match col.as_str() {
                    "q" => c.queued += v,
                    "ok" => c.sent += v,
                    "f" => c.failed += v,
                    "cx" => c.cancelled += v,
                    "dl" => c.delivered += v,
                    _ => {}
                }
            }
        }
        Ok(out)
    }

    /// Each counter's columns summed over its stripes, by (counter, column):
    /// `("C#sms", "q")`, `("REACH", "n")`. A stripe alone may be negative (a
    /// delivery counted queued in one stripe leaves it in another); the sum
    /// is not, and is clamped at 0 only as a whole.
    async fn counter_sums(
        &self,
        alert: AlertId,
        reach: bool,
    ) -> Result<BTreeMap<(String, String), u64>, StoreError> {
        let prefix = format!("{}#", alert_pk(alert));
        let mut sums: BTreeMap<(String, String), i64> = BTreeMap::new();
        for item in self.counter_items(alert, reach).await? {
            let pk = get_s(&item, "pk")?;
            let Some((name, _stripe)) = pk.strip_prefix(&prefix).and_then(|n| n.rsplit_once('#'))
            else {
                continue;
            };
            let name = name.to_string();
            for (col, value) in &item {
                if let Some(v) = value.as_n().ok().and_then(|v| v.parse::<i64>().ok()) {
                    // `sg` holds what was claimed before claims stopped
                    // counting (rules::counted_as): queued too, summed
                    // before the clamp.
                    let col = if col == "sg" { "q" } else { col.as_str() };
                    *sums.entry((name.clone(), col.to_string())).or_default() += v;
                }
            }
        }
        Ok(sums
            .into_iter()
            .map(|(k, v)| (k, v.max(0) as u64))
            .collect())
    }

    async fn current(
        &self,
        alert: AlertId,
        channel: Channel,
        subs: &[SubscriberId],
    ) -> Result<HashMap<SubscriberId, DeliveryItem>, StoreError> {
        let keys = subs
            .iter()
            .map(|s| delivery_key(alert, channel, *s))
            .collect();
        self.batch_get(&self.tables.deliveries, keys)
            .await?
            .into_iter()
            .map(|item| {
                let sub = get_s(&item, "sk")?.parse().map_err(StoreError::Permanent)?;
                Ok((sub, row_from(item)?))
            })
            .collect()
    }

    /// Puts each recipient's owner item unless one is there, one
    /// conditional write each (a refused one costs a unit, not a
    /// transaction): `None` where this call made it, else the shard that
    /// owns the recipient.
    async fn put_owners(
        &self,
        alert: AlertId,
        shard: u32,
        batch: &[RecipientPlan],
        now: i64,
    ) -> Result<Vec<Option<u32>>, StoreError> {
        use futures::{StreamExt, TryStreamExt};
        // Owned ids: a stream of borrowed plans trips the compiler's Send
        // check across async_trait (higher-ranked lifetimes).
        let subs: Vec<SubscriberId> = batch.iter().map(|r| r.subscriber_id).collect();
        futures::stream::iter(subs)
            .map(|sub| self.put_owner(alert, shard, sub, now))
            .buffered(OWNER_WRITES)
            .try_collect()
            .await
    }

    async fn put_owner(
        &self,
        alert: AlertId,
        shard: u32,
        sub: SubscriberId,
        now: i64,
    ) -> Result<Option<u32>, StoreError> {
        use aws_sdk_dynamodb::operation::put_item::PutItemError;
        use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
        let expires_at = self.expires_at(now);
        let owner = item_from(recipient_key(alert, sub), &OwnerItem { shard, expires_at })?;
        self.usage.request();
        let out = self
            .client
            .put_item()
            .table_name(&self.tables.deliveries)
            .set_item(Some(owner))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match out {
            Ok(_) => Ok(None),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(c)) => {
                    let old = match c.item() {
                        Some(old) => Some(old.clone()),
                        None => self
                            .batch_get(&self.tables.deliveries, vec![recipient_key(alert, sub)])
                            .await?
                            .into_iter()
                            .next(),
                    };
                    let old = old.ok_or_else(|| {
                        StoreError::Transient(format!("owner of {sub} refused but not found"))
                    })?;
                    Ok(Some(row_from::<OwnerItem>(old)?.shard))
                }
                _ => Err(sdk_err(e)),
            },
        }
    }

    /// One transaction: the deliveries of recipients this shard owns, and
    /// their counts in one stripe (the recipient itself too, where `reach`).
    /// `None` if it committed, else which recipients had a delivery
    /// refused (one there already).
    async fn put_deliveries(
        &self,
        alert: AlertId,
        batch: &[(&RecipientPlan, bool)],
        stripe: u8,
        now: i64,
    ) -> Result<Option<Vec<bool>>, StoreError> {
        let expires_at = self.expires_at(now);
        let mut deltas = Deltas::default();
        let mut actions = Vec::new();
        let mut owner_of = Vec::new();
        for (k, (r, reach)) in batch.iter().enumerate() {
            if *reach {
                deltas.reached(stripe);
            }
            deltas.planned_deliveries(&r.deliveries, stripe);
            for d in &r.deliveries {
                let item = item_from(
                    delivery_key(alert, d.channel, d.subscriber_id),
                    &DeliveryItem {
                        st: DeliveryStatus::Queued.index(),
                        to: d.to.clone(),
                        lang: d.language.index(),
                        att: 0,
                        lease: 0,
                        upd: now,
                        expires_at,
                        ext: r.external_id.clone(),
                        prov: None,
                        pid: None,
                        err: None,
                    },
                )?;
                actions.push(put_new(&self.tables.deliveries, item)?);
                owner_of.push(k);
            }
        }
        if actions.is_empty() {
            return Ok(None);
        }
        actions.extend(deltas.actions(self, alert)?);
        Ok(match self.transact(actions).await? {
            Tx::Committed => None,
            Tx::Cancelled(reasons) => Some(refused(&reasons, &owner_of, batch.len())),
        })
    }

    /// Plans recipients this call just became the owner of: their
    /// deliveries and reach, up to 99 items a transaction. A recipient
    /// with a delivery already there (a concurrent run of this shard) is
    /// taken out and looked at alone; the rest are written again together.
    async fn plan_owned(
        &self,
        alert: AlertId,
        fresh: Vec<&RecipientPlan>,
        now: i64,
    ) -> Result<Vec<PlannedDelivery>, StoreError> {
        let mut pending = Vec::new();
        let mut i = 0;
        while i < fresh.len() {
            // Greedily fill one transaction, counted in one stripe.
            let stripe = bucket(fresh[i].subscriber_id);
            let mut deltas = Deltas::default();
            let mut actions = 0;
            let mut j = i;
            while j < fresh.len() {
                let r = fresh[j];
                deltas.reached(stripe);
                deltas.planned_deliveries(&r.deliveries, stripe);
                if j > i && actions + r.deliveries.len() + deltas.0.len() > MAX_ACTIONS {
                    break;
                }
                actions += r.deliveries.len();
                j += 1;
            }
            let mut batch: Vec<(&RecipientPlan, bool)> =
                fresh[i..j].iter().map(|r| (*r, true)).collect();
            i = j;
            while !batch.is_empty() {
                match self.put_deliveries(alert, &batch, stripe, now).await? {
                    None => {
                        for (r, _) in &batch {
                            pending.extend(r.deliveries.iter().cloned());
                        }
                        break;
                    }
                    Some(refused) if batch.len() > 1 && refused.iter().any(|r| *r) => {
                        let mut rest = Vec::with_capacity(batch.len());
                        for (item, refused) in batch.into_iter().zip(refused) {
                            if refused {
                                pending.extend(self.replan_owned(alert, item.0, now).await?);
                            } else {
                                rest.push(item);
                            }
                        }
                        batch = rest;
                    }
                    Some(_) => {
                        for (r, _) in &batch {
                            pending.extend(self.replan_owned(alert, r, now).await?);
                        }
                        break;
                    }
                }
            }
        }
        Ok(pending)
    }

    /// A recipient this shard owns from before (an earlier or concurrent
    /// run, or a follow-up adding a channel): its deliveries still to
    /// send, planning those not there yet. It counts as reached if none of
    /// its deliveries, on any channel, is there yet.
    async fn replan_owned(
        &self,
        alert: AlertId,
        r: &RecipientPlan,
        now: i64,
    ) -> Result<Vec<PlannedDelivery>, StoreError> {
        let sub = r.subscriber_id;
        for _ in 0..3 {
            let keys = Channel::ALL
                .iter()
                .map(|c| delivery_key(alert, *c, sub))
                .collect();
            let mut there: HashMap<Channel, DeliveryStatus> = HashMap::new();
            for item in self.batch_get(&self.tables.deliveries, keys).await? {
                let pk = get_s(&item, "pk")?.to_string();
                let channel = pk.split('#').nth(2).and_then(Channel::from_code);
                let row: DeliveryItem = row_from(item)?;
                if let Some(channel) = channel {
                    there.insert(channel, row.status()?);
                }
            }
            let mut open = Vec::new();
            let mut missing = Vec::new();
            for d in &r.deliveries {
                match there.get(&d.channel) {
                    Some(st) if rules::still_to_send(Some(*st)) => open.push(d.clone()),
                    Some(_) => {}
                    None => missing.push(d.clone()),
                }
            }
            if missing.is_empty() {
                return Ok(open);
            }
            let more = RecipientPlan {
                deliveries: missing,
                ..r.clone()
            };
            let reach = there.is_empty();
            if self
                .put_deliveries(alert, &[(&more, reach)], bucket(sub), now)
                .await?
                .is_none()
            {
                open.extend(more.deliveries);
                return Ok(open);
            }
            // A concurrent run of this shard wrote some meanwhile: look again.
        }
        Err(StoreError::Transient(format!(
            "the deliveries of {sub} kept changing while they were planned"
        )))
    }
}

impl DynamoStore {
    /// The sizes of an alert's counter items (bytes, as DynamoDB bills
    /// them): the capacity meter counts an update as one unit, which holds
    /// while they stay under 1 KB. The benchmark prints them.
    pub async fn counter_item_sizes(&self, alert: AlertId) -> Result<Vec<usize>, StoreError> {
        Ok(self
            .counter_items(alert, true)
            .await?
            .iter()
            .map(super::capacity::item_size)
            .collect())
    }
}

#[async_trait]
impl DeliveryStore for DynamoStore {
    async fn plan_deliveries(
        &self,
        alert: AlertId,
        shard: u32,
        recipients: &[RecipientPlan],
    ) -> Result<Vec<PlannedDelivery>, StoreError> {
        let now = bealert_app::now_ms();
        let mut pending = Vec::new();
        // Owner items first, a conditional write each: the recipients this
        // call owns now are planned in transactions that nothing refuses
        // (unless a run of the same shard races it).
        // The first chunk is one round of owner writes, so the first
        // deliveries are queued after it; then twice as many each time.
        let mut rest = recipients;
        let mut size = OWNER_WRITES;
        while !rest.is_empty() {
            let (chunk, later) = rest.split_at(size.min(rest.len()));
            rest = later;
            size = (size * 2).min(PLAN_CHUNK);
            let owners = self.put_owners(alert, shard, chunk, now).await?;
            let mut fresh = Vec::new();
            for (r, owner) in chunk.iter().zip(owners) {
                match owner {
                    None => fresh.push(r),
                    Some(owner) if rules::plans_recipient(shard, owner) => {
                        pending.extend(self.replan_owned(alert, r, now).await?);
                    }
                    Some(_) => {}
                }
            }
            pending.extend(self.plan_owned(alert, fresh, now).await?);
        }
        Ok(pending)
    }

    async fn claim(
        &self,
        alert: AlertId,
        channel: Channel,
        subscribers: &[SubscriberId],
        now: i64,
        lease: Duration,
    ) -> Result<Vec<Claim>, StoreError> {
        let until = now + lease.as_millis() as i64;
        let mut answers: HashMap<SubscriberId, Claim> = HashMap::new();
        let mut todo: Vec<SubscriberId> = subscribers.to_vec();
        // First as planned, without reading: the common case, which the
        // write's condition checks. Then twice from a fresh read: a change
        // whose condition was refused is decided again.
        for round in 0..3 {
            let cur: HashMap<SubscriberId, (DeliveryStatus, i64, u32, Option<String>)> =
                if round == 0 {
                    let planned = (DeliveryStatus::Queued, 0, 0, None);
                    todo.iter().map(|s| (*s, planned.clone())).collect()
                } else {
                    let mut cur = HashMap::new();
                    for (sub, item) in self.current(alert, channel, &todo).await? {
                        cur.insert(sub, (item.status()?, item.lease, item.att, item.prov));
                    }
                    cur
                };
            let mut changes = Vec::new();
            let mut attempts = HashMap::new();
            for sub in &todo {
                let Some((st, lease, att, prov)) = cur.get(sub).cloned() else {
                    answers.insert(*sub, Claim::Unknown);
                    continue;
                };
                match Claim::decide(st, lease, att, prov, now) {
                    Claim::Claimed { attempt, provider } => {
                        attempts.insert(*sub, (attempt, provider));
                        // Written only if the row is still as read.
                        changes.push(Change {
                            sub: *sub,
                            from: st,
                            attempts: Some(att),
                            to: DeliveryStatus::Sending,
                            lease_until: until,
                            bump_attempts: true,
                            error: None,
                            provider: None,
                            language: None,
                            timed: None,
                        });
                    }
                    other => {
                        answers.insert(*sub, other);
                    }
                }
            }
            let wanted: Vec<SubscriberId> = changes.iter().map(|c| c.sub).collect();
            let won = self.apply_changes(alert, channel, changes, now).await?;
            for sub in &won {
                let (attempt, provider) = attempts[sub].clone();
                answers.insert(*sub, Claim::Claimed { attempt, provider });
            }
            todo = wanted.into_iter().filter(|s| !won.contains(s)).collect();
            if todo.is_empty() {
                break;
            }
            if round == 2 {
                // Still racing: someone else is on it; look again after a moment.
                for sub in &todo {
                    answers.insert(*sub, Claim::Busy { until: now + 1000 });
                }
            }
        }
        Ok(subscribers
            .iter()
            .map(|s| answers.remove(s).unwrap_or(Claim::Unknown))
            .collect())
    }

    async fn record(
        &self,
        alert: AlertId,
        channel: Channel,
        outcomes: &[Recorded],
        now: i64,
    ) -> Result<Vec<bool>, StoreError> {
        // Fenced and without a read: from `sending` under the claim's own
        // attempt. What the condition refuses was taken over (or is final):
        // it is not recorded, and not decided again.
        let changes = outcomes
            .iter()
            .map(|r| {
                let (to, error) = r.outcome.status();
                Change {
                    sub: r.subscriber,
                    from: DeliveryStatus::Sending,
                    attempts: Some(r.attempt),
                    to,
                    lease_until: 0,
                    bump_attempts: false,
                    error: error.map(str::to_string),
                    provider: r.provider.clone(),
                    language: Some(r.language),
                    timed: rules::latency(DeliveryStatus::Sending, to, r.released_at, now),
                }
            })
            .collect();
        let won: HashSet<SubscriberId> = self
            .apply_changes(alert, channel, changes, now)
            .await?
            .into_iter()
            .collect();
        Ok(outcomes
            .iter()
            .map(|r| won.contains(&r.subscriber))
            .collect())
    }

    /// Deliveries are keyed by alert: a subscriber's are found by a Scan
    /// of the deliveries table (filtered on the sort key). Deletions are
    /// rare; the Scan reads the whole table, which the retention TTL bounds.
    async fn forget_subscriber(
        &self,
        subscriber: SubscriberId,
        reason: &str,
        now: i64,
    ) -> Result<u64, StoreError> {
        let table = &self.tables.deliveries;
        let mut start = None;
        let mut found: Vec<(AlertId, Channel, Item)> = Vec::new();
        loop {
            self.usage.request();
            let page = self
                .client
                .scan()
                .table_name(table)
                .filter_expression("#sk = :sub AND begins_with(#pk, :d)")
                .expression_attribute_names("#sk", "sk")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_values(":sub", s(subscriber.to_string()))
                .expression_attribute_values(":d", s("D#"))
                .projection_expression("#pk, #sk")
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_err)?;
            for item in page.items.unwrap_or_default() {
                let pk = get_s(&item, "pk")?.to_string();
                let mut parts = pk.split('#').skip(1);
                let alert = parts.next().and_then(|a| a.parse::<AlertId>().ok());
                let channel = parts.next().and_then(Channel::from_code);
                if let (Some(alert), Some(channel)) = (alert, channel) {
                    found.push((alert, channel, item));
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        for (alert, channel, item) in &found {
            self.stop_unsent(
                *alert,
                *channel,
                &[subscriber],
                DeliveryStatus::Failed,
                reason,
                now,
            )
            .await?;
            self.usage.request();
            self.client
                .update_item()
                .table_name(table)
                .set_key(Some(item.clone()))
                .update_expression("SET #to = :empty REMOVE #ext")
                .condition_expression("attribute_exists(#to)")
                .expression_attribute_names("#to", "to")
                .expression_attribute_names("#ext", "ext")
                .expression_attribute_values(":empty", s(""))
                .send()
                .await
                .map_err(sdk_err)?;
        }
        Ok(found.len() as u64)
    }

    async fn stop_unsent(
        &self,
        alert: AlertId,
        channel: Channel,
        subscribers: &[SubscriberId],
        to: DeliveryStatus,
        reason: &str,
        now: i64,
    ) -> Result<Vec<Option<DeliveryStatus>>, StoreError> {
        let cur = self.current(alert, channel, subscribers).await?;
        let mut after: HashMap<SubscriberId, DeliveryStatus> = HashMap::new();
        let mut changes = Vec::new();
        for sub in subscribers {
            let Some(item) = cur.get(sub) else { continue };
            let (st, att, lease_until) = (item.status()?, item.att, item.lease);
            after.insert(*sub, st);
            // Nobody is sending it: queued, or its lease ran out.
            if matches!(
                Claim::decide(st, lease_until, att, None, now),
                Claim::Claimed { .. }
            ) {
                changes.push(Change {
                    sub: *sub,
                    from: st,
                    attempts: Some(att),
                    to,
                    lease_until: 0,
                    bump_attempts: false,
                    error: Some(reason.to_string()),
                    provider: None,
                    language: Some(item.language()?),
                    timed: None,
                });
            }
        }
        let tried: Vec<SubscriberId> = changes.iter().map(|c| c.sub).collect();
        let committed = self.apply_changes(alert, channel, changes, now).await?;
        for sub in &committed {
            after.insert(*sub, to);
        }
        // A change that lost a race: the delivery moved meanwhile; say where to.
        let moved: Vec<SubscriberId> = tried
            .into_iter()
            .filter(|s| !committed.contains(s))
            .collect();
        if !moved.is_empty() {
            for (sub, item) in self.current(alert, channel, &moved).await? {
                after.insert(sub, item.status()?);
            }
        }
        Ok(subscribers.iter().map(|s| after.get(s).copied()).collect())
    }

    async fn counts(&self, alert: AlertId) -> Result<AlertCounts, StoreError> {
        self.read_counts(alert, true).await
    }

    /// Without the reach counters: 16 items fewer a read.
    async fn channel_counts(&self, alert: AlertId) -> Result<AlertCounts, StoreError> {
        self.read_counts(alert, false).await
    }

    async fn breakdown(&self, alert: AlertId) -> Result<Breakdown, StoreError> {
        let sums = self.counter_sums(alert, false).await?;
        let mut out = Breakdown::new();
        let finals = [
            DeliveryStatus::Sent,
            DeliveryStatus::Delivered,
            DeliveryStatus::Failed,
            DeliveryStatus::Cancelled,
        ];
        for ((name, col), v) in sums {
            let Some(channel) = name.strip_prefix("C#").and_then(Channel::from_code) else {
                continue;
            };
            let parts: Vec<&str> = col.split('.').collect();
            match parts.as_slice() {
                [col, code] => {
                    let Some(language) = Language::from_code(code) else {
                        continue;
                    };
                    let entry = out.entry((channel, language)).or_default();
                    if *col == "p" {
                        entry.planned += v;
                    } else if let Some(st) = finals.into_iter().find(|s| column(*s) == *col) {
                        *entry.finals.entry(st).or_default() += v;
                    }
                }
                [leg, code, b] => {
                    let (Some(leg), Some(language), Ok(b)) = (
                        leg.strip_prefix('h')
                            .and_then(|l| l.parse().ok())
                            .and_then(Leg::from_index),
                        Language::from_code(code),
                        b.parse::<usize>(),
                    ) else {
                        continue;
                    };
                    if b < bealert_core::latency::BUCKETS {
                        out.entry((channel, language)).or_default().histogram(leg)[b] += v;
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Through the deliveries table's index `by-provider-id` (key `pid`,
    /// with `prov`): eventually consistent, a second or so behind the
    /// write that recorded the id.
    async fn find_by_provider_id(
        &self,
        provider: &str,
        id: &str,
    ) -> Result<Option<DeliveryRef>, StoreError> {
        self.usage.request();
        let resp = self
            .client
            .query()
            .table_name(&self.tables.deliveries)
            .index_name(PROVIDER_ID_INDEX)
            .key_condition_expression("pid = :pid")
            .expression_attribute_values(":pid", s(id.to_string()))
            .send()
            .await
            .map_err(sdk_err)?;
        let items = resp.items.unwrap_or_default();
        self.usage.read(items.len());
        for item in &items {
            if opt_s(item, "prov").as_deref() != Some(provider) {
                continue;
            }
            // pk: D#<alert>#<channel>#<bucket>; sk: the subscriber.
            let pk = get_s(item, "pk")?;
            let mut parts = pk.split('#').skip(1);
            let (Some(alert), Some(channel)) = (
                parts.next().and_then(|a| a.parse().ok()),
                parts.next().and_then(Channel::from_code),
            ) else {
                continue;
            };
            return Ok(Some(DeliveryRef {
                alert,
                channel,
                subscriber: get_s(item, "sk")?.parse().map_err(StoreError::Permanent)?,
            }));
        }
        Ok(None)
    }

    async fn apply_receipt(
        &self,
        d: DeliveryRef,
        change: &ReceiptChange,
        now: i64,
    ) -> Result<ReceiptApplied, StoreError> {
        // Read, decide, write on the condition that the status is still as
        // read; a lost race reads again.
        for _ in 0..3 {
            let cur = self.current(d.alert, d.channel, &[d.subscriber]).await?;
            let Some(item) = cur.get(&d.subscriber) else {
                return Ok(ReceiptApplied::Unknown);
            };
            let provider = item.prov.clone();
            let unpinned = provider.is_none();
            let from = item.status()?;
            let contact = item.to.clone();
            let to = match change.decide(from, provider, contact.clone()) {
                Ok(to) => to,
                Err(found) => return Ok(found),
            };
            let c = Change {
                sub: d.subscriber,
                from,
                attempts: None,
                to,
                lease_until: 0,
                bump_attempts: false,
                error: match to {
                    DeliveryStatus::Failed => change.reason.clone(),
                    _ => item.err.clone(),
                },
                provider: unpinned.then(|| bealert_app::ports::Handover {
                    provider: change.provider.clone(),
                    id: None,
                }),
                language: Some(item.language()?),
                timed: rules::latency(from, to, Some(change.released_at), change.at),
            };
            let won = self.apply_changes(d.alert, d.channel, vec![c], now).await?;
            if !won.is_empty() {
                return Ok(ReceiptApplied::Moved { from, to, contact });
            }
        }
        Err(StoreError::Transient(format!(
            "delivery {}:{}:{} kept changing while a receipt was applied",
            d.alert, d.channel, d.subscriber
        )))
    }

    async fn list_deliveries(
        &self,
        alert: AlertId,
        after: Option<(Channel, SubscriberId)>,
        limit: usize,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let start = after.map(|(c, s)| (c, bucket(s)));
        let mut out = Vec::new();
        for channel in Channel::ALL {
            for b in 0..DELIVERY_BUCKETS {
                if start.is_some_and(|st| (channel, b) < st) {
                    continue;
                }
                let mut exclusive = match after {
                    Some((c, s)) if (c, bucket(s)) == (channel, b) => {
                        Some(delivery_key(alert, channel, s))
                    }
                    _ => None,
                };
                loop {
                    let remaining = limit - out.len();
                    if remaining == 0 {
                        return Ok(out);
                    }
                    self.usage.request();
                    let resp = self
                        .client
                        .query()
                        .table_name(&self.tables.deliveries)
                        .key_condition_expression("pk = :pk")
                        .expression_attribute_values(":pk", s(delivery_pk(alert, channel, b)))
                        .set_exclusive_start_key(exclusive.take())
                        .limit(remaining as i32)
                        .consistent_read(true)
                        .send()
                        .await
                        .map_err(sdk_err)?;
                    let items = resp.items.unwrap_or_default();
                    self.usage.read(items.len());
                    for item in items {
                        let subscriber_id =
                            get_s(&item, "sk")?.parse().map_err(StoreError::Permanent)?;
                        let row: DeliveryItem = row_from(item)?;
                        out.push(DeliveryRow {
                            subscriber_id,
                            external_id: row.ext.clone(),
                            channel,
                            language: row.language()?,
                            status: row.status()?,
                            to: row.to,
                            error: row.err,
                            updated_at: row.upd,
                            provider: row.prov,
                            provider_id: row.pid,
                        });
                    }
                    match resp.last_evaluated_key {
                        Some(k) if !k.is_empty() => exclusive = Some(k),
                        _ => break,
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod row_tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue as A;

    fn attrs(item: &Item) -> Vec<(&str, &A)> {
        let mut v: Vec<(&str, &A)> = item.iter().map(|(k, v)| (k.as_str(), v)).collect();
        v.sort_by_key(|(k, _)| *k);
        v
    }

    /// A planned delivery and a recipient's owner keep exactly their
    /// attributes and types; what update expressions set later (`prov`,
    /// `pid`, `err`) and an external id not given are absent, not NULL.
    #[test]
    fn rows_store_the_same_attributes_as_before() -> Result<(), StoreError> {
        let (sv, nv) = (|v: &str| A::S(v.into()), |v: &str| A::N(v.into()));
        let planned = DeliveryItem {
            st: DeliveryStatus::Queued.index(),
            to: "+32470000000".into(),
            lang: 2,
            att: 0,
            lease: 0,
            upd: 1_700_000_000_000,
            expires_at: 1_707_776_000,
            ext: None,
            prov: None,
            pid: None,
            err: None,
        };
        let item = item_from(key("D#a#sms#07", "s1"), &planned)?;
        let st = nv(&DeliveryStatus::Queued.index().to_string());
        let (to, lang, zero) = (sv("+32470000000"), nv("2"), nv("0"));
        let (upd, ttl, pk, sk) = (
            nv("1700000000000"),
            nv("1707776000"),
            sv("D#a#sms#07"),
            sv("s1"),
        );
        assert_eq!(
            attrs(&item),
            [
                ("att", &zero),
                ("expires_at", &ttl),
                ("lang", &lang),
                ("lease", &zero),
                ("pk", &pk),
                ("sk", &sk),
                ("st", &st),
                ("to", &to),
                ("upd", &upd),
            ]
        );
        let with_ext = item_from(
            key("D#a#sms#07", "s1"),
            &DeliveryItem {
                ext: Some("x-1".into()),
                ..planned
            },
        )?;
        assert_eq!(with_ext["ext"], sv("x-1"));
        let mut recorded = with_ext;
        recorded.insert("prov".into(), sv("sns"));
        recorded.insert("pid".into(), sv("m-1"));
        recorded.insert("err".into(), sv("refused"));
        let back: DeliveryItem = row_from(recorded)?;
        assert_eq!(
            (back.status()?, back.language()?, back.upd),
            (DeliveryStatus::Queued, Language::De, 1_700_000_000_000)
        );
        assert_eq!(
            (
                back.prov.as_deref(),
                back.pid.as_deref(),
                back.err.as_deref()
            ),
            (Some("sns"), Some("m-1"), Some("refused"))
        );

        let owner = item_from(
            key("R#a#07", "s1"),
            &OwnerItem {
                shard: 3,
                expires_at: 1_707_776_000,
            },
        )?;
        let (opk, osk, shard) = (sv("R#a#07"), sv("s1"), nv("3"));
        assert_eq!(
            attrs(&owner),
            [
                ("expires_at", &ttl),
                ("pk", &opk),
                ("shard", &shard),
                ("sk", &osk),
            ]
        );
        Ok(())
    }
}

#[cfg(test)]
mod count_tests {
    use super::*;

    fn change(n: u64, from: DeliveryStatus, to: DeliveryStatus) -> Change {
        Change {
            sub: SubscriberId::from_random(n),
            from,
            attempts: None,
            to,
            lease_until: 0,
            bump_attempts: false,
            error: None,
            provider: None,
            language: Some(Language::Nl),
            timed: None,
        }
    }

    #[test]
    fn claims_move_no_count_and_take_the_single_write_path() {
        use DeliveryStatus::*;
        assert!(moves_no_count(
            Channel::Sms,
            &[change(1, Queued, Sending), change(2, Queued, Sending)]
        ));
        assert!(!moves_no_count(Channel::Sms, &[change(1, Sending, Sent)]));
    }

    #[test]
    fn moves_that_cancel_out_across_changes_still_count() {
        use DeliveryStatus::*;
        // Summed, these two leave every counter as it was; each moves some.
        assert!(!moves_no_count(
            Channel::Sms,
            &[change(1, Sent, Failed), change(2, Failed, Sent)]
        ));
    }
}
