//! Alert items: the record, resolved-shard markers, state transitions.

use super::{
    DynamoStore, Item, Tx, built, get_s, item_from, key, n, put_new, row_from, s, sdk_err,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use bealert_app::ports::{AlertRecord, AlertStore, AuditEntry, StoreError};
use bealert_core::AlertId;
use bealert_core::alert::AlertState;
use serde::{Deserialize, Serialize};

/// The partition listing one UTC day's alerts (`DAY#2026-11-29`).
fn day_pk(ms: i64) -> String {
    let day = ms.div_euclid(86_400_000) * 86_400_000;
    let date: String = bealert_app::format_ms(day).chars().take(10).collect();
    format!("DAY#{date}")
}

pub(crate) fn alert_pk(id: AlertId) -> String {
    format!("A#{id}")
}

/// Bytes of area JSON per item: DynamoDB items hold at most 400 KB, the
/// API accepts 1 MiB bodies.
const AREA_CHUNK: usize = 300 * 1024;

fn area_sk(n: usize) -> String {
    format!("AREA#{n:04}")
}

/// An alert's META item (`A#<id>`/`META`): the record, its spec as JSON
/// without the area, and how many `AREA#` chunk items hold the area.
#[derive(Serialize, Deserialize)]
struct MetaRow {
    id: String,
    operator: String,
    spec: String,
    #[serde(default)]
    area_chunks: usize,
    state: String,
    created_at: i64,
    #[serde(default)]
    shards_done: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shards_total: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    approved_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    completed_at: Option<i64>,
}

/// The record from its META item, and its area's chunk count; `spec.area`
/// is empty when the area is kept in chunk items (see
/// [`AlertStore::get_alert_head`]).
fn record_from(item: Item) -> Result<(AlertRecord, usize), StoreError> {
    let row: MetaRow = row_from(item)?;
    let record = AlertRecord {
        id: row.id.parse().map_err(StoreError::Permanent)?,
        operator: row.operator,
        spec: serde_json::from_str(&row.spec).map_err(|e| StoreError::Permanent(e.to_string()))?,
        state: AlertState::parse(&row.state)
            .ok_or_else(|| StoreError::Permanent(format!("bad state {}", row.state)))?,
        created_at: row.created_at,
        completed_at: row.completed_at,
        approved_at: row.approved_at,
        shards_total: row.shards_total,
        shards_done: row.shards_done,
    };
    Ok((record, row.area_chunks))
}

/// Splits a string into pieces of at most `max` bytes, on char boundaries.
/// Audit entries sort by time under their alert; the suffix keeps two
/// entries of one millisecond apart.
fn audit_sk(at: i64) -> String {
    format!("AUDIT#{at:013}#{:016x}", rand::random::<u64>())
}

impl DynamoStore {
    /// The put of one audit entry: a new item, never overwritten.
    fn audit_put(&self, id: AlertId, entry: &AuditEntry) -> Result<TransactWriteItem, StoreError> {
        let mut item = key(alert_pk(id), audit_sk(entry.at));
        item.insert(
            "entry".into(),
            s(serde_json::to_string(entry).map_err(|e| StoreError::Permanent(e.to_string()))?),
        );
        put_new(&self.tables.alerts, item)
    }
}

pub(crate) fn chunk_str(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.len().min(max);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (head, tail) = rest.split_at(end);
        out.push(head);
        rest = tail;
    }
    out
}

impl DynamoStore {
    /// The META item: the record without the area, and the area's chunk count.
    async fn alert_head(&self, id: AlertId) -> Result<Option<(AlertRecord, usize)>, StoreError> {
        self.usage.request();
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.alerts)
            .set_key(Some(key(alert_pk(id), "META")))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_err)?;
        self.usage.read(usize::from(out.item.is_some()));
        out.item.map(record_from).transpose()
    }
}

pub(crate) fn is_condition_failure<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(
    e: &SdkError<E, R>,
) -> bool {
    matches!(e, SdkError::ServiceError(se) if se.err().code() == Some("ConditionalCheckFailedException"))
}

#[async_trait]
impl AlertStore for DynamoStore {
    /// The META item holds the alert with its spec minus the area's
    /// geometry; the area's JSON follows in `AREA#nnnn` chunk items, all
    /// written in one transaction. Any zone the API accepts fits.
    async fn insert_alert(&self, a: &AlertRecord, entry: &AuditEntry) -> Result<(), StoreError> {
        let area = serde_json::to_string(&a.spec.area)
            .map_err(|e| StoreError::Permanent(e.to_string()))?;
        let mut head_spec = a.spec.clone();
        head_spec.area = Default::default();
        let chunks: Vec<&str> = if a.spec.area.is_empty() {
            Vec::new()
        } else {
            chunk_str(&area, AREA_CHUNK)
        };
        let item = item_from(
            key(alert_pk(a.id), "META"),
            &MetaRow {
                id: a.id.to_string(),
                operator: a.operator.clone(),
                spec: serde_json::to_string(&head_spec)
                    .map_err(|e| StoreError::Permanent(e.to_string()))?,
                area_chunks: chunks.len(),
                state: a.state.as_str().into(),
                created_at: a.created_at,
                shards_done: a.shards_done,
                shards_total: a.shards_total,
                approved_at: a.approved_at,
                completed_at: a.completed_at,
            },
        )?;
        let mut actions = vec![put_new(&self.tables.alerts, item)?];
        for (i, chunk) in chunks.iter().enumerate() {
            let mut part = key(alert_pk(a.id), area_sk(i));
            part.insert("area".into(), s(*chunk));
            actions.push(
                TransactWriteItem::builder()
                    .put(built(
                        Put::builder()
                            .table_name(&self.tables.alerts)
                            .set_item(Some(part))
                            .build(),
                    )?)
                    .build(),
            );
        }
        actions.push(self.audit_put(a.id, entry)?);
        // Listed by day for the public page (its created_at as the sort key).
        let mut listed = key(
            day_pk(a.created_at),
            format!("{:013}#{}", a.created_at.max(0), a.id),
        );
        listed.insert("id".into(), s(a.id.to_string()));
        actions.push(put_new(&self.tables.alerts, listed)?);
        match self.transact(actions).await? {
            Tx::Committed => Ok(()),
            Tx::Cancelled(_) => Err(StoreError::Conflict(format!("alert {} exists", a.id))),
        }
    }

    async fn audit(&self, id: AlertId) -> Result<Vec<AuditEntry>, StoreError> {
        let items = self
            .query_all(
                &self.tables.alerts,
                &alert_pk(id),
                Some(("AUDIT#".into(), "AUDIT$".into())),
                None,
                None,
            )
            .await?;
        items
            .iter()
            .map(|item| {
                serde_json::from_str(get_s(item, "entry")?)
                    .map_err(|e| StoreError::Permanent(e.to_string()))
            })
            .collect()
    }

    async fn get_alert(&self, id: AlertId) -> Result<Option<AlertRecord>, StoreError> {
        let Some((mut record, chunks)) = self.alert_head(id).await? else {
            return Ok(None);
        };
        if chunks > 0 {
            let parts = self
                .query_all(
                    &self.tables.alerts,
                    &alert_pk(id),
                    Some((area_sk(0), area_sk(9999))),
                    None,
                    None,
                )
                .await?;
            if parts.len() != chunks {
                return Err(StoreError::Transient(format!(
                    "alert {id}: {} of {chunks} area items read",
                    parts.len()
                )));
            }
            let mut json = String::new();
            for p in &parts {
                json.push_str(get_s(p, "area")?);
            }
            record.spec.area =
                serde_json::from_str(&json).map_err(|e| StoreError::Permanent(e.to_string()))?;
        }
        Ok(Some(record))
    }

    async fn get_alert_head(&self, id: AlertId) -> Result<Option<AlertRecord>, StoreError> {
        Ok(self.alert_head(id).await?.map(|(record, _)| record))
    }

    async fn recent_alerts(
        &self,
        since: i64,
        limit: usize,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        // Day by day from tomorrow (clocks differ) back to `since`'s day.
        let last = bealert_app::now_ms().max(since) + 86_400_000;
        let mut ids = Vec::new();
        let mut day = last;
        while ids.len() < limit && day.div_euclid(86_400_000) >= since.div_euclid(86_400_000) {
            let from = format!("{:013}", since.max(0));
            let mut items = self
                .query_all(
                    &self.tables.alerts,
                    &day_pk(day),
                    Some((from, "9999999999999".into())),
                    None,
                    None,
                )
                .await?;
            items.reverse();
            for item in items {
                if ids.len() >= limit {
                    break;
                }
                ids.push(
                    get_s(&item, "id")?
                        .parse::<AlertId>()
                        .map_err(|e| StoreError::Permanent(e.to_string()))?,
                );
            }
            day -= 86_400_000;
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some((record, _)) = self.alert_head(id).await? {
                out.push(record);
            }
        }
        Ok(out)
    }

    async fn set_shard_count(&self, id: AlertId, shards: u32) -> Result<(), StoreError> {
        self.usage.request();
        match self
            .client
            .update_item()
            .table_name(&self.tables.alerts)
            .set_key(Some(key(alert_pk(id), "META")))
            .update_expression("SET shards_total = :t")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(shards_total)")
            .expression_attribute_values(":t", n(shards))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(sdk_err(e)),
        }
    }

    async fn complete_shard(
        &self,
        id: AlertId,
        shard: u32,
    ) -> Result<(u32, Option<u32>), StoreError> {
        let marker = built(
            Put::builder()
                .table_name(&self.tables.alerts)
                .set_item(Some(key(alert_pk(id), format!("SHARD#{shard}"))))
                .condition_expression("attribute_not_exists(pk)")
                .build(),
        )?;
        let count = built(
            Update::builder()
                .table_name(&self.tables.alerts)
                .set_key(Some(key(alert_pk(id), "META")))
                .update_expression("ADD shards_done :one")
                .expression_attribute_values(":one", n(1))
                .build(),
        )?;
        // Committed or cancelled because the marker exists: either way counted once.
        match self
            .transact(vec![
                TransactWriteItem::builder().put(marker).build(),
                TransactWriteItem::builder().update(count).build(),
            ])
            .await?
        {
            Tx::Committed => {}
            Tx::Cancelled(reasons)
                if reasons
                    .first()
                    .is_some_and(|(c, _)| c == "ConditionalCheckFailed") => {}
            Tx::Cancelled(reasons) => {
                return Err(StoreError::Transient(format!(
                    "shard completion cancelled: {reasons:?}"
                )));
            }
        }
        let a = self
            .get_alert(id)
            .await?
            .ok_or_else(|| StoreError::Permanent(format!("alert {id} vanished")))?;
        Ok((a.shards_done, a.shards_total))
    }

    async fn append_audit(&self, id: AlertId, entry: &AuditEntry) -> Result<(), StoreError> {
        match self.transact(vec![self.audit_put(id, entry)?]).await? {
            Tx::Committed => Ok(()),
            Tx::Cancelled(_) => Err(StoreError::Transient(
                "the audit entry's key was taken; write it again".into(),
            )),
        }
    }

    async fn transition(
        &self,
        id: AlertId,
        from: AlertState,
        to: AlertState,
        entry: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let mut update = Update::builder()
            .table_name(&self.tables.alerts)
            .set_key(Some(key(alert_pk(id), "META")))
            .condition_expression("#st = :from")
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":from", s(from.as_str()))
            .expression_attribute_values(":to", s(to.as_str()));
        // The times the move sets are the lifecycle's rule; the rest stay.
        let stamps = bealert_core::lifecycle::stamps(from, to, entry.at);
        let mut set = String::from("SET #st = :to");
        if let Some(at) = stamps.completed_at {
            set.push_str(", completed_at = :completed");
            update = update.expression_attribute_values(":completed", n(at));
        }
        if let Some(at) = stamps.approved_at {
            set.push_str(", approved_at = :approved");
            update = update.expression_attribute_values(":approved", n(at));
        }
        update = update.update_expression(set);
        let actions = vec![
            TransactWriteItem::builder()
                .update(built(update.build())?)
                .build(),
            self.audit_put(id, entry)?,
        ];
        match self.transact(actions).await? {
            Tx::Committed => Ok(true),
            Tx::Cancelled(_) => Ok(false),
        }
    }
}

#[cfg(test)]
mod row_tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue as A;

    /// The META item keeps its attributes' types; options left unset stay
    /// absent (not NULL) and read back as before.
    #[test]
    fn the_meta_item_stores_the_same_attributes_as_before() -> Result<(), StoreError> {
        let row = MetaRow {
            id: "a1".into(),
            operator: "gent".into(),
            spec: "{}".into(),
            area_chunks: 2,
            state: "active".into(),
            created_at: 1_700_000_000_000,
            shards_done: 0,
            shards_total: Some(4),
            approved_at: None,
            completed_at: None,
        };
        let item = item_from(key("A#a1", "META"), &row)?;
        assert_eq!(item["created_at"], A::N("1700000000000".into()));
        assert_eq!(item["area_chunks"], A::N("2".into()));
        assert_eq!(item["shards_done"], A::N("0".into()));
        assert_eq!(item["shards_total"], A::N("4".into()));
        assert_eq!(item["state"], A::S("active".into()));
        assert!(!item.contains_key("approved_at") && !item.contains_key("completed_at"));
        let back: MetaRow = row_from(item)?;
        assert_eq!((back.shards_total, back.completed_at), (Some(4), None));
        Ok(())
    }
}
