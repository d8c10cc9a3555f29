//! Delivery items: planned once per (alert, channel, subscriber), claimed
//! under a lease with conditional writes, counted in bucketed counter items
//! in the same transactions.
//!
//! Each step first tries many deliveries per transaction (the common case:
//! nothing raced); if a condition fails it falls back to one delivery per
//! transaction, re-reading what changed.

use super::alerts::alert_pk;
use super::{
    DynamoStore, Item, Tx, built, get_s, item_from, key, n, opt_n, opt_s, row_from, s, sdk_err,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
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

    /// Counter changes ([`rules`]) of one delivery, in its bucket's counter item.
    fn counted(
        &mut self,
        channel: Channel,
        sub: SubscriberId,
        changes: impl IntoIterator<Item = (Counter, i64)>,
    ) {
        let sk = counter_sk(channel, bucket(sub));
        for (counter, d) in changes {
            self.add(sk.clone(), counter_column(counter), d);
        }
    }

    /// One delivery planned.
    fn planned(&mut self, channel: Channel, sub: SubscriberId, language: Language) {
        self.counted(channel, sub, rules::planned(language));
    }

    /// One change's counts: its move, and its latency.
    fn changed(&mut self, channel: Channel, c: &Change) {
        self.counted(channel, c.sub, rules::moved(c.from, c.to, c.language));
        if let (Some(l), Some((leg, ms))) = (c.language, c.timed) {
            self.counted(channel, c.sub, [(Counter::latency(l, leg, ms), 1)]);
        }
    }

    fn keys_if_added(&self, sks: &[String]) -> usize {
        sks.iter().filter(|k| !self.0.contains_key(*k)).count()
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
        Ok(TransactWriteItem::builder()
            .update(built(u.update_expression(set).build())?)
            .build())
    }

    /// Applies changes in as few transactions as possible; returns the
    /// subscribers whose change committed.
    async fn apply_changes(
        &self,
        alert: AlertId,
        channel: Channel,
        changes: Vec<Change>,
        now: i64,
    ) -> Result<Vec<SubscriberId>, StoreError> {
        let mut committed = Vec::new();
        let mut chunk: Vec<Change> = Vec::new();
        let mut deltas = Deltas::default();
        let flush = |chunk: Vec<Change>, deltas: Deltas| async move {
            let mut actions = Vec::with_capacity(chunk.len() + deltas.0.len());
            for c in &chunk {
                actions.push(self.change_action(alert, channel, c, now)?);
            }
            actions.extend(deltas.actions(self, alert)?);
            match self.transact(actions).await? {
                Tx::Committed => Ok::<_, StoreError>((
                    chunk.iter().map(|c| c.sub).collect::<Vec<_>>(),
                    Vec::new(),
                )),
                Tx::Cancelled(_) => Ok((Vec::new(), chunk)),
            }
        };
        let mut retry_singly = Vec::new();
        for c in changes {
            let sk = counter_sk(channel, bucket(c.sub));
            if chunk.len() + 1 + deltas.0.len() + deltas.keys_if_added(std::slice::from_ref(&sk))
                > MAX_ACTIONS
            {
                let (ok, failed) =
                    flush(std::mem::take(&mut chunk), std::mem::take(&mut deltas)).await?;
                committed.extend(ok);
                retry_singly.extend(failed);
            }
            deltas.changed(channel, &c);
            chunk.push(c);
        }
        if !chunk.is_empty() {
            let (ok, failed) = flush(chunk, deltas).await?;
            committed.extend(ok);
            retry_singly.extend(failed);
        }
        for c in retry_singly {
            let mut d = Deltas::default();
            d.changed(channel, &c);
            let (ok, _) = flush(vec![c], d).await?;
            committed.extend(ok);
        }
        Ok(committed)
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

    fn plan_actions(
        &self,
        alert: AlertId,
        shard: u32,
        r: &RecipientPlan,
        now: i64,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let expires_at = self.expires_at(now);
        let owner = item_from(
            recipient_key(alert, r.subscriber_id),
            &OwnerItem { shard, expires_at },
        )?;
        let mut actions = vec![
            TransactWriteItem::builder()
                .put(built(
                    Put::builder()
                        .table_name(&self.tables.deliveries)
                        .set_item(Some(owner))
                        .condition_expression("attribute_not_exists(pk)")
                        .build(),
                )?)
                .build(),
        ];
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
            actions.push(
                TransactWriteItem::builder()
                    .put(built(
                        Put::builder()
                            .table_name(&self.tables.deliveries)
                            .set_item(Some(item))
                            .condition_expression("attribute_not_exists(pk)")
                            .build(),
                    )?)
                    .build(),
            );
        }
        Ok(actions)
    }

    fn plan_deltas(r: &RecipientPlan, deltas: &mut Deltas) {
        deltas.add(format!("REACH#{:02}", bucket(r.subscriber_id)), "n", 1);
        for d in &r.deliveries {
            deltas.planned(d.channel, d.subscriber_id, d.language);
        }
    }

    /// A recipient whose planning transaction was refused: pending
    /// deliveries if this shard owns it (an earlier run), none otherwise.
    async fn replan_one(
        &self,
        alert: AlertId,
        shard: u32,
        r: &RecipientPlan,
        now: i64,
    ) -> Result<Vec<PlannedDelivery>, StoreError> {
        let mut deltas = Deltas::default();
        Self::plan_deltas(r, &mut deltas);
        let mut actions = self.plan_actions(alert, shard, r, now)?;
        actions.extend(deltas.actions(self, alert)?);
        if let Tx::Committed = self.transact(actions).await? {
            return Ok(r.deliveries.clone());
        }
        let owner = self
            .batch_get(
                &self.tables.deliveries,
                vec![recipient_key(alert, r.subscriber_id)],
            )
            .await?;
        let owner = owner
            .into_iter()
            .next()
            .map(|o| row_from::<OwnerItem>(o).map(|o| o.shard))
            .transpose()?;
        if !owner.is_some_and(|owner| rules::plans_recipient(shard, owner)) {
            return Ok(Vec::new());
        }
        let mut pending = Vec::new();
        let mut missing = Vec::new();
        for d in &r.deliveries {
            let cur = self.current(alert, d.channel, &[d.subscriber_id]).await?;
            match cur.get(&d.subscriber_id) {
                Some(item) => {
                    if rules::still_to_send(Some(item.status()?)) {
                        pending.push(d.clone());
                    }
                }
                None => missing.push(d.clone()),
            }
        }
        // Deliveries this shard plans for its recipient on a later call
        // (another channel): added beside the ones it has, and to send.
        if !missing.is_empty() {
            let more = RecipientPlan {
                deliveries: missing,
                ..r.clone()
            };
            let mut deltas = Deltas::default();
            for d in &more.deliveries {
                deltas.planned(d.channel, d.subscriber_id, d.language);
            }
            let mut actions = self.plan_actions(alert, shard, &more, now)?;
            actions.remove(0); // the owner item exists
            actions.extend(deltas.actions(self, alert)?);
            if let Tx::Committed = self.transact(actions).await? {
                pending.extend(more.deliveries);
            } else {
                // A concurrent run of this shard added them: take what is open.
                for d in &more.deliveries {
                    let cur = self.current(alert, d.channel, &[d.subscriber_id]).await?;
                    if let Some(item) = cur.get(&d.subscriber_id)
                        && rules::still_to_send(Some(item.status()?))
                    {
                        pending.push(d.clone());
                    }
                }
            }
        }
        Ok(pending)
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
        let mut i = 0;
        while i < recipients.len() {
            // Greedily fill one transaction.
            let mut deltas = Deltas::default();
            let mut actions = Vec::new();
            let mut j = i;
            while j < recipients.len() {
                let r = &recipients[j];
                let mut trial = Deltas(deltas.0.clone());
                Self::plan_deltas(r, &mut trial);
                if !actions.is_empty()
                    && actions.len() + 1 + r.deliveries.len() + trial.0.len() > MAX_ACTIONS
                {
                    break;
                }
                actions.extend(self.plan_actions(alert, shard, r, now)?);
                deltas = trial;
                j += 1;
            }
            actions.extend(deltas.actions(self, alert)?);
            match self.transact(actions).await? {
                Tx::Committed => {
                    for r in &recipients[i..j] {
                        pending.extend(r.deliveries.iter().cloned());
                    }
                }
                Tx::Cancelled(_) => {
                    for r in &recipients[i..j] {
                        pending.extend(self.replan_one(alert, shard, r, now).await?);
                    }
                }
            }
            i = j;
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
        // Two rounds: a change that lost a race is decided again from a fresh read.
        for round in 0..2 {
            let cur = self.current(alert, channel, &todo).await?;
            let mut changes = Vec::new();
            let mut attempts = HashMap::new();
            for sub in &todo {
                let Some(item) = cur.get(sub) else {
                    answers.insert(*sub, Claim::Unknown);
                    continue;
                };
                let (st, att) = (item.status()?, item.att);
                match Claim::decide(st, item.lease, att, item.prov.clone(), now) {
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
            if round == 1 {
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
        let items = self.counter_items(alert, true).await?;
        let prefix = format!("{}#", alert_pk(alert));
        let mut out = AlertCounts::default();
        for item in &items {
            let name = get_s(item, "pk")?.strip_prefix(&prefix).unwrap_or("");
            if name.starts_with("REACH#") {
                out.recipients += opt_n::<i64>(item, "n")?.unwrap_or(0).max(0) as u64;
            } else if let Some(rest) = name.strip_prefix("C#") {
                let code = rest.split('#').next().unwrap_or("");
                let channel = Channel::from_code(code)
                    .ok_or_else(|| StoreError::Permanent(format!("bad counter {name}")))?;
                let c = out
                    .channels
                    .entry(channel)
                    .or_insert_with(ChannelCounts::default);
                let get = |col| opt_n::<i64>(item, col).map(|v| v.unwrap_or(0).max(0) as u64);
                c.queued += get("q")?;
                c.sending += get("sg")?;
                c.sent += get("ok")?;
                c.failed += get("f")?;
                c.cancelled += get("cx")?;
                c.delivered += get("dl")?;
            }
        }
        Ok(out)
    }

    async fn breakdown(&self, alert: AlertId) -> Result<Breakdown, StoreError> {
        let items = self.counter_items(alert, false).await?;
        let prefix = format!("{}#C#", alert_pk(alert));
        let mut out = Breakdown::new();
        let finals = [
            DeliveryStatus::Sent,
            DeliveryStatus::Delivered,
            DeliveryStatus::Failed,
            DeliveryStatus::Cancelled,
        ];
        for item in &items {
            let Some(rest) = get_s(item, "pk")?.strip_prefix(&prefix) else {
                continue;
            };
            let Some(channel) = Channel::from_code(rest.split('#').next().unwrap_or("")) else {
                continue;
            };
            for (name, value) in item {
                let Some(v) = value.as_n().ok().and_then(|v| v.parse::<i64>().ok()) else {
                    continue;
                };
                let v = v.max(0) as u64;
                let parts: Vec<&str> = name.split('.').collect();
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
