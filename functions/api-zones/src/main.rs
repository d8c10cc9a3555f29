//! api-zones: Lambda entry point (API Gateway HTTP API).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bealert_aws::lambda::init_logs();
    let app = bealert_aws::lambda::app(api_zones::REQUIRED_ENV, api_zones::gateways).await?;
    lambda_http::run(api_zones::router(app)).await
}
