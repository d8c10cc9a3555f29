//! Conformance of the send budget port: the token-bucket rule, shared.

use bealert_app::ports::SendBudget;
use bealert_app::rate::{Limit, Priority};
use bealert_core::Channel;

/// The limits a budget under test is built with: SMS at 10 a second with a
/// burst of 10 (so it refills at 1 a second), voice unlimited, e-mail at
/// 100 a second with a burst of 2 and a warm-up of 60 s.
pub fn limits() -> [Option<Limit>; 3] {
    [
        Some(Limit::new(10, Some(10)).unwrap()),
        None,
        Some(Limit::new(100, Some(2)).unwrap().with_ramp(60)),
    ]
}

/// Greedy takes of e-mail every 10 ms for a second from `from`: granted.
async fn email_second(budget: &dyn SendBudget, from: i64) -> u32 {
    let mut got = 0;
    for k in 0..100 {
        got += budget
            .take(Channel::Email, 1_000, Priority::Urgent, from + k * 10)
            .await
            .unwrap();
    }
    got
}

/// Takes SMS as a sender does: what is granted is handed over at once and
/// reported ([`SendBudget::handed`]).
async fn send_sms(budget: &dyn SendBudget, n: u32, priority: Priority, now: i64) -> u32 {
    let granted = budget.take(Channel::Sms, n, priority, now).await.unwrap();
    budget.handed(Channel::Sms, granted, now);
    granted
}

/// `budget` must be fresh, built with [`limits`].
pub async fn send_budget(budget: &dyn SendBudget) {
    let t0 = 1_800_000_000_000;
    // A warm-up: cold, e-mail starts at about a tenth of its rate; the
    // store keeps when it warmed up, so half a ramp later (no call in
    // between) it runs at about half.
    let cold = email_second(budget, t0).await;
    assert!(cold <= 15, "a cold start at a tenth: {cold}");
    let warming = email_second(budget, t0 + 30_000).await;
    assert!(
        (40..=70).contains(&warming),
        "half way up the ramp: {warming}"
    );
    assert_eq!(budget.rate(Channel::Sms), Some(10));
    assert_eq!(budget.rate(Channel::Voice), None);
    assert_eq!(
        budget
            .take(Channel::Voice, 5000, Priority::Normal, t0)
            .await
            .unwrap(),
        5000,
        "an unlimited channel grants everything"
    );
    assert_eq!(
        send_sms(budget, 100, Priority::Low, t0).await,
        8,
        "an exercise leaves the last fifth"
    );
    assert_eq!(
        send_sms(budget, 100, Priority::Normal, t0).await,
        1,
        "a real alert leaves the last tenth"
    );
    assert_eq!(
        send_sms(budget, 100, Priority::Urgent, t0).await,
        1,
        "to a cancel"
    );
    assert_eq!(send_sms(budget, 1, Priority::Urgent, t0).await, 0);
    assert_eq!(
        send_sms(budget, 100, Priority::Urgent, t0 + 3_500).await,
        3,
        "it refills at rate - burst + 1 a second"
    );

    // Many senders at once never get more than the bucket holds.
    let t1 = t0 + 60_000;
    let takes = futures::future::join_all(
        (0..20).map(|_| budget.take(Channel::Sms, 3, Priority::Urgent, t1)),
    )
    .await;
    let total: u32 = takes.into_iter().map(|t| t.unwrap()).sum();
    assert!(
        (1..=10).contains(&total),
        "{total} granted from a bucket of 10"
    );
}
