//! Conformance of the signup ports: registrations (versioned replace) and
//! counters (windows that add up under concurrent bumps).

use bealert_app::ports::{Counters, RegistrationStore};
use bealert_core::signup::Registration;
use std::sync::Arc;

fn registration(id: &str) -> Registration {
    Registration::new(
        id.into(),
        super::profile(None, "fr", &[(50.0, 5.7)], &[]),
        1_800_000_000_000,
    )
}

pub async fn registration_store(store: &dyn RegistrationStore) {
    let id = uuid::Uuid::now_v7().to_string();
    let r = registration(&id);
    assert_eq!(store.get_registration(&id).await.unwrap(), None);
    store.insert_registration(&r).await.unwrap();
    assert!(
        store.insert_registration(&r).await.is_err(),
        "an id is registered once"
    );
    assert_eq!(
        store.get_registration(&id).await.unwrap().as_ref(),
        Some(&r)
    );

    // A replace succeeds over the version read, and only once.
    let mut next = r.clone();
    next.version += 1;
    next.paused = true;
    assert!(store.replace_registration(&next).await.unwrap());
    assert!(
        !store.replace_registration(&next).await.unwrap(),
        "a second writer over the same version loses"
    );
    let mut stale = r.clone();
    stale.version += 1;
    stale.profile.groups = vec!["stale".into()];
    assert!(!store.replace_registration(&stale).await.unwrap());
    assert_eq!(
        store.get_registration(&id).await.unwrap(),
        Some(next.clone())
    );

    // Lookup keys find it, follow its replacements, and go with it.
    let mut keyed = store.get_registration(&id).await.unwrap().unwrap();
    keyed.version += 1;
    keyed.lookup_keys = vec![format!("k1-{id}"), format!("k2-{id}")];
    assert!(store.replace_registration(&keyed).await.unwrap());
    assert_eq!(
        store
            .registrations_by_key(&format!("k2-{id}"))
            .await
            .unwrap(),
        vec![id.clone()]
    );
    keyed.version += 1;
    keyed.lookup_keys = vec![format!("k3-{id}")];
    assert!(store.replace_registration(&keyed).await.unwrap());
    assert!(
        store
            .registrations_by_key(&format!("k2-{id}"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .registrations_by_key(&format!("k3-{id}"))
            .await
            .unwrap(),
        vec![id.clone()]
    );

    assert!(store.delete_registration(&id).await.unwrap());
    assert!(
        store
            .registrations_by_key(&format!("k3-{id}"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!store.delete_registration(&id).await.unwrap());
    assert_eq!(store.get_registration(&id).await.unwrap(), None);
}

/// An invitation is used at most its number of times, even by racing
/// signups, and never after it expires.
pub async fn invitations(store: Arc<dyn RegistrationStore>) {
    use bealert_core::signup::Invitation;
    let now = 1_800_000_000_000;
    let k = format!("inv-{}", uuid::Uuid::now_v7());
    let invitation = Invitation {
        key: k.clone(),
        group: "rescuers".into(),
        expires_at: now + 1000,
        uses_left: 3,
        created_by: "national".into(),
    };
    store.insert_invitation(&invitation).await.unwrap();
    assert!(
        store.insert_invitation(&invitation).await.is_err(),
        "a key is made once"
    );
    let tries = (0..10).map(|_| {
        let (s, k) = (store.clone(), k.clone());
        tokio::spawn(async move { s.use_invitation(&k, now).await.unwrap() })
    });
    let mut groups = Vec::new();
    for t in tries {
        groups.extend(t.await.unwrap());
    }
    assert_eq!(
        groups,
        vec!["rescuers".to_string(); 3],
        "three uses, not more"
    );
    assert_eq!(
        store.use_invitation("no-such-code", now).await.unwrap(),
        None
    );
    let late = Invitation {
        key: format!("{k}-late"),
        ..invitation
    };
    store.insert_invitation(&late).await.unwrap();
    assert_eq!(
        store.use_invitation(&late.key, now + 1001).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(
        store.use_invitation(&late.key, now + 1000).await.unwrap(),
        Some("rescuers".into())
    );
}

pub async fn counters(counters: Arc<dyn Counters>) {
    let key = format!("conformance:{}", uuid::Uuid::now_v7());
    let hour = 3_600_000;
    let t0 = 1_800_000_000_000 - 1_800_000_000_000 % hour;
    assert_eq!(counters.count(&key, hour, t0).await.unwrap(), 0);
    // 40 concurrent bumps all count.
    let bumps = (0..40).map(|_| {
        let (c, k) = (counters.clone(), key.clone());
        tokio::spawn(async move { c.bump(&k, 1, hour, t0 + 10).await.unwrap() })
    });
    let mut seen: Vec<u64> = Vec::new();
    for b in bumps {
        seen.push(b.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=40).collect::<Vec<u64>>(),
        "each bump sees its own count"
    );
    assert_eq!(counters.count(&key, hour, t0 + hour - 1).await.unwrap(), 40);
    assert_eq!(counters.bump(&key, 5, hour, t0 + 20).await.unwrap(), 45);
    // The next window starts from zero.
    assert_eq!(counters.count(&key, hour, t0 + hour).await.unwrap(), 0);
    assert_eq!(counters.bump(&key, 1, hour, t0 + hour).await.unwrap(), 1);
}
