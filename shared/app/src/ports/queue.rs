//! The job queue: messages under a visibility timeout, with dead letters.

use async_trait::async_trait;
use bealert_core::SubscriberId;
use std::time::Duration;

use super::StoreError;

/// A queue failure. A `Transient` one is worth retrying (the queue did not
/// answer, throttled, a 5xx, a timeout, a database busy); a `Permanent`
/// one is not (a message over the queue's limit, an unknown queue, a
/// receipt that is not the queue's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("queue unavailable: {0}")]
    Transient(String),
    #[error("queue error: {0}")]
    Permanent(String),
}

impl QueueError {
    pub fn is_transient(&self) -> bool {
        matches!(self, QueueError::Transient(_))
    }

    /// What went wrong, without the kind.
    pub fn message(&self) -> &str {
        match self {
            QueueError::Transient(m) | QueueError::Permanent(m) => m,
        }
    }
}

/// A queue kept in a store (the embedded home's SQLite queue) fails as its
/// store does: busy, transient and conflicting writes pass.
impl From<StoreError> for QueueError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Transient(m) | StoreError::Busy(m) | StoreError::Conflict(m) => {
                QueueError::Transient(m)
            }
            StoreError::Permanent(m) => QueueError::Permanent(m),
        }
    }
}

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
    /// Moves the message to the dead-letter queue now, keeping `error`
    /// with it: a job no retry can mend (unreadable, or failed for a
    /// permanent reason) uses up no more receives. `body` is the message's
    /// own (a queue may re-send it rather than move it in place).
    async fn dead_letter(
        &self,
        queue: &str,
        receipt: &str,
        body: &str,
        error: &str,
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
