//! api-subscribers: Lambda entry point (API Gateway HTTP API).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bealert_aws::lambda::init_logs();
    // Imports never meet an alert: no Alert-SMS clients in this package.
    let app = bealert_aws::lambda::app_without_alert_sms(
        api_subscribers::REQUIRED_ENV,
        api_subscribers::gateways,
    )
    .await?;
    lambda_http::run(api_subscribers::router(app)).await
}
