//! Native API for networking: networks, subnets, ports, routers, security
//! groups and their rules, floating (elastic) addresses. Each handler
//! authenticates (the `Caller` extractor), translates, and calls the
//! network service, which authorises and holds every rule: a refusal
//! changes nothing and comes back as the error's kind.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;
use http::StatusCode;
use nuage_network::types::{NewNetwork, NewPort, NewRouter, NewRule, NewSecurityGroup, NewSubnet};
use serde::Deserialize;
use serde_json::json;

use super::{Caller, Json, NativeError};
use crate::SharedCore;

type Result<T> = std::result::Result<T, NativeError>;

fn items<T: serde::Serialize>(v: Vec<T>) -> Response {
    axum::Json(json!({ "items": v })).into_response()
}

fn created<T: serde::Serialize>(v: T) -> Response {
    (StatusCode::CREATED, axum::Json(v)).into_response()
}

fn one<T: serde::Serialize>(v: T) -> Response {
    axum::Json(v).into_response()
}

pub fn routes() -> Router<SharedCore> {
    Router::new()
        .route(
            "/nuage/v1/networks",
            get(list_networks).post(create_network),
        )
        .route(
            "/nuage/v1/networks/{id}",
            get(get_network).delete(delete_network),
        )
        .route("/nuage/v1/subnets", get(list_subnets).post(create_subnet))
        .route(
            "/nuage/v1/subnets/{id}",
            get(get_subnet).delete(delete_subnet),
        )
        .route("/nuage/v1/ports", get(list_ports).post(create_port))
        .route(
            "/nuage/v1/ports/{id}",
            get(get_port).patch(update_port).delete(delete_port),
        )
        .route("/nuage/v1/routers", get(list_routers).post(create_router))
        .route(
            "/nuage/v1/routers/{id}",
            get(get_router).delete(delete_router),
        )
        .route(
            "/nuage/v1/routers/{id}/gateway",
            put(set_gateway).delete(clear_gateway),
        )
        .route("/nuage/v1/routers/{id}/interfaces", post(add_interface))
        .route(
            "/nuage/v1/routers/{id}/interfaces/{subnet}",
            delete(remove_interface),
        )
        .route(
            "/nuage/v1/security-groups",
            get(list_groups).post(create_group),
        )
        .route(
            "/nuage/v1/security-groups/{id}",
            get(get_group).delete(delete_group),
        )
        .route("/nuage/v1/security-groups/{id}/rules", post(add_rule))
        .route("/nuage/v1/security-group-rules/{id}", delete(remove_rule))
        .route("/nuage/v1/floating-ips", get(list_fips).post(allocate_fip))
        .route(
            "/nuage/v1/floating-ips/{id}",
            get(get_fip).delete(release_fip),
        )
        .route(
            "/nuage/v1/floating-ips/{id}/association",
            put(associate_fip).delete(disassociate_fip),
        )
}

/// `?all_projects=true`: every project's (admins only; the service checks).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Scope {
    #[serde(default)]
    all_projects: bool,
}

// --------------------------------------------------------------- networks

async fn list_networks(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Query(q): Query<Scope>,
) -> Result<Response> {
    Ok(items(core.network.list_networks(&p, q.all_projects).await?))
}

async fn create_network(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Json(req): Json<NewNetwork>,
) -> Result<Response> {
    Ok(created(core.network.create_network(&p, req).await?))
}

async fn get_network(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(one(core.network.get_network(&p, &id).await?))
}

async fn delete_network(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    core.network.delete_network(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- subnets

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubnetQuery {
    network_id: Option<String>,
}

async fn list_subnets(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Query(q): Query<SubnetQuery>,
) -> Result<Response> {
    Ok(items(
        core.network
            .list_subnets(&p, q.network_id.as_deref())
            .await?,
    ))
}

async fn create_subnet(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Json(req): Json<NewSubnet>,
) -> Result<Response> {
    Ok(created(core.network.create_subnet(&p, req).await?))
}

async fn get_subnet(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(one(core.network.get_subnet(&p, &id).await?))
}

async fn delete_subnet(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    core.network.delete_subnet(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------------ ports

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PortQuery {
    /// The ports of one device (an instance id).
    device_id: Option<String>,
    #[serde(default)]
    all_projects: bool,
}

async fn list_ports(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Query(q): Query<PortQuery>,
) -> Result<Response> {
    Ok(items(
        core.network
            .list_ports(&p, q.device_id.as_deref(), q.all_projects)
            .await?,
    ))
}

async fn create_port(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Json(req): Json<NewPort>,
) -> Result<Response> {
    Ok(created(core.network.create_port(&p, req).await?))
}

async fn get_port(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(one(core.network.get_port(&p, &id).await?))
}

/// What a port's owner may change: its security groups (the whole list).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PortPatch {
    security_groups: Vec<String>,
}

async fn update_port(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Json(patch): Json<PortPatch>,
) -> Result<Response> {
    Ok(one(core
        .network
        .set_port_security_groups(&p, &id, &patch.security_groups)
        .await?))
}

async fn delete_port(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    core.network.delete_port(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- routers

async fn list_routers(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Query(q): Query<Scope>,
) -> Result<Response> {
    Ok(items(core.network.list_routers(&p, q.all_projects).await?))
}

async fn create_router(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Json(req): Json<NewRouter>,
) -> Result<Response> {
    Ok(created(core.network.create_router(&p, req).await?))
}

async fn get_router(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(one(core.network.get_router(&p, &id).await?))
}

async fn delete_router(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    core.network.delete_router(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Gateway {
    network_id: String,
}

async fn set_gateway(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Json(g): Json<Gateway>,
) -> Result<Response> {
    Ok(one(core
        .network
        .set_router_gateway(&p, &id, Some(&g.network_id))
        .await?))
}

async fn clear_gateway(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(one(core.network.set_router_gateway(&p, &id, None).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Interface {
    subnet_id: String,
}

async fn add_interface(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Json(i): Json<Interface>,
) -> Result<Response> {
    Ok(one(core
        .network
        .add_router_interface(&p, &id, &i.subnet_id)
        .await?))
}

async fn remove_interface(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path((id, subnet)): Path<(String, String)>,
) -> Result<Response> {
    Ok(one(core
        .network
        .remove_router_interface(&p, &id, &subnet)
        .await?))
}

// -------------------------------------------------------- security groups

async fn list_groups(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Query(q): Query<Scope>,
) -> Result<Response> {
    Ok(items(
        core.network
            .list_security_groups(&p, q.all_projects)
            .await?,
    ))
}

async fn create_group(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Json(req): Json<NewSecurityGroup>,
) -> Result<Response> {
    Ok(created(core.network.create_security_group(&p, req).await?))
}

async fn get_group(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(one(core.network.get_security_group(&p, &id).await?))
}

async fn delete_group(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    core.network.delete_security_group(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn add_rule(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Json(req): Json<NewRule>,
) -> Result<Response> {
    Ok(created(
        core.network.add_security_group_rule(&p, &id, req).await?,
    ))
}

async fn remove_rule(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    core.network.remove_security_group_rule(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------ floating addresses

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Allocate {
    /// The external network to take it from; default: the only one.
    #[serde(default)]
    network_id: Option<String>,
}

async fn list_fips(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Query(q): Query<Scope>,
) -> Result<Response> {
    Ok(items(
        core.network.list_floating_ips(&p, q.all_projects).await?,
    ))
}

async fn allocate_fip(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Json(a): Json<Allocate>,
) -> Result<Response> {
    Ok(created(
        core.network
            .allocate_floating_ip(&p, a.network_id.as_deref())
            .await?,
    ))
}

async fn get_fip(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(one(core.network.get_floating_ip(&p, &id).await?))
}

async fn release_fip(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    core.network.release_floating_ip(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Association {
    port_id: String,
    /// Which of the port's addresses; default: its first.
    #[serde(default)]
    fixed_ip: Option<String>,
}

async fn associate_fip(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Json(a): Json<Association>,
) -> Result<Response> {
    Ok(one(core
        .network
        .associate_floating_ip(&p, &id, &a.port_id, a.fixed_ip.as_deref())
        .await?))
}

async fn disassociate_fip(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(one(core.network.disassociate_floating_ip(&p, &id).await?))
}
