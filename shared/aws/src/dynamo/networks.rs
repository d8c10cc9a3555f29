//! Mobile networks, their cells (networks table) and the deliveries to
//! them (deliveries table), by access pattern:
//!
//! | items (pk / sk) | |
//! | --- | --- |
//! | `NETS`/`<name>` | a network: version, refreshed_at, counts, the index cells of its current version |
//! | `NETKEY#<key hash>`/`K` | which network a key belongs to |
//! | `CELL#<name>#<version>#<index cell>`/`<cell_id>` | a cell under one of its index cells (H3 res 5) |
//! | `T#<alert>`/`network:<name>` (deliveries table) | one network's delivery of an alert |
//!
//! A zone reads its index cells' partitions of the current version (one
//! Query each; never a Scan). A replacement writes the new version's items,
//! switches the network's version with a conditional update, then deletes
//! the old version's items.

use super::{DynamoStore, Item, Tx, get_s, item_from, key, n, row_from, s, sdk_err};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, WriteRequest};
use bealert_app::ports::{
    Claim, IndexedCell, Network, NetworkInfo, NetworkStore, Outcome, StoreError, TargetRow,
    TargetStore,
};
use bealert_core::AlertId;
use bealert_core::broadcast::{NetworkReport, Target};
use bealert_core::delivery::DeliveryStatus;
use bealert_core::network::CellRecord;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

const NETS: &str = "NETS";

fn cell_pk(name: &str, version: u64, parent: u64) -> String {
    format!("CELL#{name}#{version}#{parent:x}")
}

/// A network's item (`NETS`/`<name>`). `insert_network` puts the first
/// three; each replacement of the cells sets the rest with an update
/// expression (see `replace_cells`), so until the first they are absent.
#[derive(Serialize, Deserialize)]
struct NetworkRow {
    #[serde(default)]
    key_hash: String,
    #[serde(default)]
    created_at: i64,
    #[serde(default)]
    version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refreshed_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cells: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    active_devices: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    derived: Option<u64>,
    /// The current version's index cells, as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parents: Option<String>,
}

/// A network's key item (`NETKEY#<key hash>`/`K`).
#[derive(Serialize, Deserialize)]
struct NetworkKeyRow {
    name: String,
    created_at: i64,
}

/// A cell under one of its index cells (`CELL#...`/`<cell id>`): the
/// [`CellRecord`] and all its index cells, as JSON.
#[derive(Serialize, Deserialize)]
struct CellRow {
    body: String,
    parents: String,
}

/// A network's delivery of an alert (`T#<alert>`/`network:<name>`):
/// `plan_targets` puts it, claims and records change it with update
/// expressions (which set `error` and `report`).
#[derive(Serialize, Deserialize)]
struct TargetItem {
    status: u8,
    attempts: u32,
    lease_until: i64,
    updated_at: i64,
    /// The TTL (seconds).
    #[serde(default)]
    expires_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// The network's [`NetworkReport`], as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    report: Option<String>,
}

/// A network's info and its current version's index cells.
fn info_of(item: Item) -> Result<(NetworkInfo, Vec<u64>), StoreError> {
    let name = get_s(&item, "sk")?.to_string();
    let row: NetworkRow = row_from(item)?;
    let parents = row
        .parents
        .and_then(|p| serde_json::from_str(&p).ok())
        .unwrap_or_default();
    let info = NetworkInfo {
        name,
        version: row.version,
        refreshed_at: row.refreshed_at,
        cells: row.cells.unwrap_or(0),
        active_devices: row.active_devices.unwrap_or(0),
        derived: row.derived.unwrap_or(0),
    };
    Ok((info, parents))
}

fn status_of(v: u8) -> Result<DeliveryStatus, StoreError> {
    DeliveryStatus::from_index(v).ok_or_else(|| StoreError::Permanent(format!("bad status {v}")))
}

impl DynamoStore {
    async fn network_item(&self, name: &str) -> Result<Option<Item>, StoreError> {
        self.usage.request();
        Ok(self
            .client
            .get_item()
            .table_name(&self.tables.networks)
            .set_key(Some(key(NETS, name)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_err)?
            .item)
    }

    /// Deletes every item of one version of a network's cells.
    async fn delete_version(
        &self,
        name: &str,
        version: u64,
        parents: &[u64],
    ) -> Result<(), StoreError> {
        let table = self.tables.networks.clone();
        let mut deletes = Vec::new();
        for p in parents {
            let pk = cell_pk(name, version, *p);
            for item in self
                .query_all(&table, &pk, None, None, Some("pk, sk"))
                .await?
            {
                let k = key(pk.clone(), get_s(&item, "sk")?.to_string());
                deletes.push(
                    WriteRequest::builder()
                        .delete_request(
                            aws_sdk_dynamodb::types::DeleteRequest::builder()
                                .set_key(Some(k))
                                .build()
                                .map_err(|e| StoreError::Permanent(e.to_string()))?,
                        )
                        .build(),
                );
            }
        }
        self.batch_write(&table, deletes).await
    }
}

#[async_trait]
impl NetworkStore for DynamoStore {
    async fn insert_network(&self, network: &Network) -> Result<(), StoreError> {
        let listed = item_from(
            key(NETS, &network.name),
            &NetworkRow {
                key_hash: network.key_hash.clone(),
                created_at: network.created_at,
                version: 0,
                refreshed_at: None,
                cells: None,
                active_devices: None,
                derived: None,
                parents: None,
            },
        )?;
        let by_key = item_from(
            key(format!("NETKEY#{}", network.key_hash), "K"),
            &NetworkKeyRow {
                name: network.name.clone(),
                created_at: network.created_at,
            },
        )?;
        let put = |item| {
            Put::builder()
                .table_name(&self.tables.networks)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map(|p| TransactWriteItem::builder().put(p).build())
                .map_err(|e| StoreError::Permanent(e.to_string()))
        };
        match self.transact(vec![put(listed)?, put(by_key)?]).await? {
            Tx::Committed => Ok(()),
            Tx::Cancelled(_) => Err(StoreError::Conflict(format!(
                "network {:?} exists",
                network.name
            ))),
        }
    }

    async fn network_by_key_hash(&self, key_hash: &str) -> Result<Option<Network>, StoreError> {
        self.usage.request();
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.networks)
            .set_key(Some(key(format!("NETKEY#{key_hash}"), "K")))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_err)?;
        out.item
            .map(|item| {
                let row: NetworkKeyRow = row_from(item)?;
                Ok(Network {
                    name: row.name,
                    key_hash: key_hash.to_string(),
                    created_at: row.created_at,
                })
            })
            .transpose()
    }

    async fn networks(&self) -> Result<Vec<NetworkInfo>, StoreError> {
        let items = self
            .query_all(&self.tables.networks, NETS, None, None, None)
            .await?;
        items
            .into_iter()
            .map(|i| info_of(i).map(|(info, _)| info))
            .collect()
    }

    async fn replace_cells(
        &self,
        network: &str,
        cells: Arc<[IndexedCell]>,
        refreshed_at: i64,
    ) -> Result<NetworkInfo, StoreError> {
        let current = self
            .network_item(network)
            .await?
            .ok_or_else(|| StoreError::Permanent(format!("no network named {network}")))?;
        let (old, old_parents) = info_of(current)?;
        let version = old.version + 1;
        let mut parents: BTreeSet<u64> = BTreeSet::new();
        let mut puts = Vec::new();
        for c in cells.iter() {
            let row = CellRow {
                body: serde_json::to_string(&c.record)
                    .map_err(|e| StoreError::Permanent(e.to_string()))?,
                parents: serde_json::to_string(&c.parents)
                    .map_err(|e| StoreError::Permanent(e.to_string()))?,
            };
            for p in &c.parents {
                parents.insert(*p);
                let item = item_from(key(cell_pk(network, version, *p), &c.record.cell_id), &row)?;
                puts.push(
                    WriteRequest::builder()
                        .put_request(
                            aws_sdk_dynamodb::types::PutRequest::builder()
                                .set_item(Some(item))
                                .build()
                                .map_err(|e| StoreError::Permanent(e.to_string()))?,
                        )
                        .build(),
                );
            }
        }
        let table = self.tables.networks.clone();
        self.batch_write(&table, puts).await?;
        let devices: u64 = cells.iter().map(|c| c.record.active_devices).sum();
        let derived = cells.iter().filter(|c| c.record.derived).count() as u64;
        let parents: Vec<u64> = parents.into_iter().collect();
        self.usage.request();
        let switched = self
            .client
            .update_item()
            .table_name(&table)
            .set_key(Some(key(NETS, network)))
            .update_expression(
                "SET version = :v, refreshed_at = :at, cells = :c, active_devices = :d, derived = :dr, parents = :p",
            )
            .condition_expression("version = :old")
            .expression_attribute_values(":v", n(version))
            .expression_attribute_values(":old", n(old.version))
            .expression_attribute_values(":at", n(refreshed_at))
            .expression_attribute_values(":c", n(cells.len()))
            .expression_attribute_values(":d", n(devices))
            .expression_attribute_values(":dr", n(derived))
            .expression_attribute_values(
                ":p",
                s(serde_json::to_string(&parents).unwrap_or_default()),
            )
            .send()
            .await;
        match switched {
            Ok(_) => {}
            Err(e) if super::alerts::is_condition_failure(&e) => {
                // Another replacement won: this version's items go.
                self.delete_version(network, version, &parents).await?;
                return Err(StoreError::Conflict(format!(
                    "{network}'s cells were replaced by another upload meanwhile; send yours again"
                )));
            }
            Err(e) => return Err(sdk_err(e)),
        }
        if old.version > 0
            && let Err(e) = self
                .delete_version(network, old.version, &old_parents)
                .await
        {
            tracing::warn!(network, version = old.version, error = %e, "old cells not deleted");
        }
        Ok(NetworkInfo {
            name: network.to_string(),
            version,
            refreshed_at: Some(refreshed_at),
            cells: cells.len() as u64,
            active_devices: devices,
            derived,
        })
    }

    async fn cells_in(
        &self,
        network: &str,
        parents: &[u64],
    ) -> Result<Vec<IndexedCell>, StoreError> {
        let Some(item) = self.network_item(network).await? else {
            return Ok(Vec::new());
        };
        let version = info_of(item)?.0.version;
        if version == 0 {
            return Ok(Vec::new());
        }
        let table = self.tables.networks.clone();
        let pages: Vec<Vec<Item>> = futures::stream::iter(parents.iter().copied())
            .map(|p| {
                let table = table.clone();
                async move {
                    self.query_all(&table, &cell_pk(network, version, p), None, None, None)
                        .await
                }
            })
            .buffer_unordered(8)
            .try_collect()
            .await?;
        let mut out: HashMap<String, IndexedCell> = HashMap::new();
        for item in pages.into_iter().flatten() {
            let id = get_s(&item, "sk")?.to_string();
            if out.contains_key(&id) {
                continue;
            }
            let row: CellRow = row_from(item)?;
            let record: CellRecord = serde_json::from_str(&row.body)
                .map_err(|e| StoreError::Permanent(e.to_string()))?;
            let parents: Vec<u64> = serde_json::from_str(&row.parents)
                .map_err(|e| StoreError::Permanent(e.to_string()))?;
            out.insert(id, IndexedCell { record, parents });
        }
        Ok(out.into_values().collect())
    }
}

fn target_key(alert: AlertId, target: &Target) -> Item {
    key(format!("T#{alert}"), target.key())
}

#[async_trait]
impl TargetStore for DynamoStore {
    async fn plan_targets(
        &self,
        alert: AlertId,
        targets: &[Target],
        now: i64,
    ) -> Result<(), StoreError> {
        for t in targets {
            let item = item_from(
                target_key(alert, t),
                &TargetItem {
                    status: DeliveryStatus::Queued.index(),
                    attempts: 0,
                    lease_until: 0,
                    updated_at: now,
                    expires_at: self.expires_at(now),
                    error: None,
                    report: None,
                },
            )?;
            self.usage.request();
            match self
                .client
                .put_item()
                .table_name(&self.tables.deliveries)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await
            {
                Ok(_) => {}
                Err(e) if super::alerts::is_condition_failure(&e) => {}
                Err(e) => return Err(sdk_err(e)),
            }
        }
        Ok(())
    }

    async fn claim_target(
        &self,
        alert: AlertId,
        target: &Target,
        now: i64,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        for _ in 0..5 {
            self.usage.request();
            let Some(item) = self
                .client
                .get_item()
                .table_name(&self.tables.deliveries)
                .set_key(Some(target_key(alert, target)))
                .consistent_read(true)
                .send()
                .await
                .map_err(sdk_err)?
                .item
            else {
                return Ok(Claim::Unknown);
            };
            let TargetItem {
                status,
                attempts,
                lease_until,
                ..
            } = row_from(item)?;
            let claim = Claim::decide(status_of(status)?, lease_until, attempts, None, now);
            let Claim::Claimed { attempt, .. } = claim else {
                return Ok(claim);
            };
            // Taken only if the item is still as read.
            self.usage.request();
            let taken = self
                .client
                .update_item()
                .table_name(&self.tables.deliveries)
                .set_key(Some(target_key(alert, target)))
                .update_expression(
                    "SET #st = :sending, lease_until = :until, attempts = :a, updated_at = :now",
                )
                .condition_expression("#st = :was AND attempts = :read")
                .expression_attribute_names("#st", "status")
                .expression_attribute_values(":sending", n(DeliveryStatus::Sending.index()))
                .expression_attribute_values(":until", n(now + lease.as_millis() as i64))
                .expression_attribute_values(":a", n(attempt))
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":was", n(status))
                .expression_attribute_values(":read", n(attempts))
                .send()
                .await;
            match taken {
                Ok(_) => return Ok(claim),
                Err(e) if super::alerts::is_condition_failure(&e) => continue,
                Err(e) => return Err(sdk_err(e)),
            }
        }
        Err(StoreError::Transient(format!(
            "{target} of alert {alert} kept changing while being claimed"
        )))
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
        let (status, error) = outcome.status();
        let mut set = vec!["#st = :status", "lease_until = :zero", "updated_at = :now"];
        let mut req = self
            .client
            .update_item()
            .table_name(&self.tables.deliveries)
            .set_key(Some(target_key(alert, target)))
            .condition_expression("#st = :sending AND attempts = :attempt")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":status", n(status.index()))
            .expression_attribute_values(":sending", n(DeliveryStatus::Sending.index()))
            .expression_attribute_values(":attempt", n(attempt))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":now", n(now));
        let mut remove = Vec::new();
        match error {
            Some(e) => {
                set.push("#err = :err");
                req = req
                    .expression_attribute_names("#err", "error")
                    .expression_attribute_values(":err", s(e));
            }
            None => {
                remove.push("#err");
                req = req.expression_attribute_names("#err", "error");
            }
        }
        if let Some(r) = report {
            set.push("report = :report");
            req = req.expression_attribute_values(
                ":report",
                s(serde_json::to_string(r).map_err(|e| StoreError::Permanent(e.to_string()))?),
            );
        }
        let mut expr = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expr.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        self.usage.request();
        match req.update_expression(expr).send().await {
            Ok(_) => Ok(true),
            Err(e) if super::alerts::is_condition_failure(&e) => Ok(false),
            Err(e) => Err(sdk_err(e)),
        }
    }

    async fn fail_target(
        &self,
        alert: AlertId,
        target: &Target,
        reason: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.usage.request();
        let out = self
            .client
            .update_item()
            .table_name(&self.tables.deliveries)
            .set_key(Some(target_key(alert, target)))
            .update_expression("SET #st = :failed, lease_until = :zero, #err = :err, updated_at = :now")
            .condition_expression(
                "attribute_exists(pk) AND (#st = :queued OR (#st = :sending AND lease_until <= :now))",
            )
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#err", "error")
            .expression_attribute_values(":failed", n(DeliveryStatus::Failed.index()))
            .expression_attribute_values(":queued", n(DeliveryStatus::Queued.index()))
            .expression_attribute_values(":sending", n(DeliveryStatus::Sending.index()))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":err", s(reason))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match out {
            Ok(_) => Ok(true),
            Err(e) if super::alerts::is_condition_failure(&e) => Ok(false),
            Err(e) => Err(sdk_err(e)),
        }
    }

    async fn targets(&self, alert: AlertId) -> Result<Vec<TargetRow>, StoreError> {
        let items = self
            .query_all(
                &self.tables.deliveries,
                &format!("T#{alert}"),
                None,
                None,
                None,
            )
            .await?;
        let mut rows = items
            .into_iter()
            .map(|item| {
                let k = get_s(&item, "sk")?;
                let target = Target::parse(k)
                    .ok_or_else(|| StoreError::Permanent(format!("bad target {k}")))?;
                let row: TargetItem = row_from(item)?;
                Ok(TargetRow {
                    target,
                    status: status_of(row.status)?,
                    attempts: row.attempts,
                    report: row
                        .report
                        .map(|r| serde_json::from_str(&r))
                        .transpose()
                        .map_err(|e| StoreError::Permanent(e.to_string()))?,
                    error: row.error,
                    updated_at: row.updated_at,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        rows.sort_by(|a, b| a.target.cmp(&b.target));
        Ok(rows)
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

    fn sv(v: &str) -> A {
        A::S(v.into())
    }

    fn nv(v: &str) -> A {
        A::N(v.into())
    }

    /// Each item kind keeps exactly its attributes and their types; what
    /// update expressions set later is absent (not NULL) from a put.
    #[test]
    fn rows_store_the_same_attributes_as_before() -> Result<(), StoreError> {
        let listed = item_from(
            key(NETS, "orange"),
            &NetworkRow {
                key_hash: "h".into(),
                created_at: 5,
                version: 0,
                refreshed_at: None,
                cells: None,
                active_devices: None,
                derived: None,
                parents: None,
            },
        )?;
        assert_eq!(
            attrs(&listed),
            [
                ("created_at", &nv("5")),
                ("key_hash", &sv("h")),
                ("pk", &sv("NETS")),
                ("sk", &sv("orange")),
                ("version", &nv("0")),
            ]
        );
        // After a replacement (the update expression's attributes).
        let mut updated = listed.clone();
        updated.insert("version".into(), nv("2"));
        updated.insert("refreshed_at".into(), nv("9"));
        updated.insert("cells".into(), nv("3"));
        updated.insert("active_devices".into(), nv("40"));
        updated.insert("derived".into(), nv("1"));
        updated.insert("parents".into(), sv("[7,8]"));
        let (info, parents) = info_of(updated)?;
        assert_eq!(
            (
                info.name.as_str(),
                info.version,
                info.refreshed_at,
                info.cells
            ),
            ("orange", 2, Some(9), 3)
        );
        assert_eq!(
            (info.active_devices, info.derived, parents),
            (40, 1, vec![7, 8])
        );
        let (fresh, none) = info_of(listed)?;
        assert_eq!(
            (fresh.version, fresh.refreshed_at, fresh.cells),
            (0, None, 0)
        );
        assert!(none.is_empty());

        let by_key = item_from(
            key("NETKEY#h", "K"),
            &NetworkKeyRow {
                name: "orange".into(),
                created_at: 5,
            },
        )?;
        assert_eq!(
            attrs(&by_key),
            [
                ("created_at", &nv("5")),
                ("name", &sv("orange")),
                ("pk", &sv("NETKEY#h")),
                ("sk", &sv("K")),
            ]
        );

        let cell = item_from(
            key("CELL#orange#1#85", "c1"),
            &CellRow {
                body: "{}".into(),
                parents: "[133]".into(),
            },
        )?;
        assert_eq!(
            attrs(&cell),
            [
                ("body", &sv("{}")),
                ("parents", &sv("[133]")),
                ("pk", &sv("CELL#orange#1#85")),
                ("sk", &sv("c1")),
            ]
        );

        let planned = item_from(
            key("T#a1", "network:orange"),
            &TargetItem {
                status: 0,
                attempts: 0,
                lease_until: 0,
                updated_at: 1_700_000_000_000,
                expires_at: 1_707_776_000,
                error: None,
                report: None,
            },
        )?;
        assert_eq!(
            attrs(&planned),
            [
                ("attempts", &nv("0")),
                ("expires_at", &nv("1707776000")),
                ("lease_until", &nv("0")),
                ("pk", &sv("T#a1")),
                ("sk", &sv("network:orange")),
                ("status", &nv("0")),
                ("updated_at", &nv("1700000000000")),
            ]
        );
        let mut recorded = planned;
        recorded.insert("error".into(), sv("refused"));
        recorded.insert("report".into(), sv("{}"));
        let back: TargetItem = row_from(recorded)?;
        assert_eq!(
            (back.error.as_deref(), back.report.as_deref()),
            (Some("refused"), Some("{}"))
        );
        Ok(())
    }
}
