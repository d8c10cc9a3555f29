//! `Idempotency-Key` records.

use super::StoreError;
use async_trait::async_trait;

/// The first answer to a request that carried an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredAnswer {
    pub status: u16,
    /// The `Location` header, if the answer had one.
    pub location: Option<String>,
    /// The JSON body.
    pub body: String,
}

/// What a store holds for a person's idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The request's fingerprint (method, path, body).
    pub fingerprint: String,
    /// `None` while the first request is still being answered.
    pub answer: Option<StoredAnswer>,
}

/// `Idempotency-Key` records (draft-ietf-httpapi-idempotency-key-header),
/// per person (`scope`) and key. The rules (what a replay, a reuse with
/// another body, a request in progress get) are decided in
/// `usecases::idempotency`; a store only claims, completes and releases.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims the key for a request unless a record that has not expired
    /// (`expires_at` > `now`) exists: `None` when claimed (the caller goes
    /// on), else the record found. Atomic: of two racing claims one wins.
    async fn claim_key(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<Option<KeyRecord>, StoreError>;
    /// Stores the answer of a claimed key.
    async fn complete_key(
        &self,
        scope: &str,
        key: &str,
        answer: &StoredAnswer,
    ) -> Result<(), StoreError>;
    /// Forgets a claim whose request failed, so that a retry may run.
    async fn release_key(&self, scope: &str, key: &str) -> Result<(), StoreError>;
}
