//! api-signup: Lambda entry point (API Gateway REST API).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bealert_aws::lambda::init_logs();
    let app =
        bealert_aws::lambda::signup_app(api_signup::REQUIRED_ENV, api_signup::gateways).await?;
    lambda_http::run(api_signup::router(app)).await
}
