//! The use cases, as methods of [`App`]: one module per capability.

mod alerts;
pub mod approvers;
mod broadcast;
pub mod console;
mod dead_letters;
pub mod drills;
mod follow_up;
pub mod geography;
pub mod halt;
pub mod idempotency;
pub mod identity;
mod matcher;
pub mod networks;
mod operators;
mod preview;
pub mod public;
mod public_channels;
pub use receipts::{ReceiptReport, receipt_token, receipt_token_variable, same_secret};
mod receipts;
mod resolve;
pub mod self_service;
mod send;
mod settle;
pub mod signup;
pub mod status;
mod subscribers;
pub mod templates;

pub use alerts::{AlertCreated, AlertView, ChannelView, DeliveriesPage, ResolutionView};
pub use operators::{
    MAX_KEY_OVERLAP_MS, Rotation, create_operator, create_user, generate_key, grant_group,
    replace_keys, revoke_key, set_rights,
};
pub use preview::{CellStats, Preview};
pub use settle::{Disposition, JobError, JobOutcome, disposition};
pub use subscribers::{ImportReport, Rejected};

use crate::jobs::{RESOLVE_QUEUE, ResolveJob, SendJob};
use crate::ports::Ports;
use crate::ports::SendBudget;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;

/// Tunables of the use cases; defaults suit both homes.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// H3 cells per resolution shard.
    pub cells_per_shard: usize,
    /// Deliveries per send job.
    pub batch_size: usize,
    /// How long a sender owns a claimed delivery; keep it under the queue's
    /// visibility timeout.
    pub lease: Duration,
    /// Attempts before a delivery is marked failed.
    pub max_attempts: u32,
    /// First wait before retrying deliveries a gateway could not take;
    /// doubles per attempt, capped at a minute.
    pub retry_base: Duration,
    /// Each channel's limit (sms, voice, email); `None` = unlimited.
    pub limits: [Option<crate::rate::Limit>; 3],
    /// Subscribers accepted in one import request.
    pub max_import: usize,
    /// Receives after which a queue dead-letters a failing job (SQS
    /// `maxReceiveCount`; the template and the SQLite queue use 5). On its
    /// last receive a failing job's work is ended with the reason.
    pub max_receives: u32,
    /// How long validating and covering one zone may take before the
    /// request is refused (see [`crate::geometry`]).
    pub geometry_deadline: Duration,
    /// Which alerts wait for a second person (four-eyes).
    pub approval: bealert_core::lifecycle::ApprovalPolicy,
    /// How long an alert waits for approval before it expires.
    pub approval_wait: Duration,
    /// How long after its creation an alert may still be followed up
    /// (updated, cancelled, all-cleared); later is a 409.
    pub follow_up_window: Duration,
    /// Where citizens reach the signup and self-service pages (e-mails
    /// link to `/manage` there); the signup's own setting when unset.
    pub public_url: Option<String>,
    /// The console map's tile server (a URL template); `None`: bundled
    /// outlines only, no third-party request.
    pub console_tiles: Option<String>,
    /// The console's files go gzip-compressed to browsers that take it
    /// (`serve`); off where API Gateway compresses them itself.
    pub compress_assets: bool,
    /// How long a job the store was too busy for (throttling, a 5xx, a
    /// timeout: [`JobError::Busy`]) waits before it is tried again
    /// (jittered: between half and all of it). Such a wait is postponed,
    /// not failed: it does not count towards the dead-letter limit.
    pub busy_wait: Duration,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            cells_per_shard: 64,
            batch_size: 500,
            lease: Duration::from_secs(60),
            max_attempts: 5,
            retry_base: Duration::from_secs(1),
            limits: [None; 3],
            max_import: 100_000,
            max_receives: 5,
            geometry_deadline: Duration::from_secs(5),
            approval: bealert_core::lifecycle::ApprovalPolicy::default(),
            approval_wait: Duration::from_secs(30 * 60),
            follow_up_window: Duration::from_secs(48 * 3600),
            public_url: None,
            console_tiles: None,
            compress_assets: true,
            busy_wait: Duration::from_secs(10),
        }
    }
}

/// bealert's use cases over its ports.
pub struct App {
    pub ports: Ports,
    pub config: AppConfig,
    budget: Arc<dyn SendBudget>,
    geometry: crate::geometry::GeometryLane,
    ids: identity::IdGenerator,
    signup: Option<signup::Signup>,
    broadcast: Option<BroadcastState>,
    /// Public channels: social media, sirens, signs ([`App::with_public`]).
    public: Option<crate::ports::PublicPorts>,
    units: geography::UnitCache,
    /// Where drills are scheduled (the AWS home's EventBridge Scheduler);
    /// `None`: the process fires them itself ([`App::fire_due_drills`]).
    drill_scheduler: Option<Arc<dyn crate::ports::DrillScheduler>>,
    /// Messages handed over per channel, for the status ([`status`]).
    meter: status::SendMeter,
    /// The console's map outlines ([`App::outlines`]).
    outlines: console::OutlineCache,
    /// The global stop as senders last read it ([`halt`]).
    halt: halt::HaltCache,
    /// Where the use cases read the time ([`crate::clock`]).
    clock: Arc<dyn crate::clock::Clock>,
}

/// Alert-SMS, when a home sets it up ([`App::with_broadcast`]); its use
/// cases are [`networks::NetworksApp`]'s.
struct BroadcastState {
    ports: crate::ports::BroadcastPorts,
    config: networks::BroadcastConfig,
    cells: networks::CellCache,
}

/// Backoff before retry number `n + 1`: `base`, doubling, at most a minute.
/// Deliveries the gateway could not take, failed jobs in the local pollers
/// and in the Lambda functions all wait by it.
pub fn backoff(base: Duration, n: u32) -> Duration {
    (base * (1u32 << n.min(10))).min(Duration::from_secs(60))
}

/// A backoff with jitter: between half and all of `d`, so senders that
/// failed together do not come back together.
pub fn jittered(d: Duration) -> Duration {
    d.mul_f64(0.5 + rand::random::<f64>() / 2.0)
}

impl App {
    pub fn new(ports: Ports, config: AppConfig) -> Self {
        let budget = Arc::new(crate::rate::LocalBudget::new(config.limits));
        let geometry = crate::geometry::GeometryLane::new(config.geometry_deadline);
        Self {
            ports,
            config,
            budget,
            geometry,
            ids: identity::IdGenerator::default(),
            units: geography::UnitCache::default(),
            signup: None,
            broadcast: None,
            public: None,
            drill_scheduler: None,
            meter: status::SendMeter::default(),
            outlines: console::OutlineCache::default(),
            halt: halt::HaltCache::default(),
            clock: Arc::new(crate::clock::SystemClock),
        }
    }

    /// Reads the time from `clock` instead of the wall clock (tests: a
    /// [`crate::TestClock`]).
    pub fn with_clock(mut self, clock: Arc<dyn crate::clock::Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Milliseconds since the Unix epoch, by the app's clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// A channel's send limit; `None` is unlimited.
    pub fn budget_limit(&self, channel: bealert_core::Channel) -> Option<crate::rate::Limit> {
        self.budget.limit(channel)
    }

    pub fn has_drill_scheduler(&self) -> bool {
        self.drill_scheduler.is_some()
    }

    /// Drills run by an external scheduler (EventBridge Scheduler).
    pub fn with_drill_scheduler(mut self, s: Arc<dyn crate::ports::DrillScheduler>) -> Self {
        self.drill_scheduler = Some(s);
        self
    }

    pub fn with_broadcast(
        mut self,
        ports: crate::ports::BroadcastPorts,
        config: networks::BroadcastConfig,
    ) -> Self {
        self.broadcast = Some(BroadcastState {
            ports,
            config,
            cells: networks::CellCache::default(),
        });
        self
    }

    /// Replaces the in-process send budget with a shared one (the AWS home's
    /// DynamoDB buckets, shared by every Lambda instance).
    pub fn with_budget(mut self, budget: Arc<dyn SendBudget>) -> Self {
        self.budget = budget;
        self
    }

    /// The alert a job is about; a job for an unknown alert fails (and, after
    /// its retries, reaches the dead-letter queue).
    async fn job_alert(
        &self,
        id: bealert_core::AlertId,
    ) -> Result<crate::ports::AlertRecord, JobError> {
        self.ports
            .alerts
            .get_alert(id)
            .await?
            .ok_or_else(|| JobError::Transient(format!("alert {id} does not exist")))
    }

    /// [`Self::job_alert`] without the area's geometry, for senders.
    async fn job_alert_head(
        &self,
        id: bealert_core::AlertId,
    ) -> Result<crate::ports::AlertRecord, JobError> {
        self.ports
            .alerts
            .get_alert_head(id)
            .await?
            .ok_or_else(|| JobError::Transient(format!("alert {id} does not exist")))
    }

    /// Handles one message of one of bealert's queues (see [`crate::jobs`]).
    pub async fn handle_job(&self, queue: &str, body: &str) -> Result<JobOutcome, JobError> {
        if queue == RESOLVE_QUEUE {
            self.resolve_job(queue, body).await
        } else if queue == crate::jobs::BROADCAST_QUEUE {
            self.broadcast_job(queue, body).await
        } else if crate::jobs::public_kind(queue).is_some() {
            self.public_job(queue, body).await
        } else {
            self.send_job(queue, body).await
        }
    }

    /// A job of the resolve queue. (Entry points per kind let a function
    /// link only the code of the jobs it runs.)
    pub fn resolve_job<'a>(
        &'a self,
        _queue: &'a str,
        body: &'a str,
    ) -> BoxFuture<'a, Result<JobOutcome, JobError>> {
        Box::pin(async move {
            let job: ResolveJob =
                serde_json::from_str(body).map_err(|e| JobError::Poison(e.to_string()))?;
            self.handle_resolve(job).await
        })
    }

    /// A job of the broadcast queue (one network's part of an alert).
    pub fn broadcast_job<'a>(
        &'a self,
        _queue: &'a str,
        body: &'a str,
    ) -> BoxFuture<'a, Result<JobOutcome, JobError>> {
        Box::pin(async move {
            let job: crate::jobs::BroadcastJob =
                serde_json::from_str(body).map_err(|e| JobError::Poison(e.to_string()))?;
            if let Some(wait) = self.while_halted().await? {
                return Ok(wait);
            }
            self.networks_offered()
                .map_err(JobError::from)?
                .handle_broadcast(job)
                .await
        })
    }

    /// A job of a channel's send queue.
    pub fn send_job<'a>(
        &'a self,
        queue: &'a str,
        body: &'a str,
    ) -> BoxFuture<'a, Result<JobOutcome, JobError>> {
        Box::pin(async move {
            let (channel, _) = crate::jobs::send_lane(queue)
                .ok_or_else(|| JobError::Poison(format!("no handler for queue {queue:?}")))?;
            let job: SendJob =
                serde_json::from_str(body).map_err(|e| JobError::Poison(e.to_string()))?;
            if job.channel != channel {
                return Err(JobError::Poison(format!(
                    "a {} job arrived on the {queue} queue",
                    job.channel
                )));
            }
            if let Some(wait) = self.while_halted().await? {
                return Ok(wait);
            }
            self.handle_send(job).await
        })
    }
}
