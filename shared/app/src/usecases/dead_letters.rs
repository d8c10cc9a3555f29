//! Ending the work of a job that dead-letters, so its alert still finishes.
//!
//! A job is dead-lettered after its last receive failed, or at once when no
//! retry can mend it ([`super::Disposition`]). Its deliveries are
//! then marked failed with the reason (a redriven copy finds them final and
//! sends nothing); a shard that could not be resolved is counted as done so
//! the alert can settle; an alert whose zone could not even be planned fails.

use super::App;
use crate::jobs::{RESOLVE_QUEUE, ResolveJob, SendJob};
use crate::ports::AuditEntry;
use bealert_core::AlertId;
use bealert_core::alert::AlertState;
use bealert_core::delivery::DeliveryStatus;

impl App {
    /// Called when a failing job dead-letters, `why` saying how it failed
    /// (and how often); never fails itself (what it
    /// cannot do is logged, and the dead letter stays for `bealert dlq`).
    pub async fn dead_letter(&self, queue: &str, body: &str, why: &str) {
        let result = if queue == RESOLVE_QUEUE {
            match serde_json::from_str::<ResolveJob>(body) {
                Ok(job) => self.dead_resolve(job, why).await,
                Err(_) => Ok(()),
            }
        } else if queue == crate::jobs::BROADCAST_QUEUE {
            match serde_json::from_str::<crate::jobs::BroadcastJob>(body) {
                Ok(job) => self.dead_broadcast(job, why).await,
                Err(_) => Ok(()),
            }
        } else if let Some(kind) = crate::jobs::public_kind(queue) {
            match serde_json::from_str::<crate::jobs::PublicJob>(body) {
                Ok(job) => self.dead_public(kind, job, why).await,
                Err(_) => Ok(()),
            }
        } else {
            match serde_json::from_str::<SendJob>(body) {
                Ok(job) => self.dead_send(job, why).await,
                Err(_) => Ok(()),
            }
        };
        if let Err(e) = result {
            tracing::error!(queue, error = %e, "could not end a dead-lettered job's work");
        }
    }

    async fn dead_send(&self, job: SendJob, why: &str) -> Result<(), crate::ports::StoreError> {
        let reason = format!("not sent: {why}");
        let subscribers: Vec<_> = job.deliveries.iter().map(|d| d.subscriber_id).collect();
        self.ports
            .deliveries
            .stop_unsent(
                job.alert_id,
                job.channel,
                &subscribers,
                DeliveryStatus::Failed,
                &reason,
                self.now_ms(),
            )
            .await?;
        tracing::error!(alert = %job.alert_id, channel = %job.channel, deliveries = subscribers.len(), %why, "send job dead-lettered; its unsent deliveries failed");
        self.settle(job.alert_id).await
    }

    async fn dead_resolve(
        &self,
        job: ResolveJob,
        why: &str,
    ) -> Result<(), crate::ports::StoreError> {
        match job {
            ResolveJob::Plan { alert_id, .. } => {
                tracing::error!(alert = %alert_id, %why, "the alert's zone could not be resolved; the alert failed");
                self.ports
                    .alerts
                    .transition(
                        alert_id,
                        AlertState::Resolving,
                        AlertState::Failed,
                        &AuditEntry {
                            detail: Some(format!("its zone could not be resolved: {why}")),
                            ..AuditEntry::system(
                                "failed",
                                Some(AlertState::Resolving),
                                AlertState::Failed,
                                self.now_ms(),
                            )
                        },
                    )
                    .await?;
                Ok(())
            }
            ResolveJob::Shard {
                alert_id, shard, ..
            } => {
                tracing::error!(alert = %alert_id, shard, %why, "a resolution shard dead-lettered; its recipients were not reached");
                self.finish_shard(alert_id, shard).await
            }
        }
    }

    /// Counts a shard done; the last one moves the alert on to sending.
    pub(crate) async fn finish_shard(
        &self,
        id: AlertId,
        shard: u32,
    ) -> Result<(), crate::ports::StoreError> {
        let (done, total) = self.ports.alerts.complete_shard(id, shard).await?;
        if total.is_some_and(|t| done >= t) {
            self.ports
                .alerts
                .transition(
                    id,
                    AlertState::Resolving,
                    AlertState::Sending,
                    &AuditEntry::system(
                        "sending",
                        Some(AlertState::Resolving),
                        AlertState::Sending,
                        self.now_ms(),
                    ),
                )
                .await?;
            tracing::info!(alert = %id, "resolution complete");
            self.settle(id).await?;
        }
        Ok(())
    }
}
