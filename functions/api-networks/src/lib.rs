//! api-networks: the API function of mobile networks (Alert-SMS):
//! `GET /v1/networks`, `PUT /v1/networks/{name}/cells` (with the network's
//! own key; files over Lambda's 6 MB payload go through a presigned S3
//! upload: `POST /v1/networks/{name}/cells:upload`, then `:load`).

use bealert_app::App;
use bealert_http::Router;
use std::sync::Arc;

/// This function sends nothing: no gateway (and no messaging SDK) is linked.
pub fn gateways(_: &bealert_aws::AwsHome) -> bealert_app::ports::Gateways {
    bealert_aws::AwsHome::no_gateways()
}

/// Configuration checked at start-up; infra/template.yaml sets it.
pub const REQUIRED_ENV: &[&str] = &[
    "BEALERT_NETWORKS_TABLE",
    "BEALERT_OPERATORS_TABLE",
    "BEALERT_UPLOADS_BUCKET",
];

/// The routes this function answers.
pub fn router(app: Arc<App>) -> Router {
    bealert_http::networks_router(app)
}
