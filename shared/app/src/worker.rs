//! Queue pollers: what an SQS event source mapping does for a Lambda, in-process.
//!
//! A worker receives a batch, handles its jobs concurrently and settles
//! each as [`crate::usecases::disposition`] says, as a Lambda function does.

use crate::App;
use crate::ports::ReceivedJob;
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
    let result = app.handle_job(&opts.queue, &job.body).await;
    app.settle_job(&opts.queue, &job, &result, opts.retry_base)
        .await;
}
