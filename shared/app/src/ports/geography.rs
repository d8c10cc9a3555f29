//! The geography store: administrative units and their boundaries.

use super::StoreError;
use async_trait::async_trait;
use bealert_core::geography::Level;
use bealert_core::geography::Unit;
use bealert_core::geography::UnitInfo;

/// Reference geography: administrative units and their boundaries.
///
/// A unit is replaced whole: readers see the old boundary or the new one,
/// never a mix (the DynamoDB home keeps a boundary in several items).
#[async_trait]
pub trait GeoStore: Send + Sync {
    /// Adds units, or replaces those with the same level and code.
    async fn put_units(&self, units: &[Unit]) -> Result<(), StoreError>;
    /// One unit's catalogue entry (cheap: no boundary).
    async fn unit_info(&self, level: Level, code: &str) -> Result<Option<UnitInfo>, StoreError>;
    /// The units of every level with this code (a NIS code names one).
    async fn units_by_code(&self, code: &str) -> Result<Vec<UnitInfo>, StoreError>;
    /// One unit with its boundary.
    async fn unit(&self, level: Level, code: &str) -> Result<Option<Unit>, StoreError>;
    /// Every unit, without boundaries, by level then code.
    async fn units(&self) -> Result<Vec<UnitInfo>, StoreError>;
    /// The edition of the shipped units last loaded (`None`: never).
    async fn shipped_edition(&self) -> Result<Option<String>, StoreError>;
    async fn set_shipped_edition(&self, edition: &str) -> Result<(), StoreError>;
    /// The version of a unit that every stored address's units were last
    /// brought up to date against (`None`: never): only while it is the
    /// unit's current version may its addresses be read by key.
    async fn indexed_version(&self, level: Level, code: &str)
    -> Result<Option<String>, StoreError>;
    async fn set_indexed_version(
        &self,
        level: Level,
        code: &str,
        version: &str,
    ) -> Result<(), StoreError>;
}
