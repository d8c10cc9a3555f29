//! Two senders racing on the same deliveries, with leases running out in
//! the middle of their gateway calls: every delivery is sent exactly once.
//! Run on every home's ports (the store, the queue-free send path, and the
//! real SMS gateway behind a slow twin).

use async_trait::async_trait;
use bealert_app::ports::{
    AlertRecord, Gateway, GatewayError, Gateways, OutboundMessage, Ports, RecipientPlan, Sent,
};
use bealert_app::usecases::{App, AppConfig, JobOutcome};
use bealert_core::alert::AlertState;
use bealert_core::{AlertId, Channel, Language, SubscriberId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The real gateway, reached only after a pause long enough that the
/// sender's lease runs out now and then; counts what it accepted, by key.
struct SlowTwin {
    inner: Arc<dyn Gateway>,
    pause_ms: (u64, u64),
    accepted: Mutex<HashMap<String, u32>>,
    refused_late: Mutex<u32>,
}

#[async_trait]
impl Gateway for SlowTwin {
    async fn send(&self, messages: &[OutboundMessage]) -> Vec<Result<Sent, GatewayError>> {
        let (lo, hi) = self.pause_ms;
        let pause = lo + rand::random::<u64>() % (hi - lo).max(1);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let out = self.inner.send(messages).await;
        let mut accepted = self.accepted.lock().unwrap_or_else(|e| e.into_inner());
        let mut late = self.refused_late.lock().unwrap_or_else(|e| e.into_inner());
        for (m, r) in messages.iter().zip(&out) {
            match r {
                Ok(Sent::Accepted(_)) => *accepted.entry(m.key.clone()).or_default() += 1,
                // Refused as late by the gateway, or by a provider of its
                // chain (which then keeps the delivery pinned to it).
                Err(GatewayError::Retryable(e) | GatewayError::Unsure { reason: e, .. })
                    if e.contains("lease ran out") =>
                {
                    *late += 1
                }
                _ => {}
            }
        }
        out
    }
}

/// `ports` must be fresh; `n` deliveries on SMS, numbers `+3247...`, in
/// jobs of `job_size`.
pub async fn racing_senders(
    ports: Ports,
    n: usize,
    job_size: usize,
    lease: Duration,
    pause_ms: (u64, u64),
) {
    let twin = Arc::new(SlowTwin {
        inner: ports.gateways.sms.clone(),
        pause_ms,
        accepted: Mutex::new(HashMap::new()),
        refused_late: Mutex::new(0),
    });
    let ports = Ports {
        gateways: Gateways {
            sms: twin.clone(),
            ..ports.gateways
        },
        ..ports
    };
    let config = AppConfig {
        lease,
        batch_size: job_size,
        retry_base: Duration::from_millis(5),
        max_attempts: 1000,
        ..AppConfig::default()
    };
    let (a, b) = (
        Arc::new(App::new(ports.clone(), config.clone())),
        Arc::new(App::new(ports.clone(), config)),
    );

    // An alert being sent, with n deliveries planned.
    let id = AlertId::new();
    let mut spec = super::alert_spec();
    spec.channels = [Channel::Sms].into_iter().collect();
    ports
        .alerts
        .insert_alert(
            &AlertRecord {
                id,
                operator: "race".into(),
                spec,
                state: AlertState::Sending,
                created_at: bealert_app::now_ms(),
                completed_at: None,
                approved_at: None,
                shards_total: Some(1),
                shards_done: 1,
            },
            &bealert_app::ports::AuditEntry::system("create", None, AlertState::Sending, 0),
        )
        .await
        .unwrap();
    let plans: Vec<RecipientPlan> = (0..n as u64)
        .map(|i| {
            let sub = SubscriberId::from_random(1_000_000 + i);
            super::plan(
                sub,
                &[(Channel::Sms, &format!("+32470{i:06}"))],
                Language::Nl,
            )
        })
        .collect();
    let mut jobs = Vec::new();
    for chunk in plans.chunks(5_000) {
        let planned = ports
            .deliveries
            .plan_deliveries(id, 0, chunk)
            .await
            .unwrap();
        for batch in planned.chunks(job_size) {
            let job = bealert_app::jobs::SendJob {
                alert_id: id,
                channel: Channel::Sms,
                deliveries: batch
                    .iter()
                    .map(|d| bealert_app::jobs::SendItem {
                        subscriber_id: d.subscriber_id,
                        to: d.to.clone(),
                        language: d.language,
                    })
                    .collect(),
            };
            jobs.push(serde_json::to_string(&job).unwrap());
        }
    }

    // Both senders work through every job, each as a queue would redeliver
    // it (until it is done), at the same time.
    let queue = bealert_app::jobs::send_queue(Channel::Sms);
    let mut tasks = tokio::task::JoinSet::new();
    for app in [a, b] {
        let jobs = jobs.clone();
        tasks.spawn(async move {
            futures::future::join_all(jobs.into_iter().map(|body| {
                let app = app.clone();
                async move {
                    for _ in 0..500 {
                        match app.send_job(queue, &body).await {
                            Ok(JobOutcome::Done) => return,
                            Ok(JobOutcome::RetryAfter(d, _)) => {
                                tokio::time::sleep(d.min(Duration::from_millis(200))).await
                            }
                            Err(e) => panic!("send job failed: {e}"),
                        }
                    }
                    panic!("a job never finished");
                }
            }))
            .await;
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }

    let accepted = twin.accepted.lock().unwrap().clone();
    let twice: Vec<_> = accepted.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "sent more than once: {:?}",
        &twice[..twice.len().min(5)]
    );
    assert_eq!(accepted.len(), n, "every delivery was sent");
    let counts = ports.deliveries.counts(id).await.unwrap();
    let sms = counts.channels[&Channel::Sms];
    assert_eq!(
        (sms.sent, sms.failed, sms.pending()),
        (n as u64, 0, 0),
        "the store agrees"
    );
    let late = *twin.refused_late.lock().unwrap();
    assert!(
        late > 0,
        "the race was real: leases ran out mid-send ({late} refused as late)"
    );
    let alert = ports.alerts.get_alert(id).await.unwrap().unwrap();
    assert_eq!(alert.state, AlertState::Sent);
}
