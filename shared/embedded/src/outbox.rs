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
use bealert_app::ports::{Gateway, GatewayError, OutboundMessage, Sent};
use bealert_core::{AlertId, Channel, Language, SubscriberId};
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One line of the outbox: api.md's fields first, then ours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxLine {
    pub alert_id: AlertId,
    pub channel: Channel,
    pub to: String,
    pub language: Language,
    pub text: String,
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub subscriber_id: SubscriberId,
    pub key: String,
}

struct State {
    file: File,
    len: u64,
    index: Connection,
}

pub struct OutboxGateway {
    path: PathBuf,
    state: Mutex<State>,
}

const INDEX_SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS sent (key TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS indexed (id INTEGER PRIMARY KEY CHECK (id = 1), offset INTEGER NOT NULL);
";

fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> OpenError + '_ {
    move |e| OpenError::Db {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Adds the keys of complete lines to the index and moves its offset.
fn index_lines(index: &mut Connection, lines: &[u8], offset: u64) -> rusqlite::Result<()> {
    let tx = index.transaction()?;
    {
        let mut insert = tx.prepare_cached("INSERT OR IGNORE INTO sent (key) VALUES (?1)")?;
        for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            #[derive(Deserialize)]
            struct KeyOnly {
                key: String,
            }
            match serde_json::from_slice::<KeyOnly>(line) {
                Ok(l) => {
                    insert.execute([l.key])?;
                }
                Err(e) => tracing::warn!(error = %e, "unreadable outbox line"),
            }
        }
        tx.execute(
            "INSERT INTO indexed (id, offset) VALUES (1, ?1)
             ON CONFLICT (id) DO UPDATE SET offset = excluded.offset",
            [offset as i64],
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
        Ok(Self {
            path,
            state: Mutex::new(State {
                file,
                len: end,
                index,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
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
        let Ok(mut state) = self.state.lock() else {
            return vec![
                Err(GatewayError::Retryable("outbox lock poisoned".into()));
                messages.len()
            ];
        };
        let at = bealert_app::format_ms(bealert_app::now_ms());
        let mut buf = Vec::new();
        let mut fresh: Vec<&str> = Vec::new();
        let mut results = Vec::with_capacity(messages.len());
        for m in messages {
            let seen = match known(&state.index, &m.key) {
                Ok(seen) => seen,
                Err(e) => {
                    results.push(Err(GatewayError::Retryable(format!("outbox index: {e}"))));
                    continue;
                }
            };
            if seen || fresh.contains(&m.key.as_str()) {
                results.push(Ok(Sent::AlreadySent));
                continue;
            }
            if let Some(late) = m.too_late(bealert_app::now_ms()) {
                results.push(Err(late));
                continue;
            }
            let line = OutboxLine {
                alert_id: m.alert_id,
                channel: m.channel,
                to: m.to.clone(),
                language: m.language,
                text: m.text.clone(),
                at: at.clone(),
                subject: m.subject.clone(),
                subscriber_id: m.subscriber_id,
                key: m.key.clone(),
            };
            match serde_json::to_writer(&mut buf, &line) {
                Ok(()) => {
                    buf.push(b'\n');
                    fresh.push(&m.key);
                    results.push(Ok(Sent::Accepted));
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
                    Ok(Sent::Accepted) => {
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
        if let Err(e) = index_lines(&mut state.index, &buf, end) {
            tracing::warn!(error = %e, "outbox index not updated; the next open catches up");
        }
        results
    }
}
