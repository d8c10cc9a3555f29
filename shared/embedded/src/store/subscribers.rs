//! [`SubscriberStore`] on SQLite. A subscriber's profile is stored whole
//! (JSON) in `subscribers`, beside the rows derived from it: one
//! `addresses` row per address, its `unit_rows`, one `memberships` row per
//! group. Every write deletes the rows the stored profile produced and
//! inserts the new profile's in the same transaction, so the derived rows
//! always match the stored profile; whether an upsert may replace a stored
//! entry is the identity rule (`SubscriberProfile::is_same_subscriber`).

use super::{SqliteStore, json_err, language, now_ms, subscriber_id};
use async_trait::async_trait;
use bealert_app::ports::{
    AddressItem, StoreError, SubscriberPage, SubscriberStore, UNIT_PARTS, UnitPage, Upsert,
};
use bealert_core::subscriber::{Contact, SubscriberProfile};
use bealert_core::{ChannelSet, SubscriberId};
use rusqlite::{OptionalExtension, Row, params};
use std::sync::Arc;

/// Reads a contact from columns `first..first+5`:
/// subscriber_id, language, channels, phone, email, external_id.
fn contact_at(row: &Row<'_>, first: usize) -> rusqlite::Result<Contact> {
    Ok(Contact {
        subscriber_id: subscriber_id(row.get(first)?)?,
        language: language(row.get(first + 1)?)?,
        channels: ChannelSet::from_bits(row.get(first + 2)?),
        phone: row.get(first + 3)?,
        email: row.get(first + 4)?,
        external_id: row.get(first + 5)?,
    })
}

/// Subscribers per [`SubscriberStore::subscriber_page`].
const SUBSCRIBER_PAGE: usize = 1_000;

/// The profile stored under an id.
fn stored_profile(
    tx: &rusqlite::Connection,
    id: SubscriberId,
) -> rusqlite::Result<Option<SubscriberProfile>> {
    tx.prepare_cached("SELECT profile FROM subscribers WHERE id = ?1")?
        .query_row([id.as_i64()], |r| r.get::<_, String>(0))
        .optional()?
        .map(|json| serde_json::from_str(&json).map_err(json_err))
        .transpose()
}

/// Removes the address and membership rows a stored profile produced.
fn delete_items(
    tx: &rusqlite::Transaction<'_>,
    id: i64,
    old: &SubscriberProfile,
) -> rusqlite::Result<()> {
    let mut del_addr =
        tx.prepare_cached("DELETE FROM addresses WHERE cell = ?1 AND subscriber_id = ?2")?;
    let mut first_unit = tx.prepare_cached(
        "SELECT unit_first FROM addresses WHERE cell = ?1 AND subscriber_id = ?2 AND idx = ?3",
    )?;
    let mut del_units = tx.prepare_cached("DELETE FROM unit_rows WHERE rowid BETWEEN ?1 AND ?2")?;
    for (i, a) in old.addresses.iter().enumerate() {
        let first: Option<i64> = first_unit
            .query_row(params![a.cell as i64, id, i as i64], |r| r.get(0))
            .optional()?
            .flatten();
        if let Some(first) = first {
            del_units.execute(params![first, first + a.units.len() as i64 - 1])?;
        }
    }
    for a in &old.addresses {
        del_addr.execute(params![a.cell as i64, id])?;
    }
    let mut del_group =
        tx.prepare_cached("DELETE FROM memberships WHERE grp = ?1 AND subscriber_id = ?2")?;
    for g in &old.groups {
        del_group.execute(params![g, id])?;
    }
    Ok(())
}

fn insert_items(
    tx: &rusqlite::Transaction<'_>,
    id: i64,
    p: &SubscriberProfile,
) -> rusqlite::Result<()> {
    let mut addr = tx.prepare_cached(
        "INSERT INTO addresses
         (cell, subscriber_id, idx, lat, lon, address_count, language, channels, unit_first)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    // An address's unit rows are consecutive rows, appended (an index on
    // the unit finds them; the address keeps the first to delete them).
    let mut unit = tx.prepare_cached(
        "INSERT INTO unit_rows (unit_id, subscriber_id, idx, cell) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut unit_id = tx.prepare_cached("SELECT id FROM unit_keys WHERE key = ?1")?;
    let mut new_unit = tx.prepare_cached("INSERT INTO unit_keys (key) VALUES (?1)")?;
    for (i, a) in p.addresses.iter().enumerate() {
        let mut unit_first = None;
        for u in &a.units {
            // Units are kept by a small integer: compact keys, fast inserts.
            let uid: i64 = match unit_id.query_row([u], |r| r.get(0)).optional()? {
                Some(uid) => uid,
                None => {
                    new_unit.execute([u])?;
                    tx.last_insert_rowid()
                }
            };
            unit.execute(params![uid, id, i as i64, a.cell as i64])?;
            unit_first.get_or_insert(tx.last_insert_rowid());
        }
        addr.execute(params![
            a.cell as i64,
            id,
            i as i64,
            a.lat,
            a.lon,
            p.addresses.len() as i64,
            p.language.index(),
            p.channels.bits(),
            unit_first
        ])?;
    }
    let mut group = tx
        .prepare_cached("INSERT OR IGNORE INTO memberships (grp, subscriber_id) VALUES (?1, ?2)")?;
    for g in &p.groups {
        group.execute(params![g, id])?;
    }
    Ok(())
}

#[async_trait]
impl SubscriberStore for SqliteStore {
    async fn upsert_subscribers(
        &self,
        subscribers: Arc<[(SubscriberId, SubscriberProfile)]>,
    ) -> Result<Vec<Upsert>, StoreError> {
        self.db
            .write(move |tx| {
                let now = now_ms();
                let mut out = Vec::with_capacity(subscribers.len());
                let mut find = tx
                    .prepare_cached("SELECT id, profile FROM subscribers WHERE external_id = ?1")?;
                let mut update = tx.prepare_cached(
                    "UPDATE subscribers SET language = ?2, channels = ?3, phone = ?4, email = ?5,
                     profile = ?6, updated_at = ?7 WHERE id = ?1",
                )?;
                // A new subscriber (the common case) costs one probe of each index: the insert.
                let mut insert = tx.prepare_cached(
                    "INSERT INTO subscribers
                     (id, external_id, language, channels, phone, email, profile, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
                     ON CONFLICT DO NOTHING",
                )?;
                for (id, profile) in subscribers.iter() {
                    let json = serde_json::to_string(profile).map_err(json_err)?;
                    let inserted = insert.execute(params![
                        id.as_i64(),
                        profile.external_id,
                        profile.language.index(),
                        profile.channels.bits(),
                        profile.phone,
                        profile.email,
                        json,
                        now
                    ])? == 1;
                    if inserted {
                        insert_items(tx, id.as_i64(), profile)?;
                        out.push(Upsert::Created);
                        continue;
                    }
                    // Someone holds the id, or (the id being free) the external
                    // id, under the random id a data directory from before derived
                    // ids gave it. The identity rule decides whether the entry is
                    // that subscriber, to replace; anyone else: taken.
                    let stored = match stored_profile(tx, *id)? {
                        Some(old) => Some((id.as_i64(), old)),
                        None => match &profile.external_id {
                            Some(ext) => find
                                .query_row([ext], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
                                .optional()?
                                .map(|(stored_id, json)| {
                                    serde_json::from_str::<SubscriberProfile>(&json)
                                        .map(|old| (stored_id, old))
                                        .map_err(json_err)
                                })
                                .transpose()?,
                            None => None,
                        },
                    };
                    let Some((stored_id, old)) =
                        stored.filter(|(_, old)| old.is_same_subscriber(profile))
                    else {
                        out.push(Upsert::IdTaken);
                        continue;
                    };
                    delete_items(tx, stored_id, &old)?;
                    update.execute(params![
                        stored_id,
                        profile.language.index(),
                        profile.channels.bits(),
                        profile.phone,
                        profile.email,
                        json,
                        now
                    ])?;
                    insert_items(tx, stored_id, profile)?;
                    out.push(Upsert::Updated);
                }
                Ok(out)
            })
            .await
    }

    async fn addresses_in_cells(
        &self,
        cells: &[u64],
        with_contacts: bool,
    ) -> Result<Vec<AddressItem>, StoreError> {
        let cells = cells.to_vec();
        self.db
            .read(move |conn| {
                let sql = if with_contacts {
                    "SELECT a.lat, a.lon, a.address_count, s.id, s.language, s.channels, s.phone, s.email, s.external_id
                     FROM addresses a JOIN subscribers s ON s.id = a.subscriber_id WHERE a.cell = ?1"
                } else {
                    "SELECT lat, lon, address_count, subscriber_id, language, channels
                     FROM addresses WHERE cell = ?1"
                };
                let mut stmt = conn.prepare_cached(sql)?;
                let mut out = Vec::new();
                for cell in cells {
                    let mut rows = stmt.query([cell as i64])?;
                    while let Some(row) = rows.next()? {
                        let contact = if with_contacts {
                            contact_at(row, 3)?
                        } else {
                            Contact {
                                subscriber_id: subscriber_id(row.get(3)?)?,
                                language: language(row.get(4)?)?,
                                channels: ChannelSet::from_bits(row.get(5)?),
                                phone: None,
                                email: None,
                                external_id: None,
                            }
                        };
                        out.push(AddressItem {
                            cell,
                            lat: row.get(0)?,
                            lon: row.get(1)?,
                            address_count: row.get(2)?,
                            contact,
                        });
                    }
                }
                Ok(out)
            })
            .await
    }

    async fn addresses_in_unit(
        &self,
        unit: &str,
        part: u32,
        with_contacts: bool,
    ) -> Result<Vec<AddressItem>, StoreError> {
        // One page without a limit holds the whole part.
        let page = self
            .addresses_in_unit_page(unit, part, with_contacts, None, usize::MAX)
            .await?;
        Ok(page.items)
    }

    async fn addresses_in_unit_page(
        &self,
        unit: &str,
        part: u32,
        with_contacts: bool,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<UnitPage, StoreError> {
        // Stored in key order by unit and row (an import appends to each
        // unit's end instead of dirtying a page per unit and part), and
        // read in parts by the row's number: each part is a sixteenth of
        // the unit spread over all of it, so a national alert's first
        // recipients are planned after a page of a sixteenth of a region
        // is read, not all of it. The index holds the row number: rows of
        // other parts are skipped without reading them, and a page starts
        // where the last one ended (the cursor is its last row number).
        if part >= UNIT_PARTS {
            return Ok(UnitPage::default());
        }
        let after: i64 = match cursor {
            None => 0,
            Some(c) => c
                .parse()
                .map_err(|_| StoreError::Permanent(format!("bad unit page cursor {c:?}")))?,
        };
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        let unit = unit.to_string();
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT a.cell, a.lat, a.lon, a.address_count,
                            s.id, s.language, s.channels, s.phone, s.email, s.external_id, u.rowid
                     FROM unit_keys k
                     JOIN unit_rows u ON u.unit_id = k.id
                     JOIN addresses a ON a.cell = u.cell AND a.subscriber_id = u.subscriber_id AND a.idx = u.idx
                     JOIN subscribers s ON s.id = u.subscriber_id
                     WHERE k.key = ?1 AND u.rowid % ?3 = ?2 AND u.rowid > ?4
                     ORDER BY u.rowid LIMIT ?5",
                )?;
                let mut last = None;
                let rows = stmt.query_map(params![unit, part, UNIT_PARTS, after, limit], |row| {
                    let mut contact = contact_at(row, 4)?;
                    if !with_contacts {
                        contact.phone = None;
                        contact.email = None;
                        contact.external_id = None;
                    }
                    Ok((
                        AddressItem {
                            cell: row.get::<_, i64>(0)? as u64,
                            lat: row.get(1)?,
                            lon: row.get(2)?,
                            address_count: row.get(3)?,
                            contact,
                        },
                        row.get::<_, i64>(10)?,
                    ))
                })?;
                let mut items = Vec::new();
                for row in rows {
                    let (item, rowid) = row?;
                    last = Some(rowid);
                    items.push(item);
                }
                let full = i64::try_from(items.len()).unwrap_or(i64::MAX) >= limit;
                Ok(UnitPage {
                    items,
                    next: last.filter(|_| full).map(|r| r.to_string()),
                })
            })
            .await
    }

    async fn subscriber_page(&self, cursor: Option<String>) -> Result<SubscriberPage, StoreError> {
        let after: i64 = match cursor {
            None => 0,
            Some(c) => c
                .parse()
                .map_err(|_| StoreError::Permanent(format!("bad subscriber cursor {c:?}")))?,
        };
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT id, profile FROM subscribers WHERE id > ?1 ORDER BY id LIMIT ?2",
                )?;
                let rows = stmt.query_map(params![after, SUBSCRIBER_PAGE as i64], |r| {
                    let profile: SubscriberProfile =
                        serde_json::from_str(&r.get::<_, String>(1)?).map_err(json_err)?;
                    Ok((subscriber_id(r.get(0)?)?, profile))
                })?;
                let subscribers: Vec<(SubscriberId, SubscriberProfile)> =
                    rows.collect::<rusqlite::Result<_>>()?;
                let cursor = (subscribers.len() == SUBSCRIBER_PAGE)
                    .then(|| subscribers.last().map(|(id, _)| id.as_i64().to_string()))
                    .flatten();
                Ok(SubscriberPage {
                    subscribers,
                    cursor,
                })
            })
            .await
    }

    async fn get_subscriber(
        &self,
        id: SubscriberId,
    ) -> Result<Option<SubscriberProfile>, StoreError> {
        self.db.read(move |conn| stored_profile(conn, id)).await
    }

    async fn replace_if_unchanged(
        &self,
        id: SubscriberId,
        expected: &SubscriberProfile,
        new: &SubscriberProfile,
    ) -> Result<bool, StoreError> {
        let (expected, new) = (expected.clone(), new.clone());
        self.db
            .write(move |tx| {
                let Some(old) = stored_profile(tx, id)? else {
                    return Ok(false);
                };
                if old != expected {
                    return Ok(false);
                }
                delete_items(tx, id.as_i64(), &old)?;
                tx.prepare_cached(
                    "UPDATE subscribers SET language = ?2, channels = ?3, phone = ?4, email = ?5,
                     profile = ?6, updated_at = ?7 WHERE id = ?1",
                )?
                .execute(params![
                    id.as_i64(),
                    new.language.index(),
                    new.channels.bits(),
                    new.phone,
                    new.email,
                    serde_json::to_string(&new).map_err(json_err)?,
                    now_ms()
                ])?;
                insert_items(tx, id.as_i64(), &new)?;
                Ok(true)
            })
            .await
    }

    async fn group_members(&self, group: &str) -> Result<Vec<Contact>, StoreError> {
        let group = group.to_string();
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT s.id, s.language, s.channels, s.phone, s.email, s.external_id
                     FROM memberships m JOIN subscribers s ON s.id = m.subscriber_id WHERE m.grp = ?1",
                )?;
                let rows = stmt.query_map([group], |r| contact_at(r, 0))?;
                rows.collect()
            })
            .await
    }

    async fn remove_subscriber(&self, id: SubscriberId) -> Result<bool, StoreError> {
        self.db
            .write(move |tx| {
                let Some(old) = stored_profile(tx, id)? else {
                    return Ok(false);
                };
                delete_items(tx, id.as_i64(), &old)?;
                tx.execute("DELETE FROM subscribers WHERE id = ?1", [id.as_i64()])?;
                Ok(true)
            })
            .await
    }

    async fn subscriber_count(&self) -> Result<u64, StoreError> {
        self.db
            .read(|conn| {
                conn.query_row("SELECT count(*) FROM subscribers", [], |r| {
                    r.get::<_, i64>(0)
                })
            })
            .await
            .map(|n| n as u64)
    }
}
