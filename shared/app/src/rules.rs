//! Rules of the delivery stores, decided here once: what a delivery's
//! change of status does to its alert's counts, which changes record a
//! latency, and which resolution shard plans a recipient. Each store
//! executes them in its own transaction (SQL, a conditional write) and
//! never decides them again.

use crate::ports::{Claim, Leg, Outcome, ReceiptApplied, ReceiptChange};
use bealert_core::Language;
use bealert_core::delivery::DeliveryStatus;

/// One count an alert keeps per channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Counter {
    /// Deliveries in a status now ([`crate::ports::ChannelCounts`]).
    Status(DeliveryStatus),
    /// Deliveries ever planned in a language
    /// ([`crate::ports::LanguageCounts::planned`]).
    Planned(Language),
    /// Deliveries in a language that reached a final status
    /// ([`crate::ports::LanguageCounts::finals`]).
    Final(Language, DeliveryStatus),
    /// One bucket ([`bealert_core::latency::bucket_of`]) of a language's
    /// histogram of a leg ([`crate::ports::LanguageCounts::latency`]).
    Latency(Language, Leg, usize),
}

impl Counter {
    /// The histogram bucket a latency of `ms` adds one to.
    pub fn latency(language: Language, leg: Leg, ms: i64) -> Counter {
        Counter::Latency(language, leg, bealert_core::latency::bucket_of(ms))
    }
}

/// What planning one delivery adds: one queued, one planned in its language.
pub fn planned(language: Language) -> [(Counter, i64); 2] {
    [
        (Counter::Status(DeliveryStatus::Queued), 1),
        (Counter::Planned(language), 1),
    ]
}

/// The status a delivery is counted in: one in a sender's hands
/// (`sending`) counts as `queued`, so a claim, and a retry that puts a
/// delivery back, change no count. A store claims without writing its
/// alert's counters (on DynamoDB a claim is then a conditional write of
/// its own, 1 write unit, not an action in a transaction, 2).
pub fn counted_as(status: DeliveryStatus) -> DeliveryStatus {
    match status {
        DeliveryStatus::Sending => DeliveryStatus::Queued,
        other => other,
    }
}

/// What a delivery's move `from` → `to` does to its alert's counts: one
/// less in the status `from` is counted in, one more in `to`'s
/// ([`counted_as`]), and, with its language, the same for the final
/// statuses per language (a late bounce moves a delivered message to
/// failed). No move, no change. The language may be left out only of a
/// move between statuses that are not final (a claim).
pub fn moved(
    from: DeliveryStatus,
    to: DeliveryStatus,
    language: Option<Language>,
) -> Vec<(Counter, i64)> {
    let mut out = Vec::with_capacity(4);
    if from == to {
        return out;
    }
    let (counted_from, counted_to) = (counted_as(from), counted_as(to));
    if counted_from != counted_to {
        out.push((Counter::Status(counted_from), -1));
        out.push((Counter::Status(counted_to), 1));
    }
    if let Some(l) = language {
        if from.is_final() {
            out.push((Counter::Final(l, from), -1));
        }
        if to.is_final() {
            out.push((Counter::Final(l, to), 1));
        }
    }
    out
}

/// Which moves record a latency: a message handed over (a move to
/// `sent`) adds its time since its alert's release to the histogram of
/// [`Leg::ToSent`]; one a receipt confirms (a move to `delivered`), to that
/// of [`Leg::ToDelivered`]. `released_at` is the alert's release
/// ([`crate::ports::AlertRecord::released_at`]; none known, nothing is
/// recorded), `at` when the move happened. Any other move records nothing.
pub fn latency(
    from: DeliveryStatus,
    to: DeliveryStatus,
    released_at: Option<i64>,
    at: i64,
) -> Option<(Leg, i64)> {
    let leg = match to {
        _ if from == to => return None,
        DeliveryStatus::Sent => Leg::ToSent,
        DeliveryStatus::Delivered => Leg::ToDelivered,
        _ => return None,
    };
    released_at.map(|released| (leg, at - released))
}

/// The shard rule. Resolution shards can find the same recipient (one
/// with addresses in two shards, a group member living in the zone). Each
/// shard records itself as the recipient's owner unless one is recorded
/// (a conditional write: the first shard wins), then plans the recipient
/// only if `owner`, the owner recorded after that write, is itself. So
/// nobody is planned twice, and a shard run again (its job redelivered)
/// takes up the recipients it owns.
pub fn plans_recipient(shard: u32, owner: u32) -> bool {
    owner == shard
}

/// Whether a delivery of a recipient this shard owns is still to send:
/// planned just now (`stored`: none was there), or by an earlier run of
/// the shard and not final yet. A final one is never sent again.
pub fn still_to_send(stored: Option<DeliveryStatus>) -> bool {
    stored.is_none_or(|status| !status.is_final())
}

/// The claim rule, the outcome rule and the receipt rule: what every
/// delivery store decides before its conditional write.
impl Claim {
    /// The claim rule, for every store: a final delivery is done, one under
    /// an unexpired lease is busy, anything else is claimed with the next
    /// attempt (the store writes it only if the row is still as read).
    pub fn decide(
        status: DeliveryStatus,
        lease_until: i64,
        attempts: u32,
        provider: Option<String>,
        now: i64,
    ) -> Claim {
        match status {
            DeliveryStatus::Sent
            | DeliveryStatus::Failed
            | DeliveryStatus::Cancelled
            | DeliveryStatus::Delivered => Claim::Done,
            DeliveryStatus::Sending if lease_until > now => Claim::Busy { until: lease_until },
            DeliveryStatus::Queued | DeliveryStatus::Sending => Claim::Claimed {
                attempt: attempts + 1,
                provider,
            },
        }
    }
}

impl Outcome {
    /// What an outcome does to a delivery, for every store: its new status
    /// and the error kept with it.
    pub fn status(&self) -> (DeliveryStatus, Option<&str>) {
        match self {
            Outcome::Sent => (DeliveryStatus::Sent, None),
            Outcome::Failed(e) => (DeliveryStatus::Failed, Some(e)),
            Outcome::Retry(e) => (DeliveryStatus::Queued, Some(e)),
        }
    }
}

impl ReceiptChange {
    /// The receipt rule, for every store: a delivery another provider took
    /// is `Foreign`; otherwise it moves as
    /// [`bealert_core::delivery::after_receipt`] says, or is `Unchanged`.
    /// `Ok(to)`: the store writes the move if the status is still `status`.
    pub fn decide(
        &self,
        status: DeliveryStatus,
        provider: Option<String>,
        contact: String,
    ) -> Result<DeliveryStatus, ReceiptApplied> {
        if provider.as_deref().is_some_and(|p| p != self.provider) {
            return Err(ReceiptApplied::Foreign { provider });
        }
        bealert_core::delivery::after_receipt(status, self.status)
            .ok_or(ReceiptApplied::Unchanged { status, contact })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeliveryStatus::*;

    /// Applies changes to a map of counts.
    fn apply(
        counts: &mut std::collections::BTreeMap<Counter, i64>,
        changes: impl IntoIterator<Item = (Counter, i64)>,
    ) {
        for (c, d) in changes {
            *counts.entry(c).or_default() += d;
        }
        counts.retain(|_, n| *n != 0);
    }

    #[test]
    fn a_delivery_is_counted_once_in_its_status_and_once_per_final_language() {
        let mut counts = std::collections::BTreeMap::new();
        apply(&mut counts, planned(Language::Fr));
        apply(&mut counts, moved(Queued, Sending, None));
        apply(&mut counts, moved(Sending, Sent, Some(Language::Fr)));
        apply(&mut counts, moved(Sent, Delivered, Some(Language::Fr)));
        apply(&mut counts, moved(Delivered, Failed, Some(Language::Fr)));
        assert_eq!(
            counts.into_iter().collect::<Vec<_>>(),
            vec![
                (Counter::Status(Failed), 1),
                (Counter::Planned(Language::Fr), 1),
                (Counter::Final(Language::Fr, Failed), 1),
            ]
        );
    }

    #[test]
    fn only_a_hand_over_and_a_confirmation_record_a_latency() {
        let released = Some(1_000);
        assert_eq!(
            latency(Sending, Sent, released, 1_250),
            Some((Leg::ToSent, 250))
        );
        for from in [Queued, Sending, Sent] {
            assert_eq!(
                latency(from, Delivered, released, 4_000),
                Some((Leg::ToDelivered, 3_000)),
                "{from:?}"
            );
        }
        assert_eq!(
            latency(Sending, Sent, None, 1_250),
            None,
            "no release known"
        );
        for (from, to) in [
            (Queued, Sending),
            (Sending, Queued),
            (Sending, Failed),
            (Delivered, Failed),
            (Queued, Cancelled),
            (Delivered, Delivered),
        ] {
            assert_eq!(
                latency(from, to, released, 9_000),
                None,
                "{from:?} -> {to:?}"
            );
        }
    }

    #[test]
    fn a_recipient_is_planned_by_the_shard_that_owns_them_only() {
        assert!(plans_recipient(3, 3));
        assert!(!plans_recipient(3, 4));
    }

    #[test]
    fn an_owned_delivery_is_sent_unless_it_is_final() {
        assert!(still_to_send(None), "planned just now");
        for st in [Queued, Sending] {
            assert!(still_to_send(Some(st)), "{st:?}");
        }
        for st in [Sent, Failed, Cancelled, Delivered] {
            assert!(!still_to_send(Some(st)), "{st:?}");
        }
    }

    #[test]
    fn a_move_to_the_same_status_counts_nothing() {
        for st in [Queued, Sending, Sent, Failed, Cancelled, Delivered] {
            assert!(moved(st, st, Some(Language::Nl)).is_empty(), "{st:?}");
        }
    }

    #[test]
    fn a_claim_and_a_retry_change_no_count() {
        assert!(
            moved(Queued, Sending, Some(Language::De)).is_empty(),
            "a claim"
        );
        assert!(moved(Queued, Sending, None).is_empty(), "a claim");
        assert!(
            moved(Sending, Queued, Some(Language::De)).is_empty(),
            "a retry"
        );
    }

    #[test]
    fn a_delivery_in_a_senders_hands_leaves_the_queued_count_when_it_ends() {
        assert_eq!(
            moved(Sending, Sent, Some(Language::Fr)),
            vec![
                (Counter::Status(Queued), -1),
                (Counter::Status(Sent), 1),
                (Counter::Final(Language::Fr, Sent), 1)
            ]
        );
        assert_eq!(
            moved(Sending, Cancelled, Some(Language::Nl)),
            vec![
                (Counter::Status(Queued), -1),
                (Counter::Status(Cancelled), 1),
                (Counter::Final(Language::Nl, Cancelled), 1)
            ]
        );
    }

    #[test]
    fn no_sender_claims_a_final_delivery_cancelled_included() {
        for status in [
            DeliveryStatus::Sent,
            DeliveryStatus::Failed,
            DeliveryStatus::Cancelled,
        ] {
            assert_eq!(
                Claim::decide(status, 0, 1, Some("sns".into()), 10),
                Claim::Done,
                "{status:?}"
            );
        }
        assert_eq!(
            Claim::decide(DeliveryStatus::Queued, 0, 1, None, 10),
            Claim::claimed(2)
        );
        // A delivery an earlier attempt may have sent stays with its provider.
        assert_eq!(
            Claim::decide(DeliveryStatus::Queued, 0, 1, Some("sns".into()), 10),
            Claim::Claimed {
                attempt: 2,
                provider: Some("sns".into())
            }
        );
    }
}
