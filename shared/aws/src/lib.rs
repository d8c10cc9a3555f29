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

pub use dynamo::capacity::{CapacityMeter, metered_client};
pub use dynamo::{DynamoStore, Tables};
pub use home::{AwsHome, ConfigError, Settings};
pub use sqs::SqsQueue;

use aws_config::timeout::TimeoutConfig;
use std::time::Duration;

/// The longest one attempt of an AWS call may take (a DynamoDB, SQS, SES
/// … request answers in milliseconds when all is well).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest an AWS call may take, its retries included: well inside the
/// functions' timeouts (30 s for the API, 60 s for the senders), so a hung
/// call becomes a transient store error the job is postponed on, not a
/// function killed at its timeout.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(15);
/// Connecting (the SDK's own default).
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// The timeouts every AWS SDK client of bealert carries.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The HTTPS client every AWS SDK client of bealert uses: hyper with rustls
/// on *ring* (the SDK's default client brings aws-lc-sys, a large C build,
/// for the same TLS).
pub fn http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::{Builder, tls};
    Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// The SDK configuration from the environment (region, credentials,
/// endpoints), with [`timeouts`] and [`http_client`]: every client is
/// built from it.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http_client())
        .timeout_config(timeouts())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_bounded(t: Option<&TimeoutConfig>, what: &str) {
        let t = t.unwrap_or_else(|| panic!("{what}: no timeout configuration"));
        assert_eq!(t.operation_timeout(), Some(OPERATION_TIMEOUT), "{what}");
        assert_eq!(
            t.operation_attempt_timeout(),
            Some(ATTEMPT_TIMEOUT),
            "{what}"
        );
        assert_eq!(t.connect_timeout(), Some(CONNECT_TIMEOUT), "{what}");
    }

    #[tokio::test]
    async fn every_client_built_from_the_sdk_configuration_has_operation_and_attempt_timeouts() {
        let sdk = sdk_config().await;
        assert_bounded(sdk.timeout_config(), "SdkConfig");
        // The clients the home builds from it (AwsHome::new and its gateways).
        assert_bounded(
            aws_sdk_dynamodb::Client::new(&sdk)
                .config()
                .timeout_config(),
            "DynamoDB",
        );
        assert_bounded(
            aws_sdk_sqs::Client::new(&sdk).config().timeout_config(),
            "SQS",
        );
        assert_bounded(
            aws_sdk_sns::Client::new(&sdk).config().timeout_config(),
            "SNS",
        );
        assert_bounded(
            aws_sdk_scheduler::Client::new(&sdk)
                .config()
                .timeout_config(),
            "Scheduler",
        );
        assert!(ATTEMPT_TIMEOUT < OPERATION_TIMEOUT);
        assert!(OPERATION_TIMEOUT < crate::lambda::FUNCTION_TIMEOUT / 2);
    }
}
