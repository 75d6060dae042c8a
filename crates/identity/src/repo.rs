//! The identity service's SQL. Written once for SQLite and PostgreSQL.

use nuage_model::identity::{
    AccessKey, Actor, Assignment, Domain, Group, Project, Quota, Role, Target, User,
};
use nuage_store::sqlx::{self, AnyExecutor};
use nuage_store::{StoreError, StoreResult};

use crate::throttle::{Record, Subject};

type DomainRow = (String, String, String, i64, i64);
type ProjectRow = (String, String, String, String, i64, i64);
type UserRow = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    i64,
);

fn domain(r: DomainRow) -> Domain {
    Domain {
        id: r.0,
        name: r.1,
        description: r.2,
        enabled: r.3 != 0,
        version: r.4,
    }
}

fn project(r: ProjectRow) -> Project {
    Project {
        id: r.0,
        name: r.1,
        domain_id: r.2,
        description: r.3,
        enabled: r.4 != 0,
        version: r.5,
    }
}

fn user(r: UserRow) -> User {
    User {
        id: r.0,
        name: r.1,
        domain_id: r.2,
        default_project_id: r.3,
        email: r.4,
        enabled: r.5 != 0,
        version: r.6,
    }
}

const DOMAIN_COLS: &str = "id, name, description, enabled, version";
const PROJECT_COLS: &str = "id, name, domain_id, description, enabled, version";
const USER_COLS: &str = "id, name, domain_id, default_project_id, email, enabled, version";

// ---- domains ----

pub async fn insert_domain<'e>(e: impl AnyExecutor<'e>, d: &Domain, now: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO domains (id, name, description, enabled, version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 1, $5, $5)",
    )
    .bind(&d.id)
    .bind(&d.name)
    .bind(&d.description)
    .bind(d.enabled as i64)
    .bind(now)
    .execute(e)
    .await
    .map_err(|err| StoreError::unique(err, format!("domain {}", d.name)))?;
    Ok(())
}

pub async fn list_domains<'e>(e: impl AnyExecutor<'e>) -> StoreResult<Vec<Domain>> {
    let rows: Vec<DomainRow> =
        sqlx::query_as(&format!("SELECT {DOMAIN_COLS} FROM domains ORDER BY name"))
            .fetch_all(e)
            .await?;
    Ok(rows.into_iter().map(domain).collect())
}

pub async fn find_domain<'e>(
    e: impl AnyExecutor<'e>,
    id_or_name: &str,
) -> StoreResult<Option<Domain>> {
    let row: Option<DomainRow> = sqlx::query_as(&format!(
        "SELECT {DOMAIN_COLS} FROM domains WHERE id = $1 OR name = $1 ORDER BY (id = $1) DESC LIMIT 1"
    ))
    .bind(id_or_name)
    .fetch_optional(e)
    .await?;
    Ok(row.map(domain))
}

// ---- projects ----

pub async fn insert_project<'e>(e: impl AnyExecutor<'e>, p: &Project, now: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO projects (id, name, domain_id, description, enabled, version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 1, $6, $6)",
    )
    .bind(&p.id)
    .bind(&p.name)
    .bind(&p.domain_id)
    .bind(&p.description)
    .bind(p.enabled as i64)
    .bind(now)
    .execute(e)
    .await
    .map_err(|err| StoreError::unique(err, format!("project {}", p.name)))?;
    Ok(())
}

pub async fn get_project<'e>(e: impl AnyExecutor<'e>, id: &str) -> StoreResult<Option<Project>> {
    let row: Option<ProjectRow> = sqlx::query_as(&format!(
        "SELECT {PROJECT_COLS} FROM projects WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(e)
    .await?;
    Ok(row.map(project))
}

pub async fn find_project_by_name<'e>(
    e: impl AnyExecutor<'e>,
    domain_id: &str,
    name: &str,
) -> StoreResult<Option<Project>> {
    let row: Option<ProjectRow> = sqlx::query_as(&format!(
        "SELECT {PROJECT_COLS} FROM projects WHERE domain_id = $1 AND name = $2"
    ))
    .bind(domain_id)
    .bind(name)
    .fetch_optional(e)
    .await?;
    Ok(row.map(project))
}

/// Projects, optionally only those named `name` or in `domain_id`.
pub async fn list_projects<'e>(
    e: impl AnyExecutor<'e>,
    name: Option<&str>,
    domain_id: Option<&str>,
) -> StoreResult<Vec<Project>> {
    let rows: Vec<ProjectRow> = sqlx::query_as(&format!(
        "SELECT {PROJECT_COLS} FROM projects \
         WHERE ($1 IS NULL OR name = $1) AND ($2 IS NULL OR domain_id = $2) ORDER BY name, id"
    ))
    .bind(name)
    .bind(domain_id)
    .fetch_all(e)
    .await?;
    Ok(rows.into_iter().map(project).collect())
}

/// Projects on which `user_id` holds a role, directly or through a group.
pub async fn list_user_projects<'e>(
    e: impl AnyExecutor<'e>,
    user_id: &str,
) -> StoreResult<Vec<Project>> {
    let rows: Vec<ProjectRow> = sqlx::query_as(&format!(
        "SELECT {PROJECT_COLS} FROM projects WHERE id IN (\
           SELECT target_id FROM assignments WHERE target_type = 'project' AND (\
             (actor_type = 'user' AND actor_id = $1) OR \
             (actor_type = 'group' AND actor_id IN (SELECT group_id FROM group_members WHERE user_id = $1)))) \
         ORDER BY name, id"
    ))
    .bind(user_id)
    .fetch_all(e)
    .await?;
    Ok(rows.into_iter().map(project).collect())
}

/// Writes `p` if its stored version is still `p.version`; bumps the version.
pub async fn update_project<'e>(e: impl AnyExecutor<'e>, p: &Project, now: i64) -> StoreResult<()> {
    let res = sqlx::query(
        "UPDATE projects SET name = $1, description = $2, enabled = $3, version = version + 1, updated_at = $4 \
         WHERE id = $5 AND version = $6",
    )
    .bind(&p.name)
    .bind(&p.description)
    .bind(p.enabled as i64)
    .bind(now)
    .bind(&p.id)
    .bind(p.version)
    .execute(e)
    .await
    .map_err(|err| StoreError::unique(err, format!("project {}", p.name)))?;
    if res.rows_affected() == 0 {
        return Err(StoreError::Conflict {
            what: format!("project {}", p.id),
        });
    }
    Ok(())
}

pub async fn delete_project(tx: &mut nuage_store::Tx, id: &str) -> StoreResult<bool> {
    sqlx::query("DELETE FROM assignments WHERE target_type = 'project' AND target_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    let res = sqlx::query("DELETE FROM projects WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(res.rows_affected() > 0)
}

// ---- users ----

pub async fn insert_user<'e>(
    e: impl AnyExecutor<'e>,
    u: &User,
    password_hash: Option<&str>,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO users (id, name, domain_id, default_project_id, email, password_hash, enabled, version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $8)",
    )
    .bind(&u.id)
    .bind(&u.name)
    .bind(&u.domain_id)
    .bind(&u.default_project_id)
    .bind(&u.email)
    .bind(password_hash)
    .bind(u.enabled as i64)
    .bind(now)
    .execute(e)
    .await
    .map_err(|err| StoreError::unique(err, format!("user {}", u.name)))?;
    Ok(())
}

pub async fn get_user<'e>(e: impl AnyExecutor<'e>, id: &str) -> StoreResult<Option<User>> {
    let row: Option<UserRow> =
        sqlx::query_as(&format!("SELECT {USER_COLS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(e)
            .await?;
    Ok(row.map(user))
}

pub async fn find_user_by_name<'e>(
    e: impl AnyExecutor<'e>,
    domain_id: &str,
    name: &str,
) -> StoreResult<Option<User>> {
    let row: Option<UserRow> = sqlx::query_as(&format!(
        "SELECT {USER_COLS} FROM users WHERE domain_id = $1 AND name = $2"
    ))
    .bind(domain_id)
    .bind(name)
    .fetch_optional(e)
    .await?;
    Ok(row.map(user))
}

pub async fn password_hash<'e>(
    e: impl AnyExecutor<'e>,
    user_id: &str,
) -> StoreResult<Option<String>> {
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT password_hash FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(e)
            .await?;
    Ok(row.and_then(|r| r.0))
}

pub async fn list_users<'e>(
    e: impl AnyExecutor<'e>,
    name: Option<&str>,
    domain_id: Option<&str>,
) -> StoreResult<Vec<User>> {
    let rows: Vec<UserRow> = sqlx::query_as(&format!(
        "SELECT {USER_COLS} FROM users \
         WHERE ($1 IS NULL OR name = $1) AND ($2 IS NULL OR domain_id = $2) ORDER BY name, id"
    ))
    .bind(name)
    .bind(domain_id)
    .fetch_all(e)
    .await?;
    Ok(rows.into_iter().map(user).collect())
}

pub async fn update_user<'e>(
    e: impl AnyExecutor<'e>,
    u: &User,
    password_hash: Option<&str>,
    now: i64,
) -> StoreResult<()> {
    let res = sqlx::query(
        "UPDATE users SET name = $1, default_project_id = $2, email = $3, enabled = $4, \
           password_hash = COALESCE($5, password_hash), version = version + 1, updated_at = $6 \
         WHERE id = $7 AND version = $8",
    )
    .bind(&u.name)
    .bind(&u.default_project_id)
    .bind(&u.email)
    .bind(u.enabled as i64)
    .bind(password_hash)
    .bind(now)
    .bind(&u.id)
    .bind(u.version)
    .execute(e)
    .await
    .map_err(|err| StoreError::unique(err, format!("user {}", u.name)))?;
    if res.rows_affected() == 0 {
        return Err(StoreError::Conflict {
            what: format!("user {}", u.id),
        });
    }
    Ok(())
}

pub async fn delete_user(tx: &mut nuage_store::Tx, id: &str) -> StoreResult<bool> {
    sqlx::query("DELETE FROM assignments WHERE actor_type = 'user' AND actor_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    let res = sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(res.rows_affected() > 0)
}

pub async fn revoke_user_tokens<'e>(
    e: impl AnyExecutor<'e>,
    user_id: &str,
    before: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO user_revocations (user_id, revoked_before) VALUES ($1, $2) \
         ON CONFLICT (user_id) DO UPDATE SET revoked_before = $2",
    )
    .bind(user_id)
    .bind(before)
    .execute(e)
    .await?;
    Ok(())
}

// ---- groups ----

type GroupRow = (String, String, String, String, i64);

fn group(r: GroupRow) -> Group {
    Group {
        id: r.0,
        name: r.1,
        domain_id: r.2,
        description: r.3,
        version: r.4,
    }
}

pub async fn insert_group<'e>(e: impl AnyExecutor<'e>, g: &Group, now: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO user_groups (id, name, domain_id, description, version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 1, $5, $5)",
    )
    .bind(&g.id)
    .bind(&g.name)
    .bind(&g.domain_id)
    .bind(&g.description)
    .bind(now)
    .execute(e)
    .await
    .map_err(|err| StoreError::unique(err, format!("group {}", g.name)))?;
    Ok(())
}

pub async fn get_group<'e>(e: impl AnyExecutor<'e>, id: &str) -> StoreResult<Option<Group>> {
    let row: Option<GroupRow> = sqlx::query_as(
        "SELECT id, name, domain_id, description, version FROM user_groups WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(e)
    .await?;
    Ok(row.map(group))
}

pub async fn list_groups<'e>(
    e: impl AnyExecutor<'e>,
    name: Option<&str>,
) -> StoreResult<Vec<Group>> {
    let rows: Vec<GroupRow> = sqlx::query_as(
        "SELECT id, name, domain_id, description, version FROM user_groups \
         WHERE ($1 IS NULL OR name = $1) ORDER BY name, id",
    )
    .bind(name)
    .fetch_all(e)
    .await?;
    Ok(rows.into_iter().map(group).collect())
}

pub async fn delete_group(tx: &mut nuage_store::Tx, id: &str) -> StoreResult<bool> {
    sqlx::query("DELETE FROM assignments WHERE actor_type = 'group' AND actor_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    let res = sqlx::query("DELETE FROM user_groups WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(res.rows_affected() > 0)
}

pub async fn add_member<'e>(
    e: impl AnyExecutor<'e>,
    group_id: &str,
    user_id: &str,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO group_members (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(group_id)
    .bind(user_id)
    .execute(e)
    .await?;
    Ok(())
}

pub async fn remove_member<'e>(
    e: impl AnyExecutor<'e>,
    group_id: &str,
    user_id: &str,
) -> StoreResult<bool> {
    let res = sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
        .bind(group_id)
        .bind(user_id)
        .execute(e)
        .await?;
    Ok(res.rows_affected() > 0)
}

pub async fn group_users<'e>(e: impl AnyExecutor<'e>, group_id: &str) -> StoreResult<Vec<User>> {
    let rows: Vec<UserRow> = sqlx::query_as(&format!(
        "SELECT {USER_COLS} FROM users WHERE id IN (SELECT user_id FROM group_members WHERE group_id = $1) \
         ORDER BY name, id"
    ))
    .bind(group_id)
    .fetch_all(e)
    .await?;
    Ok(rows.into_iter().map(user).collect())
}

// ---- roles ----

pub async fn insert_role<'e>(e: impl AnyExecutor<'e>, r: &Role, now: i64) -> StoreResult<()> {
    sqlx::query("INSERT INTO roles (id, name, description, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&r.id)
        .bind(&r.name)
        .bind(&r.description)
        .bind(now)
        .execute(e)
        .await
        .map_err(|err| StoreError::unique(err, format!("role {}", r.name)))?;
    Ok(())
}

pub async fn list_roles<'e>(e: impl AnyExecutor<'e>, name: Option<&str>) -> StoreResult<Vec<Role>> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT id, name, description FROM roles WHERE ($1 IS NULL OR name = $1) ORDER BY name",
    )
    .bind(name)
    .fetch_all(e)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name, description)| Role {
            id,
            name,
            description,
        })
        .collect())
}

pub async fn find_role<'e>(e: impl AnyExecutor<'e>, id_or_name: &str) -> StoreResult<Option<Role>> {
    let row: Option<(String, String, String)> = sqlx::query_as(
        "SELECT id, name, description FROM roles WHERE id = $1 OR name = $1 ORDER BY (id = $1) DESC LIMIT 1",
    )
    .bind(id_or_name)
    .fetch_optional(e)
    .await?;
    Ok(row.map(|(id, name, description)| Role {
        id,
        name,
        description,
    }))
}

pub async fn delete_role<'e>(e: impl AnyExecutor<'e>, id: &str) -> StoreResult<bool> {
    let res = sqlx::query("DELETE FROM roles WHERE id = $1")
        .bind(id)
        .execute(e)
        .await?;
    Ok(res.rows_affected() > 0)
}

// ---- assignments ----

fn actor_parts(a: &Actor) -> (&'static str, &str) {
    match a {
        Actor::User(id) => ("user", id),
        Actor::Group(id) => ("group", id),
    }
}

fn target_parts(t: &Target) -> (&'static str, &str) {
    match t {
        Target::Project(id) => ("project", id),
        Target::Domain(id) => ("domain", id),
    }
}

pub async fn insert_assignment<'e>(
    e: impl AnyExecutor<'e>,
    a: &Assignment,
    now: i64,
) -> StoreResult<()> {
    let (at, aid) = actor_parts(&a.actor);
    let (tt, tid) = target_parts(&a.target);
    sqlx::query(
        "INSERT INTO assignments (actor_type, actor_id, target_type, target_id, role_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(at)
    .bind(aid)
    .bind(tt)
    .bind(tid)
    .bind(&a.role_id)
    .bind(now)
    .execute(e)
    .await?;
    Ok(())
}

pub async fn delete_assignment<'e>(e: impl AnyExecutor<'e>, a: &Assignment) -> StoreResult<bool> {
    let (at, aid) = actor_parts(&a.actor);
    let (tt, tid) = target_parts(&a.target);
    let res = sqlx::query(
        "DELETE FROM assignments WHERE actor_type = $1 AND actor_id = $2 AND target_type = $3 \
         AND target_id = $4 AND role_id = $5",
    )
    .bind(at)
    .bind(aid)
    .bind(tt)
    .bind(tid)
    .bind(&a.role_id)
    .execute(e)
    .await?;
    Ok(res.rows_affected() > 0)
}

/// Filters for [`list_assignments`]; `None` matches anything.
#[derive(Debug, Default, Clone)]
pub struct AssignmentFilter {
    pub actor: Option<Actor>,
    pub target: Option<Target>,
    pub role_id: Option<String>,
}

pub async fn list_assignments<'e>(
    e: impl AnyExecutor<'e>,
    f: &AssignmentFilter,
) -> StoreResult<Vec<Assignment>> {
    let (at, aid) = f.actor.as_ref().map(actor_parts).unzip();
    let (tt, tid) = f.target.as_ref().map(target_parts).unzip();
    let rows: Vec<(String, String, String, String, String)> = sqlx::query_as(
        "SELECT actor_type, actor_id, target_type, target_id, role_id FROM assignments \
         WHERE ($1 IS NULL OR actor_type = $1) AND ($2 IS NULL OR actor_id = $2) \
         AND ($3 IS NULL OR target_type = $3) AND ($4 IS NULL OR target_id = $4) \
         AND ($5 IS NULL OR role_id = $5) \
         ORDER BY actor_type, actor_id, target_type, target_id, role_id",
    )
    .bind(at)
    .bind(aid)
    .bind(tt)
    .bind(tid)
    .bind(f.role_id.as_deref())
    .fetch_all(e)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(at, aid, tt, tid, role_id)| {
            let actor = match at.as_str() {
                "user" => Actor::User(aid),
                "group" => Actor::Group(aid),
                _ => return None,
            };
            let target = match tt.as_str() {
                "project" => Target::Project(tid),
                "domain" => Target::Domain(tid),
                _ => return None,
            };
            Some(Assignment {
                actor,
                target,
                role_id,
            })
        })
        .collect())
}

/// Names of the roles `user_id` holds on `project_id`, directly or through
/// its groups (implied roles not yet expanded).
pub async fn user_project_roles<'e>(
    e: impl AnyExecutor<'e>,
    user_id: &str,
    project_id: &str,
) -> StoreResult<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT r.name FROM assignments a JOIN roles r ON r.id = a.role_id \
         WHERE a.target_type = 'project' AND a.target_id = $1 AND (\
           (a.actor_type = 'user' AND a.actor_id = $2) OR \
           (a.actor_type = 'group' AND a.actor_id IN (SELECT group_id FROM group_members WHERE user_id = $2)))",
    )
    .bind(project_id)
    .bind(user_id)
    .fetch_all(e)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

// ---- access keys ----

type KeyRow = (String, String, String, String, i64);

fn access_key(r: KeyRow) -> AccessKey {
    AccessKey {
        access_key_id: r.0,
        secret: Some(r.1),
        user_id: r.2,
        project_id: r.3,
        created_at: r.4,
    }
}

pub async fn insert_access_key<'e>(
    e: impl AnyExecutor<'e>,
    k: &AccessKey,
    secret: &str,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO access_keys (access_key_id, secret, user_id, project_id, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&k.access_key_id)
    .bind(secret)
    .bind(&k.user_id)
    .bind(&k.project_id)
    .bind(k.created_at)
    .execute(e)
    .await
    .map_err(|err| StoreError::unique(err, "access key"))?;
    Ok(())
}

pub async fn get_access_key<'e>(
    e: impl AnyExecutor<'e>,
    id: &str,
) -> StoreResult<Option<AccessKey>> {
    let row: Option<KeyRow> = sqlx::query_as(
        "SELECT access_key_id, secret, user_id, project_id, created_at FROM access_keys WHERE access_key_id = $1",
    )
    .bind(id)
    .fetch_optional(e)
    .await?;
    Ok(row.map(access_key))
}

pub async fn list_access_keys<'e>(
    e: impl AnyExecutor<'e>,
    user_id: Option<&str>,
) -> StoreResult<Vec<AccessKey>> {
    let rows: Vec<KeyRow> = sqlx::query_as(
        "SELECT access_key_id, secret, user_id, project_id, created_at FROM access_keys \
         WHERE ($1 IS NULL OR user_id = $1) ORDER BY created_at, access_key_id",
    )
    .bind(user_id)
    .fetch_all(e)
    .await?;
    Ok(rows.into_iter().map(access_key).collect())
}

pub async fn delete_access_key<'e>(e: impl AnyExecutor<'e>, id: &str) -> StoreResult<bool> {
    let res = sqlx::query("DELETE FROM access_keys WHERE access_key_id = $1")
        .bind(id)
        .execute(e)
        .await?;
    Ok(res.rows_affected() > 0)
}

// ---- tokens ----

pub async fn revoke_token<'e>(
    e: impl AnyExecutor<'e>,
    audit_id: &str,
    expires_at: i64,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO revoked_tokens (audit_id, expires_at, revoked_at) VALUES ($1, $2, $3) \
         ON CONFLICT (audit_id) DO NOTHING",
    )
    .bind(audit_id)
    .bind(expires_at)
    .bind(now)
    .execute(e)
    .await?;
    Ok(())
}

pub async fn purge_revocations<'e>(e: impl AnyExecutor<'e>, now: i64) -> StoreResult<u64> {
    let res = sqlx::query("DELETE FROM revoked_tokens WHERE expires_at <= $1")
        .bind(now)
        .execute(e)
        .await?;
    Ok(res.rows_affected())
}

// ---- failed logins ----

type FailureRow = (String, String, i64, i64, i64);
const FAILURE_COLS: &str = "kind, subject, failures, last_failure_at, locked_until";

fn failure_record(r: FailureRow) -> Record {
    Record {
        kind: r.0,
        subject: r.1,
        failures: u32::try_from(r.2).unwrap_or(u32::MAX),
        last_failure_ms: r.3,
        locked_until_ms: r.4,
    }
}

/// The rows of `subjects` (one or two: a user and an address), in one
/// read by primary key; the login's only query on the throttle while
/// nothing fails.
pub async fn login_failures<'e>(
    e: impl AnyExecutor<'e>,
    subjects: &[&Subject],
) -> StoreResult<Vec<Record>> {
    let (first, second) = match subjects {
        [] => return Ok(Vec::new()),
        [one] => (*one, *one),
        [one, two, ..] => (*one, *two),
    };
    let rows: Vec<FailureRow> = sqlx::query_as(&format!(
        "SELECT {FAILURE_COLS} FROM login_failures \
         WHERE (kind = $1 AND subject = $2) OR (kind = $3 AND subject = $4)"
    ))
    .bind(first.kind())
    .bind(first.key())
    .bind(second.kind())
    .bind(second.key())
    .fetch_all(e)
    .await?;
    Ok(rows.into_iter().map(failure_record).collect())
}

/// Counts one failure against `s` in one atomic upsert, starting again
/// from 1 when the last failure is older than `forgotten_before`, and
/// returns the count this failure made. Concurrent failures (on this
/// controller or another) each get their own count.
pub async fn count_login_failure<'e>(
    e: impl AnyExecutor<'e>,
    s: &Subject,
    now: i64,
    forgotten_before: i64,
    keep_until: i64,
) -> StoreResult<u32> {
    let (failures,): (i64,) = sqlx::query_as(
        "INSERT INTO login_failures \
           (kind, subject, failures, last_failure_at, locked_until, expires_at) \
         VALUES ($1, $2, 1, $3, 0, $4) \
         ON CONFLICT (kind, subject) DO UPDATE SET \
           failures = CASE WHEN login_failures.last_failure_at < $5 THEN 1 \
                      ELSE login_failures.failures + 1 END, \
           last_failure_at = $3, \
           expires_at = CASE WHEN login_failures.expires_at > $4 \
                        THEN login_failures.expires_at ELSE $4 END \
         RETURNING failures",
    )
    .bind(s.kind())
    .bind(s.key())
    .bind(now)
    .bind(keep_until)
    .bind(forgotten_before)
    .fetch_one(e)
    .await?;
    Ok(u32::try_from(failures).unwrap_or(u32::MAX))
}

/// Locks `s` until `until`, unless it is locked longer already: the lock
/// only grows, so concurrent failures leave the longest lock they earned.
pub async fn lock_login_subject<'e>(
    e: impl AnyExecutor<'e>,
    s: &Subject,
    until: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE login_failures SET locked_until = $1, \
           expires_at = CASE WHEN expires_at > $1 THEN expires_at ELSE $1 END \
         WHERE kind = $2 AND subject = $3 AND locked_until < $1",
    )
    .bind(until)
    .bind(s.kind())
    .bind(s.key())
    .execute(e)
    .await?;
    Ok(())
}

/// Forgets `s`'s failures; true when there were some.
pub async fn clear_login_failures<'e>(e: impl AnyExecutor<'e>, s: &Subject) -> StoreResult<bool> {
    let res = sqlx::query("DELETE FROM login_failures WHERE kind = $1 AND subject = $2")
        .bind(s.kind())
        .bind(s.key())
        .execute(e)
        .await?;
    Ok(res.rows_affected() > 0)
}

/// The rows that still mean something at `now`, locked ones first, then
/// users before addresses; at most `limit`.
pub async fn list_login_failures<'e>(
    e: impl AnyExecutor<'e>,
    now: i64,
    limit: i64,
) -> StoreResult<Vec<Record>> {
    let rows: Vec<FailureRow> = sqlx::query_as(&format!(
        "SELECT {FAILURE_COLS} FROM login_failures WHERE expires_at > $1 \
         ORDER BY CASE WHEN locked_until > $1 THEN 0 ELSE 1 END, \
           CASE WHEN kind = 'user' THEN 0 ELSE 1 END, subject \
         LIMIT $2"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(e)
    .await?;
    Ok(rows.into_iter().map(failure_record).collect())
}

/// Deletes at most `batch` rows that expired by `now`, oldest first; how
/// many it deleted.
pub async fn prune_login_failures<'e>(
    e: impl AnyExecutor<'e>,
    now: i64,
    batch: i64,
) -> StoreResult<u64> {
    let res = sqlx::query(
        "DELETE FROM login_failures WHERE (kind, subject) IN \
           (SELECT kind, subject FROM login_failures WHERE expires_at <= $1 \
            ORDER BY expires_at LIMIT $2)",
    )
    .bind(now)
    .bind(batch)
    .execute(e)
    .await?;
    Ok(res.rows_affected())
}

// ---- secrets ----

pub async fn get_secret<'e>(e: impl AnyExecutor<'e>, name: &str) -> StoreResult<Option<Vec<u8>>> {
    let row: Option<(Vec<u8>,)> = sqlx::query_as("SELECT value FROM secrets WHERE name = $1")
        .bind(name)
        .fetch_optional(e)
        .await?;
    Ok(row.map(|r| r.0))
}

/// Stores `value` under `name` unless a value is there already; returns the
/// value that won, so controllers starting together agree on one key.
pub async fn put_secret_once(
    tx: &mut nuage_store::Tx,
    name: &str,
    value: &[u8],
    now: i64,
) -> StoreResult<Vec<u8>> {
    sqlx::query(
        "INSERT INTO secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(value)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    get_secret(&mut **tx, name)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("secret {name}")))
}

// ---- quotas ----

pub async fn list_quotas<'e>(e: impl AnyExecutor<'e>, project_id: &str) -> StoreResult<Vec<Quota>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT resource, hard_limit FROM quotas WHERE project_id = $1 ORDER BY resource",
    )
    .bind(project_id)
    .fetch_all(e)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(resource, limit)| Quota {
            project_id: project_id.to_string(),
            resource,
            limit,
        })
        .collect())
}

pub async fn set_quota<'e>(e: impl AnyExecutor<'e>, q: &Quota) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO quotas (project_id, resource, hard_limit, version) VALUES ($1, $2, $3, 1) \
         ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = $3, version = quotas.version + 1",
    )
    .bind(&q.project_id)
    .bind(&q.resource)
    .bind(q.limit)
    .execute(e)
    .await
    .map_err(|err| match &err {
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
            StoreError::not_found(format!("project {}", q.project_id))
        }
        _ => StoreError::Query(err),
    })?;
    Ok(())
}
