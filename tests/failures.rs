//! Failures stay visible and bounded: a poison job ends in the dead-letter
//! queue after its retries; a gateway that fails for a while is retried
//! with backoff; a refusal is reported per recipient; nothing is sent twice.
#![allow(clippy::unwrap_used)]

mod common;

use async_trait::async_trait;
use bealert_app::App;
use bealert_app::jobs::send_queue;
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
            return vec![Err(GatewayError::Retryable("throttled".into())); messages.len()];
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_jobs_dead_letter_and_gateway_failures_are_retried_then_reported() {
    let dir = tempfile::tempdir().unwrap();
    let embedded = Embedded::open(dir.path()).unwrap();
    let flaky = Arc::new(FlakyGateway {
        inner: OutboxGateway::open(&dir.path().join("flaky"), Channel::Sms).unwrap(),
        flaky: AtomicUsize::new(2),
        calls: AtomicUsize::new(0),
    });
    let mut ports = embedded.ports();
    ports.gateways = Gateways {
        sms: flaky.clone(),
        ..ports.gateways
    };
    let config = AppConfig {
        max_attempts: 4,
        retry_base: Duration::from_millis(20),
        ..AppConfig::default()
    };
    let app = Arc::new(App::new(ports, config));
    let stop = common::workers(&app, Duration::from_millis(20));
    let (op, _) = app.create_operator("ops", "national").await.unwrap();

    // A job nobody can read ends in the dead-letter queue, with its error.
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
    assert_eq!(dead[0].receive_count, 5);
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
    let sms = view.channels[&Channel::Sms];
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
