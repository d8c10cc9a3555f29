//! `Idempotency-Key` records in the alerts table: `IDEM#<person>`/`<key>`,
//! claimed with a conditional put (absent, or expired), gone by the table's
//! `expires_at` TTL a day later.

use super::{DynamoStore, get_s, key, n, opt_s, s, sdk_err};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use bealert_app::ports::{IdempotencyStore, KeyRecord, StoreError, StoredAnswer};

fn pk(scope: &str) -> String {
    format!("IDEM#{scope}")
}

#[async_trait]
impl IdempotencyStore for DynamoStore {
    async fn claim_key(
        &self,
        scope: &str,
        k: &str,
        fingerprint: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let mut item = key(pk(scope), k);
        item.insert("fp".into(), s(fingerprint));
        item.insert("until".into(), n(expires_at));
        // DynamoDB's TTL (seconds) removes it a day after it ends.
        item.insert("expires_at".into(), n(expires_at / 1000 + 86_400));
        self.usage.request();
        let out = self
            .client
            .put_item()
            .table_name(&self.tables.alerts)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR #until <= :now")
            .expression_attribute_names("#until", "until")
            .expression_attribute_values(":now", n(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match out {
            Ok(_) => Ok(None),
            Err(e) => {
                if let Some(PutItemError::ConditionalCheckFailedException(c)) = e.as_service_error()
                    && let Some(old) = c.item()
                {
                    let answer = opt_s(old, "answer")
                        .map(|j| serde_json::from_str::<StoredAnswer>(&j))
                        .transpose()
                        .map_err(|e| StoreError::Permanent(e.to_string()))?;
                    return Ok(Some(KeyRecord {
                        fingerprint: get_s(old, "fp")?.to_string(),
                        answer,
                    }));
                }
                Err(sdk_err(e))
            }
        }
    }

    async fn complete_key(
        &self,
        scope: &str,
        k: &str,
        answer: &StoredAnswer,
    ) -> Result<(), StoreError> {
        let json =
            serde_json::to_string(answer).map_err(|e| StoreError::Permanent(e.to_string()))?;
        self.usage.request();
        self.client
            .update_item()
            .table_name(&self.tables.alerts)
            .set_key(Some(key(pk(scope), k)))
            .update_expression("SET answer = :a")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":a", s(json))
            .send()
            .await
            .map_err(sdk_err)?;
        Ok(())
    }

    async fn release_key(&self, scope: &str, k: &str) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
        self.usage.request();
        let out = self
            .client
            .delete_item()
            .table_name(&self.tables.alerts)
            .set_key(Some(key(pk(scope), k)))
            .condition_expression("attribute_not_exists(answer)")
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(DeleteItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk_err(e)),
        }
    }
}
