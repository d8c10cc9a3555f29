//! `bealert bench`, cancel latency: an alert to ~100,000 SMS recipients,
//! sent at 10,000 SMS/s, is cancelled once it is resolved and a tenth has
//! gone; from `POST …:cancel` to the first cancel message, and whether
//! anyone got the original after their cancel.
//!
//! The embedded home reads when each message left from its outbox; the AWS
//! home (whose messages go to SNS) from the time each delivery was
//! recorded sent, a little after its message left.

use crate::scenario;
use bealert_app::App;
use bealert_core::Channel;
use bealert_core::alert::AlertState;
use bealert_core::lifecycle::FollowUp;
use bealert_core::operator::Operator;
use bealert_embedded::outbox::OutboxLine;
use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;
use std::time::{Duration, Instant};

/// Where the bench reads when each message left.
pub enum Sent<'a> {
    /// The embedded home's SMS outbox file.
    Outbox(&'a Path),
    /// The deliveries as recorded (the AWS home), and what DynamoDB
    /// consumed meanwhile.
    Recorded(Option<&'a super::Costs>),
}

pub async fn run(
    app: &App,
    op: &Operator,
    sent: Sent<'_>,
    alert: &serde_json::Value,
) -> anyhow::Result<()> {
    let err = |e: bealert_app::AppError| anyhow::anyhow!("{e}");
    let original = app
        .create_alert(op, alert.to_string().as_bytes())
        .await
        .map_err(err)?;
    let id = original.id.to_string();
    // Cancelled once every recipient is known and a tenth has gone: the
    // rest is still queued or being sent.
    let started = Instant::now();
    let (total, sent_then) = loop {
        let v = app.alert_view(op, &id).await.map_err(err)?;
        let sms = v.channels.get(&Channel::Sms).cloned();
        let total = v.recipients;
        let resolved = v.resolution.shards_total == Some(v.resolution.shards_done);
        if let Some(s) = sms
            && resolved
            && total > 0
            && v.state.may_send()
            && s.sent * 10 >= total
        {
            break (total, s.sent);
        }
        // The AWS emulators resolve 34,000 recipients in over two minutes.
        if started.elapsed() > Duration::from_secs(900) {
            anyhow::bail!(
                "the alert to cancel was not resolved with a tenth sent within 15 minutes"
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let posted_at = time::OffsetDateTime::now_utc();
    let posted_ms = bealert_app::now_ms();
    let capacity_before = match &sent {
        Sent::Recorded(Some(c)) => Some(c.capacity()),
        _ => None,
    };
    let t = Instant::now();
    let cancel = app
        .follow_up_alert(op, &id, FollowUp::Cancel, b"{}", "bench")
        .await
        .map_err(err)?;
    let answered = t.elapsed();
    let cancel_id = cancel.id.to_string();
    // Both final: the original's deliveries all sent or cancelled, the cancel sent.
    let view = loop {
        let o = app.alert_view(op, &id).await.map_err(err)?;
        let c = app.alert_view(op, &cancel_id).await.map_err(err)?;
        let pending = o.channels.values().map(|c| c.queued).sum::<u64>();
        if c.state == AlertState::Sent && pending == 0 {
            break o;
        }
        if t.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("the cancel did not finish within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let took = t.elapsed();

    // When each recipient got the original and the cancel (ms since the
    // epoch), and the first cancel message.
    let (got_original, got_cancel, first_cancel_ms) = match &sent {
        Sent::Outbox(dir) => from_outbox(dir, original.id, cancel.id, &posted_at)?,
        Sent::Recorded(_) => {
            let (o, _) = recorded(app, op, &id).await?;
            let (c, first) = recorded(app, op, &cancel_id).await?;
            (o, c, first.map(|f| (f - posted_ms) as f64))
        }
    };
    let after_cancel = got_original
        .iter()
        .filter(|(who, at)| got_cancel.get(*who).is_some_and(|c| c < at))
        .count();
    let missed = got_original
        .keys()
        .filter(|who| !got_cancel.contains_key(*who))
        .count();
    let sms = view.channels.get(&Channel::Sms).cloned();
    let pace = match sent {
        Sent::Outbox(_) => "at 10,000 SMS/s",
        Sent::Recorded(_) => "at the emulators' pace",
    };
    println!(
        "\ncancel: an Exercise to {total} SMS recipients {pace}, cancelled after {sent_then} were sent; POST :cancel answered in {:.1} ms",
        answered.as_secs_f64() * 1000.0
    );
    let seen = match sent {
        Sent::Outbox(_) => "in the outbox",
        Sent::Recorded(_) => "recorded sent",
    };
    match first_cancel_ms {
        Some(ms) => println!(
            "cancel: POST :cancel to the first cancel SMS {seen}: {ms:.0} ms (goal <= 2,000 ms)"
        ),
        None => println!("cancel: no cancel SMS left (nobody had been reached)"),
    }
    println!(
        "cancel: original {} sent, {} cancelled; {} cancel SMS to the {} reached, {} reached without one, {} got the original after their cancel; all final in {:.2} s",
        sms.as_ref().map_or(0, |s| s.sent),
        sms.as_ref().map_or(0, |s| s.cancelled),
        got_cancel.len(),
        got_original.len(),
        missed,
        after_cancel,
        took.as_secs_f64()
    );
    if let (Sent::Recorded(Some(costs)), Some(before)) = (&sent, capacity_before) {
        // Stopping the original's unsent deliveries: in transactions of up
        // to 99, not one per delivery.
        let after = costs.capacity();
        let cancelled = sms.as_ref().map_or(0, |s| s.cancelled).max(1) as f64;
        let (mut transactions, mut units) = (0, 0.0);
        for ((table, op), (_, w, n)) in &after {
            if op == "TransactWriteItems" && table.ends_with("deliveries") {
                let (_, w0, n0) = before
                    .get(&(table.clone(), op.clone()))
                    .copied()
                    .unwrap_or_default();
                transactions += n - n0;
                units += w - w0;
            }
        }
        // The cancel's own messages are planned, claimed and recorded in
        // the same table meanwhile: the figure covers both.
        let cancels = got_cancel.len() as f64;
        println!(
            "cancel: deliveries table meanwhile (stopping {cancelled:.0} and sending {cancels:.0} cancel SMS): {transactions} transactions, {units:.0} write units, {:.3} transactions per delivery touched (batches of up to 99, not one each)",
            transactions as f64 / (cancelled + cancels).max(1.0)
        );
    }
    Ok(())
}

type Times = HashMap<bealert_core::SubscriberId, i64>;

/// From the outbox, in the order the messages left: when each recipient
/// got the original and the cancel (the line's position stands for the
/// order), and the first cancel message's time after `posted`.
fn from_outbox(
    dir: &Path,
    original: bealert_core::AlertId,
    cancel: bealert_core::AlertId,
    posted: &time::OffsetDateTime,
) -> anyhow::Result<(Times, Times, Option<f64>)> {
    let path = dir.join("outbox").join("sms.jsonl");
    let mut first_cancel: Option<String> = None;
    let mut got_original = Times::new();
    let mut got_cancel = Times::new();
    let file = std::fs::File::open(&path)?;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        let Ok(l) = serde_json::from_str::<OutboxLine>(&line) else {
            continue;
        };
        let bealert_app::ports::MessageKind::Alert {
            alert_id: alert,
            subscriber_id: who,
        } = l.kind
        else {
            continue;
        };
        if alert == original {
            got_original.insert(who, i as i64);
        } else if alert == cancel {
            if first_cancel.as_ref().is_none_or(|f| l.at < *f) {
                first_cancel = Some(l.at.clone());
            }
            got_cancel.insert(who, i as i64);
        }
    }
    let posted = posted
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let first = first_cancel.map(|f| scenario::ms_between(&posted, &f));
    Ok((got_original, got_cancel, first))
}

/// From an alert's deliveries as recorded: when each recipient's SMS was
/// recorded as handed over, and the earliest.
async fn recorded(app: &App, op: &Operator, id: &str) -> anyhow::Result<(Times, Option<i64>)> {
    let mut out = Times::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = app
            .deliveries_page_from(op, id, cursor.as_deref(), Some(500), "bench")
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for d in page.items {
            if d.channel == Channel::Sms && d.status.left() {
                out.insert(d.subscriber_id, d.updated_at);
            }
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let first = out.values().min().copied();
    Ok((out, first))
}
