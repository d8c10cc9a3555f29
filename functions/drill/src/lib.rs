//! drill: the Lambda function EventBridge Scheduler invokes for each run of
//! a drill (`{"drill_id": ..., "scheduled_time": ...}`): an Exercise alert
//! from the drill's template, once per scheduled time.

use bealert_app::App;
use lambda_runtime::LambdaEvent;

/// No registered channel is sent from here: the alert's jobs go to the
/// resolve queue like any alert's.
pub fn gateways(_: &bealert_aws::AwsHome) -> bealert_app::ports::Gateways {
    bealert_aws::AwsHome::no_gateways()
}

/// Configuration checked at start-up; infra/template.yaml sets it.
pub const REQUIRED_ENV: &[&str] = &[
    "BEALERT_ALERTS_TABLE",
    "BEALERT_DELIVERIES_TABLE",
    "BEALERT_OPERATORS_TABLE",
    "BEALERT_SUBSCRIBERS_TABLE",
    "BEALERT_GEOGRAPHY_TABLE",
    "BEALERT_NETWORKS_TABLE",
    "BEALERT_RESOLVE_QUEUE_URL",
];

/// What EventBridge Scheduler sends.
#[derive(Debug, serde::Deserialize)]
pub struct DrillEvent {
    pub drill_id: String,
    /// RFC 3339 (`<aws.scheduler.scheduled-time>`); now if absent.
    #[serde(default)]
    pub scheduled_time: Option<String>,
}

/// One run. The answer names the alert sent (or none if the drill is gone).
pub async fn handler(
    app: &App,
    event: LambdaEvent<serde_json::Value>,
) -> Result<serde_json::Value, lambda_runtime::Error> {
    let e: DrillEvent = serde_json::from_value(event.payload)
        .map_err(|e| format!("not a drill event: {e}; expected {{\"drill_id\": ...}}"))?;
    let at = match e.scheduled_time.as_deref() {
        Some(t) => bealert_core::cap::parse_time(t)
            .ok_or_else(|| format!("scheduled_time {t:?} is not an RFC 3339 time"))?,
        None => bealert_app::now_ms(),
    };
    let alert = app
        .run_drill(&e.drill_id, at)
        .await
        .map_err(|e| e.to_string())?;
    Ok(serde_json::json!({ "drill_id": e.drill_id, "alert_id": alert }))
}
