//! Clients for the local test stack (`tests/stack.sh up`): LocalStack and
//! DynamoDB Local on loopback, unless `AWS_ENDPOINT_URL[_DYNAMODB]` say
//! otherwise. Tests use these and fail loudly when the stack is down.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

pub const LOCALSTACK: &str = "http://127.0.0.1:4566";
pub const DYNAMODB_LOCAL: &str = "http://127.0.0.1:8000";

pub fn localstack_url() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| LOCALSTACK.to_string())
}

pub fn dynamodb_url() -> String {
    std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_else(|_| DYNAMODB_LOCAL.to_string())
}

/// Region eu-west-1, test credentials, LocalStack as the default endpoint.
pub fn sdk_config() -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            Credentials::new("test", "test", None, None, "bealert-tests"),
        ))
        .endpoint_url(localstack_url())
        .http_client(crate::http_client())
        .timeout_config(crate::timeouts())
        .build()
}

pub fn dynamodb() -> aws_sdk_dynamodb::Client {
    let conf = aws_sdk_dynamodb::config::Builder::from(&sdk_config())
        .endpoint_url(dynamodb_url())
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

pub fn sqs() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&sdk_config())
}

pub fn sns() -> aws_sdk_sns::Client {
    aws_sdk_sns::Client::new(&sdk_config())
}

pub fn ses() -> aws_sdk_ses::Client {
    aws_sdk_ses::Client::new(&sdk_config())
}

/// What LocalStack recorded as sent: SMS (`/_aws/sns/sms-messages`) or
/// e-mail (`/_aws/ses`), as JSON.
pub async fn localstack_sent(path: &str) -> serde_json::Value {
    let url = format!("{}{path}", localstack_url());
    let body = reqwest::get(&url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .text()
        .await
        .unwrap_or_default();
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url} gave no JSON ({e}): {body}"))
}

/// A header of an e-mail LocalStack recorded from `SendRawEmail` (its
/// `RawData`), unfolded; `None` if the message has no such header.
pub fn mail_header(message: &serde_json::Value, name: &str) -> Option<String> {
    let raw = message["RawData"].as_str()?;
    let head = raw.split("\r\n\r\n").next()?;
    let prefix = format!("{}:", name.to_ascii_lowercase());
    head.replace("\r\n ", " ")
        .split("\r\n")
        .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
        .map(|l| l[prefix.len()..].trim().to_string())
}

/// Panics with the command to run when the stack does not answer.
pub async fn require_stack() {
    let ddb = dynamodb().list_tables().send().await;
    assert!(
        ddb.is_ok(),
        "DynamoDB Local does not answer at {} ({:?}); start the test stack: tests/stack.sh up",
        dynamodb_url(),
        ddb.err()
    );
    let ls = sqs().list_queues().send().await;
    assert!(
        ls.is_ok(),
        "LocalStack does not answer at {} ({:?}); start the test stack: tests/stack.sh up",
        localstack_url(),
        ls.err()
    );
}

/// A unique name prefix, so parallel tests never share tables or queues.
pub fn unique_prefix(what: &str) -> String {
    format!("t{}-{what}-", rand::random::<u32>())
}
