//! Security groups and their rules: the same groups EC2 shows, allow
//! rules only, IPv4 (`ethertype` IPv4), stateful. A protocol of `null`
//! (any) is the core's `all`; ports are the TCP/UDP range or the ICMP
//! type and code, as in Neutron.

use axum::response::Response;
use http::{Method, StatusCode};
use nuage_network::types::{
    Direction, NewRule, NewSecurityGroup, Protocol, SecurityGroup, SecurityGroupRule,
};
use nuage_network::{NetworkError, Resource};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{
    answer, bad_method, id_of, member_of, no_content, own_project, standard, unknown, Ctx, Fault,
    Listing, Result,
};

#[derive(Debug)]
pub enum Op {
    ListGroups(Listing),
    CreateGroup(CreateGroup),
    ShowGroup(String, Listing),
    UpdateGroup(String, UpdateGroup),
    DeleteGroup(String),
    ListRules(Listing),
    CreateRule(CreateRule),
    ShowRule(String, Listing),
    DeleteRule(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateGroup {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    stateful: Option<bool>,
    #[serde(default)]
    project_id: Option<String>,
    #[serde(default)]
    tenant_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateGroup {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    stateful: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRule {
    security_group_id: String,
    direction: String,
    #[serde(default)]
    ethertype: Option<String>,
    /// A name, a number (as text or not), or `null` for any.
    #[serde(default)]
    protocol: Option<Value>,
    #[serde(default)]
    port_range_min: Option<i64>,
    #[serde(default)]
    port_range_max: Option<i64>,
    #[serde(default)]
    remote_ip_prefix: Option<String>,
    #[serde(default)]
    remote_group_id: Option<String>,
    #[serde(default)]
    remote_address_group_id: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    project_id: Option<String>,
    #[serde(default)]
    tenant_id: Option<String>,
}

pub const GROUP_ATTRS: &[&str] = &[
    "id",
    "name",
    "description",
    "security_group_rules",
    "stateful",
    "shared",
    "tenant_id",
    "project_id",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
];

pub const RULE_ATTRS: &[&str] = &[
    "id",
    "security_group_id",
    "direction",
    "ethertype",
    "protocol",
    "port_range_min",
    "port_range_max",
    "remote_ip_prefix",
    "remote_group_id",
    "remote_address_group_id",
    "description",
    "tenant_id",
    "project_id",
    "created_at",
    "updated_at",
    "revision_number",
];

impl Op {
    pub fn parse(
        method: &Method,
        collection: &str,
        rest: &[&str],
        query: &[(String, String)],
        body: &[u8],
    ) -> Result<Op> {
        let groups = collection == "security-groups";
        Ok(match (method.clone(), rest) {
            (Method::GET, []) if groups => Op::ListGroups(Listing::parse(query)?),
            (Method::GET, []) => Op::ListRules(Listing::parse(query)?),
            (Method::POST, []) if groups => Op::CreateGroup(member_of(body, "security_group")?),
            (Method::POST, []) => Op::CreateRule(member_of(body, "security_group_rule")?),
            (Method::GET, [id]) if groups => Op::ShowGroup(id_of(id)?, Listing::parse(query)?),
            (Method::GET, [id]) => Op::ShowRule(id_of(id)?, Listing::parse(query)?),
            (Method::PUT, [id]) if groups => {
                Op::UpdateGroup(id_of(id)?, member_of(body, "security_group")?)
            }
            (Method::DELETE, [id]) if groups => Op::DeleteGroup(id_of(id)?),
            (Method::DELETE, [id]) => Op::DeleteRule(id_of(id)?),
            (_, [] | [_]) => return Err(bad_method()),
            _ => return Err(unknown(collection)),
        })
    }

    pub async fn run(self, ctx: &Ctx<'_>) -> Result<Response> {
        let net = &ctx.core.network;
        let caller = ctx.caller;
        match self {
            Op::ListGroups(listing) => {
                let tags = ctx.tags().await?;
                let items = net
                    .list_security_groups(caller, ctx.all_projects())
                    .await?
                    .iter()
                    .map(|g| group_view(g, &tags))
                    .collect();
                listing.answer(ctx.core, "security_groups", GROUP_ATTRS, items)
            }
            Op::ShowGroup(id, listing) => {
                let g = net.get_security_group(caller, &id).await?;
                let tags = ctx.tags().await?;
                let v = listing.trim(group_view(&g, &tags));
                Ok(answer(StatusCode::OK, json!({ "security_group": v })))
            }
            Op::CreateGroup(c) => {
                own_project(caller, c.project_id.as_deref(), c.tenant_id.as_deref())?;
                if c.stateful == Some(false) {
                    return Err(Fault::invalid(
                        "nuage's security groups are always stateful",
                    ));
                }
                let g = net
                    .create_security_group(
                        caller,
                        NewSecurityGroup {
                            name: c.name,
                            description: c.description,
                        },
                    )
                    .await?;
                Ok(answer(
                    StatusCode::CREATED,
                    json!({ "security_group": group_view(&g, &Default::default()) }),
                ))
            }
            Op::UpdateGroup(id, u) => {
                if u.stateful == Some(false) {
                    return Err(Fault::invalid(
                        "nuage's security groups are always stateful",
                    ));
                }
                let g = net.get_security_group(caller, &id).await?;
                if let Some(d) = u.description.as_ref().filter(|d| **d != g.description) {
                    net.set_description(caller, Resource::SecurityGroup, &id, d)
                        .await?;
                }
                if let Some(name) = &u.name {
                    if *name != g.name {
                        net.rename(caller, Resource::SecurityGroup, &id, name)
                            .await?;
                    }
                }
                let g = net.get_security_group(caller, &id).await?;
                let tags = ctx.tags().await?;
                Ok(answer(
                    StatusCode::OK,
                    json!({ "security_group": group_view(&g, &tags) }),
                ))
            }
            Op::DeleteGroup(id) => {
                net.delete_security_group(caller, &id).await?;
                Ok(no_content())
            }
            Op::ListRules(listing) => {
                let items = net
                    .list_security_groups(caller, ctx.all_projects())
                    .await?
                    .iter()
                    .flat_map(|g| g.rules.iter().map(move |r| rule_view(g, r)))
                    .collect();
                listing.answer(ctx.core, "security_group_rules", RULE_ATTRS, items)
            }
            Op::ShowRule(id, listing) => {
                let found = net
                    .list_security_groups(caller, ctx.all_projects())
                    .await?
                    .iter()
                    .find_map(|g| g.rules.iter().find(|r| r.id == id).map(|r| rule_view(g, r)))
                    .ok_or_else(|| NetworkError::not_found(Resource::SecurityGroupRule, &id))?;
                Ok(answer(
                    StatusCode::OK,
                    json!({ "security_group_rule": listing.trim(found) }),
                ))
            }
            Op::CreateRule(c) => {
                own_project(caller, c.project_id.as_deref(), c.tenant_id.as_deref())?;
                let rule = new_rule(&c)?;
                let r = net
                    .add_security_group_rule(caller, &c.security_group_id, rule)
                    .await?;
                let g = net.get_security_group(caller, &c.security_group_id).await?;
                Ok(answer(
                    StatusCode::CREATED,
                    json!({ "security_group_rule": rule_view(&g, &r) }),
                ))
            }
            Op::DeleteRule(id) => {
                net.remove_security_group_rule(caller, &id).await?;
                Ok(no_content())
            }
        }
    }
}

/// A Neutron rule as the core's: refused here only where Neutron's
/// values have no nuage equivalent (IPv6, other protocols, address
/// groups); the core checks the rest (ranges, CIDRs, the remote group).
fn new_rule(c: &CreateRule) -> Result<NewRule> {
    let direction = Direction::parse(&c.direction).ok_or_else(|| {
        Fault::invalid(format!(
            "{} is not a valid direction: ingress or egress",
            c.direction
        ))
    })?;
    match c.ethertype.as_deref() {
        None | Some("IPv4") => {}
        Some(other) => {
            return Err(Fault::invalid(format!(
                "ethertype {other}: nuage's security groups filter IPv4"
            )))
        }
    }
    let protocol = match &c.protocol {
        None | Some(Value::Null) => "all".to_string(),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("any") => "all".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => {
            return Err(Fault::invalid(format!(
                "protocol {other} is not a protocol name or number"
            )))
        }
    };
    if Protocol::parse(&protocol).is_none() {
        return Err(Fault::new(
            StatusCode::BAD_REQUEST,
            "SecurityGroupRuleInvalidProtocol",
            format!("Security group rule protocol {protocol} not supported. Only protocol values [None, tcp, udp, icmp] and integer representations [1, 6, 17] are supported."),
        ));
    }
    if c.remote_address_group_id.is_some() {
        return Err(Fault::invalid(
            "nuage has no address groups: give remote_ip_prefix or remote_group_id",
        ));
    }
    Ok(NewRule {
        direction,
        protocol,
        port_range_min: c.port_range_min,
        port_range_max: c.port_range_max,
        remote_cidr: c.remote_ip_prefix.clone(),
        remote_group_id: c.remote_group_id.clone(),
        description: c.description.clone().unwrap_or_default(),
    })
}

type Tags = std::collections::BTreeMap<String, Vec<String>>;

fn group_view(g: &SecurityGroup, tags: &Tags) -> Map<String, Value> {
    let mut v = Map::new();
    v.insert("id".into(), json!(g.id));
    v.insert("name".into(), json!(g.name));
    v.insert("description".into(), json!(g.description));
    v.insert(
        "security_group_rules".into(),
        Value::Array(
            g.rules
                .iter()
                .map(|r| Value::Object(rule_view(g, r)))
                .collect(),
        ),
    );
    v.insert("stateful".into(), json!(true));
    v.insert("shared".into(), json!(false));
    standard(
        &mut v,
        &g.project_id,
        g.created_at,
        g.generation,
        tags.get(&g.id).cloned().unwrap_or_default(),
    );
    v
}

fn rule_view(g: &SecurityGroup, r: &SecurityGroupRule) -> Map<String, Value> {
    let protocol = match r.protocol {
        Protocol::All => Value::Null,
        p => json!(p.as_str()),
    };
    let mut v = Map::new();
    v.insert("id".into(), json!(r.id));
    v.insert("security_group_id".into(), json!(r.group_id));
    v.insert("direction".into(), json!(r.direction.as_str()));
    v.insert("ethertype".into(), json!("IPv4"));
    v.insert("protocol".into(), protocol);
    v.insert("port_range_min".into(), json!(r.port_range_min));
    v.insert("port_range_max".into(), json!(r.port_range_max));
    v.insert("remote_ip_prefix".into(), json!(r.remote_cidr));
    v.insert("remote_group_id".into(), json!(r.remote_group_id));
    v.insert("remote_address_group_id".into(), Value::Null);
    v.insert("description".into(), json!(r.description));
    // Rules have no tags or revisions of their own in nuage; the group's
    // creation time stands for theirs.
    standard(&mut v, &g.project_id, g.created_at, 0, Vec::new());
    v.remove("tags");
    v
}
