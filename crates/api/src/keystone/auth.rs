//! Tokens (`/v3/auth/tokens`), the service catalog and the `/v3/auth/*`
//! helpers clients call after authenticating.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use nuage_identity::{IdentityError, Login, Ref};
use nuage_model::identity::Principal;
use nuage_model::{ErrorKind, HasKind};
use serde::Deserialize;
use serde_json::{json, Value};

use super::catalog::catalog;
use super::{
    base_url, collection, resources::project_view, timestamp, Caller, Json, KeystoneError, Params,
    Result,
};
use crate::auth::Peer;
use crate::{Core, SharedCore};

// ---------------------------------------------------------------- requests

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthBody {
    auth: AuthRequest,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthRequest {
    identity: IdentityRequest,
    /// An object (`{"project": ...}`), or the string `"unscoped"` that
    /// keystoneauth sends; read by [`scope_project`].
    #[serde(default)]
    scope: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityRequest {
    methods: Vec<String>,
    #[serde(default)]
    password: Option<PasswordMethod>,
    #[serde(default)]
    token: Option<TokenMethod>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordMethod {
    user: PasswordUser,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordUser {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    domain: Option<IdOrName>,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenMethod {
    id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdOrName {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

impl IdOrName {
    /// The domain reference for the core's lookups, which take an id or a name.
    fn reference(&self, what: &str) -> Result<&str> {
        self.id.as_deref().or(self.name.as_deref()).ok_or_else(|| {
            KeystoneError::bad_request(format!("Expecting to find id or name in {what}."))
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeProject {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    domain: Option<IdOrName>,
}

/// A project as a scope names it, owned so the core can look it up after
/// the password check (a project that does not exist must answer as one the
/// user may not use, in the same time).
struct ScopeRef {
    key: String,
    domain: Option<String>,
    id_only: bool,
}

impl ScopeRef {
    fn as_ref(&self) -> Ref<'_> {
        Ref {
            key: &self.key,
            domain: self.domain.as_deref(),
            id_only: self.id_only,
        }
    }
}

/// The project a token request asks for: `None` when unscoped, which nuage
/// answers with a token on the user's default project (nuage has no
/// unscoped tokens). Domain, system and trust scopes are refused with 401,
/// as Keystone refuses a scope the user holds no role on.
fn scope_project(scope: Option<Value>) -> Result<Option<ScopeRef>> {
    let obj = match scope {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s == "unscoped" => return Ok(None),
        Some(Value::Object(o)) => o,
        Some(_) => {
            return Err(KeystoneError::bad_request(
                "scope must be an object or \"unscoped\".",
            ))
        }
    };
    if obj.len() > 1 {
        return Err(KeystoneError::bad_request(
            "Specifying more than one scope target is not allowed.",
        ));
    }
    let Some((kind, value)) = obj.into_iter().next() else {
        return Ok(None);
    };
    match kind.as_str() {
        "project" => {}
        "unscoped" => return Ok(None),
        "domain" | "system" | "OS-TRUST:trust" => {
            return Err(KeystoneError::unauthorized(format!(
                "nuage issues project-scoped tokens only; a {kind} scope is not available."
            )))
        }
        other => {
            return Err(KeystoneError::bad_request(format!(
                "Unknown scope {other}."
            )))
        }
    }
    let p: ScopeProject = serde_json::from_value(value)
        .map_err(|e| KeystoneError::bad_request(format!("The project scope is not valid: {e}")))?;
    match (p.id, p.name) {
        (Some(id), _) => Ok(Some(ScopeRef {
            key: id,
            domain: None,
            id_only: true,
        })),
        (None, Some(name)) => {
            let domain = p
                .domain
                .as_ref()
                .ok_or_else(|| KeystoneError::bad_request("Expecting to find domain in project."))?
                .reference("domain")?
                .to_string();
            Ok(Some(ScopeRef {
                key: name,
                domain: Some(domain),
                id_only: false,
            }))
        }
        (None, None) => Err(KeystoneError::bad_request(
            "Expecting to find id or name in project.",
        )),
    }
}

/// The user of a password method, as the core looks it up.
fn password_user(u: &PasswordUser) -> Result<Ref<'_>> {
    match (&u.id, &u.name) {
        (Some(id), _) => Ok(Ref::id(id)),
        (None, Some(name)) => {
            let domain = u
                .domain
                .as_ref()
                .ok_or_else(|| KeystoneError::bad_request("Expecting to find domain in user."))?
                .reference("domain")?;
            Ok(Ref::any(name, Some(domain)))
        }
        (None, None) => Err(KeystoneError::bad_request(
            "Expecting to find id or name in user.",
        )),
    }
}

// ---------------------------------------------------------------- token body

async fn domain_ref(core: &Core, caller: &Principal, id: &str) -> Result<Value> {
    let d = core.identity.get_domain(caller, id).await?;
    Ok(json!({"id": d.id, "name": d.name}))
}

/// The `token` object of Keystone's token answers, for `token` held by `p`.
async fn token_body(core: &Core, p: &Principal, token: &str, with_catalog: bool) -> Result<Value> {
    let roles = core.identity.list_roles(p, None).await?;
    let roles: Vec<Value> = p
        .roles
        .iter()
        .filter_map(|n| roles.iter().find(|r| &r.name == n))
        .map(|r| json!({"id": r.id, "name": r.name}))
        .collect();
    let ttl = i64::try_from(core.identity.token_ttl().as_millis()).unwrap_or(0);
    let mut token = json!({
        "methods": [p.method],
        "user": {
            "id": p.user_id,
            "name": p.user_name,
            "domain": domain_ref(core, p, &p.domain_id).await?,
            "password_expires_at": null,
        },
        "project": {
            "id": p.project_id,
            "name": p.project_name,
            "domain": domain_ref(core, p, &p.project_domain_id).await?,
        },
        "roles": roles,
        "expires_at": timestamp(p.expires_at),
        "issued_at": timestamp(p.expires_at.saturating_sub(ttl)),
        "audit_ids": core
            .identity
            .audit_ids(token)
            .unwrap_or_else(|| vec![p.audit_id.clone()]),
        "is_domain": false,
    });
    if with_catalog {
        token["catalog"] = Value::Array(catalog(core, &p.project_id));
    }
    Ok(json!({ "token": token }))
}

fn with_subject_token(mut resp: Response, token: &str) -> Result<Response> {
    let v = HeaderValue::from_str(token)
        .map_err(|_| KeystoneError::bad_request("The token cannot be sent in a header."))?;
    resp.headers_mut().insert("x-subject-token", v);
    Ok(resp)
}

// ---------------------------------------------------------------- handlers

/// `POST /v3/auth/tokens`: password or token authentication.
async fn issue(
    State(core): State<SharedCore>,
    Peer(source): Peer,
    q: Params,
    Json(body): Json<AuthBody>,
) -> Result<Response> {
    let AuthRequest { identity, scope } = body.auth;
    let project = scope_project(scope)?;
    let project = project.as_ref().map(ScopeRef::as_ref);
    let (token, principal) = match identity.methods.as_slice() {
        [] => return Err(KeystoneError::bad_request("Expecting to find methods in identity.")),
        [m] if m == "password" => {
            let pw = identity
                .password
                .ok_or_else(|| KeystoneError::bad_request("Expecting to find password in identity."))?;
            let login = Login {
                user: password_user(&pw.user)?,
                password: &pw.user.password,
                project,
                source,
            };
            core.identity
                .login_with(login)
                .await
                .map_err(KeystoneError::identity)?
        }
        [m] if m == "token" => {
            let t = identity
                .token
                .ok_or_else(|| KeystoneError::bad_request("Expecting to find token in identity."))?;
            core.identity.authenticate_token(&t.id, project).await?
        }
        _ => {
            return Err(KeystoneError::unauthorized(
                "Attempted to authenticate with an unsupported method: nuage supports password or token.",
            ))
        }
    };
    let body = token_body(&core, &principal, &token, !q.flag("nocatalog")).await?;
    with_subject_token(
        (StatusCode::CREATED, axum::Json(body)).into_response(),
        &token,
    )
}

fn subject(headers: &HeaderMap) -> Result<&str> {
    headers
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| KeystoneError::bad_request("Expecting to find the X-Subject-Token header."))
}

/// A subject token that does not validate is "not found", as in Keystone;
/// the caller's own token was already checked by [`Caller`].
fn subject_error(e: IdentityError) -> KeystoneError {
    match e {
        IdentityError::Unauthenticated(reason) => {
            KeystoneError::not_found(format!("Could not find token: {reason}."))
        }
        e if e.kind() == ErrorKind::Unauthenticated => {
            KeystoneError::not_found(format!("Could not find token: {e}."))
        }
        e => e.into(),
    }
}

/// `GET` (and `HEAD`) `/v3/auth/tokens`: validates `X-Subject-Token`.
async fn check(
    State(core): State<SharedCore>,
    Caller(caller): Caller,
    headers: HeaderMap,
    q: Params,
) -> Result<Response> {
    let token = subject(&headers)?;
    let p = core
        .identity
        .inspect_token(&caller, token)
        .await
        .map_err(subject_error)?;
    let body = token_body(&core, &p, token, !q.flag("nocatalog")).await?;
    with_subject_token(axum::Json(body).into_response(), token)
}

/// `DELETE /v3/auth/tokens`: revokes `X-Subject-Token`.
async fn revoke(
    State(core): State<SharedCore>,
    Caller(caller): Caller,
    headers: HeaderMap,
) -> Result<StatusCode> {
    let token = subject(&headers)?;
    core.identity
        .revoke_token(&caller, token)
        .await
        .map_err(subject_error)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn auth_catalog(State(core): State<SharedCore>, Caller(p): Caller) -> Response {
    axum::Json(json!({
        "catalog": catalog(&core, &p.project_id),
        "links": {"self": format!("{}/auth/catalog", base_url(&core)), "previous": null, "next": null},
    }))
    .into_response()
}

/// The projects the caller may scope a token to.
async fn auth_projects(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    uri: Uri,
) -> Result<Response> {
    let list = core.identity.list_user_projects(&p, &p.user_id).await?;
    let items = list.iter().map(|x| project_view(&core, x)).collect();
    Ok(collection(&core, &uri, "projects", items))
}

/// The domains the caller may scope a token to: none, since nuage issues
/// project-scoped tokens only.
async fn auth_domains(State(core): State<SharedCore>, Caller(_): Caller, uri: Uri) -> Response {
    collection(&core, &uri, "domains", Vec::new())
}

pub(super) fn routes() -> Router<SharedCore> {
    Router::new()
        .route("/v3/auth/tokens", get(check).post(issue).delete(revoke))
        .route("/v3/auth/catalog", get(auth_catalog))
        .route("/v3/auth/projects", get(auth_projects))
        .route("/v3/auth/domains", get(auth_domains))
}
