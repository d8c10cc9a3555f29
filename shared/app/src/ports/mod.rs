//! The ports: small traits for each capability the use cases need.
//!
//! Every port has an embedded adapter (SQLite, a SQLite queue, outbox files)
//! and an AWS one (DynamoDB, SQS, SNS/SES); a conformance suite per port
//! (`shared/conformance`, a test-only crate) pins the behaviour of all of them.

mod alerts;
mod deliveries;
mod documents;
mod gateways;
mod geography;
mod idempotency;
mod networks;
mod operators;
mod public;
mod queue;
mod signup;
mod subscribers;

pub use alerts::*;
pub use deliveries::*;
pub use documents::*;
pub use gateways::*;
pub use geography::*;
pub use idempotency::*;
pub use networks::*;
pub use operators::*;
pub use public::*;
pub use queue::*;
pub use signup::*;
pub use subscribers::*;

use std::sync::Arc;

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
    /// Deliveries to a target that is not a subscriber: a network's part
    /// of an alert (Alert-SMS), an outlet's post (public channels). Every
    /// home has it, so public channels do not need Alert-SMS.
    pub targets: Arc<dyn TargetStore>,
}
