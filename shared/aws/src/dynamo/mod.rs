//! The DynamoDB store: tables laid out by access pattern (architecture.md).
//!
//! | table | items (pk / sk) |
//! | --- | --- |
//! | subscribers | `S#<id>`/`P` profile; `C#<cell>`/`<bucket>#<id>#<n>` one per address with the contact; `G#<group>`/`<id>` members with the contact; `COUNT`/`COUNT` |
//! | alerts | `A#<id>`/`META` (the spec without the area's geometry); `A#<id>`/`AREA#<n>` the area's JSON in chunks; `A#<id>`/`SHARD#<n>` resolved shards; counters each in a partition of its own: `A#<id>#C#<channel>#<bucket>`/`N`, `A#<id>#REACH#<bucket>`/`N`; `RATE#<channel>`/`RATE` a channel's send bucket |
//! | deliveries | `D#<alert>#<channel>#<bucket>`/`<id>` one per delivery (the exactly-once claim); `R#<alert>#<bucket>`/`<id>` which shard owns a recipient |
//! | alerts (idempotency) | `IDEM#<operator>/<person>`/`<key>` the first answer to a request with that `Idempotency-Key` (TTL `expires_at`) |
//! | operators | `K#<key hash>`/`K`, `N#<name>`/`N` |
//! | geography | `UNITS`/`<code>#<level>` a unit's catalogue entry, `B#<level>#<code>#<version>`/`<n>` its boundary in chunks (see `geography.rs`) |
//! | networks | `NETS`/`<name>` a network, `NETKEY#<key hash>`/`K`, `CELL#<name>#<version>#<index cell>`/`<cell id>` (see `networks.rs`); deliveries to networks are `T#<alert>`/`network:<name>` in the deliveries table |
//!
//! Counters are spread over buckets, each its own partition, and updated in
//! the same transaction as the deliveries they count (live counts read them
//! in one batch); a dense cell's address items can be read in
//! parallel ranges of their bucket prefix.

mod alerts;
pub mod budget;
pub mod capacity;
mod deliveries;
mod documents;
mod geography;
mod idempotency;
mod networks;
mod operators;
mod registrations;
pub mod schema;
mod subscribers;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, TransactWriteItem, WriteRequest};
use bealert_app::ports::StoreError;
use futures::{StreamExt, TryStreamExt};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub type Item = HashMap<String, AttributeValue>;

/// The four tables' names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    pub subscribers: String,
    pub alerts: String,
    pub deliveries: String,
    pub operators: String,
    /// Citizens' own registrations and the signup counters.
    pub registrations: String,
    /// Mobile networks and their cells (Alert-SMS).
    pub networks: String,
    /// Administrative units and their boundaries.
    pub geography: String,
}

impl Tables {
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            subscribers: format!("{prefix}subscribers"),
            alerts: format!("{prefix}alerts"),
            deliveries: format!("{prefix}deliveries"),
            registrations: format!("{prefix}registrations"),
            operators: format!("{prefix}operators"),
            networks: format!("{prefix}networks"),
            geography: format!("{prefix}geography"),
        }
    }
}

/// Requests sent and items read, for the benchmark's cost figures.
#[derive(Debug, Default)]
pub struct Usage {
    pub requests: AtomicU64,
    pub items_read: AtomicU64,
}

impl Usage {
    pub fn snapshot(&self) -> (u64, u64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.items_read.load(Ordering::Relaxed),
        )
    }

    fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    fn read(&self, n: usize) {
        self.items_read.fetch_add(n as u64, Ordering::Relaxed);
    }
}

pub struct DynamoStore {
    client: Client,
    tables: Tables,
    usage: Arc<Usage>,
    /// How long delivery items (with recipients' contact data) live: their
    /// `expires_at` TTL attribute.
    retention: std::time::Duration,
}

impl DynamoStore {
    pub fn new(client: Client, tables: Tables) -> Self {
        Self {
            client,
            tables,
            usage: Arc::new(Usage::default()),
            retention: std::time::Duration::from_secs(90 * 86_400),
        }
    }

    /// Delivery items expire (DynamoDB TTL) this long after they are planned.
    pub fn with_retention(mut self, retention: std::time::Duration) -> Self {
        self.retention = retention;
        self
    }

    /// The `expires_at` (Unix seconds) of an item written at `now_ms`.
    pub(crate) fn expires_at(&self, now_ms: i64) -> i64 {
        now_ms / 1000 + i64::try_from(self.retention.as_secs()).unwrap_or(i64::MAX / 2)
    }

    pub fn usage(&self) -> Arc<Usage> {
        self.usage.clone()
    }

    pub fn tables(&self) -> &Tables {
        &self.tables
    }
}

// ----- attribute helpers -----

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

fn corrupt(what: &str, item: &Item) -> StoreError {
    StoreError::Permanent(format!(
        "item {:?}/{:?} has no valid {what}",
        item.get("pk"),
        item.get("sk")
    ))
}

pub(crate) fn get_s<'a>(item: &'a Item, k: &str) -> Result<&'a str, StoreError> {
    match item.get(k) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(corrupt(k, item)),
    }
}

pub(crate) fn opt_s(item: &Item, k: &str) -> Option<String> {
    match item.get(k) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

pub(crate) fn get_n<T: FromStr>(item: &Item, k: &str) -> Result<T, StoreError> {
    opt_n(item, k)?.ok_or_else(|| corrupt(k, item))
}

pub(crate) fn opt_n<T: FromStr>(item: &Item, k: &str) -> Result<Option<T>, StoreError> {
    match item.get(k) {
        Some(AttributeValue::N(v)) => v.parse().map(Some).map_err(|_| corrupt(k, item)),
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(_) => Err(corrupt(k, item)),
    }
}

/// An item: `key` and the attributes of a typed row (serde_dynamo: numbers
/// N, strings S, sets where a field says `serde_dynamo::string_set`; an
/// optional field the row skips when `None` stays absent, never NULL).
pub(crate) fn item_from<T: serde::Serialize>(key: Item, row: &T) -> Result<Item, StoreError> {
    let mut item: Item =
        serde_dynamo::to_item(row).map_err(|e| StoreError::Permanent(e.to_string()))?;
    item.extend(key);
    Ok(item)
}

/// The typed row of an item; attributes the row does not name (its key's
/// among them) are ignored.
pub(crate) fn row_from<T: serde::de::DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    let (pk, sk) = (item.get("pk").cloned(), item.get("sk").cloned());
    serde_dynamo::from_item(item)
        .map_err(|e| StoreError::Permanent(format!("item {pk:?}/{sk:?}: {e}")))
}

/// A request builder's result as a store error (a missing required field).
pub(crate) fn built<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Permanent(e.to_string()))
}

/// A transaction's put of an item that must be new (never overwrites).
pub(crate) fn put_new(table: &str, item: Item) -> Result<TransactWriteItem, StoreError> {
    let put = built(
        aws_sdk_dynamodb::types::Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build(),
    )?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// Maps an SDK error. Throttling, DynamoDB's 5xx answers and transport
/// trouble (timeouts included: every client has them, see
/// [`crate::timeouts`]) are [`StoreError::Busy`] - a job meeting one waits
/// without using up its retries; a conflicting transaction is transient.
pub fn sdk_err<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    enum Kind {
        Busy,
        Transient,
        Permanent,
    }
    let kind = match &e {
        SdkError::ServiceError(se) => match se.err().code() {
            Some(
                "ThrottlingException"
                | "ProvisionedThroughputExceededException"
                | "RequestLimitExceeded"
                | "InternalServerError"
                | "InternalFailure"
                | "ServiceUnavailable",
            ) => Kind::Busy,
            Some("TransactionConflictException") => Kind::Transient,
            _ => Kind::Permanent,
        },
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Kind::Busy
        }
        _ => Kind::Permanent,
    };
    let msg = match &e {
        SdkError::ServiceError(se) => format!(
            "{}: {}",
            se.err().code().unwrap_or("error"),
            se.err().message().unwrap_or("")
        ),
        other => format!("{other}"),
    };
    match kind {
        Kind::Busy => StoreError::Busy(msg),
        Kind::Transient => StoreError::Transient(msg),
        Kind::Permanent => StoreError::Permanent(msg),
    }
}

use crate::pause;

const MAX_BATCH_ATTEMPTS: u32 = 10;

/// What a transaction did.
pub(crate) enum Tx {
    Committed,
    /// Cancelled: per action, the reason code (`ConditionalCheckFailed`,
    /// `None` for actions that were fine) and the old item if returned.
    Cancelled(Vec<(String, Option<Item>)>),
}

impl DynamoStore {
    /// The number `n` of a counter item (0 if there is none), read consistently.
    pub(crate) async fn read_count(&self, table: &str, k: Item) -> Result<u64, StoreError> {
        self.usage.request();
        let out = self
            .client
            .get_item()
            .table_name(table)
            .set_key(Some(k))
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

    /// Writes (puts and deletes) in batches of 25, several batches at once,
    /// retrying unprocessed items with backoff.
    pub(crate) async fn batch_write(
        &self,
        table: &str,
        requests: Vec<WriteRequest>,
    ) -> Result<(), StoreError> {
        let chunks: Vec<Vec<WriteRequest>> =
            requests.chunks(25).map(<[WriteRequest]>::to_vec).collect();
        futures::stream::iter(chunks)
            .map(|chunk| self.batch_write_one(table, chunk))
            .buffer_unordered(8)
            .try_for_each(|()| async { Ok(()) })
            .await
    }

    async fn batch_write_one(
        &self,
        table: &str,
        mut pending: Vec<WriteRequest>,
    ) -> Result<(), StoreError> {
        for attempt in 0..MAX_BATCH_ATTEMPTS {
            self.usage.request();
            let out = self
                .client
                .batch_write_item()
                .request_items(table, pending)
                .send()
                .await
                .map_err(sdk_err)?;
            pending = out
                .unprocessed_items
                .and_then(|mut m| m.remove(table))
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok(());
            }
            pause(attempt).await;
        }
        Err(StoreError::Transient(format!(
            "{} writes to {table} still unprocessed after {MAX_BATCH_ATTEMPTS} attempts",
            pending.len()
        )))
    }

    /// Reads items by key, 100 per request, retrying unprocessed keys.
    pub(crate) async fn batch_get(
        &self,
        table: &str,
        keys: Vec<Item>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                let ka = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Permanent(e.to_string()))?;
                self.usage.request();
                let resp = self
                    .client
                    .batch_get_item()
                    .request_items(table, ka)
                    .send()
                    .await
                    .map_err(sdk_err)?;
                let items = resp
                    .responses
                    .and_then(|mut r| r.remove(table))
                    .unwrap_or_default();
                self.usage.read(items.len());
                out.extend(items);
                pending = resp
                    .unprocessed_keys
                    .and_then(|mut m| m.remove(table))
                    .map(|ka| ka.keys)
                    .unwrap_or_default();
                if !pending.is_empty() {
                    if attempt >= MAX_BATCH_ATTEMPTS {
                        return Err(StoreError::Transient(format!(
                            "reads from {table} still unprocessed"
                        )));
                    }
                    pause(attempt).await;
                    attempt += 1;
                }
            }
        }
        Ok(out)
    }

    /// Runs a transaction, retrying conflicts with concurrent transactions.
    pub(crate) async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Tx, StoreError> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
        for attempt in 0..MAX_BATCH_ATTEMPTS {
            self.usage.request();
            match self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await
            {
                Ok(_) => return Ok(Tx::Committed),
                Err(SdkError::ServiceError(se)) => match se.err() {
                    TransactWriteItemsError::TransactionCanceledException(c) => {
                        let reasons: Vec<(String, Option<Item>)> = c
                            .cancellation_reasons()
                            .iter()
                            .map(|r| (r.code().unwrap_or("None").to_string(), r.item().cloned()))
                            .collect();
                        let only_conflicts = reasons
                            .iter()
                            .all(|(code, _)| code == "None" || code == "TransactionConflict");
                        if only_conflicts && reasons.iter().any(|(c, _)| c == "TransactionConflict")
                        {
                            pause(attempt).await;
                            continue;
                        }
                        return Ok(Tx::Cancelled(reasons));
                    }
                    TransactWriteItemsError::TransactionInProgressException(_) => {
                        pause(attempt).await;
                        continue;
                    }
                    _ => return Err(sdk_err(SdkError::ServiceError(se))),
                },
                Err(e) => return Err(sdk_err(e)),
            }
        }
        Err(StoreError::Transient("transaction kept conflicting".into()))
    }
}

#[cfg(test)]
mod sdk_err_tests {
    use super::*;
    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use aws_sdk_dynamodb::types::error::ProvisionedThroughputExceededException;
    use aws_smithy_types::error::ErrorMetadata;

    fn service(code: &str) -> SdkError<GetItemError, ()> {
        let meta = ErrorMetadata::builder()
            .code(code)
            .message("refused")
            .build();
        let err = if code == "ProvisionedThroughputExceededException" {
            GetItemError::ProvisionedThroughputExceededException(
                ProvisionedThroughputExceededException::builder()
                    .message("refused")
                    .meta(meta)
                    .build(),
            )
        } else {
            GetItemError::generic(meta)
        };
        SdkError::service_error(err, ())
    }

    #[test]
    fn throttling_5xx_and_timeouts_are_busy_conflicts_transient_the_rest_permanent() {
        for code in [
            "ProvisionedThroughputExceededException",
            "ThrottlingException",
            "RequestLimitExceeded",
            "InternalServerError",
            "ServiceUnavailable",
        ] {
            assert!(
                matches!(sdk_err(service(code)), StoreError::Busy(m) if m.starts_with(code)),
                "{code}"
            );
        }
        assert!(matches!(
            sdk_err(SdkError::<GetItemError, ()>::timeout_error(
                "no answer in 5 s"
            )),
            StoreError::Busy(_)
        ));
        assert!(matches!(
            sdk_err(service("TransactionConflictException")),
            StoreError::Transient(_)
        ));
        assert!(matches!(
            sdk_err(service("ValidationException")),
            StoreError::Permanent(_)
        ));
    }
}
