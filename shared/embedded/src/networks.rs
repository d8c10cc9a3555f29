//! Mobile networks, their cells and the deliveries to them (Alert-SMS), in
//! `store.db` beside the subscribers.
//!
//! Cells are read by index cell (`network_cell_parents`), as the DynamoDB
//! layout does; a replacement writes a new version of the network's cells
//! and switches to it in one transaction.

use crate::OpenError;
use crate::db::Db;
use async_trait::async_trait;
use bealert_app::ports::{
    Claim, IndexedCell, Network, NetworkInfo, NetworkStore, Outcome, StoreError, TargetRow,
    TargetStore,
};
use bealert_core::AlertId;
use bealert_core::broadcast::{NetworkReport, Target};
use bealert_core::delivery::DeliveryStatus;
use bealert_core::network::CellRecord;
use rusqlite::{OptionalExtension, params};
use std::sync::Arc;
use std::time::Duration;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS networks (
    name TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    version INTEGER NOT NULL DEFAULT 0,
    refreshed_at INTEGER,
    cells INTEGER NOT NULL DEFAULT 0,
    active_devices INTEGER NOT NULL DEFAULT 0,
    derived INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS network_cells (
    network TEXT NOT NULL,
    cell_id TEXT NOT NULL,
    body TEXT NOT NULL,
    parents TEXT NOT NULL,
    PRIMARY KEY (network, cell_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS network_cell_parents (
    network TEXT NOT NULL,
    parent INTEGER NOT NULL,
    cell_id TEXT NOT NULL,
    PRIMARY KEY (network, parent, cell_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS target_deliveries (
    alert_id TEXT NOT NULL,
    target TEXT NOT NULL,
    status INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_until INTEGER NOT NULL DEFAULT 0,
    report TEXT,
    error TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (alert_id, target)
) WITHOUT ROWID;
";

/// Networks, cells and target deliveries on SQLite.
pub struct SqliteNetworks {
    db: Arc<Db>,
}

impl SqliteNetworks {
    /// Opens its tables in the store's file.
    pub fn beside(store: &crate::SqliteStore) -> Result<Self, OpenError> {
        let db = store.db().clone();
        db.apply(SCHEMA)?;
        Ok(Self { db })
    }
}

impl SqliteNetworks {
    /// Plans one network's delivery of an alert (handler tests).
    #[cfg(feature = "testing")]
    pub async fn plan_targets_for_test(&self, alert: AlertId, network: &str) {
        TargetStore::plan_targets(self, alert, &[Target::Network(network.into())], 0)
            .await
            .expect("planned");
    }
}

fn json_err(e: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(e))
}

fn bad_data(msg: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, msg.into())
}

fn info_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<NetworkInfo> {
    Ok(NetworkInfo {
        name: r.get(0)?,
        version: r.get::<_, i64>(1)? as u64,
        refreshed_at: r.get(2)?,
        cells: r.get::<_, i64>(3)? as u64,
        active_devices: r.get::<_, i64>(4)? as u64,
        derived: r.get::<_, i64>(5)? as u64,
    })
}

const INFO_COLUMNS: &str = "name, version, refreshed_at, cells, active_devices, derived";

#[async_trait]
impl NetworkStore for SqliteNetworks {
    async fn insert_network(&self, network: &Network) -> Result<(), StoreError> {
        let n = network.clone();
        self.db
            .write(move |tx| {
                let taken: Option<String> = tx
                    .query_row(
                        "SELECT name FROM networks WHERE name = ?1",
                        [&n.name],
                        |r| r.get(0),
                    )
                    .optional()?;
                if taken.is_some() {
                    return Ok(false);
                }
                tx.execute(
                    "INSERT INTO networks (name, key_hash, created_at) VALUES (?1, ?2, ?3)",
                    params![n.name, n.key_hash, n.created_at],
                )?;
                Ok(true)
            })
            .await
            .and_then(|created| {
                if created {
                    Ok(())
                } else {
                    Err(StoreError::Conflict(format!(
                        "network {} exists",
                        network.name
                    )))
                }
            })
    }

    async fn network_by_key_hash(&self, key_hash: &str) -> Result<Option<Network>, StoreError> {
        let h = key_hash.to_string();
        self.db
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT name, key_hash, created_at FROM networks WHERE key_hash = ?1",
                )?
                .query_row([h], |r| {
                    Ok(Network {
                        name: r.get(0)?,
                        key_hash: r.get(1)?,
                        created_at: r.get(2)?,
                    })
                })
                .optional()
            })
            .await
    }

    async fn networks(&self) -> Result<Vec<NetworkInfo>, StoreError> {
        self.db
            .read(|conn| {
                conn.prepare_cached(&format!(
                    "SELECT {INFO_COLUMNS} FROM networks ORDER BY name"
                ))?
                .query_map([], info_from_row)?
                .collect()
            })
            .await
    }

    async fn replace_cells(
        &self,
        network: &str,
        cells: Arc<[IndexedCell]>,
        refreshed_at: i64,
    ) -> Result<NetworkInfo, StoreError> {
        let name = network.to_string();
        // JSON outside the write lock.
        let rows: Vec<(String, String, String)> = cells
            .iter()
            .map(|c| {
                Ok((
                    c.record.cell_id.clone(),
                    serde_json::to_string(&c.record)?,
                    serde_json::to_string(&c.parents)?,
                ))
            })
            .collect::<Result<_, serde_json::Error>>()
            .map_err(|e| StoreError::Permanent(e.to_string()))?;
        let devices: u64 = cells.iter().map(|c| c.record.active_devices).sum();
        let derived = cells.iter().filter(|c| c.record.derived).count() as i64;
        self.db
            .write(move |tx| {
                let exists: Option<i64> = tx
                    .query_row("SELECT version FROM networks WHERE name = ?1", [&name], |r| {
                        r.get(0)
                    })
                    .optional()?;
                if exists.is_none() {
                    return Err(bad_data(format!("no network named {name}")));
                }
                tx.execute("DELETE FROM network_cells WHERE network = ?1", [&name])?;
                tx.execute(
                    "DELETE FROM network_cell_parents WHERE network = ?1",
                    [&name],
                )?;
                let mut cell = tx.prepare_cached(
                    "INSERT INTO network_cells (network, cell_id, body, parents) VALUES (?1, ?2, ?3, ?4)",
                )?;
                let mut parent = tx.prepare_cached(
                    "INSERT OR IGNORE INTO network_cell_parents (network, parent, cell_id) VALUES (?1, ?2, ?3)",
                )?;
                for (i, (id, body, parents)) in rows.iter().enumerate() {
                    cell.execute(params![name, id, body, parents])?;
                    for p in &cells[i].parents {
                        parent.execute(params![name, *p as i64, id])?;
                    }
                }
                tx.execute(
                    "UPDATE networks SET version = version + 1, refreshed_at = ?2, cells = ?3,
                     active_devices = ?4, derived = ?5 WHERE name = ?1",
                    params![name, refreshed_at, rows.len() as i64, devices as i64, derived],
                )?;
                tx.query_row(
                    &format!("SELECT {INFO_COLUMNS} FROM networks WHERE name = ?1"),
                    [&name],
                    info_from_row,
                )
            })
            .await
    }

    async fn cells_in(
        &self,
        network: &str,
        parents: &[u64],
    ) -> Result<Vec<IndexedCell>, StoreError> {
        let name = network.to_string();
        let parents = parents.to_vec();
        self.db
            .read(move |conn| {
                let mut ids = conn.prepare_cached(
                    "SELECT cell_id FROM network_cell_parents WHERE network = ?1 AND parent = ?2",
                )?;
                let mut seen = std::collections::HashSet::new();
                for p in parents {
                    for id in ids.query_map(params![name, p as i64], |r| r.get::<_, String>(0))? {
                        seen.insert(id?);
                    }
                }
                let mut get = conn.prepare_cached(
                    "SELECT body, parents FROM network_cells WHERE network = ?1 AND cell_id = ?2",
                )?;
                let mut out = Vec::with_capacity(seen.len());
                for id in seen {
                    let (body, parents): (String, String) =
                        get.query_row(params![name, id], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    out.push(IndexedCell {
                        record: serde_json::from_str::<CellRecord>(&body)
                            .map_err(|e| bad_data(e.to_string()))?,
                        parents: serde_json::from_str(&parents)
                            .map_err(|e| bad_data(e.to_string()))?,
                    });
                }
                Ok(out)
            })
            .await
    }
}

fn status_of(v: u8) -> rusqlite::Result<DeliveryStatus> {
    DeliveryStatus::from_index(v).ok_or_else(|| bad_data(format!("bad status {v}")))
}

#[async_trait]
impl TargetStore for SqliteNetworks {
    async fn plan_targets(
        &self,
        alert: AlertId,
        targets: &[Target],
        now: i64,
    ) -> Result<(), StoreError> {
        let keys: Vec<String> = targets.iter().map(Target::key).collect();
        self.db
            .write(move |tx| {
                let mut ins = tx.prepare_cached(
                    "INSERT OR IGNORE INTO target_deliveries (alert_id, target, status, updated_at)
                     VALUES (?1, ?2, ?3, ?4)",
                )?;
                for k in keys {
                    ins.execute(params![
                        alert.to_string(),
                        k,
                        DeliveryStatus::Queued.index(),
                        now
                    ])?;
                }
                Ok(())
            })
            .await
    }

    async fn claim_target(
        &self,
        alert: AlertId,
        target: &Target,
        now: i64,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let key = target.key();
        let until = now + lease.as_millis() as i64;
        self.db
            .write(move |tx| {
                let row = tx
                    .query_row(
                        "SELECT status, lease_until, attempts FROM target_deliveries
                         WHERE alert_id = ?1 AND target = ?2",
                        params![alert.to_string(), key],
                        |r| Ok((r.get::<_, u8>(0)?, r.get::<_, i64>(1)?, r.get::<_, u32>(2)?)),
                    )
                    .optional()?;
                let Some((st, lease_until, attempts)) = row else {
                    return Ok(Claim::Unknown);
                };
                let claim = Claim::decide(status_of(st)?, lease_until, attempts, None, now);
                if let Claim::Claimed { attempt, .. } = claim {
                    tx.execute(
                        "UPDATE target_deliveries SET status = ?3, lease_until = ?4, attempts = ?5, updated_at = ?6
                         WHERE alert_id = ?1 AND target = ?2",
                        params![
                            alert.to_string(),
                            key,
                            DeliveryStatus::Sending.index(),
                            until,
                            attempt,
                            now
                        ],
                    )?;
                }
                Ok(claim)
            })
            .await
    }

    async fn record_target(
        &self,
        alert: AlertId,
        target: &Target,
        attempt: u32,
        outcome: &Outcome,
        report: Option<&NetworkReport>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let key = target.key();
        let (status, error) = outcome.status();
        let error = error.map(str::to_string);
        let report = report
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Permanent(e.to_string()))?;
        self.db
            .write(move |tx| {
                let n = tx.execute(
                    "UPDATE target_deliveries SET status = ?5, lease_until = 0, error = ?6,
                     report = COALESCE(?7, report), updated_at = ?8
                     WHERE alert_id = ?1 AND target = ?2 AND status = ?3 AND attempts = ?4",
                    params![
                        alert.to_string(),
                        key,
                        DeliveryStatus::Sending.index(),
                        attempt,
                        status.index(),
                        error,
                        report,
                        now
                    ],
                )?;
                Ok(n == 1)
            })
            .await
    }

    async fn fail_target(
        &self,
        alert: AlertId,
        target: &Target,
        reason: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let key = target.key();
        let reason = reason.to_string();
        self.db
            .write(move |tx| {
                let n = tx.execute(
                    "UPDATE target_deliveries SET status = ?3, lease_until = 0, error = ?4, updated_at = ?5
                     WHERE alert_id = ?1 AND target = ?2
                       AND (status = ?6 OR (status = ?7 AND lease_until <= ?5))",
                    params![
                        alert.to_string(),
                        key,
                        DeliveryStatus::Failed.index(),
                        reason,
                        now,
                        DeliveryStatus::Queued.index(),
                        DeliveryStatus::Sending.index()
                    ],
                )?;
                Ok(n == 1)
            })
            .await
    }

    async fn targets(&self, alert: AlertId) -> Result<Vec<TargetRow>, StoreError> {
        self.db
            .read(move |conn| {
                let mut q = conn.prepare_cached(
                    "SELECT target, status, attempts, report, error, updated_at
                     FROM target_deliveries WHERE alert_id = ?1 ORDER BY target",
                )?;
                let rows = q.query_map([alert.to_string()], |r| {
                    let key: String = r.get(0)?;
                    let report: Option<String> = r.get(3)?;
                    Ok(TargetRow {
                        target: Target::parse(&key)
                            .ok_or_else(|| bad_data(format!("bad target {key}")))?,
                        status: status_of(r.get(1)?)?,
                        attempts: r.get(2)?,
                        report: report
                            .map(|j| serde_json::from_str(&j))
                            .transpose()
                            .map_err(json_err)?,
                        error: r.get(4)?,
                        updated_at: r.get(5)?,
                    })
                })?;
                rows.collect()
            })
            .await
    }
}
