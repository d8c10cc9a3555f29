//! api-alerts: the API function for alerts (`POST /v1/alerts`, `GET /v1/alerts/{id}[/deliveries]`)
//! and the rest of the operators' API (templates, drills, outlets, the
//! global stop, what the console reads). Operators' routes only: what
//! anyone may call is api-public's, so no outside load takes this
//! function's reserved concurrency.

use bealert_app::App;
use bealert_http::Router;
use std::sync::Arc;

/// This function sends nothing: no gateway (and no messaging SDK) is linked.
pub fn gateways(_: &bealert_aws::AwsHome) -> bealert_app::ports::Gateways {
    bealert_aws::AwsHome::no_gateways()
}

/// Configuration checked at start-up; infra/template.yaml sets it.
pub const REQUIRED_ENV: &[&str] = &[
    "BEALERT_ALERTS_TABLE",
    "BEALERT_DELIVERIES_TABLE",
    "BEALERT_OPERATORS_TABLE",
    "BEALERT_RESOLVE_QUEUE_URL",
    // Drills are EventBridge schedules that invoke the drill function.
    "BEALERT_DRILL_FUNCTION_ARN",
    "BEALERT_SCHEDULER_ROLE_ARN",
];

/// The routes this function answers.
pub fn router(app: Arc<App>) -> Router {
    bealert_http::alerts_router(app)
}
