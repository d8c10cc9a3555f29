//! Metrics as tracing events of target [`TARGET`]: each home decides what
//! they become. The Lambda functions turn them into CloudWatch metrics in
//! the embedded metric format (`bealert_aws::lambda::EmfLayer`); `serve`
//! logs them like any event.
//!
//! Every event names its metrics in `metrics` (comma-separated, each a
//! numeric field of the event) and its dimensions in `dimensions`.

use bealert_core::Channel;

/// The tracing target of metric events.
pub const TARGET: &str = "bealert::metrics";

/// One batch of a channel's deliveries recorded: sent, failed for good,
/// left for a retry.
pub fn sent(channel: Channel, sent: u64, failed: u64, retried: u64) {
    sent_on(channel.code(), sent, failed, retried)
}

/// [`sent`] on any channel by name: a public channel (`social`, `siren`,
/// `sign`) too.
pub fn sent_on(channel: &str, sent: u64, failed: u64, retried: u64) {
    tracing::info!(
        target: TARGET,
        metrics = "Sent,Failed,Retried",
        dimensions = "Channel",
        Channel = channel,
        Sent = sent,
        Failed = failed,
        Retried = retried,
        "deliveries recorded"
    );
}

/// One batch of delivery receipts applied.
pub fn receipts(applied: u64, unchanged: u64, ignored: u64, contacts_stopped: u64) {
    tracing::info!(
        target: TARGET,
        metrics = "ReceiptsApplied,ReceiptsUnchanged,ReceiptsIgnored,ContactsStopped",
        dimensions = "",
        ReceiptsApplied = applied,
        ReceiptsUnchanged = unchanged,
        ReceiptsIgnored = ignored,
        ContactsStopped = contacts_stopped,
        "receipts applied"
    );
}

/// A `Test` alert's message reached its recipient (a delivery receipt): a
/// heartbeat canary arrived, end to end. No dimension, so one alarm
/// watches every channel.
pub fn test_delivered(channel: Channel) {
    tracing::info!(
        target: TARGET,
        metrics = "TestDelivered",
        dimensions = "",
        TestDelivered = 1u64,
        channel = channel.code(),
        "a Test message was delivered"
    );
}

/// A verification code (or self-service link) handed to the signup's own
/// gateways. Its sum over an hour is what the signup's budget counts.
pub fn signup_code_sent(channel: Channel) {
    tracing::info!(
        target: TARGET,
        metrics = "SignupCodesSent",
        dimensions = "",
        SignupCodesSent = 1u64,
        channel = channel.code(),
        "a verification code was sent"
    );
}

/// Signups or codes refused because the hour's budget of codes was spent:
/// a flood of signups (or a budget too small for a real rush). The
/// template alarms on any.
pub fn signup_codes_refused(refused: u64) {
    tracing::info!(
        target: TARGET,
        metrics = "SignupCodesRefused",
        dimensions = "",
        SignupCodesRefused = refused,
        "the signup's hourly budget of codes is spent"
    );
}
