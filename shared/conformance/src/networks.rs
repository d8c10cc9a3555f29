//! Conformance of the Alert-SMS ports: networks and their cells (read by
//! index cell, replaced at once) and deliveries to targets (planned once,
//! claimed with a fencing token).

use bealert_app::ports::{Claim, IndexedCell, Network, NetworkStore, Outcome, TargetStore};
use bealert_core::AlertId;
use bealert_core::broadcast::{NetworkReport, Target};
use bealert_core::delivery::DeliveryStatus;
use bealert_core::network::CellRecord;
use std::sync::Arc;
use std::time::Duration;

fn cell(id: &str, devices: u64, parents: &[u64]) -> IndexedCell {
    IndexedCell {
        record: CellRecord {
            cell_id: id.into(),
            active_devices: devices,
            footprint: vec![vec![vec![
                [4.3, 50.8],
                [4.4, 50.8],
                [4.4, 50.9],
                [4.3, 50.8],
            ]]],
            derived: id.ends_with('d'),
        },
        parents: parents.to_vec(),
    }
}

pub async fn network_store(store: &dyn NetworkStore) {
    let name = format!("net-{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let n = Network {
        name: name.clone(),
        key_hash: format!("hash-{name}"),
        created_at: 1_800_000_000_000,
    };
    store.insert_network(&n).await.unwrap();
    assert!(
        matches!(
            store.insert_network(&n).await,
            Err(bealert_app::ports::StoreError::Conflict(_))
        ),
        "a network name is taken once"
    );
    assert_eq!(
        store.network_by_key_hash(&n.key_hash).await.unwrap(),
        Some(n.clone())
    );
    assert_eq!(store.network_by_key_hash("nope").await.unwrap(), None);
    let info = store
        .networks()
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.name == name)
        .expect("a new network is listed");
    assert_eq!((info.cells, info.refreshed_at), (0, None));

    let first: Arc<[IndexedCell]> = vec![
        cell("a", 10, &[1, 2]),
        cell("b", 20, &[2]),
        cell("c-d", 30, &[3]),
    ]
    .into();
    let i1 = store.replace_cells(&name, first, 1_000).await.unwrap();
    assert_eq!(
        (i1.cells, i1.active_devices, i1.derived, i1.refreshed_at),
        (3, 60, 1, Some(1_000))
    );
    let mut got: Vec<String> = store
        .cells_in(&name, &[2, 3, 99])
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.record.cell_id)
        .collect();
    got.sort();
    assert_eq!(got, ["a", "b", "c-d"], "each cell once, by index cell");
    let a = store.cells_in(&name, &[1]).await.unwrap();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0], cell("a", 10, &[1, 2]), "cells come back as stored");

    // A replacement removes what it does not list.
    let second: Arc<[IndexedCell]> = vec![cell("z", 5, &[1])].into();
    let i2 = store.replace_cells(&name, second, 2_000).await.unwrap();
    assert!(i2.version > i1.version, "a replacement bumps the version");
    assert_eq!((i2.cells, i2.active_devices), (1, 5));
    assert!(store.cells_in(&name, &[2, 3]).await.unwrap().is_empty());
    assert_eq!(
        store.cells_in(&name, &[1]).await.unwrap()[0].record.cell_id,
        "z"
    );
}

pub async fn target_store(store: &dyn TargetStore) {
    let alert = AlertId::new();
    let p = Target::Network("proximus".into());
    let o = Target::Network("orange".into());
    let lease = Duration::from_secs(30);
    assert_eq!(
        store.claim_target(alert, &p, 0, lease).await.unwrap(),
        Claim::Unknown
    );
    store
        .plan_targets(alert, &[p.clone(), o.clone()], 1)
        .await
        .unwrap();
    let c1 = store.claim_target(alert, &p, 10, lease).await.unwrap();
    assert_eq!(c1, Claim::claimed(1));
    // Planned again (a retried plan): the claimed delivery is kept.
    store
        .plan_targets(alert, std::slice::from_ref(&p), 20)
        .await
        .unwrap();
    assert!(matches!(
        store.claim_target(alert, &p, 20, lease).await.unwrap(),
        Claim::Busy { .. }
    ));
    // The lease runs out: a second sender takes over with attempt 2, and
    // the first one's outcome is not recorded.
    let c2 = store.claim_target(alert, &p, 40_000, lease).await.unwrap();
    assert_eq!(c2, Claim::claimed(2));
    let report = NetworkReport {
        cells: 3,
        requested: 100,
        accepted: 100,
        delivered: 97,
        failed: 3,
        overshoot_km2: 1.5,
    };
    assert!(
        !store
            .record_target(alert, &p, 1, &Outcome::Sent, Some(&report), 40_001)
            .await
            .unwrap()
    );
    assert!(
        store
            .record_target(alert, &p, 2, &Outcome::Sent, Some(&report), 40_002)
            .await
            .unwrap()
    );
    assert_eq!(
        store.claim_target(alert, &p, 40_003, lease).await.unwrap(),
        Claim::Done
    );

    // A retry releases the claim and keeps the reason.
    let c = store.claim_target(alert, &o, 50, lease).await.unwrap();
    assert_eq!(c, Claim::claimed(1));
    assert!(
        store
            .record_target(alert, &o, 1, &Outcome::Retry("down".into()), None, 60)
            .await
            .unwrap()
    );
    let rows = store.targets(alert).await.unwrap();
    assert_eq!(rows.len(), 2);
    let row = |t: &Target| rows.iter().find(|r| &r.target == t).unwrap().clone();
    assert_eq!(row(&p).status, DeliveryStatus::Sent);
    assert_eq!(row(&p).report, Some(report));
    assert_eq!(row(&o).status, DeliveryStatus::Queued);
    assert_eq!(row(&o).error.as_deref(), Some("down"));
    assert_eq!(row(&o).attempts, 1);

    // A dead-lettered job fails what nobody is sending, never a sent one.
    assert!(store.fail_target(alert, &o, "gave up", 70).await.unwrap());
    assert!(!store.fail_target(alert, &p, "gave up", 70).await.unwrap());
    let rows = store.targets(alert).await.unwrap();
    assert_eq!(
        rows.iter().find(|r| r.target == o).unwrap().status,
        DeliveryStatus::Failed
    );
    assert_eq!(
        rows.iter().find(|r| r.target == p).unwrap().status,
        DeliveryStatus::Sent
    );
    assert!(store.targets(AlertId::new()).await.unwrap().is_empty());

    // The public channels' outlets are targets too, one per kind and
    // name: a siren group and a social account of the same name are two.
    let siren = Target::Siren("proximus".into());
    let social = Target::Social("proximus".into());
    store
        .plan_targets(alert, &[siren.clone(), social.clone()], 80)
        .await
        .unwrap();
    assert_eq!(
        store.claim_target(alert, &siren, 90, lease).await.unwrap(),
        Claim::claimed(1)
    );
    let acks = NetworkReport {
        requested: 12,
        accepted: 12,
        delivered: 11,
        failed: 1,
        ..NetworkReport::default()
    };
    assert!(
        store
            .record_target(alert, &siren, 1, &Outcome::Sent, Some(&acks), 95)
            .await
            .unwrap()
    );
    let rows = store.targets(alert).await.unwrap();
    assert_eq!(rows.len(), 4);
    let row = |t: &Target| rows.iter().find(|r| &r.target == t).unwrap().clone();
    assert_eq!(row(&siren).report, Some(acks));
    assert_eq!(row(&social).status, DeliveryStatus::Queued);
    assert_eq!(row(&p).status, DeliveryStatus::Sent);
}
