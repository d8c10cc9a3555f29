//! The command line of api.md: operator create, serve's lock, demo.
#![allow(clippy::unwrap_used)]

mod common;

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
