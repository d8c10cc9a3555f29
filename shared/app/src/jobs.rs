//! The messages carried by queues between the steps of an alert.

use bealert_core::zone::CoveredCell;
use bealert_core::{AlertId, Channel, Language, SubscriberId};
use serde::{Deserialize, Serialize};

/// The queue that resolves zones into recipients.
pub const RESOLVE_QUEUE: &str = "resolve";

/// The queue of one channel's sender.
pub fn send_queue(channel: Channel) -> &'static str {
    match channel {
        Channel::Sms => "send-sms",
        Channel::Voice => "send-voice",
        Channel::Email => "send-email",
    }
}

/// The queue of Alert-SMS: one job per alert and network, so one network
/// failing or slow holds only its own jobs.
pub const BROADCAST_QUEUE: &str = "broadcast";

/// Every queue, for workers and dead-letter checks.
pub fn all_queues() -> [&'static str; 5] {
    [
        RESOLVE_QUEUE,
        send_queue(Channel::Sms),
        send_queue(Channel::Voice),
        send_queue(Channel::Email),
        BROADCAST_QUEUE,
    ]
}

/// One network's part of one alert, on the broadcast queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BroadcastJob {
    pub alert_id: AlertId,
    pub network: String,
}

/// A job on the resolve queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ResolveJob {
    /// Cover the zone and split it into shards.
    Plan {
        alert_id: AlertId,
        /// When an approval handed the alert over (Unix ms): a plan job
        /// that finds the alert still awaiting approval waits for the move
        /// that follows it, a while.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        approved_at: Option<i64>,
    },
    /// Find the recipients of some cells (and/or groups) and plan their deliveries.
    Shard {
        alert_id: AlertId,
        shard: u32,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        cells: Vec<CoveredCell>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        groups: Vec<String>,
        /// A unit (`level:code`) whose recorded registrants in `part` are
        /// read by key, instead of cells.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unit: Option<String>,
        #[serde(default, skip_serializing_if = "is_zero")]
        part: u32,
    },
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A batch of deliveries for one channel's sender.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendJob {
    pub alert_id: AlertId,
    pub channel: Channel,
    pub deliveries: Vec<SendItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendItem {
    pub subscriber_id: SubscriberId,
    pub to: String,
    pub language: Language,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bodies of a sample SQS event in `events/`.
    fn bodies(event: &str) -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(event).unwrap();
        v["Records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["body"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn the_sample_events_carry_jobs_of_their_queues() {
        let resolve = bodies(include_str!("../../../events/resolve-zone.json"));
        let jobs: Vec<ResolveJob> = resolve
            .iter()
            .map(|b| serde_json::from_str(b).unwrap())
            .collect();
        assert!(matches!(jobs[0], ResolveJob::Plan { .. }));
        assert!(matches!(jobs[1], ResolveJob::Shard { shard: 0, .. }));
        for (event, channel) in [
            (include_str!("../../../events/send-sms.json"), Channel::Sms),
            (
                include_str!("../../../events/send-voice.json"),
                Channel::Voice,
            ),
            (
                include_str!("../../../events/send-email.json"),
                Channel::Email,
            ),
        ] {
            let job: SendJob = serde_json::from_str(&bodies(event)[0]).unwrap();
            assert_eq!(job.channel, channel);
        }
        let job: BroadcastJob =
            serde_json::from_str(&bodies(include_str!("../../../events/send-broadcast.json"))[0])
                .unwrap();
        assert_eq!(job.network, "proximus");
    }
}
