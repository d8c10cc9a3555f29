//! send-public: Lambda entry point (SQS event sources, ReportBatchItemFailures).

use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    bealert_aws::lambda::init_logs();
    let app = bealert_aws::lambda::app(send_public::REQUIRED_ENV, send_public::gateways).await?;
    run(service_fn(|event: LambdaEvent<_>| {
        send_public::handler(&app, event)
    }))
    .await
}
