//! [`DeliveryStore`] on SQLite, and the store's lease recovery and
//! delivery retention. One `deliveries` row per (alert, channel,
//! subscriber): its unique key is the exactly-once claim, and sending is
//! fenced by the lease and the attempt number. Rows sit in the order they
//! were planned; a delivery is found through the key index
//! (alert, channel, bucket, subscriber), then written by its rowid. Every write that moves a
//! delivery adds what [`rules`] says the move does to the live counts
//! (`alert_counters`, `alert_language_counts`, `alert_latency`) in the same
//! transaction, so the counts never disagree with the rows.

use super::{SqliteStore, bad_data, language, now_ms, subscriber_id};
use async_trait::async_trait;
use bealert_app::ports::{
    AlertCounts, Breakdown, ChannelCounts, Claim, DeliveryRef, DeliveryRow, DeliveryStore, Leg,
    ReceiptApplied, ReceiptChange, RecipientPlan, Recorded, StoreError,
};
use bealert_app::rules::{self, Counter};
use bealert_core::delivery::{DeliveryStatus, PlannedDelivery, bucket};
use bealert_core::{AlertId, Channel, SubscriberId};
use rusqlite::{OptionalExtension, params};
use std::collections::BTreeMap;
use std::time::Duration;

impl SqliteStore {
    /// Deletes the deliveries (recipients' contact data) of alerts created
    /// before `cutoff_ms`; counts and alerts stay. Returns rows deleted.
    pub async fn expire_deliveries(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        self.db
            .write(move |tx| {
                let old: Vec<String> = tx
                    .prepare_cached("SELECT id FROM alerts WHERE created_at < ?1")?
                    .query_map([cutoff_ms], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                let mut deleted = 0u64;
                let mut del = tx.prepare_cached("DELETE FROM deliveries WHERE alert_id = ?1")?;
                let mut owners =
                    tx.prepare_cached("DELETE FROM alert_recipients WHERE alert_id = ?1")?;
                for id in old {
                    deleted += del.execute([&id])? as u64;
                    owners.execute([&id])?;
                }
                Ok(deleted)
            })
            .await
    }

    /// Frees every delivery lease (crash recovery; see `Embedded::recover`).
    pub async fn release_leases(&self) -> Result<u64, StoreError> {
        self.db
            .write(|tx| {
                tx.execute(
                    "UPDATE deliveries SET lease_until = 0 WHERE status = ?1 AND lease_until > 0",
                    [DeliveryStatus::Sending.index()],
                )
                .map(|n| n as u64)
            })
            .await
    }
}

fn channel(v: u8) -> rusqlite::Result<Channel> {
    Channel::from_index(v).ok_or_else(|| bad_data(format!("bad channel {v}")))
}

/// Column names of `alert_counters`, by delivery status.
fn counter_column(s: DeliveryStatus) -> &'static str {
    match s {
        DeliveryStatus::Queued => "queued",
        DeliveryStatus::Sending => "sending",
        DeliveryStatus::Sent => "sent",
        DeliveryStatus::Failed => "failed",
        DeliveryStatus::Cancelled => "cancelled",
        DeliveryStatus::Delivered => "delivered",
    }
}

/// `alert_language_counts.status` of "planned".
const PLANNED: u8 = 255;

/// What one write does to an alert channel's counts: the sum of what
/// [`rules`] says each change does.
#[derive(Default)]
struct Tally(BTreeMap<Counter, i64>);

impl Tally {
    fn add(&mut self, changes: impl IntoIterator<Item = (Counter, i64)>) {
        for (counter, d) in changes {
            *self.0.entry(counter).or_default() += d;
        }
    }

    fn is_empty(&self) -> bool {
        self.0.values().all(|d| *d == 0)
    }
}

/// Adds a tally to one channel's counters: statuses in `alert_counters`,
/// planned and final statuses per language in `alert_language_counts`,
/// histogram buckets in `alert_latency`.
fn bump(
    tx: &rusqlite::Transaction<'_>,
    alert: &str,
    channel: Channel,
    tally: &Tally,
) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT OR IGNORE INTO alert_counters (alert_id, channel) VALUES (?1, ?2)")?
        .execute(params![alert, channel.index()])?;
    let mut by_language = tx.prepare_cached(
        "INSERT INTO alert_language_counts (alert_id, channel, language, status, n) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT DO UPDATE SET n = n + excluded.n",
    )?;
    let mut latency = tx.prepare_cached(
        "INSERT INTO alert_latency (alert_id, channel, language, leg, bucket, n) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT DO UPDATE SET n = n + excluded.n",
    )?;
    for (counter, d) in tally.0.iter().filter(|(_, d)| **d != 0) {
        match *counter {
            Counter::Status(status) => {
                let col = counter_column(status);
                tx.prepare_cached(&format!(
                    "UPDATE alert_counters SET {col} = {col} + ?3 WHERE alert_id = ?1 AND channel = ?2"
                ))?
                .execute(params![alert, channel.index(), d])?;
            }
            Counter::Planned(language) => {
                by_language.execute(params![
                    alert,
                    channel.index(),
                    language.index(),
                    PLANNED,
                    d
                ])?;
            }
            Counter::Final(language, status) => {
                by_language.execute(params![
                    alert,
                    channel.index(),
                    language.index(),
                    status.index(),
                    d
                ])?;
            }
            Counter::Latency(language, leg, b) => {
                latency.execute(params![
                    alert,
                    channel.index(),
                    language.index(),
                    leg.index(),
                    b as i64,
                    d
                ])?;
            }
        }
    }
    Ok(())
}

fn status_of(v: u8) -> rusqlite::Result<DeliveryStatus> {
    DeliveryStatus::from_index(v).ok_or_else(|| bad_data(format!("bad status {v}")))
}

#[async_trait]
impl DeliveryStore for SqliteStore {
    async fn plan_deliveries(
        &self,
        alert: AlertId,
        shard: u32,
        recipients: &[RecipientPlan],
    ) -> Result<Vec<PlannedDelivery>, StoreError> {
        let mut recipients = recipients.to_vec();
        // In the key index's order: each index entry lands beside the
        // last one's page instead of at a random place (subscriber ids
        // are hashes); the rows themselves are appended in this order.
        // The batch as a whole stays the caller's mix.
        recipients.sort_unstable_by_key(|r| (bucket(r.subscriber_id), r.subscriber_id));
        self.db
            .write(move |tx| {
                let key = alert.to_string();
                let now = now_ms();
                let mut claim_recipient = tx.prepare_cached(
                    "INSERT OR IGNORE INTO alert_recipients (alert_id, subscriber_id, shard) VALUES (?1, ?2, ?3)",
                )?;
                let mut owner = tx.prepare_cached(
                    "SELECT shard FROM alert_recipients WHERE alert_id = ?1 AND subscriber_id = ?2",
                )?;
                let mut insert = tx.prepare_cached(
                    "INSERT OR IGNORE INTO deliveries
                     (alert_id, channel, subscriber_id, bucket, external_id, recipient, language, status, updated_at)
                     VALUES (?1, ?2, ?3, ?9, ?4, ?5, ?6, ?7, ?8)",
                )?;
                let mut status = tx.prepare_cached(
                    "SELECT status FROM deliveries WHERE alert_id = ?1 AND channel = ?2 AND bucket = ?4 AND subscriber_id = ?3",
                )?;
                let mut new_recipients = 0i64;
                let mut queued: BTreeMap<Channel, Tally> = BTreeMap::new();
                let mut pending = Vec::new();
                for r in recipients {
                    let sid = r.subscriber_id.as_i64();
                    let recorded = if claim_recipient.execute(params![key, sid, shard])? == 1 {
                        new_recipients += 1;
                        shard
                    } else {
                        owner.query_row(params![key, sid], |row| row.get::<_, u32>(0))?
                    };
                    if !rules::plans_recipient(shard, recorded) {
                        continue;
                    }
                    for d in r.deliveries {
                        let added = insert.execute(params![
                            key,
                            d.channel.index(),
                            sid,
                            r.external_id,
                            d.to,
                            d.language.index(),
                            DeliveryStatus::Queued.index(),
                            now,
                            bucket(d.subscriber_id)
                        ])?;
                        let stored = if added == 1 {
                            queued.entry(d.channel).or_default().add(rules::planned(d.language));
                            None
                        } else {
                            Some(status_of(
                                status.query_row(params![key, d.channel.index(), sid, bucket(d.subscriber_id)], |row| row.get(0))?,
                            )?)
                        };
                        if rules::still_to_send(stored) {
                            pending.push(d);
                        }
                    }
                }
                for (c, tally) in queued {
                    bump(tx, &key, c, &tally)?;
                }
                if new_recipients > 0 {
                    tx.execute(
                        "INSERT INTO alert_reach (alert_id, recipients) VALUES (?1, ?2)
                         ON CONFLICT (alert_id) DO UPDATE SET recipients = recipients + excluded.recipients",
                        params![key, new_recipients],
                    )?;
                }
                Ok(pending)
            })
            .await
    }

    async fn claim(
        &self,
        alert: AlertId,
        channel: Channel,
        subscribers: &[SubscriberId],
        now: i64,
        lease: Duration,
    ) -> Result<Vec<Claim>, StoreError> {
        let subscribers = subscribers.to_vec();
        let until = now + lease.as_millis() as i64;
        self.db
            .write(move |tx| {
                let key = alert.to_string();
                let mut get = tx.prepare_cached(
                    "SELECT status, lease_until, attempts, provider, rowid FROM deliveries
                     WHERE alert_id = ?1 AND channel = ?2 AND bucket = ?4 AND subscriber_id = ?3",
                )?;
                let mut take = tx.prepare_cached(
                    "UPDATE deliveries SET status = ?2, lease_until = ?3, attempts = attempts + 1, updated_at = ?4
                     WHERE rowid = ?1",
                )?;
                let mut tally = Tally::default();
                let mut out = Vec::with_capacity(subscribers.len());
                for s in subscribers {
                    let row = get
                        .query_row(params![key, channel.index(), s.as_i64(), bucket(s)], |r| {
                            Ok((
                                r.get::<_, u8>(0)?,
                                r.get::<_, i64>(1)?,
                                r.get::<_, u32>(2)?,
                                r.get::<_, Option<String>>(3)?,
                                r.get::<_, i64>(4)?,
                            ))
                        })
                        .optional()?;
                    let claim = match row {
                        None => Claim::Unknown,
                        Some((st, lease_until, attempts, provider, rowid)) => {
                            let was = status_of(st)?;
                            let claim = Claim::decide(was, lease_until, attempts, provider, now);
                            if let Claim::Claimed { .. } = claim {
                                take.execute(params![
                                    rowid,
                                    DeliveryStatus::Sending.index(),
                                    until,
                                    now
                                ])?;
                                tally.add(rules::moved(was, DeliveryStatus::Sending, None));
                            }
                            claim
                        }
                    };
                    out.push(claim);
                }
                if !tally.is_empty() {
                    bump(tx, &key, channel, &tally)?;
                }
                Ok(out)
            })
            .await
    }

    async fn record(
        &self,
        alert: AlertId,
        channel: Channel,
        outcomes: &[Recorded],
        now: i64,
    ) -> Result<Vec<bool>, StoreError> {
        let outcomes = outcomes.to_vec();
        self.db
            .write(move |tx| {
                let key = alert.to_string();
                // Fenced: only the sender holding the current attempt records.
                let mut set = tx.prepare_cached(
                    "UPDATE deliveries SET status = ?4, lease_until = 0, error = ?5, updated_at = ?6,
                         provider = COALESCE(provider, ?9), provider_id = COALESCE(?10, provider_id)
                     WHERE alert_id = ?1 AND channel = ?2 AND bucket = ?11 AND subscriber_id = ?3
                       AND status = ?7 AND attempts = ?8",
                )?;
                let mut tally = Tally::default();
                let mut applied = Vec::with_capacity(outcomes.len());
                for r in outcomes {
                    let (to, error) = r.outcome.status();
                    let (provider, provider_id) = r
                        .provider
                        .map_or((None, None), |h| (Some(h.provider), h.id));
                    let n = set.execute(params![
                        key,
                        channel.index(),
                        r.subscriber.as_i64(),
                        to.index(),
                        error,
                        now,
                        DeliveryStatus::Sending.index(),
                        r.attempt,
                        provider,
                        provider_id,
                        bucket(r.subscriber)
                    ])?;
                    if n == 1 {
                        tally.add(rules::moved(DeliveryStatus::Sending, to, Some(r.language)));
                        if let Some((leg, ms)) =
                            rules::latency(DeliveryStatus::Sending, to, r.released_at, now)
                        {
                            tally.add([(Counter::latency(r.language, leg, ms), 1)]);
                        }
                    }
                    applied.push(n == 1);
                }
                bump(tx, &key, channel, &tally)?;
                Ok(applied)
            })
            .await
    }

    async fn forget_subscriber(
        &self,
        subscriber: SubscriberId,
        reason: &str,
        now: i64,
    ) -> Result<u64, StoreError> {
        let id = subscriber.as_i64();
        let pairs: Vec<(String, u8)> = self
            .db
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT alert_id, channel FROM deliveries WHERE subscriber_id = ?1",
                )?
                .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
            })
            .await?;
        for (alert, channel) in &pairs {
            let (Ok(alert), Some(channel)) =
                (alert.parse::<AlertId>(), Channel::from_index(*channel))
            else {
                continue;
            };
            self.stop_unsent(
                alert,
                channel,
                &[subscriber],
                DeliveryStatus::Failed,
                reason,
                now,
            )
            .await?;
        }
        self.db
            .write(move |tx| {
                Ok(tx.execute(
                    "UPDATE deliveries SET recipient = '', external_id = NULL WHERE subscriber_id = ?1",
                    [id],
                )? as u64)
            })
            .await
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
        let subscribers = subscribers.to_vec();
        let reason = reason.to_string();
        self.db
            .write(move |tx| {
                let key = alert.to_string();
                let mut get = tx.prepare_cached(
                    "SELECT status, lease_until, language, rowid FROM deliveries
                     WHERE alert_id = ?1 AND channel = ?2 AND bucket = ?4 AND subscriber_id = ?3",
                )?;
                let mut set = tx.prepare_cached(
                    "UPDATE deliveries SET status = ?2, lease_until = 0, error = ?3, updated_at = ?4
                     WHERE rowid = ?1",
                )?;
                let mut tally = Tally::default();
                let mut after = Vec::with_capacity(subscribers.len());
                for s in subscribers {
                    let Some((st, lease_until, lang, rowid)) = get
                        .query_row(params![key, channel.index(), s.as_i64(), bucket(s)], |r| {
                            Ok((
                                r.get::<_, u8>(0)?,
                                r.get::<_, i64>(1)?,
                                r.get::<_, u8>(2)?,
                                r.get::<_, i64>(3)?,
                            ))
                        })
                        .optional()?
                    else {
                        after.push(None);
                        continue;
                    };
                    let was = status_of(st)?;
                    // Nobody is sending it: queued, or its lease ran out.
                    if matches!(
                        Claim::decide(was, lease_until, 0, None, now),
                        Claim::Claimed { .. }
                    ) {
                        set.execute(params![rowid, to.index(), reason, now])?;
                        tally.add(rules::moved(was, to, Some(language(lang)?)));
                        after.push(Some(to));
                    } else {
                        after.push(Some(was));
                    }
                }
                bump(tx, &key, channel, &tally)?;
                Ok(after)
            })
            .await
    }

    async fn counts(&self, alert: AlertId) -> Result<AlertCounts, StoreError> {
        self.db
            .read(move |conn| {
                let key = alert.to_string();
                let recipients = conn
                    .query_row("SELECT recipients FROM alert_reach WHERE alert_id = ?1", [&key], |r| {
                        r.get::<_, i64>(0)
                    })
                    .optional()?
                    .unwrap_or(0) as u64;
                let mut stmt = conn.prepare_cached(
                    "SELECT channel, queued, sending, sent, failed, cancelled, delivered FROM alert_counters WHERE alert_id = ?1",
                )?;
                let mut channels = BTreeMap::new();
                let mut rows = stmt.query([&key])?;
                while let Some(r) = rows.next()? {
                    let n = |i: usize| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
                    // `sending` holds what was claimed before claims
                    // stopped counting (rules::counted_as): queued too.
                    let queued = r.get::<_, i64>(1)? + r.get::<_, i64>(2)?;
                    channels.insert(
                        channel(r.get(0)?)?,
                        ChannelCounts {
                            queued: queued.max(0) as u64,
                            sent: n(3)?,
                            failed: n(4)?,
                            cancelled: n(5)?,
                            delivered: n(6)?,
                        },
                    );
                }
                Ok(AlertCounts { recipients, channels })
            })
            .await
    }

    async fn breakdown(&self, alert: AlertId) -> Result<Breakdown, StoreError> {
        self.db
            .read(move |conn| {
                let key = alert.to_string();
                let mut out = Breakdown::new();
                let mut counts = conn.prepare_cached(
                    "SELECT channel, language, status, n FROM alert_language_counts WHERE alert_id = ?1",
                )?;
                let mut rows = counts.query([&key])?;
                while let Some(r) = rows.next()? {
                    let entry = out.entry((channel(r.get(0)?)?, language(r.get(1)?)?)).or_default();
                    let (st, n): (u8, i64) = (r.get(2)?, r.get(3)?);
                    let n = n.max(0) as u64;
                    if st == PLANNED {
                        entry.planned = n;
                    } else {
                        entry.finals.insert(status_of(st)?, n);
                    }
                }
                let mut latency = conn.prepare_cached(
                    "SELECT channel, language, leg, bucket, n FROM alert_latency WHERE alert_id = ?1",
                )?;
                let mut rows = latency.query([&key])?;
                while let Some(r) = rows.next()? {
                    let entry = out.entry((channel(r.get(0)?)?, language(r.get(1)?)?)).or_default();
                    let leg: u8 = r.get(2)?;
                    let leg = Leg::from_index(leg).ok_or_else(|| bad_data(format!("bad leg {leg}")))?;
                    let b: usize = r.get::<_, i64>(3)?.clamp(0, bealert_core::latency::BUCKETS as i64 - 1) as usize;
                    entry.histogram(leg)[b] += r.get::<_, i64>(4)?.max(0) as u64;
                }
                Ok(out)
            })
            .await
    }

    async fn find_by_provider_id(
        &self,
        provider: &str,
        id: &str,
    ) -> Result<Option<DeliveryRef>, StoreError> {
        let (provider, id) = (provider.to_string(), id.to_string());
        self.db
            .read(move |conn| {
                let found = conn
                    .prepare_cached(
                        "SELECT alert_id, channel, subscriber_id FROM deliveries
                         WHERE provider_id = ?1 AND provider = ?2 LIMIT 1",
                    )?
                    .query_row(params![id, provider], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, u8>(1)?,
                            r.get::<_, i64>(2)?,
                        ))
                    })
                    .optional()?;
                found
                    .map(|(a, c, s)| {
                        Ok(DeliveryRef {
                            alert: a.parse().map_err(bad_data)?,
                            channel: channel(c)?,
                            subscriber: subscriber_id(s)?,
                        })
                    })
                    .transpose()
            })
            .await
    }

    async fn apply_receipt(
        &self,
        d: DeliveryRef,
        change: &ReceiptChange,
        now: i64,
    ) -> Result<ReceiptApplied, StoreError> {
        let change = change.clone();
        self.db
            .write(move |tx| {
                let key = d.alert.to_string();
                let row = tx
                    .prepare_cached(
                        "SELECT status, language, recipient, provider, rowid FROM deliveries
                         WHERE alert_id = ?1 AND channel = ?2 AND bucket = ?4 AND subscriber_id = ?3",
                    )?
                    .query_row(
                        params![key, d.channel.index(), d.subscriber.as_i64(), bucket(d.subscriber)],
                        |r| {
                            Ok((
                                r.get::<_, u8>(0)?,
                                r.get::<_, u8>(1)?,
                                r.get::<_, String>(2)?,
                                r.get::<_, Option<String>>(3)?,
                                r.get::<_, i64>(4)?,
                            ))
                        },
                    )
                    .optional()?;
                let Some((st, lang, contact, provider, rowid)) = row else {
                    return Ok(ReceiptApplied::Unknown);
                };
                let (from, lang) = (status_of(st)?, language(lang)?);
                let to = match change.decide(from, provider, contact.clone()) {
                    Ok(to) => to,
                    Err(found) => return Ok(found),
                };
                tx.prepare_cached(
                    "UPDATE deliveries SET status = ?2, lease_until = 0, updated_at = ?3,
                         error = CASE WHEN ?2 = ?5 THEN ?4 ELSE error END,
                         provider = COALESCE(provider, ?6)
                     WHERE rowid = ?1",
                )?
                .execute(params![
                    rowid,
                    to.index(),
                    now,
                    change.reason,
                    DeliveryStatus::Failed.index(),
                    change.provider
                ])?;
                let mut tally = Tally::default();
                tally.add(rules::moved(from, to, Some(lang)));
                if let Some((leg, ms)) =
                    rules::latency(from, to, Some(change.released_at), change.at)
                {
                    tally.add([(Counter::latency(lang, leg, ms), 1)]);
                }
                bump(tx, &key, d.channel, &tally)?;
                Ok(ReceiptApplied::Moved { from, to, contact })
            })
            .await
    }

    async fn list_deliveries(
        &self,
        alert: AlertId,
        after: Option<(Channel, SubscriberId)>,
        limit: usize,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        self.db
            .read(move |conn| {
                let (c, s) =
                    after.map_or((-1i64, 0i64), |(c, s)| (i64::from(c.index()), s.as_i64()));
                let b = after.map_or(0, |(_, s)| bucket(s));
                let mut stmt = conn.prepare_cached(
                    "SELECT channel, subscriber_id, external_id, recipient, language, status, error, updated_at,
                         provider, provider_id
                     FROM deliveries WHERE alert_id = ?1 AND (channel, bucket, subscriber_id) > (?2, ?5, ?3)
                     ORDER BY channel, bucket, subscriber_id LIMIT ?4",
                )?;
                let rows = stmt.query_map(params![alert.to_string(), c, s, limit as i64, b], |r| {
                    Ok(DeliveryRow {
                        channel: channel(r.get(0)?)?,
                        subscriber_id: subscriber_id(r.get(1)?)?,
                        external_id: r.get(2)?,
                        to: r.get(3)?,
                        language: language(r.get(4)?)?,
                        status: status_of(r.get(5)?)?,
                        error: r.get(6)?,
                        updated_at: r.get(7)?,
                        provider: r.get(8)?,
                        provider_id: r.get(9)?,
                    })
                })?;
                rows.collect()
            })
            .await
    }
}
