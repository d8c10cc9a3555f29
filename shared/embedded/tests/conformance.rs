//! The ports' conformance suites against the embedded adapters.
#![allow(clippy::unwrap_used)]

use bealert_app::conformance;
use bealert_app::ports::Gateway;
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
async fn sqlite_delivery_store_conforms() {
    let (_d, s) = store();
    conformance::delivery_store(&s).await;
}

#[tokio::test]
async fn sqlite_operator_store_conforms() {
    let (_d, s) = store();
    conformance::operator_store(&s).await;
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
    let budget = bealert_app::rate::LocalBudget::new([Some(10), None, Some(0)]);
    conformance::send_budget(&budget).await;
}
