use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

use crate::error::{StoreError, StoreResult};
use crate::migrations;

/// A write transaction; commit it or it rolls back when dropped.
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// Which SQL engine is behind a [`Db`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A handle on the state store, cheap to clone.
///
/// SQLite allows one writer at a time; rather than let connections fight over
/// the write lock (and fail with `SQLITE_BUSY` when a deferred transaction
/// upgrades), writes go through a pool of exactly one connection while reads
/// use several, which WAL lets proceed alongside the writer. PostgreSQL uses
/// one pool for both.
#[derive(Clone, Debug)]
pub struct Db {
    read: AnyPool,
    write: AnyPool,
    dialect: Dialect,
}

/// Milliseconds since the Unix epoch: the one time format of the schema.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The transaction-scoped locks services take (see
/// [`Db::lock_transaction`]); one variant per critical section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxLock {
    /// One placement decision at a time across controllers, with the
    /// launch's client-token check and its new rows.
    ComputeLaunch,
}

impl TxLock {
    /// The advisory lock key; distinct from the migrations' key.
    fn key(self) -> i64 {
        match self {
            TxLock::ComputeLaunch => 7364,
        }
    }
}

/// Removes the password from a database URL before it is logged or shown.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

type BoxFuture<'c, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'c>>;

/// Per-connection SQLite settings: WAL lets readers run beside the writer;
/// `synchronous = FULL` makes a commit durable before it is acknowledged.
fn sqlite_pragmas(
    conn: &mut sqlx::AnyConnection,
    _meta: sqlx::pool::PoolConnectionMetadata,
) -> BoxFuture<'_, Result<(), sqlx::Error>> {
    Box::pin(async move {
        conn.execute("PRAGMA journal_mode = WAL").await?;
        conn.execute("PRAGMA synchronous = FULL").await?;
        conn.execute("PRAGMA busy_timeout = 10000").await?;
        conn.execute("PRAGMA foreign_keys = ON").await?;
        Ok(())
    })
}

impl Db {
    /// Opens the store at `url` (`sqlite://PATH` or `postgres://...`) and
    /// brings its schema up to date.
    pub async fn open(url: &str) -> StoreResult<Db> {
        sqlx::any::install_default_drivers();
        let open_err = |source| StoreError::Open {
            url: redact(url),
            source,
        };
        let db = if url.starts_with("sqlite:") {
            let url = if url.contains('?') {
                url.to_string()
            } else {
                format!("{url}?mode=rwc")
            };
            let opts: AnyConnectOptions = url.parse().map_err(open_err)?;
            let write = AnyPoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .acquire_timeout(Duration::from_secs(30))
                .after_connect(sqlite_pragmas)
                .connect_with(opts.clone())
                .await
                .map_err(open_err)?;
            let read = AnyPoolOptions::new()
                .max_connections(4)
                .min_connections(0)
                .idle_timeout(Duration::from_secs(60))
                .acquire_timeout(Duration::from_secs(30))
                .after_connect(sqlite_pragmas)
                .connect_with(opts)
                .await
                .map_err(open_err)?;
            Db {
                read,
                write,
                dialect: Dialect::Sqlite,
            }
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let opts: AnyConnectOptions = url.parse().map_err(open_err)?;
            // One direct attempt first: the pool would retry until its
            // timeout and then report only that, hiding the real reason.
            {
                use sqlx::{ConnectOptions, Connection};
                let conn = opts.connect().await.map_err(open_err)?;
                conn.close().await.map_err(open_err)?;
            }
            let pool = AnyPoolOptions::new()
                .max_connections(16)
                .min_connections(1)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(opts)
                .await
                .map_err(open_err)?;
            Db {
                read: pool.clone(),
                write: pool,
                dialect: Dialect::Postgres,
            }
        } else {
            return Err(open_err(sqlx::Error::Configuration(
                "the database URL must start with sqlite: or postgres:".into(),
            )));
        };
        migrations::run(&db).await?;
        Ok(db)
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The pool for reads that need no transaction.
    pub fn reader(&self) -> &AnyPool {
        &self.read
    }

    /// The pool for writes outside a transaction (single statements).
    pub fn writer(&self) -> &AnyPool {
        &self.write
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> StoreResult<Tx> {
        Ok(self.write.begin().await?)
    }

    /// Serialises the transactions that take the same `lock` until each
    /// commits or rolls back: PostgreSQL's `pg_advisory_xact_lock`. On
    /// SQLite nothing is needed (the one writer connection already runs
    /// write transactions one at a time), so it does nothing. Services
    /// name their locks in [`TxLock`] instead of spelling engine SQL.
    pub async fn lock_transaction(&self, tx: &mut Tx, lock: TxLock) -> StoreResult<()> {
        match self.dialect {
            Dialect::Sqlite => Ok(()),
            Dialect::Postgres => {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(lock.key())
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }
        }
    }

    /// The change counter of `area`: it grows whenever something in that area
    /// changes, on any controller sharing this database, so caches compare it
    /// to know when to drop what they hold.
    pub async fn revision(&self, area: &str) -> StoreResult<i64> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT revision FROM revisions WHERE area = $1")
            .bind(area)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| r.0).unwrap_or(0))
    }

    /// Advances the change counter of `area` inside `tx`, so the bump becomes
    /// visible exactly when the change it announces does.
    pub async fn bump_revision(tx: &mut Tx, area: &str) -> StoreResult<i64> {
        let (rev,): (i64,) = sqlx::query_as(
            "INSERT INTO revisions (area, revision) VALUES ($1, 1) \
             ON CONFLICT (area) DO UPDATE SET revision = revisions.revision + 1 \
             RETURNING revision",
        )
        .bind(area)
        .fetch_one(&mut **tx)
        .await?;
        Ok(rev)
    }

    /// Closes every connection; pending commits have already completed.
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redacts_password() {
        assert_eq!(
            redact("postgres://nuage:s3cret@db:5432/nuage"),
            "postgres://nuage:***@db:5432/nuage"
        );
        assert_eq!(redact("sqlite:///x.db"), "sqlite:///x.db");
    }
}
