//! The native JSON API under `/nuage/v1`, described by the OpenAPI document
//! it serves at `/nuage/v1/openapi.json` (kept in `openapi.json` beside this
//! file and checked against the router by a test).
//!
//! Errors are `{"error": {"code", "message", "request_id"}}` with the HTTP
//! status of the error's kind. Lists are `{"items": [...]}`.

mod compute;
mod error;
mod identity;
mod network;
mod objects;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::request::Parts;
use nuage_model::identity::Principal;
use serde::de::DeserializeOwned;

pub use error::NativeError;

use crate::SharedCore;

/// Largest request body the native API reads.
pub const BODY_LIMIT: usize = 1 << 20;

/// The OpenAPI document of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The authenticated caller; requests without valid credentials are refused
/// with 401 before the handler runs.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<SharedCore> for Caller {
    type Rejection = NativeError;

    async fn from_request_parts(
        parts: &mut Parts,
        core: &SharedCore,
    ) -> Result<Self, Self::Rejection> {
        match crate::auth::authenticate(core, parts, None).await {
            Ok(Some(p)) => Ok(Caller(p)),
            Ok(None) => Err(NativeError::unauthenticated(
                "authentication required: send X-Auth-Token (from POST /nuage/v1/tokens) or a SigV4 signature",
            )),
            Err(e) => Err(e.into()),
        }
    }
}

/// A JSON body with errors rendered in the native dialect: wrong content
/// type (415), malformed or mistyped JSON and unknown fields (400), too large
/// (413).
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = NativeError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rej) => Err(NativeError::from_json_rejection(rej)),
        }
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

async fn version() -> Response {
    axum::Json(serde_json::json!({
        "name": "nuage",
        "version": env!("CARGO_PKG_VERSION"),
        "api": "v1",
        "openapi": "/nuage/v1/openapi.json",
    }))
    .into_response()
}

async fn openapi() -> Response {
    ([(http::header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn unknown_route() -> NativeError {
    NativeError::not_found("no such route in the native API; see /nuage/v1/openapi.json")
}

/// The native API's routes, by path; the `(path, methods)` pairs are also
/// what the OpenAPI test compares with the document.
pub fn routes() -> Router<SharedCore> {
    Router::new()
        .route("/nuage/v1", get(version))
        .route("/nuage/v1/openapi.json", get(openapi))
        .merge(identity::routes())
        .merge(compute::routes())
        .merge(network::routes())
        .merge(objects::routes())
}

pub fn router(core: SharedCore) -> Router {
    routes()
        .fallback(unknown_route)
        .method_not_allowed_fallback(|| async {
            NativeError::new(
                http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this method is not allowed on this path",
            )
        })
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(core)
}

#[cfg(test)]
mod tests {
    /// Every route in the code is in the OpenAPI document with the same
    /// methods, and the document names nothing the code lacks.
    #[test]
    fn openapi_matches_routes() {
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI).expect("valid JSON");
        let paths = doc["paths"].as_object().expect("paths");
        let sources = [
            include_str!("mod.rs"),
            include_str!("identity.rs"),
            include_str!("compute.rs"),
            include_str!("network.rs"),
            include_str!("objects.rs"),
        ];
        let mut seen = std::collections::BTreeSet::new();
        for src in sources {
            for chunk in src.split(".route(").skip(1) {
                let Some(route) = chunk.split('"').nth(1) else {
                    continue;
                };
                // OpenAPI spells a catch-all `{*key}` as a plain `{key}`.
                let path = &route.replace("{*", "{");
                if !path.starts_with("/nuage/v1") {
                    continue;
                }
                let call = &chunk[..chunk.find("\n        .").unwrap_or(chunk.len())];
                let documented = paths
                    .get(path)
                    .unwrap_or_else(|| panic!("route {path} is not in openapi.json"));
                for m in ["get", "post", "put", "patch", "delete", "head"] {
                    let in_code = call.contains(&format!("{m}("))
                        && !call.contains(&format!("_{m}("))
                        || call.contains(&format!(".{m}("))
                        || call.contains(&format!(" {m}("))
                        || call.contains(&format!("({m}("));
                    assert_eq!(
                        in_code,
                        documented.get(m).is_some(),
                        "{m} {path}: code and openapi.json disagree"
                    );
                }
                seen.insert(path.to_string());
            }
        }
        for p in paths.keys() {
            assert!(
                seen.contains(p),
                "openapi.json documents {p}, which no route serves"
            );
        }
    }
}
