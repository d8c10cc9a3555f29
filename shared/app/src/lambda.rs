//! Lambda glue for the queue functions: an SQS batch in, partial batch
//! failures out (`ReportBatchItemFailures`), the same job handling as the
//! local pollers.

use crate::App;
use crate::ports::ReceivedJob;
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

/// True when the record is done with.
async fn handle_record(app: &App, queue: &str, entry: JobEntry, r: &SqsMessage) -> bool {
    let job = ReceivedJob {
        id: r.message_id.clone().unwrap_or_else(|| "?".into()),
        receipt: r.receipt_handle.clone().unwrap_or_default(),
        body: r.body.clone().unwrap_or_default(),
        receive_count: r
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1)
            .max(1),
    };
    let result = entry(app, queue, &job.body).await;
    if job.receipt.is_empty() || matches!(result, Ok(JobOutcome::Done)) {
        // A done record is deleted by the event source mapping itself (it
        // is not reported); one with no receipt cannot be settled here, so
        // SQS retries it.
        return matches!(result, Ok(JobOutcome::Done));
    }
    // As the local pollers: a second, doubling per receive.
    app.settle_job(queue, &job, &result, Duration::from_secs(1))
        .await
}
