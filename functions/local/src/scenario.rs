//! Steps shared by `demo` and `bench`: import synthetic citizens, follow an
//! alert with live counts, read back what the outbox holds.

use anyhow::Context;
use bealert_app::App;
use bealert_app::usecases::AlertView;
use bealert_core::alert::AlertState;
use bealert_core::operator::Operator;
use bealert_core::{AlertId, Channel, Language};
use bealert_synth::Population;
use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;
use std::time::{Duration, Instant};

pub fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(
            "  {prefix:>9} [{bar:40}] {pos:>8}/{len:<8} {per_sec:>12} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb.set_prefix(what.to_string());
    pb
}

/// JSON import bodies of `chunk` synthetic subscribers each.
pub fn synthetic_bodies(n: usize, seed: u64, chunk: usize) -> Vec<Vec<u8>> {
    synthetic_bodies_after(0, n, seed, chunk)
}

/// As [`synthetic_bodies`], for the `n` subscribers after the first `skip`
/// of the same population (their phones and ids continue, never repeat).
pub fn synthetic_bodies_after(skip: usize, n: usize, seed: u64, chunk: usize) -> Vec<Vec<u8>> {
    let mut pop = Population::new(seed);
    for _ in (&mut pop).take(skip) {}
    let mut bodies = Vec::with_capacity(n.div_ceil(chunk));
    let mut left = n;
    while left > 0 {
        let k = left.min(chunk);
        let subs: Vec<_> = (&mut pop).take(k).collect();
        bodies.push(
            serde_json::to_vec(&serde_json::json!({ "subscribers": subs })).unwrap_or_default(),
        );
        left -= k;
    }
    bodies
}

pub struct Imported {
    pub imported: usize,
    pub rejected: usize,
    pub elapsed: Duration,
}

/// Import requests a client keeps in flight.
pub const IMPORT_IN_FLIGHT: usize = 3;

/// Imports prepared bodies, a few requests in flight, as a client would.
pub async fn import(
    app: &App,
    op: &Operator,
    bodies: Vec<Vec<u8>>,
    total: usize,
    show: bool,
) -> anyhow::Result<Imported> {
    let pb = if show {
        bar(total as u64, "import")
    } else {
        ProgressBar::hidden()
    };
    let started = Instant::now();
    let mut imported = 0;
    let mut rejected = 0;
    let mut results = futures::stream::iter(bodies)
        .map(|body| async move { app.import_subscribers(op, &body).await })
        .buffer_unordered(IMPORT_IN_FLIGHT);
    while let Some(r) = results.next().await {
        let report = r.map_err(|e| anyhow::anyhow!("import failed: {e}"))?;
        imported += report.imported;
        rejected += report.rejected.len();
        pb.inc((report.imported + report.rejected.len()) as u64);
    }
    pb.finish();
    Ok(Imported {
        imported,
        rejected,
        elapsed: started.elapsed(),
    })
}

/// Follows an alert until it is sent, with a live bar per channel.
pub async fn follow(
    app: &App,
    op: &Operator,
    id: AlertId,
    show: bool,
    timeout: Duration,
) -> anyhow::Result<AlertView> {
    let multi = MultiProgress::new();
    if !show {
        multi.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut bars: BTreeMap<Channel, ProgressBar> = BTreeMap::new();
    let started = Instant::now();
    loop {
        let view = app
            .alert_view(op, &id.to_string())
            .await
            .map_err(|e| anyhow::anyhow!("reading alert {id}: {e}"))?;
        for (channel, counts) in &view.channels {
            let total = counts.queued + counts.sent + counts.failed;
            let pb = bars
                .entry(*channel)
                .or_insert_with(|| multi.add(bar(total, channel.code())));
            pb.set_length(total);
            pb.set_position(counts.sent + counts.failed);
            pb.set_message(format!("failed {}", counts.failed));
        }
        if view.state == AlertState::Sent {
            for pb in bars.values() {
                pb.finish();
            }
            return Ok(view);
        }
        if started.elapsed() > timeout {
            anyhow::bail!("alert {id} still {:?} after {timeout:?}", view.state);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Per language: messages in the outbox for an alert, and when the first
/// and last left (RFC 3339 strings compare in time order).
#[derive(Debug, Default, Clone)]
pub struct LanguageTiming {
    pub count: usize,
    pub first_at: String,
    pub last_at: String,
    pub sample: String,
}

pub fn outbox_by_language(
    path: &Path,
    alert: AlertId,
) -> anyhow::Result<BTreeMap<Language, LanguageTiming>> {
    let mut out: BTreeMap<Language, LanguageTiming> = BTreeMap::new();
    if !path.exists() {
        return Ok(out);
    }
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    for line in std::io::BufReader::new(file).lines() {
        let line = line?;
        let Ok(l) = serde_json::from_str::<bealert_embedded::outbox::OutboxLine>(&line) else {
            continue;
        };
        if l.kind.alert_id() != Some(alert) {
            continue;
        }
        let t = out.entry(l.language).or_default();
        if t.count == 0 || l.at < t.first_at {
            t.first_at = l.at.clone();
            t.sample = l.text.clone();
        }
        if l.at > t.last_at {
            t.last_at = l.at.clone();
        }
        t.count += 1;
    }
    Ok(out)
}

/// Milliseconds between two of our RFC 3339 timestamps.
pub fn ms_between(from: &str, to: &str) -> f64 {
    let parse = |s: &str| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map(|t| t.unix_timestamp_nanos() as f64 / 1e6)
            .unwrap_or(f64::NAN)
    };
    parse(to) - parse(from)
}
