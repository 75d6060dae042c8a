//! The service catalog, and the `/v3/services`, `/v3/endpoints` and
//! `/v3/regions` views of it.
//!
//! Keystone stores its catalog and lets admins edit it; nuage's catalog is
//! what this process serves (one endpoint URL for every interface, one
//! region), so it is computed, never stored, and the three collections are
//! read-only: a write answers 501 Not Implemented and changes nothing.
//! Ids are derived from the names, so they stay the same across restarts
//! and across the controllers of one deployment.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::{StatusCode, Uri};
use nuage_identity::policy::{authorize, Rule};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{base_url, collection, Caller, KeystoneError, Params, Result};
use crate::{Core, SharedCore};

/// The interfaces every endpoint is listed under.
const INTERFACES: [&str; 3] = ["public", "internal", "admin"];

/// One OpenStack service nuage serves: its type, name and URL template.
struct Service {
    kind: &'static str,
    name: &'static str,
    description: &'static str,
    /// The path under the public URL; `{project_id}` is replaced in a
    /// token's catalog (and kept as a template in `/v3/endpoints`, as
    /// Keystone stores it: `$(project_id)s`).
    path: &'static str,
}

/// The OpenStack services this build serves. Add each as its front door
/// lands: ("volumev3", "cinderv3",
/// "/volume/v3/{project_id}"), ("orchestration", "heat",
/// "/orchestration/v1/{project_id}").
const SERVICES: &[Service] = &[
    Service {
        kind: "identity",
        name: "keystone",
        description: "nuage Identity (Keystone v3)",
        path: "/v3",
    },
    Service {
        kind: "compute",
        name: "nova",
        description: "nuage Compute (Nova v2.1)",
        path: "/compute/v2.1",
    },
    Service {
        kind: "image",
        name: "glance",
        description: "nuage Image (Glance v2)",
        path: "/image",
    },
    Service {
        kind: "network",
        name: "neutron",
        description: "nuage Networking (Neutron v2.0)",
        path: "/networking",
    },
    Service {
        kind: "object-store",
        name: "swift",
        description: "nuage Object Storage (Swift v1)",
        path: "/v1/AUTH_{project_id}",
    },
];

impl Service {
    fn id(&self) -> String {
        stable_id(&[self.kind])
    }

    fn url(&self, core: &Core, project_id: &str) -> String {
        format!(
            "{}{}",
            core.public_url.trim_end_matches('/'),
            self.path.replace("{project_id}", project_id)
        )
    }

    fn endpoint_id(&self, core: &Core, interface: &str) -> String {
        stable_id(&[self.kind, interface, &core.region])
    }
}

/// The service catalog of a token scoped to `project_id`.
pub fn catalog(core: &Core, project_id: &str) -> Vec<Value> {
    SERVICES
        .iter()
        .map(|s| {
            let url = s.url(core, project_id);
            let endpoints: Vec<Value> = INTERFACES
                .iter()
                .map(|interface| {
                    json!({
                        "id": s.endpoint_id(core, interface),
                        "interface": interface,
                        "region_id": core.region,
                        "region": core.region,
                        "url": url,
                    })
                })
                .collect();
            json!({"id": s.id(), "type": s.kind, "name": s.name, "endpoints": endpoints})
        })
        .collect()
}

/// A 32-hex-digit id derived from `parts`.
fn stable_id(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..16])
}

fn service_view(core: &Core, s: &Service) -> Value {
    json!({
        "id": s.id(),
        "type": s.kind,
        "name": s.name,
        "description": s.description,
        "enabled": true,
        "links": {"self": format!("{}/services/{}", base_url(core), s.id())},
    })
}

fn endpoint_view(core: &Core, s: &Service, interface: &str) -> Value {
    let id = s.endpoint_id(core, interface);
    json!({
        "id": id,
        "interface": interface,
        "region_id": core.region,
        "region": core.region,
        "service_id": s.id(),
        // Keystone's template syntax for the project in a URL.
        "url": s.url(core, "$(project_id)s"),
        "enabled": true,
        "links": {"self": format!("{}/endpoints/{id}", base_url(core))},
    })
}

fn region_view(core: &Core) -> Value {
    json!({
        "id": core.region,
        "description": "",
        "parent_region_id": null,
        "links": {"self": format!("{}/regions/{}", base_url(core), core.region)},
    })
}

/// Keystone's default policy: the catalog's services and endpoints are
/// for administrators (everyone else reads their token's catalog).
fn admin_only(caller: &nuage_model::identity::Principal, action: &str) -> Result<()> {
    authorize(caller, action, Rule::Admin)?;
    Ok(())
}

async fn list_services(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    q: Params,
    uri: Uri,
) -> Result<Response> {
    admin_only(&p, "identity:list_services")?;
    let items = SERVICES
        .iter()
        .filter(|s| q.get("type").is_none_or(|t| t == s.kind))
        .filter(|s| q.get("name").is_none_or(|n| n == s.name))
        .map(|s| service_view(&core, s))
        .collect();
    Ok(collection(&core, &uri, "services", items))
}

async fn get_service(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    admin_only(&p, "identity:get_service")?;
    let s = SERVICES
        .iter()
        .find(|s| s.id() == id)
        .ok_or_else(|| KeystoneError::not_found(format!("Could not find service: {id}.")))?;
    Ok(axum::Json(json!({"service": service_view(&core, s)})).into_response())
}

/// Every (service, interface) pair, as endpoints.
fn endpoints(core: &Core) -> impl Iterator<Item = (&'static Service, &'static str, String)> + '_ {
    SERVICES.iter().flat_map(move |s| {
        INTERFACES
            .iter()
            .map(move |i| (s, *i, s.endpoint_id(core, i)))
    })
}

async fn list_endpoints(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    q: Params,
    uri: Uri,
) -> Result<Response> {
    admin_only(&p, "identity:list_endpoints")?;
    let items = endpoints(&core)
        .filter(|(s, _, _)| q.get("service_id").is_none_or(|v| v == s.id()))
        .filter(|(_, i, _)| q.get("interface").is_none_or(|v| v == *i))
        .filter(|_| q.get("region_id").is_none_or(|v| v == core.region))
        .map(|(s, i, _)| endpoint_view(&core, s, i))
        .collect();
    Ok(collection(&core, &uri, "endpoints", items))
}

async fn get_endpoint(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    admin_only(&p, "identity:get_endpoint")?;
    let (s, i, _) = endpoints(&core)
        .find(|(_, _, e)| *e == id)
        .ok_or_else(|| KeystoneError::not_found(format!("Could not find endpoint: {id}.")))?;
    Ok(axum::Json(json!({"endpoint": endpoint_view(&core, s, i)})).into_response())
}

/// Regions are readable by any authenticated caller, as in Keystone.
async fn list_regions(
    State(core): State<SharedCore>,
    Caller(_): Caller,
    q: Params,
    uri: Uri,
) -> Result<Response> {
    let items = if q.get("parent_region_id").is_some() {
        Vec::new()
    } else {
        vec![region_view(&core)]
    };
    Ok(collection(&core, &uri, "regions", items))
}

async fn get_region(
    State(core): State<SharedCore>,
    Caller(_): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    if id != core.region {
        return Err(KeystoneError::not_found(format!(
            "Could not find region: {id}."
        )));
    }
    Ok(axum::Json(json!({"region": region_view(&core)})).into_response())
}

/// Any write to the catalog: recognised, authenticated, and refused.
async fn read_only(Caller(_): Caller) -> KeystoneError {
    KeystoneError::new(
        StatusCode::NOT_IMPLEMENTED,
        "nuage builds its catalog from the services it runs; services, endpoints and regions cannot be created, changed or deleted.",
    )
}

pub(super) fn routes() -> Router<SharedCore> {
    Router::new()
        .route("/v3/services", get(list_services).post(read_only))
        .route(
            "/v3/services/{id}",
            get(get_service).patch(read_only).delete(read_only),
        )
        .route("/v3/endpoints", get(list_endpoints).post(read_only))
        .route(
            "/v3/endpoints/{id}",
            get(get_endpoint).patch(read_only).delete(read_only),
        )
        .route("/v3/regions", get(list_regions).post(read_only))
        .route(
            "/v3/regions/{id}",
            get(get_region)
                .put(read_only)
                .patch(read_only)
                .delete(read_only),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_ids_are_hex32_and_distinct() {
        let a = stable_id(&["identity", "public", "r"]);
        let b = stable_id(&["identity", "admin", "r"]);
        assert!(nuage_model::id::is_hex32(&a), "{a}");
        assert_ne!(a, b);
        assert_eq!(a, stable_id(&["identity", "public", "r"]));
    }

    #[test]
    fn service_and_endpoint_ids_differ() {
        let ids: Vec<String> = SERVICES.iter().map(Service::id).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len());
    }
}
