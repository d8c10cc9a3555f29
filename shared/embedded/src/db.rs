//! SQLite connections: one writer, a few readers (WAL), used from async code
//! through blocking threads.

use crate::OpenError;
use bealert_app::ports::StoreError;
#[cfg(test)]
use rusqlite::params;
use rusqlite::{Connection, ErrorCode};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub(crate) struct Db {
    path: PathBuf,
    writer: Arc<Mutex<Connection>>,
    readers: Mutex<Vec<Connection>>,
    /// Its thread shares the writer: dropping it stops the thread, and
    /// the last of the connections to close checkpoints and removes the
    /// WAL, as SQLite does.
    _checkpoints: Checkpointer,
}

/// How often the background checkpointer copies the WAL into the
/// database: seldom enough that a page written over and over (an index's
/// top, a counter) is copied about once a second, not at every write.
pub(crate) const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// WAL pages (4 KiB) after which the log is made to start again.
pub(crate) const RESTART_AFTER: i64 = 16_384;

/// Copies a database's WAL into the file on a thread of its own, so that
/// no commit pays for a whole checkpoint: writers run with
/// `wal_autocheckpoint = 0`, and every second a passive checkpoint copies
/// the pages written since, and fsyncs, beside them. A log only starts
/// again once it is all copied when a write begins; under a steady stream
/// of writes that moment never comes by itself, so once the log holds
/// 64 MB the thread copies its last pages holding the writer
/// (`writer`), which are few (it copied the rest just before), and
/// the next write starts it again (`journal_size_limit` then shrinks the
/// file). Dropping the [`Checkpointer`] stops the thread and closes its
/// connection: the owner's last connection then checkpoints and removes
/// the WAL on close, so no deleted contact is left in it.
pub(crate) struct Checkpointer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub(crate) fn spawn_checkpointer<W: Send + 'static>(
    path: &Path,
    every: std::time::Duration,
    restart_after: i64,
    writer: Arc<Mutex<W>>,
) -> Result<Checkpointer, OpenError> {
    let conn = connect(path)?;
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let passive = move |conn: &Connection| -> Option<i64> {
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1)) {
            Ok(log) => Some(log),
            // Another checkpoint, or a failure: the next turn tries again.
            Err(e) => {
                tracing::debug!(error = %e, "checkpoint not done");
                None
            }
        }
    };
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(format!("checkpoint {name}"))
        .spawn(move || {
            use std::sync::mpsc::RecvTimeoutError;
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                if passive(&conn).is_some_and(|log| log >= restart_after) {
                    let _held = writer.lock().unwrap_or_else(|e| e.into_inner());
                    passive(&conn);
                }
            }
        })
        .map_err(|e| OpenError::Db {
            path: path.to_path_buf(),
            message: format!("checkpoint thread: {e}"),
        })?;
    Ok(Checkpointer {
        stop: Some(stop),
        thread: Some(thread),
    })
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL;
         PRAGMA secure_delete = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -262144;
         PRAGMA mmap_size = 1073741824;
         PRAGMA wal_autocheckpoint = 0;
         PRAGMA journal_size_limit = 67108864;",
    )
}

pub(crate) fn connect(path: &Path) -> Result<Connection, OpenError> {
    let err = |e: rusqlite::Error| OpenError::Db {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let conn = Connection::open(path).map_err(err)?;
    configure(&conn).map_err(err)?;
    Ok(conn)
}

pub(crate) fn store_error(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Transient(e.to_string())
        }
        Some(ErrorCode::ConstraintViolation) => StoreError::Conflict(e.to_string()),
        _ => StoreError::Permanent(e.to_string()),
    }
}

impl Db {
    /// Opens (creating if needed) a database in WAL mode and applies `schema`.
    pub fn open(path: &Path, schema: &str) -> Result<Arc<Self>, OpenError> {
        Self::open_checkpointing(path, schema, CHECKPOINT_EVERY, RESTART_AFTER)
    }

    /// [`Db::open`], checkpointed `every` so often and the WAL started
    /// again after `restart_after` pages.
    fn open_checkpointing(
        path: &Path,
        schema: &str,
        every: std::time::Duration,
        restart_after: i64,
    ) -> Result<Arc<Self>, OpenError> {
        let writer = connect(path)?;
        writer
            .execute_batch(&format!("PRAGMA journal_mode = WAL;\n{schema}"))
            .map_err(|e| OpenError::Db {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        let writer = Arc::new(Mutex::new(writer));
        let checkpoints = spawn_checkpointer(path, every, restart_after, writer.clone())?;
        Ok(Arc::new(Self {
            path: path.to_path_buf(),
            writer,
            readers: Mutex::new(Vec::new()),
            _checkpoints: checkpoints,
        }))
    }

    /// Applies more schema (another port's tables in the same file).
    pub fn apply(&self, schema: &str) -> Result<(), OpenError> {
        let conn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        conn.execute_batch(schema).map_err(|e| OpenError::Db {
            path: self.path.clone(),
            message: e.to_string(),
        })
    }

    /// The first column of the first row of a query (schema checks on open).
    pub fn query_i64(&self, sql: &str) -> Result<i64, OpenError> {
        let conn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        conn.query_row(sql, [], |r| r.get(0))
            .map_err(|e| OpenError::Db {
                path: self.path.clone(),
                message: e.to_string(),
            })
    }

    /// Runs `f` in one write transaction on a blocking thread.
    pub async fn write<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = db
                .writer
                .lock()
                .map_err(|_| StoreError::Permanent("writer connection poisoned".into()))?;
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(store_error)?;
            let out = f(&tx).map_err(store_error)?;
            tx.commit().map_err(store_error)?;
            Ok(out)
        })
        .await
        .map_err(|e| StoreError::Permanent(format!("storage task failed: {e}")))?
    }

    /// Runs `f` on a reader connection (a consistent snapshot) on a blocking thread.
    pub async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = db.readers.lock().ok().and_then(|mut r| r.pop());
            let conn = match pooled {
                Some(c) => c,
                None => connect(&db.path).map_err(|e| StoreError::Transient(e.to_string()))?,
            };
            let out = f(&conn).map_err(store_error);
            if let Ok(mut r) = db.readers.lock()
                && r.len() < 4
            {
                r.push(conn);
            }
            out
        })
        .await
        .map_err(|e| StoreError::Permanent(format!("storage task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Under writes that never pause, the WAL still starts again: its file
    /// stays near `journal_size_limit` (64 MB) instead of holding every
    /// page written since the database was opened.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_stays_bounded_under_writes_that_never_pause() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let db = Db::open_checkpointing(
            &path,
            "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body BLOB NOT NULL);",
            std::time::Duration::from_millis(100),
            1_024,
        )
        .unwrap();
        // 160 MB in transactions of 64 pages, a few milliseconds apart.
        for batch in 0..640i64 {
            db.write(move |tx| {
                let mut insert = tx.prepare_cached("INSERT INTO t (id, body) VALUES (?1, ?2)")?;
                for i in 0..64 {
                    insert.execute(params![batch * 64 + i, vec![7u8; 3_900]])?;
                }
                Ok(())
            })
            .await
            .unwrap();
            // Writes that keep coming for about 3 s, while the
            // checkpointer takes a dozen turns.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let wal = std::fs::metadata(dir.path().join("t.db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(
            wal <= 72 << 20,
            "the WAL holds {} MB after 160 MB were written",
            wal >> 20
        );
        let rows: i64 = db
            .read(|c| c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)))
            .await
            .unwrap();
        assert_eq!(rows, 640 * 64);
    }
}
