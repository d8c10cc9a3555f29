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

/// Every queue, for workers and dead-letter checks.
pub fn all_queues() -> [&'static str; 4] {
    [
        RESOLVE_QUEUE,
        send_queue(Channel::Sms),
        send_queue(Channel::Voice),
        send_queue(Channel::Email),
    ]
}

/// A job on the resolve queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ResolveJob {
    /// Cover the zone and split it into shards.
    Plan { alert_id: AlertId },
    /// Find the recipients of some cells (and/or groups) and plan their deliveries.
    Shard {
        alert_id: AlertId,
        shard: u32,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        cells: Vec<CoveredCell>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        groups: Vec<String>,
    },
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

    #[test]
    fn sample_events_parse() {
        let resolve: ResolveJob =
            serde_json::from_str(include_str!("../../../events/resolve-shard.json")).unwrap();
        assert!(matches!(resolve, ResolveJob::Shard { shard: 0, .. }));
        let plan: ResolveJob =
            serde_json::from_str(include_str!("../../../events/resolve-plan.json")).unwrap();
        assert!(matches!(plan, ResolveJob::Plan { .. }));
        let send: SendJob =
            serde_json::from_str(include_str!("../../../events/send-sms.json")).unwrap();
        assert_eq!(send.channel, Channel::Sms);
    }
}
