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

use super::{DynamoStore, Item, Tx, get_n, get_s, key, n, opt_n, opt_s, s, sdk_err};
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
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

const NETS: &str = "NETS";

fn cell_pk(name: &str, version: u64, parent: u64) -> String {
    format!("CELL#{name}#{version}#{parent:x}")
}

fn info_of(item: &Item) -> Result<NetworkInfo, StoreError> {
    Ok(NetworkInfo {
        name: get_s(item, "sk")?.to_string(),
        version: opt_n(item, "version")?.unwrap_or(0),
        refreshed_at: opt_n(item, "refreshed_at")?,
        cells: opt_n(item, "cells")?.unwrap_or(0),
        active_devices: opt_n(item, "active_devices")?.unwrap_or(0),
        derived: opt_n(item, "derived")?.unwrap_or(0),
    })
}

fn parents_of(item: &Item) -> Vec<u64> {
    opt_s(item, "parents")
        .and_then(|p| serde_json::from_str(&p).ok())
        .unwrap_or_default()
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
        let mut listed = key(NETS, &network.name);
        listed.insert("key_hash".into(), s(&network.key_hash));
        listed.insert("created_at".into(), n(network.created_at));
        listed.insert("version".into(), n(0));
        let mut by_key = key(format!("NETKEY#{}", network.key_hash), "K");
        by_key.insert("name".into(), s(&network.name));
        by_key.insert("created_at".into(), n(network.created_at));
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
                Ok(Network {
                    name: get_s(&item, "name")?.to_string(),
                    key_hash: key_hash.to_string(),
                    created_at: get_n(&item, "created_at")?,
                })
            })
            .transpose()
    }

    async fn networks(&self) -> Result<Vec<NetworkInfo>, StoreError> {
        let items = self
            .query_all(&self.tables.networks, NETS, None, None, None)
            .await?;
        items.iter().map(info_of).collect()
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
        let old = info_of(&current)?;
        let old_parents = parents_of(&current);
        let version = old.version + 1;
        let mut parents: BTreeSet<u64> = BTreeSet::new();
        let mut puts = Vec::new();
        for c in cells.iter() {
            let body = serde_json::to_string(&c.record)
                .map_err(|e| StoreError::Permanent(e.to_string()))?;
            let ps = serde_json::to_string(&c.parents)
                .map_err(|e| StoreError::Permanent(e.to_string()))?;
            for p in &c.parents {
                parents.insert(*p);
                let mut item = key(cell_pk(network, version, *p), &c.record.cell_id);
                item.insert("body".into(), s(&body));
                item.insert("parents".into(), s(&ps));
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
        let version = info_of(&item)?.version;
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
            let record: CellRecord = serde_json::from_str(get_s(&item, "body")?)
                .map_err(|e| StoreError::Permanent(e.to_string()))?;
            let parents: Vec<u64> = serde_json::from_str(get_s(&item, "parents")?)
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
            let mut item = target_key(alert, t);
            item.insert("status".into(), n(DeliveryStatus::Queued.index()));
            item.insert("attempts".into(), n(0));
            item.insert("lease_until".into(), n(0));
            item.insert("updated_at".into(), n(now));
            item.insert("expires_at".into(), n(self.expires_at(now)));
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
            let status: u8 = get_n(&item, "status")?;
            let attempts: u32 = get_n(&item, "attempts")?;
            let lease_until: i64 = get_n(&item, "lease_until")?;
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
            .iter()
            .map(|item| {
                let k = get_s(item, "sk")?;
                Ok(TargetRow {
                    target: Target::parse(k)
                        .ok_or_else(|| StoreError::Permanent(format!("bad target {k}")))?,
                    status: status_of(get_n(item, "status")?)?,
                    attempts: get_n(item, "attempts")?,
                    report: opt_s(item, "report")
                        .map(|r| serde_json::from_str(&r))
                        .transpose()
                        .map_err(|e| StoreError::Permanent(e.to_string()))?,
                    error: opt_s(item, "error"),
                    updated_at: get_n(item, "updated_at")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        rows.sort_by(|a, b| a.target.cmp(&b.target));
        Ok(rows)
    }
}
