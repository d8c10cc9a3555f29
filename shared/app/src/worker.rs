//! Queue pollers: what an SQS event source mapping does for a Lambda, in-process.
//!
//! A worker receives a batch, handles its jobs concurrently and settles
//! each as [`crate::usecases::disposition`] says, as a Lambda function does.

use crate::App;
use crate::ports::ReceivedJob;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Jobs handled per queue and the time their handlers took: what the
/// benchmark turns into Lambda invocations and duration.
#[derive(Debug, Default)]
pub struct JobStats {
    queues: std::sync::Mutex<std::collections::BTreeMap<String, QueueStats>>,
}

/// One queue's jobs so far.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct QueueStats {
    pub jobs: u64,
    /// Handling and settling, summed over jobs.
    pub busy: Duration,
}

impl JobStats {
    pub fn snapshot(&self) -> std::collections::BTreeMap<String, QueueStats> {
        self.queues
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn add(&self, queue: &str, took: Duration) {
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        let q = queues.entry(queue.to_string()).or_default();
        q.jobs += 1;
        q.busy += took;
    }
}

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
    /// Where each handled job is counted, if anywhere.
    pub stats: Option<Arc<JobStats>>,
}

impl WorkerOptions {
    pub fn new(queue: &str, concurrency: usize) -> Self {
        Self {
            queue: queue.to_string(),
            concurrency,
            visibility: Duration::from_secs(120),
            wait: Duration::from_secs(1),
            retry_base: Duration::from_secs(1),
            stats: None,
        }
    }
}

/// Runs until `shutdown` is cancelled; jobs in hand are finished first.
///
/// Up to `concurrency` jobs are in hand at any moment: a job that ends
/// frees its slot at once, and the next receive fills every free slot, so
/// a slow job never holds the others' slots idle until it ends (an SQS
/// batch handler waits for the whole batch; a long-running poller need not).
pub async fn run(app: Arc<App>, opts: WorkerOptions, shutdown: CancellationToken) {
    let queue = app.ports.queue.clone();
    let slots = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let mut running = JoinSet::new();
    loop {
        while let Some(done) = running.try_join_next() {
            report_panic(&opts.queue, done);
        }
        // At least one free slot, then every other free one.
        let first = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let mut held = vec![first];
        while let Ok(p) = slots.clone().try_acquire_owned() {
            held.push(p);
        }
        let received = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = queue.receive(&opts.queue, held.len(), opts.visibility, opts.wait) => r,
        };
        match received {
            Ok(jobs) => {
                for (job, slot) in jobs.into_iter().zip(held.drain(..)) {
                    let (app, opts) = (app.clone(), opts.clone());
                    running.spawn(async move {
                        process(&app, &opts, job).await;
                        drop(slot);
                    });
                }
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
    while let Some(done) = running.join_next().await {
        report_panic(&opts.queue, done);
    }
}

/// A job whose handler panicked stays on its queue (it was not settled)
/// and comes back after its visibility timeout; the worker goes on.
fn report_panic(queue: &str, done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        tracing::error!(%queue, error = %e, "a job's handler failed; it comes back after its visibility timeout");
    }
}

async fn process(app: &App, opts: &WorkerOptions, job: ReceivedJob) {
    let started = std::time::Instant::now();
    let result = app.handle_job(&opts.queue, &job.body).await;
    app.settle_job(&opts.queue, &job, &result, opts.retry_base)
        .await;
    if let Some(stats) = &opts.stats {
        stats.add(&opts.queue, started.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_stats_count_jobs_and_time_per_queue() {
        let stats = JobStats::default();
        stats.add("sms", Duration::from_millis(30));
        stats.add("sms", Duration::from_millis(20));
        stats.add("resolve", Duration::from_millis(5));
        let s = stats.snapshot();
        assert_eq!(
            s["sms"],
            QueueStats {
                jobs: 2,
                busy: Duration::from_millis(50)
            }
        );
        assert_eq!(s["resolve"].jobs, 1);
    }
}
