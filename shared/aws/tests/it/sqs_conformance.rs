//! The job queue conformance suite against LocalStack's SQS.

use bealert_aws::{SqsQueue, testkit};
use bealert_conformance as conformance;
use std::time::Duration;

#[tokio::test]
async fn sqs_queue_conforms() {
    testkit::require_stack().await;
    let q = SqsQueue::new(testkit::sqs(), &testkit::unique_prefix("q"));
    for name in ["conf-a", "conf-b", "conf-poison", "conf-wait"] {
        q.create(name, 3, Duration::from_secs(30)).await.unwrap();
    }
    conformance::job_queue(&q, 3).await;
}
