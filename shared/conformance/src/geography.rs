//! Conformance of the reference geography: units replaced whole, boundaries
//! of any size (a real canton has 24,000 vertices, more than one DynamoDB
//! item holds), looked up by level and code or by code alone.

use bealert_app::ports::GeoStore;
use bealert_core::geography::{Level, Unit, UnitNames};
use std::sync::Arc;

/// A closed ring of `n` vertices around a point (a circle-ish polygon).
fn ring(lon: f64, lat: f64, r: f64, n: usize) -> Vec<[f64; 2]> {
    let mut pts: Vec<[f64; 2]> = (0..n)
        .map(|i| {
            let a = i as f64 / n as f64 * std::f64::consts::TAU;
            // Seven decimals, as real data has: a JSON round trip keeps them.
            let q = |x: f64| (x * 1e7).round() / 1e7;
            [q(lon + r * a.cos()), q(lat + r * 0.6 * a.sin())]
        })
        .collect();
    pts.push(pts[0]);
    pts
}

fn unit(level: Level, code: &str, vertices: usize, r: f64) -> Unit {
    Unit {
        level,
        code: code.to_string(),
        names: UnitNames {
            nl: format!("Gemeente {code}"),
            fr: format!("Commune {code}"),
            de: format!("Gemeinde {code}"),
        },
        polygons: vec![vec![ring(4.35, 50.85, r, vertices)]],
    }
}

pub async fn geo_store(store: Arc<dyn GeoStore>) {
    let tag = &uuid::Uuid::now_v7().simple().to_string()[24..];
    let nis = format!(
        "9{}",
        &u64::from_str_radix(&tag[..8], 16).unwrap().to_string()[..4]
    );
    let canton = format!("canton-{tag}");

    assert_eq!(store.unit(Level::Municipality, &nis).await.unwrap(), None);
    assert_eq!(
        store.unit_info(Level::Municipality, &nis).await.unwrap(),
        None
    );
    assert!(store.units_by_code(&nis).await.unwrap().is_empty());

    // A boundary larger than any one stored item, and a small one, in one call.
    let big = unit(Level::Municipality, &nis, 30_000, 0.05);
    let small = unit(Level::Canton, &canton, 8, 0.02);
    let province = unit(Level::Province, &nis, 12, 0.2);
    store
        .put_units(&[big.clone(), small.clone(), province.clone()])
        .await
        .unwrap();
    assert_eq!(
        store
            .unit(Level::Municipality, &nis)
            .await
            .unwrap()
            .as_ref(),
        Some(&big),
        "a 30,000-vertex boundary comes back whole"
    );
    assert_eq!(
        store.unit(Level::Canton, &canton).await.unwrap(),
        Some(small.clone())
    );
    assert_eq!(
        store.unit_info(Level::Municipality, &nis).await.unwrap(),
        Some(big.info())
    );
    let by_code = store.units_by_code(&nis).await.unwrap();
    assert_eq!(
        by_code.iter().map(|u| u.level).collect::<Vec<_>>(),
        [Level::Province, Level::Municipality],
        "a code names a unit at each level it is used at, in level order"
    );
    let listed = store.units().await.unwrap();
    assert!(listed.contains(&small.info()) && listed.contains(&big.info()));
    let keys: Vec<(Level, String)> = listed.iter().map(|u| (u.level, u.code.clone())).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "units are listed by level, then code");

    // Replaced whole: readers see the old boundary or the new one, never a mix.
    let replacement = unit(Level::Municipality, &nis, 21_000, 0.03);
    let reader = {
        let store = store.clone();
        let (a, b) = (big.clone(), replacement.clone());
        let nis = nis.clone();
        tokio::spawn(async move {
            let mut reads = 0;
            for _ in 0..40 {
                let got = store.unit(Level::Municipality, &nis).await.unwrap();
                assert!(
                    got.as_ref() == Some(&a) || got.as_ref() == Some(&b),
                    "a unit read during its replacement is the old or the new one"
                );
                reads += 1;
            }
            reads
        })
    };
    for _ in 0..3 {
        store
            .put_units(std::slice::from_ref(&replacement))
            .await
            .unwrap();
        store.put_units(std::slice::from_ref(&big)).await.unwrap();
    }
    store
        .put_units(std::slice::from_ref(&replacement))
        .await
        .unwrap();
    assert_eq!(reader.await.unwrap(), 40);
    assert_eq!(
        store.unit(Level::Municipality, &nis).await.unwrap(),
        Some(replacement.clone())
    );
    assert_ne!(replacement.info().version, big.info().version);
    assert_eq!(
        store.unit_info(Level::Municipality, &nis).await.unwrap(),
        Some(replacement.info())
    );

    store
        .set_shipped_edition(&format!("test-{tag}"))
        .await
        .unwrap();
    assert_eq!(
        store.shipped_edition().await.unwrap(),
        Some(format!("test-{tag}"))
    );

    // The version addresses were brought up to date against, per unit.
    assert_eq!(
        store
            .indexed_version(Level::Municipality, &nis)
            .await
            .unwrap(),
        None
    );
    let v = replacement.info().version;
    store
        .set_indexed_version(Level::Municipality, &nis, &v)
        .await
        .unwrap();
    assert_eq!(
        store
            .indexed_version(Level::Municipality, &nis)
            .await
            .unwrap(),
        Some(v)
    );
    assert_eq!(
        store.indexed_version(Level::Canton, &nis).await.unwrap(),
        None,
        "kept per level and code"
    );
    assert_eq!(
        store.shipped_edition().await.unwrap(),
        Some(format!("test-{tag}")),
        "apart from the edition"
    );
}
