//! send-public: the Lambda function that hands each public channel outlet
//! its part of an alert — social media posts, siren activations, CAP to
//! digital signs — from the three public queues (`public-social`,
//! `public-siren`, `public-sign`), one job per alert and outlet, each
//! queue with its own concurrency: a slow social network never holds a
//! siren.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use bealert_app::App;
use lambda_runtime::LambdaEvent;

/// The prefix of the queues this function consumes (`public-social`,
/// `public-siren`, `public-sign`): each record's own queue is read from its
/// source ARN, and a record without one is refused as poison.
pub const QUEUE: &str = "public";

/// This function sends on no registered channel: only the outlets' HTTP
/// endpoints (their URLs stored with each outlet) are used.
pub fn gateways(_: &bealert_aws::AwsHome) -> bealert_app::ports::Gateways {
    bealert_aws::AwsHome::no_gateways()
}

/// Configuration checked at start-up; infra/template.yaml sets it.
pub const REQUIRED_ENV: &[&str] = &[
    "BEALERT_ALERTS_TABLE",
    "BEALERT_DELIVERIES_TABLE",
    "BEALERT_NETWORKS_TABLE",
    "BEALERT_REGISTRATIONS_TABLE",
    "BEALERT_PUBLIC_SOCIAL_QUEUE_URL",
    "BEALERT_PUBLIC_SIREN_QUEUE_URL",
    "BEALERT_PUBLIC_SIGN_QUEUE_URL",
];

/// One SQS batch: partial batch failures are reported, not raised.
pub async fn handler(
    app: &App,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    bealert_app::lambda::handle_sqs(app, QUEUE, App::public_job, event).await
}
