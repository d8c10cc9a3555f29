//! The clock: where the use cases read the time.
//!
//! Every rule that depends on time (an approval expires, a follow-up window
//! closes, a key ends, a lease runs out, a drill falls due, an alert's
//! `expires` passes) asks [`App::now_ms`](crate::App::now_ms), which asks
//! the app's [`Clock`]. Production uses [`SystemClock`], the wall clock (the
//! default of [`App::new`](crate::App::new), so no home sets anything); tests
//! give an app a [`TestClock`] with [`App::with_clock`](crate::App::with_clock)
//! and move it with [`TestClock::advance`] instead of sleeping until a rule
//! fires. Adapters and stores, which have no `App`, read the wall clock
//! through [`crate::now_ms`]; tests that use a `TestClock` therefore pass
//! times to stores explicitly or keep to rules the app decides. No test
//! asserts on elapsed wall-clock time: timing goals live in the benches.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// A source of the current time, in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

/// The wall clock ([`crate::now_ms`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        crate::now_ms()
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug)]
pub struct TestClock(AtomicI64);

impl TestClock {
    /// A clock standing at `ms` (Unix milliseconds).
    pub fn new(ms: i64) -> Self {
        Self(AtomicI64::new(ms))
    }

    /// A clock standing at the wall clock's present moment; stores that read
    /// the wall clock themselves then agree with it until it is advanced.
    pub fn at_now() -> Self {
        Self::new(crate::now_ms())
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sets the clock to `ms` (Unix milliseconds); it may go backwards.
    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_clock_moves_only_when_told() {
        let c = TestClock::new(1_000);
        assert_eq!(c.now_ms(), 1_000);
        c.advance(Duration::from_millis(2_500));
        assert_eq!(c.now_ms(), 3_500);
        c.set(10);
        assert_eq!(c.now_ms(), 10);
    }

    #[test]
    fn system_clock_is_the_wall_clock() {
        let before = crate::now_ms();
        let t = SystemClock.now_ms();
        assert!(t >= before && t <= crate::now_ms());
    }
}
