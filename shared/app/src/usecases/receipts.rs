//! Delivery receipts: each provider's report of what became of a message
//! moves its delivery to `delivered` (or `failed`, with the reason), and a
//! contact that bounced hard, complained or replied STOP is taken off the
//! channels it failed on, so the next alert does not try it again.
//!
//! A receipt for a message bealert does not know (another system's, one
//! whose delivery expired, a provider it did not go through) is ignored
//! and logged: never an error, never retried.

use super::App;
use crate::ports::{DeliveryRef, ReceiptApplied, ReceiptChange, StoreError};
use bealert_core::receipt::{ContactProblem, Receipt};
use bealert_core::{AlertId, Channel, ChannelSet};
use serde::Serialize;
use std::collections::HashMap;

/// What a batch of receipts did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReceiptReport {
    /// Deliveries moved to `delivered` or `failed`.
    pub applied: u64,
    /// Deliveries already in the receipt's status (a repeated receipt),
    /// or not sent by the time of it.
    pub unchanged: u64,
    /// Receipts naming no delivery bealert knows, or one another provider sent.
    pub ignored: u64,
    /// Contacts taken off a channel (hard bounce, complaint, STOP).
    pub contacts_stopped: u64,
}

/// The environment variable holding the token a provider's webhook must
/// present: `BEALERT_RECEIPT_TOKEN_<NAME>` (upper case, `-` as `_`).
pub fn receipt_token_variable(provider: &str) -> String {
    format!(
        "BEALERT_RECEIPT_TOKEN_{}",
        provider.to_uppercase().replace('-', "_")
    )
}

/// The token a provider's webhook must present: its own variable, else
/// its entry in `BEALERT_RECEIPT_TOKENS` (`NAME=TOKEN,…`, the template's
/// `ReceiptTokens`); `None` (no receipts taken from it) when neither is set.
pub fn receipt_token(provider: &str) -> Option<String> {
    std::env::var(receipt_token_variable(provider))
        .ok()
        .filter(|t| !t.is_empty())
        .or_else(|| {
            token_in_list(
                &std::env::var("BEALERT_RECEIPT_TOKENS").unwrap_or_default(),
                provider,
            )
        })
}

/// A provider's token in a `NAME=TOKEN,…` list.
fn token_in_list(list: &str, provider: &str) -> Option<String> {
    list.split(',')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, token)| name.trim() == provider && !token.is_empty())
        .map(|(_, token)| token.trim().to_string())
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// The delivery an idempotency key (`alert:channel:subscriber`) names.
fn parse_key(key: &str) -> Option<DeliveryRef> {
    let mut parts = key.splitn(3, ':');
    let alert: AlertId = parts.next()?.parse().ok()?;
    let channel = Channel::from_code(parts.next()?)?;
    let subscriber = parts.next()?.parse().ok()?;
    Some(DeliveryRef {
        alert,
        channel,
        subscriber,
    })
}

/// The channels a contact problem on `channel` closes: a dead number takes
/// SMS and voice; a STOP or a complaint only the channel it came on.
fn closed_by(channel: Channel, problem: ContactProblem) -> ChannelSet {
    let mut set = ChannelSet::default();
    set.insert(channel);
    if problem == ContactProblem::Invalid && channel != Channel::Email {
        set.insert(Channel::Sms);
        set.insert(Channel::Voice);
    }
    set
}

impl App {
    /// Applies provider receipts, each once; a repeated one changes nothing.
    pub async fn apply_receipts(&self, receipts: &[Receipt]) -> Result<ReceiptReport, StoreError> {
        let mut report = ReceiptReport::default();
        // Each alert's release time, and whether it is a Test (a canary).
        let mut released: HashMap<AlertId, Option<(i64, bool)>> = HashMap::new();
        for r in receipts {
            let found = match (&r.key, &r.id) {
                (Some(key), _) => parse_key(key),
                (None, Some(id)) => {
                    self.ports
                        .deliveries
                        .find_by_provider_id(&r.provider, id)
                        .await?
                }
                (None, None) => None,
            };
            let Some(d) = found else {
                report.ignored += 1;
                tracing::warn!(provider = %r.provider, id = ?r.id, key = ?r.key, "receipt for an unknown message ignored");
                continue;
            };
            let release = match released.get(&d.alert) {
                Some(at) => *at,
                None => {
                    let at = self.ports.alerts.get_alert_head(d.alert).await?.map(|a| {
                        (
                            a.released_at(),
                            a.spec.status == bealert_core::cap::Status::Test,
                        )
                    });
                    released.insert(d.alert, at);
                    at
                }
            };
            let Some((released_at, test)) = release else {
                report.ignored += 1;
                tracing::warn!(provider = %r.provider, alert = %d.alert, "receipt for a message of an unknown alert ignored");
                continue;
            };
            let now = self.now_ms();
            let change = ReceiptChange {
                provider: r.provider.clone(),
                status: r.status,
                reason: r.reason.clone(),
                at: r.at.unwrap_or(now),
                released_at,
            };
            let contact = match self.ports.deliveries.apply_receipt(d, &change, now).await? {
                ReceiptApplied::Moved { from, to, contact } => {
                    report.applied += 1;
                    if test && to == bealert_core::delivery::DeliveryStatus::Delivered {
                        // A canary arrived: the whole chain works.
                        crate::metrics::test_delivered(d.channel);
                    }
                    tracing::debug!(alert = %d.alert, channel = %d.channel, subscriber = %d.subscriber, ?from, ?to, "receipt applied");
                    contact
                }
                ReceiptApplied::Unchanged { status, contact } => {
                    report.unchanged += 1;
                    tracing::debug!(alert = %d.alert, channel = %d.channel, ?status, "receipt changes nothing");
                    contact
                }
                ReceiptApplied::Foreign { provider } => {
                    report.ignored += 1;
                    tracing::warn!(alert = %d.alert, receipt_from = %r.provider, sent_by = ?provider, "receipt from a provider that did not send the message ignored");
                    continue;
                }
                ReceiptApplied::Unknown => {
                    report.ignored += 1;
                    tracing::warn!(provider = %r.provider, alert = %d.alert, "receipt for an unknown delivery ignored");
                    continue;
                }
            };
            if let Some(problem) = r.problem
                && self.stop_contact(d, &contact, problem).await?
            {
                report.contacts_stopped += 1;
            }
        }
        crate::metrics::receipts(
            report.applied,
            report.unchanged,
            report.ignored,
            report.contacts_stopped,
        );
        Ok(report)
    }

    /// Takes a subscriber's contact off the channels a problem closes, if
    /// the subscriber still has that contact; true if anything changed.
    async fn stop_contact(
        &self,
        d: DeliveryRef,
        contact: &str,
        problem: ContactProblem,
    ) -> Result<bool, StoreError> {
        let closes = closed_by(d.channel, problem);
        for _ in 0..3 {
            let Some(old) = self.ports.subscribers.get_subscriber(d.subscriber).await? else {
                return Ok(false);
            };
            let theirs = match d.channel {
                Channel::Email => old.email.as_deref() == Some(contact),
                Channel::Sms | Channel::Voice => old.phone.as_deref() == Some(contact),
            };
            if !theirs || old.channels.intersection(closes).is_empty() {
                return Ok(false);
            }
            let mut new = old.clone();
            closes.iter().for_each(|c| new.channels.remove(c));
            if self
                .ports
                .subscribers
                .replace_if_unchanged(d.subscriber, &old, &new)
                .await?
            {
                tracing::info!(subscriber = %d.subscriber, channel = %d.channel, problem = problem.as_str(), "contact taken off its channels after a receipt");
                return Ok(true);
            }
        }
        Err(StoreError::Transient(format!(
            "subscriber {} kept changing while a receipt stopped a contact",
            d.subscriber
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bealert_core::SubscriberId;

    #[test]
    fn a_token_list_names_each_providers_token() {
        let list = "agg=s3cret, other = t0ken ,empty=";
        assert_eq!(token_in_list(list, "agg").as_deref(), Some("s3cret"));
        assert_eq!(token_in_list(list, "other").as_deref(), Some("t0ken"));
        assert_eq!(token_in_list(list, "empty"), None);
        assert_eq!(token_in_list(list, "ag"), None);
        assert_eq!(token_in_list("", "agg"), None);
        assert!(
            same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("abc", "ab")
        );
    }

    #[test]
    fn a_key_names_its_delivery_and_nonsense_names_none() {
        let alert = AlertId::new();
        let sub = SubscriberId::time_ordered(1_800_000_000_000, 7);
        let d = parse_key(&format!("{alert}:sms:{sub}")).unwrap();
        assert_eq!(
            (d.alert, d.channel, d.subscriber),
            (alert, Channel::Sms, sub)
        );
        for bad in [
            "",
            "x:sms:1",
            &format!("{alert}:fax:{sub}"),
            &format!("{alert}:sms"),
        ] {
            assert_eq!(parse_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_dead_number_closes_sms_and_voice_and_a_stop_only_sms() {
        let chans = |s: ChannelSet| s.iter().collect::<Vec<_>>();
        assert_eq!(
            chans(closed_by(Channel::Sms, ContactProblem::Invalid)),
            [Channel::Sms, Channel::Voice]
        );
        assert_eq!(
            chans(closed_by(Channel::Sms, ContactProblem::OptedOut)),
            [Channel::Sms]
        );
        assert_eq!(
            chans(closed_by(Channel::Email, ContactProblem::Invalid)),
            [Channel::Email]
        );
        assert_eq!(
            chans(closed_by(Channel::Email, ContactProblem::Complained)),
            [Channel::Email]
        );
    }
}
