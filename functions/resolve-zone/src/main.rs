//! resolve-zone: Lambda entry point (SQS event source, ReportBatchItemFailures).

use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    bealert_aws::lambda::init_logs();
    let app = bealert_aws::lambda::app(resolve_zone::REQUIRED_ENV, resolve_zone::gateways).await?;
    run(service_fn(|event: LambdaEvent<_>| {
        resolve_zone::handler(&app, event)
    }))
    .await
}
