//! Conformance of the send budget port: the token-bucket rule, shared.

use crate::ports::SendBudget;
use crate::rate::{Limit, Priority};
use bealert_core::Channel;

/// The limits a budget under test is built with: SMS at 10 a second with a
/// burst of 10 (so it refills at 1 a second), voice and e-mail unlimited.
pub fn limits() -> [Option<Limit>; 3] {
    [Some(Limit::new(10, Some(10)).unwrap()), None, None]
}

/// `budget` must be fresh, built with [`limits`].
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
            .take(Channel::Sms, 100, Priority::Urgent, t0 + 3_500)
            .await
            .unwrap(),
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
