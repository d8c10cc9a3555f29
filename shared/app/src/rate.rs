//! Per-channel send budgets (messages per second), shared by every sender
//! of a channel: the token-bucket rule, decided here, and the in-process
//! budget of the local runner. The AWS home keeps the bucket in DynamoDB
//! (`bealert_aws`), executing the same rule with conditional writes.

pub use crate::limit::{Limit, Priority};
use crate::ports::{SendBudget, StoreError};
use async_trait::async_trait;
use bealert_core::Channel;
use std::sync::Mutex;

/// A bucket as stored: tokens left at a time (Unix ms).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub tokens: f64,
    pub at_ms: i64,
    /// Under a ramp: when sending resumed after a whole ramp idle.
    pub warm_since_ms: Option<i64>,
}

/// The rule: a bucket holds at most the limit's burst, refills at the
/// limit's refill rate, and grants up to `n` whole tokens; a low-priority
/// caller cannot take the last fifth. Returns the bucket after and what
/// was granted.
pub fn take_tokens(
    stored: Option<Bucket>,
    limit: Limit,
    n: u32,
    priority: Priority,
    now_ms: i64,
) -> (Bucket, u32) {
    let burst = f64::from(limit.burst.max(1));
    let b = stored.unwrap_or(Bucket {
        tokens: burst,
        at_ms: now_ms,
        warm_since_ms: None,
    });
    let elapsed = (now_ms - b.at_ms).max(0) as f64 / 1000.0;
    // A ramp starts again after a whole ramp without a call.
    let warm_since = (limit.ramp_ms > 0).then(|| match b.warm_since_ms {
        Some(since) if now_ms - b.at_ms < limit.ramp_ms => since,
        _ => now_ms,
    });
    let pace = warm_since.map_or(1.0, |since| {
        (0.1 + 0.9 * (now_ms - since) as f64 / limit.ramp_ms as f64).min(1.0)
    });
    let tokens = (b.tokens + elapsed * limit.refill() * pace).min(burst);
    // Whole tokens kept back (none from a bucket too small to split).
    let floor = match priority {
        Priority::Urgent => 0.0,
        Priority::Normal => (burst / 10.0).floor(),
        Priority::Low => (burst / 5.0).floor(),
    };
    let granted = ((tokens - floor).max(0.0).floor() as u32).min(n);
    (
        Bucket {
            tokens: tokens - f64::from(granted),
            at_ms: now_ms.max(b.at_ms),
            warm_since_ms: warm_since,
        },
        granted,
    )
}

/// Buckets in this process: the budget of the local runner, where every
/// sender runs in one process.
///
/// Besides the bucket, each channel paces by hand-over: what was handed
/// over in the last second, plus what was granted and not yet handed
/// over, never passes the rate. The bucket alone keeps every second of
/// *grants* under the rate; but a message reaches its provider a moment
/// after its grant (the outbox's lock, a batch's write), and after a lull
/// the bucket's burst and the next second's refill could land in one
/// second of *hand-overs* (10,009 and 10,032 in two national runs). Any
/// message handed over within a second was either reported in the second
/// before the last grant among them, or still out then, so no second of
/// hand-overs holds more than the rate, however late a hand-over is. A
/// grant lost without a report (a sender that died) stops counting after
/// [`OUT_FOR_AT_MOST_MS`].
pub struct LocalBudget {
    limits: [Option<Limit>; 3],
    buckets: Mutex<[(Option<Bucket>, Handovers); 3]>,
}

/// A grant not reported handed over after this long no longer counts.
pub const OUT_FOR_AT_MOST_MS: i64 = 60_000;

/// Messages granted and not yet handed over, and those handed over in the
/// last second: (time, count), oldest first, with their sums.
#[derive(Default)]
struct Handovers {
    out: std::collections::VecDeque<(i64, u32)>,
    out_sum: u64,
    handed: std::collections::VecDeque<(i64, u32)>,
    handed_sum: u64,
}

impl Handovers {
    /// How many more the rate allows at `now_ms`.
    fn room(&mut self, limit: Limit, now_ms: i64) -> u32 {
        while let Some(&(at, n)) = self.handed.front() {
            if at > now_ms - 1000 {
                break;
            }
            self.handed.pop_front();
            self.handed_sum -= u64::from(n);
        }
        while let Some(&(at, n)) = self.out.front() {
            if at > now_ms - OUT_FOR_AT_MOST_MS {
                break;
            }
            self.out.pop_front();
            self.out_sum -= u64::from(n);
        }
        let used = self.handed_sum + self.out_sum;
        u32::try_from(u64::from(limit.per_second).saturating_sub(used)).unwrap_or(0)
    }

    fn granted(&mut self, n: u32, now_ms: i64) {
        if n > 0 {
            self.out.push_back((now_ms, n));
            self.out_sum += u64::from(n);
        }
    }

    /// `n` granted messages were handed over (or dropped) at `now_ms`.
    fn handed(&mut self, n: u32, now_ms: i64) {
        let mut left = n;
        while left > 0 {
            let Some(front) = self.out.front_mut() else {
                break;
            };
            let k = left.min(front.1);
            front.1 -= k;
            self.out_sum -= u64::from(k);
            left -= k;
            if front.1 == 0 {
                self.out.pop_front();
            }
        }
        if n > 0 {
            self.handed.push_back((now_ms, n));
            self.handed_sum += u64::from(n);
        }
    }
}

impl LocalBudget {
    pub fn new(limits: [Option<Limit>; 3]) -> Self {
        Self {
            limits,
            buckets: Mutex::new(Default::default()),
        }
    }
}

#[async_trait]
impl SendBudget for LocalBudget {
    fn limit(&self, channel: Channel) -> Option<Limit> {
        self.limits[usize::from(channel.index())]
    }

    async fn take(
        &self,
        channel: Channel,
        n: u32,
        priority: Priority,
        now_ms: i64,
    ) -> Result<u32, StoreError> {
        let Some(limit) = self.limit(channel) else {
            return Ok(n);
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (slot, handovers) = &mut buckets[usize::from(channel.index())];
        let n = n.min(handovers.room(limit, now_ms));
        let (after, granted) = take_tokens(*slot, limit, n, priority, now_ms);
        *slot = Some(after);
        handovers.granted(granted, now_ms);
        Ok(granted)
    }

    fn handed(&self, channel: Channel, n: u32, now_ms: i64) {
        if self.limit(channel).is_none() {
            return;
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        buckets[usize::from(channel.index())].1.handed(n, now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(per_second: u32, burst: u32) -> Limit {
        Limit::new(per_second, Some(burst)).unwrap()
    }

    #[test]
    fn a_ramp_starts_cold_at_a_tenth_reaches_the_rate_and_starts_again_after_idle() {
        use std::collections::BTreeMap;
        let l = limit(100, 2).with_ramp(60);
        // Greedy takes every 10 ms from `from_ms` for `secs`: per second.
        fn run(l: Limit, from_ms: i64, secs: i64, b: &mut Option<Bucket>) -> BTreeMap<i64, u32> {
            let mut per_second = BTreeMap::new();
            for t in (from_ms..from_ms + secs * 1000).step_by(10) {
                let (after, got) = take_tokens(*b, l, 1_000, Priority::Urgent, t);
                *b = Some(after);
                *per_second.entry(t / 1000).or_default() += got;
            }
            per_second
        }
        let mut b = None;
        let first = run(l, 0, 90, &mut b);
        assert!(first[&1] <= 15, "cold: {}", first[&1]);
        assert!((45..=65).contains(&first[&30]), "half way: {}", first[&30]);
        assert!(first[&80] >= 95, "warm: {}", first[&80]);
        // A whole ramp idle: cold again.
        let again = run(l, 200_000, 5, &mut b);
        assert!(again[&201] <= 15, "cold again: {}", again[&201]);
        // No ramp: the full rate at once.
        let mut plain = None;
        let flat = run(limit(100, 2), 0, 3, &mut plain);
        assert!(flat[&1] >= 95, "no ramp: {}", flat[&1]);
    }

    #[test]
    fn a_bucket_holds_its_burst_and_refills_so_no_second_exceeds_the_limit() {
        let l = limit(10, 3);
        let (b, g) = take_tokens(None, l, 100, Priority::Urgent, 0);
        assert_eq!(g, 3);
        let (b, g) = take_tokens(Some(b), l, 100, Priority::Urgent, 0);
        assert_eq!(g, 0);
        // Refilled at 10 - 3 + 1 = 8 a second, up to the burst.
        let (b, g) = take_tokens(Some(b), l, 100, Priority::Urgent, 250);
        assert_eq!(g, 2);
        let (_, g) = take_tokens(Some(b), l, 100, Priority::Urgent, 10_000);
        assert_eq!(g, 3);
    }

    /// Greedy senders asking every millisecond for a minute: count what
    /// each window of one second (every start, to the millisecond) got.
    fn fullest_second(l: Limit) -> (u32, u32) {
        let mut granted_at = vec![0u32; 60_000];
        let mut b = None;
        for (t, slot) in granted_at.iter_mut().enumerate() {
            let (after, g) = take_tokens(b, l, u32::MAX, Priority::Urgent, t as i64);
            b = Some(after);
            *slot = g;
        }
        let mut window: u32 = granted_at[..1000].iter().sum();
        let mut max = window;
        for t in 1000..granted_at.len() {
            window = window + granted_at[t] - granted_at[t - 1000];
            max = max.max(window);
        }
        (max, granted_at.iter().sum::<u32>())
    }

    #[test]
    fn no_second_carries_more_than_the_limit_whatever_the_burst() {
        for (rate, burst) in [
            (10_000, 200),
            (10_000, 20),
            (10_000, 10_000),
            (30, 1),
            (7, 7),
        ] {
            let (max, total) = fullest_second(limit(rate, burst));
            assert!(
                max <= rate,
                "{rate}/s burst {burst}: a second carried {max}"
            );
            // And the limit is used: the minute carries nearly 60 seconds'
            // worth of the refill (a full bucket wastes a little).
            let refill = rate - burst + 1;
            assert!(
                f64::from(total) >= 0.97 * 60.0 * f64::from(refill),
                "{rate}/s burst {burst}: {total} in a minute"
            );
        }
    }

    /// Greedy senders asking every millisecond, each grant handed over
    /// 0 to 96 ms later (a burst after a lull the latest): no second of
    /// hand-overs (every start, to the millisecond) holds more than the
    /// rate, and the stream still gets most of the refill.
    #[tokio::test]
    async fn no_second_of_hand_overs_passes_the_limit_however_late_they_are() {
        for (rate, burst) in [(10_000u32, 200u32), (1_000, 100), (30, 1)] {
            let l = limit(rate, burst);
            let budget = LocalBudget::new([Some(l), None, None]);
            let mut due: std::collections::BTreeMap<i64, u32> = Default::default();
            let mut handed = vec![0u32; 10_000];
            for t in 0..9_900i64 {
                // Lulls: nobody asks during 300 ms of every 3 s.
                if t % 3000 < 2700 {
                    let g = budget
                        .take(Channel::Sms, u32::MAX, Priority::Urgent, t)
                        .await
                        .unwrap();
                    let late = if t % 3000 == 0 { 96 } else { (t * 7919) % 97 };
                    *due.entry(t + late).or_default() += g;
                }
                if let Some(n) = due.remove(&t) {
                    budget.handed(Channel::Sms, n, t);
                    handed[t as usize] += n;
                }
            }
            let mut window: u32 = handed[..1000].iter().sum();
            let mut max = window;
            for t in 1000..handed.len() {
                window = window + handed[t] - handed[t - 1000];
                max = max.max(window);
            }
            assert!(
                max <= rate,
                "{rate}/s burst {burst}: a second of hand-overs held {max}"
            );
            let total: u32 = handed.iter().sum();
            assert!(
                f64::from(total) >= 0.85 * 9.0 * l.refill(),
                "{rate}/s burst {burst}: {total} in 9.9 s"
            );
        }
    }

    #[test]
    fn a_grant_never_reported_stops_counting() {
        let l = limit(10, 10);
        let budget = LocalBudget::new([Some(l), None, None]);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let take = |t| {
            rt.block_on(budget.take(Channel::Sms, 100, Priority::Urgent, t))
                .unwrap()
        };
        assert_eq!(take(0), 10);
        // Never reported: the rate stays used until they stop counting.
        assert_eq!(take(5_000), 0);
        assert_eq!(take(OUT_FOR_AT_MOST_MS + 1), 10);
    }

    #[test]
    fn the_default_burst_is_a_fiftieth_and_a_bad_burst_is_refused() {
        assert_eq!(Limit::new(10_000, None).unwrap().burst, 200);
        assert_eq!(Limit::new(30, None).unwrap().burst, 1);
        assert!(
            Limit::new(30, Some(31))
                .unwrap_err()
                .contains("between 1 and the rate (30)")
        );
        assert!(Limit::new(30, Some(0)).is_err());
        assert!(
            Limit::new(10_000, Some(19))
                .unwrap_err()
                .contains("between 20 and")
        );
        assert!(Limit::new(0, None).is_err());
    }

    #[test]
    fn a_bucket_of_one_token_serves_every_priority() {
        let l = limit(30, 1);
        for p in [Priority::Low, Priority::Normal, Priority::Urgent] {
            let (_, g) = take_tokens(None, l, 5, p, 0);
            assert_eq!(g, 1, "{p:?}");
        }
    }

    #[test]
    fn exercises_leave_a_fifth_to_real_alerts_which_leave_a_tenth_to_cancels() {
        let l = limit(10, 10);
        let (b, g) = take_tokens(None, l, 100, Priority::Low, 0);
        assert_eq!(g, 8);
        let (b, g) = take_tokens(Some(b), l, 100, Priority::Low, 0);
        assert_eq!(g, 0);
        let (b, g) = take_tokens(Some(b), l, 100, Priority::Normal, 0);
        assert_eq!(g, 1);
        let (_, g) = take_tokens(Some(b), l, 100, Priority::Urgent, 0);
        assert_eq!(g, 1);
    }
}
