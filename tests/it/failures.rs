//! Failures stay visible and bounded: a poison job ends in the dead-letter
//! queue after its retries; a gateway that fails for a while is retried
//! with backoff; a refusal is reported per recipient; nothing is sent twice.
#![allow(clippy::unwrap_used)]

use crate::common;

use async_trait::async_trait;
use bealert_app::App;
use bealert_app::jobs::{Lane, send_queue, send_queue_in};
use bealert_app::ports::{Gateway, GatewayError, Gateways, OutboundMessage, Sent};
use bealert_app::usecases::AppConfig;
use bealert_core::Channel;
use bealert_embedded::{Embedded, OutboxGateway};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A twin of the SMS gateway: refuses one number for good, and answers
/// "try later" to the first `flaky` calls; otherwise hands over to the outbox.
struct FlakyGateway {
    inner: OutboxGateway,
    flaky: AtomicUsize,
    calls: AtomicUsize,
}

const REFUSED: &str = "+32470000666";

#[async_trait]
impl Gateway for FlakyGateway {
    async fn send(&self, messages: &[OutboundMessage]) -> Vec<Result<Sent, GatewayError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.flaky.load(Ordering::SeqCst) > 0 {
            self.flaky.fetch_sub(1, Ordering::SeqCst);
            return vec![Err(GatewayError::Throttled("slow down".into())); messages.len()];
        }
        let mut out = Vec::new();
        for m in messages {
            if m.to == REFUSED {
                out.push(Err(GatewayError::Permanent("number does not exist".into())));
            } else {
                out.extend(self.inner.send(std::slice::from_ref(m)).await);
            }
        }
        out
    }
}

/// The embedded home in `dir` with its SMS gateway behind a [`FlakyGateway`]
/// that throttles `flaky` times.
fn flaky_app(
    dir: &std::path::Path,
    flaky: usize,
    max_attempts: u32,
    retry_base: Duration,
) -> (Arc<App>, Arc<FlakyGateway>) {
    let embedded = Embedded::open(dir).unwrap();
    let gateway = Arc::new(FlakyGateway {
        inner: OutboxGateway::open(&dir.join("flaky"), Channel::Sms).unwrap(),
        flaky: AtomicUsize::new(flaky),
        calls: AtomicUsize::new(0),
    });
    let mut ports = embedded.ports();
    ports.gateways = Gateways {
        sms: gateway.clone(),
        ..ports.gateways
    };
    let config = AppConfig {
        max_attempts,
        retry_base,
        ..AppConfig::default()
    };
    (Arc::new(App::new(ports, config)), gateway)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_jobs_dead_letter_and_gateway_failures_are_retried_then_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (app, flaky) = flaky_app(dir.path(), 2, 4, Duration::from_millis(20));
    let stop = common::workers(&app, Duration::from_millis(20));
    let (mut op, _) = app.create_operator("ops", "national").await.unwrap();
    // The test reads deliveries by phone number: the contacts right.
    op.rights = "send,approve,admin,contacts".parse().unwrap();

    // A job nobody can read ends in the dead-letter queue on its first
    // receive, with its error: no retry can mend it.
    app.ports
        .queue
        .send(send_queue(Channel::Sms), &["{not json".to_string()])
        .await
        .unwrap();
    let mut dead = Vec::new();
    for _ in 0..200 {
        dead = app
            .ports
            .queue
            .dead_letters(send_queue(Channel::Sms))
            .await
            .unwrap();
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        dead.len(),
        1,
        "the poison job reached the dead-letter queue"
    );
    assert_eq!(
        dead[0].receive_count, 1,
        "dead-lettered at once, not after every receive"
    );
    assert!(
        dead[0]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("unreadable job"),
        "{:?}",
        dead[0].last_error
    );

    // Three subscribers; the gateway throttles twice, then refuses one number.
    let sub = |n: u32, phone: &str| {
        json!({"external_id": format!("s{n}"), "language": "nl", "phone": phone,
        "channels": ["sms"], "addresses": [{"lat": 50.85, "lon": 4.35}]})
    };
    let body =
        json!({"subscribers": [sub(1, "+32470000001"), sub(2, REFUSED), sub(3, "+32470000003")]});
    assert_eq!(
        app.import_subscribers(&op, body.to_string().as_bytes())
            .await
            .unwrap()
            .imported,
        3
    );
    let alert = json!({"status": "Test", "event": "Failure drill", "severity": "Minor", "urgency": "Future",
        "certainty": "Possible", "messages": {"nl": "Test"}, "area": {"circles": [{"lat": 50.85, "lon": 4.35, "radius_km": 1}]}});
    let id = app
        .create_alert(&op, alert.to_string().as_bytes())
        .await
        .unwrap()
        .id
        .to_string();
    let mut view = None;
    for _ in 0..400 {
        let v = app.alert_view(&op, &id).await.unwrap();
        if v.state == bealert_core::alert::AlertState::Sent {
            view = Some(v);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let view = view.expect("the alert settles despite the failures");
    let sms = &view.channels[&Channel::Sms];
    assert_eq!((sms.sent, sms.failed, sms.queued), (2, 1, 0));
    assert!(
        flaky.calls.load(Ordering::SeqCst) >= 3,
        "throttled calls were retried"
    );

    let page = app.deliveries_page(&op, &id, None, None).await.unwrap();
    let refused = page.items.iter().find(|d| d.to == REFUSED).unwrap();
    assert_eq!(
        refused.status,
        bealert_core::delivery::DeliveryStatus::Failed
    );
    assert!(refused.error.as_deref().unwrap().contains("does not exist"));
    let lines = std::fs::read_to_string(dir.path().join("flaky/sms.jsonl")).unwrap();
    assert_eq!(
        lines.lines().count(),
        2,
        "each accepted SMS written once, the refused one never"
    );
    stop.cancel();
}

/// Three subscribers in Brussels who want SMS; returns the operator.
async fn three_subscribers(app: &App) -> bealert_core::operator::Operator {
    let (mut op, _) = app.create_operator("ops", "national").await.unwrap();
    // The tests read deliveries by phone number: the contacts right.
    op.rights = "send,approve,admin,contacts".parse().unwrap();
    let sub = |n: u32| {
        json!({"external_id": format!("s{n}"), "language": "nl", "phone": format!("+3247000000{n}"),
        "channels": ["sms"], "addresses": [{"lat": 50.85, "lon": 4.35}]})
    };
    let body = json!({"subscribers": [sub(1), sub(2), sub(3)]});
    app.import_subscribers(&op, body.to_string().as_bytes())
        .await
        .unwrap();
    op
}

fn drill() -> Vec<u8> {
    common::drill_body("Failure drill")
}

/// Three subscribers, a drill to them, and its final view.
async fn drill_to_the_end(
    app: &App,
) -> (
    bealert_core::operator::Operator,
    String,
    bealert_app::usecases::AlertView,
) {
    let op = three_subscribers(app).await;
    let id = app
        .create_alert(&op, &drill())
        .await
        .unwrap()
        .id
        .to_string();
    let view = final_view(app, &op, &id).await;
    (op, id, view)
}

/// Polls an alert until it is final; panics if it never is.
async fn final_view(
    app: &App,
    op: &bealert_core::operator::Operator,
    id: &str,
) -> bealert_app::usecases::AlertView {
    for _ in 0..600 {
        let v = app.alert_view(op, id).await.unwrap();
        if v.state.is_final() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let v = app.alert_view(op, id).await.unwrap();
    panic!("alert {id} never finished: {v:?}");
}

/// Retry backoffs are planned waits, and a provider's throttling uses up no
/// attempts: a gateway that throttles more times than the queue's receive
/// limit (and the attempt limit) no longer dead-letters the job with its
/// deliveries still queued (the alert used to stay `sending` forever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planned_waits_do_not_use_up_the_receive_limit() {
    let dir = tempfile::tempdir().unwrap();
    // Throttling does not use up attempts either: 8 throttled answers with
    // 3 attempts allowed still end with every SMS sent.
    let (app, flaky) = flaky_app(dir.path(), 8, 3, Duration::from_millis(5));
    let stop = common::workers(&app, Duration::from_millis(20));
    let (_, _, view) = drill_to_the_end(&app).await;
    assert_eq!(view.state, bealert_core::alert::AlertState::Sent);
    assert_eq!(view.channels[&Channel::Sms].sent, 3);
    assert!(
        flaky.calls.load(Ordering::SeqCst) >= 9,
        "throttled 8 times, then sent"
    );
    assert!(
        app.ports
            .queue
            .dead_letters(send_queue_in(Channel::Sms, Lane::Routine))
            .await
            .unwrap()
            .is_empty(),
        "nothing dead-lettered"
    );
    stop.cancel();
}

/// A delivery store whose claims fail while `broken` is set (storage down).
struct BrokenClaims {
    inner: Arc<bealert_embedded::SqliteStore>,
    broken: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl bealert_app::ports::DeliveryStore for BrokenClaims {
    async fn plan_deliveries(
        &self,
        alert: bealert_core::AlertId,
        shard: u32,
        recipients: &[bealert_app::ports::RecipientPlan],
    ) -> Result<Vec<bealert_core::delivery::PlannedDelivery>, bealert_app::ports::StoreError> {
        self.inner.plan_deliveries(alert, shard, recipients).await
    }
    async fn claim(
        &self,
        alert: bealert_core::AlertId,
        channel: Channel,
        subscribers: &[bealert_core::SubscriberId],
        now: i64,
        lease: Duration,
    ) -> Result<Vec<bealert_app::ports::Claim>, bealert_app::ports::StoreError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(bealert_app::ports::StoreError::Transient(
                "disk unavailable".into(),
            ));
        }
        self.inner
            .claim(alert, channel, subscribers, now, lease)
            .await
    }
    async fn record(
        &self,
        alert: bealert_core::AlertId,
        channel: Channel,
        outcomes: &[bealert_app::ports::Recorded],
        now: i64,
    ) -> Result<Vec<bool>, bealert_app::ports::StoreError> {
        self.inner.record(alert, channel, outcomes, now).await
    }
    async fn stop_unsent(
        &self,
        alert: bealert_core::AlertId,
        channel: Channel,
        subscribers: &[bealert_core::SubscriberId],
        to: bealert_core::delivery::DeliveryStatus,
        reason: &str,
        now: i64,
    ) -> Result<Vec<Option<bealert_core::delivery::DeliveryStatus>>, bealert_app::ports::StoreError>
    {
        self.inner
            .stop_unsent(alert, channel, subscribers, to, reason, now)
            .await
    }
    async fn forget_subscriber(
        &self,
        subscriber: bealert_core::SubscriberId,
        reason: &str,
        now: i64,
    ) -> Result<u64, bealert_app::ports::StoreError> {
        self.inner.forget_subscriber(subscriber, reason, now).await
    }
    async fn counts(
        &self,
        alert: bealert_core::AlertId,
    ) -> Result<bealert_app::ports::AlertCounts, bealert_app::ports::StoreError> {
        self.inner.counts(alert).await
    }
    async fn list_deliveries(
        &self,
        alert: bealert_core::AlertId,
        after: Option<(Channel, bealert_core::SubscriberId)>,
        limit: usize,
    ) -> Result<Vec<bealert_app::ports::DeliveryRow>, bealert_app::ports::StoreError> {
        self.inner.list_deliveries(alert, after, limit).await
    }
    async fn breakdown(
        &self,
        alert: bealert_core::AlertId,
    ) -> Result<bealert_app::ports::Breakdown, bealert_app::ports::StoreError> {
        self.inner.breakdown(alert).await
    }
    async fn find_by_provider_id(
        &self,
        provider: &str,
        id: &str,
    ) -> Result<Option<bealert_app::ports::DeliveryRef>, bealert_app::ports::StoreError> {
        self.inner.find_by_provider_id(provider, id).await
    }
    async fn apply_receipt(
        &self,
        delivery: bealert_app::ports::DeliveryRef,
        change: &bealert_app::ports::ReceiptChange,
        now: i64,
    ) -> Result<bealert_app::ports::ReceiptApplied, bealert_app::ports::StoreError> {
        self.inner.apply_receipt(delivery, change, now).await
    }
}

/// A send job that keeps failing ends its deliveries as failed, with the
/// reason, when it dead-letters: the alert reaches `failed` and says why.
/// Redriven, it sends nothing (its deliveries are final).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_job_fails_its_deliveries_and_the_alert_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let embedded = Embedded::open(dir.path()).unwrap();
    let broken = Arc::new(BrokenClaims {
        inner: embedded.store.clone(),
        broken: std::sync::atomic::AtomicBool::new(true),
    });
    let mut ports = embedded.ports();
    ports.deliveries = broken.clone();
    let app = Arc::new(App::new(ports, AppConfig::default()));
    let stop = common::workers(&app, Duration::from_millis(10));
    let (_, _, view) = drill_to_the_end(&app).await;
    assert_eq!(view.state, bealert_core::alert::AlertState::Failed);
    let sms = &view.channels[&Channel::Sms];
    assert_eq!((sms.sent, sms.failed, sms.queued), (0, 3, 0));
    let (why, n) = sms.reasons.iter().next().unwrap();
    assert_eq!(*n, 3);
    assert!(
        why.contains("failed 5 times") && why.contains("disk unavailable"),
        "{why}"
    );

    // The dead letter is there; redriven with storage back, it sends nothing.
    // The drill is a Test alert: its jobs go by the routine lane.
    let q = send_queue_in(Channel::Sms, Lane::Routine);
    let mut dead = Vec::new();
    for _ in 0..100 {
        dead = app.ports.queue.dead_letters(q).await.unwrap();
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(dead.len(), 1);
    broken.broken.store(false, Ordering::SeqCst);
    assert!(app.ports.queue.redrive(q, &dead[0].id).await.unwrap());
    for _ in 0..100 {
        if embedded.queue.depth(q).await.unwrap() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        embedded.queue.depth(q).await.unwrap(),
        0,
        "the redriven job ran"
    );
    assert!(
        common::outbox(dir.path(), "sms").is_empty(),
        "and sent nothing"
    );
    stop.cancel();
}

/// The resolve job is enqueued before the alert is stored: a job that
/// arrives first waits for its alert; one whose alert was never stored
/// (the process died in between) is dropped, not dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_job_waits_for_its_alert_and_drops_one_never_stored() {
    use bealert_app::jobs::{RESOLVE_QUEUE, ResolveJob};
    let dir = tempfile::tempdir().unwrap();
    let embedded = Embedded::open(dir.path()).unwrap();
    let app = Arc::new(App::new(embedded.ports(), AppConfig::default()));
    let stop = common::workers(&app, Duration::from_millis(10));
    let op = three_subscribers(&app).await;

    // Never stored, from two minutes ago: dropped.
    let old = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        (bealert_app::now_ms() / 1000 - 120) as u64,
        0,
    ));
    let lost = ResolveJob::Plan {
        alert_id: bealert_core::AlertId(old),
        approved_at: None,
    };
    app.ports
        .queue
        .send(RESOLVE_QUEUE, &[serde_json::to_string(&lost).unwrap()])
        .await
        .unwrap();
    // Stored 300 ms after its job: resolved and sent all the same.
    let id = bealert_core::AlertId::new();
    let early = ResolveJob::Plan {
        alert_id: id,
        approved_at: None,
    };
    app.ports
        .queue
        .send(RESOLVE_QUEUE, &[serde_json::to_string(&early).unwrap()])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let spec = serde_json::from_slice::<bealert_core::alert::AlertRequest>(&drill())
        .unwrap()
        .validate()
        .unwrap();
    app.ports
        .alerts
        .insert_alert(
            &bealert_app::ports::AlertRecord {
                id,
                operator: op.name.clone(),
                spec,
                state: bealert_core::alert::AlertState::Resolving,
                created_at: bealert_app::now_ms(),
                completed_at: None,
                approved_at: None,
                shards_total: None,
                shards_done: 0,
            },
            &bealert_app::ports::AuditEntry::system(
                "create",
                None,
                bealert_core::alert::AlertState::Resolving,
                bealert_app::now_ms(),
            ),
        )
        .await
        .unwrap();
    let view = final_view(&app, &op, &id.to_string()).await;
    assert_eq!(view.state, bealert_core::alert::AlertState::Sent);
    assert_eq!(view.channels[&Channel::Sms].sent, 3);
    assert!(embedded.queue.depth(RESOLVE_QUEUE).await.unwrap() == 0);
    assert!(
        app.ports
            .queue
            .dead_letters(RESOLVE_QUEUE)
            .await
            .unwrap()
            .is_empty()
    );
    stop.cancel();
}

/// A drill whose alert fails on a channel is reported failed, with the
/// reason; a run the server was stopped for is reported missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_that_fails_on_a_channel_is_reported_failed_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = flaky_app(dir.path(), 0, 2, Duration::from_millis(5));
    let stop = common::workers(&app, Duration::from_millis(5));
    let op = three_subscribers(&app).await;
    let refused = json!({"subscribers": [{"external_id": "gone", "language": "nl", "phone": REFUSED,
        "channels": ["sms"], "addresses": [{"lat": 50.85, "lon": 4.35}], "groups": ["crew"]},
        {"external_id": "crew-ok", "language": "fr", "phone": "+32470000009",
        "channels": ["sms"], "addresses": [{"lat": 51.2, "lon": 4.4}], "groups": ["crew"]}]});
    app.import_subscribers(&op, refused.to_string().as_bytes())
        .await
        .unwrap();
    let template = json!({"event": "Monthly test", "channels": ["sms"],
        "severity": "Minor", "urgency": "Immediate", "certainty": "Observed",
        "messages": {"nl": "Test van de alarmketen.", "fr": "Test de la chaîne d'alerte."}});
    app.put_template(&op, "monthly", template.to_string().as_bytes())
        .await
        .unwrap();
    // Its runs act with the key it is made with.
    let (author, key) = app.create_operator("drills", "national").await.unwrap();
    let drill = app
        .create_drill(
            &author,
            &bealert_core::operator::hash_key(&key),
            json!({"schedule": "cron(0 10 ? * MON#1 *)", "template": "monthly", "groups": ["crew"]})
                .to_string()
                .as_bytes(),
        )
        .await
        .unwrap();
    let alert = app
        .run_drill(&drill.id, 1_800_000_000_000)
        .await
        .unwrap()
        .expect("the run sent an alert");
    assert_eq!(
        app.run_drill(&drill.id, 1_800_000_000_000).await.unwrap(),
        Some(alert),
        "a scheduled time runs once"
    );
    final_view(&app, &op, &alert.to_string()).await;
    let runs = app.drill_runs(&op, &drill.id).await.unwrap();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run.status, "failed", "{run:?}");
    assert_eq!(run.reach, 2);
    let sms = &run.channels[&Channel::Sms];
    assert_eq!((sms.sent, sms.failed), (1, 1));
    assert!(sms.first_ms.is_some_and(|t| t >= 0), "{run:?}");
    let (why, n) = sms.reasons.iter().next().unwrap();
    assert!(why.contains("number does not exist") && *n == 1, "{why}");
    let view = app.alert_view(&op, &alert.to_string()).await.unwrap();
    assert_eq!(
        view.status,
        bealert_core::cap::Status::Exercise,
        "a drill is an exercise"
    );
    stop.cancel();
}
