//! Citizens' registrations and the signup counters, in `store.db` beside
//! the subscribers (tables of their own; the rows resolution reads never
//! hold a pending registration).

use crate::OpenError;
use crate::db::Db;
use async_trait::async_trait;
use bealert_app::ports::{Counters, RegistrationStore, StoreError};
use bealert_core::signup::Registration;
use rusqlite::{OptionalExtension, params};
use std::sync::Arc;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS registrations (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    -- Registration::expires_at: set while no contact is verified.
    expires_at INTEGER
);
CREATE TABLE IF NOT EXISTS registration_keys (
    key TEXT NOT NULL,
    id TEXT NOT NULL,
    PRIMARY KEY (key, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS registration_keys_by_id ON registration_keys (id);
CREATE TABLE IF NOT EXISTS invitations (
    key TEXT PRIMARY KEY,
    grp TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    uses_left INTEGER NOT NULL,
    created_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    key TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (key, window_start)
) WITHOUT ROWID;
";

/// Registrations and counters on SQLite.
pub struct SqliteRegistrations {
    db: Arc<Db>,
}

impl SqliteRegistrations {
    pub(crate) fn on(db: Arc<Db>) -> Result<Self, OpenError> {
        db.apply(SCHEMA)?;
        Ok(Self { db })
    }

    /// Opens its tables in the store's file.
    pub fn beside(store: &crate::SqliteStore) -> Result<Self, OpenError> {
        Self::on(store.db().clone())
    }

    /// Deletes registrations whose `expires_at` (pending ones) has passed,
    /// with their index entries; returns how many.
    pub async fn expire_pending(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.db
            .write(move |tx| {
                tx.execute(
                    "DELETE FROM registration_keys WHERE id IN
                     (SELECT id FROM registrations WHERE expires_at IS NOT NULL AND expires_at < ?1)",
                    [now_ms],
                )?;
                Ok(tx.execute(
                    "DELETE FROM registrations WHERE expires_at IS NOT NULL AND expires_at < ?1",
                    [now_ms],
                )? as u64)
            })
            .await
    }

    /// Deletes counter windows that ended before `cutoff_ms`.
    pub async fn expire_counters(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        self.db
            .write(move |tx| {
                Ok(tx.execute("DELETE FROM counters WHERE window_start < ?1", [cutoff_ms])? as u64)
            })
            .await
    }
}

fn index_keys(tx: &rusqlite::Transaction<'_>, id: &str, keys: &[String]) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM registration_keys WHERE id = ?1", [id])?;
    let mut put =
        tx.prepare_cached("INSERT OR IGNORE INTO registration_keys (key, id) VALUES (?1, ?2)")?;
    for k in keys {
        put.execute(params![k, id])?;
    }
    Ok(())
}

fn to_json(r: &Registration) -> Result<String, StoreError> {
    serde_json::to_string(r).map_err(|e| StoreError::Permanent(e.to_string()))
}

fn corrupt(e: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
}

#[async_trait]
impl RegistrationStore for SqliteRegistrations {
    async fn insert_registration(&self, r: &Registration) -> Result<(), StoreError> {
        let (id, version, body, at) = (r.id.clone(), r.version as i64, to_json(r)?, r.created_at);
        let (keys, expires) = (r.lookup_keys.clone(), r.expires_at());
        self.db
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO registrations (id, version, body, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![id, version, body, at, expires],
                )?;
                index_keys(tx, &id, &keys)
            })
            .await
    }

    async fn get_registration(&self, id: &str) -> Result<Option<Registration>, StoreError> {
        let id = id.to_string();
        self.db
            .read(move |conn| {
                let body: Option<String> = conn
                    .prepare_cached("SELECT body FROM registrations WHERE id = ?1")?
                    .query_row([id], |r| r.get(0))
                    .optional()?;
                body.map(|b| serde_json::from_str(&b).map_err(corrupt))
                    .transpose()
            })
            .await
    }

    async fn replace_registration(&self, r: &Registration) -> Result<bool, StoreError> {
        let (id, version, body) = (r.id.clone(), r.version as i64, to_json(r)?);
        let (keys, expires) = (r.lookup_keys.clone(), r.expires_at());
        self.db
            .write(move |tx| {
                let n = tx.execute(
                    "UPDATE registrations SET version = ?2, body = ?3, expires_at = ?4 WHERE id = ?1 AND version = ?2 - 1",
                    params![id, version, body, expires],
                )?;
                if n == 1 {
                    index_keys(tx, &id, &keys)?;
                }
                Ok(n == 1)
            })
            .await
    }

    async fn delete_registration(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.db
            .write(move |tx| {
                tx.execute("DELETE FROM registration_keys WHERE id = ?1", [&id])?;
                Ok(tx.execute("DELETE FROM registrations WHERE id = ?1", [&id])? == 1)
            })
            .await
    }

    async fn insert_invitation(
        &self,
        i: &bealert_core::signup::Invitation,
    ) -> Result<(), StoreError> {
        let i = i.clone();
        self.db
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO invitations (key, grp, expires_at, uses_left, created_by) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![i.key, i.group, i.expires_at, i.uses_left, i.created_by],
                )?;
                Ok(())
            })
            .await
    }

    async fn use_invitation(&self, key: &str, now: i64) -> Result<Option<String>, StoreError> {
        let key = key.to_string();
        self.db
            .write(move |tx| {
                tx.query_row(
                    "UPDATE invitations SET uses_left = uses_left - 1
                     WHERE key = ?1 AND uses_left > 0 AND expires_at >= ?2 RETURNING grp",
                    params![key, now],
                    |r| r.get(0),
                )
                .optional()
            })
            .await
    }

    async fn registrations_by_key(&self, key: &str) -> Result<Vec<String>, StoreError> {
        let key = key.to_string();
        self.db
            .read(move |conn| {
                conn.prepare_cached("SELECT id FROM registration_keys WHERE key = ?1")?
                    .query_map([key], |r| r.get(0))?
                    .collect()
            })
            .await
    }
}

fn window_start(window_ms: i64, now_ms: i64) -> i64 {
    now_ms - now_ms.rem_euclid(window_ms.max(1))
}

#[async_trait]
impl Counters for SqliteRegistrations {
    async fn bump(
        &self,
        key: &str,
        by: u64,
        window_ms: i64,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let (key, start) = (key.to_string(), window_start(window_ms, now_ms));
        self.db
            .write(move |tx| {
                tx.query_row(
                    "INSERT INTO counters (key, window_start, count) VALUES (?1, ?2, ?3)
                     ON CONFLICT (key, window_start) DO UPDATE SET count = count + excluded.count
                     RETURNING count",
                    params![key, start, by as i64],
                    |r| r.get::<_, i64>(0),
                )
                .map(|c| c as u64)
            })
            .await
    }

    async fn count(&self, key: &str, window_ms: i64, now_ms: i64) -> Result<u64, StoreError> {
        let (key, start) = (key.to_string(), window_start(window_ms, now_ms));
        self.db
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT count FROM counters WHERE key = ?1 AND window_start = ?2",
                )?
                .query_row(params![key, start], |r| r.get::<_, i64>(0))
                .optional()
                .map(|c| c.unwrap_or(0) as u64)
            })
            .await
    }
}
