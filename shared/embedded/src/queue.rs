//! A durable job queue in SQLite with SQS semantics: visibility timeouts,
//! receipts, receive counts, delayed retries and a dead-letter table.

use crate::OpenError;
use crate::db::Db;
use async_trait::async_trait;
use bealert_app::ports::{DeadLetter, JobQueue, QueueDepth, QueueError, ReceivedJob, StoreError};
use bealert_core::SubscriberId;
use rusqlite::params;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Receives after which a message moves to the dead-letter table (SQS `maxReceiveCount`).
pub const DEFAULT_MAX_RECEIVES: u32 = 5;
/// How often an idle receive looks again for delayed messages.
const POLL: Duration = Duration::from_millis(100);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    visible_at INTEGER NOT NULL,
    receipt TEXT,
    last_error TEXT,
    enqueued_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (queue, visible_at, id);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    receive_count INTEGER NOT NULL,
    last_error TEXT,
    enqueued_at INTEGER NOT NULL,
    dead_at INTEGER NOT NULL
);
";

pub struct SqliteQueue {
    db: Arc<Db>,
    max_receives: u32,
    wakeups: Mutex<HashMap<String, Arc<Notify>>>,
}

fn qerr(e: StoreError) -> QueueError {
    QueueError::from(e)
}

fn now_ms() -> i64 {
    bealert_app::now_ms()
}

/// Receipts are `<id>:<random>`: only the latest receiver holds the current one.
fn parse_receipt(receipt: &str) -> Result<i64, QueueError> {
    receipt
        .split_once(':')
        .and_then(|(id, _)| id.parse().ok())
        .ok_or_else(|| QueueError::Permanent(format!("{receipt:?} is not a receipt of this queue")))
}

impl SqliteQueue {
    pub fn open(path: &Path, max_receives: u32) -> Result<Self, OpenError> {
        Ok(Self {
            db: Db::open(path, SCHEMA)?,
            max_receives,
            wakeups: Mutex::new(HashMap::new()),
        })
    }

    /// Whether any message of the queue is visible now: a read, so an idle
    /// queue's pollers never take the writer lock.
    async fn any_visible(&self, queue: &str) -> Result<bool, StoreError> {
        let queue = queue.to_string();
        self.db
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM jobs WHERE queue = ?1 AND visible_at <= ?2)",
                )?
                .query_row(params![queue, now_ms()], |r| r.get(0))
            })
            .await
    }

    fn wakeup(&self, queue: &str) -> Arc<Notify> {
        let mut map = self.wakeups.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(queue.to_string()).or_default().clone()
    }

    /// Makes every in-flight or delayed job visible now (crash recovery; see `Embedded::recover`).
    pub async fn release_in_flight(&self) -> Result<u64, StoreError> {
        self.db
            .write(|tx| {
                tx.execute(
                    "UPDATE jobs SET visible_at = ?1 WHERE visible_at > ?1",
                    [now_ms()],
                )
                .map(|n| n as u64)
            })
            .await
    }

    /// Deletes dead letters (job bodies carry phone numbers and e-mail
    /// addresses) dead before `cutoff_ms`. Returns how many.
    pub async fn expire_dead_letters(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        self.db
            .write(move |tx| {
                tx.execute("DELETE FROM dead_letters WHERE dead_at < ?1", [cutoff_ms])
                    .map(|n| n as u64)
            })
            .await
    }

    /// Messages per queue, visible or not (for progress and tests).
    pub async fn depth(&self, queue: &str) -> Result<u64, StoreError> {
        let queue = queue.to_string();
        self.db
            .read(move |c| {
                c.query_row("SELECT count(*) FROM jobs WHERE queue = ?1", [queue], |r| {
                    r.get::<_, i64>(0)
                })
            })
            .await
            .map(|n| n as u64)
    }

    async fn take(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<ReceivedJob>, StoreError> {
        let queue = queue.to_string();
        let max_receives = self.max_receives;
        let vis = visibility.as_millis() as i64;
        self.db
            .write(move |tx| {
                let now = now_ms();
                tx.execute(
                    "INSERT INTO dead_letters (id, queue, body, receive_count, last_error, enqueued_at, dead_at)
                     SELECT id, queue, body, receive_count, last_error, enqueued_at, ?3 FROM jobs
                     WHERE queue = ?1 AND visible_at <= ?3 AND receive_count >= ?2",
                    params![queue, max_receives, now],
                )?;
                tx.execute(
                    "DELETE FROM jobs WHERE queue = ?1 AND visible_at <= ?3 AND receive_count >= ?2",
                    params![queue, max_receives, now],
                )?;
                let mut pick = tx.prepare_cached(
                    "SELECT id FROM jobs WHERE queue = ?1 AND visible_at <= ?2 ORDER BY visible_at, id LIMIT ?3",
                )?;
                let ids: Vec<i64> = pick
                    .query_map(params![queue, now, max as i64], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                let mut take = tx.prepare_cached(
                    "UPDATE jobs SET receive_count = receive_count + 1, visible_at = ?2, receipt = ?3
                     WHERE id = ?1 RETURNING body, receive_count",
                )?;
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    let receipt = format!("{id}:{:016x}", rand::random::<u64>());
                    let (body, receive_count) =
                        take.query_row(params![id, now + vis, receipt], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    out.push(ReceivedJob {
                        id: id.to_string(),
                        receipt,
                        body,
                        receive_count,
                    });
                }
                Ok(out)
            })
            .await
    }
}

#[async_trait]
impl JobQueue for SqliteQueue {
    async fn send(&self, queue: &str, bodies: &[String]) -> Result<(), QueueError> {
        if bodies.is_empty() {
            return Ok(());
        }
        let q = queue.to_string();
        let bodies = bodies.to_vec();
        self.db
            .write(move |tx| {
                let now = now_ms();
                let mut ins = tx.prepare_cached(
                    "INSERT INTO jobs (queue, body, visible_at, enqueued_at) VALUES (?1, ?2, ?3, ?3)",
                )?;
                for b in bodies {
                    ins.execute(params![q, b, now])?;
                }
                Ok(())
            })
            .await
            .map_err(qerr)?;
        self.wakeup(queue).notify_waiters();
        Ok(())
    }

    async fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<ReceivedJob>, QueueError> {
        let deadline = Instant::now() + wait;
        let notify = self.wakeup(queue);
        loop {
            // Register interest before looking, so a send in between is not missed.
            let notified = notify.notified();
            let jobs = if self.any_visible(queue).await.map_err(qerr)? {
                self.take(queue, max.max(1), visibility)
                    .await
                    .map_err(qerr)?
            } else {
                Vec::new()
            };
            let now = Instant::now();
            if !jobs.is_empty() || now >= deadline {
                return Ok(jobs);
            }
            let _ = tokio::time::timeout(POLL.min(deadline - now), notified).await;
        }
    }

    async fn delete(&self, _queue: &str, receipt: &str) -> Result<(), QueueError> {
        let id = parse_receipt(receipt)?;
        let receipt = receipt.to_string();
        self.db
            .write(move |tx| {
                tx.execute(
                    "DELETE FROM jobs WHERE id = ?1 AND receipt = ?2",
                    params![id, receipt],
                )
            })
            .await
            .map(|_| ())
            .map_err(qerr)
    }

    async fn retry_after(
        &self,
        _queue: &str,
        receipt: &str,
        delay: Duration,
        error: &str,
    ) -> Result<(), QueueError> {
        let id = parse_receipt(receipt)?;
        let receipt = receipt.to_string();
        let error = error.to_string();
        let at = now_ms() + delay.as_millis() as i64;
        self.db
            .write(move |tx| {
                tx.execute(
                    "UPDATE jobs SET visible_at = ?3, last_error = ?4 WHERE id = ?1 AND receipt = ?2",
                    params![id, receipt, at, error],
                )
            })
            .await
            .map(|_| ())
            .map_err(qerr)
    }

    async fn postpone(
        &self,
        _queue: &str,
        receipt: &str,
        _body: &str,
        delay: Duration,
    ) -> Result<(), QueueError> {
        let id = parse_receipt(receipt)?;
        let receipt = receipt.to_string();
        let at = now_ms() + delay.as_millis() as i64;
        self.db
            .write(move |tx| {
                tx.execute(
                    "UPDATE jobs SET visible_at = ?3, receive_count = max(receive_count - 1, 0)
                     WHERE id = ?1 AND receipt = ?2",
                    params![id, receipt, at],
                )
            })
            .await
            .map(|_| ())
            .map_err(qerr)
    }

    /// Rewrites the send jobs and dead letters that carry this
    /// subscriber (their bodies hold the contact): the subscriber's entries
    /// go; a job left with none is deleted.
    async fn forget_subscriber(&self, subscriber: SubscriberId) -> Result<u64, QueueError> {
        let needle = format!("%\"subscriber_id\":\"{subscriber}\"%");
        let hex = subscriber.to_string();
        self.db
            .write(move |tx| {
                let mut changed = 0u64;
                for table in ["jobs", "dead_letters"] {
                    let rows: Vec<(i64, String)> = tx
                        .prepare(&format!("SELECT id, body FROM {table} WHERE body LIKE ?1"))?
                        .query_map([&needle], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<Result<_, _>>()?;
                    for (id, body) in rows {
                        let Ok(mut job) = serde_json::from_str::<serde_json::Value>(&body) else {
                            continue;
                        };
                        let Some(items) = job.get_mut("deliveries").and_then(|d| d.as_array_mut())
                        else {
                            continue;
                        };
                        items.retain(|d| d["subscriber_id"].as_str() != Some(hex.as_str()));
                        if items.is_empty() {
                            tx.execute(&format!("DELETE FROM {table} WHERE id = ?1"), [id])?;
                        } else {
                            tx.execute(
                                &format!("UPDATE {table} SET body = ?2 WHERE id = ?1"),
                                params![id, job.to_string()],
                            )?;
                        }
                        changed += 1;
                    }
                }
                Ok(changed)
            })
            .await
            .map_err(qerr)
    }

    async fn redrive(&self, queue: &str, id: &str) -> Result<bool, QueueError> {
        let Ok(id) = id.parse::<i64>() else {
            return Ok(false);
        };
        let queue = queue.to_string();
        let moved = self
            .db
            .write(move |tx| {
                let n = tx.execute(
                    "INSERT INTO jobs (queue, body, visible_at, enqueued_at, last_error)
                     SELECT queue, body, ?3, enqueued_at, last_error FROM dead_letters
                     WHERE id = ?1 AND queue = ?2",
                    params![id, queue, now_ms()],
                )?;
                tx.execute(
                    "DELETE FROM dead_letters WHERE id = ?1 AND queue = ?2",
                    params![id, queue],
                )?;
                Ok(n == 1)
            })
            .await
            .map_err(qerr)?;
        Ok(moved)
    }

    async fn depth(&self, queue: &str) -> Result<QueueDepth, QueueError> {
        let queue = queue.to_string();
        let now = now_ms();
        self.db
            .read(move |c| {
                let (ready, in_flight, delayed) = c
                    .prepare_cached(
                        "SELECT
                             COALESCE(SUM(visible_at <= ?2), 0),
                             COALESCE(SUM(visible_at > ?2 AND receipt IS NOT NULL), 0),
                             COALESCE(SUM(visible_at > ?2 AND receipt IS NULL), 0)
                         FROM jobs WHERE queue = ?1",
                    )?
                    .query_row(params![queue, now], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                        ))
                    })?;
                let dead: i64 = c
                    .prepare_cached("SELECT COUNT(*) FROM dead_letters WHERE queue = ?1")?
                    .query_row([&queue], |r| r.get(0))?;
                Ok(QueueDepth {
                    ready: ready as u64,
                    in_flight: in_flight as u64,
                    delayed: delayed as u64,
                    dead_letters: dead as u64,
                })
            })
            .await
            .map_err(qerr)
    }

    async fn dead_letter(
        &self,
        queue: &str,
        receipt: &str,
        _body: &str,
        error: &str,
    ) -> Result<(), QueueError> {
        let id = parse_receipt(receipt)?;
        let (queue, receipt, error) = (queue.to_string(), receipt.to_string(), error.to_string());
        self.db
            .write(move |tx| {
                let n = tx.execute(
                    "INSERT INTO dead_letters (id, queue, body, receive_count, last_error, enqueued_at, dead_at)
                     SELECT id, queue, body, receive_count, ?4, enqueued_at, ?5 FROM jobs
                     WHERE id = ?1 AND queue = ?2 AND receipt = ?3",
                    params![id, queue, receipt, error, now_ms()],
                )?;
                tx.execute(
                    "DELETE FROM jobs WHERE id = ?1 AND queue = ?2 AND receipt = ?3",
                    params![id, queue, receipt],
                )?;
                Ok(n)
            })
            .await
            .map(|_| ())
            .map_err(qerr)
    }

    async fn dead_letters(&self, queue: &str) -> Result<Vec<DeadLetter>, QueueError> {
        let queue = queue.to_string();
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT id, body, receive_count, last_error FROM dead_letters WHERE queue = ?1 ORDER BY dead_at",
                )?;
                let rows = stmt.query_map([queue], |r| {
                    Ok(DeadLetter {
                        id: r.get::<_, i64>(0)?.to_string(),
                        body: r.get(1)?,
                        receive_count: r.get(2)?,
                        last_error: r.get(3)?,
                    })
                })?;
                rows.collect()
            })
            .await
            .map_err(qerr)
    }
}
