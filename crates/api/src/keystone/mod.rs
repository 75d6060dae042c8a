//! The OpenStack Identity (Keystone) v3 API under `/v3`, enough for
//! `python3-openstackclient`, keystoneauth and the OpenStack SDKs: version
//! discovery, tokens and the service catalog, domains, projects, users,
//! groups, roles, role assignments, OS-EC2 credentials, and the services,
//! endpoints and regions of the catalog (read-only: built from the front
//! doors nuage serves).
//!
//! Like every dialect it only translates: bodies and errors take Keystone's
//! exact shapes (`{"project": {...}}`, lists with `links`, errors as
//! `{"error": {"code", "message", "title"}}`), while the decisions (who may
//! do what, uniqueness, password rules) stay in [`nuage_identity::Identity`].
//! As in Keystone, `GET /v3/<things>/{id}` takes ids only; clients look names
//! up with `?name=`.

mod assignments;
mod auth;
mod catalog;
mod ec2;
mod error;
mod resources;

use std::collections::HashMap;

use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Query, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::request::Parts;
use http::{HeaderValue, StatusCode, Uri};
use nuage_model::identity::Principal;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

pub use catalog::catalog;
pub use error::KeystoneError;

use crate::{Core, SharedCore};

/// Largest request body the Keystone API reads.
pub const BODY_LIMIT: usize = 1 << 20;

/// The Identity API version nuage implements (the one keystoneauth expects
/// from a current Keystone).
pub const VERSION: &str = "v3.14";

type Result<T> = std::result::Result<T, KeystoneError>;

/// The authenticated caller (an `X-Auth-Token`, or a SigV4 signature);
/// requests without valid credentials are refused with 401 before the
/// handler runs.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<SharedCore> for Caller {
    type Rejection = KeystoneError;

    async fn from_request_parts(parts: &mut Parts, core: &SharedCore) -> Result<Self> {
        match crate::auth::authenticate(core, parts, None).await {
            Ok(Some(p)) => Ok(Caller(p)),
            Ok(None) => Err(KeystoneError::unauthorized(
                "The request you have made requires authentication: send X-Auth-Token (from POST /v3/auth/tokens).",
            )),
            Err(e) => Err(e.into()),
        }
    }
}

/// A JSON body with errors in Keystone's shape: wrong content type (415),
/// malformed or mistyped JSON, missing or unknown fields (400), too large
/// (413).
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = KeystoneError;

    async fn from_request(req: Request, state: &S) -> Result<Self> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rej) => Err(KeystoneError::from_json_rejection(rej)),
        }
    }
}

/// The query string as a map. Keystone ignores filters it does not know, so
/// unknown parameters are not an error; a flag without a value (`?effective`)
/// maps to `""`.
#[derive(Debug, Default)]
pub struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = KeystoneError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self> {
        Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
            .map(|Query(m)| Params(m))
            .map_err(KeystoneError::from_query_rejection)
    }
}

impl Params {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Keystone's reading of a boolean query flag: present and not `0` or
    /// `false` means true.
    pub fn flag(&self, key: &str) -> bool {
        self.get(key)
            .is_some_and(|v| !(v == "0" || v.eq_ignore_ascii_case("false")))
    }

    /// The `enabled` filter, when given.
    pub fn enabled(&self) -> Option<bool> {
        self.0.contains_key("enabled").then(|| self.flag("enabled"))
    }
}

/// `<public_url>/v3`: the base of every link.
pub fn base_url(core: &Core) -> String {
    format!("{}/v3", core.public_url.trim_end_matches('/'))
}

/// A resource's `links` object.
fn self_link(core: &Core, path: &str) -> Value {
    json!({ "self": format!("{}/{path}", base_url(core)) })
}

/// A collection answer: `{key: items, "links": {"self", "previous", "next"}}`.
/// nuage does not paginate identity lists, so `previous` and `next` are null.
fn collection(core: &Core, uri: &Uri, key: &str, items: Vec<Value>) -> Response {
    let this = format!(
        "{}{}",
        core.public_url.trim_end_matches('/'),
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/v3")
    );
    axum::Json(json!({
        key: items,
        "links": {"self": this, "previous": null, "next": null},
    }))
    .into_response()
}

/// `{key: item}` with a status.
fn entity(status: StatusCode, key: &str, item: Value) -> Response {
    (status, axum::Json(json!({ key: item }))).into_response()
}

/// Keystone's timestamp format: `2026-11-26T18:00:00.000000Z`.
fn timestamp(ms: i64) -> Value {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| Value::String(t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()))
        .unwrap_or(Value::Null)
}

/// The v3 version entry, as both discovery documents show it.
fn version_entry(core: &Core) -> Value {
    json!({
        "id": VERSION,
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": format!("{}/", base_url(core))}],
        "media-types": [{
            "base": "application/json",
            "type": "application/vnd.openstack.identity-v3+json",
        }],
    })
}

/// The version document keystoneauth reads to discover the API.
async fn version(axum::extract::State(core): axum::extract::State<SharedCore>) -> Response {
    axum::Json(json!({ "version": version_entry(&core) })).into_response()
}

/// `GET /`: the versions Keystone serves, as its root answers them (300
/// Multiple Choices), for clients given the bare endpoint as auth URL.
async fn versions(axum::extract::State(core): axum::extract::State<SharedCore>) -> Response {
    let body = json!({ "versions": { "values": [version_entry(&core)] } });
    (StatusCode::MULTIPLE_CHOICES, axum::Json(body)).into_response()
}

async fn unknown_route() -> KeystoneError {
    KeystoneError::not_found(
        "The resource could not be found: nuage does not serve this Identity API path.",
    )
}

/// The Keystone API's routes.
pub fn routes() -> Router<SharedCore> {
    Router::new()
        .route("/", get(versions))
        .route("/v3", get(version))
        .route("/v3/", get(version))
        .merge(auth::routes())
        .merge(catalog::routes())
        .merge(resources::routes())
        .merge(assignments::routes())
        .merge(ec2::routes())
}

pub fn router(core: SharedCore) -> Router {
    // Keystone tells a client where to authenticate on every 401.
    let www = HeaderValue::from_str(&format!("Keystone uri=\"{}\"", base_url(&core)))
        .unwrap_or_else(|_| HeaderValue::from_static("Keystone"));
    routes()
        .fallback(unknown_route)
        .method_not_allowed_fallback(|| async {
            KeystoneError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "The method is not allowed for the requested URL.",
            )
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::map_response(move |mut resp: Response| {
            let www = www.clone();
            async move {
                if resp.status() == StatusCode::UNAUTHORIZED {
                    resp.headers_mut()
                        .insert(http::header::WWW_AUTHENTICATE, www);
                }
                resp
            }
        }))
        .with_state(core)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_read_like_keystone() {
        let p = Params(
            [
                ("a", ""),
                ("b", "0"),
                ("c", "False"),
                ("d", "true"),
                ("e", "1"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        );
        assert!(p.flag("a"));
        assert!(!p.flag("b"));
        assert!(!p.flag("c"));
        assert!(p.flag("d"));
        assert!(p.flag("e"));
        assert!(!p.flag("missing"));
        assert_eq!(p.enabled(), None);
    }

    #[test]
    fn timestamps_have_microseconds() {
        assert_eq!(
            timestamp(1_700_000_000_123),
            json!("2023-11-14T22:13:20.123000Z")
        );
        assert_eq!(timestamp(i64::MAX), Value::Null);
    }
}
