//! Domains, projects, users, groups and roles, in Keystone's shapes.
//!
//! Keystone attributes nuage does not model (project tags, hierarchy and
//! options, user descriptions, domain-specific roles) are accepted when
//! empty, as clients send them by default, and refused with 400 otherwise
//! rather than silently dropped.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use http::{StatusCode, Uri};
use nuage_identity::{NewProject, NewUser, ProjectPatch, UserPatch};
use nuage_model::identity::{Domain, Group, Principal, Project, Role, User};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{collection, entity, self_link, Caller, Json, KeystoneError, Params, Result};
use crate::{Core, SharedCore};

// ---------------------------------------------------------------- views

pub(super) fn domain_view(core: &Core, d: &Domain) -> Value {
    json!({
        "id": d.id,
        "name": d.name,
        "description": d.description,
        "enabled": d.enabled,
        "tags": [],
        "options": {},
        "links": self_link(core, &format!("domains/{}", d.id)),
    })
}

pub(super) fn project_view(core: &Core, p: &Project) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "domain_id": p.domain_id,
        "description": p.description,
        "enabled": p.enabled,
        // Keystone's top-level projects have their domain as parent.
        "parent_id": p.domain_id,
        "is_domain": false,
        "tags": [],
        "options": {},
        "links": self_link(core, &format!("projects/{}", p.id)),
    })
}

pub(super) fn user_view(core: &Core, u: &User) -> Value {
    let mut v = json!({
        "id": u.id,
        "name": u.name,
        "domain_id": u.domain_id,
        "enabled": u.enabled,
        "password_expires_at": null,
        "options": {},
        "links": self_link(core, &format!("users/{}", u.id)),
    });
    // Keystone leaves unset optional attributes out.
    if let Some(p) = &u.default_project_id {
        v["default_project_id"] = json!(p);
    }
    if let Some(e) = &u.email {
        v["email"] = json!(e);
    }
    v
}

pub(super) fn group_view(core: &Core, g: &Group) -> Value {
    json!({
        "id": g.id,
        "name": g.name,
        "domain_id": g.domain_id,
        "description": g.description,
        "links": self_link(core, &format!("groups/{}", g.id)),
    })
}

pub(super) fn role_view(core: &Core, r: &Role) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "domain_id": null,
        "description": r.description,
        "options": {},
        "links": self_link(core, &format!("roles/{}", r.id)),
    })
}

// ---------------------------------------------------------------- lookups

/// A role by id only (the core also takes names; Keystone's paths do not).
pub(super) async fn role_by_id(core: &Core, caller: &Principal, id: &str) -> Result<Role> {
    match core.identity.get_role(caller, id).await {
        Ok(r) if r.id == id => Ok(r),
        Ok(_) => Err(KeystoneError::not_found(format!(
            "Could not find role: {id}."
        ))),
        Err(e) => Err(e.into()),
    }
}

/// A domain by id only.
async fn domain_by_id(core: &Core, caller: &Principal, id: &str) -> Result<Domain> {
    match core.identity.get_domain(caller, id).await {
        Ok(d) if d.id == id => Ok(d),
        Ok(_) => Err(KeystoneError::not_found(format!(
            "Could not find domain: {id}."
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Refuses Keystone attributes nuage does not model unless they are empty.
fn unsupported_empty(
    what: &str,
    tags: &Option<Vec<String>>,
    options: &Option<Map<String, Value>>,
) -> Result<()> {
    if tags.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(KeystoneError::bad_request(format!(
            "nuage {what}s have no tags."
        )));
    }
    if options.as_ref().is_some_and(|o| !o.is_empty()) {
        return Err(KeystoneError::bad_request(format!(
            "nuage {what}s have no options."
        )));
    }
    Ok(())
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

// ---------------------------------------------------------------- domains

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DomainBody {
    domain: CreateDomain,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateDomain {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    options: Option<Map<String, Value>>,
    #[serde(default)]
    explicit_domain_id: Option<String>,
}

async fn list_domains(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    q: Params,
    uri: Uri,
) -> Result<Response> {
    let items = core
        .identity
        .list_domains(&p)
        .await?
        .iter()
        .filter(|d| q.get("name").is_none_or(|n| d.name == n))
        .filter(|d| q.enabled().is_none_or(|e| d.enabled == e))
        .map(|d| domain_view(&core, d))
        .collect();
    Ok(collection(&core, &uri, "domains", items))
}

async fn create_domain(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Json(b): Json<DomainBody>,
) -> Result<Response> {
    let d = b.domain;
    unsupported_empty("domain", &d.tags, &d.options)?;
    if d.enabled == Some(false) {
        return Err(KeystoneError::bad_request("nuage creates domains enabled."));
    }
    if d.explicit_domain_id.is_some() {
        return Err(KeystoneError::bad_request(
            "nuage chooses domain ids itself.",
        ));
    }
    let created = core
        .identity
        .create_domain(&p, &d.name, d.description.as_deref().unwrap_or(""))
        .await?;
    Ok(entity(
        StatusCode::CREATED,
        "domain",
        domain_view(&core, &created),
    ))
}

async fn get_domain(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    let d = domain_by_id(&core, &p, &id).await?;
    Ok(entity(StatusCode::OK, "domain", domain_view(&core, &d)))
}

// ---------------------------------------------------------------- projects

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectBody<T> {
    project: T,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateProject {
    name: String,
    #[serde(default)]
    domain_id: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    parent_id: Option<String>,
    #[serde(default)]
    is_domain: Option<bool>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    options: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchProject {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    options: Option<Map<String, Value>>,
}

async fn list_projects(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    q: Params,
    uri: Uri,
) -> Result<Response> {
    let items = core
        .identity
        .list_projects(&p, q.get("name"), q.get("domain_id"))
        .await?
        .iter()
        .filter(|x| q.enabled().is_none_or(|e| x.enabled == e))
        // No nuage project acts as a domain.
        .filter(|_| !q.flag("is_domain"))
        .map(|x| project_view(&core, x))
        .collect();
    Ok(collection(&core, &uri, "projects", items))
}

async fn create_project(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Json(b): Json<ProjectBody<CreateProject>>,
) -> Result<Response> {
    let c = b.project;
    unsupported_empty("project", &c.tags, &c.options)?;
    if c.is_domain == Some(true) {
        return Err(KeystoneError::bad_request(
            "nuage projects cannot act as domains.",
        ));
    }
    // Keystone defaults to the domain of the token's project.
    let domain_id = c.domain_id.unwrap_or_else(|| p.project_domain_id.clone());
    if c.parent_id
        .as_ref()
        .is_some_and(|parent| *parent != domain_id)
    {
        return Err(KeystoneError::bad_request(
            "nuage projects have no hierarchy: parent_id must be the domain.",
        ));
    }
    let new = NewProject {
        name: c.name,
        domain_id: Some(domain_id),
        description: c.description.unwrap_or_default(),
        enabled: c.enabled.unwrap_or(true),
    };
    let created = core.identity.create_project(&p, new).await?;
    Ok(entity(
        StatusCode::CREATED,
        "project",
        project_view(&core, &created),
    ))
}

async fn get_project(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    let x = core.identity.get_project(&p, &id).await?;
    Ok(entity(StatusCode::OK, "project", project_view(&core, &x)))
}

async fn update_project(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Json(b): Json<ProjectBody<PatchProject>>,
) -> Result<Response> {
    let c = b.project;
    unsupported_empty("project", &c.tags, &c.options)?;
    let patch = ProjectPatch {
        name: c.name,
        description: c.description,
        enabled: c.enabled,
        expected_version: None,
    };
    let x = core.identity.update_project(&p, &id, patch).await?;
    Ok(entity(StatusCode::OK, "project", project_view(&core, &x)))
}

async fn delete_project(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    core.identity.delete_project(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- users

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody<T> {
    user: T,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUser {
    name: String,
    #[serde(default)]
    domain_id: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    default_project_id: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    options: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchUser {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, with = "double_option")]
    email: Option<Option<String>>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, with = "double_option")]
    default_project_id: Option<Option<String>>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    options: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    password: String,
    original_password: String,
}

fn no_description(d: &Option<String>) -> Result<()> {
    if d.as_ref().is_some_and(|d| !d.is_empty()) {
        return Err(KeystoneError::bad_request(
            "nuage users have no description.",
        ));
    }
    Ok(())
}

async fn list_users(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    q: Params,
    uri: Uri,
) -> Result<Response> {
    let items = core
        .identity
        .list_users(&p, q.get("name"), q.get("domain_id"))
        .await?
        .iter()
        .filter(|u| q.enabled().is_none_or(|e| u.enabled == e))
        .map(|u| user_view(&core, u))
        .collect();
    Ok(collection(&core, &uri, "users", items))
}

async fn create_user(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Json(b): Json<UserBody<CreateUser>>,
) -> Result<Response> {
    let c = b.user;
    unsupported_empty("user", &None, &c.options)?;
    no_description(&c.description)?;
    let new = NewUser {
        name: c.name,
        // Keystone defaults to the domain of the token's project.
        domain_id: Some(c.domain_id.unwrap_or_else(|| p.project_domain_id.clone())),
        password: c.password,
        email: c.email,
        default_project_id: c.default_project_id,
        enabled: c.enabled.unwrap_or(true),
    };
    let u = core.identity.create_user(&p, new).await?;
    Ok(entity(StatusCode::CREATED, "user", user_view(&core, &u)))
}

async fn get_user(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    let u = core.identity.get_user(&p, &id).await?;
    Ok(entity(StatusCode::OK, "user", user_view(&core, &u)))
}

async fn update_user(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Json(b): Json<UserBody<PatchUser>>,
) -> Result<Response> {
    let c = b.user;
    unsupported_empty("user", &None, &c.options)?;
    no_description(&c.description)?;
    let patch = UserPatch {
        name: c.name,
        password: c.password,
        email: c.email,
        default_project_id: c.default_project_id,
        enabled: c.enabled,
        expected_version: None,
    };
    let u = core.identity.update_user(&p, &id, patch).await?;
    Ok(entity(StatusCode::OK, "user", user_view(&core, &u)))
}

async fn delete_user(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    core.identity.delete_user(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v3/users/{id}/password`: a user changes its own password, proving
/// it knows the current one. The check is a password authentication on the
/// caller's project (or the user's default project when an admin changes
/// another user's password); the token it makes is dropped, and the core
/// revokes the user's tokens when the password changes anyway.
async fn change_password(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Json(b): Json<UserBody<PasswordChange>>,
) -> Result<StatusCode> {
    let u = core.identity.get_user(&p, &id).await?;
    core.identity
        .change_password(&p, &u.id, &b.user.original_password, &b.user.password)
        .await
        .map_err(KeystoneError::identity)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn user_projects(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response> {
    let items = core
        .identity
        .list_user_projects(&p, &id)
        .await?
        .iter()
        .map(|x| project_view(&core, x))
        .collect();
    Ok(collection(&core, &uri, "projects", items))
}

/// The groups a user belongs to. The core has no direct query for this, so
/// it walks the groups (admin only, since listing groups is).
async fn user_groups(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response> {
    let u = core.identity.get_user(&p, &id).await?;
    let mut items = Vec::new();
    for g in core.identity.list_groups(&p, None).await? {
        if core
            .identity
            .list_group_users(&p, &g.id)
            .await?
            .iter()
            .any(|m| m.id == u.id)
        {
            items.push(group_view(&core, &g));
        }
    }
    Ok(collection(&core, &uri, "groups", items))
}

// ---------------------------------------------------------------- groups

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupBody {
    group: CreateGroup,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateGroup {
    name: String,
    #[serde(default)]
    domain_id: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

async fn list_groups(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    q: Params,
    uri: Uri,
) -> Result<Response> {
    let items = core
        .identity
        .list_groups(&p, q.get("name"))
        .await?
        .iter()
        .filter(|g| q.get("domain_id").is_none_or(|d| g.domain_id == d))
        .map(|g| group_view(&core, g))
        .collect();
    Ok(collection(&core, &uri, "groups", items))
}

async fn create_group(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Json(b): Json<GroupBody>,
) -> Result<Response> {
    let c = b.group;
    let domain = c.domain_id.unwrap_or_else(|| p.project_domain_id.clone());
    let g = core
        .identity
        .create_group(
            &p,
            &c.name,
            Some(&domain),
            c.description.as_deref().unwrap_or(""),
        )
        .await?;
    Ok(entity(StatusCode::CREATED, "group", group_view(&core, &g)))
}

async fn get_group(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    let g = core.identity.get_group(&p, &id).await?;
    Ok(entity(StatusCode::OK, "group", group_view(&core, &g)))
}

async fn delete_group(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    core.identity.delete_group(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn group_users(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Response> {
    let g = core.identity.get_group(&p, &id).await?;
    let items = core
        .identity
        .list_group_users(&p, &g.id)
        .await?
        .iter()
        .map(|u| user_view(&core, u))
        .collect();
    Ok(collection(&core, &uri, "users", items))
}

async fn add_group_user(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path((g, u)): Path<(String, String)>,
) -> Result<StatusCode> {
    core.identity.add_user_to_group(&p, &g, &u).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `HEAD` (or `GET`) `/v3/groups/{g}/users/{u}`: 204 when a member, else 404.
async fn check_group_user(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path((g, u)): Path<(String, String)>,
) -> Result<StatusCode> {
    let g = core.identity.get_group(&p, &g).await?;
    let members = core.identity.list_group_users(&p, &g.id).await?;
    if members.iter().any(|m| m.id == u) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(KeystoneError::not_found(format!(
            "Could not find user {u} in group {}.",
            g.id
        )))
    }
}

async fn remove_group_user(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path((g, u)): Path<(String, String)>,
) -> Result<StatusCode> {
    core.identity.remove_user_from_group(&p, &g, &u).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- roles

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    role: CreateRole,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRole {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    domain_id: Option<String>,
    #[serde(default)]
    options: Option<Map<String, Value>>,
}

async fn list_roles(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    q: Params,
    uri: Uri,
) -> Result<Response> {
    if q.get("domain_id").is_some() {
        // nuage has no domain-specific roles.
        return Ok(collection(&core, &uri, "roles", Vec::new()));
    }
    let items = core
        .identity
        .list_roles(&p, q.get("name"))
        .await?
        .iter()
        .map(|r| role_view(&core, r))
        .collect();
    Ok(collection(&core, &uri, "roles", items))
}

async fn create_role(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Json(b): Json<RoleBody>,
) -> Result<Response> {
    let c = b.role;
    unsupported_empty("role", &None, &c.options)?;
    if c.domain_id.is_some() {
        return Err(KeystoneError::bad_request(
            "nuage has no domain-specific roles.",
        ));
    }
    let r = core
        .identity
        .create_role(&p, &c.name, c.description.as_deref().unwrap_or(""))
        .await?;
    Ok(entity(StatusCode::CREATED, "role", role_view(&core, &r)))
}

async fn get_role(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    let r = role_by_id(&core, &p, &id).await?;
    Ok(entity(StatusCode::OK, "role", role_view(&core, &r)))
}

async fn delete_role(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let r = role_by_id(&core, &p, &id).await?;
    core.identity.delete_role(&p, &r.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) fn routes() -> Router<SharedCore> {
    Router::new()
        .route("/v3/domains", get(list_domains).post(create_domain))
        .route("/v3/domains/{domain_id}", get(get_domain))
        .route("/v3/projects", get(list_projects).post(create_project))
        .route(
            "/v3/projects/{project_id}",
            get(get_project)
                .patch(update_project)
                .delete(delete_project),
        )
        .route("/v3/users", get(list_users).post(create_user))
        .route(
            "/v3/users/{user_id}",
            get(get_user).patch(update_user).delete(delete_user),
        )
        .route("/v3/users/{user_id}/password", post(change_password))
        .route("/v3/users/{user_id}/projects", get(user_projects))
        .route("/v3/users/{user_id}/groups", get(user_groups))
        .route("/v3/groups", get(list_groups).post(create_group))
        .route("/v3/groups/{group_id}", get(get_group).delete(delete_group))
        .route("/v3/groups/{group_id}/users", get(group_users))
        .route(
            "/v3/groups/{group_id}/users/{user_id}",
            put(add_group_user)
                .get(check_group_user)
                .delete(remove_group_user),
        )
        .route("/v3/roles", get(list_roles).post(create_role))
        .route("/v3/roles/{role_id}", get(get_role).delete(delete_role))
}
