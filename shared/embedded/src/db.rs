//! SQLite connections: one writer, a few readers (WAL), used from async code
//! through blocking threads.

use crate::OpenError;
use bealert_app::ports::StoreError;
use rusqlite::{Connection, ErrorCode};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub(crate) struct Db {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    _checkpoints: Checkpointer,
}

/// How often the background checkpointer copies the WAL into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Copies a database's WAL into the file on a thread of its own, so that
/// no commit pays for a checkpoint: writers run with
/// `wal_autocheckpoint = 0`, and a checkpoint's page copies and its two
/// fsyncs (tens of milliseconds each on a virtual disk) happen beside
/// them, never while the one writer is held. A passive checkpoint waits
/// for nobody; the WAL restarts from its start once it is all copied, and
/// `journal_size_limit` keeps the file small. The thread ends when this
/// is dropped; closing the last connection checkpoints what is left.
pub(crate) struct Checkpointer {
    _stop: std::sync::mpsc::Sender<()>,
}

impl Checkpointer {
    pub(crate) fn start(path: &Path) -> Result<Self, OpenError> {
        let conn = connect(path)?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        std::thread::Builder::new()
            .name(format!("checkpoint {name}"))
            .spawn(move || {
                use std::sync::mpsc::RecvTimeoutError;
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
                    // Busy (another checkpoint) or failed: the next turn tries again.
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::debug!(file = %name, error = %e, "checkpoint not done");
                    }
                }
            })
            .map_err(|e| OpenError::Db {
                path: path.to_path_buf(),
                message: format!("checkpoint thread: {e}"),
            })?;
        Ok(Self { _stop: stop })
    }
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
        let writer = connect(path)?;
        writer
            .execute_batch(&format!("PRAGMA journal_mode = WAL;\n{schema}"))
            .map_err(|e| OpenError::Db {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        Ok(Arc::new(Self {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            _checkpoints: Checkpointer::start(path)?,
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
