//! Administrative units (reference geography) in `store.db`: one row per
//! unit, its catalogue entry and its boundary side by side, replaced in
//! one transaction.

use crate::OpenError;
use crate::db::Db;
use async_trait::async_trait;
use bealert_app::ports::{GeoStore, StoreError};
use bealert_core::geography::{Level, Unit, UnitInfo};
use rusqlite::{OptionalExtension, params};
use std::sync::Arc;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS geo_units (
    level TEXT NOT NULL,
    code TEXT NOT NULL,
    info TEXT NOT NULL,
    boundary TEXT NOT NULL,
    PRIMARY KEY (level, code)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS geo_units_by_code ON geo_units (code);
CREATE TABLE IF NOT EXISTS geo_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
";

/// Units on SQLite.
pub struct SqliteGeography {
    db: Arc<Db>,
}

impl SqliteGeography {
    /// Opens its tables in the store's file.
    pub fn beside(store: &crate::SqliteStore) -> Result<Self, OpenError> {
        let db = store.db().clone();
        db.apply(SCHEMA)?;
        Ok(Self { db })
    }
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> rusqlite::Result<T> {
    serde_json::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

#[async_trait]
impl GeoStore for SqliteGeography {
    async fn put_units(&self, units: &[Unit]) -> Result<(), StoreError> {
        // JSON outside the write lock.
        let rows: Vec<(&'static str, String, String, String)> = units
            .iter()
            .map(|u| {
                Ok((
                    u.level.as_str(),
                    u.code.clone(),
                    serde_json::to_string(&u.info())?,
                    serde_json::to_string(&u.polygons)?,
                ))
            })
            .collect::<Result<_, serde_json::Error>>()
            .map_err(|e| StoreError::Permanent(e.to_string()))?;
        self.db
            .write(move |tx| {
                let mut put = tx.prepare_cached(
                    "INSERT OR REPLACE INTO geo_units (level, code, info, boundary) VALUES (?1, ?2, ?3, ?4)",
                )?;
                for (level, code, info, boundary) in &rows {
                    put.execute(params![level, code, info, boundary])?;
                }
                Ok(())
            })
            .await
    }

    async fn unit_info(&self, level: Level, code: &str) -> Result<Option<UnitInfo>, StoreError> {
        let code = code.to_string();
        self.db
            .read(move |conn| {
                let text: Option<String> = conn
                    .prepare_cached("SELECT info FROM geo_units WHERE level = ?1 AND code = ?2")?
                    .query_row(params![level.as_str(), code], |r| r.get(0))
                    .optional()?;
                text.map(|t| parse(&t)).transpose()
            })
            .await
    }

    async fn units_by_code(&self, code: &str) -> Result<Vec<UnitInfo>, StoreError> {
        let code = code.to_string();
        self.db
            .read(move |conn| {
                let texts: Vec<String> = conn
                    .prepare_cached("SELECT info FROM geo_units WHERE code = ?1")?
                    .query_map([code], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                let mut out: Vec<UnitInfo> =
                    texts.iter().map(|t| parse(t)).collect::<Result<_, _>>()?;
                out.sort_by_key(|u| u.level);
                Ok(out)
            })
            .await
    }

    async fn unit(&self, level: Level, code: &str) -> Result<Option<Unit>, StoreError> {
        let code = code.to_string();
        self.db
            .read(move |conn| {
                let row: Option<(String, String)> = conn
                    .prepare_cached(
                        "SELECT info, boundary FROM geo_units WHERE level = ?1 AND code = ?2",
                    )?
                    .query_row(params![level.as_str(), code], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()?;
                row.map(|(info, boundary)| {
                    let info: UnitInfo = parse(&info)?;
                    Ok(Unit {
                        level: info.level,
                        code: info.code,
                        names: info.names,
                        polygons: parse(&boundary)?,
                    })
                })
                .transpose()
            })
            .await
    }

    async fn units(&self) -> Result<Vec<UnitInfo>, StoreError> {
        self.db
            .read(|conn| {
                let texts: Vec<String> = conn
                    .prepare_cached("SELECT info FROM geo_units")?
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                let mut out: Vec<UnitInfo> =
                    texts.iter().map(|t| parse(t)).collect::<Result<_, _>>()?;
                out.sort_by(|a, b| (a.level, &a.code).cmp(&(b.level, &b.code)));
                Ok(out)
            })
            .await
    }

    async fn shipped_edition(&self) -> Result<Option<String>, StoreError> {
        self.meta("shipped_edition".into()).await
    }

    async fn set_shipped_edition(&self, edition: &str) -> Result<(), StoreError> {
        self.set_meta("shipped_edition".into(), edition.into())
            .await
    }

    async fn indexed_version(
        &self,
        level: Level,
        code: &str,
    ) -> Result<Option<String>, StoreError> {
        self.meta(format!("indexed#{level}#{code}")).await
    }

    async fn set_indexed_version(
        &self,
        level: Level,
        code: &str,
        version: &str,
    ) -> Result<(), StoreError> {
        self.set_meta(format!("indexed#{level}#{code}"), version.into())
            .await
    }
}

impl SqliteGeography {
    async fn meta(&self, key: String) -> Result<Option<String>, StoreError> {
        self.db
            .read(move |conn| {
                conn.prepare_cached("SELECT value FROM geo_meta WHERE key = ?1")?
                    .query_row([key], |r| r.get(0))
                    .optional()
            })
            .await
    }

    async fn set_meta(&self, key: String, value: String) -> Result<(), StoreError> {
        self.db
            .write(move |tx| {
                tx.execute(
                    "INSERT OR REPLACE INTO geo_meta (key, value) VALUES (?1, ?2)",
                    [key, value],
                )?;
                Ok(())
            })
            .await
    }
}
