//! The ports: small traits for each capability the use cases need.
//!
//! Every port has an embedded adapter (SQLite, a SQLite queue, outbox files)
//! and an AWS one (DynamoDB, SQS, SNS/SES); a conformance suite per port
//! (`shared/conformance`, a test-only crate) pins the behaviour of all of them.

use async_trait::async_trait;
use bealert_core::alert::{AlertSpec, AlertState};
use bealert_core::delivery::{DeliveryStatus, PlannedDelivery};
use bealert_core::geography::{Level, Unit, UnitInfo};
use bealert_core::operator::{KeyGrant, Operator};
use bealert_core::subscriber::{Contact, SubscriberProfile};
use bealert_core::{AlertId, Channel, Language, SubscriberId};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// A storage failure. `Transient` and `Busy` ones are worth retrying.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("storage temporarily unavailable: {0}")]
    Transient(String),
    /// The store refused for load or did not answer in time (DynamoDB
    /// throttling, its 5xx answers, a timeout): nothing is wrong with the
    /// request, so a job meeting it waits without using up its retries.
    #[error("storage is busy: {0}")]
    Busy(String),
    #[error("storage error: {0}")]
    Permanent(String),
}

/// What storing one subscriber did (see [`SubscriberStore::upsert_subscribers`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    /// No subscriber had this id: one was created.
    Created,
    /// The subscriber with this id and the same `external_id` was replaced:
    /// profile, addresses and groups together.
    Updated,
    /// The id belongs to another subscriber (no `external_id`, or another
    /// one): nothing was written. The app picks another id.
    IdTaken,
}

/// A page of [`SubscriberStore::subscriber_page`].
#[derive(Debug, Clone, Default)]
pub struct SubscriberPage {
    pub subscribers: Vec<(SubscriberId, SubscriberProfile)>,
    pub cursor: Option<String>,
}

/// The parts a unit's address items are kept in, read in parallel.
pub const UNIT_PARTS: u32 = 16;

/// The part of a unit a subscriber's address items are kept in.
pub fn unit_part(id: SubscriberId) -> u32 {
    ((id.as_i64() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60) as u32
}

/// One address item: where a subscriber lives and how to reach them.
#[derive(Debug, Clone, PartialEq)]
pub struct AddressItem {
    pub cell: u64,
    pub lat: f64,
    pub lon: f64,
    /// How many addresses the subscriber has (1 means no de-duplication needed).
    pub address_count: u8,
    /// Phone, e-mail and external id are `None` unless contacts were asked for.
    pub contact: Contact,
}

#[async_trait]
pub trait SubscriberStore: Send + Sync {
    /// Stores subscribers with their address and group items, under the ids
    /// the app chose ([`crate::usecases::identity`]); one answer per entry,
    /// in order, entries applied in order. An id nobody has is created; an
    /// id whose subscriber has the same `external_id` is replaced at once
    /// (no reader, and no concurrent upsert, ever sees the address items of
    /// two versions); any other id is `IdTaken` and nothing is written.
    /// The store executes this rule with conditional writes; it never picks
    /// an id itself.
    async fn upsert_subscribers(
        &self,
        subscribers: Arc<[(SubscriberId, SubscriberProfile)]>,
    ) -> Result<Vec<Upsert>, StoreError>;

    /// Every address item in these cells (resolution 7).
    async fn addresses_in_cells(
        &self,
        cells: &[u64],
        with_contacts: bool,
    ) -> Result<Vec<AddressItem>, StoreError>;

    /// Everyone registered in a group, wherever they live.
    async fn group_members(&self, group: &str) -> Result<Vec<Contact>, StoreError>;

    async fn subscriber_count(&self) -> Result<u64, StoreError>;

    /// The address items recorded in a unit (`level:code`, see
    /// [`Address::units`](bealert_core::subscriber::Address::units)) that
    /// the store keeps in `part` of [`UNIT_PARTS`]: a key lookup, no
    /// geometry. Every item is in exactly one part, the store's choice
    /// (DynamoDB spreads them by [`unit_part`] to read in parallel; SQLite
    /// keeps a unit whole in part 0).
    async fn addresses_in_unit(
        &self,
        unit: &str,
        part: u32,
        with_contacts: bool,
    ) -> Result<Vec<AddressItem>, StoreError>;

    /// One page of the stored subscribers, for work over all of them (the
    /// backfill of address units): `cursor` is `None` for the first page
    /// and the previous answer's cursor after; `None` back: the last page.
    async fn subscriber_page(&self, cursor: Option<String>) -> Result<SubscriberPage, StoreError>;

    /// One subscriber's profile, as stored.
    async fn get_subscriber(
        &self,
        id: SubscriberId,
    ) -> Result<Option<SubscriberProfile>, StoreError>;

    /// Stores `new` for a subscriber only if what is stored is still
    /// `expected` (address units brought up to date without undoing a
    /// change made meanwhile); false if it changed or is gone.
    async fn replace_if_unchanged(
        &self,
        id: SubscriberId,
        expected: &SubscriberProfile,
        new: &SubscriberProfile,
    ) -> Result<bool, StoreError>;

    /// Removes a subscriber with all its address and group items at once
    /// (a paused or deleted registration); false if there was none.
    async fn remove_subscriber(&self, id: SubscriberId) -> Result<bool, StoreError>;
}

/// An alert as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRecord {
    pub id: AlertId,
    pub operator: String,
    pub spec: AlertSpec,
    pub state: AlertState,
    /// Unix milliseconds.
    pub created_at: i64,
    pub completed_at: Option<i64>,
    /// When a second person approved it (Unix ms); `None` for an alert that
    /// needed no approval (or awaits it, or was rejected or expired while
    /// it waited). Stores set it as [`bealert_core::lifecycle::stamps`] says.
    pub approved_at: Option<i64>,
    /// How many shards resolution split the alert into, once known.
    pub shards_total: Option<u32>,
    pub shards_done: u32,
}

impl AlertRecord {
    /// A new alert: held for approval, or resolving at once.
    pub fn new(operator: &str, spec: AlertSpec, created_at: i64, held: bool) -> Self {
        AlertRecord {
            id: AlertId::new(),
            operator: operator.to_string(),
            spec,
            state: if held {
                AlertState::AwaitingApproval
            } else {
                AlertState::Resolving
            },
            created_at,
            completed_at: None,
            approved_at: None,
            shards_total: None,
            shards_done: 0,
        }
    }

    /// When it was let go: approved, or created if it needed no approval.
    /// Delivery times are measured from here.
    pub fn released_at(&self) -> i64 {
        self.approved_at.unwrap_or(self.created_at)
    }
}

/// One line of an alert's audit log: who moved it, when, from which
/// client, from which state to which, and what changed. Entries are only
/// ever appended, in the same step as the change they record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditEntry {
    /// Unix milliseconds.
    pub at: i64,
    /// The operator acting, or [`SYSTEM`] for bealert's own steps.
    pub operator: String,
    /// The person acting (see `bealert user create`).
    pub user: String,
    /// Where the request came from: `http <address> <user agent>`, `cli`,
    /// `worker`, `schedule`.
    pub client: String,
    /// What was done: create, approve, reject, cancel, expire, sending, sent, failed.
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<AlertState>,
    pub to: AlertState,
    /// What changed, in words (e.g. the reason of a rejection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The actor of bealert's own steps in the audit log.
pub const SYSTEM: &str = "bealert";

impl AuditEntry {
    /// A step bealert takes by itself (resolution done, every delivery final).
    pub fn system(action: &str, from: Option<AlertState>, to: AlertState, at: i64) -> Self {
        AuditEntry {
            at,
            operator: SYSTEM.into(),
            user: SYSTEM.into(),
            client: "worker".into(),
            action: action.into(),
            from,
            to,
            detail: None,
        }
    }
}

#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Stores a new alert and the audit entry of its creation, together.
    async fn insert_alert(&self, alert: &AlertRecord, entry: &AuditEntry)
    -> Result<(), StoreError>;
    /// An alert's audit log, oldest first.
    async fn audit(&self, id: AlertId) -> Result<Vec<AuditEntry>, StoreError>;
    async fn get_alert(&self, id: AlertId) -> Result<Option<AlertRecord>, StoreError>;
    /// The alert for those who need no geometry (senders, live views,
    /// settling): a store that keeps a large area apart may leave
    /// `spec.area` empty here and read one small item.
    async fn get_alert_head(&self, id: AlertId) -> Result<Option<AlertRecord>, StoreError> {
        self.get_alert(id).await
    }
    /// Alerts created at or after `since` (Unix ms), newest first, at most
    /// `limit`, as heads (the public page and feed).
    async fn recent_alerts(&self, since: i64, limit: usize)
    -> Result<Vec<AlertRecord>, StoreError>;
    /// Records the number of resolution shards; the first call wins.
    async fn set_shard_count(&self, id: AlertId, shards: u32) -> Result<(), StoreError>;
    /// Marks one shard resolved (idempotent) and returns `(done, total)`.
    async fn complete_shard(
        &self,
        id: AlertId,
        shard: u32,
    ) -> Result<(u32, Option<u32>), StoreError>;
    /// Appends an audit entry that moves nothing (e.g. a read of
    /// recipients' contacts).
    async fn append_audit(&self, id: AlertId, entry: &AuditEntry) -> Result<(), StoreError>;
    /// Moves the alert to `to` if it is still in `from`, and appends the
    /// audit entry in the same step (`entry.at` is the time of the move);
    /// false, and nothing written, if it was not.
    async fn transition(
        &self,
        id: AlertId,
        from: AlertState,
        to: AlertState,
        entry: &AuditEntry,
    ) -> Result<bool, StoreError>;
}

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
    /// The claim rule, for every store: a final delivery is done, one under
    /// an unexpired lease is busy, anything else is claimed with the next
    /// attempt (the store writes it only if the row is still as read).
    pub fn decide(
        status: DeliveryStatus,
        lease_until: i64,
        attempts: u32,
        provider: Option<String>,
        now: i64,
    ) -> Claim {
        match status {
            DeliveryStatus::Sent
            | DeliveryStatus::Failed
            | DeliveryStatus::Cancelled
            | DeliveryStatus::Delivered => Claim::Done,
            DeliveryStatus::Sending if lease_until > now => Claim::Busy { until: lease_until },
            DeliveryStatus::Queued | DeliveryStatus::Sending => Claim::Claimed {
                attempt: attempts + 1,
                provider,
            },
        }
    }

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

impl Outcome {
    /// What an outcome does to a delivery, for every store: its new status
    /// and the error kept with it.
    pub fn status(&self) -> (DeliveryStatus, Option<&str>) {
        match self {
            Outcome::Sent => (DeliveryStatus::Sent, None),
            Outcome::Failed(e) => (DeliveryStatus::Failed, Some(e)),
            Outcome::Retry(e) => (DeliveryStatus::Queued, Some(e)),
        }
    }
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

impl ReceiptChange {
    /// The receipt rule, for every store: a delivery another provider took
    /// is `Foreign`; otherwise it moves as
    /// [`bealert_core::delivery::after_receipt`] says, or is `Unchanged`.
    /// `Ok(to)`: the store writes the move if the status is still `status`.
    pub fn decide(
        &self,
        status: DeliveryStatus,
        provider: Option<String>,
        contact: String,
    ) -> Result<DeliveryStatus, ReceiptApplied> {
        if provider.as_deref().is_some_and(|p| p != self.provider) {
            return Err(ReceiptApplied::Foreign { provider });
        }
        bealert_core::delivery::after_receipt(status, self.status)
            .ok_or(ReceiptApplied::Unchanged { status, contact })
    }
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
    pub queued: u64,
    pub sending: u64,
    /// Handed over, no receipt (yet).
    pub sent: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// Handed over and confirmed by a receipt.
    pub delivered: u64,
}

impl ChannelCounts {
    pub fn pending(&self) -> u64 {
        self.queued + self.sending
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

#[async_trait]
pub trait OperatorStore: Send + Sync {
    /// Stores an operator with its first person (`operator.user`) and that
    /// person's key, all or nothing. Fails with `Conflict` if the name is taken.
    async fn insert_operator(&self, operator: &Operator, key: &KeyGrant) -> Result<(), StoreError>;
    /// Adds a person to an operator with their first key; `false` when no
    /// operator has the name, `Conflict` when the person exists.
    async fn insert_user(
        &self,
        operator: &str,
        user: &str,
        key: &KeyGrant,
    ) -> Result<bool, StoreError>;
    /// Ends every key of a person and, given one, adds a new key in the
    /// same step. With `old_until_ms`, the old keys keep working until
    /// then (never longer than they would have:
    /// [`bealert_core::operator::overlap_end`]) instead
    /// of being revoked at once; keys already ended are removed. `None`
    /// when the operator has no such person; otherwise how many keys were
    /// ended.
    async fn replace_keys(
        &self,
        operator: &str,
        user: &str,
        new_key: Option<&KeyGrant>,
        old_until_ms: Option<i64>,
    ) -> Result<Option<usize>, StoreError>;
    /// Revokes one key: refused from the next request on. `false` when no
    /// key has the hash.
    async fn revoke_key(&self, key_hash: &str) -> Result<bool, StoreError>;
    /// The operator and the person a key belongs to, with the key's end
    /// ([`Operator::key_expires_at_ms`]; an ended key is still returned:
    /// refusing it is the app's rule).
    async fn operator_by_key_hash(&self, key_hash: &str) -> Result<Option<Operator>, StoreError>;
    /// Lets an operator alert a group; `false` when no operator has the name.
    async fn grant_group(&self, name: &str, group: &str) -> Result<bool, StoreError>;
    /// Sets what a person may do (read back on the [`Operator`] their keys
    /// give); `false` when the operator has no such person.
    async fn set_rights(
        &self,
        operator: &str,
        user: &str,
        rights: &bealert_core::operator::Rights,
    ) -> Result<bool, StoreError>;
}

/// Reference geography: administrative units and their boundaries.
///
/// A unit is replaced whole: readers see the old boundary or the new one,
/// never a mix (the DynamoDB home keeps a boundary in several items).
#[async_trait]
pub trait GeoStore: Send + Sync {
    /// Adds units, or replaces those with the same level and code.
    async fn put_units(&self, units: &[Unit]) -> Result<(), StoreError>;
    /// One unit's catalogue entry (cheap: no boundary).
    async fn unit_info(&self, level: Level, code: &str) -> Result<Option<UnitInfo>, StoreError>;
    /// The units of every level with this code (a NIS code names one).
    async fn units_by_code(&self, code: &str) -> Result<Vec<UnitInfo>, StoreError>;
    /// One unit with its boundary.
    async fn unit(&self, level: Level, code: &str) -> Result<Option<Unit>, StoreError>;
    /// Every unit, without boundaries, by level then code.
    async fn units(&self) -> Result<Vec<UnitInfo>, StoreError>;
    /// The edition of the shipped units last loaded (`None`: never).
    async fn shipped_edition(&self) -> Result<Option<String>, StoreError>;
    async fn set_shipped_edition(&self, edition: &str) -> Result<(), StoreError>;
    /// The version of a unit that every stored address's units were last
    /// brought up to date against (`None`: never): only while it is the
    /// unit's current version may its addresses be read by key.
    async fn indexed_version(&self, level: Level, code: &str)
    -> Result<Option<String>, StoreError>;
    async fn set_indexed_version(
        &self,
        level: Level,
        code: &str,
        version: &str,
    ) -> Result<(), StoreError>;
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("queue error: {0}")]
pub struct QueueError(pub String);

/// A message taken from a queue, invisible to others until its timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedJob {
    pub id: String,
    /// Proves the current receipt; a stale one cannot delete or retry.
    pub receipt: String,
    pub body: String,
    /// How many times it was received, this time included.
    pub receive_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub id: String,
    pub body: String,
    pub receive_count: u32,
    pub last_error: Option<String>,
}

/// A queue's jobs by state ([`JobQueue::depth`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueDepth {
    /// Waiting to be received.
    pub ready: u64,
    /// Received, under their visibility timeout.
    pub in_flight: u64,
    /// Waiting for a planned time (a retry's backoff, a rate's wait).
    pub delayed: u64,
    /// In the dead-letter queue.
    pub dead_letters: u64,
}

#[async_trait]
pub trait JobQueue: Send + Sync {
    async fn send(&self, queue: &str, bodies: &[String]) -> Result<(), QueueError>;
    /// Takes up to `max` visible messages, waiting up to `wait` for one.
    /// A message received more than the queue's maximum is moved to the
    /// dead-letter queue instead of being returned.
    async fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<ReceivedJob>, QueueError>;
    async fn delete(&self, queue: &str, receipt: &str) -> Result<(), QueueError>;
    /// Makes the message visible again after `delay`, remembering why.
    async fn retry_after(
        &self,
        queue: &str,
        receipt: &str,
        delay: Duration,
        error: &str,
    ) -> Result<(), QueueError>;
    /// A planned wait (another sender holds a lease, a retry backoff, a
    /// rate limit): the message comes back after `delay` and this receive
    /// does not count towards the dead-letter limit. `body` is the message's
    /// own (a queue may re-send it rather than delay it in place).
    async fn postpone(
        &self,
        queue: &str,
        receipt: &str,
        body: &str,
        delay: Duration,
    ) -> Result<(), QueueError>;
    async fn dead_letters(&self, queue: &str) -> Result<Vec<DeadLetter>, QueueError>;
    /// How many jobs wait, are being worked on, wait for a planned time,
    /// and lie in the dead-letter queue (SQS: its approximate counts).
    async fn depth(&self, queue: &str) -> Result<QueueDepth, QueueError>;
    /// Moves a dead letter back onto its queue, its receive count reset;
    /// false if there is no such dead letter.
    async fn redrive(&self, queue: &str, id: &str) -> Result<bool, QueueError>;
    /// Removes a deleted subscriber's entries (which carry their contact)
    /// from send jobs and dead letters; returns the jobs changed. A queue
    /// that cannot edit its messages (SQS) answers 0: its messages expire
    /// with the queue's retention, and their deliveries are already final
    /// ([`DeliveryStore::forget_subscriber`]), so nothing is sent.
    async fn forget_subscriber(&self, subscriber: SubscriberId) -> Result<u64, QueueError>;
}

/// What a message is for. Alerts name their alert and recipient; a
/// verification code goes to a contact that belongs to nobody yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MessageKind {
    Alert {
        alert_id: AlertId,
        subscriber_id: SubscriberId,
    },
    Verification,
    /// A self-service link, sent on request to a verified contact.
    SelfService,
    /// To an operator's approvers: an alert waits for a second person.
    Approval {
        alert_id: AlertId,
    },
}

impl MessageKind {
    /// The alert this message belongs to, if it is an alert.
    pub fn alert_id(&self) -> Option<AlertId> {
        match self {
            MessageKind::Alert { alert_id, .. } => Some(*alert_id),
            MessageKind::Verification | MessageKind::SelfService | MessageKind::Approval { .. } => {
                None
            }
        }
    }
}

/// A message for a gateway.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutboundMessage {
    /// Unique per message (`alert:channel:subscriber` for alerts); a
    /// gateway never sends one key twice.
    pub key: String,
    #[serde(flatten)]
    pub kind: MessageKind,
    pub channel: Channel,
    pub to: String,
    pub language: Language,
    pub subject: Option<String>,
    pub text: String,
    /// An alert's last line: its issuing authority and Belgian time
    /// (`Crisiscentrum, 29/11/2026 10:00`). Gateways send it after the
    /// text ([`OutboundMessage::body`]); the outbox keeps it apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Unix ms after which the message must not be handed over: the claim
    /// it is sent under may then belong to another sender. A gateway
    /// answers a later message `Retryable` without sending it.
    pub not_after: i64,
    /// The provider an earlier attempt may have reached: only it may be
    /// asked again ([`crate::providers::ProviderChain`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// E-mail: the self-service page where the recipient manages or stops
    /// their registration (`List-Unsubscribe`, and a line under the text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsubscribe: Option<String>,
}

impl OutboundMessage {
    /// What the recipient gets: the text, then the signature on its own line.
    pub fn body(&self) -> String {
        bealert_core::message::signed(&self.text, self.signature.as_deref())
    }

    /// What a gateway answers for a message whose claim may have run out.
    pub fn too_late(&self, now_ms: i64) -> Option<GatewayError> {
        (now_ms > self.not_after).then(|| {
            GatewayError::Retryable("not sent: the claim's lease ran out before its turn".into())
        })
    }
}

/// Who took a message: a provider of the channel (see
/// [`crate::providers::ProviderChain`]) and the provider's own id for it,
/// which its delivery receipts name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Handover {
    pub provider: String,
    pub id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Taken; the provider's name is filled in by the provider chain.
    Accepted(Handover),
    /// The key had been sent before: nothing was sent again.
    AlreadySent,
}

impl Sent {
    /// Taken, with no id of the provider's.
    pub fn accepted() -> Self {
        Sent::Accepted(Handover::default())
    }

    /// Taken, under the provider's id for it.
    pub fn accepted_as(id: impl Into<String>) -> Self {
        Sent::Accepted(Handover {
            provider: String::new(),
            id: Some(id.into()),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// A transient failure after which the message may or may not have
    /// left (a timeout, a server error): it is retried with the same
    /// provider only.
    #[error("temporary failure: {0}")]
    Retryable(String),
    /// The provider certainly did not take it (it is down, or refuses this
    /// account): the next provider of the channel may send it at once.
    #[error("not taken: {0}")]
    Refused(String),
    /// A [`GatewayError::Retryable`] of a named provider of a chain: the
    /// message stays pinned to that provider.
    #[error("unsure whether {provider} sent it: {reason}")]
    Unsure { provider: String, reason: String },
    /// The provider asks to slow down: retried with backoff, and not counted
    /// against the delivery's attempts (only a far larger cap applies).
    #[error("throttled: {0}")]
    Throttled(String),
    #[error("refused: {0}")]
    Permanent(String),
}

/// What a chain has seen of one provider, for `bealert status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProviderHealth {
    pub name: String,
    pub accepted: u64,
    pub refused: u64,
    pub unsure: u64,
    pub throttled: u64,
    pub permanent: u64,
    /// Calls refused in a row: after [`crate::providers::SKIP_AFTER`] the
    /// chain passes the provider by for [`crate::providers::SKIP_FOR`] (it
    /// is still asked when it is the last).
    pub refused_in_a_row: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Whether the chain passes it by now.
    pub skipped: bool,
}

#[async_trait]
pub trait Gateway: Send + Sync {
    /// Sends messages; one result per message, in order.
    async fn send(&self, messages: &[OutboundMessage]) -> Vec<Result<Sent, GatewayError>>;

    /// What a provider chain has seen of each of its providers.
    fn providers(&self) -> Vec<ProviderHealth> {
        Vec::new()
    }
}

/// A channel's send budget, shared by every sender of the channel (all
/// Lambda instances, or every worker of a process): at most the channel's
/// limit of messages in any second. The rule is [`crate::rate::take_tokens`].
#[async_trait]
pub trait SendBudget: Send + Sync {
    /// The channel's limit; `None` is unlimited.
    fn limit(&self, channel: Channel) -> Option<crate::limit::Limit>;
    /// The channel's messages per second; `None` is unlimited.
    fn rate(&self, channel: Channel) -> Option<u32> {
        self.limit(channel).map(|l| l.per_second)
    }
    /// Takes up to `n` messages' worth at `now_ms`; returns how many were
    /// granted (0 when the budget is spent for now).
    async fn take(
        &self,
        channel: Channel,
        n: u32,
        priority: crate::limit::Priority,
        now_ms: i64,
    ) -> Result<u32, StoreError>;
}

/// One gateway per channel.
#[derive(Clone)]
pub struct Gateways {
    pub sms: Arc<dyn Gateway>,
    pub voice: Arc<dyn Gateway>,
    pub email: Arc<dyn Gateway>,
}

impl Gateways {
    pub fn get(&self, channel: Channel) -> &Arc<dyn Gateway> {
        match channel {
            Channel::Sms => &self.sms,
            Channel::Voice => &self.voice,
            Channel::Email => &self.email,
        }
    }
}

/// Everything the use cases need, wired by a `main`.
#[derive(Clone)]
pub struct Ports {
    pub subscribers: Arc<dyn SubscriberStore>,
    pub alerts: Arc<dyn AlertStore>,
    pub deliveries: Arc<dyn DeliveryStore>,
    pub operators: Arc<dyn OperatorStore>,
    /// Administrative units: geocodes and operators' territories.
    pub geography: Arc<dyn GeoStore>,
    /// Alert templates, drills and their runs.
    pub documents: Arc<dyn DocumentStore>,
    /// `Idempotency-Key` records of alert requests.
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub queue: Arc<dyn JobQueue>,
    pub gateways: Gateways,
}

/// The first answer to a request that carried an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredAnswer {
    pub status: u16,
    /// The `Location` header, if the answer had one.
    pub location: Option<String>,
    /// The JSON body.
    pub body: String,
}

/// What a store holds for a person's idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The request's fingerprint (method, path, body).
    pub fingerprint: String,
    /// `None` while the first request is still being answered.
    pub answer: Option<StoredAnswer>,
}

/// `Idempotency-Key` records (draft-ietf-httpapi-idempotency-key-header),
/// per person (`scope`) and key. The rules (what a replay, a reuse with
/// another body, a request in progress get) are decided in
/// `usecases::idempotency`; a store only claims, completes and releases.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims the key for a request unless a record that has not expired
    /// (`expires_at` > `now`) exists: `None` when claimed (the caller goes
    /// on), else the record found. Atomic: of two racing claims one wins.
    async fn claim_key(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<Option<KeyRecord>, StoreError>;
    /// Stores the answer of a claimed key.
    async fn complete_key(
        &self,
        scope: &str,
        key: &str,
        answer: &StoredAnswer,
    ) -> Result<(), StoreError>;
    /// Forgets a claim whose request failed, so that a retry may run.
    async fn release_key(&self, scope: &str, key: &str) -> Result<(), StoreError>;
}

/// Small JSON documents by kind and id, each replaced whole: alert
/// templates (`template`), drills (`drill`) and their runs (`drill-run`).
#[async_trait]
pub trait DocumentStore: Send + Sync {
    async fn put_document(
        &self,
        kind: &str,
        id: &str,
        body: &serde_json::Value,
    ) -> Result<(), StoreError>;
    async fn get_document(
        &self,
        kind: &str,
        id: &str,
    ) -> Result<Option<serde_json::Value>, StoreError>;
    /// Every document of a kind whose id starts with `prefix`, by id.
    async fn documents(
        &self,
        kind: &str,
        prefix: &str,
    ) -> Result<Vec<(String, serde_json::Value)>, StoreError>;
    /// False if there was none.
    async fn delete_document(&self, kind: &str, id: &str) -> Result<bool, StoreError>;
}

/// Where drills run on their schedule, in the AWS home (EventBridge
/// Scheduler invoking the drill function with `{"drill_id": ...}`).
#[async_trait]
pub trait DrillScheduler: Send + Sync {
    /// Creates or replaces the schedule of a drill (EventBridge syntax,
    /// time zone Europe/Brussels).
    async fn schedule(&self, drill_id: &str, expression: &str) -> Result<(), StoreError>;
    /// Removes it; nothing if there is none.
    async fn unschedule(&self, drill_id: &str) -> Result<(), StoreError>;
}

/// A mobile network (Alert-SMS) as stored; its key is kept hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub name: String,
    pub key_hash: String,
    pub created_at: i64,
}

/// A network and its cells' state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetworkInfo {
    pub name: String,
    /// Bumped by every replacement of the cells (0: none uploaded).
    pub version: u64,
    /// When the cells were last replaced (Unix ms).
    pub refreshed_at: Option<i64>,
    pub cells: u64,
    pub active_devices: u64,
    /// Footprints bealert derived from site positions.
    pub derived: u64,
}

/// A cell with the index cells it is found under
/// ([`bealert_core::network::INDEX_RESOLUTION`]).
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedCell {
    pub record: bealert_core::network::CellRecord,
    pub parents: Vec<u64>,
}

/// Networks and their cells, read by the index cells a zone touches (never
/// a whole network for a municipal zone).
#[async_trait]
pub trait NetworkStore: Send + Sync {
    /// Fails with `Conflict` if the name is taken.
    async fn insert_network(&self, network: &Network) -> Result<(), StoreError>;
    async fn network_by_key_hash(&self, key_hash: &str) -> Result<Option<Network>, StoreError>;
    /// Every network, by name.
    async fn networks(&self) -> Result<Vec<NetworkInfo>, StoreError>;
    /// Replaces every cell of the network at once: a reader sees the old
    /// cells or the new ones, never a mix. Returns the new state.
    async fn replace_cells(
        &self,
        network: &str,
        cells: Arc<[IndexedCell]>,
        refreshed_at: i64,
    ) -> Result<NetworkInfo, StoreError>;
    /// The network's current cells indexed under any of `parents`, each once.
    async fn cells_in(
        &self,
        network: &str,
        parents: &[u64],
    ) -> Result<Vec<IndexedCell>, StoreError>;
}

/// A delivery to a target that is not a subscriber (a network), one per
/// alert and target.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetRow {
    pub target: bealert_core::broadcast::Target,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub report: Option<bealert_core::broadcast::NetworkReport>,
    pub error: Option<String>,
    pub updated_at: i64,
}

/// Deliveries to targets: planned once, claimed under a lease with a
/// fencing token ([`Claim::decide`]), recorded only by the claim's owner.
#[async_trait]
pub trait TargetStore: Send + Sync {
    /// Plans one queued delivery per target; one already planned is kept as it is.
    async fn plan_targets(
        &self,
        alert: AlertId,
        targets: &[bealert_core::broadcast::Target],
        now: i64,
    ) -> Result<(), StoreError>;
    async fn claim_target(
        &self,
        alert: AlertId,
        target: &bealert_core::broadcast::Target,
        now: i64,
        lease: Duration,
    ) -> Result<Claim, StoreError>;
    /// Records an outcome if the delivery is still `sending` under
    /// `attempt`; false (nothing written) otherwise.
    async fn record_target(
        &self,
        alert: AlertId,
        target: &bealert_core::broadcast::Target,
        attempt: u32,
        outcome: &Outcome,
        report: Option<&bealert_core::broadcast::NetworkReport>,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Fails the delivery if nobody is sending it (queued, or an expired
    /// lease): the end of a dead-lettered job. False if it was not failed.
    async fn fail_target(
        &self,
        alert: AlertId,
        target: &bealert_core::broadcast::Target,
        reason: &str,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Every target delivery of the alert, by target.
    async fn targets(&self, alert: AlertId) -> Result<Vec<TargetRow>, StoreError>;
}

/// One cell of a broadcast, as the network knows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BroadcastCell {
    pub cell_id: String,
    pub active_devices: u64,
}

/// What a network gets for one alert.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BroadcastMessage {
    /// `alert:network:<name>`: a network never sends one key twice.
    pub key: String,
    pub alert_id: AlertId,
    pub network: String,
    pub mode: bealert_core::broadcast::BroadcastMode,
    pub cells: Vec<BroadcastCell>,
    /// The text per language, as the alert has them.
    pub texts: BTreeMap<Language, String>,
    /// Cell broadcast: the message identifier of the first language; the
    /// others use its additional-language identifier.
    pub message_identifier: u16,
    pub additional_language_identifier: u16,
    /// Cell broadcast: seconds between repetitions.
    pub repetition_period_s: u32,
    /// Unix ms after which the message must not be handed over.
    pub not_after: i64,
}

impl BroadcastMessage {
    /// What a network answers for a message whose claim may have run out.
    pub fn too_late(&self, now_ms: i64) -> Option<GatewayError> {
        (now_ms > self.not_after).then(|| {
            GatewayError::Retryable("not sent: the claim's lease ran out before its turn".into())
        })
    }
}

/// A message to the audience of an earlier one (an update or a cancel):
/// the network reuses the cells (and, for LB-SMS, the devices) it kept.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FollowUpMessage {
    pub key: String,
    /// The key of the earlier message.
    pub references: String,
    pub network: String,
    pub texts: BTreeMap<Language, String>,
    pub message_identifier: u16,
}

/// A mobile network's alerting interface (location-based SMS or cell
/// broadcast): an HTTP JSON API in production, a simulator locally.
#[async_trait]
pub trait NetworkGateway: Send + Sync {
    async fn broadcast(
        &self,
        message: &BroadcastMessage,
    ) -> Result<bealert_core::broadcast::NetworkReport, GatewayError>;
    /// Sends to the same audience as an earlier message (the lifecycle's
    /// Update and Cancel).
    async fn follow_up(
        &self,
        message: &FollowUpMessage,
    ) -> Result<bealert_core::broadcast::NetworkReport, GatewayError>;
}

/// The gateway of each network.
pub trait NetworkGateways: Send + Sync {
    fn gateway(&self, network: &str) -> Arc<dyn NetworkGateway>;
}

/// What one public channel outlet gets for one alert.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PublicMessage {
    /// `alert:kind:name`: an outlet never publishes one key twice (each
    /// social post's key adds `:language`).
    pub key: String,
    pub alert_id: AlertId,
    pub outlet: bealert_core::outlet::Outlet,
    /// Social: one post per language, each within the outlet's length.
    pub posts: Vec<Post>,
    /// Siren: the tone to sound.
    pub tone: Option<bealert_core::outlet::Tone>,
    /// Sign: the CAP 1.2 message.
    pub cap: Option<String>,
    /// Unix ms after which the message must not be handed over.
    pub not_after: i64,
}

/// One social post.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Post {
    pub language: Language,
    pub text: String,
}

impl PublicMessage {
    /// What an outlet answers for a message whose claim may have run out.
    pub fn too_late(&self, now_ms: i64) -> Option<GatewayError> {
        (now_ms > self.not_after).then(|| {
            GatewayError::Retryable("not sent: the claim's lease ran out before its turn".into())
        })
    }
}

/// The public channels' outlets: a webhook per social account, a siren
/// controller, a sign network's CAP endpoint (HTTP), or the simulator.
/// The answer counts what was reached, in a network's terms
/// ([`bealert_core::broadcast::NetworkReport`]).
#[async_trait]
pub trait PublicGateway: Send + Sync {
    async fn publish(
        &self,
        message: &PublicMessage,
    ) -> Result<bealert_core::broadcast::NetworkReport, GatewayError>;

    /// Whether this gateway can and may reach an outlet's URL (an
    /// `https://` one needs a build with TLS; no private, loopback or
    /// link-local address, [`bealert_core::endpoint`]): asked when an
    /// outlet is registered, so a URL it cannot reach is refused then, not
    /// at the first alert. A gateway that reaches no URL (a simulator)
    /// accepts all.
    async fn reachable(&self, _url: &str) -> Result<(), String> {
        Ok(())
    }
}

/// The public channels, when a home sets them up ([`crate::App::with_public`]):
/// their outlets' gateway, and the counters of each outlet's rate limit.
/// Their deliveries are target deliveries ([`TargetStore`]).
#[derive(Clone)]
pub struct PublicPorts {
    pub gateway: Arc<dyn PublicGateway>,
    pub counters: Arc<dyn Counters>,
}

/// A presigned upload: where to PUT a file, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedUpload {
    pub url: String,
    /// Unix ms.
    pub expires_at: i64,
}

/// Files too large for a request (a network's cells over Lambda's 6 MB
/// payload): the client uploads them straight to the store with a
/// presigned URL, then asks for them to be loaded. S3 in the AWS home; the
/// embedded home takes the files in the request itself.
#[async_trait]
pub trait UploadStore: Send + Sync {
    async fn presign_put(&self, key: &str, valid: Duration) -> Result<PresignedUpload, StoreError>;
    /// The uploaded file, if there is one under `key`.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
}

/// The ports of Alert-SMS.
#[derive(Clone)]
pub struct BroadcastPorts {
    pub networks: Arc<dyn NetworkStore>,
    pub targets: Arc<dyn TargetStore>,
    pub gateways: Arc<dyn NetworkGateways>,
    /// Presigned uploads of large cell files, where the home has them.
    pub uploads: Option<Arc<dyn UploadStore>>,
}

/// Citizens' own registrations (the signup page), apart from subscribers:
/// only a registration's reachable projection is stored as a subscriber.
#[async_trait]
pub trait RegistrationStore: Send + Sync {
    /// Stores a new registration; `Conflict` if its id exists.
    async fn insert_registration(
        &self,
        registration: &bealert_core::signup::Registration,
    ) -> Result<(), StoreError>;
    async fn get_registration(
        &self,
        id: &str,
    ) -> Result<Option<bealert_core::signup::Registration>, StoreError>;
    /// Replaces the registration if the stored one still has version
    /// `registration.version - 1`; false (nothing written) otherwise.
    async fn replace_registration(
        &self,
        registration: &bealert_core::signup::Registration,
    ) -> Result<bool, StoreError>;
    /// Deletes it; false if there was none.
    async fn delete_registration(&self, id: &str) -> Result<bool, StoreError>;
    /// The registrations listing `key` among their `lookup_keys`.
    async fn registrations_by_key(&self, key: &str) -> Result<Vec<String>, StoreError>;
    /// Stores a group invitation; `Conflict` if its key exists.
    async fn insert_invitation(
        &self,
        invitation: &bealert_core::signup::Invitation,
    ) -> Result<(), StoreError>;
    /// Uses an invitation once, atomically: its group if it exists, has not
    /// expired at `now` and has a use left (one is taken); `None` otherwise.
    async fn use_invitation(&self, key: &str, now: i64) -> Result<Option<String>, StoreError>;
}

/// Counts of events in fixed windows (signups per number, per prefix, per
/// address), shared by every instance: the abuse limits are decided in
/// the app ([`crate::usecases::signup`]) on these counts.
#[async_trait]
pub trait Counters: Send + Sync {
    /// Adds `by` to `key`'s count in the window of `window_ms` containing
    /// `now_ms`, and returns the new count.
    async fn bump(
        &self,
        key: &str,
        by: u64,
        window_ms: i64,
        now_ms: i64,
    ) -> Result<u64, StoreError>;
    /// `key`'s count in the window containing `now_ms` (0 if none).
    async fn count(&self, key: &str, window_ms: i64, now_ms: i64) -> Result<u64, StoreError>;
}

/// What a citizen typed as an address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressQuery {
    pub street: Option<String>,
    pub postal_code: Option<String>,
    pub municipality: Option<String>,
}

/// How close a geocoded point is to the address typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// The building (a geocoding service found the address).
    Address,
    Street,
    /// The centre of the municipality of a postal code.
    Municipality,
    /// Only the seat of the judicial canton is known: kilometres off.
    Region,
    /// The citizen's device gave it (browser geolocation).
    Device,
}

/// A point found for an address.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Place {
    pub lat: f64,
    pub lon: f64,
    /// What the point is, in words (`"1000 Brussel"`).
    pub label: String,
    pub precision: Precision,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GeocodeError {
    #[error("geocoding is unavailable: {0}")]
    Unavailable(String),
}

/// Addresses to points: an offline gazetteer (embedded) or Amazon Location.
#[async_trait]
pub trait Geocoder: Send + Sync {
    /// The places matching the query, best first (empty: nothing found).
    async fn geocode(&self, query: &AddressQuery) -> Result<Vec<Place>, GeocodeError>;
}

/// The ports of the public signup.
#[derive(Clone)]
pub struct SignupPorts {
    pub registrations: Arc<dyn RegistrationStore>,
    pub counters: Arc<dyn Counters>,
    pub geocoder: Arc<dyn Geocoder>,
    /// What verification codes and self-service links leave through: the
    /// signup's own sending identity and configuration (its own provider
    /// accounts, SES configuration set and sender, SMS origination pool),
    /// never the alerts' [`Ports::gateways`], so that a spend limit or a
    /// sender suspension caused by signup traffic cannot silence alerts.
    pub gateways: Gateways,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_sender_claims_a_final_delivery_cancelled_included() {
        for status in [
            DeliveryStatus::Sent,
            DeliveryStatus::Failed,
            DeliveryStatus::Cancelled,
        ] {
            assert_eq!(
                Claim::decide(status, 0, 1, Some("sns".into()), 10),
                Claim::Done,
                "{status:?}"
            );
        }
        assert_eq!(
            Claim::decide(DeliveryStatus::Queued, 0, 1, None, 10),
            Claim::claimed(2)
        );
        // A delivery an earlier attempt may have sent stays with its provider.
        assert_eq!(
            Claim::decide(DeliveryStatus::Queued, 0, 1, Some("sns".into()), 10),
            Claim::Claimed {
                attempt: 2,
                provider: Some("sns".into())
            }
        );
    }
}
