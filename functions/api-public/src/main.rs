//! api-public: Lambda entry point (API Gateway REST API).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bealert_aws::lambda::init_logs();
    let app = bealert_aws::lambda::app(api_public::REQUIRED_ENV, api_public::gateways).await?;
    lambda_http::run(api_public::router(app)).await
}
