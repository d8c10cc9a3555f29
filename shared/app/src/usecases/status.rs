//! Operations: what a technician of the crisis room looks at first — every
//! queue's depth and dead letters, each channel's limit and recent send
//! rate, and each provider's health (`GET /v1/status`, `bealert status`).
//!
//! Send rates and provider health are what this process has seen: in the
//! AWS home each function instance keeps its own (the queue depths are the
//! queues' own figures, whoever asks).

use super::App;
use crate::AppError;
use crate::ports::QueueDepth;
use crate::providers::ProviderHealth;
use bealert_core::Channel;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusReport {
    pub queues: Vec<QueueStatus>,
    pub channels: BTreeMap<Channel, ChannelStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueStatus {
    pub queue: String,
    #[serde(flatten)]
    pub depth: QueueDepth,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelStatus {
    /// Messages per second at most (`None`: unlimited), and the burst.
    pub limit_per_second: Option<u32>,
    pub burst: Option<u32>,
    /// Messages this process handed over in the last 60 s, and per
    /// second over the last 10 s.
    pub sent_last_minute: u64,
    pub per_second_now: f64,
    pub providers: Vec<ProviderHealth>,
}

/// Seconds a [`SendMeter`] remembers.
const WINDOW: usize = 60;

/// Messages handed over per channel and second, for the last minute.
pub struct SendMeter {
    /// Per channel, a ring of (second, count).
    slots: Mutex<[[(i64, u64); WINDOW]; 3]>,
}

impl Default for SendMeter {
    fn default() -> Self {
        Self {
            slots: Mutex::new([[(i64::MIN, 0); WINDOW]; 3]),
        }
    }
}

impl SendMeter {
    pub fn add(&self, channel: Channel, n: u64, now_ms: i64) {
        if n == 0 {
            return;
        }
        let sec = now_ms.div_euclid(1000);
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let slot = &mut slots[usize::from(channel.index())][sec.rem_euclid(WINDOW as i64) as usize];
        if slot.0 != sec {
            *slot = (sec, 0);
        }
        slot.1 += n;
    }

    /// Messages in the last `secs` whole seconds before `now_ms` (and the
    /// current one).
    pub fn last(&self, channel: Channel, secs: i64, now_ms: i64) -> u64 {
        let now = now_ms.div_euclid(1000);
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots[usize::from(channel.index())]
            .iter()
            .filter(|(s, _)| now.saturating_sub(*s) < secs && *s <= now)
            .map(|(_, n)| n)
            .sum()
    }
}

impl App {
    /// Every queue of bealert's with its depth.
    pub(crate) async fn queue_depths(&self) -> Result<Vec<QueueStatus>, AppError> {
        let mut queues = Vec::new();
        for queue in crate::jobs::all_queues() {
            let depth =
                self.ports.queue.depth(queue).await.map_err(|e| {
                    AppError::Unavailable(format!("queue {queue}: {}", e.message()))
                })?;
            queues.push(QueueStatus {
                queue: queue.to_string(),
                depth,
            });
        }
        Ok(queues)
    }

    pub async fn status(&self) -> Result<StatusReport, AppError> {
        let queues = self.queue_depths().await?;
        let now = self.now_ms();
        let channels = Channel::ALL
            .into_iter()
            .map(|c| {
                let limit = self.budget_limit(c);
                (
                    c,
                    ChannelStatus {
                        limit_per_second: limit.map(|l| l.per_second),
                        burst: limit.map(|l| l.burst),
                        sent_last_minute: self.meter.last(c, WINDOW as i64, now),
                        per_second_now: self.meter.last(c, 10, now) as f64 / 10.0,
                        providers: self.ports.gateways.get(c).providers(),
                    },
                )
            })
            .collect();
        Ok(StatusReport { queues, channels })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_meter_counts_the_last_minute_and_forgets_older_seconds() {
        let m = SendMeter::default();
        let t0 = 1_800_000_000_000;
        m.add(Channel::Sms, 5, t0);
        m.add(Channel::Sms, 7, t0 + 999);
        m.add(Channel::Sms, 3, t0 + 30_000);
        m.add(Channel::Email, 2, t0 + 30_000);
        assert_eq!(m.last(Channel::Sms, 60, t0 + 30_000), 15);
        assert_eq!(m.last(Channel::Sms, 10, t0 + 30_000), 3);
        assert_eq!(m.last(Channel::Email, 60, t0 + 30_000), 2);
        // A minute on, the first second is gone (its slot reused).
        m.add(Channel::Sms, 1, t0 + 60_000);
        assert_eq!(m.last(Channel::Sms, 60, t0 + 60_000), 4);
        assert_eq!(m.last(Channel::Voice, 60, t0 + 60_000), 0);
    }
}
