//! Two senders racing on the same deliveries in the AWS home (DynamoDB
//! Local claims and sent-key log, LocalStack SNS): every SMS sent once.

use bealert_aws::{AwsHome, Settings, Tables, testkit};
use bealert_conformance as conformance;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_racing_senders_send_every_delivery_once() {
    testkit::require_stack().await;
    let prefix = testkit::unique_prefix("race");
    let mut settings = Settings::from_env();
    settings.tables = Tables::with_prefix(&prefix);
    settings.queue_prefix = prefix;
    settings.queue_urls.clear();
    settings.email_from = None;
    let home = AwsHome::new(&bealert_aws::sdk_config().await, settings);
    home.setup().await.unwrap();
    // SNS on LocalStack takes a few ms per SMS: fewer deliveries, small jobs.
    conformance::racing_senders(
        home.ports(),
        600,
        10,
        Duration::from_millis(1500),
        (0, 1800),
    )
    .await;
}
