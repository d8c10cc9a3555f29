//! The operator store: operators, their people, rights and keys.

use super::StoreError;
use async_trait::async_trait;
use bealert_core::operator::KeyGrant;
use bealert_core::operator::Operator;

#[async_trait]
pub trait OperatorStore: Send + Sync {
    /// Stores an operator with its first person (`operator.user`) and that
    /// person's key, all or nothing. Fails with `Conflict` if the name is taken.
    async fn insert_operator(&self, operator: &Operator, key: &KeyGrant) -> Result<(), StoreError>;
    /// Adds a person to an operator with their first key; `false` when no
    /// operator has the name, `Conflict` when the person exists.
    async fn insert_user(
        &self,
        operator: &str,
        user: &str,
        key: &KeyGrant,
    ) -> Result<bool, StoreError>;
    /// Ends every key of a person and, given one, adds a new key in the
    /// same step. With `old_until_ms`, the old keys keep working until
    /// then (never longer than they would have:
    /// [`bealert_core::operator::overlap_end`]) instead
    /// of being revoked at once; keys already ended are removed. `None`
    /// when the operator has no such person; otherwise how many keys were
    /// ended.
    async fn replace_keys(
        &self,
        operator: &str,
        user: &str,
        new_key: Option<&KeyGrant>,
        old_until_ms: Option<i64>,
    ) -> Result<Option<usize>, StoreError>;
    /// Revokes one key: refused from the next request on. `false` when no
    /// key has the hash.
    async fn revoke_key(&self, key_hash: &str) -> Result<bool, StoreError>;
    /// The operator and the person a key belongs to, with the key's end
    /// ([`Operator::key_expires_at_ms`]; an ended key is still returned:
    /// refusing it is the app's rule).
    async fn operator_by_key_hash(&self, key_hash: &str) -> Result<Option<Operator>, StoreError>;
    /// Lets an operator alert a group; `false` when no operator has the name.
    async fn grant_group(&self, name: &str, group: &str) -> Result<bool, StoreError>;
    /// Sets what a person may do (read back on the [`Operator`] their keys
    /// give); `false` when the operator has no such person.
    async fn set_rights(
        &self,
        operator: &str,
        user: &str,
        rights: &bealert_core::operator::Rights,
    ) -> Result<bool, StoreError>;
}
