//! The engine's metadata: an SQLite file next to the data it describes (as
//! Swift keeps a container's listing in an SQLite file), written by one
//! thread that commits many requests' changes at once (group commit), read
//! by a small pool of connections.
//!
//! Every commit is durable before it is acknowledged (WAL, `synchronous =
//! FULL`); a request's changes run inside a savepoint, so one request's
//! failure rolls back only its own changes in a shared commit.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use crate::error::{ObjectError, ObjectResult};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS buckets (
    name        TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    acl         TEXT NOT NULL,
    region      TEXT NOT NULL,
    meta        TEXT NOT NULL,
    objects     INTEGER NOT NULL DEFAULT 0,
    bytes       INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS buckets_project ON buckets(project_id);
CREATE TABLE IF NOT EXISTS objects (
    bucket       TEXT NOT NULL,
    key          TEXT NOT NULL,
    size         INTEGER NOT NULL,
    etag         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    modified_ms  INTEGER NOT NULL,
    meta         TEXT NOT NULL,
    checksum     TEXT,
    parts        INTEGER,
    segments     TEXT NOT NULL,
    corrupt      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS segments (
    id    TEXT PRIMARY KEY,
    refs  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS garbage (
    id    TEXT PRIMARY KEY
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS accounts (
    project_id  TEXT PRIMARY KEY,
    meta        TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS uploads (
    id           TEXT PRIMARY KEY,
    bucket       TEXT NOT NULL,
    key          TEXT NOT NULL,
    initiated_ms INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    meta         TEXT NOT NULL,
    checksum_algorithm TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS uploads_key ON uploads(bucket, key, id);
CREATE TABLE IF NOT EXISTS parts (
    upload_id   TEXT NOT NULL,
    number      INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    etag        TEXT NOT NULL,
    segment     TEXT NOT NULL,
    crc32c      INTEGER NOT NULL,
    checksum    TEXT,
    modified_ms INTEGER NOT NULL,
    PRIMARY KEY (upload_id, number)
) WITHOUT ROWID;
"#;

/// Changes to the schema above, in order; `PRAGMA user_version` is how many
/// ran. The schema above is version 0's, so a new database runs them all.
const MIGRATIONS: &[&str] = &[
    // 1: a bucket's object ACL (Swift's `.r:*`), apart from its ACL, which
    // now means listing only (ADR 13). A bucket made before kept every
    // reader its ACL let in: its objects keep them.
    r#"
    ALTER TABLE buckets ADD COLUMN object_acl TEXT NOT NULL DEFAULT 'private';
    UPDATE buckets SET object_acl = CASE acl
        WHEN 'public-read' THEN 'public-read'
        WHEN 'public-read-write' THEN 'public-read'
        WHEN 'authenticated-read' THEN 'authenticated-read'
        ELSE 'private' END;
    "#,
];

/// Brings the schema to the latest version, each step in its own
/// transaction.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let done: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, m) in MIGRATIONS.iter().enumerate().skip(done) {
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {m}; PRAGMA user_version = {}; COMMIT;",
            i + 1
        ))
        .inspect_err(|_| {
            let _ = conn.execute_batch("ROLLBACK");
        })?;
        tracing::info!(version = i + 1, "object metadata schema migrated");
    }
    Ok(())
}

/// What the writer thread runs: a request's changes, returning what to do
/// once the shared commit is known to have succeeded or failed.
type Job = Box<dyn FnOnce(&Connection) -> Box<dyn FnOnce(Result<(), String>) + Send> + Send>;

/// Requests committed together at most; bounds one commit's latency.
const MAX_BATCH: usize = 256;

pub(crate) struct Meta {
    jobs: Mutex<mpsc::Sender<Job>>,
    readers: Mutex<Vec<Connection>>,
    path: PathBuf,
}

impl std::fmt::Debug for Meta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meta").field("path", &self.path).finish()
    }
}

fn open_conn(path: &Path, write: bool) -> rusqlite::Result<Connection> {
    let flags = if write {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.set_prepared_statement_cache_capacity(64);
    if write {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Checkpoints happen in the writer between batches; a larger WAL
        // keeps them rare under load.
        conn.pragma_update(None, "wal_autocheckpoint", 4000)?;
    }
    Ok(conn)
}

impl Meta {
    /// Opens (creating) the database and starts the writer thread.
    pub fn open(path: &Path) -> ObjectResult<Meta> {
        let conn = open_conn(path, true)
            .map_err(|e| ObjectError::internal(format!("opening {}", path.display()), e))?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| ObjectError::internal("creating the object schema", e))?;
        migrate(&conn).map_err(|e| ObjectError::internal("migrating the object schema", e))?;
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("nuage-object-meta".into())
            .spawn(move || writer(conn, rx))
            .map_err(|e| ObjectError::internal("starting the metadata writer", e))?;
        Ok(Meta {
            jobs: Mutex::new(tx),
            readers: Mutex::new(Vec::new()),
            path: path.to_path_buf(),
        })
    }

    /// Runs `f` in the writer's next commit and returns its result once the
    /// commit is on disk.
    pub async fn write<R, F>(&self, f: F) -> ObjectResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> ObjectResult<R> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let r = in_savepoint(conn, f);
            Box::new(move |commit: Result<(), String>| {
                let _ = tx.send(match commit {
                    Ok(()) => r,
                    Err(e) => Err(ObjectError::Internal(format!(
                        "committing object metadata: {e}"
                    ))),
                });
            })
        });
        self.jobs
            .lock()
            .map_err(|_| ObjectError::Internal("metadata writer lock poisoned".into()))?
            .send(job)
            .map_err(|_| ObjectError::Internal("the metadata writer has stopped".into()))?;
        rx.await
            .map_err(|_| ObjectError::Internal("the metadata writer dropped a request".into()))?
    }

    /// Runs `f` on a reader connection, off the async threads.
    pub async fn read<R, F>(&self, f: F) -> ObjectResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> ObjectResult<R> + Send + 'static,
    {
        let conn = self.reader()?;
        let (conn, r) = tokio::task::spawn_blocking(move || {
            let r = f(&conn);
            (conn, r)
        })
        .await
        .map_err(|e| ObjectError::internal("metadata read", e))?;
        self.give_back(conn);
        r
    }

    /// A reader connection for use in a blocking context; hand it back with
    /// [`Meta::give_back`].
    pub fn reader(&self) -> ObjectResult<Connection> {
        if let Some(c) = self.readers.lock().ok().and_then(|mut v| v.pop()) {
            return Ok(c);
        }
        open_conn(&self.path, false).map_err(|e| ObjectError::internal("opening a reader", e))
    }

    pub fn give_back(&self, conn: Connection) {
        if let Ok(mut v) = self.readers.lock() {
            if v.len() < 16 {
                v.push(conn);
            }
        }
    }
}

fn in_savepoint<R>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> ObjectResult<R>,
) -> ObjectResult<R> {
    conn.execute_batch("SAVEPOINT job")?;
    let r = f(conn);
    let end = if r.is_ok() {
        conn.execute_batch("RELEASE job")
    } else {
        conn.execute_batch("ROLLBACK TO job; RELEASE job")
    };
    match (r, end) {
        (Ok(v), Ok(())) => Ok(v),
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(e.into()),
    }
}

fn writer(conn: Connection, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            // Dropping the jobs drops their reply channels: each caller gets
            // an error and nothing of theirs was written.
            tracing::error!(error = %e, "object metadata: cannot begin a transaction");
            drop(batch);
            continue;
        }
        let done: Vec<_> = batch.into_iter().map(|job| job(&conn)).collect();
        let commit = conn
            .execute_batch("COMMIT")
            .map_err(|e| e.to_string())
            .inspect_err(|_| {
                let _ = conn.execute_batch("ROLLBACK");
            });
        for d in done {
            d(commit.clone());
        }
    }
}

impl From<rusqlite::Error> for ObjectError {
    fn from(e: rusqlite::Error) -> Self {
        ObjectError::Internal(format!("object metadata: {e}"))
    }
}
