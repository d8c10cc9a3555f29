//! Alert-SMS: mobile networks, their cells and targets, their gateways,
//! uploads of cell files.

use super::{Claim, GatewayError, Outcome, StoreError};
use async_trait::async_trait;
use bealert_core::AlertId;
use bealert_core::Language;
use bealert_core::delivery::DeliveryStatus;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

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
    pub gateways: Arc<dyn NetworkGateways>,
    /// Presigned uploads of large cell files, where the home has them.
    pub uploads: Option<Arc<dyn UploadStore>>,
}
