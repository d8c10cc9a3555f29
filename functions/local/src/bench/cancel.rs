//! `bealert bench`, cancel latency: an alert to ~100,000 SMS recipients,
//! sent at 10,000 SMS/s, is cancelled once it is resolved and a tenth has
//! gone; from `POST …:cancel` to the first cancel message in the outbox,
//! and whether anyone got the original after their cancel.

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

pub async fn run(
    app: &App,
    op: &Operator,
    dir: &Path,
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
        if started.elapsed() > Duration::from_secs(120) {
            anyhow::bail!("the alert to cancel never got going");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let posted_at = time::OffsetDateTime::now_utc();
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

    // The outbox, in the order the messages left.
    let path = dir.join("outbox").join("sms.jsonl");
    let mut first_cancel: Option<String> = None;
    let mut got_original: HashMap<bealert_core::SubscriberId, usize> = HashMap::new();
    let mut got_cancel: HashMap<bealert_core::SubscriberId, usize> = HashMap::new();
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
        if alert == original.id {
            got_original.insert(who, i);
        } else if alert == cancel.id {
            if first_cancel.as_ref().is_none_or(|f| l.at < *f) {
                first_cancel = Some(l.at.clone());
            }
            got_cancel.insert(who, i);
        }
    }
    let after_cancel = got_original
        .iter()
        .filter(|(who, at)| got_cancel.get(*who).is_some_and(|c| c < at))
        .count();
    let missed = got_original
        .keys()
        .filter(|who| !got_cancel.contains_key(*who))
        .count();
    let posted = posted_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let sms = view.channels.get(&Channel::Sms).cloned();
    println!(
        "\ncancel: an Exercise to {total} SMS recipients at 10,000 SMS/s, cancelled after {sent_then} were sent; POST :cancel answered in {:.1} ms",
        answered.as_secs_f64() * 1000.0
    );
    match &first_cancel {
        Some(first) => println!(
            "cancel: POST :cancel to the first cancel SMS in the outbox: {:.0} ms (goal <= 2,000 ms)",
            scenario::ms_between(&posted, first)
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
    Ok(())
}
