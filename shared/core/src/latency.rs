//! Time from an alert's approval to each message sent or delivered, kept as
//! a histogram of log-spaced buckets: stores add one count per message in
//! the same write as its status (no list of a million times to sort), and
//! the percentiles read from it are within a bucket's width (26 %) of the
//! exact ones, always rounded up (never better than measured).

use serde::Serialize;

/// Buckets per histogram. Bucket 0 holds everything up to [`FIRST_MS`];
/// bucket `i` everything up to `FIRST_MS * 2^(i/3)`; the last one everything
/// beyond (about 9 h 30 min).
pub const BUCKETS: usize = 64;

/// The upper bound of the first bucket, in milliseconds.
pub const FIRST_MS: f64 = 10.0;

/// Three buckets per doubling.
const PER_DOUBLING: f64 = 3.0;

/// The upper bound (ms) of bucket `i`; `None` for the last, unbounded one.
pub fn upper_ms(i: usize) -> Option<u64> {
    (i + 1 < BUCKETS).then(|| (FIRST_MS * 2f64.powf(i as f64 / PER_DOUBLING)).ceil() as u64)
}

/// The bucket of a duration in milliseconds (negative counts as 0: a
/// clock a little behind another).
pub fn bucket_of(ms: i64) -> usize {
    let ms = ms.max(0) as f64;
    if ms <= FIRST_MS {
        return 0;
    }
    let i = ((ms / FIRST_MS).log2() * PER_DOUBLING).ceil() as usize;
    // Float rounding can put a bound into the bucket above: correct it.
    let i = if i > 0 && upper_ms(i - 1).is_some_and(|u| ms <= u as f64) {
        i - 1
    } else {
        i
    };
    i.min(BUCKETS - 1)
}

/// The p50/p95/p99 of a histogram (counts per bucket), in milliseconds:
/// the upper bound of the bucket the percentile falls in. For the last
/// bucket, which has no bound, the lower bound is given (at least that).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: u64,
    pub p95_ms: u64,
    pub p99_ms: u64,
    /// The first and the last message, read the same way (the upper bound
    /// of the first and of the last bucket that holds one).
    pub first_ms: u64,
    pub last_ms: u64,
}

pub fn percentiles(counts: &[u64]) -> Option<Percentiles> {
    let count: u64 = counts.iter().sum();
    if count == 0 {
        return None;
    }
    let at = |q: f64| {
        let rank = ((q * count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return upper_ms(i).unwrap_or_else(|| upper_ms(i - 1).unwrap_or(0));
            }
        }
        0
    };
    Some(Percentiles {
        count,
        p50_ms: at(0.50),
        p95_ms: at(0.95),
        p99_ms: at(0.99),
        first_ms: at(0.0),
        last_ms: at(1.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_lands_in_the_bucket_whose_bounds_hold_it() {
        assert_eq!(bucket_of(-5), 0);
        assert_eq!(bucket_of(10), 0);
        assert_eq!(bucket_of(11), 1);
        for ms in [13, 100, 1_000, 2_500, 60_000, 9_000_000, 30_000_000] {
            let i = bucket_of(ms);
            let upper = upper_ms(i).unwrap_or(u64::MAX);
            let lower = if i == 0 { 0 } else { upper_ms(i - 1).unwrap() };
            assert!(
                lower < ms as u64 && ms as u64 <= upper,
                "{ms}: {lower}..{upper}"
            );
        }
        // Every bound is in its own bucket, not the next.
        for i in 0..BUCKETS - 1 {
            assert_eq!(bucket_of(upper_ms(i).unwrap() as i64), i);
        }
        assert_eq!(bucket_of(i64::MAX), BUCKETS - 1);
        // 2.5 hours, the delay this field remembers, is still measured.
        assert!(upper_ms(bucket_of(9_000_000)).is_some());
    }

    #[test]
    fn percentiles_are_never_better_than_measured_and_within_a_bucket() {
        // 1..=1000 seconds, one message each.
        let mut counts = [0u64; BUCKETS];
        for s in 1..=1000i64 {
            counts[bucket_of(s * 1000)] += 1;
        }
        let p = percentiles(&counts).unwrap();
        assert_eq!(p.count, 1000);
        for (got, exact) in [
            (p.p50_ms, 500_000),
            (p.p95_ms, 950_000),
            (p.p99_ms, 990_000),
        ] {
            assert!(got >= exact, "{got} < {exact}");
            assert!((got as f64) <= exact as f64 * 1.26, "{got} vs {exact}");
        }
        // The first message took 1 s, the last 1,000 s.
        assert!(p.first_ms >= 1_000 && p.first_ms as f64 <= 1_000.0 * 1.26);
        assert!(p.last_ms >= 1_000_000 && p.last_ms as f64 <= 1_000_000.0 * 1.26);
        assert_eq!(percentiles(&[0; BUCKETS]), None);
        let mut one = [0u64; BUCKETS];
        one[BUCKETS - 1] = 1;
        assert_eq!(
            percentiles(&one).unwrap().p99_ms,
            upper_ms(BUCKETS - 2).unwrap()
        );
    }
}
