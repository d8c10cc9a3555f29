//! The messages carried by queues between the steps of an alert.

use bealert_core::outlet::OutletKind;
use bealert_core::zone::CoveredCell;
use bealert_core::{AlertId, Channel, Language, SubscriberId};
use serde::{Deserialize, Serialize};

/// The queue that resolves zones into recipients.
pub const RESOLVE_QUEUE: &str = "resolve";

/// A send queue's priority. A cancel must not wait behind the messages of
/// the alert it cancels, and a real alert not behind an exercise: each
/// channel has a queue per lane, every home serves them side by side, and
/// the channel's rate budget keeps a reserve for the higher lanes
/// ([`crate::limit::Priority`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lane {
    /// Cancels, of any alert.
    Cancel,
    /// `Actual` alerts and their updates.
    Actual,
    /// Exercises and tests.
    Routine,
}

impl Lane {
    pub const ALL: [Lane; 3] = [Lane::Cancel, Lane::Actual, Lane::Routine];

    pub fn of(spec: &bealert_core::alert::AlertSpec) -> Lane {
        use bealert_core::cap::{MsgType, Status};
        match (spec.msg_type, spec.status) {
            (MsgType::Cancel, _) => Lane::Cancel,
            (_, Status::Actual) => Lane::Actual,
            _ => Lane::Routine,
        }
    }
}

/// The queue of one channel's sender for `Actual` alerts (the queue every
/// send job used before lanes).
pub fn send_queue(channel: Channel) -> &'static str {
    send_queue_in(channel, Lane::Actual)
}

/// The queue of one channel's sender in one lane.
pub fn send_queue_in(channel: Channel, lane: Lane) -> &'static str {
    match (channel, lane) {
        (Channel::Sms, Lane::Cancel) => "send-sms-cancel",
        (Channel::Sms, Lane::Actual) => "send-sms",
        (Channel::Sms, Lane::Routine) => "send-sms-routine",
        (Channel::Voice, Lane::Cancel) => "send-voice-cancel",
        (Channel::Voice, Lane::Actual) => "send-voice",
        (Channel::Voice, Lane::Routine) => "send-voice-routine",
        (Channel::Email, Lane::Cancel) => "send-email-cancel",
        (Channel::Email, Lane::Actual) => "send-email",
        (Channel::Email, Lane::Routine) => "send-email-routine",
    }
}

/// The channel and lane of a send queue.
pub fn send_lane(queue: &str) -> Option<(Channel, Lane)> {
    Channel::ALL.into_iter().find_map(|c| {
        Lane::ALL
            .into_iter()
            .find(|l| send_queue_in(c, *l) == queue)
            .map(|l| (c, l))
    })
}

/// The queue of Alert-SMS: one job per alert and network, so one network
/// failing or slow holds only its own jobs.
pub const BROADCAST_QUEUE: &str = "broadcast";

/// The queue of one public channel: one job per alert and outlet, so a
/// slow social network never holds a siren.
pub fn public_queue(kind: OutletKind) -> &'static str {
    match kind {
        OutletKind::Social => "public-social",
        OutletKind::Siren => "public-siren",
        OutletKind::Sign => "public-sign",
    }
}

/// The public channel of a queue.
pub fn public_kind(queue: &str) -> Option<OutletKind> {
    OutletKind::ALL
        .into_iter()
        .find(|k| public_queue(*k) == queue)
}

/// Every queue, for workers and dead-letter checks.
pub fn all_queues() -> Vec<&'static str> {
    let mut all = vec![RESOLVE_QUEUE];
    for c in Channel::ALL {
        all.extend(Lane::ALL.map(|l| send_queue_in(c, l)));
    }
    all.push(BROADCAST_QUEUE);
    all.extend(OutletKind::ALL.map(public_queue));
    all
}

/// The queue a message named by its full name (e.g. an SQS ARN's last
/// part, `bealert-prod-send-sms-cancel`) belongs to: the longest of
/// [`all_queues`] it ends with.
pub fn queue_named(full: &str) -> Option<&'static str> {
    all_queues()
        .into_iter()
        .filter(|q| full.ends_with(q))
        .max_by_key(|q| q.len())
}

/// One network's part of one alert, on the broadcast queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BroadcastJob {
    pub alert_id: AlertId,
    pub network: String,
}

/// One outlet's part of one alert, on its channel's public queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicJob {
    pub alert_id: AlertId,
    pub outlet: String,
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

    #[test]
    fn every_lane_has_its_queue_and_a_full_name_finds_it() {
        assert_eq!(all_queues().len(), 14);
        assert_eq!(
            queue_named("bealert-prod-public-siren"),
            Some("public-siren")
        );
        assert_eq!(public_kind("public-sign"), Some(OutletKind::Sign));
        assert_eq!(public_kind("broadcast"), None);
        for q in all_queues() {
            assert_eq!(queue_named(&format!("bealert-prod-{q}")), Some(q));
        }
        assert_eq!(
            send_lane("send-sms-cancel"),
            Some((Channel::Sms, Lane::Cancel))
        );
        assert_eq!(
            send_lane("send-email"),
            Some((Channel::Email, Lane::Actual))
        );
        assert_eq!(send_lane("resolve"), None);
        assert_eq!(queue_named("elsewhere"), None);
    }

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
