//! Networks and subnets. A Neutron network is nuage's network, the VPC
//! EC2 shows; `router:external` and `shared` are the operator's (admin)
//! attributes, as in Neutron. Subnets are IPv4 with the core's IPAM:
//! gateway, allocation pools and resolvers as given or defaulted.

use axum::response::Response;
use http::{Method, StatusCode};
use nuage_network::types::{NewNetwork, NewSubnet, Pool};
use nuage_network::Resource;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{
    answer, bad_method, check_description, id_of, member_of, no_content, own_project, standard,
    unknown, Ctx, Fault, Listing, Result,
};

/// The MTU of nuage's bridges and veths (no encapsulation).
const MTU: u32 = 1500;

#[derive(Debug)]
pub enum Op {
    ListNetworks(Listing),
    CreateNetwork(CreateNetwork),
    ShowNetwork(String, Listing),
    UpdateNetwork(String, UpdateNetwork),
    DeleteNetwork(String),
    ListSubnets(Listing),
    CreateSubnet(CreateSubnet),
    ShowSubnet(String, Listing),
    UpdateSubnet(String, UpdateSubnet),
    DeleteSubnet(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateNetwork {
    #[serde(default)]
    name: String,
    #[serde(default)]
    admin_state_up: Option<bool>,
    #[serde(default)]
    shared: bool,
    #[serde(default, rename = "router:external")]
    external: bool,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    project_id: Option<String>,
    #[serde(default)]
    tenant_id: Option<String>,
    #[serde(default, rename = "provider:network_type")]
    network_type: Option<String>,
    #[serde(default, rename = "provider:segmentation_id")]
    segmentation_id: Option<u16>,
    #[serde(default, rename = "provider:physical_network")]
    physical_network: Option<String>,
    #[serde(default)]
    port_security_enabled: Option<bool>,
    #[serde(default)]
    availability_zone_hints: Option<Vec<String>>,
    #[serde(default)]
    mtu: Option<u32>,
    #[serde(default)]
    is_default: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateNetwork {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    admin_state_up: Option<bool>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    port_security_enabled: Option<bool>,
    #[serde(default)]
    mtu: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSubnet {
    network_id: String,
    cidr: String,
    ip_version: u8,
    #[serde(default)]
    name: String,
    /// Absent: the first usable address; `null`: no gateway (refused).
    #[serde(default, deserialize_with = "present")]
    gateway_ip: Option<Option<String>>,
    #[serde(default)]
    allocation_pools: Vec<Pool>,
    #[serde(default)]
    enable_dhcp: Option<bool>,
    #[serde(default)]
    dns_nameservers: Vec<String>,
    #[serde(default)]
    host_routes: Vec<Value>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    project_id: Option<String>,
    #[serde(default)]
    tenant_id: Option<String>,
    #[serde(default)]
    subnetpool_id: Option<String>,
    #[serde(default)]
    ipv6_ra_mode: Option<String>,
    #[serde(default)]
    ipv6_address_mode: Option<String>,
    #[serde(default)]
    service_types: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateSubnet {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    enable_dhcp: Option<bool>,
}

/// Tells an absent attribute (`None`) from one given as `null`
/// (`Some(None)`).
fn present<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Option<String>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

pub const NETWORK_ATTRS: &[&str] = &[
    "id",
    "name",
    "tenant_id",
    "project_id",
    "status",
    "admin_state_up",
    "shared",
    "router:external",
    "subnets",
    "mtu",
    "port_security_enabled",
    "availability_zone_hints",
    "availability_zones",
    "description",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
    "is_default",
    "provider:network_type",
    "provider:physical_network",
    "provider:segmentation_id",
];

pub const SUBNET_ATTRS: &[&str] = &[
    "id",
    "name",
    "network_id",
    "tenant_id",
    "project_id",
    "cidr",
    "ip_version",
    "gateway_ip",
    "allocation_pools",
    "enable_dhcp",
    "dns_nameservers",
    "host_routes",
    "ipv6_ra_mode",
    "ipv6_address_mode",
    "subnetpool_id",
    "description",
    "service_types",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
];

/// Attributes nuage does not store, accepted only at the value it always
/// has.
fn fixed<T: PartialEq + std::fmt::Debug>(name: &str, given: Option<T>, always: T) -> Result<()> {
    match given {
        Some(v) if v != always => Err(Fault::invalid(format!(
            "nuage's {name} is always {always:?}; it cannot be set to {v:?}"
        ))),
        _ => Ok(()),
    }
}

impl Op {
    pub fn parse(
        method: &Method,
        collection: &str,
        rest: &[&str],
        query: &[(String, String)],
        body: &[u8],
    ) -> Result<Op> {
        let networks = collection == "networks";
        Ok(match (method.clone(), rest) {
            (Method::GET, []) if networks => Op::ListNetworks(Listing::parse(query)?),
            (Method::GET, []) => Op::ListSubnets(Listing::parse(query)?),
            (Method::POST, []) if networks => Op::CreateNetwork(member_of(body, "network")?),
            (Method::POST, []) => Op::CreateSubnet(member_of(body, "subnet")?),
            (Method::GET, [id]) if networks => Op::ShowNetwork(id_of(id)?, Listing::parse(query)?),
            (Method::GET, [id]) => Op::ShowSubnet(id_of(id)?, Listing::parse(query)?),
            (Method::PUT, [id]) if networks => {
                Op::UpdateNetwork(id_of(id)?, member_of(body, "network")?)
            }
            (Method::PUT, [id]) => Op::UpdateSubnet(id_of(id)?, member_of(body, "subnet")?),
            (Method::DELETE, [id]) if networks => Op::DeleteNetwork(id_of(id)?),
            (Method::DELETE, [id]) => Op::DeleteSubnet(id_of(id)?),
            (_, [] | [_]) => return Err(bad_method()),
            _ => return Err(unknown(collection)),
        })
    }

    pub async fn run(self, ctx: &Ctx<'_>) -> Result<Response> {
        let net = &ctx.core.network;
        let caller = ctx.caller;
        match self {
            Op::ListNetworks(listing) => {
                let tags = ctx.tags().await?;
                let items = net
                    .list_networks(caller, ctx.all_projects())
                    .await?
                    .iter()
                    .map(|n| network_view(ctx, n, &tags))
                    .collect::<Vec<_>>();
                let mut items = items;
                ctx.describe(&mut items).await?;
                listing.answer(ctx.core, "networks", NETWORK_ATTRS, items)
            }
            Op::ShowNetwork(id, listing) => {
                let n = net.get_network(caller, &id).await?;
                let tags = ctx.tags().await?;
                let v = listing.trim(ctx.described(network_view(ctx, &n, &tags)).await?);
                Ok(answer(StatusCode::OK, json!({ "network": v })))
            }
            Op::CreateNetwork(c) => {
                own_project(caller, c.project_id.as_deref(), c.tenant_id.as_deref())?;
                fixed("admin_state_up", c.admin_state_up, true)?;
                fixed("port_security_enabled", c.port_security_enabled, true)?;
                fixed("mtu", c.mtu, MTU)?;
                if c.is_default == Some(true) {
                    return Err(Fault::invalid(
                        "nuage makes each project's default network itself, at its first launch",
                    ));
                }
                if c.physical_network.is_some() {
                    return Err(Fault::invalid(
                        "nuage has no physical networks to name: VLANs ride the node's trunk",
                    ));
                }
                check_description(c.description.as_deref())?;
                if c.availability_zone_hints
                    .as_ref()
                    .is_some_and(|h| !h.is_empty())
                {
                    return Err(Fault::invalid(
                        "a network spans every availability zone in nuage; give no availability_zone_hints",
                    ));
                }
                let vlan_id = match (c.network_type.as_deref(), c.segmentation_id) {
                    (None | Some("vlan"), Some(v)) => Some(v),
                    (None | Some("local") | Some("flat"), None) => None,
                    (Some(t), _) => {
                        return Err(Fault::invalid(format!(
                            "provider:network_type {t}: nuage's networks are local bridges, or VLANs with a segmentation id"
                        )))
                    }
                };
                let n = net
                    .create_network(
                        caller,
                        NewNetwork {
                            name: c.name,
                            vlan_id,
                            external: c.external,
                            shared: c.shared,
                            cidr: None,
                        },
                    )
                    .await?;
                ctx.set_description(Resource::Network, &n.id, c.description.as_deref())
                    .await?;
                let v = ctx
                    .described(network_view(ctx, &n, &Default::default()))
                    .await?;
                Ok(answer(StatusCode::CREATED, json!({ "network": v })))
            }
            Op::UpdateNetwork(id, u) => {
                fixed("admin_state_up", u.admin_state_up, true)?;
                fixed("port_security_enabled", u.port_security_enabled, true)?;
                fixed("mtu", u.mtu, MTU)?;
                check_description(u.description.as_deref())?;
                // Read first: an unknown or foreign id is 404 even when
                // nothing would change.
                net.get_network(caller, &id).await?;
                if let Some(name) = &u.name {
                    net.rename(caller, Resource::Network, &id, name).await?;
                }
                ctx.set_description(Resource::Network, &id, u.description.as_deref())
                    .await?;
                let n = net.get_network(caller, &id).await?;
                let tags = ctx.tags().await?;
                Ok(answer(
                    StatusCode::OK,
                    json!({ "network": ctx.described(network_view(ctx, &n, &tags)).await? }),
                ))
            }
            Op::DeleteNetwork(id) => {
                net.delete_network(caller, &id).await?;
                Ok(no_content())
            }
            Op::ListSubnets(listing) => {
                let tags = ctx.tags().await?;
                let subnets = if ctx.all_projects() {
                    let mut all = Vec::new();
                    for n in net.list_networks(caller, true).await? {
                        all.extend(net.list_subnets(caller, Some(&n.id)).await?);
                    }
                    all
                } else {
                    net.list_subnets(caller, None).await?
                };
                let mut items: Vec<_> = subnets.iter().map(|s| subnet_view(s, &tags)).collect();
                ctx.describe(&mut items).await?;
                listing.answer(ctx.core, "subnets", SUBNET_ATTRS, items)
            }
            Op::ShowSubnet(id, listing) => {
                let s = net.get_subnet(caller, &id).await?;
                let tags = ctx.tags().await?;
                let v = listing.trim(ctx.described(subnet_view(&s, &tags)).await?);
                Ok(answer(StatusCode::OK, json!({ "subnet": v })))
            }
            Op::CreateSubnet(c) => {
                own_project(caller, c.project_id.as_deref(), c.tenant_id.as_deref())?;
                if c.ip_version != 4 {
                    return Err(Fault::invalid(format!(
                        "ip_version {}: nuage's subnets are IPv4",
                        c.ip_version
                    )));
                }
                fixed("enable_dhcp", c.enable_dhcp, true)?;
                check_description(c.description.as_deref())?;
                if !c.host_routes.is_empty() {
                    return Err(Fault::invalid(
                        "nuage's subnets take no host routes: a router joins subnets",
                    ));
                }
                if c.service_types.as_ref().is_some_and(|t| !t.is_empty()) {
                    return Err(Fault::invalid(
                        "nuage's subnets serve every port: give no service_types",
                    ));
                }
                if c.subnetpool_id.is_some()
                    || c.ipv6_ra_mode.is_some()
                    || c.ipv6_address_mode.is_some()
                {
                    return Err(Fault::invalid(
                        "nuage has no subnet pools nor IPv6: give an IPv4 cidr",
                    ));
                }
                let gateway_ip = match c.gateway_ip {
                    None => None,
                    Some(Some(g)) => Some(g),
                    Some(None) => {
                        return Err(Fault::invalid(
                            "every nuage subnet has a gateway (its router interface and resolver): give an address or none",
                        ))
                    }
                };
                let s = net
                    .create_subnet(
                        caller,
                        NewSubnet {
                            network_id: c.network_id,
                            name: c.name,
                            cidr: c.cidr,
                            gateway_ip,
                            allocation_pools: c.allocation_pools,
                            dns_servers: c.dns_nameservers,
                        },
                    )
                    .await?;
                ctx.set_description(Resource::Subnet, &s.id, c.description.as_deref())
                    .await?;
                Ok(answer(
                    StatusCode::CREATED,
                    json!({ "subnet": ctx.described(subnet_view(&s, &Default::default())).await? }),
                ))
            }
            Op::UpdateSubnet(id, u) => {
                fixed("enable_dhcp", u.enable_dhcp, true)?;
                check_description(u.description.as_deref())?;
                net.get_subnet(caller, &id).await?;
                if let Some(name) = &u.name {
                    net.rename(caller, Resource::Subnet, &id, name).await?;
                }
                ctx.set_description(Resource::Subnet, &id, u.description.as_deref())
                    .await?;
                let s = net.get_subnet(caller, &id).await?;
                let tags = ctx.tags().await?;
                Ok(answer(
                    StatusCode::OK,
                    json!({ "subnet": ctx.described(subnet_view(&s, &tags)).await? }),
                ))
            }
            Op::DeleteSubnet(id) => {
                net.delete_subnet(caller, &id).await?;
                Ok(no_content())
            }
        }
    }
}

type Tags = std::collections::BTreeMap<String, Vec<String>>;

fn network_view(
    ctx: &Ctx<'_>,
    n: &nuage_network::types::Network,
    tags: &Tags,
) -> Map<String, Value> {
    let mut v = Map::new();
    v.insert("id".into(), json!(n.id));
    v.insert("name".into(), json!(n.name));
    v.insert("status".into(), json!("ACTIVE"));
    v.insert("admin_state_up".into(), json!(true));
    v.insert("shared".into(), json!(n.shared));
    v.insert("router:external".into(), json!(n.external));
    v.insert("subnets".into(), json!(n.subnets));
    v.insert("mtu".into(), json!(MTU));
    v.insert("port_security_enabled".into(), json!(true));
    v.insert("availability_zone_hints".into(), json!([]));
    v.insert("availability_zones".into(), json!([]));
    v.insert("description".into(), json!(""));
    v.insert("is_default".into(), json!(n.is_default));
    if ctx.caller.is_admin() {
        v.insert(
            "provider:network_type".into(),
            json!(if n.vlan_id.is_some() { "vlan" } else { "local" }),
        );
        v.insert("provider:physical_network".into(), Value::Null);
        v.insert("provider:segmentation_id".into(), json!(n.vlan_id));
    }
    standard(
        &mut v,
        &n.project_id,
        n.created_at,
        n.generation,
        tags.get(&n.id).cloned().unwrap_or_default(),
    );
    v
}

pub fn subnet_view(s: &nuage_network::types::Subnet, tags: &Tags) -> Map<String, Value> {
    let mut v = Map::new();
    v.insert("id".into(), json!(s.id));
    v.insert("name".into(), json!(s.name));
    v.insert("network_id".into(), json!(s.network_id));
    v.insert("cidr".into(), json!(s.cidr));
    v.insert("ip_version".into(), json!(4));
    v.insert("gateway_ip".into(), json!(s.gateway_ip));
    v.insert("allocation_pools".into(), json!(s.allocation_pools));
    v.insert("enable_dhcp".into(), json!(true));
    v.insert("dns_nameservers".into(), json!(s.dns_servers));
    v.insert("host_routes".into(), json!([]));
    v.insert("ipv6_ra_mode".into(), Value::Null);
    v.insert("ipv6_address_mode".into(), Value::Null);
    v.insert("subnetpool_id".into(), Value::Null);
    v.insert("description".into(), json!(""));
    v.insert("service_types".into(), json!([]));
    standard(
        &mut v,
        &s.project_id,
        s.created_at,
        s.generation,
        tags.get(&s.id).cloned().unwrap_or_default(),
    );
    v
}
