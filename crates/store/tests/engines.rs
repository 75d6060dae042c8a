//! The store's guarantees, checked on SQLite and PostgreSQL alike.

use nuage_store::sqlx;
use nuage_store::testing::{fresh, ENGINES};
use nuage_store::{Db, StoreError};

async fn insert_domain(db: &Db, id: &str, name: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO domains (id, name, description, enabled, version, created_at, updated_at) \
         VALUES ($1, $2, '', 1, 1, 0, 0)",
    )
    .bind(id)
    .bind(name)
    .execute(db.writer())
    .await
    .map_err(|e| StoreError::unique(e, format!("domain {name}")))?;
    Ok(())
}

#[tokio::test]
async fn migrations_are_recorded_and_idempotent() {
    for engine in ENGINES {
        let t = fresh(engine).await.expect("open");
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM schema_migrations")
            .fetch_one(t.db.reader())
            .await
            .expect("count");
        assert!(n >= 1, "{engine}: no migration recorded");
        // Running the migrator again (as a second controller would) changes nothing.
        nuage_store::testing::reopen(&t).await.expect("reopen");
        let (m,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM schema_migrations")
            .fetch_one(t.db.reader())
            .await
            .expect("count");
        assert_eq!(n, m, "{engine}");
    }
}

#[tokio::test]
async fn unique_names_are_reported_as_already_exists() {
    for engine in ENGINES {
        let t = fresh(engine).await.expect("open");
        insert_domain(&t.db, "d1", "same").await.expect("first");
        let err = insert_domain(&t.db, "d2", "same")
            .await
            .expect_err("duplicate");
        assert!(
            matches!(err, StoreError::AlreadyExists { .. }),
            "{engine}: {err:?}"
        );
        assert_eq!(err.to_string(), "domain same already exists");
    }
}

/// Two writers read version 1 and both try to write: exactly one wins, the
/// other learns it lost instead of silently overwriting.
#[tokio::test]
async fn optimistic_concurrency_refuses_lost_updates() {
    for engine in ENGINES {
        let t = fresh(engine).await.expect("open");
        insert_domain(&t.db, "d1", "orig").await.expect("insert");
        let update = |db: Db, desc: &'static str| async move {
            sqlx::query(
                "UPDATE domains SET description = $1, version = version + 1 WHERE id = 'd1' AND version = 1",
            )
            .bind(desc)
            .execute(db.writer())
            .await
            .map(|r| r.rows_affected())
        };
        let (a, b) = tokio::join!(update(t.db.clone(), "a"), update(t.db.clone(), "b"));
        let (a, b) = (a.expect("a"), b.expect("b"));
        assert_eq!(a + b, 1, "{engine}: exactly one update must win ({a}, {b})");
        let (desc, version): (String, i64) =
            sqlx::query_as("SELECT description, version FROM domains WHERE id = 'd1'")
                .fetch_one(t.db.reader())
                .await
                .expect("read");
        assert_eq!(version, 2, "{engine}");
        assert_eq!(desc, if a == 1 { "a" } else { "b" }, "{engine}");
    }
}

#[tokio::test]
async fn revisions_advance_with_the_transaction() {
    for engine in ENGINES {
        let t = fresh(engine).await.expect("open");
        assert_eq!(t.db.revision("x").await.expect("rev"), 0);
        let mut tx = t.db.begin().await.expect("begin");
        assert_eq!(Db::bump_revision(&mut tx, "x").await.expect("bump"), 1);
        // Rolled back: the bump never happened.
        drop(tx);
        assert_eq!(t.db.revision("x").await.expect("rev"), 0, "{engine}");
        let mut tx = t.db.begin().await.expect("begin");
        Db::bump_revision(&mut tx, "x").await.expect("bump");
        Db::bump_revision(&mut tx, "x").await.expect("bump");
        tx.commit().await.expect("commit");
        assert_eq!(t.db.revision("x").await.expect("rev"), 2, "{engine}");
    }
}

#[tokio::test]
async fn committed_writes_survive_reopening() {
    for engine in ENGINES {
        let t = fresh(engine).await.expect("open");
        insert_domain(&t.db, "d9", "kept").await.expect("insert");
        let db2 = nuage_store::testing::reopen(&t).await.expect("reopen");
        let (name,): (String,) = sqlx::query_as("SELECT name FROM domains WHERE id = 'd9'")
            .fetch_one(db2.reader())
            .await
            .expect("read");
        assert_eq!(name, "kept", "{engine}");
    }
}

#[tokio::test]
async fn bad_urls_are_refused_with_a_reason() {
    let err = Db::open("mysql://nope").await.expect_err("refused");
    assert!(
        err.to_string().contains("cannot open the database"),
        "{err}"
    );
    let err = Db::open("postgres://nuage:secretpw@127.0.0.1:1/x")
        .await
        .expect_err("refused");
    assert!(
        !err.to_string().contains("secretpw"),
        "password leaked: {err}"
    );
}

/// A transaction that takes a named lock waits for the one holding it to
/// end: the launch's placement and client-token check run one at a time.
#[tokio::test]
async fn transaction_locks_serialise_holders() {
    use nuage_store::TxLock;
    use std::time::Duration;
    for engine in ENGINES {
        let t = fresh(engine).await.expect("open");
        let mut first = t.db.begin().await.expect("begin");
        t.db.lock_transaction(&mut first, TxLock::ComputeLaunch)
            .await
            .expect("lock");
        let db = t.db.clone();
        let second = tokio::spawn(async move {
            let mut tx = db.begin().await.expect("begin second");
            db.lock_transaction(&mut tx, TxLock::ComputeLaunch)
                .await
                .expect("lock second");
            tx.commit().await.expect("commit second");
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !second.is_finished(),
            "{engine}: the second holder did not wait"
        );
        first.commit().await.expect("commit first");
        tokio::time::timeout(Duration::from_secs(10), second)
            .await
            .expect("the second holder went on once the first ended")
            .expect("second task");
    }
}

/// Migration 3: instances carry the forced stop and their generations, and
/// one client token names one launch per project (its first instance).
#[tokio::test]
async fn compute_desired_migration() {
    for engine in ENGINES {
        let t = fresh(engine).await.expect("open");
        let insert = |id: &'static str, idx: i64, token: &'static str| {
            sqlx::query(
                "INSERT INTO instances (id, reservation_id, project_id, user_id, image_id, \
                 instance_type, vcpus, memory_mib, disk_gib, node_id, availability_zone, tags, \
                 hostname, launch_index, client_token, desired, state, launch_time, updated_at) \
                 VALUES ($1, 'r-1', 'p', 'u', 'ami-1', 't', 1, 1, 1, 'n', 'z', '{}', $1, $2, $3, \
                 'running', 'pending', 0, 0)",
            )
            .bind(id)
            .bind(idx)
            .bind(token)
            .execute(t.db.writer())
        };
        insert("i-1", 0, "tok").await.expect("first of the launch");
        insert("i-2", 1, "tok")
            .await
            .expect("second of the same launch");
        let e = insert("i-3", 0, "tok")
            .await
            .expect_err("a second launch with the token");
        assert!(
            matches!(
                StoreError::unique(e, "launch"),
                StoreError::AlreadyExists { .. }
            ),
            "{engine}"
        );
        insert("i-4", 0, "other").await.expect("another token");
        let (force, generation, observed): (i64, i64, i64) = sqlx::query_as(
            "SELECT force_stop, generation, observed_generation FROM instances WHERE id = 'i-1'",
        )
        .fetch_one(t.db.reader())
        .await
        .expect("new columns");
        assert_eq!((force, generation, observed), (0, 1, 0), "{engine}");
    }
}
