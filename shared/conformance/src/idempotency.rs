//! What every [`IdempotencyStore`] promises: one claim per live key, the
//! first answer kept, a failed request's claim released, expiry honoured,
//! people kept apart, and of racing claims exactly one wins.

use bealert_app::ports::{IdempotencyStore, StoredAnswer};
use std::sync::Arc;

pub async fn idempotency_store(s: Arc<dyn IdempotencyStore>) {
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let scope = format!("centre/ann-{tag}");
    let now = 1_000_000;
    let end = now + 86_400_000;
    assert!(
        s.claim_key(&scope, "k1", "fp-a", now, end)
            .await
            .unwrap()
            .is_none(),
        "a new key is claimed"
    );
    let pending = s
        .claim_key(&scope, "k1", "fp-a", now + 1, end)
        .await
        .unwrap();
    let pending = pending.expect("a claimed key is found");
    assert_eq!(pending.fingerprint, "fp-a");
    assert_eq!(pending.answer, None, "still being answered");

    let answer = StoredAnswer {
        status: 201,
        location: Some("/v1/alerts/x".into()),
        body: r#"{"id":"x","state":"resolving"}"#.into(),
    };
    s.complete_key(&scope, "k1", &answer).await.unwrap();
    let done = s
        .claim_key(&scope, "k1", "fp-b", now + 2, end)
        .await
        .unwrap();
    let done = done.expect("an answered key is found");
    assert_eq!(done.fingerprint, "fp-a", "the first request's fingerprint");
    assert_eq!(done.answer.as_ref(), Some(&answer));
    s.release_key(&scope, "k1").await.unwrap();
    assert!(
        s.claim_key(&scope, "k1", "fp-a", now + 3, end)
            .await
            .unwrap()
            .is_some(),
        "an answered key is not released"
    );

    // Another person's same key is theirs.
    let other = format!("centre/bea-{tag}");
    assert!(
        s.claim_key(&other, "k1", "fp-a", now, end)
            .await
            .unwrap()
            .is_none()
    );

    // A failed request's claim is released: the retry runs.
    assert!(
        s.claim_key(&scope, "k2", "fp", now, end)
            .await
            .unwrap()
            .is_none()
    );
    s.release_key(&scope, "k2").await.unwrap();
    assert!(
        s.claim_key(&scope, "k2", "fp", now, end)
            .await
            .unwrap()
            .is_none()
    );

    // An expired record is claimed anew.
    assert!(
        s.claim_key(&scope, "k3", "fp-a", now, now + 10)
            .await
            .unwrap()
            .is_none()
    );
    s.complete_key(&scope, "k3", &answer).await.unwrap();
    assert!(
        s.claim_key(&scope, "k3", "fp-c", now + 10, now + 20)
            .await
            .unwrap()
            .is_none(),
        "expired at its end"
    );
    let renewed = s
        .claim_key(&scope, "k3", "fp-a", now + 11, now + 20)
        .await
        .unwrap();
    assert_eq!(renewed.unwrap().fingerprint, "fp-c");

    // Racing claims: exactly one wins.
    let mut racers = Vec::new();
    for i in 0..8 {
        let s = s.clone();
        let scope = scope.clone();
        racers.push(tokio::spawn(async move {
            s.claim_key(&scope, "race", &format!("fp{i}"), now, end)
                .await
                .unwrap()
                .is_none()
        }));
    }
    let mut won = 0;
    for r in racers {
        if r.await.unwrap() {
            won += 1;
        }
    }
    assert_eq!(won, 1, "of racing claims exactly one wins");
}
