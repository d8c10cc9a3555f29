//! Operator items: one by key hash (for authentication), one by name (unique).

use super::{DynamoStore, Tx, get_s, key, s, sdk_err};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use bealert_app::ports::{OperatorStore, StoreError};
use bealert_core::operator::Operator;

#[async_trait]
impl OperatorStore for DynamoStore {
    async fn insert_operator(&self, op: &Operator) -> Result<(), StoreError> {
        let mut by_key = key(format!("K#{}", op.key_hash), "K");
        by_key.insert("name".into(), s(&op.name));
        by_key.insert("jurisdiction".into(), s(op.jurisdiction.to_string()));
        let mut by_name = key(format!("N#{}", op.name), "N");
        by_name.insert("key_hash".into(), s(&op.key_hash));
        let put = |item| {
            Put::builder()
                .table_name(&self.tables.operators)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map(|p| TransactWriteItem::builder().put(p).build())
                .map_err(|e| StoreError::Permanent(e.to_string()))
        };
        match self.transact(vec![put(by_key)?, put(by_name)?]).await? {
            Tx::Committed => Ok(()),
            Tx::Cancelled(_) => Err(StoreError::Conflict(format!(
                "operator {:?} exists",
                op.name
            ))),
        }
    }

    async fn operator_by_key_hash(&self, key_hash: &str) -> Result<Option<Operator>, StoreError> {
        self.usage.request();
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.operators)
            .set_key(Some(key(format!("K#{key_hash}"), "K")))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_err)?;
        out.item
            .map(|item| {
                Ok(Operator {
                    name: get_s(&item, "name")?.to_string(),
                    jurisdiction: get_s(&item, "jurisdiction")?
                        .parse()
                        .map_err(StoreError::Permanent)?,
                    key_hash: key_hash.to_string(),
                    groups: match item.get("groups") {
                        Some(aws_sdk_dynamodb::types::AttributeValue::Ss(g)) => {
                            let mut g = g.clone();
                            g.sort();
                            g
                        }
                        _ => Vec::new(),
                    },
                })
            })
            .transpose()
    }

    async fn grant_group(&self, name: &str, group: &str) -> Result<bool, StoreError> {
        self.usage.request();
        let by_name = self
            .client
            .get_item()
            .table_name(&self.tables.operators)
            .set_key(Some(key(format!("N#{name}"), "N")))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_err)?
            .item;
        let Some(by_name) = by_name else {
            return Ok(false);
        };
        let hash = get_s(&by_name, "key_hash")?.to_string();
        self.usage.request();
        self.client
            .update_item()
            .table_name(&self.tables.operators)
            .set_key(Some(key(format!("K#{hash}"), "K")))
            .update_expression("ADD #g :g")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#g", "groups")
            .expression_attribute_values(
                ":g",
                aws_sdk_dynamodb::types::AttributeValue::Ss(vec![group.to_string()]),
            )
            .send()
            .await
            .map_err(sdk_err)?;
        Ok(true)
    }
}
