//! send-sms: Lambda entry point (SQS event source, ReportBatchItemFailures).

use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    bealert_aws::lambda::init_logs();
    let app = bealert_aws::lambda::app(send_sms::REQUIRED_ENV, send_sms::gateways).await?;
    run(service_fn(|event: LambdaEvent<_>| {
        send_sms::handler(&app, event)
    }))
    .await
}
