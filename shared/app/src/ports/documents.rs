//! Small documents (templates, drills and their runs) and the drill scheduler.

use super::StoreError;
use async_trait::async_trait;

/// Small JSON documents by kind and id, each replaced whole: alert
/// templates (`template`), drills (`drill`) and their runs (`drill-run`).
#[async_trait]
pub trait DocumentStore: Send + Sync {
    async fn put_document(
        &self,
        kind: &str,
        id: &str,
        body: &serde_json::Value,
    ) -> Result<(), StoreError>;
    async fn get_document(
        &self,
        kind: &str,
        id: &str,
    ) -> Result<Option<serde_json::Value>, StoreError>;
    /// Every document of a kind whose id starts with `prefix`, by id.
    async fn documents(
        &self,
        kind: &str,
        prefix: &str,
    ) -> Result<Vec<(String, serde_json::Value)>, StoreError>;
    /// False if there was none.
    async fn delete_document(&self, kind: &str, id: &str) -> Result<bool, StoreError>;
}

/// Where drills run on their schedule, in the AWS home (EventBridge
/// Scheduler invoking the drill function with `{"drill_id": ...}`).
#[async_trait]
pub trait DrillScheduler: Send + Sync {
    /// Creates or replaces the schedule of a drill (EventBridge syntax,
    /// time zone Europe/Brussels).
    async fn schedule(&self, drill_id: &str, expression: &str) -> Result<(), StoreError>;
    /// Removes it; nothing if there is none.
    async fn unschedule(&self, drill_id: &str) -> Result<(), StoreError>;
}
