//! Where the embedded home keeps an alert's deliveries: in the order they
//! were planned, so that a plan call's rows, which its send jobs then
//! claim and record, sit side by side in the file instead of at random
//! places among the alert's other deliveries (subscriber ids are hashes).
//! A data directory written in the layout before is copied over on open.
#![allow(clippy::unwrap_used)]

use bealert_app::ports::{AlertRecord, AlertStore, DeliveryStore, Outcome, Recorded};
use bealert_conformance as conformance;
use bealert_core::alert::AlertState;
use bealert_core::{AlertId, Channel, Language, SubscriberId};
use bealert_embedded::Embedded;
use std::time::Duration;

async fn alert(e: &Embedded) -> AlertId {
    let id = AlertId::new();
    e.store
        .insert_alert(
            &AlertRecord {
                id,
                operator: "t".into(),
                spec: conformance::alert_spec(),
                state: AlertState::Sent,
                created_at: 1,
                completed_at: None,
                approved_at: None,
                shards_total: Some(8),
                shards_done: 0,
            },
            &bealert_app::ports::AuditEntry::system("create", None, AlertState::Sent, 1),
        )
        .await
        .unwrap();
    id
}

fn sms(sub: SubscriberId) -> bealert_app::ports::RecipientPlan {
    conformance::plan(sub, &[(Channel::Sms, "+32470000001")], Language::Nl)
}

/// Rowids of the rows of `subs` in the store file.
fn rowids(dir: &std::path::Path, id: AlertId, subs: &[SubscriberId]) -> Vec<i64> {
    let conn = rusqlite::Connection::open(dir.join("store.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT rowid FROM deliveries WHERE alert_id = ?1 AND subscriber_id = ?2")
        .unwrap();
    subs.iter()
        .map(|s| {
            stmt.query_row(rusqlite::params![id.to_string(), s.as_i64()], |r| r.get(0))
                .unwrap()
        })
        .collect()
}

#[tokio::test]
async fn what_one_plan_call_wrote_sits_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let e = Embedded::open(dir.path()).unwrap();
    let id = alert(&e).await;
    // Eight shards' plan calls of 300 recipients each; every shard's ids
    // are spread over the whole id space, as hashes are.
    let mut calls = Vec::new();
    for shard in 0..8u32 {
        let subs: Vec<SubscriberId> = (0..300u64)
            .map(|i| SubscriberId::from_random(i * 8 + u64::from(shard) + 1))
            .collect();
        let plans: Vec<_> = subs.iter().map(|s| sms(*s)).collect();
        let planned = e.store.plan_deliveries(id, shard, &plans).await.unwrap();
        assert_eq!(planned.len(), 300);
        calls.push(subs);
    }
    for (shard, subs) in calls.iter().enumerate() {
        let rows = rowids(dir.path(), id, subs);
        let (lo, hi) = (rows.iter().min().unwrap(), rows.iter().max().unwrap());
        assert_eq!(
            hi - lo + 1,
            300,
            "shard {shard}'s 300 deliveries are spread over rows {lo}..={hi}"
        );
    }
}

#[tokio::test]
async fn a_file_in_the_layout_before_is_copied_over_and_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let (id, subs) = {
        let e = Embedded::open(dir.path()).unwrap();
        let id = alert(&e).await;
        let subs: Vec<SubscriberId> = (1..=40u64).map(SubscriberId::from_random).collect();
        let plans: Vec<_> = subs.iter().map(|s| sms(*s)).collect();
        e.store.plan_deliveries(id, 0, &plans).await.unwrap();
        (id, subs)
    };
    // The table as it was before: keyed by (alert, channel, subscriber).
    {
        let conn = rusqlite::Connection::open(dir.path().join("store.db")).unwrap();
        conn.execute_batch(
            "BEGIN;
             CREATE TABLE old_deliveries (
                 alert_id TEXT NOT NULL, channel INTEGER NOT NULL, subscriber_id INTEGER NOT NULL,
                 bucket INTEGER NOT NULL, external_id TEXT, recipient TEXT NOT NULL,
                 language INTEGER NOT NULL, status INTEGER NOT NULL,
                 attempts INTEGER NOT NULL DEFAULT 0, lease_until INTEGER NOT NULL DEFAULT 0,
                 error TEXT, updated_at INTEGER NOT NULL, provider TEXT, provider_id TEXT,
                 PRIMARY KEY (alert_id, channel, subscriber_id)
             ) WITHOUT ROWID;
             INSERT INTO old_deliveries SELECT alert_id, channel, subscriber_id, bucket, external_id,
                 recipient, language, status, attempts, lease_until, error, updated_at, provider,
                 provider_id FROM deliveries;
             DROP TABLE deliveries;
             ALTER TABLE old_deliveries RENAME TO deliveries;
             CREATE INDEX deliveries_listing ON deliveries (alert_id, channel, bucket, subscriber_id);
             COMMIT;",
        )
        .unwrap();
    }
    let e = Embedded::open(dir.path()).unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("store.db")).unwrap();
    let sql: String = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'deliveries'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!sql.contains("WITHOUT ROWID"), "{sql}");
    // Every delivery is still there, once, and can be planned again
    // without a second row, claimed and recorded.
    assert_eq!(
        e.store.list_deliveries(id, None, 100).await.unwrap().len(),
        40
    );
    let again: Vec<_> = subs.iter().map(|s| sms(*s)).collect();
    e.store.plan_deliveries(id, 0, &again).await.unwrap();
    assert_eq!(
        e.store.list_deliveries(id, None, 100).await.unwrap().len(),
        40
    );
    let claims = e
        .store
        .claim(id, Channel::Sms, &subs[..2], 10, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(
        claims
            .iter()
            .all(|c| matches!(c, bealert_app::ports::Claim::Claimed { .. })),
        "{claims:?}"
    );
    let applied = e
        .store
        .record(
            id,
            Channel::Sms,
            &subs[..2]
                .iter()
                .map(|s| Recorded::new(*s, 1, Outcome::Sent, Language::Nl))
                .collect::<Vec<_>>(),
            11,
        )
        .await
        .unwrap();
    assert_eq!(applied, vec![true, true]);
    assert_eq!(
        e.store.counts(id).await.unwrap().channels[&Channel::Sms].sent,
        2
    );
}
