//! Lambda glue for the queue functions: an SQS batch in, partial batch
//! failures out (`ReportBatchItemFailures`), the same job handling as the
//! local pollers.

use crate::App;
use crate::usecases::{JobError, JobOutcome};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::future::BoxFuture;
use lambda_runtime::LambdaEvent;
use std::time::Duration;

/// A queue's job entry point, e.g. [`App::send_job`] or [`App::resolve_job`].
pub type JobEntry =
    for<'a> fn(&'a App, &'a str, &'a str) -> BoxFuture<'a, Result<JobOutcome, JobError>>;

/// Handles every record of a batch concurrently with `entry`. A record that
/// cannot be parsed or fails is reported, so SQS retries it and finally
/// moves it to the dead-letter queue; one that must wait (a planned wait,
/// or a store too busy for it: throttling, a 5xx, a timeout) is re-sent
/// with a delay and this copy deleted, so the wait uses up no receive.
pub async fn handle_sqs(
    app: &App,
    queue: &str,
    entry: JobEntry,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let records = event.payload.records;
    // A function may consume several queues (a channel's lanes): each
    // record's own queue is named by its source ARN.
    let results = futures::future::join_all(records.iter().map(|r| {
        let own = r
            .event_source_arn
            .as_deref()
            .and_then(|arn| arn.rsplit(':').next())
            .and_then(crate::jobs::queue_named)
            .unwrap_or(queue);
        handle_record(app, own, entry, r)
    }))
    .await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = records
        .iter()
        .zip(results)
        .filter(|(_, ok)| !ok)
        .map(|(r, _)| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = r.message_id.clone().unwrap_or_default();
            f
        })
        .collect();
    Ok(response)
}

/// Re-sends the record with a delay (its receive count starts again); true
/// when that worked, so the record is done with.
async fn postpone(
    app: &App,
    queue: &str,
    id: &str,
    receipt: &str,
    body: &str,
    delay: Duration,
) -> bool {
    match app.ports.queue.postpone(queue, receipt, body, delay).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(queue, message = id, error = %e, "could not postpone; retried as a failure");
            false
        }
    }
}

/// True when the record is done with.
async fn handle_record(app: &App, queue: &str, entry: JobEntry, r: &SqsMessage) -> bool {
    let id = r.message_id.as_deref().unwrap_or("?");
    let receives: u32 = r
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1)
        .max(1);
    let body = r.body.as_deref().unwrap_or("");
    let receipt = r.receipt_handle.as_deref().unwrap_or("");
    let (delay, why) = match entry(app, queue, body).await {
        Ok(JobOutcome::Done) => return true,
        Ok(JobOutcome::RetryAfter(delay, why)) => {
            // A planned wait: re-sent with a delay and this copy deleted, so
            // it does not count towards the dead-letter limit.
            tracing::debug!(queue, message = id, ?delay, %why, "job postponed");
            return postpone(app, queue, id, receipt, body, delay).await;
        }
        Err(JobError::Busy(why)) => {
            // The store is throttled or failing for a while: the job waits
            // as a planned wait does, so throttling never dead-letters it.
            let delay = crate::usecases::jittered(app.config.busy_wait);
            tracing::warn!(queue, message = id, receives, ?delay, error = %why, "store busy; job postponed");
            return postpone(app, queue, id, receipt, body, delay).await;
        }
        Err(e) => {
            tracing::error!(queue, message = id, receives, error = %e, "job failed");
            if receives >= app.config.max_receives {
                app.dead_letter(queue, body, &e.to_string()).await;
            }
            // As the local pollers: a second, doubling per receive.
            let delay = crate::usecases::backoff(Duration::from_secs(1), receives - 1);
            (delay, e.to_string())
        }
    };
    if !receipt.is_empty()
        && let Err(e) = app
            .ports
            .queue
            .retry_after(queue, receipt, delay, &why)
            .await
    {
        tracing::warn!(queue, message = id, error = %e, "could not delay the retry");
    }
    false
}
