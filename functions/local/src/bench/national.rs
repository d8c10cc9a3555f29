//! `bealert bench`, the whole country: an Exercise to every SMS recipient in
//! Belgium (topped up to at least 1,000,000), once from a server with a
//! 10,000 SMS/s limit, as a user would run `serve --sms-rate 10000`, and
//! once unlimited for the raw dispatch rate. Figures from the outbox: the
//! fullest second, and the time from creation to each message.

use crate::local::{Home, Local, Tuning};
use crate::scenario;
use bealert_core::alert::AlertState;
use bealert_core::operator::Operator;
use bealert_core::{AlertId, Channel};
use bealert_embedded::outbox::OutboxLine;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;
use std::time::{Duration, Instant};

/// What the outbox holds of one alert.
struct Spread {
    count: usize,
    /// Milliseconds from the alert's creation to each message, sorted.
    after_ms: Vec<f64>,
    /// The most messages any calendar second of the outbox holds.
    peak_second: usize,
}

fn spread(path: &Path, alert: AlertId, created_at: &str) -> anyhow::Result<Spread> {
    let mut per_second: BTreeMap<String, usize> = BTreeMap::new();
    let mut after_ms = Vec::new();
    let mut at_ms: BTreeMap<String, f64> = BTreeMap::new();
    let file = std::fs::File::open(path)?;
    for line in std::io::BufReader::new(file).lines() {
        let line = line?;
        let Ok(l) = serde_json::from_str::<OutboxLine>(&line) else {
            continue;
        };
        if l.kind.alert_id() != Some(alert) {
            continue;
        }
        // `at` is RFC 3339 to the millisecond: its first 19 characters
        // name the second.
        *per_second
            .entry(l.at[..19.min(l.at.len())].to_string())
            .or_default() += 1;
        let ms = *at_ms
            .entry(l.at.clone())
            .or_insert_with(|| scenario::ms_between(created_at, &l.at));
        after_ms.push(ms);
    }
    after_ms.sort_by(f64::total_cmp);
    Ok(Spread {
        count: after_ms.len(),
        after_ms,
        peak_second: per_second.values().copied().max().unwrap_or(0),
    })
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// SMS recipients of the whole country, as a client's preview finds them.
async fn national_sms(
    app: &bealert_app::App,
    op: &Operator,
    area: &serde_json::Value,
) -> anyhow::Result<u64> {
    let body = serde_json::json!({ "area": area }).to_string();
    let p = app
        .preview(op, body.as_bytes())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(p.by_channel.get(&Channel::Sms).copied().unwrap_or(0))
}

pub async fn run(dir: &Path, op: &Operator, imported: usize, want: u64) -> anyhow::Result<()> {
    // The three regions by NIS code: the whole country, read by key.
    let area = serde_json::json!({"geocodes": [
        {"name": "NIS", "value": "02000"}, {"name": "NIS", "value": "03000"}, {"name": "NIS", "value": "04000"}
    ]});
    let outbox = dir.join("outbox").join("sms.jsonl");
    for (label, rate) in [("10,000 SMS/s limit", Some(10_000)), ("no limit", None)] {
        let local = Local::start(
            &Home::Embedded(dir.to_path_buf()),
            &Tuning {
                sms_rate: rate,
                // As `serve` would run with the same environment.
                send_concurrency: std::env::var("BEALERT_SEND_CONCURRENCY")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(Tuning::default().send_concurrency),
                ..Tuning::default()
            },
        )
        .await?;
        let app = local.app.clone();
        let mut have = national_sms(&app, op, &area).await?;
        if have < want {
            // Nine in ten synthetic subscribers take SMS: top up the
            // population (not timed) until the country holds `want`.
            let extra = ((want - have) as f64 / 0.88) as usize + 1000;
            println!(
                "\nnational: {have} SMS recipients in Belgium; importing {extra} more subscribers (not timed)"
            );
            let bodies = tokio::task::spawn_blocking(move || {
                scenario::synthetic_bodies_after(imported, extra, 1, 10_000)
            })
            .await?;
            scenario::import(&app, op, bodies, extra, true).await?;
            have = national_sms(&app, op, &area).await?;
        }
        let limit = app.budget_limit(Channel::Sms);
        let alert = serde_json::json!({
            "status": "Exercise", "event": "Benchmark", "severity": "Severe", "urgency": "Immediate", "certainty": "Observed",
            "messages": {"nl": "Oefening: sluit ramen en deuren.", "fr": "Exercice : fermez portes et fenetres.", "de": "Ubung: Fenster schliessen.", "en": "Exercise: close windows and doors."},
            "area": area, "channels": ["sms"]
        });
        let t = Instant::now();
        let created = app
            .create_alert(op, alert.to_string().as_bytes())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let view = scenario::follow(&app, op, created.id, true, Duration::from_secs(1200)).await?;
        let took = t.elapsed().as_secs_f64();
        local.stop().await;
        anyhow::ensure!(
            view.state == AlertState::Sent,
            "the national alert did not finish"
        );
        let s = spread(&outbox, created.id, &view.created_at)?;
        let (sent, failed) = view
            .channels
            .get(&Channel::Sms)
            .map_or((0, 0), |c| (c.sent, c.failed));
        let first = s.after_ms.first().copied().unwrap_or(f64::NAN);
        let last = s.after_ms.last().copied().unwrap_or(f64::NAN);
        println!(
            "\nnational, {label}{}: {have} SMS recipients, {} sent, {} failed; creation to state sent in {took:.1} s{}",
            limit.map_or(String::new(), |l| format!(" (burst {})", l.burst)),
            sent,
            failed,
            if rate.is_some() {
                " (goal <= 110 s)"
            } else {
                ""
            }
        );
        println!(
            "national, {label}: {} outbox lines, the fullest second holds {}{}",
            s.count,
            s.peak_second,
            rate.map_or(String::new(), |r| format!(" (goal <= {r})"))
        );
        println!(
            "national, {label}: creation to outbox p50 {:.1} s, p95 {:.1} s, p99 {:.1} s; first +{:.0} ms (goal <= 500 ms), last +{:.1} s; {:.0} SMS/s from first to last{}",
            pct(&s.after_ms, 0.50) / 1000.0,
            pct(&s.after_ms, 0.95) / 1000.0,
            pct(&s.after_ms, 0.99) / 1000.0,
            first,
            last / 1000.0,
            s.count as f64 / ((last - first) / 1000.0).max(0.001),
            if rate.is_none() {
                " (raw dispatch, goal >= 25,000/s)"
            } else {
                ""
            }
        );
    }
    Ok(())
}
