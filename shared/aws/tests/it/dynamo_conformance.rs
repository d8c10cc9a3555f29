//! The storage conformance suites against DynamoDB Local.

use crate::common::{store, tables};
use bealert_aws::{DynamoStore, testkit};
use bealert_conformance as conformance;

#[tokio::test]
async fn dynamodb_subscriber_store_conforms() {
    conformance::subscriber_store(&store("subs").await).await;
}

#[tokio::test]
async fn dynamodb_address_units_are_read_by_key() {
    conformance::address_units(&store("units").await).await;
}

#[tokio::test]
async fn dynamodb_subscriber_upserts_race_cleanly() {
    conformance::subscriber_store_races(&store("races").await).await;
}

/// The store's half of the identity rule (a taken id is answered "taken",
/// never overwritten) at 20,000 entries, many of their ids drawn in the same
/// millisecond. The id generator itself is the app's and runs at 100,000 on
/// SQLite (3 s); here 100,000 took 164 s of DynamoDB Local transactions,
/// the longest test of the run, and proved nothing more about the store.
#[tokio::test]
async fn dynamodb_import_of_20k_without_external_ids_keeps_everyone() {
    conformance::import_keeps_everyone(&store("identity").await, 20_000).await;
}

#[tokio::test]
async fn dynamodb_alert_store_conforms() {
    conformance::alert_store(&store("alerts").await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_idempotency_store_conforms() {
    conformance::idempotency_store(std::sync::Arc::new(store("idempotency").await)).await;
}

#[tokio::test]
async fn dynamodb_document_store_conforms() {
    conformance::document_store(&store("documents").await).await;
}

#[tokio::test]
async fn dynamodb_delivery_store_conforms() {
    conformance::delivery_store(&store("deliveries").await).await;
}

#[tokio::test]
async fn dynamodb_deliveries_keep_their_provider() {
    conformance::delivery_providers(&store("providers").await).await;
}

#[tokio::test]
async fn dynamodb_applies_delivery_receipts() {
    conformance::delivery_receipts(&store("receipts").await).await;
}

#[tokio::test]
async fn dynamodb_forgets_a_deleted_subscriber() {
    conformance::forget_subscriber(&store("forget").await).await;
}

#[tokio::test]
async fn dynamodb_network_store_conforms() {
    conformance::network_store(&store("networks").await).await;
}

#[tokio::test]
async fn dynamodb_geo_store_conforms() {
    conformance::geo_store(std::sync::Arc::new(store("geography").await)).await;
}

#[tokio::test]
async fn dynamodb_target_store_conforms() {
    conformance::target_store(&store("targets").await).await;
}

#[tokio::test]
async fn dynamodb_operator_store_conforms() {
    conformance::operator_store(&store("operators").await).await;
}

/// A cell holding more than one 1 MB page of items is read in parallel
/// ranges of its sort key: every item once, none missing.
#[tokio::test]
async fn a_dense_cell_is_read_completely_through_parallel_ranges() {
    use bealert_app::ports::SubscriberStore;
    use bealert_core::SubscriberId;
    let store = store("dense").await;
    let subs: Vec<_> = (0..9000u64)
        .map(|n| {
            let p = conformance::profile(
                Some(&format!("d-{n}")),
                "fr",
                &[(50.8466 + n as f64 * 1e-7, 4.3528)],
                &[],
            );
            (SubscriberId::from_external_id(&format!("d-{n}")), p)
        })
        .collect();
    store.upsert_subscribers(subs.into()).await.unwrap();
    let cell = bealert_core::zone::cell_of(50.8466, 4.3528);
    let (requests_before, _) = store.usage().snapshot();
    let items = store.addresses_in_cells(&[cell], true).await.unwrap();
    let (requests_after, _) = store.usage().snapshot();
    let distinct: std::collections::HashSet<_> =
        items.iter().map(|i| i.contact.subscriber_id).collect();
    assert_eq!(items.len(), 9000);
    assert_eq!(distinct.len(), 9000);
    assert!(
        requests_after - requests_before > 2,
        "the dense cell took several (parallel) queries"
    );
}

/// Delivery items carry recipients' contact data: they expire (DynamoDB
/// TTL `expires_at`) after the retention.
#[tokio::test]
async fn planned_deliveries_expire_after_the_retention() {
    use bealert_app::ports::DeliveryStore;
    use bealert_core::{AlertId, Channel, Language, SubscriberId};
    let store = store("ttl")
        .await
        .with_retention(std::time::Duration::from_secs(7 * 86_400));
    let (alert, sub) = (AlertId::new(), SubscriberId::from_random(5));
    store
        .plan_deliveries(
            alert,
            0,
            &[conformance::plan(
                sub,
                &[(Channel::Sms, "+32470000005")],
                Language::Fr,
            )],
        )
        .await
        .unwrap();
    let items = testkit::dynamodb()
        .scan()
        .table_name(&store.tables().deliveries)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    let now = bealert_app::now_ms() / 1000;
    assert!(!items.is_empty());
    for item in items {
        let at: i64 = item["expires_at"].as_n().unwrap().parse().unwrap();
        assert!((at - (now + 7 * 86_400)).abs() < 120, "expires_at {at}");
    }
}

#[tokio::test]
async fn dynamodb_send_budget_conforms() {
    let store = std::sync::Arc::new(store("budget").await);
    let budget =
        bealert_aws::dynamo::budget::DynamoBudget::new(store, conformance::budget_limits());
    conformance::send_budget(&budget).await;
}

/// An alert's counters are spread over partitions of their own (no hot
/// partition while thousands of claims are recorded): a transaction counts
/// in one stripe, its first subscriber's, so one transaction writes one
/// counter item and many jobs spread over the stripes. Live counts read them all
/// in one batch request.
#[tokio::test]
async fn counters_live_in_partitions_of_their_own() {
    use bealert_app::ports::DeliveryStore;
    use bealert_core::{AlertId, Channel, Language, SubscriberId};
    let store = store("counters").await;
    let alert = AlertId::new();
    let plans: Vec<_> = (0..64u64)
        .map(|i| {
            let sub = SubscriberId::from_random(100 + i);
            conformance::plan(
                sub,
                &[(Channel::Sms, &format!("+324700000{i:02}"))],
                Language::Nl,
            )
        })
        .collect();
    let sms_counters = || async {
        let items = testkit::dynamodb()
            .scan()
            .table_name(&store.tables().alerts)
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default();
        items
            .iter()
            .map(|i| i["pk"].as_s().unwrap().clone())
            .filter(|pk| pk.starts_with(&format!("A#{alert}#C#sms#")))
            .collect::<std::collections::HashSet<String>>()
    };
    // The first 16 of a call are planned in one transaction.
    store.plan_deliveries(alert, 0, &plans[..16]).await.unwrap();
    assert_eq!(
        sms_counters().await.len(),
        1,
        "one transaction, one counter item"
    );
    for job in plans[16..].chunks(1) {
        store.plan_deliveries(alert, 0, job).await.unwrap();
    }
    let pks = sms_counters().await;
    assert!(pks.len() > 8, "SMS counters in {} partitions", pks.len());
    let (requests, _) = store.usage().snapshot();
    let counts = store.counts(alert).await.unwrap();
    assert_eq!(
        (counts.recipients, counts.channels[&Channel::Sms].queued),
        (64, 64)
    );
    assert_eq!(store.usage().snapshot().0 - requests, 1, "one batch read");
}

#[tokio::test]
async fn dynamodb_registration_store_conforms() {
    conformance::registration_store(&store("registrations").await).await;
}

#[tokio::test]
async fn dynamodb_counters_conform() {
    conformance::counters(std::sync::Arc::new(store("counters").await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_invitations_conform() {
    conformance::invitations(std::sync::Arc::new(store("invitations").await)).await;
}

/// An operator stored before people had keys of their own (one key item
/// carrying name, jurisdiction and groups): its key still authenticates, as
/// the operator's first person, and keeps its groups.
#[tokio::test]
async fn dynamodb_operators_with_one_key_still_authenticate() {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    use bealert_app::ports::OperatorStore;
    let (client, tables) = tables("legacy-operators").await;
    let put = |pk: &str, sk: &str, attrs: Vec<(&str, A)>| {
        let mut req = client
            .put_item()
            .table_name(&tables.operators)
            .item("pk", A::S(pk.into()))
            .item("sk", A::S(sk.into()));
        for (k, v) in attrs {
            req = req.item(k, v);
        }
        req.send()
    };
    put(
        "K#old-hash",
        "K",
        vec![
            ("name", A::S("gent".into())),
            ("jurisdiction", A::S("national".into())),
            ("groups", A::Ss(vec!["rescuers".into()])),
        ],
    )
    .await
    .unwrap();
    put("N#gent", "N", vec![("key_hash", A::S("old-hash".into()))])
        .await
        .unwrap();
    let store = DynamoStore::new(client.clone(), tables.clone());
    let op = store
        .operator_by_key_hash("old-hash")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (op.name.as_str(), op.user.as_str(), op.groups.clone()),
        ("gent", "gent", vec!["rescuers".to_string()])
    );
    assert!(store.revoke_key("old-hash").await.unwrap());
    assert_eq!(store.operator_by_key_hash("old-hash").await.unwrap(), None);
}

/// A shard that wrote a recipient's owner item and stopped before its
/// deliveries (a crash between the two writes): run again, it plans the
/// deliveries and counts the recipient, once; another shard still plans
/// nothing for it.
#[tokio::test]
async fn an_owner_written_before_a_crash_is_planned_once_on_the_rerun() {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    use bealert_app::ports::DeliveryStore;
    use bealert_core::delivery::bucket;
    use bealert_core::{AlertId, Channel, Language, SubscriberId};
    let store = store("owner-crash").await;
    let alert = AlertId::new();
    let sub = SubscriberId::from_random(4242);
    let plan = conformance::plan(sub, &[(Channel::Sms, "+32470004242")], Language::Fr);
    // What the crashed run left: the owner item of shard 3, nothing else.
    testkit::dynamodb()
        .put_item()
        .table_name(&store.tables().deliveries)
        .item("pk", A::S(format!("R#{alert}#{:02}", bucket(sub))))
        .item("sk", A::S(sub.to_string()))
        .item("shard", A::N("3".into()))
        .item("expires_at", A::N("0".into()))
        .send()
        .await
        .unwrap();
    let other = store
        .plan_deliveries(alert, 1, std::slice::from_ref(&plan))
        .await
        .unwrap();
    assert!(other.is_empty(), "shard 1 does not own it");
    let rerun = store
        .plan_deliveries(alert, 3, std::slice::from_ref(&plan))
        .await
        .unwrap();
    assert_eq!(rerun, plan.deliveries, "the owner plans it on its rerun");
    let again = store
        .plan_deliveries(alert, 3, std::slice::from_ref(&plan))
        .await
        .unwrap();
    assert_eq!(again, plan.deliveries, "still to send: given back");
    let c = store.counts(alert).await.unwrap();
    assert_eq!((c.recipients, c.channels[&Channel::Sms].queued), (1, 1));
}
