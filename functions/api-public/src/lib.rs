//! api-public: the API function for what anyone may call without an
//! operator's key - the public page, its CAP files and the Atom feed
//! (`/alerts`, `/alerts/{file}`, `/feed.atom`), the console's page and
//! files (`/console`, `/console/{file}`) and providers' delivery receipts
//! (`POST /v1/receipts/{provider}`). Its own reserved concurrency: outside
//! load here never takes api-alerts' (which creates, approves and cancels
//! alerts).

use bealert_app::App;
use bealert_http::Router;
use std::sync::Arc;

/// This function sends nothing: no gateway (and no messaging SDK) is linked.
pub fn gateways(_: &bealert_aws::AwsHome) -> bealert_app::ports::Gateways {
    bealert_aws::AwsHome::no_gateways()
}

/// Configuration checked at start-up; infra/template.yaml sets it.
pub const REQUIRED_ENV: &[&str] = &[
    // The public page and the feed.
    "BEALERT_ALERTS_TABLE",
    // Receipts change deliveries and take dead contacts off their channels.
    "BEALERT_DELIVERIES_TABLE",
    "BEALERT_SUBSCRIBERS_TABLE",
    // The console map's outlines.
    "BEALERT_GEOGRAPHY_TABLE",
];

/// The routes this function answers.
pub fn router(app: Arc<App>) -> Router {
    bealert_http::public_router(app)
}
