//! The benchmark's capacity meter against DynamoDB Local: every request
//! through a metered client reports what it consumed, on its own table.

use crate::common::tables;
use bealert_app::ports::DeliveryStore;
use bealert_app::ports::RecipientPlan;
use bealert_aws::{CapacityMeter, DynamoStore, Tables, metered_client};
use bealert_core::delivery::PlannedDelivery;
use bealert_core::{AlertId, Channel, Language, SubscriberId};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn a_metered_store_reports_read_and_write_units_per_table() {
    let (store, meter, tables) = metered("capacity").await;
    let alert = AlertId::new();
    let (who, plans) = sms_plans(20);
    store.plan_deliveries(alert, 0, &plans).await.unwrap();
    let planned = meter.snapshot();
    let deliveries = planned.get(&tables.deliveries).copied().unwrap_or_default();
    // Deliveries planned in transactions: twice a unit each, beside their
    // owners' single puts (DynamoDB Local itself reports a couple of units
    // for a whole transaction).
    assert!(
        deliveries.write >= 40.0,
        "20 deliveries written in transactions cost at least 40 write units: {planned:?}"
    );

    store
        .claim(
            alert,
            Channel::Sms,
            &who,
            bealert_app::now_ms(),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let claimed = meter.snapshot();
    let after = claimed.get(&tables.deliveries).copied().unwrap_or_default();
    let spent = after.since(&deliveries);
    assert!(spent.requests > 0, "the claim's requests were counted");
    assert!(
        spent.read + spent.write > 0.0,
        "the claim consumed capacity: {claimed:?}"
    );
}

/// A store on fresh tables whose every request reports to the meter.
async fn metered(what: &str) -> (DynamoStore, Arc<CapacityMeter>, Tables) {
    let (client, tables) = tables(what).await;
    let meter = Arc::new(CapacityMeter::default());
    let store = DynamoStore::new(metered_client(&client, meter.clone()), tables.clone());
    (store, meter, tables)
}

fn sms_plans(n: u64) -> (Vec<SubscriberId>, Vec<RecipientPlan>) {
    let who: Vec<SubscriberId> = (1..=n).map(SubscriberId::from_random).collect();
    let plans = who
        .iter()
        .map(|s| RecipientPlan {
            subscriber_id: *s,
            external_id: None,
            deliveries: vec![PlannedDelivery {
                subscriber_id: *s,
                channel: Channel::Sms,
                to: "+32470000000".into(),
                language: Language::Nl,
            }],
        })
        .collect();
    (who, plans)
}

/// A delivery's way from planned to `sent` (plan, claim, record) in jobs of
/// 100: its counters cost a small share of a unit, not a counter item of
/// its own subscriber's bucket at every step; its first claim reads
/// nothing (the delivery is as planned, which the write's condition checks).
#[tokio::test]
async fn a_delivery_costs_its_own_writes_and_a_share_of_its_counters() {
    use bealert_app::ports::{Claim, Outcome, Recorded};
    let (store, meter, tables) = metered("capacity-per-delivery").await;
    let alert = AlertId::new();
    let n = 300;
    let (who, plans) = sms_plans(n);
    let units = |t: &str| meter.snapshot().get(t).copied().unwrap_or_default();
    let mut reads_by_claims = 0.0;
    for (jobs, (subs, plans)) in who.chunks(100).zip(plans.chunks(100)).enumerate() {
        store.plan_deliveries(alert, 0, plans).await.unwrap();
        let before = units(&tables.deliveries);
        let now = bealert_app::now_ms();
        let claims = store
            .claim(alert, Channel::Sms, subs, now, Duration::from_secs(60))
            .await
            .unwrap();
        reads_by_claims += units(&tables.deliveries).since(&before).read;
        assert!(
            claims.iter().all(|c| *c == Claim::claimed(1)),
            "job {jobs}: every planned delivery is claimed: {claims:?}"
        );
        let outcomes: Vec<Recorded> = subs
            .iter()
            .map(|s| Recorded::new(*s, 1, Outcome::Sent, Language::Nl))
            .collect();
        let won = store
            .record(alert, Channel::Sms, &outcomes, now)
            .await
            .unwrap();
        assert!(won.iter().all(|w| *w));
    }
    let c = store.counts(alert).await.unwrap();
    assert_eq!((c.recipients, c.channels[&Channel::Sms].sent), (n, n));
    let counters = units(&tables.alerts).write / n as f64;
    let deliveries = units(&tables.deliveries).write / n as f64;
    assert!(
        counters <= 0.5,
        "counters cost {counters:.2} write units per delivery (at most 0.5)"
    );
    assert!(
        deliveries <= 7.0,
        "a delivery's own items cost {deliveries:.2} write units (its owner put alone, planned, claimed and recorded in transactions: at most 7)"
    );
    assert_eq!(reads_by_claims, 0.0, "first claims read nothing");
}

/// A recipient another shard planned first (a subscriber with addresses in
/// two shards' cells) is taken out of its batch; the rest of the batch is
/// planned together, not one transaction per recipient.
#[tokio::test]
async fn a_recipient_planned_elsewhere_leaves_its_batch_planned_together() {
    let (store, meter, tables) = metered("capacity-plan-overlap").await;
    let alert = AlertId::new();
    let (_, plans) = sms_plans(60);
    store
        .plan_deliveries(alert, 1, &plans[30..31])
        .await
        .unwrap();
    let transactions = || {
        meter
            .by_operation()
            .get(&(tables.deliveries.clone(), "TransactWriteItems"))
            .map_or(0, |u| u.requests)
    };
    let before = transactions();
    let pending = store.plan_deliveries(alert, 0, &plans).await.unwrap();
    assert_eq!(pending.len(), 59, "all but the one shard 1 owns");
    let spent = transactions() - before;
    assert!(
        spent <= 4,
        "{spent} transactions for a batch of 60 with one recipient planned elsewhere"
    );
    let c = store.counts(alert).await.unwrap();
    assert_eq!((c.recipients, c.channels[&Channel::Sms].queued), (60, 60));
}

/// Settling an alert after each job reads its channels' counters only, not
/// its reach counters too.
#[tokio::test]
async fn settling_reads_the_channel_counters_only() {
    let (store, meter, tables) = metered("capacity-settle").await;
    let alert = AlertId::new();
    let (_, plans) = sms_plans(200);
    store.plan_deliveries(alert, 0, &plans).await.unwrap();
    let reads = || {
        meter
            .snapshot()
            .get(&tables.alerts)
            .copied()
            .unwrap_or_default()
            .read
    };
    let r0 = reads();
    let all = store.counts(alert).await.unwrap();
    let r1 = reads();
    let channels = store.channel_counts(alert).await.unwrap();
    let r2 = reads();
    assert_eq!(channels.channels, all.channels);
    assert!(
        r2 - r1 < r1 - r0,
        "channel counts read {} units, all counts {}",
        r2 - r1,
        r1 - r0
    );
}
