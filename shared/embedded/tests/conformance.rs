//! The ports' conformance suites against the embedded adapters.
#![allow(clippy::unwrap_used)]

use bealert_app::ports::Gateway;
use bealert_conformance as conformance;
use bealert_core::Channel;
use bealert_embedded::{OutboxGateway, SqliteQueue, SqliteStore};
use std::sync::Arc;

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    (dir, store)
}

#[tokio::test]
async fn sqlite_subscriber_store_conforms() {
    let (_d, s) = store();
    conformance::subscriber_store(&s).await;
}

#[tokio::test]
async fn sqlite_address_units_are_read_by_key() {
    let (_d, s) = store();
    conformance::address_units(&s).await;
}

#[tokio::test]
async fn sqlite_subscriber_upserts_race_cleanly() {
    let (_d, s) = store();
    conformance::subscriber_store_races(&s).await;
}

#[tokio::test]
async fn sqlite_import_of_100k_without_external_ids_keeps_everyone() {
    let (_d, s) = store();
    conformance::import_keeps_everyone(&s, 100_000).await;
}

#[tokio::test]
async fn sqlite_alert_store_conforms() {
    let (_d, s) = store();
    conformance::alert_store(&s).await;
}

#[tokio::test]
async fn sqlite_document_store_conforms() {
    let (_d, s) = store();
    conformance::document_store(&s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_idempotency_store_conforms() {
    let (_d, s) = store();
    let keys = bealert_embedded::SqliteIdempotency::beside(&s).unwrap();
    conformance::idempotency_store(Arc::new(keys)).await;
}

#[tokio::test]
async fn sqlite_delivery_store_conforms() {
    let (_d, s) = store();
    conformance::delivery_store(&s).await;
}

#[tokio::test]
async fn sqlite_deliveries_keep_their_provider() {
    let (_d, s) = store();
    conformance::delivery_providers(&s).await;
}

#[tokio::test]
async fn sqlite_applies_delivery_receipts() {
    let (_d, s) = store();
    conformance::delivery_receipts(&s).await;
}

#[tokio::test]
async fn sqlite_forgets_a_deleted_subscriber() {
    let (_d, s) = store();
    conformance::forget_subscriber(&s).await;
}

#[tokio::test]
async fn sqlite_operator_store_conforms() {
    let (_d, s) = store();
    conformance::operator_store(&s).await;
}

/// A data directory from before people had keys of their own: the
/// operator's one key keeps working, as its first person's (named as the
/// operator), and that person's keys can be rotated.
#[tokio::test]
async fn sqlite_operators_with_one_key_become_operators_with_people() {
    use bealert_app::ports::OperatorStore;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE operators (name TEXT PRIMARY KEY, jurisdiction TEXT NOT NULL,
                 key_hash TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL);
             INSERT INTO operators VALUES ('gent', 'national', 'old-hash', 1);",
        )
        .unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    let op = s.operator_by_key_hash("old-hash").await.unwrap().unwrap();
    assert_eq!((op.name.as_str(), op.user.as_str()), ("gent", "gent"));
    assert!(s.grant_group("gent", "rescuers").await.unwrap());
    assert_eq!(
        s.replace_keys(
            "gent",
            "gent",
            Some(&bealert_core::operator::KeyGrant {
                hash: "new-hash".into(),
                expires_at_ms: None
            }),
            None
        )
        .await
        .unwrap(),
        Some(1)
    );
    assert_eq!(s.operator_by_key_hash("old-hash").await.unwrap(), None);
    let op = s.operator_by_key_hash("new-hash").await.unwrap().unwrap();
    assert_eq!(op.groups, vec!["rescuers".to_string()]);
    drop(s);
    // Opening it again changes nothing.
    let s = SqliteStore::open(&path).unwrap();
    assert!(s.operator_by_key_hash("new-hash").await.unwrap().is_some());
}

/// A data directory whose alert counters predate cancelled deliveries:
/// the column is added on open and counts read as before.
#[tokio::test]
async fn sqlite_alert_counters_gain_a_cancelled_column() {
    use bealert_app::ports::DeliveryStore;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE alert_counters (alert_id TEXT NOT NULL, channel INTEGER NOT NULL,
                 queued INTEGER NOT NULL DEFAULT 0, sending INTEGER NOT NULL DEFAULT 0,
                 sent INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,
                 PRIMARY KEY (alert_id, channel)) WITHOUT ROWID;
             INSERT INTO alert_counters (alert_id, channel, sent) VALUES ('a', 0, 7);",
        )
        .unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    drop(s);
    let s = SqliteStore::open(&path).unwrap();
    let id: bealert_core::AlertId = "01a22862-2a69-7303-a527-b8abd96a7b00".parse().unwrap();
    // The old row's alert id is not a valid one; a fresh alert counts zero.
    let counts = s.counts(id).await.unwrap();
    assert_eq!(counts.channels.len(), 0);
    let c = rusqlite::Connection::open(&path).unwrap();
    let (sent, cancelled, delivered): (i64, i64, i64) = c
        .query_row(
            "SELECT sent, cancelled, delivered FROM alert_counters WHERE alert_id = 'a'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((sent, cancelled, delivered), (7, 0, 0));
}

#[tokio::test]
async fn sqlite_queue_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let q = SqliteQueue::open(&dir.path().join("queue.db"), 3).unwrap();
    conformance::job_queue(&q, 3).await;
}

#[tokio::test]
async fn outbox_gateway_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let open =
        move || -> Arc<dyn Gateway> { Arc::new(OutboxGateway::open(&path, Channel::Sms).unwrap()) };
    conformance::gateway(&open).await;
}

#[tokio::test]
async fn outbox_cuts_a_torn_last_line_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let open = || -> Arc<dyn Gateway> {
        Arc::new(OutboxGateway::open(dir.path(), Channel::Email).unwrap())
    };
    conformance::gateway(&open).await;
    let file = dir.path().join("email.jsonl");
    let before = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{before}{{\"alert_id\": \"torn")).unwrap();
    let gw = OutboxGateway::open(dir.path(), Channel::Email).unwrap();
    assert_eq!(gw.sent_count(), 4, "the four messages of the gateway suite");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_racing_senders_send_every_delivery_once() {
    let dir = tempfile::tempdir().unwrap();
    let embedded = bealert_embedded::Embedded::open(dir.path()).unwrap();
    conformance::racing_senders(
        embedded.ports(),
        10_000,
        100,
        std::time::Duration::from_millis(150),
        (40, 220),
    )
    .await;
}

/// The outbox's memory is its key index, not the whole file: a restart
/// reads only the lines past the indexed offset (an early line made
/// unreadable is never read again), and a lost index is rebuilt from the file.
#[tokio::test]
async fn outbox_restarts_read_only_the_unindexed_tail() {
    let dir = tempfile::tempdir().unwrap();
    let open =
        || -> Arc<dyn Gateway> { Arc::new(OutboxGateway::open(dir.path(), Channel::Sms).unwrap()) };
    conformance::gateway(&open).await;
    let file = dir.path().join("sms.jsonl");
    let mut bytes = std::fs::read(&file).unwrap();
    let n = OutboxGateway::open(dir.path(), Channel::Sms)
        .unwrap()
        .sent_count();
    assert_eq!(n, 4);
    // Scramble the first line in place: an indexed line is not reread.
    for b in bytes.iter_mut().take(10) {
        *b = b'#';
    }
    std::fs::write(&file, &bytes).unwrap();
    assert_eq!(
        OutboxGateway::open(dir.path(), Channel::Sms)
            .unwrap()
            .sent_count(),
        4
    );
    // Without its index the file is read again (the scrambled line is lost).
    std::fs::remove_file(dir.path().join("sms.keys.db")).unwrap();
    let _ = std::fs::remove_file(dir.path().join("sms.keys.db-wal"));
    let _ = std::fs::remove_file(dir.path().join("sms.keys.db-shm"));
    assert_eq!(
        OutboxGateway::open(dir.path(), Channel::Sms)
            .unwrap()
            .sent_count(),
        3
    );
}

#[tokio::test]
async fn local_send_budget_conforms() {
    let budget = bealert_app::rate::LocalBudget::new(conformance::budget_limits());
    conformance::send_budget(&budget).await;
}

/// api.md's outbox lines: an alert names its alert and recipient
/// (`"kind": "alert"`); a verification code has `"kind": "verification"`,
/// no `alert_id`, and the code in `text`.
#[tokio::test]
async fn outbox_lines_say_what_kind_of_message_they_carry() {
    use bealert_app::ports::{MessageKind, OutboundMessage, Sent};
    use bealert_core::{AlertId, Language, SubscriberId};
    let dir = tempfile::tempdir().unwrap();
    let gw = OutboxGateway::open(dir.path(), Channel::Sms).unwrap();
    let alert = AlertId::new();
    let message = |key: &str, kind, text: &str| OutboundMessage {
        key: key.into(),
        kind,
        channel: Channel::Sms,
        to: "+32470000001".into(),
        language: Language::Fr,
        subject: None,
        text: text.into(),
        signature: None,
        not_after: i64::MAX,
        provider: None,
        unsubscribe: None,
    };
    let sent = gw
        .send(&[
            message(
                "a",
                MessageKind::Alert {
                    alert_id: alert,
                    subscriber_id: SubscriberId::from_random(1),
                },
                "Fermez portes et fenêtres",
            ),
            message("v", MessageKind::Verification, "bealert: code 123456"),
        ])
        .await;
    assert_eq!(sent, vec![Ok(Sent::accepted()), Ok(Sent::accepted())]);
    let text = std::fs::read_to_string(dir.path().join("sms.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["kind"], "alert");
    assert_eq!(lines[0]["alert_id"], alert.to_string());
    assert_eq!(lines[1]["kind"], "verification");
    assert!(lines[1].get("alert_id").is_none(), "{}", lines[1]);
    assert!(lines[1].get("subscriber_id").is_none(), "{}", lines[1]);
    assert_eq!(lines[1]["text"], "bealert: code 123456");
}

#[tokio::test]
async fn sqlite_network_store_conforms() {
    let (_d, s) = store();
    let n = bealert_embedded::SqliteNetworks::beside(&s).unwrap();
    conformance::network_store(&n).await;
}

#[tokio::test]
async fn sqlite_target_store_conforms() {
    let (_d, s) = store();
    let n = bealert_embedded::SqliteNetworks::beside(&s).unwrap();
    conformance::target_store(&n).await;
}

#[tokio::test]
async fn sqlite_registration_store_conforms() {
    let (_d, s) = store();
    let r = bealert_embedded::SqliteRegistrations::beside(&s).unwrap();
    conformance::registration_store(&r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_counters_conform() {
    let (_d, s) = store();
    let r = Arc::new(bealert_embedded::SqliteRegistrations::beside(&s).unwrap());
    conformance::counters(r).await;
}

/// A deleted subscriber's entries leave the queued send jobs and dead
/// letters (their bodies carry the contact); a job left empty goes.
#[tokio::test]
async fn sqlite_queue_forgets_a_deleted_subscriber() {
    use bealert_app::ports::JobQueue;
    use bealert_core::SubscriberId;
    let dir = tempfile::tempdir().unwrap();
    let q = SqliteQueue::open(&dir.path().join("queue.db"), 1).unwrap();
    let (gone, kept) = (SubscriberId::from_random(7), SubscriberId::from_random(8));
    let item = |s: SubscriberId, to: &str| serde_json::json!({"subscriber_id": s.to_string(), "to": to, "language": "nl"});
    let alert = bealert_core::AlertId::new().to_string();
    let both = serde_json::json!({"alert_id": alert, "channel": "sms", "deliveries": [item(gone, "+32470555001"), item(kept, "+32470555002")]});
    let alone = serde_json::json!({"alert_id": alert, "channel": "sms", "deliveries": [item(gone, "+32470555001")]});
    q.send("send-sms", &[both.to_string(), alone.to_string()])
        .await
        .unwrap();
    // One more job, dead-lettered after its one allowed receive.
    q.send("send-email", &[alone.to_string()]).await.unwrap();
    let got = q
        .receive(
            "send-email",
            1,
            std::time::Duration::ZERO,
            std::time::Duration::ZERO,
        )
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    let _ = q
        .receive(
            "send-email",
            1,
            std::time::Duration::ZERO,
            std::time::Duration::ZERO,
        )
        .await
        .unwrap();
    assert_eq!(q.dead_letters("send-email").await.unwrap().len(), 1);

    assert_eq!(q.forget_subscriber(gone).await.unwrap(), 3);
    let left = q
        .receive(
            "send-sms",
            10,
            std::time::Duration::from_secs(30),
            std::time::Duration::ZERO,
        )
        .await
        .unwrap();
    assert_eq!(
        left.len(),
        1,
        "the job with only the deleted subscriber is gone"
    );
    assert!(!left[0].body.contains("+32470555001"), "{}", left[0].body);
    assert!(left[0].body.contains("+32470555002"));
    assert!(q.dead_letters("send-email").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_invitations_conform() {
    let (_d, s) = store();
    let r = Arc::new(bealert_embedded::SqliteRegistrations::beside(&s).unwrap());
    conformance::invitations(r).await;
}

#[tokio::test]
async fn sqlite_geo_store_conforms() {
    let (_d, s) = store();
    let g = bealert_embedded::SqliteGeography::beside(&s).unwrap();
    conformance::geo_store(std::sync::Arc::new(g)).await;
}

#[tokio::test]
async fn sqlite_alerts_stored_before_the_area_column_read_back_whole() {
    use bealert_app::ports::{AlertStore, AuditEntry};
    let (dir, store) = store();
    let id = bealert_core::AlertId::new();
    let alert = conformance::large_alert(id);
    let entry = AuditEntry::system(
        "create",
        None,
        bealert_core::alert::AlertState::Resolving,
        1,
    );
    store.insert_alert(&alert, &entry).await.unwrap();
    // As a row written before the area had a column of its own: the area
    // inside the spec, the column empty.
    let conn = rusqlite::Connection::open(dir.path().join("store.db")).unwrap();
    let moved = conn
        .execute(
            "UPDATE alerts SET spec = json_set(spec, '$.area', json(area)), area = NULL WHERE id = ?1",
            [id.to_string()],
        )
        .unwrap();
    assert_eq!(moved, 1);
    assert_eq!(store.get_alert(id).await.unwrap().as_ref(), Some(&alert));
    let head = store.get_alert_head(id).await.unwrap().unwrap();
    assert!(head.spec.area.is_empty(), "a head carries no geometry");
}
