//! `os-keypairs`: the key pairs EC2 and the native API see. nuage's key
//! pairs belong to the project (as EC2's belong to the account), so every
//! member sees the same list; `user_id` shows the caller.

use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode};
use nuage_compute::types::KeyPair;
use nuage_compute::NewKeyPair;
use nuage_model::identity::Principal;
use nuage_model::{ErrorKind, HasKind};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{answer, bad_method, body, param, Fault, Result, Version};
use crate::Core;

#[derive(Debug)]
pub enum Op {
    List {
        limit: Option<usize>,
        marker: Option<String>,
    },
    Get(String),
    Create(NewKey),
    Delete(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyBody {
    keypair: NewKey,
}

/// `POST /os-keypairs`'s `keypair` object.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    name: String,
    #[serde(default)]
    public_key: Option<String>,
    /// `ssh` or `x509` (2.2 and later).
    #[serde(default, rename = "type")]
    kind: Option<String>,
    /// Another user's key (2.10 and later, admins): nuage's keys are the
    /// project's, so only the caller's own id is taken.
    #[serde(default)]
    user_id: Option<String>,
}

impl Op {
    pub fn parse(
        method: &Method,
        rest: &[&str],
        query: &[(String, String)],
        raw: &[u8],
    ) -> Result<Op> {
        match (method.clone(), rest) {
            (Method::GET, []) => Ok(Op::List {
                limit: param(query, "limit")
                    .map(|l| {
                        l.parse()
                            .map_err(|_| Fault::bad_request(format!("Invalid limit {l}")))
                    })
                    .transpose()?,
                marker: param(query, "marker").map(str::to_string),
            }),
            (Method::POST, []) => Ok(Op::Create(body::<KeyBody>(raw)?.keypair)),
            (Method::GET, [name]) => Ok(Op::Get(name.to_string())),
            (Method::DELETE, [name]) => Ok(Op::Delete(name.to_string())),
            (_, [] | [_]) => Err(bad_method()),
            _ => Err(Fault::not_found("The resource could not be found.")),
        }
    }

    pub async fn run(self, core: &Core, caller: &Principal, v: Version) -> Result<Response> {
        match self {
            Op::List { limit, marker } => {
                let all = core.compute.list_key_pairs(caller).await?;
                let (shown, _) =
                    crate::wire::after_marker(&all, |k| k.name.as_str(), marker.as_deref(), limit)
                        .ok_or_else(|| {
                            Fault::bad_request(format!(
                                "marker [{}] not found",
                                marker.as_deref().unwrap_or_default()
                            ))
                        })?;
                let items: Vec<Value> = shown
                    .iter()
                    .map(|k| {
                        let mut one = json!({
                            "name": k.name,
                            "public_key": k.public_key,
                            "fingerprint": k.fingerprint,
                        });
                        if v.at_least(2) {
                            one["type"] = json!("ssh");
                        }
                        json!({ "keypair": one })
                    })
                    .collect();
                Ok(answer(StatusCode::OK, json!({ "keypairs": items })))
            }
            Op::Get(name) => {
                let k = core
                    .compute
                    .get_key_pair(caller, &name)
                    .await
                    .map_err(|e| not_found(e, &name, caller))?;
                Ok(answer(
                    StatusCode::OK,
                    json!({"keypair": view(&k, caller, v)}),
                ))
            }
            Op::Create(new) => {
                if new.kind.is_some() && !v.at_least(2) {
                    return Err(Fault::bad_request(
                        "Invalid input for field/attribute keypair. Additional properties are not allowed ('type' was unexpected)",
                    ));
                }
                if new.kind.as_deref().is_some_and(|t| t != "ssh") {
                    return Err(Fault::bad_request(
                        "nuage's key pairs are SSH keys: type must be ssh",
                    ));
                }
                if new.user_id.as_deref().is_some_and(|u| u != caller.user_id) {
                    return Err(Fault::bad_request(
                        "nuage's key pairs belong to the project; a key for another user cannot be made",
                    ));
                }
                let k = core
                    .compute
                    .create_key_pair(
                        caller,
                        NewKeyPair {
                            name: new.name.clone(),
                            // Nova generates RSA keys.
                            key_type: new.public_key.is_none().then(|| "rsa".to_string()),
                            public_key: new.public_key,
                        },
                    )
                    .await
                    .map_err(|e| match e.kind() {
                        ErrorKind::AlreadyExists => Fault::new(
                            StatusCode::CONFLICT,
                            format!("Key pair '{}' already exists.", new.name),
                        ),
                        _ => e.into(),
                    })?;
                let mut out = view(&k, caller, v);
                if let Some(private) = &k.private_key {
                    out["private_key"] = json!(private);
                }
                let status = if v.at_least(2) {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                Ok(answer(status, json!({ "keypair": out })))
            }
            Op::Delete(name) => {
                core.compute
                    .delete_key_pair(caller, &name)
                    .await
                    .map_err(|e| not_found(e, &name, caller))?;
                let status = if v.at_least(2) {
                    StatusCode::NO_CONTENT
                } else {
                    StatusCode::ACCEPTED
                };
                Ok(status.into_response())
            }
        }
    }
}

/// Nova's own words for a key pair that does not exist.
fn not_found(e: nuage_compute::ComputeError, name: &str, caller: &Principal) -> Fault {
    match e.kind() {
        ErrorKind::NotFound => Fault::not_found(format!(
            "Keypair {name} not found for user {}",
            caller.user_id
        )),
        _ => e.into(),
    }
}

fn view(k: &KeyPair, caller: &Principal, v: Version) -> Value {
    let mut out = json!({
        "id": k.id,
        "name": k.name,
        "public_key": k.public_key,
        "fingerprint": k.fingerprint,
        "user_id": caller.user_id,
        "created_at": k.created_at,
        "updated_at": null,
        "deleted_at": null,
        "deleted": false,
    });
    if v.at_least(2) {
        out["type"] = json!("ssh");
    }
    out
}
