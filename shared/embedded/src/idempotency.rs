//! `Idempotency-Key` records in `store.db` (a table of their own): the
//! embedded adapter of [`IdempotencyStore`].

use crate::OpenError;
use crate::db::Db;
use async_trait::async_trait;
use bealert_app::ports::{IdempotencyStore, KeyRecord, StoreError, StoredAnswer};
use rusqlite::{OptionalExtension, params};
use std::sync::Arc;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    -- The first answer as JSON; NULL while it is being answered.
    answer TEXT,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
";

/// Idempotency keys on SQLite.
pub struct SqliteIdempotency {
    db: Arc<Db>,
}

impl SqliteIdempotency {
    /// Opens its table in the store's file.
    pub fn beside(store: &crate::SqliteStore) -> Result<Self, OpenError> {
        let db = store.db().clone();
        db.apply(SCHEMA)?;
        Ok(Self { db })
    }

    /// Deletes records that expired before `now_ms`; returns how many.
    pub async fn expire_keys(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.db
            .write(move |tx| {
                Ok(tx.execute(
                    "DELETE FROM idempotency_keys WHERE expires_at <= ?1",
                    [now_ms],
                )? as u64)
            })
            .await
    }
}

fn answer_of(json: Option<String>) -> rusqlite::Result<Option<StoredAnswer>> {
    json.map(|j| {
        serde_json::from_str(&j).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })
    })
    .transpose()
}

#[async_trait]
impl IdempotencyStore for SqliteIdempotency {
    async fn claim_key(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let (scope, key, fingerprint) =
            (scope.to_string(), key.to_string(), fingerprint.to_string());
        self.db
            .write(move |tx| {
                let found = tx
                    .query_row(
                        "SELECT fingerprint, answer FROM idempotency_keys
                         WHERE scope = ?1 AND key = ?2 AND expires_at > ?3",
                        params![scope, key, now],
                        |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)),
                    )
                    .optional()?;
                if let Some((fingerprint, answer)) = found {
                    return Ok(Some(KeyRecord {
                        fingerprint,
                        answer: answer_of(answer)?,
                    }));
                }
                tx.execute(
                    "INSERT OR REPLACE INTO idempotency_keys (scope, key, fingerprint, answer, expires_at)
                     VALUES (?1, ?2, ?3, NULL, ?4)",
                    params![scope, key, fingerprint, expires_at],
                )?;
                Ok(None)
            })
            .await
    }

    async fn complete_key(
        &self,
        scope: &str,
        key: &str,
        answer: &StoredAnswer,
    ) -> Result<(), StoreError> {
        let json =
            serde_json::to_string(answer).map_err(|e| StoreError::Permanent(e.to_string()))?;
        let (scope, key) = (scope.to_string(), key.to_string());
        self.db
            .write(move |tx| {
                tx.execute(
                    "UPDATE idempotency_keys SET answer = ?3 WHERE scope = ?1 AND key = ?2",
                    params![scope, key, json],
                )?;
                Ok(())
            })
            .await
    }

    async fn release_key(&self, scope: &str, key: &str) -> Result<(), StoreError> {
        let (scope, key) = (scope.to_string(), key.to_string());
        self.db
            .write(move |tx| {
                tx.execute(
                    "DELETE FROM idempotency_keys WHERE scope = ?1 AND key = ?2 AND answer IS NULL",
                    params![scope, key],
                )?;
                Ok(())
            })
            .await
    }
}
