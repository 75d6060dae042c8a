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
            let admin = postgres_admin_url();
            let name = format!("nuage_test_{}", &tag[..16]);
            {
                use sqlx::Connection;
                sqlx::any::install_default_drivers();
                let mut conn = sqlx::AnyConnection::connect(&admin).await?;
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await?;
                conn.close().await?;
            }
            let url = with_database(&admin, &name);
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

/// A fresh database on PostgreSQL under a new name, for tests that start the
/// nuage binary against it.
pub async fn fresh_postgres_url() -> StoreResult<String> {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let admin = postgres_admin_url();
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let name = format!("nuage_test_{}", &tag[..16]);
    let mut conn = sqlx::AnyConnection::connect(&admin).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(with_database(&admin, &name))
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
