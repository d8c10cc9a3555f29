//! The command line of api.md: operator create, serve's lock, demo.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{BIN, Server};
use std::process::Command;

fn run(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap()
}

#[test]
fn operator_create_prints_the_key_alone_on_the_last_line_and_stores_only_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &[
            "operator",
            "create",
            "--name",
            "crisis centre",
            "--jurisdiction",
            "national",
        ],
        dir.path(),
    );
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let key = stdout.lines().last().unwrap();
    assert!(
        key.starts_with("bea_") && !key.contains(' ') && key.len() > 40,
        "{key:?}"
    );
    let db = std::fs::read(dir.path().join("store.db")).unwrap();
    let wal = std::fs::read(dir.path().join("store.db-wal")).unwrap_or_default();
    let raw = |b: &[u8]| b.windows(key.len()).any(|w| w == key.as_bytes());
    assert!(!raw(&db) && !raw(&wal), "the key itself must not be stored");

    let again = run(
        &[
            "operator",
            "create",
            "--name",
            "crisis centre",
            "--jurisdiction",
            "national",
        ],
        dir.path(),
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let bad = run(
        &[
            "operator",
            "create",
            "--name",
            "x",
            "--jurisdiction",
            "province:99999",
        ],
        dir.path(),
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("10000 (Antwerpen)"));
}

fn last_line(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    stdout.lines().last().unwrap().to_string()
}

/// Four-eyes needs people, not shared keys: each person of an operator has
/// keys of their own, and a rotated or revoked key is refused by a running
/// server at its next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_have_keys_of_their_own_that_rotate_and_revoke_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let create = [
        "operator",
        "create",
        "--name",
        "crisis centre",
        "--jurisdiction",
        "national",
        "--user",
        "ann",
    ];
    let out = run(&create, p);
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"ann\""));
    let ann = last_line(&out);
    let server = Server::start(p, &[]);
    let preview =
        serde_json::json!({"area": {"circles": [{"lat": 50.85, "lon": 4.35, "radius_km": 1.0}]}});
    let status = |key: String| {
        let (url, body) = (server.url.clone(), preview.clone());
        async move {
            common::Api::new(&url, &key)
                .post("/v1/zones:preview", &body)
                .await
                .status
        }
    };
    assert_eq!(status(ann.clone()).await, 200);

    let bob = last_line(&run(
        &[
            "user",
            "create",
            "--operator",
            "crisis centre",
            "--name",
            "bob",
        ],
        p,
    ));
    assert_ne!(bob, ann);
    assert_eq!(status(bob.clone()).await, 200);
    let again = run(
        &[
            "user",
            "create",
            "--operator",
            "crisis centre",
            "--name",
            "bob",
        ],
        p,
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already has a person named"));
    let nobody = run(
        &["user", "create", "--operator", "nobody", "--name", "bob"],
        p,
    );
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("no operator is named"));

    // Rotation: Bob's old key is refused at once, the new one works.
    let bob2 = last_line(&run(
        &[
            "key",
            "rotate",
            "--operator",
            "crisis centre",
            "--user",
            "bob",
        ],
        p,
    ));
    assert_eq!(status(bob.clone()).await, 401);
    assert_eq!(status(bob2.clone()).await, 200);

    // Revoking one key, then every key of a person; others are untouched.
    assert!(run(&["key", "revoke", "--key", &bob2], p).status.success());
    assert_eq!(status(bob2.clone()).await, 401);
    assert_eq!(status(ann.clone()).await, 200);
    let twice = run(&["key", "revoke", "--key", &bob2], p);
    assert!(String::from_utf8_lossy(&twice.stderr).contains("no person has this key"));
    let out = run(
        &[
            "key",
            "revoke",
            "--operator",
            "crisis centre",
            "--user",
            "ann",
        ],
        p,
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("revoked 1 key"));
    let answer = common::Api::new(&server.url, &ann)
        .post("/v1/zones:preview", &preview)
        .await;
    assert_eq!(answer.status, 401);
    assert!(
        answer.body.to_string().contains("revoked"),
        "{}",
        answer.body
    );
}

#[test]
fn serve_refuses_a_data_dir_another_server_uses() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Server::start(dir.path(), &[]);
    let second = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("another bealert process"));
}

#[test]
fn serve_takes_its_settings_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .arg("serve")
        .env("BEALERT_LISTEN", "127.0.0.1:0")
        .env("BEALERT_DATA_DIR", dir.path())
        .env("BEALERT_BACKEND", "embedded")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        line.starts_with("listening on http://127.0.0.1:"),
        "{line:?}"
    );
    assert!(dir.path().join("store.db").exists());
}

#[test]
fn demo_tours_an_alert_and_reports_reach_and_languages() {
    let out = Command::new(BIN)
        .args(["demo", "--subscribers", "3000"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "registered",
        "by language",
        "recipients",
        "[nl]",
        "[fr]",
        "first at",
    ] {
        assert!(
            stdout.contains(needle),
            "demo output lacks {needle:?}:\n{stdout}"
        );
    }
}

/// `bealert dlq list` shows what dead-lettered and why; `dlq redrive` puts it
/// back on its queue. A build without the AWS home says how to get it.
#[tokio::test]
async fn dlq_lists_and_redrives_dead_letters() {
    use bealert_app::ports::JobQueue;
    let dir = tempfile::tempdir().unwrap();
    let q = bealert_embedded::SqliteQueue::open(&dir.path().join("queue.db"), 2).unwrap();
    q.send("send-sms", &["{\"broken\"".to_string()])
        .await
        .unwrap();
    for n in 0..2 {
        let j = q
            .receive(
                "send-sms",
                1,
                std::time::Duration::from_secs(30),
                std::time::Duration::from_secs(1),
            )
            .await
            .unwrap()
            .pop()
            .unwrap();
        q.retry_after(
            "send-sms",
            &j.receipt,
            std::time::Duration::ZERO,
            &format!("unreadable job {n}"),
        )
        .await
        .unwrap();
    }
    let none = q
        .receive(
            "send-sms",
            1,
            std::time::Duration::from_secs(30),
            std::time::Duration::from_millis(200),
        )
        .await
        .unwrap();
    assert!(none.is_empty(), "dead-lettered");

    let out = run(&["dlq", "list"], dir.path());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("send-sms") && stdout.contains("unreadable job 1"),
        "{stdout}"
    );
    assert!(stdout.contains("1 dead letters"), "{stdout}");

    let out = run(&["dlq", "redrive", "--queue", "send-sms"], dir.path());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("1 dead letters redriven"), "{stdout}");
    assert!(q.dead_letters("send-sms").await.unwrap().is_empty());
    let back = q
        .receive(
            "send-sms",
            1,
            std::time::Duration::from_secs(30),
            std::time::Duration::from_secs(1),
        )
        .await
        .unwrap();
    assert_eq!(back.len(), 1, "back on its queue");

    let out = run(&["dlq", "list", "--queue", "nope"], dir.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no queue \"nope\""));
}

#[cfg(not(feature = "aws"))]
#[test]
fn the_aws_home_in_a_build_without_it_says_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["serve", "--backend", "aws"], dir.path());
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rebuild with --features aws"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A municipality unit: a closed ring of `n` vertices around a point.
fn municipality(code: &str, lat: f64, lon: f64, r: f64, n: usize) -> serde_json::Value {
    let mut ring: Vec<[f64; 2]> = (0..n)
        .map(|i| {
            let a = i as f64 / n as f64 * std::f64::consts::TAU;
            [lon + r * a.cos(), lat + r * 0.64 * a.sin()]
        })
        .collect();
    ring.push(ring[0]);
    serde_json::json!({"type": "Feature",
        "properties": {"code": code, "level": "municipality", "name_nl": format!("Gemeente {code}"), "name_fr": format!("Commune {code}")},
        "geometry": {"type": "Polygon", "coordinates": [ring]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geo_load_adds_municipalities_whose_mayors_then_alert_them() {
    let dir = tempfile::tempdir().unwrap();
    // The shipped units are there on first use.
    let list = run(&["geo", "list"], dir.path());
    let list = String::from_utf8(list.stdout).unwrap();
    for line in [
        "canton\tbastogne\t",
        "province\t10000\t",
        "region\t02000\t",
        "municipality\t21009\t",
    ] {
        assert!(list.contains(line), "{line:?} in\n{list}");
    }
    // Brussels (21004) has no boundary yet: no mayor for it.
    let refused = run(
        &[
            "operator",
            "create",
            "--name",
            "mayor",
            "--jurisdiction",
            "municipality:21004",
        ],
        dir.path(),
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not loaded"));

    // A file with a broken feature loads nothing and names the feature.
    let file = dir.path().join("municipalities.geojson");
    let mut broken = municipality("21015", 50.87, 4.37, 0.01, 8);
    broken["properties"]["level"] = "commune".into();
    let fc = |features: Vec<serde_json::Value>| {
        serde_json::json!({"type": "FeatureCollection", "features": features}).to_string()
    };
    std::fs::write(
        &file,
        fc(vec![municipality("21004", 50.85, 4.35, 0.01, 40), broken]),
    )
    .unwrap();
    let bad = run(&["geo", "load", file.to_str().unwrap()], dir.path());
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("features[1].properties.level"));

    // Brussels, and a 100,000-vertex municipality: both load.
    std::fs::write(
        &file,
        fc(vec![
            municipality("21004", 50.85, 4.35, 0.01, 40),
            municipality("21015", 50.87, 4.38, 0.008, 100_000),
        ]),
    )
    .unwrap();
    let ok = run(&["geo", "load", file.to_str().unwrap()], dir.path());
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        String::from_utf8_lossy(&ok.stdout)
            .contains("loaded 2 units (2 municipality), 100042 vertices"),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let mayor = common::operator(dir.path(), "mayor of Brussels", "municipality:21004");
    let national = common::operator(dir.path(), "crisis centre", "national");

    let server = Server::start(dir.path(), &[]);
    let preview = |key: &str, geocode: &str| {
        let api = common::Api::new(&server.url, key);
        let body = serde_json::json!({"area": {"geocodes": [{"name": "NIS", "value": geocode}]}});
        async move { api.post("/v1/zones:preview", &body).await }
    };
    assert_eq!(preview(&mayor, "21004").await.status, 200);
    let other = preview(&mayor, "21009").await;
    assert_eq!(other.status, 403, "{:?}", other.body);
    assert!(
        other.body["detail"].as_str().unwrap().contains("km²"),
        "{:?}",
        other.body
    );
    let big = preview(&national, "21015").await;
    assert_eq!(big.status, 200, "{:?}", big.body);
}

#[test]
fn status_without_a_server_reads_the_queues_and_says_what_it_cannot_see() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args([
            "status",
            "--url",
            "http://127.0.0.1:9",
            "--key",
            "bea_x",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{printed} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for queue in bealert_app::jobs::all_queues() {
        assert!(printed.contains(queue), "{queue} missing: {printed}");
    }
    assert!(printed.contains("No server answered"), "{printed}");
}

/// Keys end (issue 27, item 7): a key works for its `--valid-for` (90 days
/// unless told), is refused after with a 401 that says how to get another,
/// and `GET /v1/operator` tells when (the console warns 14 days ahead).
/// `key rotate --overlap` lets the old key work a while longer, so that a
/// script can switch without failing; without it the old key ends at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_end_and_rotate_with_an_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let out = run(
        &[
            "operator",
            "create",
            "--name",
            "centre",
            "--jurisdiction",
            "national",
            "--user",
            "ann",
        ],
        p,
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("the key works until"),
        "{out:?}"
    );
    let ann = last_line(&out);
    let server = Server::start(p, &[]);
    let me = |key: String| {
        let url = server.url.clone();
        async move { common::Api::new(&url, &key).get("/v1/operator").await }
    };
    let fresh = me(ann.clone()).await;
    assert_eq!(fresh.status, 200, "{:?}", fresh.body);
    assert!(fresh.body["key_expires_at"].is_string(), "{:?}", fresh.body);
    assert_eq!(fresh.body["key_expires_soon"], false);

    // A key made to last a day works, and is warned about (14 days ahead).
    // That it is refused once it ended, saying so, is
    // clock::an_operator_key_ends_after_its_lifetime (on a test clock,
    // instead of a key of one second and a sleep here).
    let short = last_line(&run(
        &[
            "user",
            "create",
            "--operator",
            "centre",
            "--name",
            "bob",
            "--valid-for",
            "1d",
        ],
        p,
    ));
    let soon = me(short).await;
    assert_eq!(soon.status, 200, "{:?}", soon.body);
    assert_eq!(soon.body["key_expires_soon"], true, "{:?}", soon.body);

    // An overlap longer than 7 days is refused, saying the bound.
    let rotate = |extra: &[&str]| {
        let mut args = vec!["key", "rotate", "--operator", "centre", "--user", "ann"];
        args.extend_from_slice(extra);
        run(&args, p)
    };
    let long = rotate(&["--overlap", "8d"]);
    assert!(!long.status.success());
    assert!(String::from_utf8_lossy(&long.stderr).contains("at most 7 days"));

    // With an overlap both keys work; the old one now ends within the hour.
    let ann2 = last_line(&rotate(&["--overlap", "1h"]));
    let old = me(ann.clone()).await;
    assert_eq!(old.status, 200, "{:?}", old.body);
    assert_eq!(old.body["key_expires_soon"], true, "{:?}", old.body);
    assert_eq!(me(ann2.clone()).await.status, 200);

    // Without one, every old key is refused at once.
    let ann3 = last_line(&rotate(&[]));
    assert_eq!(me(ann.clone()).await.status, 401);
    assert_eq!(me(ann2).await.status, 401);
    assert_eq!(me(ann3).await.status, 200);
}
