//! The job queue on SQS: one queue per bealert queue, each with a
//! dead-letter queue (redrive after `maxReceiveCount` receives).

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use bealert_app::ports::{DeadLetter, JobQueue, QueueDepth, QueueError, ReceivedJob};
use bealert_core::SubscriberId;
use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// SQS limits: messages per batch and bytes per batch (and per message).
const MAX_BATCH: usize = 10;
const MAX_BATCH_BYTES: usize = 256 * 1024;

fn qerr<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    what: &str,
    e: SdkError<E, R>,
) -> QueueError {
    match &e {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("error");
            let message = format!("{what}: {code}: {}", se.err().message().unwrap_or(""));
            // Throttling and SQS's own failures pass; any other refusal
            // (no such queue, a bad request, no access) does not.
            let passes = code.contains("Throttl")
                || matches!(
                    code,
                    "RequestThrottled"
                        | "ServiceUnavailable"
                        | "InternalError"
                        | "InternalFailure"
                        | "KmsThrottled"
                );
            if passes {
                QueueError::Transient(message)
            } else {
                QueueError::Permanent(message)
            }
        }
        // No answer: a timeout, a connection that failed, a broken response.
        other => QueueError::Transient(format!("{what}: {other}")),
    }
}

/// The message attribute a dead letter's reason travels in (SQS keeps no
/// error with a message otherwise).
const ERROR_ATTRIBUTE: &str = "bealert-error";

pub struct SqsQueue {
    client: Client,
    prefix: String,
    urls: RwLock<HashMap<String, String>>,
    requests: AtomicU64,
}

impl SqsQueue {
    /// Queue `name` is the SQS queue `<prefix><name>`, found by name.
    pub fn new(client: Client, prefix: &str) -> Self {
        Self {
            client,
            prefix: prefix.to_string(),
            urls: RwLock::new(HashMap::new()),
            requests: AtomicU64::new(0),
        }
    }

    /// Send, receive, delete and visibility requests made so far (for the benchmark).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn count(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Queues whose URLs are known (a Lambda's environment); others are looked up by name.
    pub fn with_urls(client: Client, prefix: &str, urls: HashMap<String, String>) -> Self {
        Self {
            client,
            prefix: prefix.to_string(),
            urls: RwLock::new(urls),
            requests: AtomicU64::new(0),
        }
    }

    async fn url(&self, queue: &str) -> Result<String, QueueError> {
        if let Some(u) = self.urls.read().ok().and_then(|m| m.get(queue).cloned()) {
            return Ok(u);
        }
        let name = format!("{}{queue}", self.prefix);
        let url = self
            .client
            .get_queue_url()
            .queue_name(&name)
            .send()
            .await
            .map_err(|e| qerr(&format!("finding queue {name}"), e))?
            .queue_url
            .ok_or_else(|| QueueError::Permanent(format!("queue {name} has no URL")))?;
        if let Ok(mut m) = self.urls.write() {
            m.insert(queue.to_string(), url.clone());
        }
        Ok(url)
    }

    /// The dead-letter queue named in the queue's redrive policy (known
    /// from then on, as queue URLs are).
    async fn dead_letter_url(&self, queue: &str) -> Result<String, QueueError> {
        let key = format!("{queue}#dead-letters");
        if let Some(u) = self.urls.read().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(u);
        }
        let url = self.find_dead_letter_url(queue).await?;
        if let Ok(mut m) = self.urls.write() {
            m.insert(key, url.clone());
        }
        Ok(url)
    }

    async fn find_dead_letter_url(&self, queue: &str) -> Result<String, QueueError> {
        let url = self.url(queue).await?;
        let attrs = self
            .client
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .map_err(|e| qerr("reading redrive policy", e))?;
        let policy = attrs
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::RedrivePolicy))
            .ok_or_else(|| {
                QueueError::Permanent(format!("queue {queue} has no dead-letter queue"))
            })?;
        let arn = serde_json::from_str::<serde_json::Value>(&policy)
            .ok()
            .and_then(|v| v["deadLetterTargetArn"].as_str().map(str::to_string))
            .ok_or_else(|| QueueError::Permanent(format!("unreadable redrive policy {policy}")))?;
        let name = arn.rsplit(':').next().unwrap_or_default();
        self.client
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| qerr("finding dead-letter queue", e))?
            .queue_url
            .ok_or_else(|| QueueError::Permanent(format!("dead-letter queue {name} has no URL")))
    }

    /// Creates `<prefix><name>` and its dead-letter queue (development and tests;
    /// the SAM template creates them in AWS).
    pub async fn create(
        &self,
        name: &str,
        max_receives: u32,
        visibility: Duration,
    ) -> Result<String, QueueError> {
        let full = format!("{}{name}", self.prefix);
        let dlq = self
            .client
            .create_queue()
            .queue_name(format!("{full}-dlq"))
            .send()
            .await
            .map_err(|e| qerr("creating dead-letter queue", e))?
            .queue_url
            .unwrap_or_default();
        let arn = self
            .client
            .get_queue_attributes()
            .queue_url(&dlq)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| qerr("reading dead-letter queue ARN", e))?
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .unwrap_or_default();
        let policy = serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": max_receives.to_string()});
        let url = self
            .client
            .create_queue()
            .queue_name(&full)
            .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                visibility.as_secs().to_string(),
            )
            .send()
            .await
            .map_err(|e| qerr("creating queue", e))?
            .queue_url
            .unwrap_or_default();
        Ok(url)
    }
}

/// Splits bodies into SQS batches: at most 10 messages and 256 KB each.
fn batches(bodies: &[String]) -> Result<Vec<Vec<&String>>, QueueError> {
    let mut out: Vec<Vec<&String>> = Vec::new();
    let mut size = 0;
    for b in bodies {
        if b.len() > MAX_BATCH_BYTES {
            return Err(QueueError::Permanent(format!(
                "a {} byte message is over SQS's 256 KB",
                b.len()
            )));
        }
        match out.last_mut() {
            Some(batch) if batch.len() < MAX_BATCH && size + b.len() <= MAX_BATCH_BYTES => {
                batch.push(b);
                size += b.len();
            }
            _ => {
                out.push(vec![b]);
                size = b.len();
            }
        }
    }
    Ok(out)
}

#[async_trait]
impl JobQueue for SqsQueue {
    async fn send(&self, queue: &str, bodies: &[String]) -> Result<(), QueueError> {
        let url = self.url(queue).await?;
        for batch in batches(bodies)? {
            let mut pending: Vec<(String, String)> = batch
                .iter()
                .enumerate()
                .map(|(i, b)| (i.to_string(), (*b).clone()))
                .collect();
            for attempt in 0..5u32 {
                let entries = pending
                    .iter()
                    .map(|(id, body)| {
                        SendMessageBatchRequestEntry::builder()
                            .id(id)
                            .message_body(body)
                            .build()
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| QueueError::Permanent(e.to_string()))?;
                self.count();
                let out = self
                    .client
                    .send_message_batch()
                    .queue_url(&url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| qerr("sending messages", e))?;
                let failed: Vec<String> = out.failed.iter().map(|f| f.id.clone()).collect();
                if failed.is_empty() {
                    break;
                }
                if attempt == 4 {
                    return Err(QueueError::Transient(format!(
                        "{} messages refused by {queue}",
                        failed.len()
                    )));
                }
                pending.retain(|(id, _)| failed.contains(id));
                crate::pause(attempt).await;
            }
        }
        Ok(())
    }

    async fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<ReceivedJob>, QueueError> {
        let url = self.url(queue).await?;
        self.count();
        let out = self
            .client
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(max.clamp(1, MAX_BATCH) as i32)
            .visibility_timeout(visibility.as_secs_f64().ceil() as i32)
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| qerr("receiving", e))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| ReceivedJob {
                receive_count: m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1),
                id: m.message_id.unwrap_or_default(),
                receipt: m.receipt_handle.unwrap_or_default(),
                body: m.body.unwrap_or_default(),
            })
            .collect())
    }

    async fn delete(&self, queue: &str, receipt: &str) -> Result<(), QueueError> {
        let url = self.url(queue).await?;
        self.count();
        self.client
            .delete_message()
            .queue_url(url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| qerr("deleting", e))?;
        Ok(())
    }

    async fn retry_after(
        &self,
        queue: &str,
        receipt: &str,
        delay: Duration,
        _error: &str,
    ) -> Result<(), QueueError> {
        // SQS keeps no error with a message; the worker logs it.
        let url = self.url(queue).await?;
        self.count();
        self.client
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt)
            .visibility_timeout(delay.as_secs_f64().ceil().min(43_200.0) as i32)
            .send()
            .await
            .map_err(|e| qerr("delaying", e))?;
        Ok(())
    }

    async fn depth(&self, queue: &str) -> Result<QueueDepth, QueueError> {
        let count = |attrs: &Option<HashMap<QueueAttributeName, String>>, name| {
            attrs
                .as_ref()
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let url = self.url(queue).await?;
        let attrs = self
            .client
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| qerr("reading queue depth", e))?
            .attributes;
        let dead = match self.dead_letter_url(queue).await {
            Ok(dlq) => {
                let a = self
                    .client
                    .get_queue_attributes()
                    .queue_url(&dlq)
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                    .send()
                    .await
                    .map_err(|e| qerr("reading dead-letter depth", e))?
                    .attributes;
                count(&a, QueueAttributeName::ApproximateNumberOfMessages)
            }
            // A queue without a dead-letter queue has no dead letters.
            Err(_) => 0,
        };
        Ok(QueueDepth {
            ready: count(&attrs, QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: count(
                &attrs,
                QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            ),
            delayed: count(
                &attrs,
                QueueAttributeName::ApproximateNumberOfMessagesDelayed,
            ),
            dead_letters: dead,
        })
    }

    /// Sends the body to the queue's dead-letter queue with the reason in a
    /// message attribute, then deletes this copy. A crash in between leaves
    /// both: the job runs again and is dead-lettered again, which its
    /// deliveries' claims make harmless.
    async fn dead_letter(
        &self,
        queue: &str,
        receipt: &str,
        body: &str,
        error: &str,
    ) -> Result<(), QueueError> {
        let dlq = self.dead_letter_url(queue).await?;
        // SQS takes attribute values within the message's 256 KB; a reason is short.
        let reason: String = error.chars().take(1_000).collect();
        let attribute = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(if reason.is_empty() {
                "failed".into()
            } else {
                reason
            })
            .build()
            .map_err(|e| QueueError::Permanent(e.to_string()))?;
        self.count();
        self.client
            .send_message()
            .queue_url(&dlq)
            .message_body(body)
            .message_attributes(ERROR_ATTRIBUTE, attribute)
            .send()
            .await
            .map_err(|e| qerr("dead-lettering", e))?;
        self.delete(queue, receipt).await
    }

    async fn dead_letters(&self, queue: &str) -> Result<Vec<DeadLetter>, QueueError> {
        let url = self.dead_letter_url(queue).await?;
        let mut out = Vec::new();
        // Peek: received with no visibility timeout, so they stay available.
        for _ in 0..10 {
            let got = self
                .client
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(MAX_BATCH as i32)
                .visibility_timeout(0)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .message_attribute_names(ERROR_ATTRIBUTE)
                .send()
                .await
                .map_err(|e| qerr("reading dead letters", e))?
                .messages
                .unwrap_or_default();
            let mut new = 0;
            for m in got {
                let id = m.message_id.clone().unwrap_or_default();
                if out.iter().any(|d: &DeadLetter| d.id == id) {
                    continue;
                }
                new += 1;
                out.push(DeadLetter {
                    id,
                    body: m.body.unwrap_or_default(),
                    receive_count: m
                        .attributes
                        .as_ref()
                        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(0),
                    last_error: m
                        .message_attributes
                        .as_ref()
                        .and_then(|a| a.get(ERROR_ATTRIBUTE))
                        .and_then(|v| v.string_value.clone()),
                });
            }
            if new == 0 {
                break;
            }
        }
        Ok(out)
    }

    async fn postpone(
        &self,
        queue: &str,
        receipt: &str,
        body: &str,
        delay: Duration,
    ) -> Result<(), QueueError> {
        // SQS counts every receive of a message, whatever its visibility:
        // a planned wait sends a fresh copy (delayed, at most 15 minutes)
        // and deletes this one. A crash in between leaves both, which the
        // delivery claims make harmless.
        let url = self.url(queue).await?;
        self.count();
        self.client
            .send_message()
            .queue_url(&url)
            .message_body(body)
            .delay_seconds(delay.as_secs_f64().ceil().min(900.0) as i32)
            .send()
            .await
            .map_err(|e| qerr("postponing", e))?;
        self.delete(queue, receipt).await
    }

    /// SQS cannot edit or search its messages: a deleted subscriber's
    /// entries stay in queued send jobs until consumed (their deliveries
    /// are final by then, so nothing is sent) and in dead-letter queues
    /// until their retention ends.
    async fn forget_subscriber(&self, _subscriber: SubscriberId) -> Result<u64, QueueError> {
        Ok(0)
    }

    async fn redrive(&self, queue: &str, id: &str) -> Result<bool, QueueError> {
        let dlq = self.dead_letter_url(queue).await?;
        for _ in 0..20 {
            self.count();
            let got = self
                .client
                .receive_message()
                .queue_url(&dlq)
                .max_number_of_messages(MAX_BATCH as i32)
                .visibility_timeout(30)
                .send()
                .await
                .map_err(|e| qerr("reading dead letters", e))?
                .messages
                .unwrap_or_default();
            if got.is_empty() {
                return Ok(false);
            }
            let mut found = false;
            for m in got {
                let receipt = m.receipt_handle.clone().unwrap_or_default();
                if m.message_id.as_deref() == Some(id) && !found {
                    found = true;
                    self.send(queue, &[m.body.clone().unwrap_or_default()])
                        .await?;
                    self.count();
                    self.client
                        .delete_message()
                        .queue_url(&dlq)
                        .receipt_handle(receipt)
                        .send()
                        .await
                        .map_err(|e| qerr("deleting a redriven dead letter", e))?;
                } else {
                    // Not this one: visible again at once.
                    self.count();
                    self.client
                        .change_message_visibility()
                        .queue_url(&dlq)
                        .receipt_handle(receipt)
                        .visibility_timeout(0)
                        .send()
                        .await
                        .map_err(|e| qerr("releasing a dead letter", e))?;
                }
            }
            if found {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_at_most_ten_messages_and_256_kb() {
        let small: Vec<String> = (0..25).map(|i| i.to_string()).collect();
        assert_eq!(
            batches(&small)
                .unwrap()
                .iter()
                .map(Vec::len)
                .collect::<Vec<_>>(),
            vec![10, 10, 5]
        );
        let big: Vec<String> = (0..5).map(|_| "x".repeat(100 * 1024)).collect();
        assert_eq!(
            batches(&big)
                .unwrap()
                .iter()
                .map(Vec::len)
                .collect::<Vec<_>>(),
            vec![2, 2, 1]
        );
        assert!(batches(&["x".repeat(300 * 1024)]).is_err());
    }
}
