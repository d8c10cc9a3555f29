//! receipts: the Lambda function that applies providers' delivery receipts.
//!
//! Two triggers, one handler:
//! * the receipts queue (SQS), fed by an SNS topic that SES (configuration
//!   set event destination: Delivery, Bounce, Complaint, Reject) and End
//!   User Messaging SMS & Voice (voice call outcomes) publish to;
//! * a CloudWatch Logs subscription on SNS's SMS delivery status log groups
//!   (`sns/<region>/<account>/DirectPublishToPhoneNumber[/Failure]`): SNS
//!   writes SMS receipts there and nowhere else.
//!
//! Anything that is not a receipt bealert knows is logged and dropped: a
//! malformed message is never retried into a loop. A storage failure fails
//! the invocation, and the trigger retries it (receipts apply once: a
//! repeated one changes nothing).

use base64::Engine;
use bealert_app::App;
use bealert_core::receipt::{Receipt, from_queue_message, from_sns_sms_log};
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use std::io::Read;

/// No message is sent from here.
pub fn gateways(_: &bealert_aws::AwsHome) -> bealert_app::ports::Gateways {
    bealert_aws::AwsHome::no_gateways()
}

/// Configuration checked at start-up; infra/template.yaml sets it.
pub const REQUIRED_ENV: &[&str] = &[
    "BEALERT_ALERTS_TABLE",
    "BEALERT_DELIVERIES_TABLE",
    "BEALERT_SUBSCRIBERS_TABLE",
];

/// Most bytes a decompressed CloudWatch Logs batch may have (they are at
/// most 1 MB compressed; this bounds a hostile one).
const MAX_LOG_BATCH: u64 = 64 * 1024 * 1024;

/// The SNS SMS delivery status lines of a CloudWatch Logs subscription
/// event (`{"awslogs": {"data": base64(gzip(json))}}`).
pub fn log_lines(data: &str) -> Result<Vec<String>, String> {
    let zipped = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| format!("awslogs.data is not base64: {e}"))?;
    let mut json = String::new();
    flate2::read::GzDecoder::new(zipped.as_slice())
        .take(MAX_LOG_BATCH)
        .read_to_string(&mut json)
        .map_err(|e| format!("awslogs.data is not gzip: {e}"))?;
    let batch: Value =
        serde_json::from_str(&json).map_err(|e| format!("awslogs batch is not JSON: {e}"))?;
    if batch["messageType"] == "CONTROL_MESSAGE" {
        return Ok(Vec::new());
    }
    Ok(batch["logEvents"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter_map(|e| e["message"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

/// The receipts an event carries; what is not one is logged and skipped.
pub fn receipts_of(event: &Value) -> Result<Vec<Receipt>, String> {
    let mut out = Vec::new();
    if let Some(data) = event["awslogs"]["data"].as_str() {
        for line in log_lines(data)? {
            match from_sns_sms_log(&line) {
                Ok(r) => out.push(r),
                Err(e) => tracing::warn!(error = %e, "SNS delivery status line skipped"),
            }
        }
    } else if let Some(records) = event["Records"].as_array() {
        for r in records {
            let body = r["body"].as_str().unwrap_or_default();
            match from_queue_message(body) {
                Ok(Some(receipt)) => out.push(receipt),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, id = %r["messageId"], "queue message skipped"),
            }
        }
    } else {
        return Err(
            "not a receipts event: expected SQS Records or a CloudWatch Logs awslogs batch".into(),
        );
    }
    Ok(out)
}

/// One invocation: the receipts applied, and what became of them.
pub async fn handler(app: &App, event: LambdaEvent<Value>) -> Result<Value, lambda_runtime::Error> {
    let receipts = receipts_of(&event.payload)?;
    let report = app
        .apply_receipts(&receipts)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(
        receipts = receipts.len(),
        applied = report.applied,
        unchanged = report.unchanged,
        ignored = report.ignored,
        contacts_stopped = report.contacts_stopped,
        "receipts applied"
    );
    Ok(serde_json::to_value(report)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostile_or_broken_log_batch_is_refused_with_a_reason() {
        assert!(log_lines("!!!").unwrap_err().contains("base64"));
        assert!(log_lines("aGVsbG8=").unwrap_err().contains("gzip"));
        assert!(
            receipts_of(&serde_json::json!({"detail": {}}))
                .unwrap_err()
                .contains("not a receipts event")
        );
    }
}
