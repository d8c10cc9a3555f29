//! Exactly once, through crashes: `kill -9` of `bealert serve` in the middle
//! of an alert to 20,000 recipients, twice, then a restart; every recipient
//! ends with exactly one outbox line per chosen channel and the alert `sent`.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{Api, Server, operator, outbox};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

const RECIPIENTS: usize = 20_000;
/// Slow enough that a kill lands mid-alert, as an aggregator's contract would be.
const RATES: [(&str, &str); 3] = [
    ("BEALERT_SMS_RATE", "2500"),
    ("BEALERT_EMAIL_RATE", "2500"),
    ("BEALERT_VOICE_RATE", "2500"),
];

fn lines(dir: &Path, channel: &str) -> usize {
    std::fs::read(dir.join("outbox").join(format!("{channel}.jsonl")))
        .map(|b| b.iter().filter(|c| **c == b'\n').count())
        .unwrap_or(0)
}

fn total_lines(dir: &Path) -> usize {
    ["sms", "voice", "email"]
        .iter()
        .map(|c| lines(dir, c))
        .sum()
}

async fn kill_when(server: Server, dir: &Path, at_least: usize) -> usize {
    let start = Instant::now();
    while total_lines(dir) < at_least {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no progress before the kill"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill9();
    total_lines(dir)
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_alert_then_restart_sends_everyone_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let key = operator(dir, "centre", "national");

    // What each citizen chose, by channel: the set of addresses to reach.
    let subs: Vec<_> = bealert_synth::Population::new(11)
        .take(RECIPIENTS)
        .collect();
    let mut expected: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for s in &subs {
        for c in &s.channels {
            let to = if c == "email" {
                s.email.clone()
            } else {
                s.phone.clone()
            };
            expected.entry(c.as_str()).or_default().push(to.unwrap());
        }
    }
    let total: usize = expected.values().map(Vec::len).sum();

    let server = Server::start(dir, &RATES);
    let api = Api::new(&server.url, &key);
    for chunk in subs.chunks(5000) {
        let r = api
            .post("/v1/subscribers:import", &json!({"subscribers": chunk}))
            .await;
        assert_eq!(r.body["imported"], chunk.len(), "{:?}", r.body);
    }
    let country: Value = serde_json::from_str(bealert_synth::BELGIUM_GEOJSON).unwrap();
    let mut body = common::alert_body(json!({"geojson": country}));
    body["messages"]["de"] = json!("Schließen Sie Fenster und Türen");
    let created = api.post("/v1/alerts", &body).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();

    // Crash twice while the alert is under way.
    let at_first_kill = kill_when(server, dir, total / 8).await;
    assert!(
        at_first_kill < total,
        "the first kill came after the alert finished"
    );
    let server = Server::start(dir, &RATES);
    let at_second_kill = kill_when(server, dir, total / 2).await;
    assert!(
        at_second_kill < total,
        "the second kill came after the alert finished"
    );

    // Restart for good, at full speed.
    let server = Server::start(dir, &[]);
    let api = Api::new(&server.url, &key);
    let done = api.wait_sent(&id, Duration::from_secs(300)).await;
    assert_eq!(done["recipients"], RECIPIENTS);

    for (channel, tos) in &expected {
        let lines = outbox(dir, channel);
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for l in &lines {
            assert_eq!(l["alert_id"], id.as_str());
            *seen
                .entry(l["to"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
        let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
        assert!(
            twice.is_empty(),
            "{channel}: sent more than once: {twice:?}"
        );
        let mut want = tos.clone();
        want.sort();
        let got: Vec<String> = seen.keys().cloned().collect();
        assert_eq!(
            got.len(),
            want.len(),
            "{channel}: {} sent, {} expected",
            got.len(),
            want.len()
        );
        assert_eq!(got, want, "{channel}: exactly the recipients who chose it");
        assert_eq!(
            done["channels"][channel]["sent"],
            tos.len(),
            "{channel} counts"
        );
        assert_eq!(done["channels"][channel]["failed"], 0);
        assert_eq!(done["channels"][channel]["queued"], 0);
    }
    eprintln!(
        "killed at {at_first_kill} and {at_second_kill} of {total} messages; all sent exactly once"
    );
}
