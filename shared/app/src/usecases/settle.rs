//! What becomes of a job: its error keeps whether a retry can mend it, and
//! one rule ([`disposition`]) decides, for the local pollers
//! ([`crate::worker`]) and the Lambda functions alike, whether the message
//! is deleted, postponed, retried or dead-lettered; [`App::settle_job`] carries
//! that out on the queue.

use super::{App, AppConfig};
use crate::AppError;
use crate::ports::{QueueError, ReceivedJob, StoreError};
use std::time::Duration;

/// What a queue handler asks its worker to do with the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Done: delete the message.
    Done,
    /// Some of the work must wait: make the message visible again later.
    RetryAfter(Duration, String),
}

/// A job that failed, and whether a retry can mend it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// The message cannot be read, or arrived on a queue it does not belong
    /// to: no retry can help, so it is dead-lettered at once.
    #[error("unreadable job: {0}")]
    Poison(String),
    /// Failed for a reason that may pass (a store or queue that did not
    /// answer, a write that lost a race, an alert not stored yet): retried
    /// with backoff, dead-lettered after [`AppConfig::max_receives`].
    #[error("job failed: {0}")]
    Transient(String),
    /// Failed for a reason no retry mends (a store's refusal of the request,
    /// a damaged item): its work ends and it is dead-lettered at once, with
    /// the reason, instead of using up its receives.
    #[error("job failed for good: {0}")]
    Permanent(String),
    /// The store was too busy ([`StoreError::Busy`]: DynamoDB throttling, a
    /// 5xx, a timeout): the job is postponed by [`AppConfig::busy_wait`], as
    /// a planned wait, so however long the throttling lasts it never
    /// dead-letters the job.
    #[error("storage is busy: {0}")]
    Busy(String),
}

impl JobError {
    /// Whether a retry can mend it.
    pub fn is_transient(&self) -> bool {
        matches!(self, JobError::Transient(_) | JobError::Busy(_))
    }
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Busy(m) => JobError::Busy(m),
            StoreError::Permanent(_) => JobError::Permanent(e.to_string()),
            StoreError::Transient(_) | StoreError::Conflict(_) => {
                JobError::Transient(e.to_string())
            }
        }
    }
}

impl From<QueueError> for JobError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Transient(_) => JobError::Transient(e.to_string()),
            QueueError::Permanent(_) => JobError::Permanent(e.to_string()),
        }
    }
}

/// A job that could not be written (serialising never fails for a reason
/// that passes).
impl From<serde_json::Error> for JobError {
    fn from(e: serde_json::Error) -> Self {
        JobError::Permanent(format!("could not write a job: {e}"))
    }
}

/// A use case's refusal inside a job. Only a refusal of the input itself is
/// permanent; anything that may be a moment's state (not found yet, busy,
/// a conflict, an internal failure) is retried, since a wrong "permanent"
/// would cost a warning its retries.
impl From<AppError> for JobError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Invalid(_)
            | AppError::BadRequest(_)
            | AppError::TooLarge(_)
            | AppError::Unauthorized(_)
            | AppError::Forbidden(_) => JobError::Permanent(e.to_string()),
            AppError::NotFound(_)
            | AppError::Conflict(_)
            | AppError::TooManyRequests(_)
            | AppError::Unavailable(_)
            | AppError::NotNow(_)
            | AppError::Internal(_) => JobError::Transient(e.to_string()),
        }
    }
}

/// What a worker does with a message, by its job's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Done: delete it.
    Delete,
    /// A planned wait, or a store too busy: back after the delay, using up
    /// no receive ([`crate::ports::JobQueue::postpone`]).
    Postpone(Duration),
    /// Failed for a reason that may pass: visible again after the backoff.
    Retry(Duration),
    /// Failed on its last receive: its work ends now, with the reason, and
    /// the queue moves it to the dead-letter queue when it comes back.
    LastRetry(Duration),
    /// Failed for a reason no retry mends: its work ends now and it moves
    /// to the dead-letter queue at once.
    DeadLetter,
}

/// The rule: a done job is deleted; a planned wait or a busy store
/// postpones it; an unreadable or permanently failed job is dead-lettered
/// at once; any other failure is retried after `retry_base`, doubling per
/// receive, and its work ends on its last receive.
pub fn disposition(
    result: &Result<JobOutcome, JobError>,
    receives: u32,
    config: &AppConfig,
    retry_base: Duration,
) -> Disposition {
    match result {
        Ok(JobOutcome::Done) => Disposition::Delete,
        Ok(JobOutcome::RetryAfter(delay, _)) => Disposition::Postpone(*delay),
        Err(JobError::Busy(_)) => Disposition::Postpone(super::jittered(config.busy_wait)),
        Err(JobError::Poison(_) | JobError::Permanent(_)) => Disposition::DeadLetter,
        Err(JobError::Transient(_)) => {
            let delay = super::backoff(retry_base, receives.saturating_sub(1));
            if receives >= config.max_receives {
                Disposition::LastRetry(delay)
            } else {
                Disposition::Retry(delay)
            }
        }
    }
}

impl App {
    /// Carries out [`disposition`] for a received message. True when the
    /// message is settled (deleted, postponed or dead-lettered); false when
    /// it stays on its queue to come back (a Lambda reports it as a batch
    /// item failure).
    pub async fn settle_job(
        &self,
        queue: &str,
        job: &ReceivedJob,
        result: &Result<JobOutcome, JobError>,
        retry_base: Duration,
    ) -> bool {
        let q = self.ports.queue.as_ref();
        let id = job.id.as_str();
        let receives = job.receive_count;
        let failure = match result {
            Err(e) => e.to_string(),
            Ok(_) => String::new(),
        };
        // Where a planned move fails, the job is retried as a failure.
        let fallback = super::backoff(retry_base, receives.saturating_sub(1));
        let (retry, why) = match disposition(result, receives, &self.config, retry_base) {
            Disposition::Delete => {
                return match q.delete(queue, &job.receipt).await {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!(queue, job = id, error = %e, "could not delete a done job");
                        false
                    }
                };
            }
            Disposition::Postpone(delay) => {
                match result {
                    Err(e) => {
                        tracing::warn!(queue, job = id, receives, ?delay, error = %e, "store busy; job postponed")
                    }
                    Ok(JobOutcome::RetryAfter(_, why)) => {
                        tracing::debug!(queue, job = id, ?delay, %why, "job postponed")
                    }
                    Ok(JobOutcome::Done) => {}
                }
                match q.postpone(queue, &job.receipt, &job.body, delay).await {
                    Ok(()) => return true,
                    Err(e) => {
                        tracing::warn!(queue, job = id, error = %e, "could not postpone; retried as a failure");
                        (fallback, e.to_string())
                    }
                }
            }
            Disposition::Retry(delay) => {
                tracing::warn!(queue, job = id, receives, ?delay, error = %failure, "job failed");
                (delay, failure)
            }
            Disposition::LastRetry(delay) => {
                tracing::error!(queue, job = id, receives, ?delay, error = %failure, "job failed on its last receive");
                // The queue dead-letters it next; its work ends now, with
                // the reason, so the alert still finishes.
                let why = format!("its job failed {receives} times ({failure})");
                self.dead_letter(queue, &job.body, &why).await;
                (delay, failure)
            }
            Disposition::DeadLetter => {
                tracing::error!(queue, job = id, receives, error = %failure, "job failed for good; dead-lettered");
                let why = format!("its job cannot succeed ({failure})");
                self.dead_letter(queue, &job.body, &why).await;
                match q
                    .dead_letter(queue, &job.receipt, &job.body, &failure)
                    .await
                {
                    Ok(()) => return true,
                    Err(e) => {
                        // Left to the queue: it moves the job after its
                        // last receive, as before.
                        tracing::warn!(queue, job = id, error = %e, "could not dead-letter; retried until the queue does");
                        (fallback, failure)
                    }
                }
            }
        };
        if let Err(e) = q.retry_after(queue, &job.receipt, retry, &why).await {
            // The message becomes visible again when its timeout ends.
            tracing::warn!(queue, job = id, error = %e, "could not delay the retry");
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bealert_core::ValidationErrors;

    fn config() -> AppConfig {
        AppConfig {
            max_receives: 5,
            busy_wait: Duration::from_secs(10),
            ..AppConfig::default()
        }
    }

    #[test]
    fn what_becomes_of_a_job_follows_whether_a_retry_can_mend_it() {
        let c = config();
        let base = Duration::from_secs(1);
        let d = |r: Result<JobOutcome, JobError>, receives| disposition(&r, receives, &c, base);
        assert_eq!(d(Ok(JobOutcome::Done), 1), Disposition::Delete);
        assert_eq!(
            d(
                Ok(JobOutcome::RetryAfter(
                    Duration::from_secs(3),
                    "rate".into()
                )),
                5
            ),
            Disposition::Postpone(Duration::from_secs(3))
        );
        // Busy: postponed between half and all of busy_wait, whatever the receive.
        match d(Err(JobError::Busy("throttled".into())), 9) {
            Disposition::Postpone(w) => {
                assert!(
                    w >= Duration::from_secs(5) && w <= Duration::from_secs(10),
                    "{w:?}"
                )
            }
            other => panic!("{other:?}"),
        }
        // Unreadable or permanent: dead-lettered on the first receive.
        assert_eq!(
            d(Err(JobError::Poison("{".into())), 1),
            Disposition::DeadLetter
        );
        assert_eq!(
            d(Err(JobError::Permanent("damaged".into())), 1),
            Disposition::DeadLetter
        );
        // Transient: doubling backoff, the work ended on the last receive.
        assert_eq!(
            d(Err(JobError::Transient("x".into())), 1),
            Disposition::Retry(Duration::from_secs(1))
        );
        assert_eq!(
            d(Err(JobError::Transient("x".into())), 3),
            Disposition::Retry(Duration::from_secs(4))
        );
        assert_eq!(
            d(Err(JobError::Transient("x".into())), 5),
            Disposition::LastRetry(Duration::from_secs(16))
        );
    }

    #[test]
    fn errors_keep_whether_they_are_transient_from_the_port_to_the_queue() {
        assert!(matches!(
            JobError::from(StoreError::Busy("throttled".into())),
            JobError::Busy(_)
        ));
        assert!(JobError::from(StoreError::Transient("t".into())).is_transient());
        assert!(JobError::from(StoreError::Conflict("raced".into())).is_transient());
        assert!(!JobError::from(StoreError::Permanent("damaged".into())).is_transient());
        assert!(JobError::from(QueueError::Transient("timeout".into())).is_transient());
        assert!(!JobError::from(QueueError::Permanent("too large".into())).is_transient());
        assert!(QueueError::from(StoreError::Busy("locked".into())).is_transient());
        assert!(!QueueError::from(StoreError::Permanent("x".into())).is_transient());
        // An alert not stored yet, or a dependency down, is worth a retry;
        // a refusal of the job's own input is not.
        assert!(JobError::from(AppError::NotFound("alert".into())).is_transient());
        assert!(JobError::from(AppError::Unavailable("down".into())).is_transient());
        assert!(
            !JobError::from(AppError::Invalid(ValidationErrors::single("area", "empty")))
                .is_transient()
        );
    }
}
