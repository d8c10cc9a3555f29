//! The SQLite store: subscribers, alerts, deliveries and operators in one
//! file, laid out by access pattern like the DynamoDB tables.
//!
//! * `subscribers`: rows append in arrival order (the implicit rowid); the
//!   subscriber id, a hash of the external id and so random, is a small
//!   unique index beside them rather than the table's key, so 300-byte rows
//!   are not inserted at random places;
//! * `addresses`: one narrow row per address, clustered by H3 res-7 cell,
//!   with what a preview counts (language, channels); resolution joins the
//!   contact from `subscribers` (SQLite joins are cheap; DynamoDB's layout
//!   instead copies the contact into each address item);
//! * `memberships`: one row per (group, subscriber);
//! * `deliveries`: one row per (alert, channel, subscriber): the primary key
//!   is the exactly-once claim; `alert_counters` keeps live counts in the
//!   same transactions.

use crate::OpenError;
use crate::db::Db;
use async_trait::async_trait;
use bealert_app::ports::*;
use bealert_app::rules::{self, Counter};
use bealert_core::alert::AlertState;
use bealert_core::delivery::{DeliveryStatus, PlannedDelivery, bucket};
use bealert_core::operator::{KeyGrant, Operator};
use bealert_core::subscriber::{Contact, SubscriberProfile};
use bealert_core::{AlertId, Channel, ChannelSet, Language, SubscriberId};
use rusqlite::{OptionalExtension, Row, params};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS subscribers (
    id INTEGER NOT NULL UNIQUE,
    external_id TEXT UNIQUE,
    language INTEGER NOT NULL,
    channels INTEGER NOT NULL,
    phone TEXT,
    email TEXT,
    profile TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS addresses (
    cell INTEGER NOT NULL,
    subscriber_id INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    lat REAL NOT NULL,
    lon REAL NOT NULL,
    address_count INTEGER NOT NULL,
    language INTEGER NOT NULL,
    channels INTEGER NOT NULL,
    PRIMARY KEY (cell, subscriber_id, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS unit_keys (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS unit_rows (
    unit_id INTEGER NOT NULL,
    subscriber_id INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    cell INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS unit_rows_by_unit ON unit_rows (unit_id);
CREATE TABLE IF NOT EXISTS memberships (
    grp TEXT NOT NULL,
    subscriber_id INTEGER NOT NULL,
    PRIMARY KEY (grp, subscriber_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS operators (
    name TEXT PRIMARY KEY,
    jurisdiction TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS operator_users (
    operator TEXT NOT NULL,
    user TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (operator, user)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS operator_keys (
    key_hash TEXT PRIMARY KEY,
    operator TEXT NOT NULL,
    user TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS operator_keys_by_user ON operator_keys (operator, user);
CREATE TABLE IF NOT EXISTS operator_groups (
    name TEXT NOT NULL,
    grp TEXT NOT NULL,
    PRIMARY KEY (name, grp)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    operator TEXT NOT NULL,
    state TEXT NOT NULL,
    spec TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    completed_at INTEGER,
    shards_total INTEGER,
    shards_done INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS alerts_by_time ON alerts (created_at);
CREATE TABLE IF NOT EXISTS documents (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alert_audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL,
    entry TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_audit_by_alert ON alert_audit (alert_id, seq);
CREATE TRIGGER IF NOT EXISTS alert_audit_no_update BEFORE UPDATE ON alert_audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS alert_audit_no_delete BEFORE DELETE ON alert_audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE IF NOT EXISTS alert_shards (
    alert_id TEXT NOT NULL,
    shard INTEGER NOT NULL,
    PRIMARY KEY (alert_id, shard)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alert_recipients (
    alert_id TEXT NOT NULL,
    subscriber_id INTEGER NOT NULL,
    shard INTEGER NOT NULL,
    PRIMARY KEY (alert_id, subscriber_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alert_reach (
    alert_id TEXT PRIMARY KEY,
    recipients INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS deliveries (
    alert_id TEXT NOT NULL,
    channel INTEGER NOT NULL,
    subscriber_id INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    external_id TEXT,
    recipient TEXT NOT NULL,
    language INTEGER NOT NULL,
    status INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_until INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    updated_at INTEGER NOT NULL,
    provider TEXT,
    provider_id TEXT,
    PRIMARY KEY (alert_id, channel, subscriber_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deliveries_listing ON deliveries (alert_id, channel, bucket, subscriber_id);
CREATE TABLE IF NOT EXISTS alert_counters (
    alert_id TEXT NOT NULL,
    channel INTEGER NOT NULL,
    queued INTEGER NOT NULL DEFAULT 0,
    sending INTEGER NOT NULL DEFAULT 0,
    sent INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    cancelled INTEGER NOT NULL DEFAULT 0,
    delivered INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (alert_id, channel)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alert_language_counts (
    alert_id TEXT NOT NULL,
    channel INTEGER NOT NULL,
    language INTEGER NOT NULL,
    -- a final delivery status's index, or 255: every delivery planned
    status INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (alert_id, channel, language, status)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alert_latency (
    alert_id TEXT NOT NULL,
    channel INTEGER NOT NULL,
    language INTEGER NOT NULL,
    leg INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (alert_id, channel, language, leg, bucket)
) WITHOUT ROWID;
";

pub struct SqliteStore {
    db: Arc<Db>,
}

impl SqliteStore {
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        let db = Db::open(path, SCHEMA)?;
        // Each address points at its first unit row (added after the
        // table was first shipped).
        match db.apply("ALTER TABLE addresses ADD COLUMN unit_first INTEGER;") {
            Err(OpenError::Db { message, .. }) if message.contains("duplicate column") => {}
            other => other?,
        }
        // Deliveries stopped by a cancel are counted (added after the table
        // was first shipped).
        match db
            .apply("ALTER TABLE alert_counters ADD COLUMN cancelled INTEGER NOT NULL DEFAULT 0;")
        {
            Err(OpenError::Db { message, .. }) if message.contains("duplicate column") => {}
            other => other?,
        }
        // Added after the tables were first shipped: deliveries keep the
        // provider that took them and its id for them; receipts count
        // delivered messages; alerts keep when they were approved.
        for change in [
            "ALTER TABLE deliveries ADD COLUMN provider TEXT;",
            "ALTER TABLE deliveries ADD COLUMN provider_id TEXT;",
            "ALTER TABLE alert_counters ADD COLUMN delivered INTEGER NOT NULL DEFAULT 0;",
            "ALTER TABLE alerts ADD COLUMN approved_at INTEGER;",
            // The area's JSON apart from the spec, so that senders and
            // live views read the alert without parsing its geometry (a
            // national alert carries Belgium's outline). Older rows keep
            // the area inside `spec` and leave this empty.
            "ALTER TABLE alerts ADD COLUMN area TEXT;",
            // A person's rights (`send,approve,...`); NULL: the defaults.
            "ALTER TABLE operator_users ADD COLUMN rights TEXT;",
            // When a key stops working (ms); NULL: a key made before keys
            // expired, which does not.
            "ALTER TABLE operator_keys ADD COLUMN expires_at INTEGER;",
        ] {
            match db.apply(change) {
                Err(OpenError::Db { message, .. }) if message.contains("duplicate column") => {}
                other => other?,
            }
        }
        // Receipts find a delivery by its provider's id (only handed-over
        // deliveries with an id are in the index).
        db.apply(
            "CREATE INDEX IF NOT EXISTS deliveries_by_provider_id ON deliveries (provider_id)
             WHERE provider_id IS NOT NULL;",
        )?;
        // Operators kept one key each before people had keys of their own:
        // the key becomes its operator's first person's, named as the operator.
        if db.apply("SELECT key_hash FROM operators LIMIT 0;").is_ok() {
            db.apply(
                "BEGIN;
                 INSERT OR IGNORE INTO operator_users (operator, user, created_at)
                     SELECT name, name, created_at FROM operators;
                 INSERT OR IGNORE INTO operator_keys (key_hash, operator, user, created_at)
                     SELECT key_hash, name, name, created_at FROM operators;
                 CREATE TABLE operators_people (
                     name TEXT PRIMARY KEY,
                     jurisdiction TEXT NOT NULL,
                     created_at INTEGER NOT NULL
                 );
                 INSERT INTO operators_people SELECT name, jurisdiction, created_at FROM operators;
                 DROP TABLE operators;
                 ALTER TABLE operators_people RENAME TO operators;
                 COMMIT;",
            )?;
        }
        Ok(Self { db })
    }

    /// The same file's connections, for the ports kept beside this one.
    pub(crate) fn db(&self) -> &Arc<Db> {
        &self.db
    }

    /// Frees every delivery lease (crash recovery; see `Embedded::recover`).
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

fn now_ms() -> i64 {
    bealert_app::now_ms()
}

fn bad_data(msg: String) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(msg.into())
}

fn subscriber_id(v: i64) -> rusqlite::Result<SubscriberId> {
    SubscriberId::from_i64(v).ok_or_else(|| bad_data(format!("bad subscriber id {v}")))
}

fn language(v: u8) -> rusqlite::Result<Language> {
    Language::from_index(v).ok_or_else(|| bad_data(format!("bad language {v}")))
}

fn channel(v: u8) -> rusqlite::Result<Channel> {
    Channel::from_index(v).ok_or_else(|| bad_data(format!("bad channel {v}")))
}

/// Reads a contact from columns `first..first+5`:
/// subscriber_id, language, channels, phone, email, external_id.
fn contact_at(row: &Row<'_>, first: usize) -> rusqlite::Result<Contact> {
    Ok(Contact {
        subscriber_id: subscriber_id(row.get(first)?)?,
        language: language(row.get(first + 1)?)?,
        channels: ChannelSet::from_bits(row.get(first + 2)?),
        phone: row.get(first + 3)?,
        email: row.get(first + 4)?,
        external_id: row.get(first + 5)?,
    })
}

/// Subscribers per [`SubscriberStore::subscriber_page`].
const SUBSCRIBER_PAGE: usize = 1_000;

fn json_err(e: serde_json::Error) -> rusqlite::Error {
    bad_data(e.to_string())
}

/// The profile stored under an id.
fn stored_profile(
    tx: &rusqlite::Connection,
    id: SubscriberId,
) -> rusqlite::Result<Option<SubscriberProfile>> {
    tx.prepare_cached("SELECT profile FROM subscribers WHERE id = ?1")?
        .query_row([id.as_i64()], |r| r.get::<_, String>(0))
        .optional()?
        .map(|json| serde_json::from_str(&json).map_err(json_err))
        .transpose()
}

/// Removes the address and membership rows a stored profile produced.
fn delete_items(
    tx: &rusqlite::Transaction<'_>,
    id: i64,
    old: &SubscriberProfile,
) -> rusqlite::Result<()> {
    let mut del_addr =
        tx.prepare_cached("DELETE FROM addresses WHERE cell = ?1 AND subscriber_id = ?2")?;
    let mut first_unit = tx.prepare_cached(
        "SELECT unit_first FROM addresses WHERE cell = ?1 AND subscriber_id = ?2 AND idx = ?3",
    )?;
    let mut del_units = tx.prepare_cached("DELETE FROM unit_rows WHERE rowid BETWEEN ?1 AND ?2")?;
    for (i, a) in old.addresses.iter().enumerate() {
        let first: Option<i64> = first_unit
            .query_row(params![a.cell as i64, id, i as i64], |r| r.get(0))
            .optional()?
            .flatten();
        if let Some(first) = first {
            del_units.execute(params![first, first + a.units.len() as i64 - 1])?;
        }
    }
    for a in &old.addresses {
        del_addr.execute(params![a.cell as i64, id])?;
    }
    let mut del_group =
        tx.prepare_cached("DELETE FROM memberships WHERE grp = ?1 AND subscriber_id = ?2")?;
    for g in &old.groups {
        del_group.execute(params![g, id])?;
    }
    Ok(())
}

fn insert_items(
    tx: &rusqlite::Transaction<'_>,
    id: i64,
    p: &SubscriberProfile,
) -> rusqlite::Result<()> {
    let mut addr = tx.prepare_cached(
        "INSERT INTO addresses
         (cell, subscriber_id, idx, lat, lon, address_count, language, channels, unit_first)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    // An address's unit rows are consecutive rows, appended (an index on
    // the unit finds them; the address keeps the first to delete them).
    let mut unit = tx.prepare_cached(
        "INSERT INTO unit_rows (unit_id, subscriber_id, idx, cell) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut unit_id = tx.prepare_cached("SELECT id FROM unit_keys WHERE key = ?1")?;
    let mut new_unit = tx.prepare_cached("INSERT INTO unit_keys (key) VALUES (?1)")?;
    for (i, a) in p.addresses.iter().enumerate() {
        let mut unit_first = None;
        for u in &a.units {
            // Units are kept by a small integer: compact keys, fast inserts.
            let uid: i64 = match unit_id.query_row([u], |r| r.get(0)).optional()? {
                Some(uid) => uid,
                None => {
                    new_unit.execute([u])?;
                    tx.last_insert_rowid()
                }
            };
            unit.execute(params![uid, id, i as i64, a.cell as i64])?;
            unit_first.get_or_insert(tx.last_insert_rowid());
        }
        addr.execute(params![
            a.cell as i64,
            id,
            i as i64,
            a.lat,
            a.lon,
            p.addresses.len() as i64,
            p.language.index(),
            p.channels.bits(),
            unit_first
        ])?;
    }
    let mut group = tx
        .prepare_cached("INSERT OR IGNORE INTO memberships (grp, subscriber_id) VALUES (?1, ?2)")?;
    for g in &p.groups {
        group.execute(params![g, id])?;
    }
    Ok(())
}

#[async_trait]
impl SubscriberStore for SqliteStore {
    async fn upsert_subscribers(
        &self,
        subscribers: Arc<[(SubscriberId, SubscriberProfile)]>,
    ) -> Result<Vec<Upsert>, StoreError> {
        self.db
            .write(move |tx| {
                let now = now_ms();
                let mut out = Vec::with_capacity(subscribers.len());
                let mut find = tx
                    .prepare_cached("SELECT id, profile FROM subscribers WHERE external_id = ?1")?;
                let mut update = tx.prepare_cached(
                    "UPDATE subscribers SET language = ?2, channels = ?3, phone = ?4, email = ?5,
                     profile = ?6, updated_at = ?7 WHERE id = ?1",
                )?;
                // A new subscriber (the common case) costs one probe of each index: the insert.
                let mut insert = tx.prepare_cached(
                    "INSERT INTO subscribers
                     (id, external_id, language, channels, phone, email, profile, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
                     ON CONFLICT DO NOTHING",
                )?;
                for (id, profile) in subscribers.iter() {
                    let json = serde_json::to_string(profile).map_err(json_err)?;
                    let inserted = insert.execute(params![
                        id.as_i64(),
                        profile.external_id,
                        profile.language.index(),
                        profile.channels.bits(),
                        profile.phone,
                        profile.email,
                        json,
                        now
                    ])? == 1;
                    if inserted {
                        insert_items(tx, id.as_i64(), profile)?;
                        out.push(Upsert::Created);
                        continue;
                    }
                    // Someone holds the id, or (the id being free) the external
                    // id, under the random id a data directory from before derived
                    // ids gave it. The identity rule decides whether the entry is
                    // that subscriber, to replace; anyone else: taken.
                    let stored = match stored_profile(tx, *id)? {
                        Some(old) => Some((id.as_i64(), old)),
                        None => match &profile.external_id {
                            Some(ext) => find
                                .query_row([ext], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
                                .optional()?
                                .map(|(stored_id, json)| {
                                    serde_json::from_str::<SubscriberProfile>(&json)
                                        .map(|old| (stored_id, old))
                                        .map_err(json_err)
                                })
                                .transpose()?,
                            None => None,
                        },
                    };
                    let Some((stored_id, old)) =
                        stored.filter(|(_, old)| old.is_same_subscriber(profile))
                    else {
                        out.push(Upsert::IdTaken);
                        continue;
                    };
                    delete_items(tx, stored_id, &old)?;
                    update.execute(params![
                        stored_id,
                        profile.language.index(),
                        profile.channels.bits(),
                        profile.phone,
                        profile.email,
                        json,
                        now
                    ])?;
                    insert_items(tx, stored_id, profile)?;
                    out.push(Upsert::Updated);
                }
                Ok(out)
            })
            .await
    }

    async fn addresses_in_cells(
        &self,
        cells: &[u64],
        with_contacts: bool,
    ) -> Result<Vec<AddressItem>, StoreError> {
        let cells = cells.to_vec();
        self.db
            .read(move |conn| {
                let sql = if with_contacts {
                    "SELECT a.lat, a.lon, a.address_count, s.id, s.language, s.channels, s.phone, s.email, s.external_id
                     FROM addresses a JOIN subscribers s ON s.id = a.subscriber_id WHERE a.cell = ?1"
                } else {
                    "SELECT lat, lon, address_count, subscriber_id, language, channels
                     FROM addresses WHERE cell = ?1"
                };
                let mut stmt = conn.prepare_cached(sql)?;
                let mut out = Vec::new();
                for cell in cells {
                    let mut rows = stmt.query([cell as i64])?;
                    while let Some(row) = rows.next()? {
                        let contact = if with_contacts {
                            contact_at(row, 3)?
                        } else {
                            Contact {
                                subscriber_id: subscriber_id(row.get(3)?)?,
                                language: language(row.get(4)?)?,
                                channels: ChannelSet::from_bits(row.get(5)?),
                                phone: None,
                                email: None,
                                external_id: None,
                            }
                        };
                        out.push(AddressItem {
                            cell,
                            lat: row.get(0)?,
                            lon: row.get(1)?,
                            address_count: row.get(2)?,
                            contact,
                        });
                    }
                }
                Ok(out)
            })
            .await
    }

    async fn addresses_in_unit(
        &self,
        unit: &str,
        part: u32,
        with_contacts: bool,
    ) -> Result<Vec<AddressItem>, StoreError> {
        // One process reads SQLite: a unit is kept whole, in part 0 (in
        // key order by unit and subscriber, so an import appends to each
        // unit's end instead of dirtying a page per unit and part).
        if part != 0 {
            return Ok(Vec::new());
        }
        let unit = unit.to_string();
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT a.cell, a.lat, a.lon, a.address_count,
                            s.id, s.language, s.channels, s.phone, s.email, s.external_id
                     FROM unit_keys k
                     JOIN unit_rows u ON u.unit_id = k.id
                     JOIN addresses a ON a.cell = u.cell AND a.subscriber_id = u.subscriber_id AND a.idx = u.idx
                     JOIN subscribers s ON s.id = u.subscriber_id
                     WHERE k.key = ?1",
                )?;
                let rows = stmt.query_map(params![unit], |row| {
                    let mut contact = contact_at(row, 4)?;
                    if !with_contacts {
                        contact.phone = None;
                        contact.email = None;
                        contact.external_id = None;
                    }
                    Ok(AddressItem {
                        cell: row.get::<_, i64>(0)? as u64,
                        lat: row.get(1)?,
                        lon: row.get(2)?,
                        address_count: row.get(3)?,
                        contact,
                    })
                })?;
                rows.collect()
            })
            .await
    }

    async fn subscriber_page(&self, cursor: Option<String>) -> Result<SubscriberPage, StoreError> {
        let after: i64 = match cursor {
            None => 0,
            Some(c) => c
                .parse()
                .map_err(|_| StoreError::Permanent(format!("bad subscriber cursor {c:?}")))?,
        };
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT id, profile FROM subscribers WHERE id > ?1 ORDER BY id LIMIT ?2",
                )?;
                let rows = stmt.query_map(params![after, SUBSCRIBER_PAGE as i64], |r| {
                    let profile: SubscriberProfile =
                        serde_json::from_str(&r.get::<_, String>(1)?).map_err(json_err)?;
                    Ok((subscriber_id(r.get(0)?)?, profile))
                })?;
                let subscribers: Vec<(SubscriberId, SubscriberProfile)> =
                    rows.collect::<rusqlite::Result<_>>()?;
                let cursor = (subscribers.len() == SUBSCRIBER_PAGE)
                    .then(|| subscribers.last().map(|(id, _)| id.as_i64().to_string()))
                    .flatten();
                Ok(SubscriberPage {
                    subscribers,
                    cursor,
                })
            })
            .await
    }

    async fn get_subscriber(
        &self,
        id: SubscriberId,
    ) -> Result<Option<SubscriberProfile>, StoreError> {
        self.db.read(move |conn| stored_profile(conn, id)).await
    }

    async fn replace_if_unchanged(
        &self,
        id: SubscriberId,
        expected: &SubscriberProfile,
        new: &SubscriberProfile,
    ) -> Result<bool, StoreError> {
        let (expected, new) = (expected.clone(), new.clone());
        self.db
            .write(move |tx| {
                let Some(old) = stored_profile(tx, id)? else {
                    return Ok(false);
                };
                if old != expected {
                    return Ok(false);
                }
                delete_items(tx, id.as_i64(), &old)?;
                tx.prepare_cached(
                    "UPDATE subscribers SET language = ?2, channels = ?3, phone = ?4, email = ?5,
                     profile = ?6, updated_at = ?7 WHERE id = ?1",
                )?
                .execute(params![
                    id.as_i64(),
                    new.language.index(),
                    new.channels.bits(),
                    new.phone,
                    new.email,
                    serde_json::to_string(&new).map_err(json_err)?,
                    now_ms()
                ])?;
                insert_items(tx, id.as_i64(), &new)?;
                Ok(true)
            })
            .await
    }

    async fn group_members(&self, group: &str) -> Result<Vec<Contact>, StoreError> {
        let group = group.to_string();
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT s.id, s.language, s.channels, s.phone, s.email, s.external_id
                     FROM memberships m JOIN subscribers s ON s.id = m.subscriber_id WHERE m.grp = ?1",
                )?;
                let rows = stmt.query_map([group], |r| contact_at(r, 0))?;
                rows.collect()
            })
            .await
    }

    async fn remove_subscriber(&self, id: SubscriberId) -> Result<bool, StoreError> {
        self.db
            .write(move |tx| {
                let Some(old) = stored_profile(tx, id)? else {
                    return Ok(false);
                };
                delete_items(tx, id.as_i64(), &old)?;
                tx.execute("DELETE FROM subscribers WHERE id = ?1", [id.as_i64()])?;
                Ok(true)
            })
            .await
    }

    async fn subscriber_count(&self) -> Result<u64, StoreError> {
        self.db
            .read(|conn| {
                conn.query_row("SELECT count(*) FROM subscribers", [], |r| {
                    r.get::<_, i64>(0)
                })
            })
            .await
            .map(|n| n as u64)
    }
}

fn alert_from_row(row: &Row<'_>) -> rusqlite::Result<AlertRecord> {
    let id: String = row.get(0)?;
    let state: String = row.get(2)?;
    let spec: String = row.get(3)?;
    Ok(AlertRecord {
        id: id.parse().map_err(bad_data)?,
        operator: row.get(1)?,
        state: AlertState::parse(&state).ok_or_else(|| bad_data(format!("bad state {state}")))?,
        spec: serde_json::from_str(&spec).map_err(json_err)?,
        created_at: row.get(4)?,
        completed_at: row.get(5)?,
        shards_total: row.get(6)?,
        shards_done: row.get(7)?,
        approved_at: row.get(8)?,
    })
}

#[async_trait]
impl AlertStore for SqliteStore {
    async fn insert_alert(
        &self,
        alert: &AlertRecord,
        entry: &AuditEntry,
    ) -> Result<(), StoreError> {
        let a = alert.clone();
        let area = to_json(&a.spec.area)?;
        let mut head = a.spec.clone();
        head.area = Default::default();
        let spec = to_json(&head)?;
        let entry = audit_json(entry)?;
        self.db
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO alerts (id, operator, state, spec, created_at, completed_at, shards_total, shards_done, approved_at, area)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        a.id.to_string(),
                        a.operator,
                        a.state.as_str(),
                        spec,
                        a.created_at,
                        a.completed_at,
                        a.shards_total,
                        a.shards_done,
                        a.approved_at,
                        area
                    ],
                )?;
                append_audit(tx, a.id, &entry)
            })
            .await
    }

    async fn audit(&self, id: AlertId) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<String> = self
            .db
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT entry FROM alert_audit WHERE alert_id = ?1 ORDER BY seq",
                )?
                .query_map([id.to_string()], |r| r.get(0))?
                .collect()
            })
            .await?;
        rows.iter()
            .map(|json| {
                serde_json::from_str(json).map_err(|e| StoreError::Permanent(e.to_string()))
            })
            .collect()
    }

    async fn get_alert(&self, id: AlertId) -> Result<Option<AlertRecord>, StoreError> {
        self.db
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT id, operator, state, spec, created_at, completed_at, shards_total, shards_done, approved_at, area
                     FROM alerts WHERE id = ?1",
                )?
                .query_row([id.to_string()], |row| {
                    let mut record = alert_from_row(row)?;
                    if let Some(area) = row.get::<_, Option<String>>(9)? {
                        record.spec.area = serde_json::from_str(&area).map_err(json_err)?;
                    }
                    Ok(record)
                })
                .optional()
            })
            .await
    }

    /// The spec without its area: one small row, no geometry parsed.
    async fn get_alert_head(&self, id: AlertId) -> Result<Option<AlertRecord>, StoreError> {
        let mut head = self
            .db
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT id, operator, state, spec, created_at, completed_at, shards_total, shards_done, approved_at
                     FROM alerts WHERE id = ?1",
                )?
                .query_row([id.to_string()], alert_from_row)
                .optional()
            })
            .await?;
        // An older row keeps its area in the spec: a head has none.
        if let Some(h) = &mut head {
            h.spec.area = Default::default();
        }
        Ok(head)
    }

    async fn recent_alerts(
        &self,
        since: i64,
        limit: usize,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut out: Vec<AlertRecord> = self
            .db
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT id, operator, state, spec, created_at, completed_at, shards_total, shards_done, approved_at
                     FROM alerts WHERE created_at >= ?1 ORDER BY created_at DESC, id DESC LIMIT ?2",
                )?
                .query_map(params![since, limit], alert_from_row)?
                .collect()
            })
            .await?;
        // Heads: the listing needs no geometry.
        for r in &mut out {
            r.spec.area = Default::default();
        }
        Ok(out)
    }

    async fn set_shard_count(&self, id: AlertId, shards: u32) -> Result<(), StoreError> {
        self.db
            .write(move |tx| {
                tx.execute(
                    "UPDATE alerts SET shards_total = ?2 WHERE id = ?1 AND shards_total IS NULL",
                    params![id.to_string(), shards],
                )
                .map(|_| ())
            })
            .await
    }

    async fn complete_shard(
        &self,
        id: AlertId,
        shard: u32,
    ) -> Result<(u32, Option<u32>), StoreError> {
        self.db
            .write(move |tx| {
                let key = id.to_string();
                let new = tx.execute(
                    "INSERT OR IGNORE INTO alert_shards (alert_id, shard) VALUES (?1, ?2)",
                    params![key, shard],
                )?;
                if new == 1 {
                    tx.execute(
                        "UPDATE alerts SET shards_done = shards_done + 1 WHERE id = ?1",
                        [&key],
                    )?;
                }
                tx.query_row(
                    "SELECT shards_done, shards_total FROM alerts WHERE id = ?1",
                    [&key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
            })
            .await
    }

    async fn append_audit(&self, id: AlertId, entry: &AuditEntry) -> Result<(), StoreError> {
        let entry = audit_json(entry)?;
        self.db.write(move |tx| append_audit(tx, id, &entry)).await
    }

    async fn transition(
        &self,
        id: AlertId,
        from: AlertState,
        to: AlertState,
        entry: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let at = entry.at;
        let entry = audit_json(entry)?;
        self.db
            .write(move |tx| {
                let set = bealert_core::lifecycle::stamps(from, to, at);
                let moved = tx.execute(
                    "UPDATE alerts SET state = ?3, completed_at = COALESCE(?4, completed_at),
                         approved_at = COALESCE(?5, approved_at)
                     WHERE id = ?1 AND state = ?2",
                    params![
                        id.to_string(),
                        from.as_str(),
                        to.as_str(),
                        set.completed_at,
                        set.approved_at
                    ],
                )? == 1;
                if moved {
                    append_audit(tx, id, &entry)?;
                }
                Ok(moved)
            })
            .await
    }
}

fn audit_json(entry: &AuditEntry) -> Result<String, StoreError> {
    to_json(entry)
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Permanent(e.to_string()))
}

fn append_audit(tx: &rusqlite::Transaction<'_>, id: AlertId, entry: &str) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT INTO alert_audit (alert_id, entry) VALUES (?1, ?2)")?
        .execute(params![id.to_string(), entry])
        .map(|_| ())
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
        let recipients = recipients.to_vec();
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
                    "SELECT status FROM deliveries WHERE alert_id = ?1 AND channel = ?2 AND subscriber_id = ?3",
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
                                status.query_row(params![key, d.channel.index(), sid], |row| row.get(0))?,
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
                    "SELECT status, lease_until, attempts, provider FROM deliveries
                     WHERE alert_id = ?1 AND channel = ?2 AND subscriber_id = ?3",
                )?;
                let mut take = tx.prepare_cached(
                    "UPDATE deliveries SET status = ?4, lease_until = ?5, attempts = attempts + 1, updated_at = ?6
                     WHERE alert_id = ?1 AND channel = ?2 AND subscriber_id = ?3",
                )?;
                let mut tally = Tally::default();
                let mut out = Vec::with_capacity(subscribers.len());
                for s in subscribers {
                    let row = get
                        .query_row(params![key, channel.index(), s.as_i64()], |r| {
                            Ok((
                                r.get::<_, u8>(0)?,
                                r.get::<_, i64>(1)?,
                                r.get::<_, u32>(2)?,
                                r.get::<_, Option<String>>(3)?,
                            ))
                        })
                        .optional()?;
                    let claim = match row {
                        None => Claim::Unknown,
                        Some((st, lease_until, attempts, provider)) => {
                            let was = status_of(st)?;
                            let claim = Claim::decide(was, lease_until, attempts, provider, now);
                            if let Claim::Claimed { .. } = claim {
                                take.execute(params![
                                    key,
                                    channel.index(),
                                    s.as_i64(),
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
                     WHERE alert_id = ?1 AND channel = ?2 AND subscriber_id = ?3
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
                        provider_id
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
                    "SELECT status, lease_until, language FROM deliveries
                     WHERE alert_id = ?1 AND channel = ?2 AND subscriber_id = ?3",
                )?;
                let mut set = tx.prepare_cached(
                    "UPDATE deliveries SET status = ?4, lease_until = 0, error = ?5, updated_at = ?6
                     WHERE alert_id = ?1 AND channel = ?2 AND subscriber_id = ?3",
                )?;
                let mut tally = Tally::default();
                let mut after = Vec::with_capacity(subscribers.len());
                for s in subscribers {
                    let Some((st, lease_until, lang)) = get
                        .query_row(params![key, channel.index(), s.as_i64()], |r| {
                            Ok((r.get::<_, u8>(0)?, r.get::<_, i64>(1)?, r.get::<_, u8>(2)?))
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
                        set.execute(params![
                            key,
                            channel.index(),
                            s.as_i64(),
                            to.index(),
                            reason,
                            now
                        ])?;
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
                    channels.insert(
                        channel(r.get(0)?)?,
                        ChannelCounts {
                            queued: n(1)?,
                            sending: n(2)?,
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
                        "SELECT status, language, recipient, provider FROM deliveries
                         WHERE alert_id = ?1 AND channel = ?2 AND subscriber_id = ?3",
                    )?
                    .query_row(
                        params![key, d.channel.index(), d.subscriber.as_i64()],
                        |r| {
                            Ok((
                                r.get::<_, u8>(0)?,
                                r.get::<_, u8>(1)?,
                                r.get::<_, String>(2)?,
                                r.get::<_, Option<String>>(3)?,
                            ))
                        },
                    )
                    .optional()?;
                let Some((st, lang, contact, provider)) = row else {
                    return Ok(ReceiptApplied::Unknown);
                };
                let (from, lang) = (status_of(st)?, language(lang)?);
                let to = match change.decide(from, provider, contact.clone()) {
                    Ok(to) => to,
                    Err(found) => return Ok(found),
                };
                tx.prepare_cached(
                    "UPDATE deliveries SET status = ?4, lease_until = 0, updated_at = ?5,
                         error = CASE WHEN ?4 = ?7 THEN ?6 ELSE error END,
                         provider = COALESCE(provider, ?8)
                     WHERE alert_id = ?1 AND channel = ?2 AND subscriber_id = ?3",
                )?
                .execute(params![
                    key,
                    d.channel.index(),
                    d.subscriber.as_i64(),
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

fn operator_exists(tx: &rusqlite::Transaction<'_>, name: &str) -> rusqlite::Result<bool> {
    tx.prepare_cached("SELECT 1 FROM operators WHERE name = ?1")?
        .exists([name])
}

/// A person of an operator and their first key (a taken name or key
/// violates a unique key: `Conflict`).
fn add_person(
    tx: &rusqlite::Transaction<'_>,
    operator: &str,
    user: &str,
    key: &KeyGrant,
    now: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO operator_users (operator, user, created_at) VALUES (?1, ?2, ?3)",
        params![operator, user, now],
    )?;
    add_key(tx, operator, user, key, now)
}

fn add_key(
    tx: &rusqlite::Transaction<'_>,
    operator: &str,
    user: &str,
    key: &KeyGrant,
    now: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO operator_keys (key_hash, operator, user, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![key.hash, operator, user, now, key.expires_at_ms],
    )?;
    Ok(())
}

#[async_trait]
impl bealert_app::ports::DocumentStore for SqliteStore {
    async fn put_document(
        &self,
        kind: &str,
        id: &str,
        body: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let (kind, id, body) = (kind.to_string(), id.to_string(), body.to_string());
        self.db
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO documents (kind, id, body) VALUES (?1, ?2, ?3)
                     ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body",
                    params![kind, id, body],
                )
                .map(|_| ())
            })
            .await
    }

    async fn get_document(
        &self,
        kind: &str,
        id: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let (kind, id) = (kind.to_string(), id.to_string());
        let body: Option<String> = self
            .db
            .read(move |conn| {
                conn.prepare_cached("SELECT body FROM documents WHERE kind = ?1 AND id = ?2")?
                    .query_row(params![kind, id], |r| r.get(0))
                    .optional()
            })
            .await?;
        body.map(|b| serde_json::from_str(&b).map_err(|e| StoreError::Permanent(e.to_string())))
            .transpose()
    }

    async fn documents(
        &self,
        kind: &str,
        prefix: &str,
    ) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        let (kind, prefix) = (kind.to_string(), prefix.to_string());
        let rows: Vec<(String, String)> = self
            .db
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT id, body FROM documents WHERE kind = ?1 AND substr(id, 1, length(?2)) = ?2 ORDER BY id",
                )?
                .query_map(params![kind, prefix], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
            })
            .await?;
        rows.into_iter()
            .map(|(id, b)| {
                serde_json::from_str(&b)
                    .map(|v| (id, v))
                    .map_err(|e| StoreError::Permanent(e.to_string()))
            })
            .collect()
    }

    async fn delete_document(&self, kind: &str, id: &str) -> Result<bool, StoreError> {
        let (kind, id) = (kind.to_string(), id.to_string());
        self.db
            .write(move |tx| {
                tx.execute(
                    "DELETE FROM documents WHERE kind = ?1 AND id = ?2",
                    params![kind, id],
                )
                .map(|n| n > 0)
            })
            .await
    }
}

#[async_trait]
impl OperatorStore for SqliteStore {
    async fn insert_operator(&self, operator: &Operator, key: &KeyGrant) -> Result<(), StoreError> {
        let (op, hash) = (operator.clone(), key.clone());
        self.db
            .write(move |tx| {
                let now = now_ms();
                tx.execute(
                    "INSERT INTO operators (name, jurisdiction, created_at) VALUES (?1, ?2, ?3)",
                    params![op.name, op.jurisdiction.to_string(), now],
                )?;
                add_person(tx, &op.name, &op.user, &hash, now)
            })
            .await
    }

    async fn insert_user(
        &self,
        operator: &str,
        user: &str,
        key: &KeyGrant,
    ) -> Result<bool, StoreError> {
        let (operator, user, hash) = (operator.to_string(), user.to_string(), key.clone());
        self.db
            .write(move |tx| {
                if !operator_exists(tx, &operator)? {
                    return Ok(false);
                }
                add_person(tx, &operator, &user, &hash, now_ms())?;
                Ok(true)
            })
            .await
    }

    async fn replace_keys(
        &self,
        operator: &str,
        user: &str,
        new_key: Option<&KeyGrant>,
        old_until_ms: Option<i64>,
    ) -> Result<Option<usize>, StoreError> {
        let (operator, user) = (operator.to_string(), user.to_string());
        let new = new_key.cloned();
        self.db
            .write(move |tx| {
                let exists = tx
                    .prepare_cached(
                        "SELECT 1 FROM operator_users WHERE operator = ?1 AND user = ?2",
                    )?
                    .exists(params![operator, user])?;
                if !exists {
                    return Ok(None);
                }
                let now = now_ms();
                let ended = match old_until_ms {
                    None => tx.execute(
                        "DELETE FROM operator_keys WHERE operator = ?1 AND user = ?2",
                        params![operator, user],
                    )?,
                    Some(until) => {
                        // Keys already ended go; the others end at the
                        // overlap's end, or sooner if they would anyway.
                        tx.execute(
                            "DELETE FROM operator_keys WHERE operator = ?1 AND user = ?2
                             AND expires_at IS NOT NULL AND expires_at <= ?3",
                            params![operator, user, now],
                        )?;
                        tx.execute(
                            "UPDATE operator_keys SET expires_at = min(coalesce(expires_at, ?3), ?3)
                             WHERE operator = ?1 AND user = ?2",
                            params![operator, user, until],
                        )?
                    }
                };
                if let Some(key) = new {
                    add_key(tx, &operator, &user, &key, now)?;
                }
                Ok(Some(ended))
            })
            .await
    }

    async fn revoke_key(&self, key_hash: &str) -> Result<bool, StoreError> {
        let hash = key_hash.to_string();
        self.db
            .write(move |tx| {
                tx.execute("DELETE FROM operator_keys WHERE key_hash = ?1", [hash])
                    .map(|n| n > 0)
            })
            .await
    }

    async fn operator_by_key_hash(&self, key_hash: &str) -> Result<Option<Operator>, StoreError> {
        let hash = key_hash.to_string();
        self.db
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT o.name, o.jurisdiction, k.user, u.rights, k.expires_at FROM operator_keys k
                     JOIN operators o ON o.name = k.operator
                     LEFT JOIN operator_users u ON u.operator = k.operator AND u.user = k.user
                     WHERE k.key_hash = ?1",
                )?
                .query_row([hash], |r| {
                    let j: String = r.get(1)?;
                    let rights: Option<String> = r.get(3)?;
                    Ok(Operator {
                        name: r.get(0)?,
                        jurisdiction: j.parse().map_err(bad_data)?,
                        user: r.get(2)?,
                        groups: Vec::new(),
                        rights: match rights {
                            Some(list) => list.parse().map_err(bad_data)?,
                            None => Default::default(),
                        },
                        key_expires_at_ms: r.get(4)?,
                    })
                })
                .optional()?
                .map(|mut op| {
                    op.groups = conn
                        .prepare_cached(
                            "SELECT grp FROM operator_groups WHERE name = ?1 ORDER BY grp",
                        )?
                        .query_map([&op.name], |r| r.get(0))?
                        .collect::<Result<_, _>>()?;
                    Ok(op)
                })
                .transpose()
            })
            .await
    }

    async fn set_rights(
        &self,
        operator: &str,
        user: &str,
        rights: &bealert_core::operator::Rights,
    ) -> Result<bool, StoreError> {
        let (operator, user, list) = (operator.to_string(), user.to_string(), rights.to_list());
        self.db
            .write(move |tx| {
                Ok(tx.execute(
                    "UPDATE operator_users SET rights = ?3 WHERE operator = ?1 AND user = ?2",
                    params![operator, user, list],
                )? == 1)
            })
            .await
    }

    async fn grant_group(&self, name: &str, group: &str) -> Result<bool, StoreError> {
        let (name, group) = (name.to_string(), group.to_string());
        self.db
            .write(move |tx| {
                if !operator_exists(tx, &name)? {
                    return Ok(false);
                }
                tx.execute(
                    "INSERT OR IGNORE INTO operator_groups (name, grp) VALUES (?1, ?2)",
                    params![name, group],
                )?;
                Ok(true)
            })
            .await
    }
}
