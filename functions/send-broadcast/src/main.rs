//! send-broadcast: Lambda entry point (SQS event source, ReportBatchItemFailures).

use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    bealert_aws::lambda::init_logs();
    let app =
        bealert_aws::lambda::app(send_broadcast::REQUIRED_ENV, send_broadcast::gateways).await?;
    run(service_fn(|event: LambdaEvent<_>| {
        send_broadcast::handler(&app, event)
    }))
    .await
}
