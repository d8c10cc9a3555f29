//! What a channel's send budget is asked in: the channel's limit and the
//! caller's priority. The port ([`crate::ports::SendBudget`]) and the
//! token-bucket rule ([`crate::rate`]) both use these.

use crate::jobs::Lane;

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
    pub fn of(lane: Lane) -> Self {
        match lane {
            Lane::Cancel => Priority::Urgent,
            Lane::Actual => Priority::Normal,
            Lane::Routine => Priority::Low,
        }
    }
}

/// A channel's limit: at most `per_second` messages in any second, however
/// the second is cut. A bucket holds `burst` tokens and refills at
/// `per_second - burst + 1` a second, so the fullest second carries the
/// burst plus the refill less the one token still to come: the limit,
/// never more. (A bucket whose burst equals its rate would let a second
/// carry up to twice the limit.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub per_second: u32,
    pub burst: u32,
    /// A warm-up (ms; 0 = none): after a whole ramp without sending, the
    /// channel starts at a tenth of its rate and reaches it linearly over
    /// the ramp (mail providers distrust a cold sender that bursts).
    pub ramp_ms: i64,
}

impl Limit {
    /// The default burst: a fiftieth of a second's worth (at least one), so
    /// a channel runs at 98 % of its limit and a sender starts at once. The
    /// smallest is 2 ms worth: senders ask every 2 ms, and a bucket that
    /// fills sooner would waste what it cannot hold.
    pub fn new(per_second: u32, burst: Option<u32>) -> Result<Self, String> {
        if per_second == 0 {
            return Err("a rate limit must be at least 1 message per second".into());
        }
        let least = per_second.div_ceil(500).max(1);
        let burst = burst.unwrap_or((per_second / 50).max(least));
        if burst < least || burst > per_second {
            return Err(format!(
                "the burst must be between {least} and the rate ({per_second}), not {burst}"
            ));
        }
        Ok(Self {
            per_second,
            burst,
            ramp_ms: 0,
        })
    }

    /// The same limit with a warm-up of `secs` seconds (0: none).
    pub fn with_ramp(mut self, secs: u32) -> Self {
        self.ramp_ms = i64::from(secs) * 1000;
        self
    }

    /// Tokens added per second.
    pub fn refill(&self) -> f64 {
        f64::from(self.per_second - self.burst + 1)
    }
}
