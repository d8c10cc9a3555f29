//! [`DocumentStore`](bealert_app::ports::DocumentStore) on SQLite: one
//! `documents` row per (kind, id) holding the JSON body whole (SQLite has
//! no item size limit, so no parts as in DynamoDB). A put replaces the body
//! in one statement, so a reader sees one version or the other.

use super::SqliteStore;
use async_trait::async_trait;
use bealert_app::ports::StoreError;
use rusqlite::{OptionalExtension, params};

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
