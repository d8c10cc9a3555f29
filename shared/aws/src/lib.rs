//! bealert-aws: the production home's adapters.
//!
//! DynamoDB for the store, SQS for the job queues, SNS (SMS), SES (e-mail)
//! and End User Messaging SMS & Voice (voice) for the gateways, with a
//! DynamoDB log of sent idempotency keys in front of the gateways. The SDK
//! takes its endpoints from `AWS_ENDPOINT_URL[_<SERVICE>]`, so the same code
//! runs against AWS and against LocalStack + DynamoDB Local.

pub mod drills;
pub mod dynamo;
pub mod gateways;
pub mod home;
pub mod lambda;
pub mod location;
pub mod sqs;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod uploads;

pub use dynamo::{DynamoStore, Tables};
pub use home::{AwsHome, ConfigError, Settings};
pub use sqs::SqsQueue;

/// The SDK configuration from the environment (region, credentials, endpoints).
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}

/// Exponential backoff with jitter before retrying the items a batch call
/// left unprocessed (DynamoDB batch writes and reads, SQS batch sends).
pub(crate) async fn pause(attempt: u32) {
    let base = 20u64 << attempt.min(6);
    let jitter = rand::random::<u64>() % base.max(1);
    tokio::time::sleep(std::time::Duration::from_millis(base + jitter)).await;
}
