//! The alert store: alerts as stored and their append-only audit log.

use super::StoreError;
use async_trait::async_trait;
use bealert_core::AlertId;
use bealert_core::alert::AlertSpec;
use bealert_core::alert::AlertState;

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
