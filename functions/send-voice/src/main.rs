//! send-voice: Lambda entry point (SQS event source, ReportBatchItemFailures).

use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    bealert_aws::lambda::init_logs();
    let app = bealert_aws::lambda::app(send_voice::REQUIRED_ENV, send_voice::gateways).await?;
    run(service_fn(|event: LambdaEvent<_>| {
        send_voice::handler(&app, event)
    }))
    .await
}
