//! Conformance of the send budget port: the token-bucket rule, shared.

use crate::ports::SendBudget;
use crate::rate::Priority;
use bealert_core::Channel;

/// `budget` must be fresh, with SMS at 10 messages/s and voice unlimited.
pub async fn send_budget(budget: &dyn SendBudget) {
    let t0 = 1_800_000_000_000;
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
        budget
            .take(Channel::Sms, 100, Priority::Low, t0)
            .await
            .unwrap(),
        8,
        "an exercise leaves the last fifth"
    );
    assert_eq!(
        budget
            .take(Channel::Sms, 100, Priority::Normal, t0)
            .await
            .unwrap(),
        1,
        "a real alert leaves the last tenth"
    );
    assert_eq!(
        budget
            .take(Channel::Sms, 100, Priority::Urgent, t0)
            .await
            .unwrap(),
        1,
        "to a cancel"
    );
    assert_eq!(
        budget
            .take(Channel::Sms, 1, Priority::Urgent, t0)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        budget
            .take(Channel::Sms, 100, Priority::Urgent, t0 + 500)
            .await
            .unwrap(),
        5,
        "it refills at the rate"
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
