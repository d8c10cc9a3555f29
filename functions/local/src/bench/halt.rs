//! `bealert bench`, the global stop: an exercise on every channel, each
//! busy under its rate limit, is halted (`bealert sending halt`'s path)
//! while it sends; how long after the halt the last message left, per
//! channel, and whether resuming sent each remaining message once.

use crate::scenario;
use bealert_app::App;
use bealert_core::Channel;
use bealert_core::alert::AlertState;
use bealert_core::operator::Operator;
use bealert_embedded::outbox::OutboxLine;
use std::collections::HashSet;
use std::io::BufRead;
use std::path::Path;
use std::time::{Duration, Instant};

/// Every outbox line of one alert on one channel: (when, who).
fn lines_of(
    dir: &Path,
    channel: Channel,
    alert: bealert_core::AlertId,
) -> anyhow::Result<Vec<(String, String)>> {
    let path = dir.join("outbox").join(format!("{channel}.jsonl"));
    let Ok(file) = std::fs::File::open(&path) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let Ok(l) = serde_json::from_str::<OutboxLine>(&line?) else {
            continue;
        };
        if let bealert_app::ports::MessageKind::Alert {
            alert_id,
            subscriber_id,
        } = l.kind
            && alert_id == alert
        {
            out.push((l.at, subscriber_id.to_string()));
        }
    }
    Ok(out)
}

pub async fn run(
    app: &App,
    op: &Operator,
    dir: &Path,
    alert: &serde_json::Value,
) -> anyhow::Result<()> {
    let err = |e: bealert_app::AppError| anyhow::anyhow!("{e}");
    let mut alert = alert.clone();
    alert["channels"] = serde_json::json!(["sms", "voice", "email"]);
    let created = app
        .create_alert(op, alert.to_string().as_bytes())
        .await
        .map_err(err)?;
    let id = created.id.to_string();
    // Halted once every channel that has recipients is sending.
    let started = Instant::now();
    let busy = loop {
        let v = app.alert_view(op, &id).await.map_err(err)?;
        let resolved = v.resolution.shards_total == Some(v.resolution.shards_done);
        let channels: Vec<(Channel, u64, u64)> = v
            .channels
            .iter()
            .map(|(c, s)| (*c, s.sent, s.queued))
            .filter(|(_, sent, queued)| sent + queued > 0)
            .collect();
        if resolved
            && !channels.is_empty()
            && channels
                .iter()
                .all(|(_, sent, queued)| *sent > 0 && *queued > 0)
        {
            break channels;
        }
        if started.elapsed() > Duration::from_secs(120) {
            anyhow::bail!("the alert to halt never got every channel going");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let halted_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    bealert_app::usecases::halt::switch_sending(app.ports.documents.as_ref(), true, "bench", None)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // Long enough for any straggler to show.
    tokio::time::sleep(Duration::from_secs(6)).await;
    println!(
        "\nhalt: an Exercise on {} channels, each busy under its limit, halted while sending:",
        busy.len()
    );
    let mut worst: f64 = 0.0;
    let mut before_resume = Vec::new();
    for (channel, _, _) in &busy {
        let lines = lines_of(dir, *channel, created.id)?;
        let last = lines.iter().map(|(at, _)| at.as_str()).max().unwrap_or("");
        let after = scenario::ms_between(&halted_at, last).max(0.0);
        worst = worst.max(after);
        let after_count = lines
            .iter()
            .filter(|(at, _)| scenario::ms_between(&halted_at, at) > 0.0)
            .count();
        println!(
            "halt: {channel}: {} sent before the halt took effect, the last {after:.0} ms after the halt ({after_count} left after it)",
            lines.len()
        );
        before_resume.push((*channel, lines.len()));
    }
    println!(
        "halt: the last message of any channel left {worst:.0} ms after the halt (goal <= 2,000 ms)"
    );
    let t = Instant::now();
    bealert_app::usecases::halt::switch_sending(app.ports.documents.as_ref(), false, "bench", None)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let view = loop {
        let v = app.alert_view(op, &id).await.map_err(err)?;
        if v.state == AlertState::Sent {
            break v;
        }
        if t.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("the halted alert did not finish within 10 minutes of resuming");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let mut twice = 0;
    for (channel, _) in &before_resume {
        let lines = lines_of(dir, *channel, created.id)?;
        let unique: HashSet<&String> = lines.iter().map(|(_, who)| who).collect();
        twice += lines.len() - unique.len();
    }
    println!(
        "halt: resumed; all {} recipients final {:.2} s later, {twice} messages sent twice",
        view.recipients,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
