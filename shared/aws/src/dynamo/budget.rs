//! The channels' send budgets in DynamoDB: one bucket item per channel
//! (`RATE#<channel>`/`RATE` in the alerts table), shared by every Lambda
//! instance. The bucket rule is the app's (`take_tokens`); this executes it
//! with a conditional write on the time the bucket was read at.

use super::{DynamoStore, Item, item_from, key, n, row_from, sdk_err};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use bealert_app::ports::{SendBudget, StoreError};
use bealert_app::rate::{Bucket, Limit, Priority, take_tokens};
use bealert_core::Channel;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Tries before a contended bucket answers "nothing for now".
const ROUNDS: u32 = 5;

pub struct DynamoBudget {
    store: Arc<DynamoStore>,
    limits: [Option<Limit>; 3],
}

impl DynamoBudget {
    pub fn new(store: Arc<DynamoStore>, limits: [Option<Limit>; 3]) -> Self {
        Self { store, limits }
    }
}

fn bucket_key(channel: Channel) -> Item {
    key(format!("RATE#{channel}"), "RATE")
}

/// A bucket's item: its tokens at `at`, since when it is warm, and the
/// version `v` each write bumps (the next write's condition).
#[derive(Serialize, Deserialize)]
struct BucketRow {
    tokens: f64,
    at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    warm: Option<i64>,
    #[serde(default)]
    v: Option<i64>,
}

#[async_trait]
impl SendBudget for DynamoBudget {
    fn limit(&self, channel: Channel) -> Option<Limit> {
        self.limits[usize::from(channel.index())]
    }

    async fn take(
        &self,
        channel: Channel,
        n_wanted: u32,
        priority: Priority,
        now_ms: i64,
    ) -> Result<u32, StoreError> {
        let Some(limit) = self.limit(channel) else {
            return Ok(n_wanted);
        };
        let s = &self.store;
        for _ in 0..ROUNDS {
            s.usage.request();
            let got = s
                .client
                .get_item()
                .table_name(&s.tables.alerts)
                .set_key(Some(bucket_key(channel)))
                .consistent_read(true)
                .send()
                .await
                .map_err(sdk_err)?;
            let row: Option<BucketRow> = got.item.map(row_from).transpose()?;
            let version = row.as_ref().and_then(|r| r.v);
            let stored = row.map(|r| Bucket {
                tokens: r.tokens,
                at_ms: r.at,
                warm_since_ms: r.warm,
            });
            let (after, granted) = take_tokens(stored, limit, n_wanted, priority, now_ms);
            if granted == 0 {
                return Ok(0);
            }
            let item = item_from(
                bucket_key(channel),
                &BucketRow {
                    tokens: after.tokens,
                    at: after.at_ms,
                    warm: after.warm_since_ms,
                    v: Some(version.unwrap_or(0) + 1),
                },
            )?;
            let put = s
                .client
                .put_item()
                .table_name(&s.tables.alerts)
                .set_item(Some(item));
            let put = match version {
                Some(v) => put
                    .condition_expression("v = :v")
                    .expression_attribute_values(":v", n(v)),
                None => put.condition_expression("attribute_not_exists(pk)"),
            };
            s.usage.request();
            match put.send().await {
                Ok(_) => return Ok(granted),
                Err(SdkError::ServiceError(e))
                    if aws_sdk_dynamodb::error::ProvideErrorMetadata::code(e.err())
                        == Some("ConditionalCheckFailedException") => {}
                Err(e) => return Err(sdk_err(e)),
            }
        }
        Ok(0)
    }
}
