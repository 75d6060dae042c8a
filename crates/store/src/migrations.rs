//! Versioned schema migrations, written once for both engines.
//!
//! Each migration is plain SQL in the common subset of SQLite and PostgreSQL;
//! `{blob}` stands for the binary column type, the only spelling that differs
//! so far. Migrations run in order inside one transaction each and are
//! recorded in `schema_migrations`; on PostgreSQL an advisory lock keeps two
//! controllers starting together from racing.

use sqlx::Executor;

use crate::db::{now_ms, Db, Dialect};
use crate::error::{StoreError, StoreResult};

pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every schema change, in order. Never edit a released entry: add one.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "identity",
        sql: include_str!("../migrations/0001_identity.sql"),
    },
    Migration {
        version: 2,
        name: "compute",
        sql: include_str!("../migrations/0002_compute.sql"),
    },
    Migration {
        version: 3,
        name: "compute_desired",
        sql: include_str!("../migrations/0003_compute_desired.sql"),
    },
    Migration {
        version: 4,
        name: "login_failures",
        sql: include_str!("../migrations/0004_login_failures.sql"),
    },
    Migration {
        version: 5,
        name: "network",
        sql: include_str!("../migrations/0005_network.sql"),
    },
    Migration {
        version: 6,
        name: "instance_metadata_options",
        sql: include_str!("../migrations/0006_instance_metadata_options.sql"),
    },
    Migration {
        version: 7,
        name: "network_tags",
        sql: include_str!("../migrations/0007_network_tags.sql"),
    },
    Migration {
        version: 8,
        name: "flavor_access",
        sql: include_str!("../migrations/0008_flavor_access.sql"),
    },
    Migration {
        version: 9,
        name: "image_tags_hashes",
        sql: include_str!("../migrations/0009_image_tags_hashes.sql"),
    },
    Migration {
        version: 10,
        name: "network_descriptions",
        sql: include_str!("../migrations/0010_network_descriptions.sql"),
    },
];

const PG_LOCK_KEY: i64 = 0x006e_7561_6765; // "nuage"

fn render(sql: &str, dialect: Dialect) -> String {
    let blob = match dialect {
        Dialect::Sqlite => "BLOB",
        Dialect::Postgres => "BYTEA",
    };
    sql.replace("{blob}", blob)
}

/// Splits a migration file into statements, dropping `--` comment lines
/// first. Migrations hold no string literal with a semicolon or `--`, which
/// keeps this honest and simple.
fn statements(sql: &str) -> Vec<String> {
    let code: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    code.split(';')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

pub(crate) async fn run(db: &Db) -> StoreResult<()> {
    let mut conn = db.writer().acquire().await?;
    if db.dialect() == Dialect::Postgres {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(PG_LOCK_KEY)
            .execute(&mut *conn)
            .await?;
    }
    let result = run_locked(db, &mut conn).await;
    if db.dialect() == Dialect::Postgres {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(PG_LOCK_KEY)
            .execute(&mut *conn)
            .await?;
    }
    result
}

async fn run_locked(db: &Db, conn: &mut sqlx::AnyConnection) -> StoreResult<()> {
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (\
           version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .await?;
    let (current,): (i64,) =
        sqlx::query_as("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            .fetch_one(&mut *conn)
            .await?;
    let known = MIGRATIONS.last().map(|m| m.version).unwrap_or(0);
    if current > known {
        return Err(StoreError::SchemaTooNew {
            found: current,
            known,
        });
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        let fail = |source| StoreError::Migration {
            version: m.version,
            name: m.name,
            source,
        };
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(fail)?;
        let sql = render(m.sql, db.dialect());
        for stmt in statements(&sql) {
            tx.execute(stmt.as_str()).await.map_err(fail)?;
        }
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        tracing::info!(
            version = m.version,
            name = m.name,
            "applied schema migration"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase() {
        let mut last = 0;
        for m in MIGRATIONS {
            assert!(m.version > last, "migration {} out of order", m.name);
            last = m.version;
        }
    }

    #[test]
    fn splits_statements() {
        let s = statements(
            "-- c; d\nCREATE TABLE a (x INT);\n\n-- only comment\n;CREATE INDEX i ON a(x);",
        );
        assert_eq!(s.len(), 2);
    }
}
