//! Queue pollers: what an SQS event source mapping does for a Lambda, in-process.
//!
//! A worker receives a batch, handles its jobs concurrently, deletes the
//! done ones and makes the others visible again after a backoff; the queue
//! moves a message that keeps failing to its dead-letter queue.

use crate::App;
use crate::ports::ReceivedJob;
use crate::usecases::JobOutcome;
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub queue: String,
    /// Jobs handled at once.
    pub concurrency: usize,
    /// How long a received job stays invisible to other workers.
    pub visibility: Duration,
    /// Long-poll time of an empty receive.
    pub wait: Duration,
    /// First retry delay of a failed job; doubles per receive, capped at a minute.
    pub retry_base: Duration,
}

impl WorkerOptions {
    pub fn new(queue: &str, concurrency: usize) -> Self {
        Self {
            queue: queue.to_string(),
            concurrency,
            visibility: Duration::from_secs(120),
            wait: Duration::from_secs(1),
            retry_base: Duration::from_secs(1),
        }
    }

    fn backoff(&self, receive_count: u32) -> Duration {
        crate::usecases::backoff(self.retry_base, receive_count.saturating_sub(1))
    }
}

/// Runs until `shutdown` is cancelled; jobs in hand are finished first.
pub async fn run(app: Arc<App>, opts: WorkerOptions, shutdown: CancellationToken) {
    let queue = app.ports.queue.clone();
    loop {
        let received = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = queue.receive(&opts.queue, opts.concurrency.max(1), opts.visibility, opts.wait) => r,
        };
        match received {
            Ok(jobs) => {
                futures::stream::iter(jobs)
                    .for_each_concurrent(opts.concurrency.max(1), |job| process(&app, &opts, job))
                    .await;
            }
            Err(e) => {
                tracing::warn!(queue = %opts.queue, error = %e, "receive failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

async fn process(app: &App, opts: &WorkerOptions, job: ReceivedJob) {
    let queue = app.ports.queue.as_ref();
    let result = match app.handle_job(&opts.queue, &job.body).await {
        Ok(JobOutcome::Done) => queue.delete(&opts.queue, &job.receipt).await,
        Ok(JobOutcome::RetryAfter(delay, why)) => {
            // A planned wait: it does not count towards the dead-letter limit.
            tracing::debug!(queue = %opts.queue, job = %job.id, ?delay, %why, "job postponed");
            queue
                .postpone(&opts.queue, &job.receipt, &job.body, delay)
                .await
        }
        Err(crate::usecases::JobError::Busy(why)) => {
            // The store is throttled or failing for a while: a wait like a
            // planned one, so throttling never dead-letters the job.
            let delay = crate::usecases::jittered(app.config.busy_wait);
            tracing::warn!(queue = %opts.queue, job = %job.id, ?delay, error = %why, "store busy; job postponed");
            queue
                .postpone(&opts.queue, &job.receipt, &job.body, delay)
                .await
        }
        Err(e) => {
            let delay = opts.backoff(job.receive_count);
            tracing::warn!(queue = %opts.queue, job = %job.id, receives = job.receive_count, ?delay, error = %e, "job failed");
            if job.receive_count >= app.config.max_receives {
                // Its last receive: the queue dead-letters it next; its work
                // ends now, with the reason, so the alert still finishes.
                app.dead_letter(&opts.queue, &job.body, &e.to_string())
                    .await;
            }
            queue
                .retry_after(&opts.queue, &job.receipt, delay, &e.to_string())
                .await
        }
    };
    if let Err(e) = result {
        // The message becomes visible again when its timeout ends.
        tracing::warn!(queue = %opts.queue, job = %job.id, error = %e, "could not settle job");
    }
}
