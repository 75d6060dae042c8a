//! Ports: the NICs of instances, router interfaces and floating
//! addresses, and the ones a project makes itself to give an instance
//! later. An instance's port shows `device_owner` `compute:<zone>` and its
//! node as `binding:host_id`, read from compute (the store keeps
//! `compute:instance`, one owner for every door).

use std::collections::BTreeMap;

use axum::response::Response;
use http::{Method, StatusCode};
use nuage_network::types::{device_owner, FixedIpRequest, NewPort, Port};
use nuage_network::Resource;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{
    answer, bad_method, check_description, id_of, member_of, no_content, own_project, standard,
    unknown, Ctx, Fault, Listing, Result,
};

#[derive(Debug)]
pub enum Op {
    List(Listing),
    Create(CreatePort),
    Show(String, Listing),
    Update(String, UpdatePort),
    Delete(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePort {
    network_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    fixed_ips: Vec<FixedIpRequest>,
    #[serde(default)]
    security_groups: Option<Vec<String>>,
    #[serde(default)]
    admin_state_up: Option<bool>,
    #[serde(default)]
    device_id: String,
    #[serde(default)]
    device_owner: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    project_id: Option<String>,
    #[serde(default)]
    tenant_id: Option<String>,
    #[serde(default)]
    port_security_enabled: Option<bool>,
    #[serde(default, rename = "binding:vnic_type")]
    vnic_type: Option<String>,
    #[serde(default, rename = "binding:host_id")]
    host_id: Option<String>,
    #[serde(default, rename = "binding:profile")]
    profile: Option<Map<String, Value>>,
    #[serde(default)]
    allowed_address_pairs: Option<Vec<Value>>,
    #[serde(default)]
    mac_address: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdatePort {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    security_groups: Option<Vec<String>>,
    #[serde(default)]
    admin_state_up: Option<bool>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    port_security_enabled: Option<bool>,
    #[serde(default)]
    fixed_ips: Option<Vec<Value>>,
    #[serde(default, rename = "binding:host_id")]
    host_id: Option<String>,
    #[serde(default, rename = "binding:vnic_type")]
    vnic_type: Option<String>,
    #[serde(default, rename = "binding:profile")]
    profile: Option<Map<String, Value>>,
    #[serde(default)]
    allowed_address_pairs: Option<Vec<Value>>,
}

pub const ATTRS: &[&str] = &[
    "id",
    "name",
    "network_id",
    "tenant_id",
    "project_id",
    "mac_address",
    "admin_state_up",
    "status",
    "fixed_ips",
    "device_id",
    "device_owner",
    "security_groups",
    "allowed_address_pairs",
    "extra_dhcp_opts",
    "port_security_enabled",
    "binding:host_id",
    "binding:vif_type",
    "binding:vnic_type",
    "binding:profile",
    "binding:vif_details",
    "description",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
];

/// The binding attributes nuage has one value of: refused if set to
/// another.
fn check_binding(
    vnic: Option<&str>,
    host: Option<&str>,
    profile: Option<&Map<String, Value>>,
    pairs: Option<&Vec<Value>>,
    port_security: Option<bool>,
) -> Result<()> {
    if vnic.is_some_and(|v| v != "normal") {
        return Err(Fault::invalid(
            "binding:vnic_type is always normal in nuage",
        ));
    }
    if host.is_some_and(|h| !h.is_empty()) {
        return Err(Fault::invalid(
            "binding:host_id is set by nuage's scheduler when an instance takes the port",
        ));
    }
    if profile.is_some_and(|p| !p.is_empty()) {
        return Err(Fault::invalid("binding:profile is always empty in nuage"));
    }
    if pairs.is_some_and(|p| !p.is_empty()) {
        return Err(Fault::invalid(
            "nuage's ports take no allowed address pairs: their security filters pass their own addresses only",
        ));
    }
    if port_security == Some(false) {
        return Err(Fault::invalid(
            "port security is always on in nuage: its security groups are in force on every port",
        ));
    }
    Ok(())
}

impl Op {
    pub fn parse(
        method: &Method,
        rest: &[&str],
        query: &[(String, String)],
        body: &[u8],
    ) -> Result<Op> {
        Ok(match (method.clone(), rest) {
            (Method::GET, []) => Op::List(Listing::parse(query)?),
            (Method::POST, []) => Op::Create(member_of(body, "port")?),
            (Method::GET, [id]) => Op::Show(id_of(id)?, Listing::parse(query)?),
            (Method::PUT, [id]) => Op::Update(id_of(id)?, member_of(body, "port")?),
            (Method::DELETE, [id]) => Op::Delete(id_of(id)?),
            (_, [] | [_]) => return Err(bad_method()),
            _ => return Err(unknown("ports")),
        })
    }

    pub async fn run(self, ctx: &Ctx<'_>) -> Result<Response> {
        let net = &ctx.core.network;
        let caller = ctx.caller;
        match self {
            Op::List(listing) => {
                let device = listing.filter("device_id");
                let device = match device.as_slice() {
                    [one] => Some(*one),
                    _ => None,
                };
                let ports = net.list_ports(caller, device, ctx.all_projects()).await?;
                let items = views(ctx, &ports).await?;
                listing.answer(ctx.core, "ports", ATTRS, items)
            }
            Op::Show(id, listing) => {
                let p = net.get_port(caller, &id).await?;
                let v = views(ctx, std::slice::from_ref(&p)).await?;
                let v = v.into_iter().next().map(|v| listing.trim(v));
                Ok(answer(StatusCode::OK, json!({ "port": v })))
            }
            Op::Create(c) => {
                own_project(caller, c.project_id.as_deref(), c.tenant_id.as_deref())?;
                check_binding(
                    c.vnic_type.as_deref(),
                    c.host_id.as_deref(),
                    c.profile.as_ref(),
                    c.allowed_address_pairs.as_ref(),
                    c.port_security_enabled,
                )?;
                if c.admin_state_up == Some(false) {
                    return Err(Fault::invalid("nuage's ports are always up"));
                }
                check_description(c.description.as_deref())?;
                if c.mac_address.is_some() {
                    return Err(Fault::invalid(
                        "nuage chooses a port's MAC address; give none",
                    ));
                }
                let p = net
                    .create_port(
                        caller,
                        NewPort {
                            network_id: c.network_id,
                            name: c.name,
                            fixed_ips: c.fixed_ips,
                            security_groups: c.security_groups,
                            device_owner: c.device_owner,
                            device_id: c.device_id,
                        },
                    )
                    .await?;
                ctx.set_description(Resource::Port, &p.id, c.description.as_deref())
                    .await?;
                let v = views(ctx, std::slice::from_ref(&p)).await?;
                Ok(answer(
                    StatusCode::CREATED,
                    json!({ "port": v.into_iter().next() }),
                ))
            }
            Op::Update(id, u) => {
                check_binding(
                    u.vnic_type.as_deref(),
                    u.host_id.as_deref(),
                    u.profile.as_ref(),
                    u.allowed_address_pairs.as_ref(),
                    u.port_security_enabled,
                )?;
                if u.admin_state_up == Some(false) {
                    return Err(Fault::invalid("nuage's ports are always up"));
                }
                check_description(u.description.as_deref())?;
                let current = net.get_port(caller, &id).await?;
                if let Some(f) = &u.fixed_ips {
                    let same = f.len() == current.fixed_ips.len()
                        && f.iter().zip(&current.fixed_ips).all(|(a, b)| {
                            a.get("ip_address").and_then(Value::as_str) == Some(&b.ip_address)
                        });
                    if !same {
                        return Err(Fault::invalid(
                            "nuage cannot change a port's addresses yet: make a new port",
                        ));
                    }
                }
                if let Some(groups) = &u.security_groups {
                    net.set_port_security_groups(caller, &id, groups).await?;
                }
                if let Some(name) = &u.name {
                    net.rename(caller, Resource::Port, &id, name).await?;
                }
                ctx.set_description(Resource::Port, &id, u.description.as_deref())
                    .await?;
                let p = net.get_port(caller, &id).await?;
                let v = views(ctx, std::slice::from_ref(&p)).await?;
                Ok(answer(
                    StatusCode::OK,
                    json!({ "port": v.into_iter().next() }),
                ))
            }
            Op::Delete(id) => {
                net.delete_port(caller, &id).await?;
                Ok(no_content())
            }
        }
    }
}

/// Where an instance is, for its ports' `device_owner` and binding.
struct Placement {
    zone: String,
    node: String,
}

/// The views of `ports`, with one compute lookup per instance.
pub async fn views(ctx: &Ctx<'_>, ports: &[Port]) -> Result<Vec<Map<String, Value>>> {
    let tags = ctx.tags().await?;
    let mut placed: BTreeMap<String, Option<Placement>> = BTreeMap::new();
    for p in ports
        .iter()
        .filter(|p| p.device_owner == device_owner::INSTANCE)
    {
        if placed.contains_key(&p.device_id) {
            continue;
        }
        let where_ = match ctx
            .core
            .compute
            .get_instance(ctx.caller, &p.device_id)
            .await
        {
            Ok(i) => Some(Placement {
                zone: i.availability_zone,
                node: i.node,
            }),
            // Terminating, or another project's seen by an admin: shown
            // without placement rather than failing the list.
            Err(_) => None,
        };
        placed.insert(p.device_id.clone(), where_);
    }
    let mut items: Vec<_> = ports
        .iter()
        .map(|p| {
            let placement = placed.get(&p.device_id).and_then(Option::as_ref);
            view(p, placement, &tags)
        })
        .collect();
    ctx.describe(&mut items).await?;
    Ok(items)
}

fn view(
    p: &Port,
    placement: Option<&Placement>,
    tags: &BTreeMap<String, Vec<String>>,
) -> Map<String, Value> {
    let owner = if p.device_owner == device_owner::INSTANCE {
        format!(
            "compute:{}",
            placement.map_or("nova", |pl| pl.zone.as_str())
        )
    } else {
        p.device_owner.clone()
    };
    let bound = !p.device_id.is_empty();
    let mut v = Map::new();
    v.insert("id".into(), json!(p.id));
    v.insert("name".into(), json!(p.name));
    v.insert("network_id".into(), json!(p.network_id));
    v.insert("mac_address".into(), json!(p.mac_address));
    v.insert("admin_state_up".into(), json!(true));
    v.insert(
        "status".into(),
        json!(if bound { "ACTIVE" } else { "DOWN" }),
    );
    v.insert("fixed_ips".into(), json!(p.fixed_ips));
    v.insert("device_id".into(), json!(p.device_id));
    v.insert("device_owner".into(), json!(owner));
    v.insert("security_groups".into(), json!(p.security_groups));
    v.insert("allowed_address_pairs".into(), json!([]));
    v.insert("extra_dhcp_opts".into(), json!([]));
    v.insert("port_security_enabled".into(), json!(true));
    v.insert(
        "binding:host_id".into(),
        json!(placement.map_or("", |pl| pl.node.as_str())),
    );
    v.insert(
        "binding:vif_type".into(),
        json!(if bound { "bridge" } else { "unbound" }),
    );
    v.insert("binding:vnic_type".into(), json!("normal"));
    v.insert("binding:profile".into(), json!({}));
    v.insert("binding:vif_details".into(), json!({}));
    v.insert("description".into(), json!(""));
    standard(
        &mut v,
        &p.project_id,
        p.created_at,
        p.generation,
        tags.get(&p.id).cloned().unwrap_or_default(),
    );
    v
}
