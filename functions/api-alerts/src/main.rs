//! api-alerts: Lambda entry point (API Gateway HTTP API).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bealert_aws::lambda::init_logs();
    let app = bealert_aws::lambda::app(api_alerts::REQUIRED_ENV, api_alerts::gateways).await?;
    lambda_http::run(api_alerts::router(app)).await
}
