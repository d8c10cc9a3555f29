//! Test harness: the real `bealert` binary on a temporary data directory.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_bealert");

/// Creates an operator through the CLI and returns its key (the last stdout line).
pub fn operator(dir: &Path, name: &str, jurisdiction: &str) -> String {
    created(
        dir,
        &[
            "operator",
            "create",
            "--name",
            name,
            "--jurisdiction",
            jurisdiction,
        ],
    )
}

/// Gives an operator's first person the `contacts` right besides the
/// defaults (tests that read deliveries by phone number or address).
pub fn grant_contacts(dir: &Path, operator: &str) {
    created(
        dir,
        &[
            "user",
            "update",
            "--operator",
            operator,
            "--name",
            operator,
            "--may",
            "send,approve,admin,contacts",
        ],
    );
}

/// Creates a mobile network through the CLI and returns its key.
pub fn network(dir: &Path, name: &str) -> String {
    created(dir, &["network", "create", "--name", name])
}

/// Runs a `create` command on the data directory; its last stdout line (the key).
pub fn created(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .expect("run bealert");
    assert!(
        out.status.success(),
        "bealert {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string()
}

pub struct Server {
    pub child: Child,
    pub url: String,
    pub dir: PathBuf,
}

impl Server {
    /// Starts `bealert serve` on a free port and waits for its `listening on`
    /// line; with `BEALERT_APPROVAL=none` unless `env` sets it.
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> Server {
        let log = std::fs::File::create(dir.join(format!("serve-{}.log", std::process::id()))).ok();
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(log.map_or(Stdio::null(), Stdio::from));
        // Tests of delivery have one person per operator: their servers
        // need no second one unless a test sets BEALERT_APPROVAL itself.
        cmd.env("BEALERT_APPROVAL", "none");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn bealert serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.to_string());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("bealert serve printed no 'listening on' line");
        Server {
            child,
            url,
            dir: dir.to_path_buf(),
        }
    }

    /// SIGKILL: no shutdown hook runs.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Api {
    pub url: String,
    pub key: String,
    client: reqwest::Client,
}

pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
}

impl Api {
    pub fn new(url: &str, key: &str) -> Api {
        Api {
            url: url.to_string(),
            key: key.to_string(),
            client: reqwest::Client::new(),
        }
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
        key: Option<&str>,
        content_type: Option<&str>,
    ) -> Answer {
        let mut req = self.client.request(method, format!("{}{path}", self.url));
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = res.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
        Answer {
            status,
            content_type,
            body,
        }
    }

    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.send(
            reqwest::Method::POST,
            path,
            Some(body.to_string().into_bytes()),
            Some(&self.key),
            Some("application/json"),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, None, Some(&self.key), None)
            .await
    }

    /// Polls an alert until it is `sent`.
    pub async fn wait_sent(&self, id: &str, timeout: Duration) -> Value {
        let start = Instant::now();
        loop {
            let a = self.get(&format!("/v1/alerts/{id}")).await;
            assert_eq!(a.status, 200, "{:?}", a.body);
            if a.body["state"] == "sent" {
                return a.body;
            }
            assert!(
                start.elapsed() < timeout,
                "alert not sent after {timeout:?}: {}",
                a.body
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The outbox lines of a channel, parsed.
pub fn outbox(dir: &Path, channel: &str) -> Vec<Value> {
    let path = dir.join("outbox").join(format!("{channel}.jsonl"));
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("an outbox line is JSON"))
        .collect()
}

/// An `Actual` alert (test servers send it at once: see [`Server::start`]).
pub fn alert_body(area: Value) -> Value {
    serde_json::json!({
        "status": "Actual", "event": "Chemical leak", "severity": "Severe",
        "urgency": "Immediate", "certainty": "Observed",
        "messages": {"nl": "Sluit ramen en deuren", "fr": "Fermez portes et fenêtres", "en": "Close windows and doors"},
        "area": area
    })
}

/// A `Test` alert by SMS over a 1 km circle in Brussels, as a request body.
pub fn drill_body(event: &str) -> Vec<u8> {
    serde_json::json!({"status": "Test", "event": event, "severity": "Minor", "urgency": "Future",
        "certainty": "Possible", "messages": {"nl": "Test"}, "channels": ["sms"],
        "area": {"circles": [{"lat": 50.85, "lon": 4.35, "radius_km": 1}]}})
    .to_string()
    .into_bytes()
}

/// Starts a poller per queue for an in-process app; cancel the token to stop them.
pub fn workers(
    app: &std::sync::Arc<bealert_app::App>,
    retry_base: Duration,
) -> tokio_util::sync::CancellationToken {
    let stop = tokio_util::sync::CancellationToken::new();
    // The resolver and every lane of every channel (not the networks).
    for q in bealert_app::jobs::all_queues()
        .into_iter()
        .filter(|q| *q != bealert_app::jobs::BROADCAST_QUEUE)
    {
        let mut opts = bealert_app::worker::WorkerOptions::new(q, 2);
        opts.wait = Duration::from_millis(50);
        opts.retry_base = retry_base;
        tokio::spawn(bealert_app::worker::run(app.clone(), opts, stop.clone()));
    }
    stop
}
