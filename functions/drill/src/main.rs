//! drill: Lambda entry point (invoked by EventBridge Scheduler).

use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    bealert_aws::lambda::init_logs();
    let app = bealert_aws::lambda::app(drill::REQUIRED_ENV, drill::gateways).await?;
    run(service_fn(|event: LambdaEvent<_>| {
        drill::handler(&app, event)
    }))
    .await
}
