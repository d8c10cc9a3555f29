//! send-voice: the Lambda function that places voice calls, from the send-voice queue.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use bealert_app::App;
use lambda_runtime::LambdaEvent;

/// The queue this function consumes (with its lanes `-cancel` and `-routine`).
pub const QUEUE: &str = "send-voice";

/// The gateways this function sends through (only their SDK clients are linked).
pub fn gateways(home: &bealert_aws::AwsHome) -> bealert_app::ports::Gateways {
    bealert_aws::AwsHome::only(
        bealert_core::Channel::Voice,
        home.chain(bealert_core::Channel::Voice),
    )
}

/// Configuration checked at start-up; infra/template.yaml sets it.
pub const REQUIRED_ENV: &[&str] = &[
    "BEALERT_ALERTS_TABLE",
    "BEALERT_DELIVERIES_TABLE",
    "BEALERT_VOICE_QUEUE_URL",
    "BEALERT_VOICE_CANCEL_QUEUE_URL",
    "BEALERT_VOICE_ROUTINE_QUEUE_URL",
    "BEALERT_VOICE_ORIGINATION",
];

/// One SQS batch: partial batch failures are reported, not raised.
pub async fn handler(
    app: &App,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    bealert_app::lambda::handle_sqs(app, QUEUE, App::send_job, event).await
}
