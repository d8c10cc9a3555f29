//! api-signup: the citizens' function - the signup page (`/`, `/signup/...`,
//! `/manage/...`) and its JSON routes (`POST /v1/subscribers`, `:verify`,
//! `:resend`, `/v1/signup/...`).

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use bealert_app::App;
use bealert_http::Router;
use bealert_http::limit::ClientIp;
use std::sync::Arc;

/// The alerts' channels: none — this function sends no alert. Codes and
/// self-service links leave through the signup's own sending identity
/// ([`bealert_aws::AwsHome::code_gateways`], `BEALERT_CODES_*`), never
/// the alerts'.
pub fn gateways(_home: &bealert_aws::AwsHome) -> bealert_app::ports::Gateways {
    bealert_aws::AwsHome::no_gateways()
}

/// Configuration checked at start-up; infra/template.yaml sets it.
pub const REQUIRED_ENV: &[&str] = &[
    "BEALERT_REGISTRATIONS_TABLE",
    "BEALERT_SUBSCRIBERS_TABLE",
    "BEALERT_ALERTS_TABLE",
    "BEALERT_DELIVERIES_TABLE",
    "BEALERT_OPERATORS_TABLE",
    "BEALERT_PLACE_INDEX",
    "BEALERT_SIGNUP_SECRET",
    "BEALERT_PUBLIC_URL",
    "BEALERT_CODES_EMAIL_FROM",
];

/// The client address API Gateway saw, for the per-client signup limit.
async fn client_from_context(mut request: Request, next: Next) -> Response {
    use lambda_http::request::RequestContext;
    let ip = match request.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx.identity.source_ip.clone(),
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.clone(),
        _ => None,
    };
    if let Some(ip) = ip.and_then(|s| s.parse().ok()) {
        request.extensions_mut().insert(ClientIp(ip));
    }
    next.run(request).await
}

/// The routes this function answers.
pub fn router(app: Arc<App>) -> Router {
    bealert_http::signup_router(app).layer(axum::middleware::from_fn(client_from_context))
}
