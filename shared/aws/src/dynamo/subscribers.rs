//! Subscriber items: the profile, one item per address (keyed by H3 cell,
//! carrying the contact so resolution reads each address once) and one per
//! group membership.

use super::{DynamoStore, Item, get_n, get_s, key, n, opt_n, opt_s, s, sdk_err};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{DeleteRequest, PutRequest, WriteRequest};
use bealert_app::ports::{AddressItem, StoreError, SubscriberStore, Upserted};
use bealert_core::subscriber::{Contact, SubscriberProfile};
use bealert_core::{ChannelSet, Language, SubscriberId};
use futures::{StreamExt, TryStreamExt};
use std::collections::{HashMap, HashSet};

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

fn put(item: Item) -> Result<WriteRequest, StoreError> {
    Ok(WriteRequest::builder()
        .put_request(
            PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(|e| StoreError::Permanent(e.to_string()))?,
        )
        .build())
}

fn delete(k: Item) -> Result<WriteRequest, StoreError> {
    Ok(WriteRequest::builder()
        .delete_request(
            DeleteRequest::builder()
                .set_key(Some(k))
                .build()
                .map_err(|e| StoreError::Permanent(e.to_string()))?,
        )
        .build())
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

#[async_trait]
impl SubscriberStore for DynamoStore {
    async fn upsert_subscribers(
        &self,
        subscribers: Vec<(SubscriberId, SubscriberProfile)>,
    ) -> Result<Vec<Upserted>, StoreError> {
        // An external id always maps to the same subscriber id.
        let with_ids: Vec<(SubscriberId, SubscriberProfile)> = subscribers
            .into_iter()
            .map(|(proposed, p)| {
                let id = p
                    .external_id
                    .as_deref()
                    .map_or(proposed, SubscriberId::from_external_id);
                (id, p)
            })
            .collect();
        let ids: HashSet<SubscriberId> = with_ids.iter().map(|(id, _)| *id).collect();
        let keys: Vec<Item> = ids.iter().map(|id| key(profile_pk(*id), "P")).collect();
        let existing: HashMap<SubscriberId, SubscriberProfile> = self
            .batch_get(&self.tables.subscribers, keys)
            .await?
            .iter()
            .map(|item| {
                let id: SubscriberId = get_s(item, "id")?.parse().map_err(StoreError::Permanent)?;
                let p = serde_json::from_str(get_s(item, "profile")?)
                    .map_err(|e| StoreError::Permanent(e.to_string()))?;
                Ok((id, p))
            })
            .collect::<Result<_, StoreError>>()?;

        // The last profile given for an id wins; items it no longer has are deleted.
        let mut latest: HashMap<SubscriberId, &SubscriberProfile> = HashMap::new();
        for (id, p) in &with_ids {
            latest.insert(*id, p);
        }
        let mut writes = Vec::new();
        for (id, p) in &latest {
            let new_items = items_of(*id, p)?;
            let new_keys: HashSet<(String, String)> = new_items.iter().map(key_of).collect();
            if let Some(old) = existing.get(id) {
                for old_item in items_of(*id, old)? {
                    let (pk, sk) = key_of(&old_item);
                    if !new_keys.contains(&(pk.clone(), sk.clone())) {
                        writes.push(delete(key(pk, sk))?);
                    }
                }
            }
            for item in new_items {
                writes.push(put(item)?);
            }
        }
        self.batch_write(&self.tables.subscribers, writes).await?;

        let created = latest
            .keys()
            .filter(|id| !existing.contains_key(id))
            .count();
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
        let mut seen = HashSet::new();
        Ok(with_ids
            .iter()
            .map(|(id, _)| Upserted {
                id: *id,
                created: !existing.contains_key(id) && seen.insert(*id),
            })
            .collect())
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

    async fn subscriber_count(&self) -> Result<u64, StoreError> {
        self.usage.request();
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.subscribers)
            .set_key(Some(key("COUNT", "COUNT")))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_err)?;
        Ok(out
            .item
            .as_ref()
            .map(|i| opt_n(i, "n"))
            .transpose()?
            .flatten()
            .unwrap_or(0))
    }
}
