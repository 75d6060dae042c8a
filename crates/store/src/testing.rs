//! Fresh databases for tests, on both engines.
//!
//! Every store test runs against SQLite and PostgreSQL. PostgreSQL is reached
//! through `NUAGE_TEST_POSTGRES` (an admin URL such as
//! `postgres://postgres@127.0.0.1/postgres`), which `scripts/test` sets after
//! starting Debian's server. When it is missing the PostgreSQL half fails
//! loudly rather than being skipped, so a green run always means both engines.

use crate::{Db, StoreResult};

/// A database that lives as long as the value: a temp dir for SQLite, a
/// throw-away database for PostgreSQL.
#[derive(Debug)]
pub struct TestDb {
    pub db: Db,
    pub name: String,
    /// The URL it was opened with, to open it again.
    pub url: String,
    _dir: Option<tempfile_dir::Dir>,
}

mod tempfile_dir {
    /// A temp directory removed on drop, without pulling tempfile into the
    /// library's normal dependencies.
    #[derive(Debug)]
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The engines every store test runs on.
pub const ENGINES: &[&str] = &["sqlite", "postgres"];

/// Opens a fresh, migrated database on `engine`.
pub async fn fresh(engine: &str) -> StoreResult<TestDb> {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    match engine {
        "sqlite" => {
            let dir = std::env::temp_dir().join(format!("nuage-test-{tag}"));
            std::fs::create_dir_all(&dir).map_err(|e| crate::StoreError::Open {
                url: dir.display().to_string(),
                source: sqlx::Error::Io(e),
            })?;
            let url = format!("sqlite://{}/nuage.db", dir.display());
            Ok(TestDb {
                db: Db::open(&url).await?,
                name: "sqlite".into(),
                url,
                _dir: Some(tempfile_dir::Dir(dir)),
            })
        }
        "postgres" => {
            let url = fresh_postgres_url().await?;
            Ok(TestDb {
                db: Db::open(&url).await?,
                name: "postgres".into(),
                url,
                _dir: None,
            })
        }
        other => panic!("unknown test engine {other}"),
    }
}

/// Opens the same database again, as a second controller (or a restart)
/// would, running the migrator once more.
pub async fn reopen(t: &TestDb) -> StoreResult<Db> {
    Db::open(&t.url).await
}

/// The admin URL of the test PostgreSQL server.
///
/// # Panics
/// When `NUAGE_TEST_POSTGRES` is unset: the PostgreSQL half of the suite must
/// not be skipped silently.
pub fn postgres_admin_url() -> String {
    std::env::var("NUAGE_TEST_POSTGRES").unwrap_or_else(|_| {
        panic!(
            "NUAGE_TEST_POSTGRES is not set: store tests run on SQLite and PostgreSQL; \
             run scripts/test, or start PostgreSQL and export \
             NUAGE_TEST_POSTGRES=postgres://USER:PASS@127.0.0.1/postgres"
        )
    })
}

/// Replaces the database name in a PostgreSQL URL.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let host_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[host_end..].find('/') {
        Some(slash) => &base[..host_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Test databases older than this are a killed run's leftovers.
const STALE_AFTER_SECS: u64 = 6 * 3600;

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A fresh database on PostgreSQL under a new name, for tests that start the
/// nuage binary against it. Names carry their creation time
/// (`nuage_test_<unix secs>_<random>`): the first call of a test process
/// drops those older than [`STALE_AFTER_SECS`], which runs killed before
/// their own cleanup (or servers' databases, never dropped) left behind.
pub async fn fresh_postgres_url() -> StoreResult<String> {
    use sqlx::Connection;
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    sqlx::any::install_default_drivers();
    let admin = postgres_admin_url();
    let mut conn = sqlx::AnyConnection::connect(&admin).await?;
    SWEPT
        .get_or_init(|| async {
            if let Err(e) = sweep(&mut conn).await {
                eprintln!("old test databases not swept: {e}");
            }
        })
        .await;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let name = format!("nuage_test_{}_{}", unix_now(), &tag[..12]);
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(with_database(&admin, &name))
}

/// Drops the test databases whose names say they are stale.
async fn sweep(conn: &mut sqlx::AnyConnection) -> StoreResult<()> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE 'nuage_test_%'")
            .fetch_all(&mut *conn)
            .await?;
    let cutoff = unix_now().saturating_sub(STALE_AFTER_SECS);
    for (name,) in rows {
        let born = name
            .strip_prefix("nuage_test_")
            .and_then(|r| r.split_once('_'))
            .and_then(|(secs, _)| secs.parse::<u64>().ok());
        if born.is_some_and(|b| b < cutoff)
            && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// Drops a test database now (its pool's connections closed by force).
/// Runs on a thread of its own, so it works from a drop inside a runtime.
fn drop_database(url: &str) {
    let Some(name) = url
        .rsplit('/')
        .next()
        .map(|n| n.split('?').next().unwrap_or(n).to_string())
        .filter(|n| n.starts_with("nuage_test_"))
    else {
        return;
    };
    let Ok(admin) = std::env::var("NUAGE_TEST_POSTGRES") else {
        return;
    };
    let _ = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            use sqlx::Connection;
            if let Ok(mut conn) = sqlx::AnyConnection::connect(&admin).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await;
                let _ = conn.close().await;
            }
        });
    })
    .join();
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.name == "postgres" {
            drop_database(&self.url);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_database() {
        assert_eq!(
            super::with_database("postgres://u:p@h:5432/postgres?sslmode=disable", "x"),
            "postgres://u:p@h:5432/x?sslmode=disable"
        );
        assert_eq!(super::with_database("postgres://h", "x"), "postgres://h/x");
    }
}
