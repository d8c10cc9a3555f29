//! send-email: the Lambda function that sends e-mails through SES, from the send-email queue.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use bealert_app::App;
use lambda_runtime::LambdaEvent;

/// The queue this function consumes (with its lanes `-cancel` and `-routine`).
pub const QUEUE: &str = "send-email";

/// The gateways this function sends through (only their SDK clients are linked).
pub fn gateways(home: &bealert_aws::AwsHome) -> bealert_app::ports::Gateways {
    bealert_aws::AwsHome::only(
        bealert_core::Channel::Email,
        home.chain(bealert_core::Channel::Email),
    )
}

/// Configuration checked at start-up; infra/template.yaml sets it.
pub const REQUIRED_ENV: &[&str] = &[
    "BEALERT_ALERTS_TABLE",
    "BEALERT_DELIVERIES_TABLE",
    "BEALERT_EMAIL_QUEUE_URL",
    "BEALERT_EMAIL_CANCEL_QUEUE_URL",
    "BEALERT_EMAIL_ROUTINE_QUEUE_URL",
    "BEALERT_EMAIL_FROM",
];

/// One SQS batch: partial batch failures are reported, not raised.
pub async fn handler(
    app: &App,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    bealert_app::lambda::handle_sqs(app, QUEUE, App::send_job, event).await
}
