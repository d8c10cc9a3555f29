//! Administrative units (reference geography) in the geography table:
//!
//! | items (pk / sk) | |
//! | --- | --- |
//! | `UNITS`/`<code>#<level>` | a unit's catalogue entry (names, bbox, version, chunk count) |
//! | `B#<level>#<code>#<version>`/`<nnnn>` | its boundary's JSON, in chunks of at most 350 kB |
//! | `META`/`shipped_edition` | the edition of the shipped units last loaded |
//! | `META`/`indexed#<level>#<code>` | the unit version addresses' units were last brought up to date against |
//!
//! A boundary can be far larger than one item (400 kB: about 16,000
//! vertices), so it is kept in chunks under its version. A replacement
//! writes the new version's chunks, then switches the catalogue entry, then
//! deletes the old chunks; a reader that meets a version being deleted
//! reads the catalogue again.

use super::{DynamoStore, Item, item_from, key, row_from, sdk_err};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{DeleteRequest, PutRequest, WriteRequest};
use bealert_app::ports::{GeoStore, StoreError};
use bealert_core::geography::{Level, Unit, UnitInfo};
use serde::{Deserialize, Serialize};

const UNITS: &str = "UNITS";
/// Bytes of boundary JSON per item (the item limit is 400 kB).
const CHUNK: usize = 350_000;

fn chunk_pk(level: Level, code: &str, version: &str) -> String {
    format!("B#{level}#{code}#{version}")
}

fn catalogue_sk(level: Level, code: &str) -> String {
    format!("{code}#{level}")
}

fn bad(e: impl std::fmt::Display) -> StoreError {
    StoreError::Permanent(format!("a stored unit is damaged: {e}"))
}

/// A unit's catalogue entry (`UNITS`/`<code>#<level>`): its [`UnitInfo`]
/// as JSON and how many chunk items hold its boundary.
#[derive(Serialize, Deserialize)]
struct EntryRow {
    info: String,
    chunks: usize,
}

/// One chunk of a boundary's JSON (`B#<level>#<code>#<version>`/`<nnnn>`).
#[derive(Serialize, Deserialize)]
struct ChunkRow {
    part: String,
}

/// A `META` item: one value.
#[derive(Serialize, Deserialize)]
struct MetaRow {
    value: String,
}

fn info_of(item: Item) -> Result<(UnitInfo, usize), StoreError> {
    let row: EntryRow = row_from(item)?;
    let info: UnitInfo = serde_json::from_str(&row.info).map_err(bad)?;
    Ok((info, row.chunks))
}

impl DynamoStore {
    async fn catalogue_item(&self, level: Level, code: &str) -> Result<Option<Item>, StoreError> {
        self.usage.request();
        let item = self
            .client
            .get_item()
            .table_name(&self.tables.geography)
            .set_key(Some(key(UNITS, catalogue_sk(level, code))))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_err)?
            .item;
        self.usage.read(usize::from(item.is_some()));
        Ok(item)
    }

    async fn put_unit(&self, unit: &Unit) -> Result<(), StoreError> {
        let table = self.tables.geography.clone();
        let info = unit.info();
        let boundary = serde_json::to_string(&unit.polygons).map_err(bad)?;
        // The JSON is ASCII (numbers and brackets): any byte is a char boundary.
        let chunks: Vec<&str> = boundary
            .as_bytes()
            .chunks(CHUNK)
            .map(|c| std::str::from_utf8(c).map_err(bad))
            .collect::<Result<_, _>>()?;
        let old = self.catalogue_item(unit.level, &unit.code).await?;
        let pk = chunk_pk(unit.level, &unit.code, &info.version);
        let puts = chunks
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let item = item_from(
                    key(pk.clone(), format!("{i:04}")),
                    &ChunkRow {
                        part: (*part).to_string(),
                    },
                )?;
                Ok(WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(item))
                            .build()
                            .map_err(bad)?,
                    )
                    .build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.batch_write(&table, puts).await?;

        let entry = item_from(
            key(UNITS, catalogue_sk(unit.level, &unit.code)),
            &EntryRow {
                info: serde_json::to_string(&info).map_err(bad)?,
                chunks: chunks.len(),
            },
        )?;
        self.usage.request();
        self.client
            .put_item()
            .table_name(&table)
            .set_item(Some(entry))
            .send()
            .await
            .map_err(sdk_err)?;

        if let Some(old) = old {
            let (old_info, old_chunks) = info_of(old)?;
            if old_info.version != info.version {
                let pk = chunk_pk(unit.level, &unit.code, &old_info.version);
                let deletes = (0..old_chunks)
                    .map(|i| {
                        Ok(WriteRequest::builder()
                            .delete_request(
                                DeleteRequest::builder()
                                    .set_key(Some(key(pk.clone(), format!("{i:04}"))))
                                    .build()
                                    .map_err(bad)?,
                            )
                            .build())
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                self.batch_write(&table, deletes).await?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl GeoStore for DynamoStore {
    async fn put_units(&self, units: &[Unit]) -> Result<(), StoreError> {
        for group in units.chunks(4) {
            futures::future::try_join_all(group.iter().map(|u| self.put_unit(u))).await?;
        }
        Ok(())
    }

    async fn unit_info(&self, level: Level, code: &str) -> Result<Option<UnitInfo>, StoreError> {
        self.catalogue_item(level, code)
            .await?
            .map(|item| info_of(item).map(|(info, _)| info))
            .transpose()
    }

    async fn units_by_code(&self, code: &str) -> Result<Vec<UnitInfo>, StoreError> {
        let items = self
            .query_all(
                &self.tables.geography,
                UNITS,
                Some((format!("{code}#"), format!("{code}#~"))),
                None,
                None,
            )
            .await?;
        let mut out: Vec<UnitInfo> = items
            .into_iter()
            .map(|i| info_of(i).map(|(info, _)| info))
            .collect::<Result<_, _>>()?;
        out.sort_by_key(|u| u.level);
        Ok(out)
    }

    async fn unit(&self, level: Level, code: &str) -> Result<Option<Unit>, StoreError> {
        for _ in 0..5 {
            let Some(item) = self.catalogue_item(level, code).await? else {
                return Ok(None);
            };
            let (info, chunks) = info_of(item)?;
            let parts = self
                .query_all(
                    &self.tables.geography,
                    &chunk_pk(level, code, &info.version),
                    None,
                    None,
                    None,
                )
                .await?;
            if parts.len() != chunks {
                // Replaced (and its chunks deleted) between the two reads.
                continue;
            }
            let mut json = String::new();
            for p in parts {
                json.push_str(&row_from::<ChunkRow>(p)?.part);
            }
            return Ok(Some(Unit {
                level,
                code: code.to_string(),
                names: info.names,
                polygons: serde_json::from_str(&json).map_err(bad)?,
            }));
        }
        Err(StoreError::Transient(format!(
            "{level} {code} kept changing while it was read; try again"
        )))
    }

    async fn units(&self) -> Result<Vec<UnitInfo>, StoreError> {
        let items = self
            .query_all(&self.tables.geography, UNITS, None, None, None)
            .await?;
        let mut out: Vec<UnitInfo> = items
            .into_iter()
            .map(|i| info_of(i).map(|(info, _)| info))
            .collect::<Result<_, _>>()?;
        out.sort_by(|a, b| (a.level, &a.code).cmp(&(b.level, &b.code)));
        Ok(out)
    }

    async fn shipped_edition(&self) -> Result<Option<String>, StoreError> {
        self.geo_meta("shipped_edition").await
    }

    async fn set_shipped_edition(&self, edition: &str) -> Result<(), StoreError> {
        self.set_geo_meta("shipped_edition", edition).await
    }

    async fn indexed_version(
        &self,
        level: Level,
        code: &str,
    ) -> Result<Option<String>, StoreError> {
        self.geo_meta(&format!("indexed#{level}#{code}")).await
    }

    async fn set_indexed_version(
        &self,
        level: Level,
        code: &str,
        version: &str,
    ) -> Result<(), StoreError> {
        self.set_geo_meta(&format!("indexed#{level}#{code}"), version)
            .await
    }
}

impl DynamoStore {
    async fn geo_meta(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.usage.request();
        let item = self
            .client
            .get_item()
            .table_name(&self.tables.geography)
            .set_key(Some(key("META", name)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_err)?
            .item;
        Ok(item.map(row_from::<MetaRow>).transpose()?.map(|r| r.value))
    }

    async fn set_geo_meta(&self, name: &str, value: &str) -> Result<(), StoreError> {
        let item = item_from(
            key("META", name),
            &MetaRow {
                value: value.to_string(),
            },
        )?;
        self.usage.request();
        self.client
            .put_item()
            .table_name(&self.tables.geography)
            .set_item(Some(item))
            .send()
            .await
            .map_err(sdk_err)?;
        Ok(())
    }
}

#[cfg(test)]
mod row_tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue as A;
    use std::collections::HashMap;

    fn attrs(item: &Item) -> HashMap<&str, &A> {
        item.iter().map(|(k, v)| (k.as_str(), v)).collect()
    }

    /// The catalogue entry, a chunk and a META item keep exactly their
    /// attributes and types (strings S, the chunk count N).
    #[test]
    fn rows_store_the_same_attributes_as_before() -> Result<(), StoreError> {
        let (pk, sk) = (A::S("UNITS".into()), A::S("44021#municipality".into()));
        let entry = item_from(
            key("UNITS", "44021#municipality"),
            &EntryRow {
                info: "{}".into(),
                chunks: 3,
            },
        )?;
        let (info, chunks) = (A::S("{}".into()), A::N("3".into()));
        assert_eq!(
            attrs(&entry),
            HashMap::from([
                ("pk", &pk),
                ("sk", &sk),
                ("info", &info),
                ("chunks", &chunks)
            ])
        );
        let back: EntryRow = row_from(entry)?;
        assert_eq!((back.info.as_str(), back.chunks), ("{}", 3));

        let chunk = item_from(key("B#x", "0000"), &ChunkRow { part: "[[".into() })?;
        assert_eq!(chunk.len(), 3);
        assert_eq!(chunk["part"], A::S("[[".into()));

        let meta = item_from(
            key("META", "shipped_edition"),
            &MetaRow {
                value: "2026".into(),
            },
        )?;
        assert_eq!(meta.len(), 3);
        assert_eq!(meta["value"], A::S("2026".into()));
        Ok(())
    }
}
