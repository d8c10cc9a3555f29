//! The delivery store: planned deliveries, claims under a lease, outcomes,
//! receipts and the counts they move. The rules a store executes are in
//! [`crate::rules`].

use super::{Handover, StoreError};
use async_trait::async_trait;
use bealert_core::AlertId;
use bealert_core::Channel;
use bealert_core::Language;
use bealert_core::SubscriberId;
use bealert_core::delivery::DeliveryStatus;
use bealert_core::delivery::PlannedDelivery;
use std::collections::BTreeMap;
use std::time::Duration;

/// A recipient found by resolution, with the deliveries planned for them.
#[derive(Debug, Clone, PartialEq)]
pub struct RecipientPlan {
    pub subscriber_id: SubscriberId,
    pub external_id: Option<String>,
    pub deliveries: Vec<PlannedDelivery>,
}

/// What claiming one delivery found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Yours, under a lease; `attempt` counts from 1 and is the claim's
    /// fencing token: an outcome is recorded only with the current one.
    /// `provider`: the provider that may already have sent it (an earlier
    /// attempt timed out there); only that provider may be asked again.
    Claimed {
        attempt: u32,
        provider: Option<String>,
    },
    /// Already sent or failed: nothing to do.
    Done,
    /// Another sender holds a lease until this time (Unix ms).
    Busy { until: i64 },
    /// No such delivery was planned.
    Unknown,
}

impl Claim {
    /// A claim with nothing pinned.
    pub fn claimed(attempt: u32) -> Claim {
        Claim::Claimed {
            attempt,
            provider: None,
        }
    }
}

/// The outcome of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    Failed(String),
    /// Release the claim so a later attempt can take it.
    Retry(String),
}

/// One outcome to record: the subscriber, the attempt (fencing token) of
/// the claim it was sent under, what happened, and the provider it went
/// to (for a retry, the provider it stays pinned to: one that may have
/// sent it). A provider recorded once is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub subscriber: SubscriberId,
    pub attempt: u32,
    pub outcome: Outcome,
    pub provider: Option<Handover>,
    /// The delivery's language, counted per language once final.
    pub language: Language,
    /// When its alert was let go ([`AlertRecord::released_at`]): a sent
    /// message adds its time since then to the alert's histogram.
    pub released_at: Option<i64>,
}

impl Recorded {
    pub fn new(
        subscriber: SubscriberId,
        attempt: u32,
        outcome: Outcome,
        language: Language,
    ) -> Self {
        Self {
            subscriber,
            attempt,
            outcome,
            provider: None,
            language,
            released_at: None,
        }
    }

    pub fn via(mut self, provider: Option<Handover>) -> Self {
        self.provider = provider;
        self
    }

    pub fn released(mut self, at: i64) -> Self {
        self.released_at = Some(at);
        self
    }
}

/// Which time a latency histogram keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Leg {
    /// From the alert's release to the provider's acceptance.
    ToSent,
    /// From the alert's release to the provider's delivery receipt.
    ToDelivered,
}

impl Leg {
    pub const ALL: [Leg; 2] = [Leg::ToSent, Leg::ToDelivered];

    pub fn index(self) -> u8 {
        self as u8
    }

    pub fn from_index(i: u8) -> Option<Leg> {
        Self::ALL.get(usize::from(i)).copied()
    }
}

/// One channel and language's counts and times, beyond the live counts:
/// `planned` every delivery ever planned, then how many reached each
/// final status (in flight: planned minus those), and the histograms
/// ([`bealert_core::latency`]) of each leg.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LanguageCounts {
    pub planned: u64,
    pub finals: BTreeMap<DeliveryStatus, u64>,
    pub latency: BTreeMap<Leg, Vec<u64>>,
}

impl LanguageCounts {
    pub fn histogram(&mut self, leg: Leg) -> &mut Vec<u64> {
        self.latency
            .entry(leg)
            .or_insert_with(|| vec![0; bealert_core::latency::BUCKETS])
    }
}

/// An alert's counts per channel and language ([`DeliveryStore::breakdown`]).
pub type Breakdown = BTreeMap<(Channel, Language), LanguageCounts>;

/// Where a delivery is: found by a receipt's provider id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryRef {
    pub alert: AlertId,
    pub channel: Channel,
    pub subscriber: SubscriberId,
}

/// A receipt to apply to one delivery ([`DeliveryStore::apply_receipt`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptChange {
    /// The provider that sent the receipt: a delivery recorded with another
    /// provider is not changed (a foreign receipt).
    pub provider: String,
    pub status: bealert_core::receipt::ReceiptStatus,
    pub reason: Option<String>,
    /// When it happened (the provider's time, else now), Unix ms.
    pub at: i64,
    /// The alert's release time, for the time-to-delivered histogram.
    pub released_at: i64,
}

/// What applying a receipt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptApplied {
    /// The delivery moved `from` → `to`. `to` is the contact it was for.
    Moved {
        from: DeliveryStatus,
        to: DeliveryStatus,
        contact: String,
    },
    /// Nothing to change (already delivered, or failed, or never sent);
    /// `contact` for a contact problem still to note.
    Unchanged {
        status: DeliveryStatus,
        contact: String,
    },
    /// The delivery went through another provider.
    Foreign { provider: Option<String> },
    /// No such delivery.
    Unknown,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ChannelCounts {
    /// Not sent yet: planned, or in a sender's hands (claimed, under a
    /// lease). A claim, and a retry that puts a delivery back, change no
    /// count ([`crate::rules::moved`]). Counters a store kept for
    /// `sending` before that rule are added here when read.
    pub queued: u64,
    /// Handed over, no receipt (yet).
    pub sent: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// Handed over and confirmed by a receipt.
    pub delivered: u64,
}

impl ChannelCounts {
    pub fn pending(&self) -> u64 {
        self.queued
    }

    /// Every message that left: sent, delivered or not (yet) confirmed.
    pub fn left(&self) -> u64 {
        self.sent + self.delivered
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertCounts {
    pub recipients: u64,
    pub channels: BTreeMap<Channel, ChannelCounts>,
}

impl AlertCounts {
    pub fn pending(&self) -> u64 {
        self.channels.values().map(ChannelCounts::pending).sum()
    }
}

/// A delivery as listed by `GET /v1/alerts/{id}/deliveries`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryRow {
    pub subscriber_id: SubscriberId,
    pub external_id: Option<String>,
    pub channel: Channel,
    pub to: String,
    pub language: Language,
    pub status: DeliveryStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When it last changed (Unix ms): for a final delivery, when it was
    /// sent or failed (a drill's report).
    #[serde(skip)]
    pub updated_at: i64,
    /// The provider that took it (or may have), and its id for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
}

#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Records the recipients one resolution shard found. Returns the
    /// deliveries still to send whose record this shard owns: created now,
    /// or by an earlier run of the same shard. A recipient already planned by
    /// another shard is left to that shard, so nobody is planned twice.
    async fn plan_deliveries(
        &self,
        alert: AlertId,
        shard: u32,
        recipients: &[RecipientPlan],
    ) -> Result<Vec<PlannedDelivery>, StoreError>;

    /// Claims deliveries for sending under a lease; one answer per subscriber, in order.
    async fn claim(
        &self,
        alert: AlertId,
        channel: Channel,
        subscribers: &[SubscriberId],
        now: i64,
        lease: Duration,
    ) -> Result<Vec<Claim>, StoreError>;

    /// Records outcomes of claimed deliveries: each only if the delivery is
    /// still `sending` under that very attempt (a sender whose lease
    /// expired and was taken over records nothing over the new owner's).
    /// One answer per outcome, in order: true if it was recorded.
    async fn record(
        &self,
        alert: AlertId,
        channel: Channel,
        outcomes: &[Recorded],
        now: i64,
    ) -> Result<Vec<bool>, StoreError>;

    /// Stops deliveries nobody is sending (queued, or under an expired
    /// lease): `to` is [`DeliveryStatus::Failed`] (the end of a
    /// dead-lettered job's work) or [`DeliveryStatus::Cancelled`] (the
    /// alert was cancelled), with `reason` kept as the error. One answer
    /// per subscriber, in order: the delivery's status after the call
    /// (`sending` while a live lease holds it), `None` if it was never planned.
    async fn stop_unsent(
        &self,
        alert: AlertId,
        channel: Channel,
        subscribers: &[SubscriberId],
        to: DeliveryStatus,
        reason: &str,
        now: i64,
    ) -> Result<Vec<Option<DeliveryStatus>>, StoreError>;

    async fn counts(&self, alert: AlertId) -> Result<AlertCounts, StoreError>;

    /// [`Self::counts`] per channel only (`recipients` left at 0): what
    /// settling an alert after each job reads, which a store may read for
    /// less.
    async fn channel_counts(&self, alert: AlertId) -> Result<AlertCounts, StoreError> {
        let mut counts = self.counts(alert).await?;
        counts.recipients = 0;
        Ok(counts)
    }

    /// A deleted subscriber: every delivery of theirs loses its contact
    /// (`to` emptied, external id dropped), and one not yet sent fails with
    /// `reason`, so no sender reaches them any more. Returns deliveries changed.
    async fn forget_subscriber(
        &self,
        subscriber: SubscriberId,
        reason: &str,
        now: i64,
    ) -> Result<u64, StoreError>;

    /// Counts and times per channel and language (the alert's detailed
    /// view; the live counts are [`DeliveryStore::counts`]).
    async fn breakdown(&self, alert: AlertId) -> Result<Breakdown, StoreError>;

    /// The delivery a provider's message id names: `provider` and `id` as
    /// recorded when it was handed over. `None` if no delivery has it.
    async fn find_by_provider_id(
        &self,
        provider: &str,
        id: &str,
    ) -> Result<Option<DeliveryRef>, StoreError>;

    /// Applies a delivery receipt ([`bealert_core::delivery::after_receipt`]):
    /// conditional on the status read, counted in the same step.
    async fn apply_receipt(
        &self,
        delivery: DeliveryRef,
        change: &ReceiptChange,
        now: i64,
    ) -> Result<ReceiptApplied, StoreError>;

    /// Deliveries ordered by (channel, [`bealert_core::delivery::bucket`],
    /// subscriber), after the delivery with the given key.
    async fn list_deliveries(
        &self,
        alert: AlertId,
        after: Option<(Channel, SubscriberId)>,
        limit: usize,
    ) -> Result<Vec<DeliveryRow>, StoreError>;
}
