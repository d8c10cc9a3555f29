//! The SQLite store: subscribers, alerts, deliveries, operators and
//! documents in one file (`store.db`), laid out by access pattern like the
//! DynamoDB tables. This module holds [`SqliteStore`], its connections and
//! the schema with its migrations, and the row helpers several ports share;
//! each port's implementation is in a file of its own (`subscribers.rs`,
//! `alerts.rs`, `deliveries.rs`, `operators.rs`, `documents.rs`).
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

mod alerts;
mod deliveries;
mod documents;
mod operators;
mod subscribers;

use crate::OpenError;
use crate::db::Db;
use bealert_core::{Language, SubscriberId};
use std::path::Path;
use std::sync::Arc;

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
";

/// The deliveries, in the order they were planned: see
/// [`deliveries_in_plan_order`].
const DELIVERIES: &str = "
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
    provider_id TEXT
);
";

const COUNTS: &str = "
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
        // A file made before deliveries were kept in plan order keeps its
        // table until `deliveries_in_plan_order` copies it over.
        let db = Db::open(path, &[SCHEMA, DELIVERIES, COUNTS].concat())?;
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
        deliveries_in_plan_order(&db)?;
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
}

/// Deliveries are kept in the order they were planned (a rowid table), so
/// that what one plan call wrote, and what its send jobs claim and record,
/// sits on a few pages side by side; the key (alert, channel, bucket,
/// subscriber) is a unique index beside it, which also lists them.
/// Keyed by the subscriber's hash instead (the layout before), a batch of
/// 5,000 dirtied some 4,500 pages at random on each of its three writes in
/// a 1,000,000-delivery alert. A file in that layout is copied over once.
fn deliveries_in_plan_order(db: &Db) -> Result<(), OpenError> {
    let keyed = db.query_i64(
        "SELECT COUNT(*) FROM sqlite_master
         WHERE type = 'table' AND name = 'deliveries' AND sql LIKE '%WITHOUT ROWID%'",
    )? > 0;
    if keyed {
        const COLUMNS: &str = "alert_id, channel, subscriber_id, bucket, external_id, recipient, \
            language, status, attempts, lease_until, error, updated_at, provider, provider_id";
        db.apply(&format!(
            "BEGIN;
             ALTER TABLE deliveries RENAME TO deliveries_by_key;
             {DELIVERIES}
             INSERT INTO deliveries ({COLUMNS}) SELECT {COLUMNS} FROM deliveries_by_key
                 ORDER BY alert_id, channel, bucket, subscriber_id;
             DROP TABLE deliveries_by_key;
             COMMIT;"
        ))?;
    }
    db.apply(
        "CREATE UNIQUE INDEX IF NOT EXISTS deliveries_key
             ON deliveries (alert_id, channel, bucket, subscriber_id);",
    )
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

fn json_err(e: serde_json::Error) -> rusqlite::Error {
    bad_data(e.to_string())
}
