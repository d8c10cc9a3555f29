//! Outbox gateways: each "sent" message is one JSON line in
//! `<data dir>/outbox/<channel>.jsonl` (api.md), never twice for one key.
//!
//! The file is the gateway's memory: on open it is read back to learn every
//! key already sent, and a torn last line (a crash mid-write) is cut off, as
//! that message was never completely sent.

use crate::OpenError;
use async_trait::async_trait;
use bealert_app::ports::{Gateway, GatewayError, OutboundMessage, Sent};
use bealert_core::{AlertId, Channel, Language, SubscriberId};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
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
    keys: HashSet<String>,
}

pub struct OutboxGateway {
    path: PathBuf,
    state: Mutex<State>,
}

impl OutboxGateway {
    pub fn open(dir: &Path, channel: Channel) -> Result<Self, OpenError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| OpenError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(format!("{channel}.jsonl"));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        let mut content = Vec::new();
        file.read_to_end(&mut content).map_err(io(&path))?;
        let complete = content
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        if complete < content.len() {
            tracing::warn!(path = %path.display(), bytes = content.len() - complete, "cutting a torn last line");
            file.set_len(complete as u64).map_err(io(&path))?;
        }
        let mut keys = HashSet::new();
        for line in content[..complete]
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
        {
            match serde_json::from_slice::<OutboxLine>(line) {
                Ok(l) => {
                    keys.insert(l.key);
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "unreadable outbox line")
                }
            }
        }
        file.seek(SeekFrom::Start(complete as u64))
            .map_err(io(&path))?;
        Ok(Self {
            path,
            state: Mutex::new(State {
                file,
                len: complete as u64,
                keys,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many messages this outbox holds.
    pub fn sent_count(&self) -> usize {
        self.state.lock().map(|s| s.keys.len()).unwrap_or(0)
    }
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
            if state.keys.contains(&m.key) || fresh.contains(&m.key.as_str()) {
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
        for k in fresh {
            state.keys.insert(k.to_string());
        }
        results
    }
}
