//! Gateways on AWS: SMS through SNS (and the signup's codes through End
//! User Messaging SMS), e-mail through SES, voice through End User
//! Messaging SMS & Voice — each behind a log of sent keys.
//!
//! None of these services takes an idempotency key, so [`LoggedGateway`]
//! keeps one: keys already in the log are not sent again, and a key is
//! logged as soon as its send succeeded. A crash between a send and its log
//! entry can cause one duplicate on retry; never a lost message.

use crate::dynamo::{DynamoStore, Item, key, n, s};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use bealert_app::ports::{Gateway, GatewayError, OutboundMessage, Sent, StoreError};
use bealert_core::Language;
use futures::StreamExt;
use std::collections::HashSet;
use std::sync::Arc;

/// How long a sent key is remembered (the table's TTL attribute).
const LOG_DAYS: i64 = 30;
/// Sends in flight at once per batch.
const PARALLEL_SENDS: usize = 16;

/// Error codes worth retrying, whatever the service.
fn retryable_code(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "Throttling"
                | "ThrottlingException"
                | "ThrottledException"
                | "TooManyRequestsException"
                | "InternalError"
                | "InternalErrorException"
                | "InternalFailure"
                | "InternalServerException"
                | "ServiceUnavailable"
                | "ServiceUnavailableException"
                | "KMSThrottlingException"
        )
    )
}

/// Classifies an SDK error for a gateway: throttling, server errors and
/// transport trouble are retryable (by the kind the service model gives the
/// error, its code, or the HTTP status); the rest is refused for good.
fn gateway_err<E>(
    e: aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> GatewayError
where
    E: aws_sdk_sns::error::ProvideErrorMetadata
        + aws_smithy_types::retry::ProvideErrorKind
        + std::error::Error
        + 'static,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    match &e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            let code = aws_sdk_sns::error::ProvideErrorMetadata::code(err);
            let msg = match (code, aws_sdk_sns::error::ProvideErrorMetadata::message(err)) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                _ => err.to_string(),
            };
            let status = se.raw().status().as_u16();
            let throttled = matches!(
                err.retryable_error_kind(),
                Some(aws_smithy_types::retry::ErrorKind::ThrottlingError)
            ) || status == 429
                || code.is_some_and(|c| c.contains("Throttl") || c == "TooManyRequestsException");
            if throttled {
                GatewayError::Throttled(msg)
            } else if err.retryable_error_kind().is_some()
                || retryable_code(code)
                || status == 429
                || status >= 500
            {
                GatewayError::Retryable(msg)
            } else {
                GatewayError::Permanent(msg)
            }
        }
        other => GatewayError::Retryable(format!("{other}")),
    }
}

/// One message out through one service.
#[async_trait]
pub trait Transmit: Send + Sync {
    /// Sends one message; the service's id for it (which its delivery
    /// status events name), if it gives one.
    async fn transmit(&self, m: &OutboundMessage) -> Result<Option<String>, GatewayError>;
}

/// SMS through SNS `Publish` to a phone number, as a transactional message.
pub struct SnsSms {
    pub client: aws_sdk_sns::Client,
    pub sender_id: Option<String>,
}

#[async_trait]
impl Transmit for SnsSms {
    async fn transmit(&self, m: &OutboundMessage) -> Result<Option<String>, GatewayError> {
        use aws_sdk_sns::types::MessageAttributeValue;
        let attr = |v: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .map_err(|e| GatewayError::Permanent(e.to_string()))
        };
        let mut req = self
            .client
            .publish()
            .phone_number(&m.to)
            .message(m.body())
            .message_attributes("AWS.SNS.SMS.SMSType", attr("Transactional")?);
        if let Some(id) = &self.sender_id {
            req = req.message_attributes("AWS.SNS.SMS.SenderID", attr(id)?);
        }
        req.send().await.map(|o| o.message_id).map_err(gateway_err)
    }
}

/// SMS through End User Messaging SMS `SendTextMessage`, from an
/// origination identity of its own (a pool, sender id or number) under a
/// configuration set of its own, at most `max_price` US dollars a part:
/// the signup's verification codes, apart from the alerts' SMS.
pub struct EumSms {
    pub client: aws_sdk_pinpointsmsvoicev2::Client,
    /// The pool, sender id or phone number (id or ARN) that sends.
    pub origination: String,
    pub configuration_set: Option<String>,
    /// Refused by the service above this price per message part (US
    /// dollars, e.g. `0.10`): a number that costs more is not worth a code.
    pub max_price: Option<String>,
}

#[async_trait]
impl Transmit for EumSms {
    async fn transmit(&self, m: &OutboundMessage) -> Result<Option<String>, GatewayError> {
        use aws_sdk_pinpointsmsvoicev2::types::MessageType;
        self.client
            .send_text_message()
            .destination_phone_number(&m.to)
            .origination_identity(&self.origination)
            .message_body(m.body())
            .message_type(MessageType::Transactional)
            .set_configuration_set_name(self.configuration_set.clone())
            .set_max_price(self.max_price.clone())
            .send()
            .await
            .map(|o| o.message_id)
            .map_err(gateway_err)
    }
}

/// E-mail through SES (v1) `SendRawEmail`: one message per recipient,
/// with a text and an HTML part, `List-Unsubscribe` and a stable
/// `Message-ID` ([`bealert_providers::email::raw_email`]).
#[cfg(feature = "email")]
pub struct SesEmail {
    pub client: aws_sdk_ses::Client,
    pub from: String,
    /// Its event destination publishes delivery receipts (bounces,
    /// complaints, deliveries) for the receipts function.
    pub configuration_set: Option<String>,
}

#[cfg(feature = "email")]
#[async_trait]
impl Transmit for SesEmail {
    async fn transmit(&self, m: &OutboundMessage) -> Result<Option<String>, GatewayError> {
        use aws_sdk_ses::primitives::Blob;
        use aws_sdk_ses::types::RawMessage;
        let raw = bealert_providers::email::raw_email(m, &self.from)?;
        let message = RawMessage::builder()
            .data(Blob::new(raw))
            .build()
            .map_err(|e| GatewayError::Permanent(e.to_string()))?;
        self.client
            .send_raw_email()
            .source(&self.from)
            .destinations(&m.to)
            .raw_message(message)
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await
            .map(|o| Some(o.message_id))
            .map_err(gateway_err)
    }
}

/// Voice calls through End User Messaging SMS & Voice `SendVoiceMessage`,
/// read by a neural voice of the message's language.
pub struct VoiceCalls {
    pub client: aws_sdk_pinpointsmsvoicev2::Client,
    /// The phone number or pool that calls.
    pub origination: String,
    /// Its event destination publishes call outcomes (receipts).
    pub configuration_set: Option<String>,
}

pub fn voice_for(language: Language) -> aws_sdk_pinpointsmsvoicev2::types::VoiceId {
    use aws_sdk_pinpointsmsvoicev2::types::VoiceId;
    match language {
        Language::Nl => VoiceId::Lotte,
        Language::Fr => VoiceId::Lea,
        Language::De => VoiceId::Marlene,
        Language::En => VoiceId::Amy,
    }
}

#[async_trait]
impl Transmit for VoiceCalls {
    async fn transmit(&self, m: &OutboundMessage) -> Result<Option<String>, GatewayError> {
        use aws_sdk_pinpointsmsvoicev2::types::VoiceMessageBodyTextType;
        self.client
            .send_voice_message()
            .destination_phone_number(&m.to)
            .origination_identity(&self.origination)
            .message_body(m.body())
            .message_body_text_type(VoiceMessageBodyTextType::Text)
            .voice_id(voice_for(m.language))
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await
            .map(|o| o.message_id)
            .map_err(gateway_err)
    }
}

fn sent_key(k: &str) -> Item {
    key(format!("SENT#{k}"), "SENT")
}

impl DynamoStore {
    /// Which of these idempotency keys were sent already.
    pub async fn sent_keys(&self, keys: &[String]) -> Result<HashSet<String>, StoreError> {
        let items = self
            .batch_get(
                &self.tables().deliveries,
                keys.iter().map(|k| sent_key(k)).collect(),
            )
            .await?;
        Ok(items
            .iter()
            .filter_map(|i| i.get("pk").and_then(|v| v.as_s().ok()))
            .filter_map(|pk| pk.strip_prefix("SENT#").map(str::to_string))
            .collect())
    }

    /// Logs keys as sent; they expire after a month.
    pub async fn mark_sent(&self, keys: &[String]) -> Result<(), StoreError> {
        let now = bealert_app::now_ms() / 1000;
        let writes = keys
            .iter()
            .map(|k| {
                let mut item = sent_key(k);
                item.insert("at".into(), n(now));
                item.insert("expires_at".into(), n(now + LOG_DAYS * 86_400));
                item.insert("key".into(), s(k.clone()));
                PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map(|p| WriteRequest::builder().put_request(p).build())
                    .map_err(|e| StoreError::Permanent(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_write(&self.tables().deliveries, writes).await
    }
}

/// A gateway that never sends a logged key again.
pub struct LoggedGateway<T> {
    transmit: T,
    log: Arc<DynamoStore>,
}

impl<T: Transmit> LoggedGateway<T> {
    pub fn new(transmit: T, log: Arc<DynamoStore>) -> Self {
        Self { transmit, log }
    }
}

#[async_trait]
impl<T: Transmit> Gateway for LoggedGateway<T> {
    async fn send(&self, messages: &[OutboundMessage]) -> Vec<Result<Sent, GatewayError>> {
        let keys: Vec<String> = messages.iter().map(|m| m.key.clone()).collect();
        let already = match self.log.sent_keys(&keys).await {
            Ok(k) => k,
            Err(e) => {
                let err = GatewayError::Retryable(format!("sent log unavailable: {e}"));
                return vec![Err(err); messages.len()];
            }
        };
        // Owned messages: a stream of borrowed ones trips the compiler's
        // Send check across async_trait (higher-ranked lifetimes).
        let mut seen = HashSet::new();
        let work: Vec<(OutboundMessage, bool)> = messages
            .iter()
            .map(|m| {
                (
                    m.clone(),
                    already.contains(&m.key) || !seen.insert(m.key.clone()),
                )
            })
            .collect();
        // Each key is logged as soon as its message is sent, not after the
        // batch: what remains between a send and its log entry is one
        // message's round trip (a crash there can repeat that one message).
        futures::stream::iter(work)
            .map(|(m, skip)| async move {
                if skip {
                    return Ok(Sent::AlreadySent);
                }
                if let Some(late) = m.too_late(bealert_app::now_ms()) {
                    return Err(late);
                }
                let id = self.transmit.transmit(&m).await?;
                if let Err(e) = self.log.mark_sent(std::slice::from_ref(&m.key)).await {
                    // Sent, but not logged: a retry before the delivery is recorded may repeat it.
                    tracing::warn!(error = %e, key = %m.key, "could not log a sent key");
                }
                Ok(id.map_or_else(Sent::accepted, Sent::accepted_as))
            })
            .buffered(PARALLEL_SENDS)
            .collect()
            .await
    }
}
