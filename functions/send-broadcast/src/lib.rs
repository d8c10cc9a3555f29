//! send-broadcast: the Lambda function that hands each network its part of
//! an alert (Alert-SMS), from the broadcast queue. One job per alert and
//! network: a network that is down or slow holds only its own jobs.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use bealert_app::App;
use lambda_runtime::LambdaEvent;

/// The queue this function consumes.
pub const QUEUE: &str = "broadcast";

/// This function sends on no registered channel: only network gateways
/// (HTTP, from BEALERT_NETWORK_GATEWAYS) are used.
pub fn gateways(_: &bealert_aws::AwsHome) -> bealert_app::ports::Gateways {
    bealert_aws::AwsHome::no_gateways()
}

/// Configuration checked at start-up; infra/template.yaml sets it.
pub const REQUIRED_ENV: &[&str] = &[
    "BEALERT_ALERTS_TABLE",
    "BEALERT_DELIVERIES_TABLE",
    "BEALERT_NETWORKS_TABLE",
    "BEALERT_BROADCAST_QUEUE_URL",
];

/// One SQS batch: partial batch failures are reported, not raised.
pub async fn handler(
    app: &App,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    bealert_app::lambda::handle_sqs(app, QUEUE, App::broadcast_job, event).await
}
