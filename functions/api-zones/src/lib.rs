//! api-zones: the API function for zone previews (`POST /v1/zones:preview`).

use bealert_app::App;
use bealert_http::Router;
use std::sync::Arc;

/// This function sends nothing: no gateway (and no messaging SDK) is linked.
pub fn gateways(_: &bealert_aws::AwsHome) -> bealert_app::ports::Gateways {
    bealert_aws::AwsHome::no_gateways()
}

/// Configuration checked at start-up; infra/template.yaml sets it.
pub const REQUIRED_ENV: &[&str] = &["BEALERT_SUBSCRIBERS_TABLE", "BEALERT_OPERATORS_TABLE"];

/// The routes this function answers.
pub fn router(app: Arc<App>) -> Router {
    bealert_http::zones_router(app)
}
