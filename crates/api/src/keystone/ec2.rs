//! OS-EC2 credentials: the access keys nuage's EC2 and S3 dialects verify,
//! under `/v3/users/{user_id}/credentials/OS-EC2`. Like Keystone, these
//! answers include the secret: the owner (or an admin) reads it back here.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use http::{StatusCode, Uri};
use nuage_model::identity::AccessKey;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{base_url, collection, entity, Caller, Json, KeystoneError, Result};
use crate::{Core, SharedCore};

fn credential_view(core: &Core, k: &AccessKey) -> Value {
    json!({
        "user_id": k.user_id,
        // keystoneclient sends and reads `tenant_id`, even in v3.
        "tenant_id": k.project_id,
        "access": k.access_key_id,
        "secret": k.secret,
        "trust_id": null,
        "links": {
            "self": format!("{}/users/{}/credentials/OS-EC2/{}", base_url(core), k.user_id, k.access_key_id),
        },
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateCredential {
    tenant_id: String,
}

async fn create(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(user_id): Path<String>,
    Json(c): Json<CreateCredential>,
) -> Result<Response> {
    let k = core
        .identity
        .create_access_key(&p, &user_id, &c.tenant_id)
        .await?;
    Ok(entity(
        StatusCode::CREATED,
        "credential",
        credential_view(&core, &k),
    ))
}

async fn list(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(user_id): Path<String>,
    uri: Uri,
) -> Result<Response> {
    let items = core
        .identity
        .list_access_keys(&p, Some(&user_id))
        .await?
        .iter()
        .map(|k| credential_view(&core, k))
        .collect();
    Ok(collection(&core, &uri, "credentials", items))
}

/// The key `access` of `user_id`; a key of another user is "not found", so
/// the path cannot be used to probe which keys exist.
async fn owned(
    core: &Core,
    p: &nuage_model::identity::Principal,
    user_id: &str,
    access: &str,
) -> Result<AccessKey> {
    let k = core.identity.get_access_key(p, access).await?;
    if k.user_id != user_id {
        return Err(KeystoneError::not_found(format!(
            "Could not find credential: {access}."
        )));
    }
    Ok(k)
}

async fn show(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path((user_id, access)): Path<(String, String)>,
) -> Result<Response> {
    let k = owned(&core, &p, &user_id, &access).await?;
    Ok(entity(
        StatusCode::OK,
        "credential",
        credential_view(&core, &k),
    ))
}

async fn delete(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path((user_id, access)): Path<(String, String)>,
) -> Result<StatusCode> {
    let k = owned(&core, &p, &user_id, &access).await?;
    core.identity
        .delete_access_key(&p, &k.access_key_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) fn routes() -> Router<SharedCore> {
    Router::new()
        .route(
            "/v3/users/{user_id}/credentials/OS-EC2",
            get(list).post(create),
        )
        .route(
            "/v3/users/{user_id}/credentials/OS-EC2/{access}",
            get(show).delete(delete),
        )
}
