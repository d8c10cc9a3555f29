//! Sending: one channel's batch of deliveries, each exactly once.
//!
//! A delivery is claimed under a lease before it is handed to the gateway,
//! and the gateway itself refuses a key it has sent before; so a redelivered
//! queue message, a crashed sender or two senders racing never send twice.

use super::{App, JobError, JobOutcome};
use crate::jobs::SendJob;
use crate::now_ms;
use crate::ports::{Claim, GatewayError, OutboundMessage, Outcome, Sent};
use bealert_core::SubscriberId;
use bealert_core::delivery::idempotency_key;
use bealert_core::message::render;
use std::time::Duration;

impl App {
    pub(crate) async fn handle_send(&self, job: SendJob) -> Result<JobOutcome, JobError> {
        let id = job.alert_id;
        let channel = job.channel;
        let alert = self.job_alert(id).await?;

        let ids: Vec<SubscriberId> = job.deliveries.iter().map(|d| d.subscriber_id).collect();
        let now = now_ms();
        let claims = self
            .ports
            .deliveries
            .claim(id, channel, &ids, now, self.config.lease)
            .await?;

        let mut busy_until: Option<i64> = None;
        let mut messages = Vec::new();
        let mut attempts = Vec::new();
        let mut outcomes: Vec<(SubscriberId, Outcome)> = Vec::new();
        for (item, claim) in job.deliveries.iter().zip(claims) {
            match claim {
                Claim::Claimed { attempt } => match render(&alert.spec, channel, item.language) {
                    Some(r) => {
                        messages.push(OutboundMessage {
                            key: idempotency_key(id, channel, item.subscriber_id),
                            alert_id: id,
                            channel,
                            subscriber_id: item.subscriber_id,
                            to: item.to.clone(),
                            language: r.language,
                            subject: r.subject,
                            text: r.text,
                        });
                        attempts.push(attempt);
                    }
                    None => outcomes.push((
                        item.subscriber_id,
                        Outcome::Failed("the alert has no text".into()),
                    )),
                },
                Claim::Busy { until } => {
                    busy_until = Some(busy_until.map_or(until, |b| b.max(until)))
                }
                Claim::Done => {}
                Claim::Unknown => {
                    tracing::warn!(alert = %id, %channel, subscriber = %item.subscriber_id, "delivery was never planned; skipped");
                }
            }
        }

        let mut retry: Option<(Duration, String)> = None;
        if !messages.is_empty() {
            self.rates[usize::from(channel.index())]
                .acquire(messages.len())
                .await;
            let results = self.ports.gateways.get(channel).send(&messages).await;
            for ((msg, attempt), result) in messages.iter().zip(attempts).zip(results) {
                let outcome = match result {
                    Ok(Sent::Accepted | Sent::AlreadySent) => Outcome::Sent,
                    Err(GatewayError::Permanent(e)) => Outcome::Failed(e),
                    Err(GatewayError::Retryable(e)) if attempt >= self.config.max_attempts => {
                        Outcome::Failed(format!("gave up after {attempt} attempts: {e}"))
                    }
                    Err(GatewayError::Retryable(e)) => {
                        let delay = super::backoff(self.config.retry_base, attempt);
                        if retry.as_ref().is_none_or(|(d, _)| delay > *d) {
                            retry = Some((delay, e.clone()));
                        }
                        Outcome::Retry(e)
                    }
                };
                outcomes.push((msg.subscriber_id, outcome));
            }
        }
        if !outcomes.is_empty() {
            self.ports
                .deliveries
                .record(id, channel, &outcomes, now_ms())
                .await?;
        }
        self.settle(id).await?;

        if let Some((delay, why)) = retry {
            return Ok(JobOutcome::RetryAfter(delay, why));
        }
        if let Some(until) = busy_until {
            let wait = Duration::from_millis(u64::try_from(until - now_ms()).unwrap_or(0).max(100));
            return Ok(JobOutcome::RetryAfter(
                wait,
                "another sender holds some of these deliveries".into(),
            ));
        }
        Ok(JobOutcome::Done)
    }
}
