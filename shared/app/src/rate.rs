//! Per-channel send rate limits (messages per second), shared by a channel's workers.

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;

pub struct ChannelRate(Option<DefaultDirectRateLimiter>);

impl ChannelRate {
    /// `None` or zero: no limit.
    pub fn new(per_second: Option<u32>) -> Self {
        Self(
            per_second
                .and_then(NonZeroU32::new)
                .map(|n| RateLimiter::direct(Quota::per_second(n))),
        )
    }

    /// Waits until `n` more messages may go out.
    pub async fn acquire(&self, n: usize) {
        if let Some(limiter) = &self.0 {
            for _ in 0..n {
                limiter.until_ready().await;
            }
        }
    }
}
