//! Subscriber items: the profile, one item per address (keyed by H3 cell,
//! carrying the contact so resolution reads each address once) and one per
//! group membership, and one per unit an address is recorded in (keyed by
//! unit and part, so "everyone registered in municipality X" is a query).

use super::Tx;
use super::{DynamoStore, Item, get_n, get_s, key, n, opt_n, opt_s, s, sdk_err};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use bealert_app::ports::{
    AddressItem, StoreError, SubscriberPage, SubscriberStore, UNIT_PARTS, Upsert, unit_part,
};
use bealert_core::subscriber::{Contact, SubscriberProfile};
use bealert_core::{ChannelSet, Language, SubscriberId};
use futures::{StreamExt, TryStreamExt};
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

fn contact_attrs(item: &mut Item, p: &SubscriberProfile, id: SubscriberId) {
    item.insert("id".into(), s(id.to_string()));
    item.insert("lang".into(), n(p.language.index()));
    item.insert("ch".into(), n(p.channels.bits()));
    if let Some(v) = &p.phone {
        item.insert("phone".into(), s(v.clone()));
    }
    if let Some(v) = &p.email {
        item.insert("email".into(), s(v.clone()));
    }
    if let Some(v) = &p.external_id {
        item.insert("ext".into(), s(v.clone()));
    }
}

pub(crate) fn contact_from(item: &Item, with_contacts: bool) -> Result<Contact, StoreError> {
    let id: SubscriberId = get_s(item, "id")?.parse().map_err(StoreError::Permanent)?;
    let lang: u8 = get_n(item, "lang")?;
    Ok(Contact {
        subscriber_id: id,
        language: Language::from_index(lang)
            .ok_or_else(|| StoreError::Permanent(format!("bad language {lang}")))?,
        channels: ChannelSet::from_bits(get_n(item, "ch")?),
        phone: with_contacts.then(|| opt_s(item, "phone")).flatten(),
        email: with_contacts.then(|| opt_s(item, "email")).flatten(),
        external_id: with_contacts.then(|| opt_s(item, "ext")).flatten(),
    })
}

/// Every item a profile is stored as, by key.
fn items_of(id: SubscriberId, p: &SubscriberProfile) -> Result<Vec<Item>, StoreError> {
    let mut out = Vec::with_capacity(1 + p.addresses.len() + p.groups.len());
    let mut profile = key(profile_pk(id), "P");
    contact_attrs(&mut profile, p, id);
    profile.insert(
        "profile".into(),
        s(serde_json::to_string(p).map_err(|e| StoreError::Permanent(e.to_string()))?),
    );
    out.push(profile);
    for (i, a) in p.addresses.iter().enumerate() {
        let mut item = key(cell_pk(a.cell), address_sk(id, i));
        contact_attrs(&mut item, p, id);
        item.insert("lat".into(), n(a.lat));
        item.insert("lon".into(), n(a.lon));
        item.insert("n".into(), n(p.addresses.len()));
        for u in &a.units {
            let mut unit_item = item.clone();
            unit_item.insert("pk".into(), s(unit_pk(u, unit_part(id))));
            unit_item.insert("cell".into(), n(a.cell));
            out.push(unit_item);
        }
        out.push(item);
    }
    for g in &p.groups {
        let mut item = key(format!("G#{g}"), id.to_string());
        contact_attrs(&mut item, p, id);
        out.push(item);
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

fn stored_of(item: &Item) -> Result<Stored, StoreError> {
    Ok(Stored {
        version: opt_n(item, "v")?.unwrap_or(0),
        profile: serde_json::from_str(get_s(item, "profile")?)
            .map_err(|e| StoreError::Permanent(e.to_string()))?,
    })
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
    let mut items = items_of(id, profile)?;
    items[0].insert("v".into(), n(version + 1));
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
        for old_item in items_of(id, &old.profile)? {
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
        out.item.as_ref().map(stored_of).transpose()
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
            let id: SubscriberId = get_s(&item, "id")?.parse().map_err(StoreError::Permanent)?;
            existing.insert(id, stored_of(&item)?);
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
                    .iter()
                    .map(|item| {
                        Ok(AddressItem {
                            cell,
                            lat: get_n(item, "lat")?,
                            lon: get_n(item, "lon")?,
                            address_count: get_n(item, "n")?,
                            contact: contact_from(item, with_contacts)?,
                        })
                    })
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
        .iter()
        .map(|item| {
            Ok(AddressItem {
                cell: get_n(item, "cell")?,
                lat: get_n(item, "lat")?,
                lon: get_n(item, "lon")?,
                address_count: get_n(item, "n")?,
                contact: contact_from(item, with_contacts)?,
            })
        })
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
            let id: SubscriberId = get_s(&item, "id")?.parse().map_err(StoreError::Permanent)?;
            subscribers.push((id, stored_of(&item)?.profile));
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
        .iter()
        .map(|item| contact_from(item, true))
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
            for (i, item) in items_of(id, &stored.profile)?.iter().enumerate() {
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
