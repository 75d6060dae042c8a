//! Routers and floating IPs. A router is nuage's router: its external
//! gateway is the network it SNATs through (what EC2 calls the internet
//! gateway of the VPC), its interfaces are ports holding each joined
//! subnet's gateway address. A floating IP is the elastic address EC2
//! shows, translated by the router between its port and its network.

use axum::response::Response;
use http::{Method, StatusCode};
use nuage_network::types::{device_owner, FloatingIp, NewRouter, Router};
use nuage_network::{NetworkError, Resource};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{
    answer, bad_method, body_of, check_description, id_of, member_of, no_content, own_project,
    standard, unknown, Ctx, Fault, Listing, Result,
};

#[derive(Debug)]
pub enum Op {
    ListRouters(Listing),
    CreateRouter(CreateRouter),
    ShowRouter(String, Listing),
    UpdateRouter(String, UpdateRouter),
    DeleteRouter(String),
    AddInterface(String, Interface),
    RemoveInterface(String, Interface),
    ListFips(Listing),
    CreateFip(CreateFip),
    ShowFip(String, Listing),
    UpdateFip(String, UpdateFip),
    DeleteFip(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gateway {
    network_id: String,
    #[serde(default)]
    enable_snat: Option<bool>,
    #[serde(default)]
    external_fixed_ips: Option<Vec<Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRouter {
    #[serde(default)]
    name: String,
    #[serde(default)]
    admin_state_up: Option<bool>,
    #[serde(default)]
    external_gateway_info: Option<Gateway>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    project_id: Option<String>,
    #[serde(default)]
    tenant_id: Option<String>,
    #[serde(default)]
    availability_zone_hints: Option<Vec<String>>,
    #[serde(default)]
    distributed: Option<bool>,
    #[serde(default)]
    ha: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRouter {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    admin_state_up: Option<bool>,
    /// Absent: unchanged; `null` or `{}`: removed.
    #[serde(default, deserialize_with = "gateway_change")]
    external_gateway_info: Option<Option<Gateway>>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    routes: Option<Vec<Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interface {
    #[serde(default)]
    subnet_id: Option<String>,
    #[serde(default)]
    port_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateFip {
    floating_network_id: String,
    #[serde(default)]
    port_id: Option<String>,
    #[serde(default)]
    fixed_ip_address: Option<String>,
    #[serde(default)]
    floating_ip_address: Option<String>,
    #[serde(default)]
    subnet_id: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    project_id: Option<String>,
    #[serde(default)]
    tenant_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateFip {
    /// Absent: unchanged; `null`: disassociated.
    #[serde(default, deserialize_with = "some_null")]
    port_id: Option<Option<String>>,
    #[serde(default)]
    fixed_ip_address: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

fn some_null<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Option<String>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

fn gateway_change<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Option<Gateway>>, D::Error> {
    use serde::de::Error;
    let v = Option::<Map<String, Value>>::deserialize(d)?;
    match v {
        None => Ok(Some(None)),
        Some(m) if m.is_empty() => Ok(Some(None)),
        Some(m) => serde_json::from_value(Value::Object(m))
            .map(|g| Some(Some(g)))
            .map_err(D::Error::custom),
    }
}

pub const ROUTER_ATTRS: &[&str] = &[
    "id",
    "name",
    "tenant_id",
    "project_id",
    "status",
    "admin_state_up",
    "external_gateway_info",
    "routes",
    "availability_zone_hints",
    "availability_zones",
    "description",
    "distributed",
    "ha",
    "flavor_id",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
];

pub const FIP_ATTRS: &[&str] = &[
    "id",
    "floating_ip_address",
    "floating_network_id",
    "router_id",
    "port_id",
    "fixed_ip_address",
    "status",
    "description",
    "port_details",
    "tenant_id",
    "project_id",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
];

fn check_gateway(g: &Gateway) -> Result<()> {
    if g.enable_snat == Some(false) {
        return Err(Fault::invalid(
            "a nuage router always translates (SNAT) through its gateway",
        ));
    }
    if g.external_fixed_ips.as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(Fault::invalid(
            "nuage chooses the router's address on the external network; give no external_fixed_ips",
        ));
    }
    Ok(())
}

impl Op {
    pub fn parse(
        method: &Method,
        collection: &str,
        rest: &[&str],
        query: &[(String, String)],
        body: &[u8],
    ) -> Result<Op> {
        let routers = collection == "routers";
        Ok(match (method.clone(), rest) {
            (Method::GET, []) if routers => Op::ListRouters(Listing::parse(query)?),
            (Method::GET, []) => Op::ListFips(Listing::parse(query)?),
            (Method::POST, []) if routers => Op::CreateRouter(member_of(body, "router")?),
            (Method::POST, []) => Op::CreateFip(member_of(body, "floatingip")?),
            (Method::GET, [id]) if routers => Op::ShowRouter(id_of(id)?, Listing::parse(query)?),
            (Method::GET, [id]) => Op::ShowFip(id_of(id)?, Listing::parse(query)?),
            (Method::PUT, [id]) if routers => {
                Op::UpdateRouter(id_of(id)?, member_of(body, "router")?)
            }
            (Method::PUT, [id]) => Op::UpdateFip(id_of(id)?, member_of(body, "floatingip")?),
            (Method::DELETE, [id]) if routers => Op::DeleteRouter(id_of(id)?),
            (Method::DELETE, [id]) => Op::DeleteFip(id_of(id)?),
            (Method::PUT, [id, "add_router_interface"]) if routers => {
                Op::AddInterface(id_of(id)?, interface(body)?)
            }
            (Method::PUT, [id, "remove_router_interface"]) if routers => {
                Op::RemoveInterface(id_of(id)?, interface(body)?)
            }
            (_, [_, "add_router_interface" | "remove_router_interface"]) if routers => {
                return Err(bad_method())
            }
            (_, [] | [_]) => return Err(bad_method()),
            _ => return Err(unknown(collection)),
        })
    }

    pub async fn run(self, ctx: &Ctx<'_>) -> Result<Response> {
        let net = &ctx.core.network;
        let caller = ctx.caller;
        match self {
            Op::ListRouters(listing) => {
                let tags = ctx.tags().await?;
                let mut items = Vec::new();
                for r in net.list_routers(caller, ctx.all_projects()).await? {
                    items.push(router_view(ctx, &r, &tags).await);
                }
                ctx.describe(&mut items).await?;
                listing.answer(ctx.core, "routers", ROUTER_ATTRS, items)
            }
            Op::ShowRouter(id, listing) => {
                let r = net.get_router(caller, &id).await?;
                let tags = ctx.tags().await?;
                let v = listing.trim(ctx.described(router_view(ctx, &r, &tags).await).await?);
                Ok(answer(StatusCode::OK, json!({ "router": v })))
            }
            Op::CreateRouter(c) => {
                own_project(caller, c.project_id.as_deref(), c.tenant_id.as_deref())?;
                if c.admin_state_up == Some(false) {
                    return Err(Fault::invalid("nuage's routers are always up"));
                }
                check_description(c.description.as_deref())?;
                if c.distributed == Some(true) || c.ha == Some(true) {
                    return Err(Fault::invalid(
                        "nuage's routers are neither distributed nor HA: each runs on the nodes of its networks",
                    ));
                }
                if c.availability_zone_hints
                    .as_ref()
                    .is_some_and(|h| !h.is_empty())
                {
                    return Err(Fault::invalid(
                        "a router spans every availability zone in nuage; give no availability_zone_hints",
                    ));
                }
                if let Some(g) = &c.external_gateway_info {
                    check_gateway(g)?;
                }
                let r = net
                    .create_router(
                        caller,
                        NewRouter {
                            name: c.name,
                            external_network_id: c.external_gateway_info.map(|g| g.network_id),
                        },
                    )
                    .await?;
                ctx.set_description(Resource::Router, &r.id, c.description.as_deref())
                    .await?;
                let v = ctx
                    .described(router_view(ctx, &r, &Default::default()).await)
                    .await?;
                Ok(answer(StatusCode::CREATED, json!({ "router": v })))
            }
            Op::UpdateRouter(id, u) => {
                if u.admin_state_up == Some(false) {
                    return Err(Fault::invalid("nuage's routers are always up"));
                }
                check_description(u.description.as_deref())?;
                if u.routes.as_ref().is_some_and(|r| !r.is_empty()) {
                    return Err(Fault::invalid(
                        "nuage's routers take no extra routes: they join subnets and route out through their gateway",
                    ));
                }
                if let Some(Some(g)) = &u.external_gateway_info {
                    check_gateway(g)?;
                }
                let current = net.get_router(caller, &id).await?;
                if let Some(g) = &u.external_gateway_info {
                    let want = g.as_ref().map(|g| g.network_id.as_str());
                    if want != current.external_network_id.as_deref() {
                        net.set_router_gateway(caller, &id, want).await?;
                    }
                }
                if let Some(name) = &u.name {
                    net.rename(caller, Resource::Router, &id, name).await?;
                }
                ctx.set_description(Resource::Router, &id, u.description.as_deref())
                    .await?;
                let r = net.get_router(caller, &id).await?;
                let tags = ctx.tags().await?;
                Ok(answer(
                    StatusCode::OK,
                    json!({ "router": ctx.described(router_view(ctx, &r, &tags).await).await? }),
                ))
            }
            Op::DeleteRouter(id) => {
                net.delete_router(caller, &id).await?;
                Ok(no_content())
            }
            Op::AddInterface(id, i) => {
                let subnet = match (i.subnet_id, i.port_id) {
                    (Some(s), None) => s,
                    (None, Some(_)) => {
                        return Err(Fault::invalid(
                            "nuage makes a router's interface port itself, holding the subnet's gateway address: give subnet_id",
                        ))
                    }
                    _ => {
                        return Err(Fault::bad_request(
                            "Either subnet_id or port_id must be specified, not both",
                        ))
                    }
                };
                let r = net.add_router_interface(caller, &id, &subnet).await?;
                interface_answer(ctx, &r, &subnet).await
            }
            Op::RemoveInterface(id, i) => {
                let r = net.get_router(caller, &id).await?;
                let found = match (&i.subnet_id, &i.port_id) {
                    (Some(s), None) => r.interfaces.iter().find(|x| &x.subnet_id == s),
                    (None, Some(p)) => r.interfaces.iter().find(|x| &x.port_id == p),
                    _ => {
                        return Err(Fault::bad_request(
                            "Either subnet_id or port_id must be specified",
                        ))
                    }
                };
                let Some(found) = found.cloned() else {
                    return Err(match (i.subnet_id, i.port_id) {
                        (Some(s), _) => Fault::not_found(
                            "RouterInterfaceNotFoundForSubnet",
                            format!("Router {id} has no interface on subnet {s}"),
                        ),
                        (_, p) => Fault::not_found(
                            "RouterInterfaceNotFound",
                            format!(
                                "Router {id} does not have an interface with id {}",
                                p.unwrap_or_default()
                            ),
                        ),
                    });
                };
                let network = net
                    .get_subnet(caller, &found.subnet_id)
                    .await
                    .map(|s| s.network_id)
                    .unwrap_or_default();
                let r = net
                    .remove_router_interface(caller, &id, &found.subnet_id)
                    .await?;
                Ok(answer(
                    StatusCode::OK,
                    json!({
                        "id": r.id, "tenant_id": r.project_id, "project_id": r.project_id,
                        "subnet_id": found.subnet_id, "subnet_ids": [found.subnet_id],
                        "port_id": found.port_id, "network_id": network,
                    }),
                ))
            }
            Op::ListFips(listing) => {
                let tags = ctx.tags().await?;
                let mut items = Vec::new();
                for f in net.list_floating_ips(caller, ctx.all_projects()).await? {
                    items.push(fip_view(ctx, &f, &tags).await);
                }
                ctx.describe(&mut items).await?;
                listing.answer(ctx.core, "floatingips", FIP_ATTRS, items)
            }
            Op::ShowFip(id, listing) => {
                let f = net.get_floating_ip(caller, &id).await?;
                let tags = ctx.tags().await?;
                let v = listing.trim(ctx.described(fip_view(ctx, &f, &tags).await).await?);
                Ok(answer(StatusCode::OK, json!({ "floatingip": v })))
            }
            Op::CreateFip(c) => {
                own_project(caller, c.project_id.as_deref(), c.tenant_id.as_deref())?;
                check_description(c.description.as_deref())?;
                if c.floating_ip_address.is_some() || c.subnet_id.is_some() {
                    return Err(Fault::invalid(
                        "nuage chooses a floating IP's address from the external network's pool; give neither floating_ip_address nor subnet_id",
                    ));
                }
                if c.fixed_ip_address.is_some() && c.port_id.is_none() {
                    return Err(Fault::invalid("fixed_ip_address needs a port_id"));
                }
                let f = net
                    .allocate_floating_ip(caller, Some(&c.floating_network_id))
                    .await?;
                let f = match &c.port_id {
                    None => f,
                    Some(port) => {
                        match net
                            .associate_floating_ip(
                                caller,
                                &f.id,
                                port,
                                c.fixed_ip_address.as_deref(),
                            )
                            .await
                        {
                            Ok(f) => f,
                            Err(e) => {
                                // The address is released again, so a refused
                                // association leaves nothing behind.
                                if let Err(undo) = net.release_floating_ip(caller, &f.id).await {
                                    tracing::error!(floating_ip = %f.id, error = %undo, "releasing a floating IP whose association failed");
                                }
                                return Err(e.into());
                            }
                        }
                    }
                };
                if let Err(e) = ctx
                    .set_description(Resource::FloatingIp, &f.id, c.description.as_deref())
                    .await
                {
                    tracing::warn!(floating_ip = %f.id, "description not set: {e:?}");
                }
                let v = ctx
                    .described(fip_view(ctx, &f, &Default::default()).await)
                    .await?;
                Ok(answer(StatusCode::CREATED, json!({ "floatingip": v })))
            }
            Op::UpdateFip(id, u) => {
                check_description(u.description.as_deref())?;
                let f = match u.port_id {
                    None => net.get_floating_ip(caller, &id).await?,
                    Some(None) => net.disassociate_floating_ip(caller, &id).await?,
                    Some(Some(port)) => {
                        net.associate_floating_ip(caller, &id, &port, u.fixed_ip_address.as_deref())
                            .await?
                    }
                };
                ctx.set_description(Resource::FloatingIp, &id, u.description.as_deref())
                    .await?;
                let tags = ctx.tags().await?;
                Ok(answer(
                    StatusCode::OK,
                    json!({ "floatingip": ctx.described(fip_view(ctx, &f, &tags).await).await? }),
                ))
            }
            Op::DeleteFip(id) => {
                net.release_floating_ip(caller, &id).await?;
                Ok(no_content())
            }
        }
    }
}

fn interface(body: &[u8]) -> Result<Interface> {
    body_of(body)
}

async fn interface_answer(ctx: &Ctx<'_>, r: &Router, subnet: &str) -> Result<Response> {
    let i = r
        .interfaces
        .iter()
        .find(|i| i.subnet_id == subnet)
        .ok_or_else(|| NetworkError::not_found(Resource::Subnet, subnet))?;
    let network = ctx
        .core
        .network
        .get_subnet(ctx.caller, subnet)
        .await?
        .network_id;
    Ok(answer(
        StatusCode::OK,
        json!({
            "id": r.id, "tenant_id": r.project_id, "project_id": r.project_id,
            "subnet_id": subnet, "subnet_ids": [subnet], "port_id": i.port_id,
            "network_id": network,
        }),
    ))
}

type Tags = std::collections::BTreeMap<String, Vec<String>>;

async fn router_view(ctx: &Ctx<'_>, r: &Router, tags: &Tags) -> Map<String, Value> {
    let gateway =
        match &r.external_network_id {
            None => Value::Null,
            Some(n) => {
                let mut fixed = Vec::new();
                if let Some(port) = &r.gateway_port_id {
                    if let Ok(p) = ctx.core.network.get_port(ctx.caller, port).await {
                        fixed.extend(p.fixed_ips.iter().map(
                            |f| json!({"subnet_id": f.subnet_id, "ip_address": f.ip_address}),
                        ));
                    }
                }
                if fixed.is_empty() {
                    if let Some(ip) = &r.external_ip {
                        fixed.push(json!({"ip_address": ip}));
                    }
                }
                json!({"network_id": n, "enable_snat": true, "external_fixed_ips": fixed})
            }
        };
    let mut v = Map::new();
    v.insert("id".into(), json!(r.id));
    v.insert("name".into(), json!(r.name));
    v.insert("status".into(), json!("ACTIVE"));
    v.insert("admin_state_up".into(), json!(true));
    v.insert("external_gateway_info".into(), gateway);
    v.insert("routes".into(), json!([]));
    v.insert("availability_zone_hints".into(), json!([]));
    v.insert("availability_zones".into(), json!([]));
    v.insert("description".into(), json!(""));
    v.insert("distributed".into(), json!(false));
    v.insert("ha".into(), json!(false));
    v.insert("flavor_id".into(), Value::Null);
    standard(
        &mut v,
        &r.project_id,
        r.created_at,
        r.generation,
        tags.get(&r.id).cloned().unwrap_or_default(),
    );
    v
}

async fn fip_view(ctx: &Ctx<'_>, f: &FloatingIp, tags: &Tags) -> Map<String, Value> {
    let details = match &f.port_id {
        None => Value::Null,
        Some(port) => match ctx.core.network.get_port(ctx.caller, port).await {
            Ok(p) => {
                // An instance's port shows its zone, as the port's own view.
                let owner = if p.device_owner == device_owner::INSTANCE {
                    let zone = ctx
                        .core
                        .compute
                        .get_instance(ctx.caller, &p.device_id)
                        .await
                        .map_or_else(|_| "nova".to_string(), |i| i.availability_zone);
                    format!("compute:{zone}")
                } else {
                    p.device_owner.clone()
                };
                json!({
                    "name": p.name, "network_id": p.network_id, "mac_address": p.mac_address,
                    "admin_state_up": true, "status": "ACTIVE", "device_id": p.device_id,
                    "device_owner": owner,
                })
            }
            Err(_) => Value::Null,
        },
    };
    let mut v = Map::new();
    v.insert("id".into(), json!(f.id));
    v.insert("floating_ip_address".into(), json!(f.floating_ip_address));
    v.insert("floating_network_id".into(), json!(f.network_id));
    v.insert("router_id".into(), json!(f.router_id));
    v.insert("port_id".into(), json!(f.port_id));
    v.insert("fixed_ip_address".into(), json!(f.fixed_ip_address));
    v.insert(
        "status".into(),
        json!(if f.port_id.is_some() {
            "ACTIVE"
        } else {
            "DOWN"
        }),
    );
    v.insert("description".into(), json!(""));
    v.insert("port_details".into(), details);
    standard(
        &mut v,
        &f.project_id,
        f.created_at,
        f.generation,
        tags.get(&f.id).cloned().unwrap_or_default(),
    );
    v
}
