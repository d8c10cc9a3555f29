//! [`AlertStore`] on SQLite. One `alerts` row per alert keeps the spec
//! without its area in `spec` and the area's JSON apart in `area`, so heads
//! and listings never parse geometry (older rows keep the area inside
//! `spec`). A state change is conditional on the state the caller saw
//! (`WHERE state = from`) and is written with its `alert_audit` entry in
//! one transaction; the audit table is append-only (triggers refuse
//! updates and deletes).

use super::{SqliteStore, bad_data, json_err};
use async_trait::async_trait;
use bealert_app::ports::{AlertRecord, AlertStore, AuditEntry, StoreError};
use bealert_core::AlertId;
use bealert_core::alert::AlertState;
use rusqlite::{OptionalExtension, Row, params};

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
