//! Failed-login lockouts kept in the store, on both engines: several
//! controllers sharing one database count the same failures, a restart
//! forgives nothing, and expired rows do not pile up.

use std::net::IpAddr;
use std::time::Duration;

use nuage_identity::throttle::ThrottleConfig;
use nuage_identity::{Bootstrap, Identity, IdentityConfig, IdentityError, Login, NewUser, Ref};
use nuage_model::identity::Principal;
use nuage_store::testing::{fresh, reopen, TestDb, ENGINES};
use nuage_store::{sqlx, Db};

const ADMIN_PW: &str = "admin-password-1";
const USER_PW: &str = "user-password-1";

fn config(throttle: ThrottleConfig) -> IdentityConfig {
    IdentityConfig {
        throttle,
        ..IdentityConfig::default()
    }
}

/// Locks a user after 3 failures, an address after 4, for a minute.
fn strict() -> ThrottleConfig {
    ThrottleConfig {
        user_attempts: 3,
        source_attempts: 4,
        ..ThrottleConfig::default()
    }
}

/// A fresh database with the admin and a user `alice`, and the admin's
/// principal.
async fn setup(engine: &str, cfg: IdentityConfig) -> (TestDb, Identity, Principal) {
    let t = fresh(engine).await.expect("db");
    let id = Identity::open(t.db.clone(), cfg).await.expect("identity");
    id.bootstrap(Bootstrap {
        admin_password: Some(ADMIN_PW.into()),
        access_key: None,
    })
    .await
    .expect("bootstrap");
    let (_, admin) = id
        .login("admin", None, ADMIN_PW, None, None)
        .await
        .expect("admin login");
    id.create_user(
        &admin,
        NewUser {
            name: "alice".into(),
            password: Some(USER_PW.into()),
            default_project_id: Some(admin.project_id.clone()),
            enabled: true,
            ..Default::default()
        },
    )
    .await
    .expect("user");
    let alice = id
        .find_user("alice", None)
        .await
        .expect("find")
        .expect("alice");
    let role = id.get_role(&admin, "member").await.expect("role");
    id.grant(
        &admin,
        &nuage_model::identity::Assignment {
            actor: nuage_model::identity::Actor::User(alice.id),
            target: nuage_model::identity::Target::Project(admin.project_id.clone()),
            role_id: role.id,
        },
    )
    .await
    .expect("grant");
    (t, id, admin)
}

async fn login_from(
    id: &Identity,
    user: &str,
    password: &str,
    source: Option<IpAddr>,
) -> Result<(String, Principal), IdentityError> {
    id.login_with(Login {
        user: Ref::any(user, None),
        password,
        project: None,
        source,
    })
    .await
}

fn throttled<T: std::fmt::Debug>(r: Result<T, IdentityError>) -> Duration {
    match r {
        Err(IdentityError::Throttled { retry_after }) => retry_after,
        other => panic!("expected a lockout, got {other:?}"),
    }
}

fn wrong<T: std::fmt::Debug>(r: Result<T, IdentityError>) {
    match r {
        Err(IdentityError::Unauthenticated(_)) => {}
        other => panic!("expected a refused password, got {other:?}"),
    }
}

async fn rows(db: &Db) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM login_failures")
        .fetch_one(db.reader())
        .await
        .expect("count");
    n
}

/// Two controllers on one database (each with its own pools, as two
/// processes would have) share one count and one lock; the lock outlives a
/// restart; an admin on either clears it for both.
#[tokio::test]
async fn two_servers_and_a_restart_see_one_lockout() {
    for engine in ENGINES {
        let (t, a, admin) = setup(engine, config(strict())).await;
        let b = Identity::open(reopen(&t).await.expect("reopen"), config(strict()))
            .await
            .expect("second controller");

        wrong(login_from(&a, "alice", "wrong-1", None).await);
        wrong(login_from(&b, "alice", "wrong-2", None).await);
        login_from(&a, "alice", USER_PW, None)
            .await
            .expect("two failures do not lock");
        // The success cleared the count for both controllers.
        wrong(login_from(&b, "alice", "wrong-3", None).await);
        wrong(login_from(&a, "alice", "wrong-4", None).await);
        wrong(login_from(&b, "alice", "wrong-5", None).await);
        // Three failures, split over two controllers: both refuse the
        // right password now.
        let left = throttled(login_from(&a, "alice", USER_PW, None).await);
        assert!(
            left > Duration::from_secs(50) && left <= Duration::from_secs(60),
            "{engine}: {left:?}"
        );
        throttled(login_from(&b, "alice", USER_PW, None).await);

        // A restart: every handle on the database closed, then opened again.
        drop(a);
        b.db().close().await;
        drop(b);
        t.db.close().await;
        let c = Identity::open(reopen(&t).await.expect("restart"), config(strict()))
            .await
            .expect("restarted controller");
        throttled(login_from(&c, "alice", USER_PW, None).await);
        let list = c.list_lockouts(&admin).await.expect("list");
        let entry = list
            .iter()
            .find(|l| l.kind == "user")
            .unwrap_or_else(|| panic!("{engine}: alice is not listed: {list:?}"));
        assert_eq!(entry.failures, 3, "{engine}");
        assert!(entry.locked_until.is_some(), "{engine}");

        // Cleared by name on one controller, the user logs in on another.
        let d = Identity::open(reopen(&t).await.expect("reopen"), config(strict()))
            .await
            .expect("fourth controller");
        assert!(c
            .clear_lockout(&admin, Some("alice"), None)
            .await
            .expect("clear"));
        login_from(&d, "alice", USER_PW, None)
            .await
            .unwrap_or_else(|e| panic!("{engine}: cleared, yet {e}"));
        assert!(
            !d.clear_lockout(&admin, Some("alice"), None)
                .await
                .expect("clear again"),
            "{engine}: nothing left to clear"
        );
    }
}

/// Failures from one address over two controllers lock the address, for
/// every user; unknown names count as users do; a success does not clear
/// the address.
#[tokio::test]
async fn an_address_is_locked_across_servers() {
    for engine in ENGINES {
        let (t, a, admin) = setup(engine, config(strict())).await;
        let b = Identity::open(reopen(&t).await.expect("reopen"), config(strict()))
            .await
            .expect("second controller");
        let attacker: IpAddr = "192.0.2.7".parse().expect("ip");
        let other: IpAddr = "192.0.2.8".parse().expect("ip");
        wrong(login_from(&a, "ghost-1", "x-wrong", Some(attacker)).await);
        wrong(login_from(&b, "ghost-2", "x-wrong", Some(attacker)).await);
        login_from(&a, "alice", USER_PW, Some(attacker))
            .await
            .expect("not locked yet");
        wrong(login_from(&a, "ghost-3", "x-wrong", Some(attacker)).await);
        wrong(login_from(&b, "ghost-4", "x-wrong", Some(attacker)).await);
        throttled(login_from(&b, "admin", ADMIN_PW, Some(attacker)).await);
        throttled(login_from(&a, "alice", USER_PW, Some(attacker)).await);
        login_from(&b, "admin", ADMIN_PW, Some(other))
            .await
            .expect("another address is not locked");

        let list = a.list_lockouts(&admin).await.expect("list");
        assert_eq!(list[0].kind, "source", "{engine}: locked first: {list:?}");
        assert_eq!(list[0].subject, attacker.to_string());
        assert_eq!(list[0].failures, 4, "{engine}");
        assert!(
            list.iter().any(|l| l.subject == "default/ghost-1"),
            "{engine}: {list:?}"
        );
        assert!(b
            .clear_lockout(&admin, None, Some(attacker))
            .await
            .expect("clear"));
        login_from(&a, "alice", USER_PW, Some(attacker))
            .await
            .expect("cleared");
    }
}

/// Concurrent failures on two controllers are each counted once: the
/// count is one atomic upsert, not a read and a write.
#[tokio::test]
async fn concurrent_failures_are_all_counted() {
    for engine in ENGINES {
        let lenient = ThrottleConfig {
            user_attempts: 1000,
            source_attempts: 1000,
            ..ThrottleConfig::default()
        };
        let (t, a, admin) = setup(engine, config(lenient.clone())).await;
        let b = Identity::open(reopen(&t).await.expect("reopen"), config(lenient))
            .await
            .expect("second controller");
        let source: IpAddr = "198.51.100.1".parse().expect("ip");
        let tries = 24;
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..tries {
            let id = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.spawn(async move {
                login_from(&id, "mallory", "wrong-wrong", Some(source))
                    .await
                    .map(|_| ())
            });
        }
        while let Some(r) = tasks.join_next().await {
            wrong(r.expect("task"));
        }
        let list = a.list_lockouts(&admin).await.expect("list");
        let count = |subject: &str| {
            list.iter()
                .find(|l| l.subject == subject)
                .map(|l| l.failures)
                .unwrap_or_else(|| panic!("{engine}: {subject} missing: {list:?}"))
        };
        assert_eq!(count("default/mallory"), tries, "{engine}");
        assert_eq!(count(&source.to_string()), tries, "{engine}");
    }
}

/// Rows whose count is forgotten and whose lock is over (written here
/// as an hour-old controller would have left them) are not listed, start
/// again from 1, and are deleted when a new failure starts a row; a row
/// still locked is kept.
#[tokio::test]
async fn expired_rows_are_pruned() {
    for engine in ENGINES {
        let (t, a, admin) = setup(engine, config(strict())).await;
        let now = nuage_store::now_ms();
        let hour = 3_600_000;
        let old = |subject: String, locked_until: i64| {
            let db = t.db.clone();
            async move {
                sqlx::query(
                    "INSERT INTO login_failures \
                       (kind, subject, failures, last_failure_at, locked_until, expires_at) \
                     VALUES ('user', $1, 2, $2, $3, $4)",
                )
                .bind(subject)
                .bind(now - 2 * hour)
                .bind(locked_until)
                .bind((now - hour).max(locked_until))
                .execute(db.writer())
                .await
                .expect("insert")
            }
        };
        for i in 0..5 {
            old(format!("default/ghost-{i}"), 0).await;
        }
        old("default/locked-long".into(), now + hour).await;
        assert_eq!(rows(&t.db).await, 6, "{engine}");
        let list = a.list_lockouts(&admin).await.expect("list");
        assert_eq!(
            list.len(),
            1,
            "{engine}: expired rows are not listed: {list:?}"
        );
        assert_eq!(list[0].subject, "default/locked-long");

        // A forgotten count starts again: 2 old failures and a new one do
        // not reach the threshold of 3.
        wrong(login_from(&a, "ghost-0", "x-wrong", None).await);
        wrong(login_from(&a, "ghost-0", "x-wrong", None).await);
        wrong(login_from(&a, "ghost-0", "x-wrong", None).await);
        throttled(login_from(&a, "ghost-0", "x-wrong", None).await);
        assert_eq!(
            rows(&t.db).await,
            2,
            "{engine}: the new count swept the expired rows, not the locked one"
        );
        throttled(login_from(&a, "locked-long", "x-wrong", None).await);
    }
}
