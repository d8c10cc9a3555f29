//! Per-channel send budgets (messages per second), shared by every sender
//! of a channel: the token-bucket rule, decided here, and the in-process
//! budget of the local runner. The AWS home keeps the bucket in DynamoDB
//! (`bealert_aws`), executing the same rule with conditional writes.

use crate::ports::{SendBudget, StoreError};
use async_trait::async_trait;
use bealert_core::Channel;
use std::sync::Mutex;

/// Who is asking: exercises and tests may not take the last fifth of a
/// bucket, real alerts not the last tenth; cancels may take everything, so
/// a cancel finds tokens at once however busy the channel is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Urgent,
    Normal,
    Low,
}

impl Priority {
    /// The priority of a send queue's lane.
    pub fn of(lane: crate::jobs::Lane) -> Self {
        match lane {
            crate::jobs::Lane::Cancel => Priority::Urgent,
            crate::jobs::Lane::Actual => Priority::Normal,
            crate::jobs::Lane::Routine => Priority::Low,
        }
    }
}

/// A bucket as stored: tokens left at a time (Unix ms).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub tokens: f64,
    pub at_ms: i64,
}

/// The rule: a bucket holds at most one second of the rate, refills at the
/// rate, and grants up to `n` whole tokens; a low-priority caller cannot
/// take the last fifth. Returns the bucket after and what was granted.
pub fn take_tokens(
    stored: Option<Bucket>,
    per_second: u32,
    n: u32,
    priority: Priority,
    now_ms: i64,
) -> (Bucket, u32) {
    let burst = f64::from(per_second.max(1));
    let b = stored.unwrap_or(Bucket {
        tokens: burst,
        at_ms: now_ms,
    });
    let elapsed = (now_ms - b.at_ms).max(0) as f64 / 1000.0;
    let tokens = (b.tokens + elapsed * burst).min(burst);
    let floor = match priority {
        Priority::Urgent => 0.0,
        Priority::Normal => burst / 10.0,
        Priority::Low => burst / 5.0,
    };
    let granted = ((tokens - floor).max(0.0).floor() as u32).min(n);
    (
        Bucket {
            tokens: tokens - f64::from(granted),
            at_ms: now_ms.max(b.at_ms),
        },
        granted,
    )
}

/// Buckets in this process: the budget of the local runner, where every
/// sender runs in one process.
pub struct LocalBudget {
    rates: [Option<u32>; 3],
    buckets: Mutex<[Option<Bucket>; 3]>,
}

impl LocalBudget {
    pub fn new(rates: [Option<u32>; 3]) -> Self {
        Self {
            rates,
            buckets: Mutex::new([None; 3]),
        }
    }
}

#[async_trait]
impl SendBudget for LocalBudget {
    fn rate(&self, channel: Channel) -> Option<u32> {
        self.rates[usize::from(channel.index())].filter(|r| *r > 0)
    }

    async fn take(
        &self,
        channel: Channel,
        n: u32,
        priority: Priority,
        now_ms: i64,
    ) -> Result<u32, StoreError> {
        let Some(rate) = self.rate(channel) else {
            return Ok(n);
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let slot = &mut buckets[usize::from(channel.index())];
        let (after, granted) = take_tokens(*slot, rate, n, priority, now_ms);
        *slot = Some(after);
        Ok(granted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_holds_a_second_and_refills_at_the_rate() {
        let (b, g) = take_tokens(None, 10, 100, Priority::Urgent, 0);
        assert_eq!(g, 10);
        let (b, g) = take_tokens(Some(b), 10, 100, Priority::Urgent, 0);
        assert_eq!(g, 0);
        let (_, g) = take_tokens(Some(b), 10, 100, Priority::Urgent, 500);
        assert_eq!(g, 5);
    }

    #[test]
    fn exercises_leave_a_fifth_to_real_alerts_which_leave_a_tenth_to_cancels() {
        let (b, g) = take_tokens(None, 10, 100, Priority::Low, 0);
        assert_eq!(g, 8);
        let (b, g) = take_tokens(Some(b), 10, 100, Priority::Low, 0);
        assert_eq!(g, 0);
        let (b, g) = take_tokens(Some(b), 10, 100, Priority::Normal, 0);
        assert_eq!(g, 1);
        let (_, g) = take_tokens(Some(b), 10, 100, Priority::Urgent, 0);
        assert_eq!(g, 1);
    }
}
