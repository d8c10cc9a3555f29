//! A throttled store postpones a send job without using up its receives:
//! DynamoDB throttling (or a 5xx, or a timeout) on the job's last receive
//! must not end its work. No emulator throttles on demand, so the store is
//! the embedded one behind a test double of the document port that answers
//! as a throttled table (`StoreError::Busy`, what the DynamoDB adapter
//! makes of `ProvisionedThroughputExceededException`) a few times; the
//! queue is the real SQLite queue.
#![allow(clippy::unwrap_used)]

use aws_lambda_events::event::sqs::SqsEvent;
use bealert_app::App;
use bealert_app::ports::{DocumentStore, StoreError};
use bealert_app::usecases::AppConfig;
use bealert_core::{Channel, Language};
use bealert_embedded::testing::TestHome;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

const EVENT: &str = include_str!("../../../events/send-sms.json");

/// The embedded documents, throttled for the first `left` reads.
struct Throttled {
    inner: Arc<dyn DocumentStore>,
    left: AtomicU32,
}

impl Throttled {
    fn busy(&self) -> Result<(), StoreError> {
        let left = self.left.load(Ordering::SeqCst);
        if left == 0 {
            return Ok(());
        }
        self.left.store(left - 1, Ordering::SeqCst);
        Err(StoreError::Busy(
            "ProvisionedThroughputExceededException: The level of configured provisioned throughput for the table was exceeded".into(),
        ))
    }
}

#[async_trait::async_trait]
impl DocumentStore for Throttled {
    async fn put_document(
        &self,
        kind: &str,
        id: &str,
        body: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.inner.put_document(kind, id, body).await
    }
    async fn get_document(
        &self,
        kind: &str,
        id: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        self.busy()?;
        self.inner.get_document(kind, id).await
    }
    async fn documents(
        &self,
        kind: &str,
        prefix: &str,
    ) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        self.inner.documents(kind, prefix).await
    }
    async fn delete_document(&self, kind: &str, id: &str) -> Result<bool, StoreError> {
        self.inner.delete_document(kind, id).await
    }
}

/// The sample record with this receipt and receive count.
fn event(receipt: &str, receives: u32) -> SqsEvent {
    let mut event: SqsEvent = serde_json::from_str(EVENT).unwrap();
    let record = &mut event.records[0];
    record.receipt_handle = Some(receipt.to_string());
    record
        .attributes
        .insert("ApproximateReceiveCount".into(), receives.to_string());
    event
}

async fn handle(app: &App, event: SqsEvent) -> usize {
    send_sms::handler(
        app,
        lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default()),
    )
    .await
    .unwrap()
    .batch_item_failures
    .len()
}

#[tokio::test]
async fn a_job_throttled_on_its_last_receive_is_postponed_not_dead_lettered_and_sent_later() {
    let home = TestHome::new().await;
    let body: serde_json::Value = serde_json::from_str(
        &serde_json::from_str::<SqsEvent>(EVENT).unwrap().records[0]
            .body
            .clone()
            .unwrap(),
    )
    .unwrap();
    let alert_id = body["alert_id"].as_str().unwrap().parse().unwrap();
    home.alert_with(
        alert_id,
        Channel::Sms,
        &[
            (
                "1a2b3c4d5e6f7a8b".parse().unwrap(),
                "+32470123456",
                Language::Nl,
            ),
            (
                "2b3c4d5e6f7a8b9c".parse().unwrap(),
                "+32471234567",
                Language::Fr,
            ),
        ],
    )
    .await;
    // The same home, its documents (where the global stop is read) throttled.
    let mut ports = home.embedded.ports();
    ports.documents = Arc::new(Throttled {
        inner: ports.documents.clone(),
        left: AtomicU32::new(1),
    });
    let app = App::new(ports, AppConfig::default());
    let config = &app.config;

    // The job on the real queue, on what SQS would count as its last receive.
    let queue = app.ports.queue.clone();
    let job = serde_json::to_string(&body).unwrap();
    queue.send("send-sms", &[job]).await.unwrap();
    let got = queue
        .receive("send-sms", 1, Duration::from_secs(60), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    let failures = handle(&app, event(&got[0].receipt, config.max_receives)).await;
    assert_eq!(
        failures, 0,
        "a throttled job is postponed (re-sent, this receive deleted), not failed"
    );
    assert!(
        home.outbox(Channel::Sms).is_empty(),
        "nothing was sent while throttled"
    );
    let depth = queue.depth("send-sms").await.unwrap();
    assert_eq!(
        (
            depth.ready + depth.in_flight + depth.delayed,
            depth.dead_letters
        ),
        (1, 0),
        "the job waits on its queue, not in the dead-letter queue: {depth:?}"
    );

    // Its next receive, the table no longer throttled: both messages go.
    let failures = handle(&app, event(&got[0].receipt, 1)).await;
    assert_eq!(failures, 0);
    let sent = home.outbox(Channel::Sms);
    assert_eq!(
        sent.len(),
        2,
        "the throttling ended none of the job's deliveries: {sent:?}"
    );
}

#[tokio::test]
async fn the_local_poller_waits_out_throttling_longer_than_the_dead_letter_limit() {
    let home = TestHome::new().await;
    let body: serde_json::Value = serde_json::from_str(
        &serde_json::from_str::<SqsEvent>(EVENT).unwrap().records[0]
            .body
            .clone()
            .unwrap(),
    )
    .unwrap();
    let alert_id = body["alert_id"].as_str().unwrap().parse().unwrap();
    home.alert_with(
        alert_id,
        Channel::Sms,
        &[
            (
                "1a2b3c4d5e6f7a8b".parse().unwrap(),
                "+32470123456",
                Language::Nl,
            ),
            (
                "2b3c4d5e6f7a8b9c".parse().unwrap(),
                "+32471234567",
                Language::Fr,
            ),
        ],
    )
    .await;
    let mut ports = home.embedded.ports();
    let config = AppConfig {
        busy_wait: Duration::from_millis(20),
        ..AppConfig::default()
    };
    // Throttled for more receives than the queue allows a failing job.
    ports.documents = Arc::new(Throttled {
        inner: ports.documents.clone(),
        left: AtomicU32::new(config.max_receives * 2),
    });
    let app = Arc::new(App::new(ports, config));
    app.ports
        .queue
        .send("send-sms", &[body.to_string()])
        .await
        .unwrap();
    let mut options = bealert_app::worker::WorkerOptions::new("send-sms", 1);
    options.retry_base = Duration::from_millis(1);
    options.wait = Duration::from_millis(10);
    let stop = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn(bealert_app::worker::run(app.clone(), options, stop.clone()));
    // Until both messages are out, or the job has left the queue without
    // them (dead-lettered) - a bound, not a timing assertion.
    for _ in 0..600 {
        let depth = app.ports.queue.depth("send-sms").await.unwrap();
        if home.outbox(Channel::Sms).len() == 2 || depth.dead_letters > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    worker.await.unwrap();
    let depth = app.ports.queue.depth("send-sms").await.unwrap();
    assert_eq!(depth.dead_letters, 0, "throttling dead-lettered the job");
    assert_eq!(home.outbox(Channel::Sms).len(), 2);
}
