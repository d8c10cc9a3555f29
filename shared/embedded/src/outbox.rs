//! Outbox gateways: each "sent" message is one JSON line in
//! `<data dir>/outbox/<channel>.jsonl` (api.md), never twice for one key.
//!
//! The file is the record of what was sent; `<channel>.keys.db` (SQLite)
//! indexes its keys up to a byte offset, so memory stays flat however many
//! messages went out and a restart reads only the lines after that offset
//! (those written just before a crash). A torn last line (a crash
//! mid-write) is cut off, as that message was never completely sent.

use crate::OpenError;
use async_trait::async_trait;
use bealert_app::ports::{Gateway, GatewayError, MessageKind, OutboundMessage, Sent};
use bealert_core::{Channel, Language};
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One line of the outbox: api.md's fields first, then ours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxLine {
    /// `"kind": "alert"` with `alert_id` and `subscriber_id`, or
    /// `"kind": "verification"` (a code in `text`, no alert).
    #[serde(flatten)]
    pub kind: MessageKind,
    pub channel: Channel,
    pub to: String,
    pub language: Language,
    pub text: String,
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// An alert's last line (issuing authority and time), sent after `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    pub key: String,
    /// The provider route that wrote it, when it is not the outbox itself
    /// (a second outbox provider of the channel, [`OutboxRoute`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// E-mail: the self-service page its `List-Unsubscribe` names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsubscribe: Option<String>,
}

/// The index key of a message: a route keeps its own keys, as a second
/// provider would (it knows nothing of what the first one sent).
fn index_key(provider: Option<&str>, key: &str) -> String {
    match provider {
        Some(p) => format!("{p}/{key}"),
        None => key.to_string(),
    }
}

struct State {
    file: File,
    len: u64,
    index: Connection,
}

pub struct OutboxGateway {
    path: PathBuf,
    channel: Channel,
    state: std::sync::Arc<Mutex<State>>,
    /// Stopped (and its hold on `state` let go) when the gateway is dropped.
    _checkpoints: crate::db::Checkpointer,
}

const INDEX_SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA wal_autocheckpoint = 0;
PRAGMA journal_size_limit = 67108864;
CREATE TABLE IF NOT EXISTS sent (key TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sent_at ON sent (at);
CREATE TABLE IF NOT EXISTS indexed (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    offset INTEGER NOT NULL,
    live_since INTEGER NOT NULL
);
";

fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> OpenError + '_ {
    move |e| OpenError::Db {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Adds the keys of complete lines to the index and moves its offset.
fn index_lines(index: &mut Connection, lines: &[u8], offset: u64) -> rusqlite::Result<()> {
    #[derive(Deserialize)]
    struct KeyOnly {
        key: String,
        #[serde(default)]
        provider: Option<String>,
    }
    let keys = lines
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|line| match serde_json::from_slice::<KeyOnly>(line) {
            Ok(l) => Some(index_key(l.provider.as_deref(), &l.key)),
            Err(e) => {
                tracing::warn!(error = %e, "unreadable outbox line");
                None
            }
        });
    index_keys(index, keys, offset)
}

/// Adds keys just written to the index and moves its offset past them.
fn index_keys(
    index: &mut Connection,
    keys: impl IntoIterator<Item = String>,
    offset: u64,
) -> rusqlite::Result<()> {
    let tx = index.transaction()?;
    {
        let now = bealert_app::now_ms();
        let mut insert =
            tx.prepare_cached("INSERT OR IGNORE INTO sent (key, at) VALUES (?1, ?2)")?;
        for key in keys {
            insert.execute(rusqlite::params![key, now])?;
        }
        tx.execute(
            "INSERT INTO indexed (id, offset, live_since) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET offset = excluded.offset",
            [offset as i64, now],
        )?;
    }
    tx.commit()
}

impl OutboxGateway {
    pub fn open(dir: &Path, channel: Channel) -> Result<Self, OpenError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| OpenError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(format!("{channel}.jsonl"));
        let index_path = dir.join(format!("{channel}.keys.db"));
        let mut index = Connection::open(&index_path).map_err(db_err(&index_path))?;
        index
            .execute_batch(INDEX_SCHEMA)
            .map_err(db_err(&index_path))?;
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        let len = file.metadata().map_err(io(&path))?.len();
        let indexed: u64 = index
            .query_row("SELECT offset FROM indexed WHERE id = 1", [], |r| {
                r.get::<_, i64>(0)
            })
            .optional()
            .map_err(db_err(&index_path))?
            .map_or(0, |o| o.max(0) as u64);
        // A file shorter than the index says was replaced: index it anew.
        let from = if indexed <= len { indexed } else { 0 };
        file.seek(SeekFrom::Start(from)).map_err(io(&path))?;
        let mut tail = Vec::new();
        file.read_to_end(&mut tail).map_err(io(&path))?;
        let complete = tail.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        if complete < tail.len() {
            tracing::warn!(path = %path.display(), bytes = tail.len() - complete, "cutting a torn last line");
            file.set_len(from + complete as u64).map_err(io(&path))?;
        }
        let end = from + complete as u64;
        index_lines(&mut index, &tail[..complete], end).map_err(db_err(&index_path))?;
        file.seek(SeekFrom::Start(end)).map_err(io(&path))?;
        let state = std::sync::Arc::new(Mutex::new(State {
            file,
            len: end,
            index,
        }));
        // The index's WAL is copied into it beside the sends, not by them.
        let checkpoints = crate::db::spawn_checkpointer(
            &index_path,
            crate::db::CHECKPOINT_EVERY,
            crate::db::RESTART_AFTER,
            state.clone(),
        )?;
        Ok(Self {
            path,
            channel,
            state,
            _checkpoints: checkpoints,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `outbox/archive/`, where rotated files wait for their expiry.
    fn archive_dir(&self) -> PathBuf {
        self.path
            .parent()
            .map_or_else(|| PathBuf::from("archive"), |d| d.join("archive"))
    }

    /// Moves the live file to `archive/<channel>-<now ms>.jsonl` once its
    /// first line is `older_than` old, and starts a new live file. Keys
    /// stay indexed until they expire, so nothing archived is sent again.
    pub fn rotate(
        &self,
        now_ms: i64,
        older_than: std::time::Duration,
    ) -> std::io::Result<Option<PathBuf>> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| std::io::Error::other("outbox lock poisoned"))?;
        let since: i64 = state
            .index
            .query_row("SELECT live_since FROM indexed WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(std::io::Error::other)?
            .unwrap_or(now_ms);
        let age = now_ms - since;
        if state.len == 0 || age < i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX) {
            return Ok(None);
        }
        let archive = self.archive_dir();
        std::fs::create_dir_all(&archive)?;
        let to = archive.join(format!("{}-{now_ms}.jsonl", self.channel));
        state.file.sync_all()?;
        std::fs::rename(&self.path, &to)?;
        state.file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&self.path)?;
        state.len = 0;
        state
            .index
            .execute(
                "UPDATE indexed SET offset = 0, live_since = ?1 WHERE id = 1",
                [now_ms],
            )
            .map_err(std::io::Error::other)?;
        Ok(Some(to))
    }

    /// Deletes archived files rotated before `cutoff_ms` and forgets keys
    /// indexed before it. Returns the files deleted.
    pub fn expire(&self, cutoff_ms: i64) -> std::io::Result<usize> {
        let prefix = format!("{}-", self.channel);
        let mut deleted = 0;
        if let Ok(entries) = std::fs::read_dir(self.archive_dir()) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().to_string();
                let rotated_at = name
                    .strip_prefix(&prefix)
                    .and_then(|r| r.strip_suffix(".jsonl"))
                    .and_then(|t| t.parse::<i64>().ok());
                if rotated_at.is_some_and(|t| t < cutoff_ms) {
                    std::fs::remove_file(entry.path())?;
                    deleted += 1;
                }
            }
        }
        let state = self
            .state
            .lock()
            .map_err(|_| std::io::Error::other("outbox lock poisoned"))?;
        state
            .index
            .execute("DELETE FROM sent WHERE at < ?1", [cutoff_ms])
            .map_err(std::io::Error::other)?;
        Ok(deleted)
    }

    /// How many messages this outbox holds.
    pub fn sent_count(&self) -> usize {
        self.state
            .lock()
            .ok()
            .and_then(|s| {
                s.index
                    .query_row("SELECT count(*) FROM sent", [], |r| r.get::<_, i64>(0))
                    .ok()
            })
            .map_or(0, |n| n as usize)
    }
}

/// Whether the index holds a key.
fn known(index: &Connection, key: &str) -> rusqlite::Result<bool> {
    index
        .prepare_cached("SELECT 1 FROM sent WHERE key = ?1")?
        .exists([key])
}

#[async_trait]
impl Gateway for OutboxGateway {
    async fn send(&self, messages: &[OutboundMessage]) -> Vec<Result<Sent, GatewayError>> {
        off_the_runtime(|| self.send_as(None, messages))
    }
}

/// Runs blocking file and index work where it does not stall the
/// runtime's other tasks (on a multi-threaded runtime; tests on a
/// current-thread one run it in place).
fn off_the_runtime<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// A second provider of a channel that writes to the same outbox file,
/// each line marked with its name: what a failover test needs to see that
/// no message left through two providers.
pub struct OutboxRoute {
    pub outbox: std::sync::Arc<OutboxGateway>,
    pub name: String,
}

#[async_trait]
impl Gateway for OutboxRoute {
    async fn send(&self, messages: &[OutboundMessage]) -> Vec<Result<Sent, GatewayError>> {
        off_the_runtime(|| self.outbox.send_as(Some(&self.name), messages))
    }
}

impl OutboxGateway {
    fn send_as(
        &self,
        provider: Option<&str>,
        messages: &[OutboundMessage],
    ) -> Vec<Result<Sent, GatewayError>> {
        let Ok(mut state) = self.state.lock() else {
            return vec![
                Err(GatewayError::Retryable("outbox lock poisoned".into()));
                messages.len()
            ];
        };
        let at = bealert_app::format_ms(bealert_app::now_ms());
        let mut buf = Vec::new();
        let mut fresh: std::collections::HashSet<String> = std::collections::HashSet::new();
        // The keys written by this call, in order, for the index.
        let mut written: Vec<String> = Vec::new();
        let mut results = Vec::with_capacity(messages.len());
        for m in messages {
            let ikey = index_key(provider, &m.key);
            let seen = match known(&state.index, &ikey) {
                Ok(seen) => seen,
                Err(e) => {
                    results.push(Err(GatewayError::Retryable(format!("outbox index: {e}"))));
                    continue;
                }
            };
            if seen || fresh.contains(&ikey) {
                results.push(Ok(Sent::AlreadySent));
                continue;
            }
            if let Some(late) = m.too_late(bealert_app::now_ms()) {
                results.push(Err(late));
                continue;
            }
            let line = OutboxLine {
                kind: m.kind,
                channel: m.channel,
                to: m.to.clone(),
                language: m.language,
                text: m.text.clone(),
                at: at.clone(),
                subject: m.subject.clone(),
                signature: m.signature.clone(),
                key: m.key.clone(),
                provider: provider.map(str::to_string),
                unsubscribe: m.unsubscribe.clone(),
            };
            match serde_json::to_writer(&mut buf, &line) {
                Ok(()) => {
                    buf.push(b'\n');
                    fresh.insert(ikey.clone());
                    written.push(ikey);
                    results.push(Ok(Sent::accepted()));
                }
                Err(e) => results.push(Err(GatewayError::Permanent(e.to_string()))),
            }
        }
        if buf.is_empty() {
            return results;
        }
        // One write per batch; a failure is rolled back so no torn line stays.
        let len = state.len;
        if let Err(e) = state.file.write_all(&buf) {
            let _ = state.file.set_len(len);
            let _ = state.file.seek(SeekFrom::Start(len));
            return results
                .into_iter()
                .map(|r| match r {
                    Ok(Sent::Accepted(_)) => {
                        Err(GatewayError::Retryable(format!("outbox write failed: {e}")))
                    }
                    other => other,
                })
                .collect();
        }
        state.len += buf.len() as u64;
        // Written, then indexed: a crash in between is healed on the next
        // open, which indexes the lines past the offset.
        let end = state.len;
        if let Err(e) = index_keys(&mut state.index, written, end) {
            tracing::warn!(error = %e, "outbox index not updated; the next open catches up");
        }
        results
    }
}
