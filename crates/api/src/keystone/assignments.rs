//! Role grants (`/v3/{projects|domains}/{id}/{users|groups}/{id}/roles`) and
//! `GET /v3/role_assignments`.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use http::{StatusCode, Uri};
use nuage_identity::AssignmentFilter;
use nuage_model::identity::{Actor, Assignment, Principal, Role, Target};
use serde_json::{json, Value};

use super::resources::{role_by_id, role_view};
use super::{base_url, collection, Caller, KeystoneError, Params, Result};
use crate::{Core, SharedCore};

/// The target and actor of a grant path, told apart by its literal
/// segments (`/v3/{projects|domains}/{id}/{users|groups}/{id}/...`); the
/// router only sends those four shapes here.
fn parts(uri: &Uri, target: String, actor: String) -> (Target, Actor) {
    let mut seg = uri.path().trim_start_matches('/').split('/');
    let target_kind = seg.nth(1).unwrap_or_default();
    let actor_kind = seg.nth(1).unwrap_or_default();
    let target = if target_kind == "projects" {
        Target::Project(target)
    } else {
        Target::Domain(target)
    };
    let actor = if actor_kind == "users" {
        Actor::User(actor)
    } else {
        Actor::Group(actor)
    };
    (target, actor)
}

async fn grant_of(
    core: &Core,
    caller: &Principal,
    uri: &Uri,
    (t, a, r): (String, String, String),
) -> Result<Assignment> {
    let (target, actor) = parts(uri, t, a);
    // Resolve the role strictly by id: the core would also take a name.
    let role = role_by_id(core, caller, &r).await?;
    Ok(Assignment {
        actor,
        target,
        role_id: role.id,
    })
}

async fn grant(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    uri: Uri,
    Path(ids): Path<(String, String, String)>,
) -> Result<StatusCode> {
    let a = grant_of(&core, &p, &uri, ids).await?;
    core.identity.grant(&p, &a).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `HEAD` (or `GET`) on a grant: 204 when it exists, else 404.
async fn check_grant(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    uri: Uri,
    Path(ids): Path<(String, String, String)>,
) -> Result<StatusCode> {
    let a = grant_of(&core, &p, &uri, ids).await?;
    if core.identity.check_grant(&p, &a).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(KeystoneError::not_found("Could not find role assignment."))
    }
}

async fn revoke_grant(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    uri: Uri,
    Path(ids): Path<(String, String, String)>,
) -> Result<StatusCode> {
    let a = grant_of(&core, &p, &uri, ids).await?;
    core.identity.revoke_grant(&p, &a).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The roles an actor holds directly on a target.
async fn list_grants(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path((t, a)): Path<(String, String)>,
    uri: Uri,
) -> Result<Response> {
    let (target, actor) = parts(&uri, t, a);
    let filter = AssignmentFilter {
        actor: Some(actor),
        target: Some(target),
        role_id: None,
    };
    let list = core.identity.list_assignments(&p, filter, false).await?;
    let roles = core.identity.list_roles(&p, None).await?;
    let items = list
        .iter()
        .filter_map(|a| roles.iter().find(|r| r.id == a.role_id))
        .map(|r| role_view(&core, r))
        .collect();
    Ok(collection(&core, &uri, "roles", items))
}

// ---------------------------------------------------------------- role_assignments

/// Names for `?include_names`, each looked up once. A name the caller may
/// not read stays out rather than failing the whole list.
struct Names<'a> {
    core: &'a Core,
    caller: &'a Principal,
    roles: Vec<Role>,
    domains: HashMap<String, Option<String>>,
    users: HashMap<String, Option<(String, String)>>,
    groups: HashMap<String, Option<(String, String)>>,
    projects: HashMap<String, Option<(String, String)>>,
}

impl<'a> Names<'a> {
    async fn domain(&mut self, id: &str) -> Value {
        if !self.domains.contains_key(id) {
            let name = self
                .core
                .identity
                .get_domain(self.caller, id)
                .await
                .ok()
                .map(|d| d.name);
            self.domains.insert(id.to_string(), name);
        }
        match self.domains.get(id).and_then(Clone::clone) {
            Some(name) => json!({"id": id, "name": name}),
            None => json!({"id": id}),
        }
    }

    /// `{"id", "name", "domain": {"id", "name"}}` for a user, group or
    /// project, from its `(name, domain_id)`.
    async fn named(&mut self, id: &str, found: Option<(String, String)>) -> Value {
        match found {
            Some((name, domain_id)) => {
                json!({"id": id, "name": name, "domain": self.domain(&domain_id).await})
            }
            None => json!({"id": id}),
        }
    }

    async fn user(&mut self, id: &str) -> Value {
        if !self.users.contains_key(id) {
            let u = self.core.identity.get_user(self.caller, id).await.ok();
            self.users
                .insert(id.to_string(), u.map(|u| (u.name, u.domain_id)));
        }
        let found = self.users.get(id).and_then(Clone::clone);
        self.named(id, found).await
    }

    async fn group(&mut self, id: &str) -> Value {
        if !self.groups.contains_key(id) {
            let g = self.core.identity.get_group(self.caller, id).await.ok();
            self.groups
                .insert(id.to_string(), g.map(|g| (g.name, g.domain_id)));
        }
        let found = self.groups.get(id).and_then(Clone::clone);
        self.named(id, found).await
    }

    async fn project(&mut self, id: &str) -> Value {
        if !self.projects.contains_key(id) {
            let p = self.core.identity.get_project(self.caller, id).await.ok();
            self.projects
                .insert(id.to_string(), p.map(|p| (p.name, p.domain_id)));
        }
        let found = self.projects.get(id).and_then(Clone::clone);
        self.named(id, found).await
    }

    fn role(&self, id: &str) -> Value {
        match self.roles.iter().find(|r| r.id == id) {
            Some(r) => json!({"id": id, "name": r.name}),
            None => json!({"id": id}),
        }
    }
}

/// The URL of the grant an assignment comes from.
fn assignment_link(core: &Core, a: &Assignment) -> String {
    let (tk, t) = match &a.target {
        Target::Project(p) => ("projects", p),
        Target::Domain(d) => ("domains", d),
    };
    let (ak, ac) = match &a.actor {
        Actor::User(u) => ("users", u),
        Actor::Group(g) => ("groups", g),
    };
    format!("{}/{tk}/{t}/{ak}/{ac}/roles/{}", base_url(core), a.role_id)
}

/// `GET /v3/role_assignments` with Keystone's filters: `user.id`,
/// `group.id`, `scope.project.id`, `scope.domain.id`, `role.id`,
/// `effective` (group grants expanded to their members) and
/// `include_names`. System and inherited assignments do not exist in nuage,
/// so filtering on them gives an empty list.
async fn list_assignments(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    q: Params,
    uri: Uri,
) -> Result<Response> {
    if q.get("user.id").is_some() && q.get("group.id").is_some() {
        return Err(KeystoneError::bad_request(
            "Specify user.id or group.id, not both.",
        ));
    }
    if q.get("scope.project.id").is_some() && q.get("scope.domain.id").is_some() {
        return Err(KeystoneError::bad_request(
            "Specify scope.project.id or scope.domain.id, not both.",
        ));
    }
    if q.get("scope.system").is_some() || q.get("scope.OS-INHERIT:inherited_to").is_some() {
        return Ok(collection(&core, &uri, "role_assignments", Vec::new()));
    }
    let filter = AssignmentFilter {
        actor: q
            .get("user.id")
            .map(|u| Actor::User(u.to_string()))
            .or_else(|| q.get("group.id").map(|g| Actor::Group(g.to_string()))),
        target: q
            .get("scope.project.id")
            .map(|x| Target::Project(x.to_string()))
            .or_else(|| {
                q.get("scope.domain.id")
                    .map(|d| Target::Domain(d.to_string()))
            }),
        role_id: q.get("role.id").map(str::to_string),
    };
    let list = core
        .identity
        .list_assignments(&p, filter, q.flag("effective"))
        .await?;
    let include_names = q.flag("include_names");
    let mut names = Names {
        core: &core,
        caller: &p,
        roles: if include_names {
            core.identity.list_roles(&p, None).await?
        } else {
            Vec::new()
        },
        domains: HashMap::new(),
        users: HashMap::new(),
        groups: HashMap::new(),
        projects: HashMap::new(),
    };
    let mut items = Vec::with_capacity(list.len());
    for a in &list {
        let mut v = json!({"links": {"assignment": assignment_link(&core, a)}});
        if include_names {
            v["role"] = names.role(&a.role_id);
            match &a.actor {
                Actor::User(u) => v["user"] = names.user(u).await,
                Actor::Group(g) => v["group"] = names.group(g).await,
            }
            v["scope"] = match &a.target {
                Target::Project(x) => json!({"project": names.project(x).await}),
                Target::Domain(d) => json!({"domain": names.domain(d).await}),
            };
        } else {
            v["role"] = json!({"id": a.role_id});
            match &a.actor {
                Actor::User(u) => v["user"] = json!({"id": u}),
                Actor::Group(g) => v["group"] = json!({"id": g}),
            }
            v["scope"] = match &a.target {
                Target::Project(x) => json!({"project": {"id": x}}),
                Target::Domain(d) => json!({"domain": {"id": d}}),
            };
        }
        items.push(v);
    }
    Ok(collection(&core, &uri, "role_assignments", items))
}

pub(super) fn routes() -> Router<SharedCore> {
    let mut r = Router::new().route("/v3/role_assignments", get(list_assignments));
    for target in ["projects", "domains"] {
        for actor in ["users", "groups"] {
            r = r
                .route(
                    &format!("/v3/{target}/{{target_id}}/{actor}/{{actor_id}}/roles"),
                    get(list_grants),
                )
                .route(
                    &format!("/v3/{target}/{{target_id}}/{actor}/{{actor_id}}/roles/{{role_id}}"),
                    get(check_grant).put(grant).delete(revoke_grant),
                );
        }
    }
    r
}
