//! Personal data does not live forever in the embedded home: deliveries,
//! dead letters and outbox lines expire after the retention; the live
//! outbox file rotates into outbox/archive/ first.
#![allow(clippy::unwrap_used)]

use bealert_app::ports::{
    AlertRecord, AlertStore, Gateway, JobQueue, MessageKind, OutboundMessage, Sent,
};
use bealert_conformance as conformance;
use bealert_core::alert::AlertState;
use bealert_core::{AlertId, Channel, Language, SubscriberId};
use bealert_embedded::Embedded;
use std::time::Duration;

const DAY: i64 = 86_400_000;

async fn alert_with_delivery(e: &Embedded, created_at: i64, n: u64) -> AlertId {
    let id = AlertId::new();
    e.store
        .as_ref()
        .insert_alert(
            &AlertRecord {
                id,
                operator: "t".into(),
                spec: conformance::alert_spec(),
                state: AlertState::Sent,
                created_at,
                completed_at: None,
                approved_at: None,
                shards_total: Some(1),
                shards_done: 1,
            },
            &bealert_app::ports::AuditEntry::system("create", None, AlertState::Sent, created_at),
        )
        .await
        .unwrap();
    let sub = SubscriberId::from_random(n);
    bealert_app::ports::DeliveryStore::plan_deliveries(
        e.store.as_ref(),
        id,
        0,
        &[conformance::plan(
            sub,
            &[(Channel::Sms, "+32470000001")],
            Language::Nl,
        )],
    )
    .await
    .unwrap();
    id
}

async fn deliveries(e: &Embedded, id: AlertId) -> usize {
    bealert_app::ports::DeliveryStore::list_deliveries(e.store.as_ref(), id, None, 100)
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn expired_personal_data_is_swept_and_the_outbox_rotates() {
    let dir = tempfile::tempdir().unwrap();
    let e = Embedded::open(dir.path()).unwrap();
    let now = bealert_app::now_ms();
    let old = alert_with_delivery(&e, now - 100 * DAY, 1).await;
    let recent = alert_with_delivery(&e, now - DAY, 2).await;

    // A dead letter carrying a phone number.
    e.queue
        .send("send-sms", &["{\"to\": \"+32470000001\"}".into()])
        .await
        .unwrap();
    for _ in 0..5 {
        let j = e
            .queue
            .receive(
                "send-sms",
                1,
                Duration::from_secs(30),
                Duration::from_secs(1),
            )
            .await
            .unwrap();
        e.queue
            .retry_after("send-sms", &j[0].receipt, Duration::ZERO, "no")
            .await
            .unwrap();
    }
    assert!(
        e.queue
            .receive(
                "send-sms",
                1,
                Duration::from_secs(30),
                Duration::from_millis(100)
            )
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(e.queue.dead_letters("send-sms").await.unwrap().len(), 1);

    // One SMS in the outbox.
    let sms = &e.outbox[0];
    let message = OutboundMessage {
        key: "k1".into(),
        kind: MessageKind::Alert {
            alert_id: recent,
            subscriber_id: SubscriberId::from_random(2),
        },
        channel: Channel::Sms,
        to: "+32470000001".into(),
        language: Language::Nl,
        subject: None,
        text: "Test".into(),
        signature: None,
        not_after: i64::MAX,
        provider: None,
        unsubscribe: None,
    };
    assert_eq!(
        sms.send(std::slice::from_ref(&message)).await,
        vec![Ok(Sent::accepted())]
    );

    let retention = Duration::from_secs(90 * 86_400);
    let day = Duration::from_secs(86_400);
    let swept = e.sweep(now, retention, day).await.unwrap();
    assert_eq!(
        (swept.deliveries, swept.dead_letters, swept.rotated),
        (1, 0, 0)
    );
    assert_eq!(
        (deliveries(&e, old).await, deliveries(&e, recent).await),
        (0, 1)
    );
    assert!(
        e.store.as_ref().get_alert(old).await.unwrap().is_some(),
        "the alert itself stays"
    );

    // Two days on: the live outbox file moves to the archive; its key still counts.
    let swept = e.sweep(now + 2 * DAY, retention, day).await.unwrap();
    assert_eq!(swept.rotated, 1);
    let live = std::fs::read_to_string(dir.path().join("outbox/sms.jsonl")).unwrap();
    assert!(live.is_empty(), "a fresh live file");
    let archived: Vec<_> = std::fs::read_dir(dir.path().join("outbox/archive"))
        .unwrap()
        .collect();
    assert_eq!(archived.len(), 1);
    assert_eq!(
        sms.send(std::slice::from_ref(&message)).await,
        vec![Ok(Sent::AlreadySent)]
    );

    // A hundred days on: everything with contact data is gone.
    let swept = e.sweep(now + 100 * DAY, retention, day).await.unwrap();
    assert_eq!(
        (swept.deliveries, swept.dead_letters, swept.archives_deleted),
        (1, 1, 1)
    );
    assert_eq!(deliveries(&e, recent).await, 0);
    assert!(e.queue.dead_letters("send-sms").await.unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(dir.path().join("outbox/archive"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(sms.sent_count(), 0, "its keys are forgotten too");
}

/// A registration nobody verified (its contact may be someone else's, typed
/// by a bot) is deleted after a week; a verified one stays.
#[tokio::test]
async fn registrations_nobody_verified_are_swept_after_a_week() {
    use bealert_app::ports::RegistrationStore;
    use bealert_core::signup::Registration;
    let dir = tempfile::tempdir().unwrap();
    let e = Embedded::open(dir.path()).unwrap();
    let now = bealert_app::now_ms();
    let profile = bealert_conformance::profile(None, "nl", &[(51.05, 3.72)], &[]);
    let mut pending = Registration::new("pending".into(), profile.clone(), now);
    pending.lookup_keys = vec!["k-pending".into()];
    let mut verified = Registration::new("verified".into(), profile, now);
    verified.phone.as_mut().unwrap().verified = true;
    e.registrations.insert_registration(&pending).await.unwrap();
    e.registrations
        .insert_registration(&verified)
        .await
        .unwrap();
    let day = Duration::from_secs(86_400);
    let swept = e
        .sweep(now + 6 * DAY, Duration::from_secs(90 * 86_400), day)
        .await
        .unwrap();
    assert_eq!(swept.pending_registrations, 0, "kept for a week");
    let swept = e
        .sweep(now + 8 * DAY, Duration::from_secs(90 * 86_400), day)
        .await
        .unwrap();
    assert_eq!(swept.pending_registrations, 1);
    assert!(
        e.registrations
            .get_registration("pending")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        e.registrations
            .registrations_by_key("k-pending")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        e.registrations
            .get_registration("verified")
            .await
            .unwrap()
            .is_some()
    );
}
