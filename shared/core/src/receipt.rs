//! Delivery receipts: what providers report after a message left, read from
//! each provider's own format into one [`Receipt`].
//!
//! * SNS SMS delivery status (CloudWatch Logs lines): [`from_sns_sms_log`];
//! * SES events (configuration-set event publishing or notifications, as
//!   SNS delivers them): [`from_ses_event`];
//! * End User Messaging SMS & Voice events (voice calls): [`from_sms_voice_event`];
//! * an SMS aggregator's webhook, bealert's documented contract: [`from_webhook`].
//!
//! A receipt names its message by the provider's id for it (kept per
//! delivery when it was handed over) or by bealert's idempotency key when
//! the provider echoes it. Events that say nothing final (sent, opened,
//! ringing…) are `Ok(None)`: not receipts.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What the provider says became of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    Delivered,
    Failed,
}

/// Why a contact should not be tried again: the next alert skips it until
/// the person registers it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactProblem {
    /// A hard bounce or an invalid / unallocated number.
    Invalid,
    /// The recipient marked the message as spam.
    Complained,
    /// The recipient replied STOP (or opted out at the provider).
    OptedOut,
}

impl ContactProblem {
    pub fn as_str(self) -> &'static str {
        match self {
            ContactProblem::Invalid => "invalid",
            ContactProblem::Complained => "complained",
            ContactProblem::OptedOut => "opted_out",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Invalid, Self::Complained, Self::OptedOut]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receipt {
    /// The provider's name as deliveries record it (`sns`, `ses`, `voice`,
    /// or an aggregator's configured name).
    pub provider: String,
    /// The provider's id of the message.
    pub id: Option<String>,
    /// bealert's idempotency key (`alert:channel:subscriber`), if echoed.
    pub key: Option<String>,
    pub status: ReceiptStatus,
    /// For a failure: the provider's reason, as it gave it.
    pub reason: Option<String>,
    /// The contact itself is the problem (not this one message).
    pub problem: Option<ContactProblem>,
    /// When the provider saw it happen (Unix ms), if it says.
    pub at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a receipt: {0}")]
pub struct ReceiptError(pub String);

fn bad(what: impl Into<String>) -> ReceiptError {
    ReceiptError(what.into())
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

fn rfc3339_ms(s: &str) -> Option<i64> {
    s.parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
}

/// An SNS SMS delivery status log line, e.g.
/// `{"notification":{"messageId":"…","timestamp":"2026-11-30 10:00:01.123"},
///   "delivery":{"providerResponse":"…",…},"status":"SUCCESS"}`.
pub fn from_sns_sms_log(line: &str) -> Result<Receipt, ReceiptError> {
    let v: Value = serde_json::from_str(line).map_err(|e| bad(format!("not JSON: {e}")))?;
    let id = str_at(&v, &["notification", "messageId"])
        .ok_or_else(|| bad("no notification.messageId"))?;
    let response = str_at(&v, &["delivery", "providerResponse"]).unwrap_or("");
    let status = match v.get("status").and_then(Value::as_str) {
        Some("SUCCESS") => ReceiptStatus::Delivered,
        Some("FAILURE") => ReceiptStatus::Failed,
        other => return Err(bad(format!("status {other:?}, not SUCCESS or FAILURE"))),
    };
    let at = str_at(&v, &["notification", "timestamp"])
        .and_then(|t| rfc3339_ms(&format!("{}Z", t.replacen(' ', "T", 1))));
    let lower = response.to_ascii_lowercase();
    let problem = (status == ReceiptStatus::Failed)
        .then(|| {
            if lower.contains("opted out") {
                Some(ContactProblem::OptedOut)
            } else if lower.contains("invalid") || lower.contains("unallocated") {
                Some(ContactProblem::Invalid)
            } else {
                None
            }
        })
        .flatten();
    Ok(Receipt {
        provider: "sns".into(),
        id: Some(id.to_string()),
        key: None,
        status,
        reason: (status == ReceiptStatus::Failed).then(|| response.to_string()),
        problem,
        at,
    })
}

/// An SES event (`eventType`, configuration-set event publishing) or
/// notification (`notificationType`). Delivery, Bounce, Complaint and
/// Reject are receipts; Send, Open, Click, DeliveryDelay… are not.
pub fn from_ses_event(v: &Value) -> Result<Option<Receipt>, ReceiptError> {
    let kind = v
        .get("eventType")
        .or_else(|| v.get("notificationType"))
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no eventType or notificationType"))?;
    let id = str_at(v, &["mail", "messageId"]).ok_or_else(|| bad("no mail.messageId"))?;
    let receipt = |status, reason: Option<String>, problem, when: Option<&str>| {
        Ok(Some(Receipt {
            provider: "ses".into(),
            id: Some(id.to_string()),
            key: None,
            status,
            reason,
            problem,
            at: when.and_then(rfc3339_ms),
        }))
    };
    match kind {
        "Delivery" => receipt(
            ReceiptStatus::Delivered,
            None,
            None,
            str_at(v, &["delivery", "timestamp"]),
        ),
        "Bounce" => {
            let b = v
                .get("bounce")
                .ok_or_else(|| bad("Bounce without bounce"))?;
            let kind = b.get("bounceType").and_then(Value::as_str).unwrap_or("");
            let sub = b.get("bounceSubType").and_then(Value::as_str).unwrap_or("");
            let diagnostic = b
                .get("bouncedRecipients")
                .and_then(|r| r.get(0))
                .and_then(|r| r.get("diagnosticCode"))
                .and_then(Value::as_str);
            let reason = match diagnostic {
                Some(d) => format!("bounced ({kind}, {sub}): {d}"),
                None => format!("bounced ({kind}, {sub})"),
            };
            // A permanent bounce is a dead address; a transient one
            // (mailbox full, too large) says nothing about the next alert.
            let problem = (kind == "Permanent").then_some(ContactProblem::Invalid);
            receipt(
                ReceiptStatus::Failed,
                Some(reason),
                problem,
                b.get("timestamp").and_then(Value::as_str),
            )
        }
        "Complaint" => {
            let c = v.get("complaint");
            let feedback = c
                .and_then(|c| c.get("complaintFeedbackType"))
                .and_then(Value::as_str)
                .unwrap_or("unspecified");
            // The message was delivered; the person does not want more.
            receipt(
                ReceiptStatus::Delivered,
                Some(format!("complaint: {feedback}")),
                Some(ContactProblem::Complained),
                c.and_then(|c| c.get("timestamp")).and_then(Value::as_str),
            )
        }
        "Reject" => {
            let why = str_at(v, &["reject", "reason"]).unwrap_or("rejected");
            receipt(
                ReceiptStatus::Failed,
                Some(format!("rejected by SES: {why}")),
                None,
                None,
            )
        }
        _ => Ok(None),
    }
}

/// An End User Messaging SMS & Voice event (`VOICE_COMPLETED`,
/// `TEXT_DELIVERED`, …). Events that are not final (`isFinal: false`:
/// initiated, ringing, queued) are not receipts.
pub fn from_sms_voice_event(v: &Value) -> Result<Option<Receipt>, ReceiptError> {
    let kind = v
        .get("eventType")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no eventType"))?;
    let id = v
        .get("messageId")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no messageId"))?;
    if v.get("isFinal").and_then(Value::as_bool) == Some(false) {
        return Ok(None);
    }
    let description = v
        .get("messageStatusDescription")
        .and_then(Value::as_str)
        .unwrap_or(kind);
    let (provider, status, problem) = match kind {
        "VOICE_COMPLETED" => ("voice", ReceiptStatus::Delivered, None),
        "VOICE_BUSY" | "VOICE_NO_ANSWER" | "VOICE_FAILED" | "VOICE_TTL_EXPIRED" => {
            ("voice", ReceiptStatus::Failed, None)
        }
        "TEXT_DELIVERED" | "TEXT_SUCCESSFUL" => ("sms-voice", ReceiptStatus::Delivered, None),
        "TEXT_INVALID" => (
            "sms-voice",
            ReceiptStatus::Failed,
            Some(ContactProblem::Invalid),
        ),
        k if k.starts_with("TEXT_") && k != "TEXT_QUEUED" && k != "TEXT_PENDING" => {
            ("sms-voice", ReceiptStatus::Failed, None)
        }
        _ => return Ok(None),
    };
    Ok(Some(Receipt {
        provider: provider.into(),
        id: Some(id.to_string()),
        key: None,
        status,
        reason: (status == ReceiptStatus::Failed).then(|| description.to_string()),
        problem,
        at: v.get("eventTimestamp").and_then(Value::as_i64),
    }))
}

/// A receipt as a queue carries it: an SES or End User Messaging event,
/// bare (raw message delivery) or inside the SNS notification that brought
/// it (`{"Type": "Notification", "Message": "<event JSON>"}`).
pub fn from_queue_message(body: &str) -> Result<Option<Receipt>, ReceiptError> {
    let v: Value = serde_json::from_str(body).map_err(|e| bad(format!("not JSON: {e}")))?;
    let event = match (v.get("Type").and_then(Value::as_str), v.get("Message")) {
        (Some("Notification"), Some(Value::String(m))) => {
            serde_json::from_str(m).map_err(|e| bad(format!("SNS Message is not JSON: {e}")))?
        }
        (Some(other), _) if other != "Notification" => {
            // A subscription confirmation or the like: nothing to apply.
            return Ok(None);
        }
        _ => v,
    };
    if event.get("mail").is_some() {
        from_ses_event(&event)
    } else if event
        .get("eventType")
        .and_then(Value::as_str)
        .is_some_and(|t| t.starts_with("VOICE_") || t.starts_with("TEXT_"))
    {
        from_sms_voice_event(&event)
    } else {
        Err(bad("neither an SES nor an SMS and voice event"))
    }
}

/// One receipt as an aggregator posts it to `POST /v1/receipts/{provider}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookReceipt {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    key: Option<String>,
    status: WebhookStatus,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    at: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WebhookStatus {
    Delivered,
    Failed,
    /// The number does not exist (a hard bounce).
    Undeliverable,
    /// The recipient replied STOP.
    OptedOut,
}

/// Most receipts one webhook call may carry.
pub const MAX_WEBHOOK_RECEIPTS: usize = 1000;

/// An aggregator's webhook body: one receipt object or an array of them,
/// each `{"id"|"key", "status": "delivered"|"failed"|"undeliverable"|
/// "opted_out", "reason"?, "at"? (RFC 3339)}`.
pub fn from_webhook(provider: &str, body: &[u8]) -> Result<Vec<Receipt>, ReceiptError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| bad(format!("not JSON: {e}")))?;
    let items = match v {
        Value::Array(items) => items,
        one @ Value::Object(_) => vec![one],
        _ => return Err(bad("send one receipt object or an array of them")),
    };
    if items.len() > MAX_WEBHOOK_RECEIPTS {
        return Err(bad(format!(
            "{} receipts in one call: send at most {MAX_WEBHOOK_RECEIPTS}",
            items.len()
        )));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let r: WebhookReceipt = serde_json::from_value(item)
                .map_err(|e| bad(format!("receipt {i}: {e}")))?;
            if r.id.is_none() && r.key.is_none() {
                return Err(bad(format!(
                    "receipt {i}: give the message's \"id\" (yours) or \"key\" (bealert's Idempotency-Key)"
                )));
            }
            let at = match &r.at {
                Some(t) => Some(rfc3339_ms(t).ok_or_else(|| {
                    bad(format!("receipt {i}: at {t:?} is not an RFC 3339 time"))
                })?),
                None => None,
            };
            let (status, problem) = match r.status {
                WebhookStatus::Delivered => (ReceiptStatus::Delivered, None),
                WebhookStatus::Failed => (ReceiptStatus::Failed, None),
                WebhookStatus::Undeliverable => {
                    (ReceiptStatus::Failed, Some(ContactProblem::Invalid))
                }
                WebhookStatus::OptedOut => (ReceiptStatus::Failed, Some(ContactProblem::OptedOut)),
            };
            let reason = match (r.status, r.reason) {
                (WebhookStatus::Delivered, _) => None,
                (_, Some(reason)) => Some(reason),
                (WebhookStatus::Undeliverable, None) => {
                    Some("undeliverable: the number does not exist".into())
                }
                (WebhookStatus::OptedOut, None) => {
                    Some("opted out: the recipient replied STOP".into())
                }
                (WebhookStatus::Failed, None) => Some("failed".into()),
            };
            Ok(Receipt {
                provider: provider.to_string(),
                id: r.id,
                key: r.key,
                status,
                reason,
                problem,
                at,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sns_sms_logs_read_success_failure_and_opt_out() {
        let ok = from_sns_sms_log(
            r#"{"notification":{"messageId":"m-1","timestamp":"2026-11-30 10:00:01.123"},
                "delivery":{"destination":"+32470000001","providerResponse":"Message has been accepted by phone carrier","dwellTimeMs":599},
                "status":"SUCCESS"}"#,
        )
        .unwrap();
        assert_eq!(ok.status, ReceiptStatus::Delivered);
        assert_eq!(
            (ok.provider.as_str(), ok.id.as_deref()),
            ("sns", Some("m-1"))
        );
        assert_eq!(ok.at, Some(1_796_032_801_123));
        assert_eq!((ok.reason, ok.problem), (None, None));

        let out = from_sns_sms_log(
            r#"{"notification":{"messageId":"m-2","timestamp":"2026-11-30 10:00:02.000"},
                "delivery":{"providerResponse":"This phone number is opted out"},"status":"FAILURE"}"#,
        )
        .unwrap();
        assert_eq!(out.status, ReceiptStatus::Failed);
        assert_eq!(out.problem, Some(ContactProblem::OptedOut));
        assert_eq!(
            out.reason.as_deref(),
            Some("This phone number is opted out")
        );

        let away = from_sns_sms_log(
            r#"{"notification":{"messageId":"m-3"},"delivery":{"providerResponse":"Phone is currently unreachable/unavailable"},"status":"FAILURE"}"#,
        )
        .unwrap();
        assert_eq!((away.status, away.problem), (ReceiptStatus::Failed, None));

        assert!(from_sns_sms_log("{}").is_err());
        assert!(from_sns_sms_log("not json").is_err());
    }

    #[test]
    fn ses_events_tell_hard_bounces_from_soft_ones_and_ignore_opens() {
        let mail = json!({"messageId": "ses-1", "timestamp": "2026-11-30T10:00:00.000Z"});
        let hard = from_ses_event(&json!({
            "eventType": "Bounce", "mail": mail,
            "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
                       "timestamp": "2026-11-30T10:00:03.000Z",
                       "bouncedRecipients": [{"emailAddress": "a@example.be", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]}
        }))
        .unwrap()
        .unwrap();
        assert_eq!(hard.status, ReceiptStatus::Failed);
        assert_eq!(hard.problem, Some(ContactProblem::Invalid));
        assert!(hard.reason.unwrap().contains("550 5.1.1 user unknown"));

        let soft = from_ses_event(&json!({
            "notificationType": "Bounce", "mail": mail,
            "bounce": {"bounceType": "Transient", "bounceSubType": "MailboxFull"}
        }))
        .unwrap()
        .unwrap();
        assert_eq!((soft.status, soft.problem), (ReceiptStatus::Failed, None));

        let complaint = from_ses_event(&json!({
            "eventType": "Complaint", "mail": mail,
            "complaint": {"complaintFeedbackType": "abuse", "timestamp": "2026-11-30T10:05:00.000Z"}
        }))
        .unwrap()
        .unwrap();
        assert_eq!(complaint.problem, Some(ContactProblem::Complained));

        let delivered = from_ses_event(&json!({
            "eventType": "Delivery", "mail": mail,
            "delivery": {"timestamp": "2026-11-30T10:00:02.000Z", "smtpResponse": "250 ok"}
        }))
        .unwrap()
        .unwrap();
        assert_eq!(delivered.status, ReceiptStatus::Delivered);
        assert_eq!(delivered.at, Some(1_796_032_802_000));

        assert_eq!(
            from_ses_event(&json!({"eventType": "Open", "mail": mail})).unwrap(),
            None
        );
        assert!(from_ses_event(&json!({"eventType": "Delivery"})).is_err());
    }

    #[test]
    fn voice_outcomes_are_receipts_only_when_final() {
        let done = from_sms_voice_event(&json!({
            "eventType": "VOICE_COMPLETED", "isFinal": true, "messageId": "v-1",
            "eventTimestamp": 1_796_032_805_000i64, "messageStatus": "COMPLETED"
        }))
        .unwrap()
        .unwrap();
        assert_eq!(
            (done.provider.as_str(), done.status, done.at),
            ("voice", ReceiptStatus::Delivered, Some(1_796_032_805_000))
        );
        let busy = from_sms_voice_event(&json!({
            "eventType": "VOICE_BUSY", "isFinal": true, "messageId": "v-2",
            "messageStatusDescription": "The line was busy"
        }))
        .unwrap()
        .unwrap();
        assert_eq!(busy.reason.as_deref(), Some("The line was busy"));
        assert_eq!(
            from_sms_voice_event(
                &json!({"eventType": "VOICE_RINGING", "isFinal": false, "messageId": "v-3"})
            )
            .unwrap(),
            None
        );
    }

    #[test]
    fn queue_messages_are_read_bare_or_in_their_sns_envelope() {
        let ses = json!({"eventType": "Delivery", "mail": {"messageId": "s-1"},
                         "delivery": {"timestamp": "2026-11-30T10:00:02.000Z"}});
        let wrapped =
            json!({"Type": "Notification", "MessageId": "n-1", "Message": ses.to_string()});
        for body in [ses.to_string(), wrapped.to_string()] {
            let r = from_queue_message(&body).unwrap().unwrap();
            assert_eq!(
                (r.provider.as_str(), r.status),
                ("ses", ReceiptStatus::Delivered)
            );
        }
        let voice = json!({"eventType": "VOICE_NO_ANSWER", "isFinal": true, "messageId": "v-9"});
        let r = from_queue_message(&voice.to_string()).unwrap().unwrap();
        assert_eq!(
            (r.provider.as_str(), r.status),
            ("voice", ReceiptStatus::Failed)
        );
        let confirm = json!({"Type": "SubscriptionConfirmation", "SubscribeURL": "https://…"});
        assert_eq!(from_queue_message(&confirm.to_string()).unwrap(), None);
        assert!(from_queue_message(r#"{"hello": 1}"#).is_err());
        assert!(from_queue_message("nope").is_err());
    }

    #[test]
    fn a_webhook_takes_one_receipt_or_many_and_says_what_is_wrong() {
        let one = from_webhook(
            "agg",
            br#"{"id":"a-1","status":"delivered","at":"2026-11-30T10:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].provider, "agg");
        assert_eq!(one[0].at, Some(1_796_032_800_000));
        let many = from_webhook(
            "agg",
            br#"[{"key":"k","status":"opted_out"},{"id":"a-2","status":"undeliverable","reason":"unallocated number"}]"#,
        )
        .unwrap();
        assert_eq!(many[0].problem, Some(ContactProblem::OptedOut));
        assert_eq!(
            many[0].reason.as_deref(),
            Some("opted out: the recipient replied STOP")
        );
        assert_eq!(many[1].problem, Some(ContactProblem::Invalid));
        assert_eq!(many[1].reason.as_deref(), Some("unallocated number"));

        for (body, says) in [
            (&br#"{"status":"delivered"}"#[..], "\"id\""),
            (br#"{"id":"x","status":"lost"}"#, "unknown variant"),
            (
                br#"{"id":"x","status":"failed","colour":"red"}"#,
                "unknown field",
            ),
            (
                br#"{"id":"x","status":"failed","at":"yesterday"}"#,
                "RFC 3339",
            ),
            (br#"42"#, "array"),
        ] {
            let e = from_webhook("agg", body).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        }
    }
}
