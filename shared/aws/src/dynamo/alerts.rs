//! Alert items: the record, resolved-shard markers, state transitions.

use super::{DynamoStore, Item, Tx, get_n, get_s, key, n, opt_n, s, sdk_err};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{Put, ReturnValue, TransactWriteItem, Update};
use bealert_app::ports::{AlertRecord, AlertStore, StoreError};
use bealert_core::AlertId;
use bealert_core::alert::AlertState;

pub(crate) fn alert_pk(id: AlertId) -> String {
    format!("A#{id}")
}

fn built<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Permanent(e.to_string()))
}

fn record_from(item: &Item) -> Result<AlertRecord, StoreError> {
    let state = get_s(item, "state")?;
    Ok(AlertRecord {
        id: get_s(item, "id")?.parse().map_err(StoreError::Permanent)?,
        operator: get_s(item, "operator")?.to_string(),
        spec: serde_json::from_str(get_s(item, "spec")?)
            .map_err(|e| StoreError::Permanent(e.to_string()))?,
        state: AlertState::parse(state)
            .ok_or_else(|| StoreError::Permanent(format!("bad state {state}")))?,
        created_at: get_n(item, "created_at")?,
        completed_at: opt_n(item, "completed_at")?,
        shards_total: opt_n(item, "shards_total")?,
        shards_done: opt_n(item, "shards_done")?.unwrap_or(0),
    })
}

fn is_condition_failure<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(
    e: &SdkError<E, R>,
) -> bool {
    matches!(e, SdkError::ServiceError(se) if se.err().code() == Some("ConditionalCheckFailedException"))
}

#[async_trait]
impl AlertStore for DynamoStore {
    async fn insert_alert(&self, a: &AlertRecord) -> Result<(), StoreError> {
        let mut item = key(alert_pk(a.id), "META");
        item.insert("id".into(), s(a.id.to_string()));
        item.insert("operator".into(), s(&a.operator));
        item.insert(
            "spec".into(),
            s(serde_json::to_string(&a.spec).map_err(|e| StoreError::Permanent(e.to_string()))?),
        );
        item.insert("state".into(), s(a.state.as_str()));
        item.insert("created_at".into(), n(a.created_at));
        item.insert("shards_done".into(), n(a.shards_done));
        if let Some(t) = a.shards_total {
            item.insert("shards_total".into(), n(t));
        }
        if let Some(t) = a.completed_at {
            item.insert("completed_at".into(), n(t));
        }
        self.usage.request();
        self.client
            .put_item()
            .table_name(&self.tables.alerts)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(|e| {
                if is_condition_failure(&e) {
                    StoreError::Conflict(format!("alert {} exists", a.id))
                } else {
                    sdk_err(e)
                }
            })?;
        Ok(())
    }

    async fn get_alert(&self, id: AlertId) -> Result<Option<AlertRecord>, StoreError> {
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
        out.item.as_ref().map(record_from).transpose()
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

    async fn transition(
        &self,
        id: AlertId,
        from: AlertState,
        to: AlertState,
        at: i64,
    ) -> Result<bool, StoreError> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.tables.alerts)
            .set_key(Some(key(alert_pk(id), "META")))
            .condition_expression("#st = :from")
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":from", s(from.as_str()))
            .expression_attribute_values(":to", s(to.as_str()))
            .return_values(ReturnValue::None);
        req = if to.is_final() {
            req.update_expression("SET #st = :to, completed_at = :at")
                .expression_attribute_values(":at", n(at))
        } else {
            req.update_expression("SET #st = :to")
        };
        self.usage.request();
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(sdk_err(e)),
        }
    }
}
