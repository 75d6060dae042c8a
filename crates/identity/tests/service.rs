//! The identity service on both store engines: what every front door relies on.

use nuage_identity::{
    Bootstrap, Identity, IdentityConfig, IdentityError, NewProject, NewUser, ProjectPatch,
    UserPatch,
};
use nuage_model::identity::{Actor, Assignment, Principal, Target};
use nuage_model::{ErrorKind, HasKind};
use nuage_store::testing::{fresh, ENGINES};

struct World {
    _t: nuage_store::testing::TestDb,
    id: Identity,
    admin: Principal,
    password: String,
}

async fn world(engine: &str) -> World {
    let t = fresh(engine).await.expect("db");
    let id = Identity::open(t.db.clone(), IdentityConfig::default())
        .await
        .expect("identity");
    let out = id
        .bootstrap(Bootstrap {
            admin_password: Some("admin-password-1".into()),
            access_key: None,
        })
        .await
        .expect("bootstrap");
    assert!(out.created);
    let (_, admin) = id
        .login("admin", None, "admin-password-1", None, None)
        .await
        .expect("admin login");
    World {
        _t: t,
        id,
        admin,
        password: "admin-password-1".into(),
    }
}

fn kind<T: std::fmt::Debug>(r: Result<T, IdentityError>) -> ErrorKind {
    r.expect_err("must fail").kind()
}

async fn user_with_role(w: &World, project: &str, user: &str, role: &str) -> Principal {
    let p = match w.id.find_project(project, None).await.expect("find") {
        Some(p) => p,
        None => {
            w.id.create_project(
                &w.admin,
                NewProject {
                    name: project.into(),
                    enabled: true,
                    ..Default::default()
                },
            )
            .await
            .expect("project")
        }
    };
    let u =
        w.id.create_user(
            &w.admin,
            NewUser {
                name: user.into(),
                password: Some("user-password-1".into()),
                enabled: true,
                ..Default::default()
            },
        )
        .await
        .expect("user");
    let r = w.id.get_role(&w.admin, role).await.expect("role");
    w.id.grant(
        &w.admin,
        &Assignment {
            actor: Actor::User(u.id),
            target: Target::Project(p.id.clone()),
            role_id: r.id,
        },
    )
    .await
    .expect("grant");
    w.id.login(user, None, "user-password-1", Some(project), None)
        .await
        .expect("login")
        .1
}

#[tokio::test]
async fn bootstrap_is_idempotent() {
    for engine in ENGINES {
        let w = world(engine).await;
        let again = w.id.bootstrap(Bootstrap::default()).await.expect("again");
        assert!(!again.created, "{engine}");
        assert!(again.admin_password.is_none());
        assert_eq!(w.admin.roles, vec!["admin", "member", "reader"]);
        assert_eq!(w.admin.project_name, "admin");
        let _ = &w.password;
    }
}

#[tokio::test]
async fn login_failures_look_alike_and_tokens_round_trip() {
    for engine in ENGINES {
        let w = world(engine).await;
        let wrong =
            w.id.login("admin", None, "nope-nope-nope", None, None)
                .await
                .expect_err("wrong");
        let unknown =
            w.id.login("ghost", None, "nope-nope-nope", None, None)
                .await
                .expect_err("unknown");
        assert_eq!(wrong.to_string(), unknown.to_string(), "{engine}");
        assert_eq!(wrong.kind(), ErrorKind::Unauthenticated);

        let (token, p) =
            w.id.login(
                "admin",
                Some("Default"),
                &w.password,
                Some("admin"),
                Some("Default"),
            )
            .await
            .expect("login");
        assert_eq!(
            w.id.validate(&token).await.expect("valid").user_id,
            p.user_id
        );
        let (rescoped, _) =
            w.id.authenticate_token(&token, None)
                .await
                .expect("token method");
        w.id.revoke_token(&p, &token).await.expect("revoke");
        assert_eq!(
            kind(w.id.validate(&token).await),
            ErrorKind::Unauthenticated,
            "{engine}"
        );
        // A token traded for a token dies with its original (Keystone).
        assert_eq!(
            kind(w.id.validate(&rescoped).await),
            ErrorKind::Unauthenticated,
            "{engine}"
        );
    }
}

#[tokio::test]
async fn roles_through_groups_and_their_removal() {
    for engine in ENGINES {
        let w = world(engine).await;
        let proj =
            w.id.create_project(
                &w.admin,
                NewProject {
                    name: "g".into(),
                    enabled: true,
                    ..Default::default()
                },
            )
            .await
            .expect("p");
        let u =
            w.id.create_user(
                &w.admin,
                NewUser {
                    name: "gu".into(),
                    password: Some("user-password-1".into()),
                    enabled: true,
                    ..Default::default()
                },
            )
            .await
            .expect("u");
        let g =
            w.id.create_group(&w.admin, "devs", None, "")
                .await
                .expect("g");
        w.id.add_user_to_group(&w.admin, &g.id, &u.id)
            .await
            .expect("member");
        // No role yet: no token for that project.
        assert_eq!(
            kind(
                w.id.login("gu", None, "user-password-1", Some("g"), None)
                    .await
            ),
            ErrorKind::Unauthenticated
        );
        let member = w.id.get_role(&w.admin, "member").await.expect("role");
        let a = Assignment {
            actor: Actor::Group(g.id.clone()),
            target: Target::Project(proj.id.clone()),
            role_id: member.id,
        };
        w.id.grant(&w.admin, &a).await.expect("grant");
        let (token, p) =
            w.id.login("gu", None, "user-password-1", Some("g"), None)
                .await
                .expect("login");
        assert_eq!(p.roles, vec!["member", "reader"], "{engine}");
        let eff =
            w.id.list_assignments(&w.admin, Default::default(), true)
                .await
                .expect("effective");
        assert!(
            eff.iter().any(|x| x.actor == Actor::User(u.id.clone())),
            "{engine}: {eff:?}"
        );
        w.id.remove_user_from_group(&w.admin, &g.id, &u.id)
            .await
            .expect("remove");
        assert_eq!(
            kind(w.id.validate(&token).await),
            ErrorKind::Unauthenticated,
            "{engine}"
        );
    }
}

#[tokio::test]
async fn policy_holds_in_the_core() {
    for engine in ENGINES {
        let w = world(engine).await;
        let member = user_with_role(&w, "a", "am", "member").await;
        let reader = user_with_role(&w, "b", "br", "reader").await;
        let new = || NewProject {
            name: "x".into(),
            enabled: true,
            ..Default::default()
        };
        assert_eq!(
            kind(w.id.create_project(&member, new()).await),
            ErrorKind::Forbidden,
            "{engine}"
        );
        assert_eq!(
            kind(
                w.id.set_quota(&member, &member.project_id, "instances", 1)
                    .await
            ),
            ErrorKind::Forbidden
        );
        assert_eq!(
            kind(w.id.quotas(&member, &reader.project_id).await),
            ErrorKind::Forbidden
        );
        w.id.quotas(&reader, &reader.project_id)
            .await
            .expect("a reader reads its quotas");
        assert_eq!(
            kind(
                w.id.create_access_key(&member, &reader.user_id, &reader.project_id)
                    .await
            ),
            ErrorKind::Forbidden
        );
        assert_eq!(
            kind(w.id.get_user(&member, &reader.user_id).await),
            ErrorKind::NotFound
        );
        let names: Vec<_> =
            w.id.list_projects(&member, None, None)
                .await
                .expect("list")
                .into_iter()
                .map(|p| p.name)
                .collect();
        assert_eq!(names, vec!["a"], "{engine}");
        assert_eq!(
            w.id.list_projects(&w.admin, None, None)
                .await
                .expect("all")
                .len(),
            3
        );
    }
}

#[tokio::test]
async fn concurrent_updates_conflict_instead_of_overwriting() {
    for engine in ENGINES {
        let w = world(engine).await;
        let p =
            w.id.create_project(
                &w.admin,
                NewProject {
                    name: "c".into(),
                    enabled: true,
                    ..Default::default()
                },
            )
            .await
            .expect("p");
        let patch = |d: &str| ProjectPatch {
            description: Some(d.into()),
            expected_version: Some(p.version),
            ..Default::default()
        };
        let (a, b) = tokio::join!(
            w.id.update_project(&w.admin, &p.id, patch("a")),
            w.id.update_project(&w.admin, &p.id, patch("b"))
        );
        assert!(
            a.is_ok() != b.is_ok(),
            "{engine}: exactly one wins ({a:?}, {b:?})"
        );
        let loser = if a.is_ok() { b } else { a };
        assert_eq!(kind(loser), ErrorKind::Conflict);
        let now = w.id.get_project(&w.admin, &p.id).await.expect("get");
        assert_eq!(now.version, 2, "{engine}");
    }
}

#[tokio::test]
async fn password_change_and_disable_revoke_tokens() {
    for engine in ENGINES {
        let w = world(engine).await;
        let p = user_with_role(&w, "pw", "pwu", "member").await;
        let (t1, _) =
            w.id.login("pwu", None, "user-password-1", Some("pw"), None)
                .await
                .expect("login");
        // Not without the original password, on any path.
        assert_eq!(
            kind(
                w.id.update_user(
                    &p,
                    &p.user_id,
                    UserPatch {
                        password: Some("user-password-2".into()),
                        ..Default::default()
                    },
                )
                .await
            ),
            ErrorKind::Forbidden
        );
        // A user changes its own password; its old tokens die.
        w.id.change_password(&p, &p.user_id, "user-password-1", "user-password-2")
            .await
            .expect("change");
        assert_eq!(
            kind(w.id.validate(&t1).await),
            ErrorKind::Unauthenticated,
            "{engine}"
        );
        assert_eq!(
            kind(
                w.id.login("pwu", None, "user-password-1", Some("pw"), None)
                    .await
            ),
            ErrorKind::Unauthenticated
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let (t2, _) =
            w.id.login("pwu", None, "user-password-2", Some("pw"), None)
                .await
                .expect("new password");
        // But it can't promote or rename itself.
        assert_eq!(
            kind(
                w.id.update_user(
                    &p,
                    &p.user_id,
                    UserPatch {
                        name: Some("boss".into()),
                        ..Default::default()
                    }
                )
                .await
            ),
            ErrorKind::Forbidden
        );
        w.id.update_user(
            &w.admin,
            &p.user_id,
            UserPatch {
                enabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .expect("disable");
        assert_eq!(
            kind(w.id.validate(&t2).await),
            ErrorKind::Unauthenticated,
            "{engine}"
        );
    }
}

#[tokio::test]
async fn access_keys_and_quotas() {
    for engine in ENGINES {
        let w = world(engine).await;
        let m = user_with_role(&w, "k", "ku", "member").await;
        let key =
            w.id.create_access_key(&m, &m.user_id, &m.project_id)
                .await
                .expect("key");
        assert_eq!(key.secret.as_deref().map(str::len), Some(40));
        let keys =
            w.id.list_access_keys(&m, Some(&m.user_id))
                .await
                .expect("list");
        assert_eq!(keys.len(), 1, "{engine}");
        w.id.delete_access_key(&m, &key.access_key_id)
            .await
            .expect("delete");
        assert_eq!(
            kind(w.id.get_access_key(&m, &key.access_key_id).await),
            ErrorKind::NotFound
        );

        w.id.set_quota(&w.admin, &m.project_id, "cores", 8)
            .await
            .expect("set");
        assert_eq!(
            w.id.quota_limit(&m.project_id, "cores")
                .await
                .expect("limit"),
            8,
            "{engine}"
        );
        assert_eq!(
            w.id.quota_limit(&m.project_id, "ram")
                .await
                .expect("default"),
            100 * 1024
        );
        assert_eq!(
            kind(w.id.set_quota(&w.admin, &m.project_id, "unicorns", 1).await),
            ErrorKind::Invalid
        );
        assert_eq!(
            kind(w.id.set_quota(&w.admin, &m.project_id, "cores", -5).await),
            ErrorKind::Invalid
        );
        assert_eq!(
            kind(
                w.id.set_quota(&w.admin, "0123456789abcdef0123456789abcdef", "cores", 1)
                    .await
            ),
            ErrorKind::NotFound
        );
    }
}

/// Two controllers on one database: a change made through one reaches the
/// other's cache through the revision counter.
#[tokio::test]
async fn a_second_controller_follows_changes() {
    for engine in ENGINES {
        let w = world(engine).await;
        let other = Identity::open(
            w.id.db().clone(),
            IdentityConfig {
                refresh_every: std::time::Duration::from_millis(50),
                ..Default::default()
            },
        )
        .await
        .expect("second");
        let _task = other.spawn_refresher();
        let (token, p) =
            w.id.login("admin", None, &w.password, None, None)
                .await
                .expect("login");
        other
            .validate(&token)
            .await
            .expect("the second controller accepts the first's tokens");
        w.id.revoke_token(&p, &token).await.expect("revoke");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(
            kind(other.validate(&token).await),
            ErrorKind::Unauthenticated,
            "{engine}"
        );
    }
}

/// Keystone's audit chain: a password token names only itself; a token
/// traded for a token names itself, then its chain's first token, however
/// many trades deep.
#[tokio::test]
async fn a_traded_token_names_its_chain() {
    for engine in ENGINES {
        let w = world(engine).await;
        let (first, p) =
            w.id.login("admin", None, &w.password, None, None)
                .await
                .expect("login");
        assert_eq!(w.id.audit_ids(&first), Some(vec![p.audit_id.clone()]));
        let (second, p2) = w.id.authenticate_token(&first, None).await.expect("trade");
        assert_ne!(p2.audit_id, p.audit_id, "{engine}");
        assert_eq!(
            w.id.audit_ids(&second),
            Some(vec![p2.audit_id.clone(), p.audit_id.clone()]),
            "{engine}"
        );
        let (third, p3) =
            w.id.authenticate_token(&second, None)
                .await
                .expect("trade again");
        assert_eq!(
            w.id.audit_ids(&third),
            Some(vec![p3.audit_id, p.audit_id.clone()]),
            "{engine}"
        );
        assert_eq!(w.id.audit_ids("nu1_not-a-token"), None);
    }
}
