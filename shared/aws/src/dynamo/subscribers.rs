//! Subscriber items: the profile, one item per address (keyed by H3 cell,
//! carrying the contact so resolution reads each address once) and one per
//! group membership, and one per unit an address is recorded in (keyed by
//! unit and part, so "everyone registered in municipality X" is a query).

use super::Tx;
use super::{DynamoStore, Item, item_from, key, n, row_from, s, sdk_err};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use bealert_app::ports::{
    AddressItem, StoreError, SubscriberPage, SubscriberStore, UNIT_PARTS, Upsert, unit_part,
};
use bealert_core::subscriber::{Contact, SubscriberProfile};
use bealert_core::{ChannelSet, Language, SubscriberId};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Cells queried at once.
const PARALLEL_CELLS: usize = 16;
/// Ranges a dense cell's remaining items are read in, in parallel.
const DENSE_RANGES: u32 = 4;

fn profile_pk(id: SubscriberId) -> String {
    format!("S#{id}")
}

fn cell_pk(cell: u64) -> String {
    format!("C#{cell:015x}")
}

/// A byte from the id's hash, so a dense cell's sort keys spread evenly
/// and can be read in parallel ranges.
fn spread(id: SubscriberId) -> u8 {
    ((id.as_i64() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
}

/// A unit's address items, in parts read in parallel.
fn unit_pk(unit: &str, part: u32) -> String {
    format!("U#{unit}#{part:02}")
}

fn address_sk(id: SubscriberId, idx: usize) -> String {
    format!("{:02x}#{id}#{idx}", spread(id))
}

/// What every item of a subscriber carries: the id and the contact (a
/// group member's item, `G#<group>`/`<id>`, is only this).
#[derive(Serialize, Deserialize, Clone)]
struct ContactRow {
    id: String,
    /// [`Language::index`].
    lang: u8,
    /// [`ChannelSet::bits`].
    ch: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ext: Option<String>,
}

/// The profile item (`S#<id>`/`P`): the contact, the profile as JSON and
/// its version `v` (the condition of the next write; 0 when absent, for
/// items written before versions).
#[derive(Serialize, Deserialize)]
struct ProfileRow {
    #[serde(flatten)]
    contact: ContactRow,
    profile: String,
    #[serde(default)]
    v: u64,
}

/// An address item (`C#<cell>`/`<spread>#<id>#<n>`): the contact, the
/// point and how many addresses the subscriber has; the same item under
/// each unit the point is in (`U#<unit>#<part>`) also names its `cell`.
#[derive(Serialize, Deserialize, Clone)]
struct AddressRow {
    #[serde(flatten)]
    contact: ContactRow,
    lat: f64,
    lon: f64,
    n: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cell: Option<u64>,
}

fn contact_row(id: SubscriberId, p: &SubscriberProfile) -> ContactRow {
    ContactRow {
        id: id.to_string(),
        lang: p.language.index(),
        ch: p.channels.bits(),
        phone: p.phone.clone(),
        email: p.email.clone(),
        ext: p.external_id.clone(),
    }
}

fn contact_of(row: ContactRow, with_contacts: bool) -> Result<Contact, StoreError> {
    Ok(Contact {
        subscriber_id: row.id.parse().map_err(StoreError::Permanent)?,
        language: Language::from_index(row.lang)
            .ok_or_else(|| StoreError::Permanent(format!("bad language {}", row.lang)))?,
        channels: ChannelSet::from_bits(row.ch),
        phone: row.phone.filter(|_| with_contacts),
        email: row.email.filter(|_| with_contacts),
        external_id: row.ext.filter(|_| with_contacts),
    })
}

/// An address item read with the cell it was found in (`None`: a unit's
/// item, which names it).
fn address_of(
    item: Item,
    cell: Option<u64>,
    with_contacts: bool,
) -> Result<AddressItem, StoreError> {
    let row: AddressRow = row_from(item)?;
    Ok(AddressItem {
        cell: cell.or(row.cell).ok_or_else(|| {
            StoreError::Permanent(format!("address item of {} without a cell", row.contact.id))
        })?,
        lat: row.lat,
        lon: row.lon,
        address_count: u8::try_from(row.n).map_err(|_| {
            StoreError::Permanent(format!("{} has {} addresses", row.contact.id, row.n))
        })?,
        contact: contact_of(row.contact, with_contacts)?,
    })
}

/// Every item a profile at version `v` is stored as, by key.
fn items_of(id: SubscriberId, p: &SubscriberProfile, v: u64) -> Result<Vec<Item>, StoreError> {
    let mut out = Vec::with_capacity(1 + p.addresses.len() + p.groups.len());
    let contact = contact_row(id, p);
    let profile = ProfileRow {
        contact: contact.clone(),
        profile: serde_json::to_string(p).map_err(|e| StoreError::Permanent(e.to_string()))?,
        v,
    };
    out.push(item_from(key(profile_pk(id), "P"), &profile)?);
    for (i, a) in p.addresses.iter().enumerate() {
        let sk = address_sk(id, i);
        let row = AddressRow {
            contact: contact.clone(),
            lat: a.lat,
            lon: a.lon,
            n: p.addresses.len(),
            cell: None,
        };
        for u in &a.units {
            let in_unit = AddressRow {
                cell: Some(a.cell),
                ..row.clone()
            };
            out.push(item_from(key(unit_pk(u, unit_part(id)), &sk), &in_unit)?);
        }
        out.push(item_from(key(cell_pk(a.cell), sk), &row)?);
    }
    for g in &p.groups {
        out.push(item_from(key(format!("G#{g}"), id.to_string()), &contact)?);
    }
    Ok(out)
}

/// The (pk, sk) of an item.
fn key_of(item: &Item) -> (String, String) {
    let part = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    (part("pk"), part("sk"))
}

impl DynamoStore {
    /// Every page of one query, following `LastEvaluatedKey`.
    pub(crate) async fn query_all(
        &self,
        table: &str,
        pk: &str,
        range: Option<(String, String)>,
        start: Option<Item>,
        projection: Option<&str>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start = start;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(table)
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_values(":pk", s(pk))
                .set_exclusive_start_key(start.take());
            q = match &range {
                Some((lo, hi)) => q
                    .key_condition_expression("#pk = :pk AND #sk BETWEEN :lo AND :hi")
                    .expression_attribute_names("#sk", "sk")
                    .expression_attribute_values(":lo", s(lo.clone()))
                    .expression_attribute_values(":hi", s(hi.clone())),
                None => q.key_condition_expression("#pk = :pk"),
            };
            if let Some(p) = projection {
                q = q.projection_expression(p);
            }
            self.usage.request();
            let resp = q.send().await.map_err(sdk_err)?;
            let items = resp.items.unwrap_or_default();
            self.usage.read(items.len());
            out.extend(items);
            match resp.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    /// A cell's address items: one query, and if the cell is dense (more
    /// than one page), the rest read as parallel ranges of the sort key.
    async fn cell_items(&self, cell: u64, projection: &str) -> Result<Vec<Item>, StoreError> {
        let table = &self.tables.subscribers;
        let pk = cell_pk(cell);
        self.usage.request();
        let first = self
            .client
            .query()
            .table_name(table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_values(":pk", s(&pk))
            .projection_expression(projection)
            .send()
            .await
            .map_err(sdk_err)?;
        let mut items = first.items.unwrap_or_default();
        self.usage.read(items.len());
        let Some(last) = first.last_evaluated_key.filter(|k| !k.is_empty()) else {
            return Ok(items);
        };
        // Dense: finish the current spread byte, then split the rest.
        let last_sk = last
            .get("sk")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        let byte = u32::from_str_radix(last_sk.get(..2).unwrap_or("00"), 16).unwrap_or(0);
        let mut ranges: Vec<(Option<Item>, String, String)> =
            vec![(Some(last), last_sk.clone(), format!("{byte:02x}#~"))];
        let rest = 255u32.saturating_sub(byte);
        for r in 0..DENSE_RANGES.min(rest) {
            let lo = byte + 1 + r * rest / DENSE_RANGES.min(rest);
            let hi = byte + (r + 1) * rest / DENSE_RANGES.min(rest);
            ranges.push((None, format!("{lo:02x}#"), format!("{hi:02x}#~")));
        }
        let parts: Vec<Vec<Item>> = futures::stream::iter(ranges)
            .map(|(start, lo, hi)| {
                let pk = pk.clone();
                async move {
                    self.query_all(table, &pk, Some((lo, hi)), start, Some(projection))
                        .await
                }
            })
            .buffer_unordered(DENSE_RANGES as usize + 1)
            .try_collect()
            .await?;
        items.extend(parts.into_iter().flatten());
        Ok(items)
    }
}

/// Subscribers written at once, each in its own transaction.
const PARALLEL_UPSERTS: usize = 32;
/// Re-reads of a subscriber whose profile changed under an upsert.
const MAX_UPSERT_ROUNDS: u32 = 10;

/// A stored profile and its version (0 for items written before versions).
struct Stored {
    version: u64,
    profile: SubscriberProfile,
}

/// A profile item's subscriber and what is stored.
fn stored_of(item: Item) -> Result<(SubscriberId, Stored), StoreError> {
    let row: ProfileRow = row_from(item)?;
    let stored = Stored {
        version: row.v,
        profile: serde_json::from_str(&row.profile)
            .map_err(|e| StoreError::Permanent(e.to_string()))?,
    };
    Ok((
        row.contact.id.parse().map_err(StoreError::Permanent)?,
        stored,
    ))
}

/// The condition a profile put carries: what the upsert read must still hold.
fn profile_condition(
    stored: Option<&Stored>,
) -> (&'static str, Vec<(&'static str, AttributeValue)>) {
    match stored {
        None => ("attribute_not_exists(#pk)", vec![]),
        Some(old) if old.version == 0 => {
            ("attribute_exists(#pk) AND attribute_not_exists(#v)", vec![])
        }
        Some(old) => ("#v = :v", vec![(":v", n(old.version))]),
    }
}

fn tx_put(
    table: &str,
    item: Item,
    condition: Option<(&'static str, Vec<(&'static str, AttributeValue)>)>,
) -> Result<TransactWriteItem, StoreError> {
    let mut put = Put::builder().table_name(table).set_item(Some(item));
    if let Some((expr, values)) = condition {
        put = put.condition_expression(expr);
        for name in ["pk", "v"] {
            if expr.contains(&format!("#{name}")) {
                put = put.expression_attribute_names(format!("#{name}"), name);
            }
        }
        for (k, v) in values {
            put = put.expression_attribute_values(k, v);
        }
    }
    Ok(TransactWriteItem::builder()
        .put(
            put.build()
                .map_err(|e| StoreError::Permanent(e.to_string()))?,
        )
        .build())
}

/// A subscriber's transaction: true if it committed, false if the
/// version condition failed (read again and retry), an error otherwise.
fn committed(tx: Tx, id: SubscriberId, doing: &str) -> Result<bool, StoreError> {
    match tx {
        Tx::Committed => Ok(true),
        Tx::Cancelled(reasons)
            if reasons
                .first()
                .is_some_and(|(code, _)| code == "ConditionalCheckFailed") =>
        {
            Ok(false)
        }
        Tx::Cancelled(reasons) => Err(StoreError::Permanent(format!(
            "{doing} subscriber {id} was refused: {:?}",
            reasons.iter().map(|(c, _)| c).collect::<Vec<_>>()
        ))),
    }
}

/// DynamoDB's limit on the actions of one transaction.
const MAX_TX_ACTIONS: usize = 100;

/// The actions that replace what `stored` wrote with `profile`'s items:
/// the profile put, conditioned on the version read, every new item, and
/// the deletes of old items the new ones do not overwrite.
fn replace_actions(
    table: &str,
    id: SubscriberId,
    profile: &SubscriberProfile,
    stored: Option<&Stored>,
) -> Result<Vec<TransactWriteItem>, StoreError> {
    let version = stored.map_or(0, |s| s.version);
    let items = items_of(id, profile, version + 1)?;
    let new_keys: HashSet<(String, String)> = items.iter().map(key_of).collect();
    let mut actions = Vec::with_capacity(items.len() * 2);
    let mut items = items.into_iter();
    if let Some(first) = items.next() {
        actions.push(tx_put(table, first, Some(profile_condition(stored)))?);
    }
    for item in items {
        actions.push(tx_put(table, item, None)?);
    }
    if let Some(old) = stored {
        for old_item in items_of(id, &old.profile, old.version)? {
            let (pk, sk) = key_of(&old_item);
            if !new_keys.contains(&(pk.clone(), sk.clone())) {
                actions.push(
                    TransactWriteItem::builder()
                        .delete(
                            Delete::builder()
                                .table_name(table)
                                .set_key(Some(key(pk, sk)))
                                .build()
                                .map_err(|e| StoreError::Permanent(e.to_string()))?,
                        )
                        .build(),
                );
            }
        }
    }
    if actions.len() > MAX_TX_ACTIONS {
        return Err(StoreError::Conflict(format!(
            "subscriber {id}: this change rewrites {} items at once (addresses, their units and groups all changed), \
             more than the {MAX_TX_ACTIONS} one transaction holds; make it in two steps",
            actions.len()
        )));
    }
    Ok(actions)
}

impl DynamoStore {
    /// One subscriber, per the port's rule, in one transaction: the profile
    /// put is conditioned on the version read, and carries the deletes of
    /// the old address and group items and the puts of the new ones. A
    /// concurrent upsert of the same subscriber makes the condition fail;
    /// this one then re-reads and goes again, so the last to commit leaves
    /// exactly its own items.
    async fn upsert_one(
        &self,
        id: SubscriberId,
        profile: &SubscriberProfile,
        mut stored: Option<Stored>,
    ) -> Result<Upsert, StoreError> {
        let table = &self.tables.subscribers;
        for round in 0..MAX_UPSERT_ROUNDS {
            if round > 0 {
                stored = self.read_profile(id).await?;
            }
            let same_subscriber = stored
                .as_ref()
                .map(|old| old.profile.is_same_subscriber(profile));
            if same_subscriber == Some(false) {
                return Ok(Upsert::IdTaken);
            }
            let actions = replace_actions(table, id, profile, stored.as_ref())?;
            if committed(self.transact(actions).await?, id, "storing")? {
                return Ok(if stored.is_some() {
                    Upsert::Updated
                } else {
                    Upsert::Created
                });
            }
        }
        Err(StoreError::Transient(format!(
            "subscriber {id} kept changing under {MAX_UPSERT_ROUNDS} upserts; try again"
        )))
    }

    async fn read_profile(&self, id: SubscriberId) -> Result<Option<Stored>, StoreError> {
        self.usage.request();
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.subscribers)
            .set_key(Some(key(profile_pk(id), "P")))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_err)?;
        self.usage.read(usize::from(out.item.is_some()));
        out.item
            .map(|item| stored_of(item).map(|(_, stored)| stored))
            .transpose()
    }
}

#[async_trait]
impl SubscriberStore for DynamoStore {
    async fn upsert_subscribers(
        &self,
        subscribers: Arc<[(SubscriberId, SubscriberProfile)]>,
    ) -> Result<Vec<Upsert>, StoreError> {
        // What is stored under these ids now: one batch read for all.
        let ids: HashSet<SubscriberId> = subscribers.iter().map(|(id, _)| *id).collect();
        let keys: Vec<Item> = ids.iter().map(|id| key(profile_pk(*id), "P")).collect();
        let mut existing: HashMap<SubscriberId, Stored> = HashMap::new();
        for item in self.batch_get(&self.tables.subscribers, keys).await? {
            let (id, stored) = stored_of(item)?;
            existing.insert(id, stored);
        }

        // Entries for one id are applied in order; different ids in parallel.
        let mut by_id: HashMap<SubscriberId, Vec<usize>> = HashMap::new();
        for (i, (id, _)) in subscribers.iter().enumerate() {
            by_id.entry(*id).or_default().push(i);
        }
        let groups: Vec<(SubscriberId, Vec<usize>, Option<Stored>)> = by_id
            .into_iter()
            .map(|(id, idx)| {
                let stored = existing.remove(&id);
                (id, idx, stored)
            })
            .collect();
        let answers: Vec<Vec<(usize, Upsert)>> = futures::stream::iter(groups)
            .map(|(id, indexes, stored)| {
                let subscribers = subscribers.clone();
                async move {
                    let mut out = Vec::with_capacity(indexes.len());
                    let mut stored = stored;
                    for (k, i) in indexes.into_iter().enumerate() {
                        if k > 0 {
                            stored = self.read_profile(id).await?;
                        }
                        out.push((
                            i,
                            self.upsert_one(id, &subscribers[i].1, stored.take())
                                .await?,
                        ));
                    }
                    Ok::<_, StoreError>(out)
                }
            })
            .buffer_unordered(PARALLEL_UPSERTS)
            .try_collect()
            .await?;
        let mut result = vec![Upsert::IdTaken; subscribers.len()];
        for (i, answer) in answers.into_iter().flatten() {
            result[i] = answer;
        }

        let created = result.iter().filter(|u| **u == Upsert::Created).count();
        if created > 0 {
            self.usage.request();
            self.client
                .update_item()
                .table_name(&self.tables.subscribers)
                .set_key(Some(key("COUNT", "COUNT")))
                .update_expression("ADD #n :c")
                .expression_attribute_names("#n", "n")
                .expression_attribute_values(":c", n(created))
                .send()
                .await
                .map_err(sdk_err)?;
        }
        Ok(result)
    }

    async fn addresses_in_cells(
        &self,
        cells: &[u64],
        with_contacts: bool,
    ) -> Result<Vec<AddressItem>, StoreError> {
        let projection = if with_contacts {
            "id, lang, ch, lat, lon, n, phone, email, ext"
        } else {
            "id, lang, ch, lat, lon, n"
        };
        let per_cell: Vec<Vec<AddressItem>> = futures::stream::iter(cells.to_vec())
            .map(|cell| async move {
                let items = self.cell_items(cell, projection).await?;
                items
                    .into_iter()
                    .map(|item| address_of(item, Some(cell), with_contacts))
                    .collect::<Result<Vec<_>, StoreError>>()
            })
            .buffer_unordered(PARALLEL_CELLS)
            .try_collect()
            .await?;
        Ok(per_cell.into_iter().flatten().collect())
    }

    async fn addresses_in_unit(
        &self,
        unit: &str,
        part: u32,
        with_contacts: bool,
    ) -> Result<Vec<AddressItem>, StoreError> {
        if part >= UNIT_PARTS {
            return Ok(Vec::new());
        }
        let projection = if with_contacts {
            "id, lang, ch, lat, lon, n, cell, phone, email, ext"
        } else {
            "id, lang, ch, lat, lon, n, cell"
        };
        self.query_all(
            &self.tables.subscribers,
            &unit_pk(unit, part),
            None,
            None,
            Some(projection),
        )
        .await?
        .into_iter()
        .map(|item| address_of(item, None, with_contacts))
        .collect()
    }

    /// A Scan of the profile items (`sk = P`); the cursor is the scan's
    /// last evaluated key.
    async fn subscriber_page(&self, cursor: Option<String>) -> Result<SubscriberPage, StoreError> {
        let start = match cursor {
            None => None,
            Some(c) => {
                let (pk, sk) = c
                    .split_once('\n')
                    .ok_or_else(|| StoreError::Permanent(format!("bad subscriber cursor {c:?}")))?;
                Some(key(pk, sk))
            }
        };
        self.usage.request();
        let resp = self
            .client
            .scan()
            .table_name(&self.tables.subscribers)
            // What was written before the scan is seen (the backfill's rule).
            .consistent_read(true)
            .filter_expression("#sk = :p")
            .expression_attribute_names("#sk", "sk")
            .expression_attribute_values(":p", s("P"))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(sdk_err)?;
        self.usage.read(resp.scanned_count.max(0) as usize);
        let mut subscribers = Vec::new();
        for item in resp.items.unwrap_or_default() {
            let (id, stored) = stored_of(item)?;
            subscribers.push((id, stored.profile));
        }
        let cursor = resp.last_evaluated_key.filter(|k| !k.is_empty()).map(|k| {
            let (pk, sk) = key_of(&k);
            format!("{pk}\n{sk}")
        });
        Ok(SubscriberPage {
            subscribers,
            cursor,
        })
    }

    async fn get_subscriber(
        &self,
        id: SubscriberId,
    ) -> Result<Option<SubscriberProfile>, StoreError> {
        Ok(self.read_profile(id).await?.map(|s| s.profile))
    }

    async fn replace_if_unchanged(
        &self,
        id: SubscriberId,
        expected: &SubscriberProfile,
        new: &SubscriberProfile,
    ) -> Result<bool, StoreError> {
        let table = &self.tables.subscribers;
        for _ in 0..MAX_UPSERT_ROUNDS {
            let Some(stored) = self.read_profile(id).await? else {
                return Ok(false);
            };
            if &stored.profile != expected {
                return Ok(false);
            }
            // The version read is the condition: a change meanwhile makes
            // it fail, and the next read sees that change.
            let tx = self
                .transact(replace_actions(table, id, new, Some(&stored))?)
                .await?;
            if committed(tx, id, "updating")? {
                return Ok(true);
            }
        }
        Err(StoreError::Transient(format!(
            "subscriber {id} kept changing while its units were updated; try again"
        )))
    }

    async fn group_members(&self, group: &str) -> Result<Vec<Contact>, StoreError> {
        self.query_all(
            &self.tables.subscribers,
            &format!("G#{group}"),
            None,
            None,
            None,
        )
        .await?
        .into_iter()
        .map(|item| contact_of(row_from(item)?, true))
        .collect()
    }

    /// One transaction: the profile delete, conditioned on the version
    /// read, with the deletes of its address and group items; a concurrent
    /// upsert makes it read again.
    async fn remove_subscriber(&self, id: SubscriberId) -> Result<bool, StoreError> {
        let table = &self.tables.subscribers;
        for _ in 0..MAX_UPSERT_ROUNDS {
            let Some(stored) = self.read_profile(id).await? else {
                return Ok(false);
            };
            let mut actions = Vec::new();
            for (i, item) in items_of(id, &stored.profile, stored.version)?
                .iter()
                .enumerate()
            {
                let (pk, sk) = key_of(item);
                let mut delete = Delete::builder()
                    .table_name(table)
                    .set_key(Some(key(pk, sk)));
                if i == 0 {
                    let (expr, values) = profile_condition(Some(&stored));
                    delete = delete.condition_expression(expr);
                    if expr.contains("#pk") {
                        delete = delete.expression_attribute_names("#pk", "pk");
                    }
                    if expr.contains("#v") {
                        delete = delete.expression_attribute_names("#v", "v");
                    }
                    for (k, v) in values {
                        delete = delete.expression_attribute_values(k, v);
                    }
                }
                actions.push(
                    TransactWriteItem::builder()
                        .delete(
                            delete
                                .build()
                                .map_err(|e| StoreError::Permanent(e.to_string()))?,
                        )
                        .build(),
                );
            }
            // The count goes down in the same transaction.
            actions.push(
                TransactWriteItem::builder()
                    .update(
                        Update::builder()
                            .table_name(table)
                            .set_key(Some(key("COUNT", "COUNT")))
                            .update_expression("ADD #n :c")
                            .expression_attribute_names("#n", "n")
                            .expression_attribute_values(":c", n(-1))
                            .build()
                            .map_err(|e| StoreError::Permanent(e.to_string()))?,
                    )
                    .build(),
            );
            if committed(self.transact(actions).await?, id, "removing")? {
                return Ok(true);
            }
        }
        Err(StoreError::Transient(format!(
            "subscriber {id} kept changing while being removed; try again"
        )))
    }

    async fn subscriber_count(&self) -> Result<u64, StoreError> {
        self.read_count(&self.tables.subscribers, key("COUNT", "COUNT"))
            .await
    }
}

#[cfg(test)]
mod row_tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue as A;
    use bealert_core::subscriber::Address;

    fn attrs(item: &Item) -> Vec<(&str, &A)> {
        let mut v: Vec<(&str, &A)> = item.iter().map(|(k, v)| (k.as_str(), v)).collect();
        v.sort_by_key(|(k, _)| *k);
        v
    }

    /// The profile, unit, address and group items keep exactly their
    /// attributes and types (numbers N, strings S, the version on the
    /// profile only, a contact not given absent rather than NULL), and
    /// read back as written.
    #[test]
    fn rows_store_the_same_attributes_as_before() -> Result<(), StoreError> {
        let missing = || StoreError::Permanent("an item is missing".into());
        let id = SubscriberId::from_i64(0x0123_4567_89ab_cdef).ok_or_else(missing)?;
        let profile = SubscriberProfile {
            external_id: None,
            language: Language::Fr,
            phone: Some("+32470000000".into()),
            email: None,
            channels: ChannelSet::from_bits(3),
            addresses: vec![Address {
                label: None,
                lat: 50.85,
                lon: 4.35,
                cell: 0x0872_8308_28ff_ffff,
                units: vec!["municipality:21004".into()],
            }],
            groups: vec!["firemen".into()],
        };
        let items = items_of(id, &profile, 2)?;
        assert_eq!(items.len(), 4, "{items:?}");
        let (sv, nv) = (|v: &str| A::S(v.into()), |v: &str| A::N(v.into()));
        let sk = address_sk(id, 0);
        let contact = [
            ("ch", nv("3")),
            ("id", sv("0123456789abcdef")),
            ("lang", nv("1")),
            ("phone", sv("+32470000000")),
        ];
        let expect = |extra: Vec<(&'static str, A)>| {
            let mut v: Vec<(&str, A)> = contact.to_vec();
            v.extend(extra);
            v.sort_by_key(|(k, _)| *k);
            v
        };
        let same = |item: &Item, want: Vec<(&str, A)>| {
            let want: Vec<(&str, &A)> = want.iter().map(|(k, v)| (*k, v)).collect();
            assert_eq!(attrs(item), want);
        };
        let json =
            serde_json::to_string(&profile).map_err(|e| StoreError::Permanent(e.to_string()))?;
        same(
            &items[0],
            expect(vec![
                ("pk", sv(&profile_pk(id))),
                ("sk", sv("P")),
                ("profile", sv(&json)),
                ("v", nv("2")),
            ]),
        );
        let point = || vec![("lat", nv("50.85")), ("lon", nv("4.35")), ("n", nv("1"))];
        let mut in_unit = point();
        in_unit.extend([
            ("pk", sv(&unit_pk("municipality:21004", unit_part(id)))),
            ("sk", sv(&sk)),
            ("cell", nv(&0x0872_8308_28ff_ffff_u64.to_string())),
        ]);
        same(&items[1], expect(in_unit));
        let mut in_cell = point();
        in_cell.extend([("pk", sv(&cell_pk(0x0872_8308_28ff_ffff))), ("sk", sv(&sk))]);
        same(&items[2], expect(in_cell));
        same(
            &items[3],
            expect(vec![
                ("pk", sv("G#firemen")),
                ("sk", sv("0123456789abcdef")),
            ]),
        );

        let mut items = items.into_iter();
        let (read_id, stored) = stored_of(items.next().ok_or_else(missing)?)?;
        assert_eq!(
            (read_id, stored.version, &stored.profile),
            (id, 2, &profile)
        );
        let unit = address_of(items.next().ok_or_else(missing)?, None, true)?;
        assert_eq!(
            (unit.cell, unit.lat, unit.lon, unit.address_count),
            (0x0872_8308_28ff_ffff, 50.85, 4.35, 1)
        );
        assert_eq!(unit.contact.phone.as_deref(), Some("+32470000000"));
        let cell = address_of(items.next().ok_or_else(missing)?, Some(7), false)?;
        assert_eq!(
            (cell.cell, cell.contact.phone, cell.contact.language),
            (7, None, Language::Fr)
        );
        let member = contact_of(row_from(items.next().ok_or_else(missing)?)?, true)?;
        assert_eq!((member.subscriber_id, member.email), (id, None));
        Ok(())
    }
}
