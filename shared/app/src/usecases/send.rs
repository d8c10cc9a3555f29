//! Sending: one channel's batch of deliveries, each exactly once.
//!
//! A delivery is claimed under a lease before it is handed to the gateway,
//! and the gateway itself refuses a key it has sent before; so a redelivered
//! queue message, a crashed sender or two senders racing never send twice.

use super::{App, JobError, JobOutcome};
use crate::jobs::{Lane, SendJob, send_queue_in};
use crate::ports::{
    Claim, GatewayError, Handover, MessageKind, OutboundMessage, Outcome, Recorded, Sent,
};
use bealert_core::SubscriberId;
use bealert_core::alert::AlertState;
use bealert_core::delivery::DeliveryStatus;
use bealert_core::delivery::idempotency_key;
use bealert_core::message::render;
use std::time::Duration;

/// A throttled provider does not use up a delivery's attempts; only this
/// many times the attempt limit of other failures ends it.
const THROTTLED_FACTOR: u32 = 20;

/// What one chunk of a send job left to wait for.
#[derive(Default)]
struct Waits {
    /// The longest retry backoff a delivery asked for, and why.
    retry: Option<(Duration, String)>,
    /// When the latest lease held by another sender ends.
    busy_until: Option<i64>,
}

/// Why nothing more of an alert in this state may be sent.
fn stopped(state: AlertState) -> Option<&'static str> {
    match state {
        AlertState::Cancelled => Some("the alert was cancelled"),
        AlertState::Expired => Some("the alert expired"),
        _ => None,
    }
}

impl App {
    pub(crate) async fn handle_send(&self, job: SendJob) -> Result<JobOutcome, JobError> {
        let id = job.alert_id;
        let channel = job.channel;
        let mut alert = self.job_alert_head(id).await?;

        // Under a rate limit a big batch takes long: send it a second's
        // worth at a time, and once half the lease is used, hand the rest
        // back to the queue as a new job instead of outliving the claims
        // (and the message's visibility).
        let rate = self.budget.rate(channel);
        let chunk = rate.map_or(job.deliveries.len(), |r| r as usize).max(1);
        let budget = self.config.lease / 2;
        let started = std::time::Instant::now();
        let mut waits = Waits::default();
        for (k, items) in job.deliveries.chunks(chunk).enumerate() {
            // A sender looks at the alert before it claims: once it is
            // cancelled (or expired), nothing more of it leaves.
            if k > 0 {
                alert = self.job_alert_head(id).await?;
                // Halted meanwhile: the rest waits (claims make the retry
                // skip what this run sent).
                if let Some(wait) = self.while_halted().await? {
                    return Ok(wait);
                }
            }
            if alert.spec.expired_at(self.now_ms()) {
                self.expire_sending(&alert).await?;
                alert.state = AlertState::Expired;
            }
            if let Some(why) = stopped(alert.state) {
                let rest: Vec<SubscriberId> = job.deliveries[k * chunk..]
                    .iter()
                    .map(|d| d.subscriber_id)
                    .collect();
                self.ports
                    .deliveries
                    .stop_unsent(
                        id,
                        channel,
                        &rest,
                        DeliveryStatus::Cancelled,
                        why,
                        self.now_ms(),
                    )
                    .await?;
                tracing::info!(alert = %id, %channel, stopped = rest.len(), "{why}: deliveries stopped");
                break;
            }
            if k > 0 && started.elapsed() >= budget {
                let rest = SendJob {
                    alert_id: id,
                    channel,
                    deliveries: job.deliveries[k * chunk..].to_vec(),
                };
                let body = serde_json::to_string(&rest).map_err(JobError::from)?;
                self.ports
                    .queue
                    .send(send_queue_in(channel, Lane::of(&alert.spec)), &[body])
                    .await?;
                tracing::debug!(alert = %id, %channel, left = rest.deliveries.len(), "rate budget used; the rest re-enqueued");
                break;
            }
            self.send_chunk(
                &alert.spec,
                id,
                alert.released_at(),
                channel,
                items,
                &mut waits,
            )
            .await?;
        }
        // Expired meanwhile: whatever this job did not send is stopped now.
        if alert.spec.expired_at(self.now_ms()) {
            self.expire_sending(&alert).await?;
            let all: Vec<SubscriberId> = job.deliveries.iter().map(|d| d.subscriber_id).collect();
            self.ports
                .deliveries
                .stop_unsent(
                    id,
                    channel,
                    &all,
                    DeliveryStatus::Cancelled,
                    "the alert expired",
                    self.now_ms(),
                )
                .await?;
            return Ok(JobOutcome::Done);
        }
        let settling = std::time::Instant::now();
        self.settle(id).await?;
        tracing::debug!(alert = %id, %channel, settle_ms = settling.elapsed().as_millis() as u64, "send job settled");

        if let Some((delay, why)) = waits.retry {
            return Ok(JobOutcome::RetryAfter(delay, why));
        }
        if let Some(until) = waits.busy_until {
            let wait =
                Duration::from_millis(u64::try_from(until - self.now_ms()).unwrap_or(0).max(100));
            return Ok(JobOutcome::RetryAfter(
                wait,
                "another sender holds some of these deliveries".into(),
            ));
        }
        Ok(JobOutcome::Done)
    }

    /// An alert whose `expires` passed while it was going: nothing more leaves.
    async fn expire_sending(
        &self,
        alert: &crate::ports::AlertRecord,
    ) -> Result<(), crate::ports::StoreError> {
        for from in [AlertState::Sending, AlertState::Resolving] {
            let mut entry = crate::ports::AuditEntry::system(
                "expire",
                Some(from),
                AlertState::Expired,
                self.now_ms(),
            );
            entry.detail = Some("its expires time passed".into());
            if self
                .ports
                .alerts
                .transition(alert.id, from, AlertState::Expired, &entry)
                .await?
            {
                tracing::info!(alert = %alert.id, "alert expired while sending");
                break;
            }
        }
        Ok(())
    }

    /// What a gateway's answer does to a delivery, and the provider to keep
    /// with it: the one that took it, or the one a retry stays pinned to.
    fn outcome_of(
        &self,
        result: Result<Sent, GatewayError>,
        attempt: u32,
        waits: &mut Waits,
    ) -> (Outcome, Option<Handover>) {
        let pinned = |provider: String| Handover { provider, id: None };
        let patient = self.config.max_attempts.saturating_mul(THROTTLED_FACTOR);
        let (outcome, via) = match result {
            Ok(Sent::Accepted(h)) => (Outcome::Sent, (!h.provider.is_empty()).then_some(h)),
            Ok(Sent::AlreadySent) => (Outcome::Sent, None),
            Err(GatewayError::Permanent(e)) => (Outcome::Failed(e), None),
            Err(GatewayError::Retryable(e)) if attempt >= self.config.max_attempts => (
                Outcome::Failed(format!("gave up after {attempt} attempts: {e}")),
                None,
            ),
            // A provider that is down, throttles, or may have sent it (and
            // so must be waited for) does not use up the usual attempts;
            // only a far larger cap applies.
            Err(GatewayError::Throttled(e) | GatewayError::Refused(e)) if attempt >= patient => (
                Outcome::Failed(format!("gave up after {attempt} attempts: {e}")),
                None,
            ),
            Err(GatewayError::Unsure { provider, reason }) if attempt >= patient => (
                Outcome::Failed(format!(
                    "gave up after {attempt} attempts; {provider} may have sent it: {reason}"
                )),
                Some(pinned(provider)),
            ),
            Err(GatewayError::Unsure { provider, reason }) => (
                Outcome::Retry(format!("{provider} may have sent it: {reason}")),
                Some(pinned(provider)),
            ),
            Err(
                GatewayError::Retryable(e) | GatewayError::Throttled(e) | GatewayError::Refused(e),
            ) => (Outcome::Retry(e), None),
        };
        if let Outcome::Retry(e) = &outcome {
            let delay = super::jittered(super::backoff(self.config.retry_base, attempt));
            if waits.retry.as_ref().is_none_or(|(d, _)| delay > *d) {
                waits.retry = Some((delay, e.clone()));
            }
        }
        (outcome, via)
    }

    /// Claims, renders, sends and records one chunk of a send job.
    async fn send_chunk(
        &self,
        spec: &bealert_core::alert::AlertSpec,
        id: bealert_core::AlertId,
        released_at: i64,
        channel: bealert_core::Channel,
        items: &[crate::jobs::SendItem],
        waits: &mut Waits,
    ) -> Result<(), JobError> {
        let ids: Vec<SubscriberId> = items.iter().map(|d| d.subscriber_id).collect();
        let now = self.now_ms();
        let mut phases = Phases::start();
        let claims = self
            .ports
            .deliveries
            .claim(id, channel, &ids, now, self.config.lease)
            .await?;
        phases.claim = phases.lap();

        // A fifth of the lease is kept free: no message leaves after that,
        // so a sender taking the claim over never overlaps this one's sends.
        let lease_ms = i64::try_from(self.config.lease.as_millis()).unwrap_or(i64::MAX);
        let mut not_after = now.saturating_add(lease_ms - lease_ms / 5);
        // Nothing leaves after the alert's expiry either.
        if let Some(expires) = spec.expires {
            not_after = not_after.min(expires);
        }
        // E-mail leads to the self-service page (List-Unsubscribe).
        let manage = (channel == bealert_core::Channel::Email)
            .then(|| self.manage_url())
            .flatten();
        let mut messages = Vec::new();
        let mut attempts = Vec::new();
        let mut outcomes: Vec<Recorded> = Vec::new();
        for (item, claim) in items.iter().zip(claims) {
            match claim {
                Claim::Claimed { attempt, provider } => {
                    match render(spec, channel, item.language) {
                        Some(r) => {
                            messages.push(OutboundMessage {
                                key: idempotency_key(id, channel, item.subscriber_id),
                                kind: MessageKind::Alert {
                                    alert_id: id,
                                    subscriber_id: item.subscriber_id,
                                },
                                channel,
                                to: item.to.clone(),
                                language: r.language,
                                subject: r.subject,
                                text: r.text,
                                signature: spec.signature.clone(),
                                not_after,
                                provider,
                                unsubscribe: manage.clone(),
                            });
                            attempts.push((attempt, item.language));
                        }
                        None => outcomes.push(Recorded::new(
                            item.subscriber_id,
                            attempt,
                            Outcome::Failed("the alert has no text".into()),
                            item.language,
                        )),
                    }
                }
                Claim::Busy { until } => {
                    waits.busy_until = Some(waits.busy_until.map_or(until, |b| b.max(until)))
                }
                Claim::Done => {}
                Claim::Unknown => {
                    tracing::warn!(alert = %id, %channel, subscriber = %item.subscriber_id, "delivery was never planned; skipped");
                }
            }
        }

        // The channel's shared budget: each message leaves as soon as its
        // token is granted, a few at a time, so the outbox sees the
        // bucket's pace (not a whole chunk at the moment its last token
        // came).
        let priority = crate::rate::Priority::of(crate::jobs::Lane::of(spec));
        let pause = Duration::from_millis(
            self.budget
                .rate(channel)
                .map_or(20, |r| (1000 / u64::from(r.max(1))).clamp(2, 200)),
        );
        let mut next = 0;
        while next < messages.len() {
            let wanted = u32::try_from(messages.len() - next).unwrap_or(u32::MAX);
            let granted = self
                .budget
                .take(channel, wanted, priority, self.now_ms())
                .await? as usize;
            if granted == 0 {
                tokio::time::sleep(pause).await;
                let lap = phases.lap();
                phases.tokens += lap;
                continue;
            }
            let lap = phases.lap();
            phases.tokens += lap;
            let batch = next..next + granted;
            next += granted;
            // A budget that paces by hand-over counts the grant from the
            // moment it is handed over (or given up).
            let grant = u32::try_from(granted).unwrap_or(u32::MAX);
            // Never send under a lease that may have run out: another
            // sender may own these deliveries by now. Leave them to it (or
            // to this job's next turn); record nothing.
            if spec.expired_at(self.now_ms()) {
                self.budget.handed(channel, grant, self.now_ms());
                // The alert expired while these waited for tokens: release
                // them, so they can be stopped at once.
                for (msg, attempt) in messages[next - granted..]
                    .iter()
                    .zip(&attempts[next - granted..])
                {
                    if let MessageKind::Alert { subscriber_id, .. } = msg.kind {
                        outcomes.push(Recorded::new(
                            subscriber_id,
                            attempt.0,
                            Outcome::Retry("the alert expired".into()),
                            attempt.1,
                        ));
                    }
                }
                break;
            }
            if self.now_ms() > not_after {
                self.budget.handed(channel, grant, self.now_ms());
                tracing::warn!(alert = %id, %channel, messages = messages.len() - batch.start, "lease nearly over before sending; left for the next claim");
                let until = now.saturating_add(lease_ms);
                waits.busy_until = Some(waits.busy_until.map_or(until, |b| b.max(until)));
                break;
            }
            let results = self
                .ports
                .gateways
                .get(channel)
                .send(&messages[batch.clone()])
                .await;
            self.budget.handed(channel, grant, self.now_ms());
            let lap = phases.lap();
            phases.send += lap;
            // Handed over now, or found handed over by an attempt whose
            // answer was lost: either way the message left.
            let handed = results.iter().filter(|r| r.is_ok()).count();
            self.meter.add(channel, handed as u64, self.now_ms());
            for ((msg, attempt), result) in messages[batch.clone()]
                .iter()
                .zip(&attempts[batch])
                .zip(results)
            {
                let (attempt, language) = *attempt;
                let (outcome, via) = self.outcome_of(result, attempt, waits);
                let MessageKind::Alert { subscriber_id, .. } = msg.kind else {
                    continue;
                };
                outcomes.push(
                    Recorded::new(subscriber_id, attempt, outcome, language)
                        .via(via)
                        .released(released_at),
                );
            }
        }
        if !outcomes.is_empty() {
            let recorded = self
                .ports
                .deliveries
                .record(id, channel, &outcomes, self.now_ms())
                .await?;
            phases.record = phases.lap();
            let stale = recorded.iter().filter(|r| !**r).count();
            if stale > 0 {
                tracing::warn!(alert = %id, %channel, stale, "outcomes not recorded: their claims had been taken over");
            }
            let count = |f: fn(&Outcome) -> bool| {
                outcomes
                    .iter()
                    .zip(&recorded)
                    .filter(|(o, r)| **r && f(&o.outcome))
                    .count() as u64
            };
            crate::metrics::sent(
                channel,
                count(|o| matches!(o, Outcome::Sent)),
                count(|o| matches!(o, Outcome::Failed(_))),
                count(|o| matches!(o, Outcome::Retry(_))),
            );
        }
        tracing::debug!(
            alert = %id, %channel, deliveries = items.len(),
            claim_ms = phases.claim.as_millis() as u64,
            tokens_ms = phases.tokens.as_millis() as u64,
            send_ms = phases.send.as_millis() as u64,
            record_ms = phases.record.as_millis() as u64,
            "send chunk"
        );
        Ok(())
    }
}

/// Where a send chunk's time went (logged at debug level): the store's
/// claim and record, waiting for the budget's tokens, the gateway.
struct Phases {
    at: std::time::Instant,
    claim: Duration,
    tokens: Duration,
    send: Duration,
    record: Duration,
}

impl Phases {
    fn start() -> Self {
        Self {
            at: std::time::Instant::now(),
            claim: Duration::ZERO,
            tokens: Duration::ZERO,
            send: Duration::ZERO,
            record: Duration::ZERO,
        }
    }

    /// The time since the last lap.
    fn lap(&mut self) -> Duration {
        let now = std::time::Instant::now();
        now.duration_since(std::mem::replace(&mut self.at, now))
    }
}
