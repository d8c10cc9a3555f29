//! resolve-zone: the Lambda function that resolves alert zones into deliveries, from the resolve queue.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use bealert_app::App;
use lambda_runtime::LambdaEvent;

/// The queue this function consumes.
pub const QUEUE: &str = "resolve";

/// This function sends nothing: no gateway (and no messaging SDK) is linked.
pub fn gateways(_: &bealert_aws::AwsHome) -> bealert_app::ports::Gateways {
    bealert_aws::AwsHome::no_gateways()
}

/// Configuration checked at start-up; infra/template.yaml sets it.
pub const REQUIRED_ENV: &[&str] = &[
    "BEALERT_SUBSCRIBERS_TABLE",
    "BEALERT_ALERTS_TABLE",
    "BEALERT_DELIVERIES_TABLE",
    "BEALERT_RESOLVE_QUEUE_URL",
    "BEALERT_SMS_QUEUE_URL",
    "BEALERT_SMS_CANCEL_QUEUE_URL",
    "BEALERT_SMS_ROUTINE_QUEUE_URL",
    "BEALERT_VOICE_QUEUE_URL",
    "BEALERT_VOICE_CANCEL_QUEUE_URL",
    "BEALERT_VOICE_ROUTINE_QUEUE_URL",
    "BEALERT_EMAIL_QUEUE_URL",
    "BEALERT_EMAIL_CANCEL_QUEUE_URL",
    "BEALERT_EMAIL_ROUTINE_QUEUE_URL",
];

/// One SQS batch: partial batch failures are reported, not raised.
pub async fn handler(
    app: &App,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    bealert_app::lambda::handle_sqs(app, QUEUE, App::resolve_job, event).await
}
