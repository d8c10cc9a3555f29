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
    /// Stopped before it was sent: its alert was cancelled or expired.
    Cancelled,
    /// The provider reported it reached the phone, mailbox or call (a
    /// delivery receipt); a later bounce can still turn it `failed`.
    Delivered,
}

impl DeliveryStatus {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeliveryStatus::Sent
                | DeliveryStatus::Failed
                | DeliveryStatus::Cancelled
                | DeliveryStatus::Delivered
        )
    }

    /// It left bealert: handed over to a provider (and maybe confirmed).
    pub fn left(self) -> bool {
        matches!(self, DeliveryStatus::Sent | DeliveryStatus::Delivered)
    }

    pub fn index(self) -> u8 {
        self as u8
    }

    pub fn from_index(i: u8) -> Option<Self> {
        [
            Self::Queued,
            Self::Sending,
            Self::Sent,
            Self::Failed,
            Self::Cancelled,
            Self::Delivered,
        ]
        .get(usize::from(i))
        .copied()
    }
}

/// What a delivery receipt does to a delivery in `current`: `None` leaves
/// it as it is. A delivered receipt proves the message left, so it also
/// ends a delivery still `sending` (the receipt outran the sender's
/// record, which is then fenced out) or `queued` for a retry (that retry
/// would send it twice). A failure counts only for a message that left:
/// a late bounce turns `delivered` into `failed`; a failure seen while a
/// retry is pending is about an attempt that is being redone.
pub fn after_receipt(
    current: DeliveryStatus,
    receipt: crate::receipt::ReceiptStatus,
) -> Option<DeliveryStatus> {
    use crate::receipt::ReceiptStatus as R;
    use DeliveryStatus::*;
    match (current, receipt) {
        (Queued | Sending | Sent, R::Delivered) => Some(Delivered),
        (Sent | Delivered, R::Failed) => Some(Failed),
        _ => None,
    }
}

/// The key that makes a delivery happen at most once, at every layer:
/// the delivery record, the queue message and the gateway.
pub fn idempotency_key(alert: AlertId, channel: Channel, subscriber: SubscriberId) -> String {
    format!("{alert}:{channel}:{subscriber}")
}

/// How many buckets an alert's deliveries of one channel are spread over,
/// so that no single storage partition takes every write of a large alert.
pub const DELIVERY_BUCKETS: u8 = 16;

/// The bucket of a subscriber's deliveries: a stable hash of the id.
/// Deliveries are listed by (channel, bucket, subscriber).
pub fn bucket(subscriber: SubscriberId) -> u8 {
    let mixed = (subscriber.as_i64() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (mixed >> 60) as u8 % DELIVERY_BUCKETS
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_spread_time_ordered_ids_evenly() {
        let mut counts = [0u32; DELIVERY_BUCKETS as usize];
        for i in 0..16_000u64 {
            counts[usize::from(bucket(SubscriberId::time_ordered(
                1_800_000_000_000 + (i / 7) as i64,
                i,
            )))] += 1;
        }
        assert!(counts.iter().all(|c| (700..1300).contains(c)), "{counts:?}");
    }

    #[test]
    fn receipts_end_what_left_and_never_revive_what_was_stopped() {
        use crate::receipt::ReceiptStatus::{Delivered as D, Failed as F};
        use DeliveryStatus::*;
        assert_eq!(after_receipt(Sent, D), Some(Delivered));
        assert_eq!(after_receipt(Sending, D), Some(Delivered));
        assert_eq!(after_receipt(Queued, D), Some(Delivered));
        assert_eq!(after_receipt(Delivered, D), None);
        assert_eq!(after_receipt(Sent, F), Some(Failed));
        assert_eq!(after_receipt(Delivered, F), Some(Failed));
        for st in [Queued, Sending, Failed, Cancelled] {
            assert_eq!(after_receipt(st, F), None, "{st:?}");
        }
        assert_eq!(after_receipt(Cancelled, D), None);
        assert_eq!(after_receipt(Failed, D), None);
    }

    #[test]
    fn a_cancelled_delivery_is_final_and_keeps_its_stored_index() {
        // Stored indexes never move: new statuses go at the end.
        let all = [
            (DeliveryStatus::Queued, 0, false),
            (DeliveryStatus::Sending, 1, false),
            (DeliveryStatus::Sent, 2, true),
            (DeliveryStatus::Failed, 3, true),
            (DeliveryStatus::Cancelled, 4, true),
            (DeliveryStatus::Delivered, 5, true),
        ];
        for (status, index, is_final) in all {
            assert_eq!(status.index(), index);
            assert_eq!(DeliveryStatus::from_index(index), Some(status));
            assert_eq!(status.is_final(), is_final, "{status:?}");
        }
        assert_eq!(DeliveryStatus::from_index(6), None);
        assert_eq!(
            serde_json::to_value(DeliveryStatus::Cancelled).unwrap(),
            "cancelled"
        );
    }
}
