//! Native API for identity: tokens, domains, projects, users, groups, roles,
//! role assignments, access keys and quotas. Path segments naming a project,
//! user, role, group or domain accept its id or its name (in the Default
//! domain for projects, users and groups).

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Router;
use http::StatusCode;
use nuage_identity::{AssignmentFilter, IdentityError, Login, Ref};
use nuage_identity::{NewProject, NewUser, ProjectPatch, UserPatch};
use nuage_model::identity::{Actor, Assignment, Group, Principal, Project, Role, Target, User};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Caller, Json, NativeError};
use crate::auth::Peer;
use crate::SharedCore;

type Result<T> = std::result::Result<T, NativeError>;

fn items<T: serde::Serialize>(v: Vec<T>) -> Response {
    axum::Json(json!({ "items": v })).into_response()
}

fn created<T: serde::Serialize>(v: T) -> Response {
    (StatusCode::CREATED, axum::Json(v)).into_response()
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn principal_view(p: &Principal) -> Value {
    json!({
        "user": {"id": p.user_id, "name": p.user_name, "domain_id": p.domain_id},
        "project": {"id": p.project_id, "name": p.project_name, "domain_id": p.project_domain_id},
        "roles": p.roles,
        "method": p.method,
        "expires_at": if p.expires_at == i64::MAX { Value::Null } else { Value::String(rfc3339(p.expires_at)) },
    })
}

async fn project(core: &SharedCore, s: &str) -> Result<Project> {
    core.identity
        .find_project(s, None)
        .await?
        .ok_or_else(|| NativeError::not_found(format!("project {s} not found")))
}

async fn user(core: &SharedCore, s: &str) -> Result<User> {
    core.identity
        .find_user(s, None)
        .await?
        .ok_or_else(|| NativeError::not_found(format!("user {s} not found")))
}

async fn role(core: &SharedCore, caller: &Principal, s: &str) -> Result<Role> {
    Ok(core.identity.get_role(caller, s).await?)
}

async fn group(core: &SharedCore, caller: &Principal, s: &str) -> Result<Group> {
    if let Ok(g) = core.identity.get_group(caller, s).await {
        return Ok(g);
    }
    core.identity
        .list_groups(caller, Some(s))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| NativeError::not_found(format!("group {s} not found")))
}

// ---------------------------------------------------------------- tokens

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    user: String,
    password: String,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    project: Option<String>,
}

/// An identity error as the native dialect answers it; a login's "try
/// again later" refusals (429 throttled, 503 every hashing worker busy)
/// carry `Retry-After`.
fn refusal(e: IdentityError) -> Response {
    let (status, code) = match &e {
        IdentityError::Throttled { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
        IdentityError::Busy { .. } => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        _ => return NativeError::from(e).into_response(),
    };
    let mut resp = NativeError::new(status, code, e.to_string()).into_response();
    if let Some(d) = e.retry_after() {
        resp.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from(nuage_identity::secs(d)),
        );
    }
    resp
}

async fn issue_token(
    State(core): State<SharedCore>,
    Peer(source): Peer,
    Json(req): Json<TokenRequest>,
) -> Result<Response> {
    let login = Login {
        user: Ref::any(&req.user, req.domain.as_deref()),
        password: &req.password,
        project: req
            .project
            .as_deref()
            .map(|p| Ref::any(p, req.domain.as_deref())),
        source,
    };
    let (token, p) = match core.identity.login_with(login).await {
        Ok(x) => x,
        Err(e) => return Ok(refusal(e)),
    };
    let mut body = principal_view(&p);
    body["token"] = Value::String(token.clone());
    let mut resp = created(body);
    if let Ok(v) = http::HeaderValue::from_str(&token) {
        resp.headers_mut().insert("x-subject-token", v);
    }
    Ok(resp)
}

async fn whoami(Caller(p): Caller) -> Response {
    axum::Json(principal_view(&p)).into_response()
}

async fn revoke_own_token(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    parts: http::request::Parts,
) -> Result<StatusCode> {
    let token = crate::auth::token(&parts).ok_or_else(|| {
        NativeError::invalid("only a token can be revoked; this request was signed")
    })?;
    core.identity.revoke_token(&p, token).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- lockouts

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LockoutQuery {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    source: Option<std::net::IpAddr>,
}

/// `GET /nuage/v1/login-lockouts`: who failed logins lately, and who is
/// locked until when (admins).
async fn list_lockouts(State(core): State<SharedCore>, Caller(p): Caller) -> Result<Response> {
    let list = core.identity.list_lockouts(&p).await?;
    let items_v: Vec<Value> = list
        .into_iter()
        .map(|l| {
            json!({
                "kind": l.kind,
                "subject": l.subject,
                "failures": l.failures,
                "locked_until": l.locked_until.map(rfc3339),
            })
        })
        .collect();
    Ok(items(items_v))
}

/// `DELETE /nuage/v1/login-lockouts?user=..&source=..`: forgets a user's (id
/// or name, or an unknown name as listed) or an address's failed logins.
async fn clear_lockout(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Query(q): Query<LockoutQuery>,
) -> Result<StatusCode> {
    if q.user.is_none() && q.source.is_none() {
        return Err(NativeError::invalid(
            "say whose lockout to clear: ?user=NAME-OR-ID and/or ?source=ADDRESS",
        ));
    }
    if core
        .identity
        .clear_lockout(&p, q.user.as_deref(), q.source)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(NativeError::not_found(
            "no failed logins recorded for that user or address",
        ))
    }
}

// ---------------------------------------------------------------- domains

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDomain {
    name: String,
    #[serde(default)]
    description: String,
}

async fn list_domains(State(core): State<SharedCore>, Caller(p): Caller) -> Result<Response> {
    Ok(items(core.identity.list_domains(&p).await?))
}

async fn create_domain(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Json(d): Json<NewDomain>,
) -> Result<Response> {
    Ok(created(
        core.identity
            .create_domain(&p, &d.name, &d.description)
            .await?,
    ))
}

async fn get_domain(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(d): Path<String>,
) -> Result<Response> {
    Ok(axum::Json(core.identity.get_domain(&p, &d).await?).into_response())
}

// ---------------------------------------------------------------- projects

#[derive(Deserialize)]
struct NameFilter {
    name: Option<String>,
    domain: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateProject {
    name: String,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchProject {
    name: Option<String>,
    description: Option<String>,
    enabled: Option<bool>,
    version: Option<i64>,
}

async fn list_projects(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Query(f): Query<NameFilter>,
) -> Result<Response> {
    let domain = match &f.domain {
        Some(d) => Some(core.identity.get_domain(&p, d).await?.id),
        None => None,
    };
    Ok(items(
        core.identity
            .list_projects(&p, f.name.as_deref(), domain.as_deref())
            .await?,
    ))
}

async fn create_project(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Json(c): Json<CreateProject>,
) -> Result<Response> {
    let new = NewProject {
        name: c.name,
        domain_id: c.domain,
        description: c.description,
        enabled: c.enabled,
    };
    Ok(created(core.identity.create_project(&p, new).await?))
}

async fn get_project(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    let proj = project(&core, &id).await?;
    Ok(axum::Json(core.identity.get_project(&p, &proj.id).await?).into_response())
}

async fn update_project(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Json(c): Json<PatchProject>,
) -> Result<Response> {
    let proj = project(&core, &id).await?;
    let patch = ProjectPatch {
        name: c.name,
        description: c.description,
        enabled: c.enabled,
        expected_version: c.version,
    };
    Ok(axum::Json(core.identity.update_project(&p, &proj.id, patch).await?).into_response())
}

async fn delete_project(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let proj = project(&core, &id).await?;
    core.identity.delete_project(&p, &proj.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_quotas(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    let proj = project(&core, &id).await?;
    let q = core.identity.quotas(&p, &proj.id).await?;
    let map: BTreeMap<String, i64> = q.into_iter().map(|q| (q.resource, q.limit)).collect();
    Ok(axum::Json(json!({"project_id": proj.id, "quotas": map})).into_response())
}

async fn set_quotas(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Json(limits): Json<BTreeMap<String, i64>>,
) -> Result<Response> {
    let proj = project(&core, &id).await?;
    if limits.is_empty() {
        return Err(NativeError::invalid(
            "give at least one quota, e.g. {\"instances\": 10}",
        ));
    }
    // Validate every name before changing anything.
    for r in limits.keys() {
        if !nuage_model::identity::QUOTA_RESOURCES
            .iter()
            .any(|(k, _)| k == r)
        {
            let known: Vec<_> = nuage_model::identity::QUOTA_RESOURCES
                .iter()
                .map(|(k, _)| *k)
                .collect();
            return Err(NativeError::invalid(format!(
                "unknown quota resource {r}; known: {}",
                known.join(", ")
            )));
        }
    }
    let limits: Vec<(String, i64)> = limits.into_iter().collect();
    core.identity.set_quotas(&p, &proj.id, &limits).await?;
    get_quotas(State(core), Caller(p), Path(proj.id)).await
}

// ---------------------------------------------------------------- users

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUser {
    name: String,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    default_project: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchUser {
    name: Option<String>,
    password: Option<String>,
    /// Needed to change one's own password.
    original_password: Option<String>,
    #[serde(default, with = "double_option")]
    email: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    default_project: Option<Option<String>>,
    enabled: Option<bool>,
    version: Option<i64>,
}

/// Tells "absent" (leave as is) from `null` (clear) in PATCH bodies.
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

async fn list_users(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Query(f): Query<NameFilter>,
) -> Result<Response> {
    let domain = match &f.domain {
        Some(d) => Some(core.identity.get_domain(&p, d).await?.id),
        None => None,
    };
    Ok(items(
        core.identity
            .list_users(&p, f.name.as_deref(), domain.as_deref())
            .await?,
    ))
}

async fn create_user(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Json(c): Json<CreateUser>,
) -> Result<Response> {
    let default_project_id = match &c.default_project {
        Some(dp) => Some(project(&core, dp).await?.id),
        None => None,
    };
    let new = NewUser {
        name: c.name,
        domain_id: c.domain,
        password: c.password,
        email: c.email,
        default_project_id,
        enabled: c.enabled,
    };
    Ok(created(core.identity.create_user(&p, new).await?))
}

async fn get_user(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    let u = user(&core, &id).await?;
    Ok(axum::Json(core.identity.get_user(&p, &u.id).await?).into_response())
}

async fn update_user(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Json(c): Json<PatchUser>,
) -> Result<Response> {
    let u = user(&core, &id).await?;
    let default_project_id = match c.default_project {
        Some(Some(dp)) => Some(Some(project(&core, &dp).await?.id)),
        Some(None) => Some(None),
        None => None,
    };
    let mut patch = UserPatch {
        name: c.name,
        password: c.password,
        email: c.email,
        default_project_id,
        enabled: c.enabled,
        expected_version: c.version,
    };
    if let Some(original) = c.original_password {
        let new = patch.password.take().ok_or_else(|| {
            NativeError::invalid("original_password is given only with a new password")
        })?;
        if let Some(v) = patch.expected_version {
            if v != u.version {
                return Err(NativeError::of_kind(
                    nuage_model::ErrorKind::Conflict,
                    format!("user {} changed since version {v}", u.id),
                ));
            }
        }
        if let Err(e) = core
            .identity
            .change_password(&p, &u.id, &original, &new)
            .await
        {
            return Ok(refusal(e));
        }
        let rest = patch.name.is_some()
            || patch.email.is_some()
            || patch.default_project_id.is_some()
            || patch.enabled.is_some();
        if !rest {
            return Ok(axum::Json(core.identity.get_user(&p, &u.id).await?).into_response());
        }
        patch.expected_version = None;
    }
    Ok(axum::Json(core.identity.update_user(&p, &u.id, patch).await?).into_response())
}

async fn delete_user(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let u = user(&core, &id).await?;
    core.identity.delete_user(&p, &u.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn user_projects(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    let u = user(&core, &id).await?;
    Ok(items(core.identity.list_user_projects(&p, &u.id).await?))
}

// ---------------------------------------------------------------- access keys

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    #[serde(default)]
    project: Option<String>,
}

async fn list_keys(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    let u = user(&core, &id).await?;
    let mut keys = core.identity.list_access_keys(&p, Some(&u.id)).await?;
    // Listing never shows secrets; they are shown once, at creation.
    for k in &mut keys {
        k.secret = None;
    }
    Ok(items(keys))
}

async fn create_key(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response> {
    let u = user(&core, &id).await?;
    // The body is optional: an empty POST makes a key on the token's project.
    let c: CreateKey = if body.iter().all(u8::is_ascii_whitespace) {
        CreateKey::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| NativeError::invalid(format!("the body is not valid: {e}")))?
    };
    let project_id = match &c.project {
        Some(pr) => project(&core, pr).await?.id,
        None => p.project_id.clone(),
    };
    Ok(created(
        core.identity
            .create_access_key(&p, &u.id, &project_id)
            .await?,
    ))
}

async fn get_key(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response> {
    let u = user(&core, &id).await?;
    let mut k = core.identity.get_access_key(&p, &key).await?;
    if k.user_id != u.id {
        return Err(NativeError::not_found(format!(
            "access key {key} not found"
        )));
    }
    k.secret = None;
    Ok(axum::Json(k).into_response())
}

async fn delete_key(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path((id, key)): Path<(String, String)>,
) -> Result<StatusCode> {
    let u = user(&core, &id).await?;
    let k = core.identity.get_access_key(&p, &key).await?;
    if k.user_id != u.id {
        return Err(NativeError::not_found(format!(
            "access key {key} not found"
        )));
    }
    core.identity.delete_access_key(&p, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- roles

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRole {
    name: String,
    #[serde(default)]
    description: String,
}

async fn list_roles(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Query(f): Query<NameFilter>,
) -> Result<Response> {
    Ok(items(
        core.identity.list_roles(&p, f.name.as_deref()).await?,
    ))
}

async fn create_role(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Json(c): Json<CreateRole>,
) -> Result<Response> {
    Ok(created(
        core.identity
            .create_role(&p, &c.name, &c.description)
            .await?,
    ))
}

async fn get_role(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(axum::Json(role(&core, &p, &id).await?).into_response())
}

async fn delete_role(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    core.identity.delete_role(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- assignments

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignmentQuery {
    user: Option<String>,
    group: Option<String>,
    project: Option<String>,
    domain: Option<String>,
    role: Option<String>,
    #[serde(default)]
    effective: bool,
}

async fn list_assignments(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Query(q): Query<AssignmentQuery>,
) -> Result<Response> {
    let mut f = AssignmentFilter::default();
    if let Some(u) = &q.user {
        f.actor = Some(Actor::User(user(&core, u).await?.id));
    }
    if let Some(g) = &q.group {
        f.actor = Some(Actor::Group(group(&core, &p, g).await?.id));
    }
    if let Some(pr) = &q.project {
        f.target = Some(Target::Project(project(&core, pr).await?.id));
    }
    if let Some(d) = &q.domain {
        f.target = Some(Target::Domain(core.identity.get_domain(&p, d).await?.id));
    }
    if let Some(r) = &q.role {
        f.role_id = Some(role(&core, &p, r).await?.id);
    }
    let roles = core.identity.list_roles(&p, None).await?;
    let list = core.identity.list_assignments(&p, f, q.effective).await?;
    let view: Vec<Value> = list
        .into_iter()
        .map(|a: Assignment| {
            let role_name = roles
                .iter()
                .find(|r| r.id == a.role_id)
                .map(|r| r.name.clone())
                .unwrap_or_default();
            let mut v = json!({"role": {"id": a.role_id, "name": role_name}});
            match a.actor {
                Actor::User(u) => v["user"] = json!({"id": u}),
                Actor::Group(g) => v["group"] = json!({"id": g}),
            }
            match a.target {
                Target::Project(pr) => v["project"] = json!({"id": pr}),
                Target::Domain(d) => v["domain"] = json!({"id": d}),
            }
            v
        })
        .collect();
    Ok(items(view))
}

async fn assignment(
    core: &SharedCore,
    caller: &Principal,
    target: (&str, &str),
    actor: (&str, &str),
    r: &str,
) -> Result<Assignment> {
    let target = match target.0 {
        "projects" => Target::Project(project(core, target.1).await?.id),
        _ => Target::Domain(core.identity.get_domain(caller, target.1).await?.id),
    };
    let actor = match actor.0 {
        "users" => Actor::User(user(core, actor.1).await?.id),
        _ => Actor::Group(group(core, caller, actor.1).await?.id),
    };
    Ok(Assignment {
        actor,
        target,
        role_id: role(core, caller, r).await?.id,
    })
}

type GrantPath = Path<(String, String, String, String, String)>;

fn grant_kinds(tk: &str, ak: &str) -> Result<()> {
    if !matches!(tk, "projects" | "domains") || !matches!(ak, "users" | "groups") {
        return Err(NativeError::not_found(
            "no such route in the native API; see /nuage/v1/openapi.json",
        ));
    }
    Ok(())
}

async fn grant(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path((tk, t, ak, a, r)): GrantPath,
) -> Result<StatusCode> {
    grant_kinds(&tk, &ak)?;
    let asg = assignment(&core, &p, (&tk, &t), (&ak, &a), &r).await?;
    core.identity.grant(&p, &asg).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn check_grant(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path((tk, t, ak, a, r)): GrantPath,
) -> Result<StatusCode> {
    grant_kinds(&tk, &ak)?;
    let asg = assignment(&core, &p, (&tk, &t), (&ak, &a), &r).await?;
    if core.identity.check_grant(&p, &asg).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(NativeError::not_found("role assignment not found"))
    }
}

async fn revoke_grant(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path((tk, t, ak, a, r)): GrantPath,
) -> Result<StatusCode> {
    grant_kinds(&tk, &ak)?;
    let asg = assignment(&core, &p, (&tk, &t), (&ak, &a), &r).await?;
    core.identity.revoke_grant(&p, &asg).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- groups

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateGroup {
    name: String,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    description: String,
}

async fn list_groups(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Query(f): Query<NameFilter>,
) -> Result<Response> {
    Ok(items(
        core.identity.list_groups(&p, f.name.as_deref()).await?,
    ))
}

async fn create_group(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Json(c): Json<CreateGroup>,
) -> Result<Response> {
    Ok(created(
        core.identity
            .create_group(&p, &c.name, c.domain.as_deref(), &c.description)
            .await?,
    ))
}

async fn get_group(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(axum::Json(group(&core, &p, &id).await?).into_response())
}

async fn delete_group(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let g = group(&core, &p, &id).await?;
    core.identity.delete_group(&p, &g.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn group_users(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    let g = group(&core, &p, &id).await?;
    Ok(items(core.identity.list_group_users(&p, &g.id).await?))
}

async fn add_group_user(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path((g, u)): Path<(String, String)>,
) -> Result<StatusCode> {
    let g = group(&core, &p, &g).await?;
    let u = user(&core, &u).await?;
    core.identity.add_user_to_group(&p, &g.id, &u.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_group_user(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path((g, u)): Path<(String, String)>,
) -> Result<StatusCode> {
    let g = group(&core, &p, &g).await?;
    let u = user(&core, &u).await?;
    core.identity
        .remove_user_from_group(&p, &g.id, &u.id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) fn routes() -> Router<SharedCore> {
    Router::new()
        .route("/nuage/v1/tokens", axum::routing::post(issue_token))
        .route(
            "/nuage/v1/login-lockouts",
            get(list_lockouts).delete(clear_lockout),
        )
        .route(
            "/nuage/v1/tokens/self",
            get(whoami).delete(revoke_own_token),
        )
        .route("/nuage/v1/domains", get(list_domains).post(create_domain))
        .route("/nuage/v1/domains/{domain}", get(get_domain))
        .route(
            "/nuage/v1/projects",
            get(list_projects).post(create_project),
        )
        .route(
            "/nuage/v1/projects/{project}",
            get(get_project)
                .patch(update_project)
                .delete(delete_project),
        )
        .route(
            "/nuage/v1/projects/{project}/quotas",
            get(get_quotas).put(set_quotas),
        )
        .route("/nuage/v1/users", get(list_users).post(create_user))
        .route(
            "/nuage/v1/users/{user}",
            get(get_user).patch(update_user).delete(delete_user),
        )
        .route("/nuage/v1/users/{user}/projects", get(user_projects))
        .route(
            "/nuage/v1/users/{user}/access-keys",
            get(list_keys).post(create_key),
        )
        .route(
            "/nuage/v1/users/{user}/access-keys/{key}",
            get(get_key).delete(delete_key),
        )
        .route("/nuage/v1/roles", get(list_roles).post(create_role))
        .route("/nuage/v1/roles/{role}", get(get_role).delete(delete_role))
        .route("/nuage/v1/role-assignments", get(list_assignments))
        .route(
            "/nuage/v1/{target_kind}/{target}/{actor_kind}/{actor}/roles/{role}",
            put(grant).head(check_grant).delete(revoke_grant),
        )
        .route("/nuage/v1/groups", get(list_groups).post(create_group))
        .route(
            "/nuage/v1/groups/{group}",
            get(get_group).delete(delete_group),
        )
        .route("/nuage/v1/groups/{group}/users", get(group_users))
        .route(
            "/nuage/v1/groups/{group}/users/{user}",
            put(add_group_user).delete(remove_group_user),
        )
}
