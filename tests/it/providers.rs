//! Fault injection in the embedded home: a channel with two providers, one
//! failing half its calls (refusing some, timing out after sending others),
//! down for a while, or throttling. Everyone is still reached exactly once,
//! within the retry budget, and the counts add up.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{Api, Server, alert_body, operator, outbox};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const PEOPLE: usize = 200;
const LANGS: [&str; 4] = ["nl", "fr", "de", "en"];

/// `PEOPLE` SMS subscribers in one spot of Brussels.
async fn people(api: &Api) {
    let people: Vec<Value> = (0..PEOPLE)
        .map(|i| {
            json!({
                "external_id": format!("p{i}"), "language": LANGS[i % 4],
                "phone": format!("+3247{:07}", i + 1), "channels": ["sms"],
                "addresses": [{"lat": 50.850, "lon": 4.350}]
            })
        })
        .collect();
    let imported = api
        .post("/v1/subscribers:import", &json!({ "subscribers": people }))
        .await;
    assert_eq!(imported.body["imported"], PEOPLE, "{:?}", imported.body);
}

/// Sends an alert to everyone and waits for it; returns its id and view.
async fn alert(api: &Api) -> (String, Value) {
    let body = alert_body(json!({"circles": [{"lat": 50.851, "lon": 4.353, "radius_km": 1.0}]}));
    let created = api.post("/v1/alerts", &body).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let view = api.wait_sent(&id, Duration::from_secs(90)).await;
    (id, view)
}

/// Every delivery of the alert, by subscriber.
async fn deliveries(api: &Api, id: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/alerts/{id}/deliveries?limit=100&cursor={c}"),
            None => format!("/v1/alerts/{id}/deliveries?limit=100"),
        };
        let page = api.get(&path).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        out.extend(page.body["items"].as_array().unwrap().iter().cloned());
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

/// The alert's outbox lines per provider (`outbox` for the unmarked ones),
/// checking that no key appears twice.
fn outbox_by_provider(dir: &Path, id: &str) -> BTreeMap<String, usize> {
    let mut keys = std::collections::HashSet::new();
    let mut by = BTreeMap::new();
    for line in outbox(dir, "sms") {
        if line["alert_id"] != id {
            continue;
        }
        let key = line["key"].as_str().unwrap().to_string();
        assert!(keys.insert(key.clone()), "{key} left twice: {line}");
        *by.entry(line["provider"].as_str().unwrap_or("outbox").to_string())
            .or_default() += 1;
    }
    by
}

/// Reached exactly once, within the retry budget, and the counts add up.
async fn everyone_once(api: &Api, dir: &Path, id: &str, view: &Value) -> BTreeMap<String, usize> {
    let sms = &view["channels"]["sms"];
    assert_eq!(
        (sms["sent"].as_u64(), sms["failed"].as_u64()),
        (Some(PEOPLE as u64), Some(0)),
        "everyone sent, nobody given up: {view}"
    );
    outbox_by_provider(dir, id);
    let rows = deliveries(api, id).await;
    assert_eq!(rows.len(), PEOPLE);
    let mut recorded: BTreeMap<String, usize> = BTreeMap::new();
    for r in &rows {
        assert_eq!(r["status"], "sent", "{r}");
        *recorded
            .entry(r["provider"].as_str().expect("a provider").to_string())
            .or_default() += 1;
    }
    recorded
}

/// A server whose SMS go through `providers` with `faults` injected, and
/// an alert to `PEOPLE` sent through it: its data directory, server, API,
/// the alert's id and its final view.
async fn run_alert(
    providers: &str,
    faults: &str,
    env: &[(&str, &str)],
) -> (tempfile::TempDir, Server, Api, String, Value) {
    let dir = tempfile::tempdir().unwrap();
    let key = operator(dir.path(), "centre", "national");
    let mut all = vec![
        ("BEALERT_SMS_PROVIDERS", providers),
        ("BEALERT_PROVIDER_FAULTS", faults),
        ("BEALERT_RETRY_BASE_MS", "50"),
    ];
    all.extend_from_slice(env);
    let server = Server::start(dir.path(), &all);
    let api = Api::new(&server.url, &key);
    people(&api).await;
    let (id, view) = alert(&api).await;
    (dir, server, api, id, view)
}

#[tokio::test(flavor = "multi_thread")]
async fn half_the_calls_failing_still_reaches_everyone_once_through_two_providers() {
    // Half of the outbox's calls fail: half of those refused (passed to
    // the backup), half timing out after the message left (kept).
    let (dir, _server, api, id, view) =
        run_alert("outbox,outbox:backup", "outbox:fail=0.5", &[]).await;
    let p = dir.path();
    let recorded = everyone_once(&api, p, &id, &view).await;
    let lines = outbox_by_provider(p, &id);
    assert_eq!(lines.values().sum::<usize>(), PEOPLE, "{lines:?}");
    assert_eq!(
        lines, recorded,
        "each delivery names the provider whose line it is"
    );
    assert!(
        lines.get("backup").copied().unwrap_or(0) > PEOPLE / 10,
        "refusals failed over: {lines:?}"
    );
    assert!(lines["outbox"] > PEOPLE / 3, "{lines:?}");

    // The status shows it: every queue, the SMS sent in the last minute,
    // and each provider's health.
    let status = api.get("/v1/status").await;
    assert_eq!(status.status, 200, "{:?}", status.body);
    let queues = status.body["queues"].as_array().unwrap();
    assert_eq!(queues.len(), bealert_app::jobs::all_queues().len());
    assert!(queues.iter().all(|q| q["dead_letters"] == 0), "{queues:?}");
    let sms = &status.body["channels"]["sms"];
    assert_eq!(
        sms["sent_last_minute"].as_u64(),
        Some(PEOPLE as u64),
        "{sms}"
    );
    let health = sms["providers"].as_array().unwrap();
    let named = |n: &str| health.iter().find(|p| p["name"] == n).unwrap();
    assert_eq!(
        named("outbox")["accepted"].as_u64().unwrap()
            + named("backup")["accepted"].as_u64().unwrap(),
        PEOPLE as u64,
        "{health:?}"
    );
    assert!(
        named("outbox")["refused"].as_u64().unwrap() > 0,
        "{health:?}"
    );
    // The command line prints the same.
    let out = std::process::Command::new(common::BIN)
        .args(["status", "--url", &api.url, "--key", &api.key])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{printed}");
    assert!(
        printed.contains("send-sms") && printed.contains("outbox (accepted"),
        "{printed}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_down_for_a_while_and_a_flaky_backup_still_reach_everyone_once() {
    let (dir, _server, api, id, view) = run_alert(
        "outbox,outbox:backup",
        "outbox:down=3s;backup:fail=0.5",
        &[],
    )
    .await;
    let p = dir.path();
    let recorded = everyone_once(&api, p, &id, &view).await;
    assert_eq!(outbox_by_provider(p, &id), recorded);
    assert!(recorded["backup"] > PEOPLE / 3, "{recorded:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_throttling_provider_hands_over_to_an_sms_aggregator_over_http() {
    // The aggregator: the simulator bealert ships, on a local port.
    let sim = bealert_providers::http_sms::Simulator::with_token(Some("s3cret"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = bealert_providers::http_sms::simulator(sim.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let providers = format!("outbox,http:agg={url}");
    let (dir, _server, api, id, view) = run_alert(
        &providers,
        "outbox:throttle=0.5",
        &[
            ("BEALERT_PROVIDER_TOKEN_AGG", "s3cret"),
            // The aggregator is this process's emulator on 127.0.0.1.
            ("BEALERT_ALLOW_PRIVATE_ENDPOINTS", "1"),
        ],
    )
    .await;
    let p = dir.path();
    let recorded = everyone_once(&api, p, &id, &view).await;
    let taken = sim.taken();
    let lines = outbox_by_provider(p, &id);
    assert_eq!(taken.len() + lines.values().sum::<usize>(), PEOPLE);
    assert_eq!(
        recorded.get("agg").copied(),
        Some(taken.len()),
        "{recorded:?}"
    );
    assert!(taken.len() > PEOPLE / 4, "{}", taken.len());
    // Nobody got it from both.
    let in_outbox: std::collections::HashSet<String> = outbox(p, "sms")
        .iter()
        .filter(|l| l["alert_id"] == id.as_str())
        .map(|l| l["key"].as_str().unwrap().to_string())
        .collect();
    assert!(taken.iter().all(|t| !in_outbox.contains(&t.key)));
    // Each delivery keeps the aggregator's id for its receipts.
    let rows = deliveries(&api, &id).await;
    let ids: std::collections::HashSet<&str> = rows
        .iter()
        .filter(|r| r["provider"] == "agg")
        .map(|r| r["provider_id"].as_str().expect("the aggregator's id"))
        .collect();
    assert_eq!(ids.len(), taken.len());
    assert!(taken.iter().all(|t| ids.contains(t.id.as_str())));
    // It was handed the signed text: the alert's, then the authority's line.
    assert!(
        taken.iter().all(|t| t.text.contains("\ncentre, ")),
        "{:?}",
        taken[0].text
    );
}

/// The Python with aiosmtpd that `tests/smtp.sh` installed.
fn smtp_python() -> std::path::PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/smtp-venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: run tests/smtp.sh (installs aiosmtpd), as tests/run does",
        python.display()
    );
    python
}

/// A real SMTP relay (tests/smtp_relay.py on aiosmtpd) on a free port,
/// writing what it takes to `out`; killed when dropped.
struct Relay {
    child: std::process::Child,
    port: u16,
}

impl Relay {
    fn start(out: &Path, args: &[&str]) -> Relay {
        use std::io::BufRead;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/smtp_relay.py");
        let mut child = std::process::Command::new(smtp_python())
            .arg(script)
            .arg(port.to_string())
            .arg(out)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the relay did not start");
        Relay { child, port }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn e_mail_through_a_real_smtp_relay_reaches_each_address_once_with_failover_and_dead_mailboxes_final()
 {
    const MAILS: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let taken = dir.path().join("relay.jsonl");
    // Every fourth message is greylisted (451): it goes to the next
    // provider, the outbox, at once. Mailboxes at gone.example do not exist.
    let relay = Relay::start(
        &taken,
        &["--account", "bealert:s3cret", "--defer-every", "4"],
    );
    let key = operator(dir.path(), "centre", "national");
    // The test reads deliveries by address: the contacts right.
    common::grant_contacts(dir.path(), "centre");
    let providers = format!("smtp:relay=smtp://127.0.0.1:{},outbox", relay.port);
    let _server = Server::start(
        dir.path(),
        &[
            ("BEALERT_EMAIL_PROVIDERS", &providers),
            ("BEALERT_EMAIL_FROM", "BE-Alert <alerts@be-alert.example>"),
            ("BEALERT_PROVIDER_USER_RELAY", "bealert"),
            ("BEALERT_PROVIDER_TOKEN_RELAY", "s3cret"),
            ("BEALERT_PUBLIC_URL", "https://alert.example"),
            ("BEALERT_RETRY_BASE_MS", "50"),
        ],
    );
    let api = Api::new(&_server.url, &key);
    let gone = |i: usize| i % 10 == 9;
    let address = |i: usize| {
        if gone(i) {
            format!("p{i}@gone.example")
        } else {
            format!("p{i}@example.be")
        }
    };
    let people: Vec<Value> = (0..MAILS)
        .map(|i| {
            json!({
                "external_id": format!("m{i}"), "language": LANGS[i % 4],
                "email": address(i), "channels": ["email"],
                "addresses": [{"lat": 50.850, "lon": 4.350}]
            })
        })
        .collect();
    let imported = api
        .post("/v1/subscribers:import", &json!({ "subscribers": people }))
        .await;
    assert_eq!(imported.body["imported"], MAILS, "{:?}", imported.body);
    let (id, view) = alert(&api).await;
    let dead = (0..MAILS).filter(|i| gone(*i)).count();
    let email = &view["channels"]["email"];
    assert_eq!(
        (email["sent"].as_u64(), email["failed"].as_u64()),
        (Some((MAILS - dead) as u64), Some(dead as u64)),
        "{view}"
    );

    // Each live address got exactly one message, from the relay or the outbox.
    let relayed: Vec<Value> = std::fs::read_to_string(&taken)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut got: BTreeMap<String, String> = BTreeMap::new();
    for m in &relayed {
        let to = m["to"][0].as_str().unwrap().to_string();
        assert_eq!(m["login"], "bealert", "the relay's account was used: {m}");
        assert_eq!(m["from"], "alerts@be-alert.example");
        let data = m["data"].as_str().unwrap();
        for header in [
            "From: BE-Alert <alerts@be-alert.example>",
            "Message-ID: <",
            "List-Unsubscribe: <https://alert.example/",
            "Content-Type: multipart/alternative",
        ] {
            assert!(data.contains(header), "{header} missing: {data}");
        }
        assert!(
            got.insert(to.clone(), "relay".into()).is_none(),
            "{to} twice"
        );
    }
    for line in outbox(dir.path(), "email") {
        if line["alert_id"] != id.as_str() {
            continue;
        }
        let to = line["to"].as_str().unwrap().to_string();
        assert!(
            got.insert(to.clone(), "outbox".into()).is_none(),
            "{to} twice"
        );
    }
    let live: Vec<String> = (0..MAILS).filter(|i| !gone(*i)).map(address).collect();
    assert_eq!(
        got.keys().cloned().collect::<Vec<_>>(),
        {
            let mut l = live.clone();
            l.sort();
            l
        },
        "every live address once, no dead one"
    );
    let via_outbox = got.values().filter(|p| *p == "outbox").count();
    assert!(
        via_outbox > 0 && via_outbox < live.len(),
        "greylisted messages failed over, the rest went through the relay: {got:?}"
    );

    // The deliveries name the provider that took each, and the dead
    // mailboxes failed for good with the relay's words.
    let rows = deliveries(&api, &id).await;
    for r in rows {
        let to = r["to"].as_str().unwrap_or_default();
        if r["status"] == "failed" {
            assert!(
                r["error"].as_str().unwrap_or_default().contains("550"),
                "the relay's reason kept: {r}"
            );
        } else {
            assert_eq!(
                r["provider"].as_str(),
                got.get(to).map(String::as_str),
                "{r}"
            );
        }
    }
}
