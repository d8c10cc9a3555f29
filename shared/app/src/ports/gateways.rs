//! Gateways: what a message is, what sending it found, and the channels' send
//! budgets.

use super::StoreError;
use async_trait::async_trait;
use bealert_core::AlertId;
use bealert_core::Channel;
use bealert_core::Language;
use bealert_core::SubscriberId;
use std::sync::Arc;

/// What a message is for. Alerts name their alert and recipient; a
/// verification code goes to a contact that belongs to nobody yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MessageKind {
    Alert {
        alert_id: AlertId,
        subscriber_id: SubscriberId,
    },
    Verification,
    /// A self-service link, sent on request to a verified contact.
    SelfService,
    /// To an operator's approvers: an alert waits for a second person.
    Approval {
        alert_id: AlertId,
    },
}

impl MessageKind {
    /// The alert this message belongs to, if it is an alert.
    pub fn alert_id(&self) -> Option<AlertId> {
        match self {
            MessageKind::Alert { alert_id, .. } => Some(*alert_id),
            MessageKind::Verification | MessageKind::SelfService | MessageKind::Approval { .. } => {
                None
            }
        }
    }
}

/// A message for a gateway.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutboundMessage {
    /// Unique per message (`alert:channel:subscriber` for alerts); a
    /// gateway never sends one key twice.
    pub key: String,
    #[serde(flatten)]
    pub kind: MessageKind,
    pub channel: Channel,
    pub to: String,
    pub language: Language,
    pub subject: Option<String>,
    pub text: String,
    /// An alert's last line: its issuing authority and Belgian time
    /// (`Crisiscentrum, 29/11/2026 10:00`). Gateways send it after the
    /// text ([`OutboundMessage::body`]); the outbox keeps it apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Unix ms after which the message must not be handed over: the claim
    /// it is sent under may then belong to another sender. A gateway
    /// answers a later message `Retryable` without sending it.
    pub not_after: i64,
    /// The provider an earlier attempt may have reached: only it may be
    /// asked again ([`crate::providers::ProviderChain`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// E-mail: the self-service page where the recipient manages or stops
    /// their registration (`List-Unsubscribe`, and a line under the text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsubscribe: Option<String>,
}

impl OutboundMessage {
    /// What the recipient gets: the text, then the signature on its own line.
    pub fn body(&self) -> String {
        bealert_core::message::signed(&self.text, self.signature.as_deref())
    }

    /// What a gateway answers for a message whose claim may have run out.
    pub fn too_late(&self, now_ms: i64) -> Option<GatewayError> {
        (now_ms > self.not_after).then(|| {
            GatewayError::Retryable("not sent: the claim's lease ran out before its turn".into())
        })
    }
}

/// Who took a message: a provider of the channel (see
/// [`crate::providers::ProviderChain`]) and the provider's own id for it,
/// which its delivery receipts name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Handover {
    pub provider: String,
    pub id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Taken; the provider's name is filled in by the provider chain.
    Accepted(Handover),
    /// The key had been sent before: nothing was sent again.
    AlreadySent,
}

impl Sent {
    /// Taken, with no id of the provider's.
    pub fn accepted() -> Self {
        Sent::Accepted(Handover::default())
    }

    /// Taken, under the provider's id for it.
    pub fn accepted_as(id: impl Into<String>) -> Self {
        Sent::Accepted(Handover {
            provider: String::new(),
            id: Some(id.into()),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// A transient failure after which the message may or may not have
    /// left (a timeout, a server error): it is retried with the same
    /// provider only.
    #[error("temporary failure: {0}")]
    Retryable(String),
    /// The provider certainly did not take it (it is down, or refuses this
    /// account): the next provider of the channel may send it at once.
    #[error("not taken: {0}")]
    Refused(String),
    /// A [`GatewayError::Retryable`] of a named provider of a chain: the
    /// message stays pinned to that provider.
    #[error("unsure whether {provider} sent it: {reason}")]
    Unsure { provider: String, reason: String },
    /// The provider asks to slow down: retried with backoff, and not counted
    /// against the delivery's attempts (only a far larger cap applies).
    #[error("throttled: {0}")]
    Throttled(String),
    #[error("refused: {0}")]
    Permanent(String),
}

/// What a chain has seen of one provider, for `bealert status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProviderHealth {
    pub name: String,
    pub accepted: u64,
    pub refused: u64,
    pub unsure: u64,
    pub throttled: u64,
    pub permanent: u64,
    /// Calls refused in a row: after [`crate::providers::SKIP_AFTER`] the
    /// chain passes the provider by for [`crate::providers::SKIP_FOR`] (it
    /// is still asked when it is the last).
    pub refused_in_a_row: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Whether the chain passes it by now.
    pub skipped: bool,
}

#[async_trait]
pub trait Gateway: Send + Sync {
    /// Sends messages; one result per message, in order.
    async fn send(&self, messages: &[OutboundMessage]) -> Vec<Result<Sent, GatewayError>>;

    /// What a provider chain has seen of each of its providers.
    fn providers(&self) -> Vec<ProviderHealth> {
        Vec::new()
    }
}

/// A channel's send budget, shared by every sender of the channel (all
/// Lambda instances, or every worker of a process): at most the channel's
/// limit of messages in any second. The rule is [`crate::rate::take_tokens`].
#[async_trait]
pub trait SendBudget: Send + Sync {
    /// The channel's limit; `None` is unlimited.
    fn limit(&self, channel: Channel) -> Option<crate::limit::Limit>;
    /// The channel's messages per second; `None` is unlimited.
    fn rate(&self, channel: Channel) -> Option<u32> {
        self.limit(channel).map(|l| l.per_second)
    }
    /// Takes up to `n` messages' worth at `now_ms`; returns how many were
    /// granted (0 when the budget is spent for now).
    async fn take(
        &self,
        channel: Channel,
        n: u32,
        priority: crate::limit::Priority,
        now_ms: i64,
    ) -> Result<u32, StoreError>;
    /// `n` messages [`take`](Self::take) granted were handed over (or
    /// dropped unsent) at `now_ms`. A budget that paces by hand-over
    /// counts them from now; the default ignores it.
    fn handed(&self, channel: Channel, n: u32, now_ms: i64) {
        let _ = (channel, n, now_ms);
    }
}

/// One gateway per channel.
#[derive(Clone)]
pub struct Gateways {
    pub sms: Arc<dyn Gateway>,
    pub voice: Arc<dyn Gateway>,
    pub email: Arc<dyn Gateway>,
}

impl Gateways {
    pub fn get(&self, channel: Channel) -> &Arc<dyn Gateway> {
        match channel {
            Channel::Sms => &self.sms,
            Channel::Voice => &self.voice,
            Channel::Email => &self.email,
        }
    }
}
