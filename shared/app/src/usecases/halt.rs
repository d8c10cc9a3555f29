//! The global stop: a national person holding `halt` stops all sending at
//! once (`POST /v1/sending:halt`); no channel, network or outlet hands over
//! another message until `POST /v1/sending:resume`. Queued work stays
//! queued (jobs are postponed, not failed: a halt never dead-letters
//! anything) and is counted; both moves are kept in a log.

use super::{App, JobError, JobOutcome};
use crate::AppError;
use bealert_core::operator::{Operator, Right};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The document that holds the switch, and the log of its moves.
const KIND: &str = "sending";
const STATE: &str = "state";
const LOG: &str = "sending-log";
/// How long a sender trusts the switch it read last: the bound on how
/// late a halt is seen (with a chunk's sending time after it).
const FRESH: Duration = Duration::from_millis(250);
/// How long a job found halted waits before it looks again.
const HALTED_WAIT: Duration = Duration::from_millis(500);
/// Log entries shown.
const LOG_SHOWN: usize = 20;

/// Whether sending is halted, and by whom.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Switch {
    pub halted: bool,
    /// Unix ms of the last move.
    #[serde(default)]
    pub at: i64,
    #[serde(default)]
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `GET /v1/sending`.
#[derive(Debug, Clone, Serialize)]
pub struct SendingView {
    #[serde(flatten)]
    pub switch: Switch,
    /// Jobs waiting per queue (each job carries up to a batch of messages).
    pub queued_jobs: std::collections::BTreeMap<String, u64>,
    /// The last moves, newest first.
    pub log: Vec<Switch>,
}

/// Moves the switch and logs the move (the log first: a move is never
/// without its line). The API's `:halt` and `:resume` and the command line
/// (`bealert sending halt|resume`, for whoever holds the data directory or
/// the AWS home's tables) both come here.
pub async fn switch_sending(
    documents: &dyn crate::ports::DocumentStore,
    halt: bool,
    by: &str,
    reason: Option<String>,
) -> Result<Switch, crate::ports::StoreError> {
    switch_sending_at(documents, halt, by, reason, crate::now_ms()).await
}

/// [`switch_sending`] at `at` (the app's clock).
async fn switch_sending_at(
    documents: &dyn crate::ports::DocumentStore,
    halt: bool,
    by: &str,
    reason: Option<String>,
    at: i64,
) -> Result<Switch, crate::ports::StoreError> {
    let switch = Switch {
        halted: halt,
        at,
        by: by.to_string(),
        reason,
    };
    let json = serde_json::to_value(&switch)
        .map_err(|e| crate::ports::StoreError::Permanent(e.to_string()))?;
    documents
        .put_document(
            LOG,
            &format!("{at:013}-{}", uuid::Uuid::now_v7().simple()),
            &json,
        )
        .await?;
    documents.put_document(KIND, STATE, &json).await?;
    tracing::warn!(halted = halt, by = %switch.by, "sending {}", if halt { "halted" } else { "resumed" });
    Ok(switch)
}

/// The switch as a sender last read it.
#[derive(Default)]
pub struct HaltCache(Mutex<Option<(Instant, bool)>>);

impl App {
    /// Whether sending is halted (read from the store at most every 250 ms).
    pub(crate) async fn halted(&self) -> Result<bool, JobError> {
        if let Ok(cached) = self.halt.0.lock()
            && let Some((at, halted)) = *cached
            && at.elapsed() < FRESH
        {
            return Ok(halted);
        }
        let halted = self.switch().await.map_err(JobError::from)?.halted;
        if let Ok(mut cached) = self.halt.0.lock() {
            *cached = Some((Instant::now(), halted));
        }
        Ok(halted)
    }

    /// A sender's job while sending is halted: postponed, not failed.
    pub(crate) async fn while_halted(&self) -> Result<Option<JobOutcome>, JobError> {
        Ok(self.halted().await?.then(|| {
            JobOutcome::RetryAfter(
                HALTED_WAIT,
                "sending is halted (POST /v1/sending:resume)".into(),
            )
        }))
    }

    async fn switch(&self) -> Result<Switch, crate::ports::StoreError> {
        Ok(self
            .ports
            .documents
            .get_document(KIND, STATE)
            .await?
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default())
    }

    /// `POST /v1/sending:halt` (`halt`) and `:resume`: national persons
    /// holding `halt`; body `{"reason": "..."}`, optional.
    pub async fn set_halt(
        &self,
        operator: &Operator,
        halt: bool,
        body: &[u8],
        client: &str,
    ) -> Result<SendingView, AppError> {
        if !operator.jurisdiction.is_national() {
            return Err(AppError::Forbidden(format!(
                "only national operators stop or resume all sending; your jurisdiction is {}",
                operator.jurisdiction
            )));
        }
        if let Some(why) = operator.lacks(Right::Halt) {
            return Err(AppError::Forbidden(why));
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Body {
            #[serde(default)]
            reason: Option<String>,
        }
        let reason = if body.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            crate::error::parse_body::<Body>(body)?.reason
        };
        if reason.as_ref().is_some_and(|r| r.chars().count() > 1000) {
            return Err(bealert_core::ValidationErrors::single(
                "reason",
                "at most 1000 characters",
            )
            .into());
        }
        let by = format!("{}/{} ({client})", operator.name, operator.user);
        switch_sending_at(
            self.ports.documents.as_ref(),
            halt,
            &by,
            reason,
            self.now_ms(),
        )
        .await?;
        if let Ok(mut cached) = self.halt.0.lock() {
            *cached = Some((Instant::now(), halt));
        }
        self.sending_view().await
    }

    /// `GET /v1/sending`: the switch, the queued work, the last moves.
    pub async fn sending(&self, _operator: &Operator) -> Result<SendingView, AppError> {
        self.sending_view().await
    }

    async fn sending_view(&self) -> Result<SendingView, AppError> {
        let switch = self.switch().await?;
        let queued_jobs = self
            .queue_depths()
            .await?
            .into_iter()
            .map(|q| (q.queue, q.depth.ready + q.depth.in_flight + q.depth.delayed))
            .collect();
        let mut log: Vec<Switch> = self
            .ports
            .documents
            .documents(LOG, "")
            .await?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_value(v).ok())
            .collect();
        log.reverse();
        log.truncate(LOG_SHOWN);
        Ok(SendingView {
            switch,
            queued_jobs,
            log,
        })
    }
}
