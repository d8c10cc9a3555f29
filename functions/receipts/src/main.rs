//! receipts: Lambda entry point (SQS receipts queue, CloudWatch Logs subscription).

use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    bealert_aws::lambda::init_logs();
    let app = bealert_aws::lambda::app(receipts::REQUIRED_ENV, receipts::gateways).await?;
    run(service_fn(|event: LambdaEvent<_>| {
        receipts::handler(&app, event)
    }))
    .await
}
