//! The benchmark's capacity meter against DynamoDB Local: every request
//! through a metered client reports what it consumed, on its own table.

use crate::common::tables;
use bealert_app::ports::DeliveryStore;
use bealert_app::ports::RecipientPlan;
use bealert_aws::{CapacityMeter, DynamoStore, metered_client};
use bealert_core::delivery::PlannedDelivery;
use bealert_core::{AlertId, Channel, Language, SubscriberId};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn a_metered_store_reports_read_and_write_units_per_table() {
    let (client, tables) = tables("capacity").await;
    let meter = Arc::new(CapacityMeter::default());
    let store = DynamoStore::new(metered_client(&client, meter.clone()), tables.clone());
    let alert = AlertId::new();
    let who: Vec<SubscriberId> = (1..=20).map(SubscriberId::from_random).collect();
    let plans: Vec<RecipientPlan> = who
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
    store.plan_deliveries(alert, 0, &plans).await.unwrap();
    let planned = meter.snapshot();
    let deliveries = planned.get(&tables.deliveries).copied().unwrap_or_default();
    // Planned in transactions: twice a unit per item (DynamoDB Local itself
    // reports a couple of units for a whole transaction).
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
