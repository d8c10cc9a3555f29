//! Deliveries: one message to one subscriber on one channel for one alert.

use crate::{AlertId, Channel, Language, SubscriberId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Planned, waiting for a sender.
    Queued,
    /// Claimed by a sender (under a lease) and being handed to the gateway.
    Sending,
    /// The gateway accepted the message.
    Sent,
    /// Given up: the gateway refused it for good, or retries ran out.
    Failed,
}

impl DeliveryStatus {
    pub fn is_final(self) -> bool {
        matches!(self, DeliveryStatus::Sent | DeliveryStatus::Failed)
    }

    pub fn index(self) -> u8 {
        self as u8
    }

    pub fn from_index(i: u8) -> Option<Self> {
        [Self::Queued, Self::Sending, Self::Sent, Self::Failed]
            .get(usize::from(i))
            .copied()
    }
}

/// The key that makes a delivery happen at most once, at every layer:
/// the delivery record, the queue message and the gateway.
pub fn idempotency_key(alert: AlertId, channel: Channel, subscriber: SubscriberId) -> String {
    format!("{alert}:{channel}:{subscriber}")
}

/// A delivery that resolution planned: who, where, in which language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedDelivery {
    pub subscriber_id: SubscriberId,
    pub channel: Channel,
    /// Phone number (E.164) or e-mail address.
    pub to: String,
    pub language: Language,
}
