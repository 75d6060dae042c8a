//! Networking from the command line. Networks, subnets, ports and routers
//! are nouns, as in the openstack CLI (`nuage network create`, `nuage
//! router add-interface`): EC2 has no single verb for them. Security groups
//! and elastic addresses, which EC2 has, use the aws CLI's verbs and flags
//! at the top level (`nuage authorize-security-group-ingress --group-id ..
//! --protocol tcp --port 22 --cidr 0.0.0.0/0`, `nuage allocate-address`).
//! All of them call the native API (`/nuage/v1/networks`, ...); the server
//! checks every rule.

use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use crate::client::items;
use crate::output::{self, Col};
use crate::shorthand::{parse_ip_permissions, IpPermissions};
use crate::Ctx;

// ------------------------------------------------------------------ nouns

#[derive(Debug, Subcommand)]
pub enum NetworkCmd {
    /// Create a network (an isolated L2 segment, EC2's VPC)
    Create {
        /// The network's name
        name: String,
        /// An external network, source of floating addresses and router
        /// gateways (admin only)
        #[arg(long)]
        external: bool,
        /// Let every project put ports on it (admin only)
        #[arg(long)]
        shared: bool,
        /// Carry it on the shared trunk with this 802.1Q tag (admin only)
        #[arg(long, value_name = "ID")]
        vlan_id: Option<u16>,
    },
    /// List the project's networks and the shared and external ones
    List {
        /// Every project's (admin only)
        #[arg(long)]
        all_projects: bool,
    },
    /// Show a network
    Show {
        /// The network's id (vpc-...)
        id: String,
    },
    /// Delete networks (refused while a port or router uses one)
    Delete {
        /// The networks' ids
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SubnetCmd {
    /// Create a subnet of a network
    Create {
        /// The subnet's name
        #[arg(default_value = "")]
        name: String,
        /// The network's id (vpc-...)
        #[arg(long, value_name = "ID")]
        network: String,
        /// Its IPv4 range, e.g. 10.1.0.0/24 (may not overlap another
        /// subnet of the network)
        #[arg(long, value_name = "CIDR")]
        cidr: String,
        /// The gateway address (default: the first usable one)
        #[arg(long, value_name = "IP")]
        gateway: Option<String>,
        /// A range IPAM hands out, START-END (repeatable; default: every
        /// usable address but the gateway)
        #[arg(long, value_name = "START-END", value_parser = parse_pool)]
        allocation_pool: Vec<(String, String)>,
        /// A resolver given to instances (repeatable; default: the
        /// network's own at the gateway)
        #[arg(long, value_name = "IP")]
        dns_server: Vec<String>,
    },
    /// List subnets
    List {
        /// Only this network's
        #[arg(long, value_name = "ID")]
        network: Option<String>,
    },
    /// Show a subnet
    Show {
        /// The subnet's id (subnet-...)
        id: String,
    },
    /// Delete subnets (refused while an address of one is held)
    Delete {
        /// The subnets' ids
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PortCmd {
    /// List the project's ports (network interfaces)
    List {
        /// Only this device's (an instance id)
        #[arg(long, value_name = "ID")]
        device_id: Option<String>,
        /// Every project's (admin only)
        #[arg(long)]
        all_projects: bool,
    },
    /// Show a port
    Show {
        /// The port's id (eni-...)
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RouterCmd {
    /// Create a router
    Create {
        /// The router's name
        #[arg(default_value = "")]
        name: String,
        /// Give it a gateway on this external network at once
        #[arg(long, value_name = "ID")]
        external_network: Option<String>,
    },
    /// List the project's routers
    List {
        /// Every project's (admin only)
        #[arg(long)]
        all_projects: bool,
    },
    /// Show a router
    Show {
        /// The router's id (rtr-...)
        id: String,
    },
    /// Delete routers (refused while one has interfaces)
    Delete {
        /// The routers' ids
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Set or clear a router's external gateway
    SetGateway {
        /// The router's id
        router: String,
        /// The external network to take the gateway address from
        #[arg(long, value_name = "ID", required_unless_present = "clear")]
        external_network: Option<String>,
        /// Remove the gateway instead
        #[arg(long, conflicts_with = "external_network")]
        clear: bool,
    },
    /// Join a subnet to a router (the interface holds the subnet's gateway)
    AddInterface {
        /// The router's id
        router: String,
        /// The subnet's id
        #[arg(long, value_name = "ID")]
        subnet: String,
    },
    /// Remove a subnet's interface from a router
    RemoveInterface {
        /// The router's id
        router: String,
        /// The subnet's id
        #[arg(long, value_name = "ID")]
        subnet: String,
    },
}

fn parse_pool(s: &str) -> Result<(String, String), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("{s:?}: an allocation pool is START-END"))?;
    Ok((a.trim().to_string(), b.trim().to_string()))
}

fn network_columns() -> Vec<Col<'static>> {
    vec![
        Col::field("ID", "id"),
        Col::field("Name", "name"),
        Col::field("Project", "project_id"),
        Col::field("External", "external"),
        Col::field("Shared", "shared"),
        Col::field("Default", "is_default"),
        Col::field("Subnets", "subnets"),
    ]
}

fn subnet_columns() -> Vec<Col<'static>> {
    vec![
        Col::field("ID", "id"),
        Col::field("Name", "name"),
        Col::field("Network", "network_id"),
        Col::field("CIDR", "cidr"),
        Col::field("Gateway", "gateway_ip"),
    ]
}

fn port_columns() -> Vec<Col<'static>> {
    vec![
        Col::field("ID", "id"),
        Col::field("Network", "network_id"),
        Col::field("MAC", "mac_address"),
        Col::with("Fixed IPs", |r| joined(&r["fixed_ips"], "ip_address")),
        Col::field("Device", "device_id"),
        Col::field("Groups", "security_groups"),
    ]
}

fn router_columns() -> Vec<Col<'static>> {
    vec![
        Col::field("ID", "id"),
        Col::field("Name", "name"),
        Col::field("External network", "external_network_id"),
        Col::field("External IP", "external_ip"),
        Col::with("Subnets", |r| joined(&r["interfaces"], "subnet_id")),
    ]
}

fn group_columns() -> Vec<Col<'static>> {
    vec![
        Col::field("ID", "id"),
        Col::field("Name", "name"),
        Col::field("Description", "description"),
        Col::with("Rules", |r| {
            r["rules"].as_array().map_or(0, Vec::len).to_string()
        }),
    ]
}

fn address_columns() -> Vec<Col<'static>> {
    vec![
        Col::field("Allocation", "id"),
        Col::field("Public IP", "floating_ip_address"),
        Col::field("Port", "port_id"),
        Col::field("Private IP", "fixed_ip_address"),
        Col::field("Router", "router_id"),
    ]
}

/// The `key` of every object in the list `v`, joined.
fn joined(v: &Value, key: &str) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| output::cell(&x[key]))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn scope(all_projects: bool) -> Vec<(&'static str, String)> {
    if all_projects {
        vec![("all_projects", "true".into())]
    } else {
        Vec::new()
    }
}

async fn list(ctx: &Ctx, collection: &str, q: &[(&str, String)], cols: &[Col<'_>]) -> Result<()> {
    let v = ctx.client.get(&[collection], q).await?;
    output::list(ctx.format, &v, items(&v), cols);
    Ok(())
}

async fn show(ctx: &Ctx, collection: &str, id: &str) -> Result<()> {
    let v = ctx.client.get(&[collection, id], &[]).await?;
    output::show(ctx.format, &v);
    Ok(())
}

pub async fn network(c: NetworkCmd, ctx: &Ctx) -> Result<()> {
    match c {
        NetworkCmd::Create {
            name,
            external,
            shared,
            vlan_id,
        } => {
            let mut b = json!({ "name": name, "external": external, "shared": shared });
            if let Some(v) = vlan_id {
                b["vlan_id"] = json!(v);
            }
            let v = ctx.client.post(&["networks"], &b).await?;
            output::show(ctx.format, &v);
            Ok(())
        }
        NetworkCmd::List { all_projects } => {
            list(ctx, "networks", &scope(all_projects), &network_columns()).await
        }
        NetworkCmd::Show { id } => show(ctx, "networks", &id).await,
        NetworkCmd::Delete { ids } => crate::delete_all(ctx, "networks", "network", &ids).await,
    }
}

pub async fn subnet(c: SubnetCmd, ctx: &Ctx) -> Result<()> {
    match c {
        SubnetCmd::Create {
            name,
            network,
            cidr,
            gateway,
            allocation_pool,
            dns_server,
        } => {
            let mut b = json!({ "network_id": network, "name": name, "cidr": cidr });
            if let Some(g) = gateway {
                b["gateway_ip"] = json!(g);
            }
            if !allocation_pool.is_empty() {
                b["allocation_pools"] = allocation_pool
                    .iter()
                    .map(|(s, e)| json!({"start": s, "end": e}))
                    .collect();
            }
            if !dns_server.is_empty() {
                b["dns_servers"] = json!(dns_server);
            }
            let v = ctx.client.post(&["subnets"], &b).await?;
            output::show(ctx.format, &v);
            Ok(())
        }
        SubnetCmd::List { network } => {
            let q: Vec<(&str, String)> = network.map(|n| ("network_id", n)).into_iter().collect();
            list(ctx, "subnets", &q, &subnet_columns()).await
        }
        SubnetCmd::Show { id } => show(ctx, "subnets", &id).await,
        SubnetCmd::Delete { ids } => crate::delete_all(ctx, "subnets", "subnet", &ids).await,
    }
}

pub async fn port(c: PortCmd, ctx: &Ctx) -> Result<()> {
    match c {
        PortCmd::List {
            device_id,
            all_projects,
        } => {
            let mut q = scope(all_projects);
            if let Some(d) = device_id {
                q.push(("device_id", d));
            }
            list(ctx, "ports", &q, &port_columns()).await
        }
        PortCmd::Show { id } => show(ctx, "ports", &id).await,
    }
}

pub async fn router(c: RouterCmd, ctx: &Ctx) -> Result<()> {
    let v = match c {
        RouterCmd::Create {
            name,
            external_network,
        } => {
            let mut b = json!({ "name": name });
            if let Some(n) = external_network {
                b["external_network_id"] = json!(n);
            }
            ctx.client.post(&["routers"], &b).await?
        }
        RouterCmd::List { all_projects } => {
            return list(ctx, "routers", &scope(all_projects), &router_columns()).await
        }
        RouterCmd::Show { id } => return show(ctx, "routers", &id).await,
        RouterCmd::Delete { ids } => {
            return crate::delete_all(ctx, "routers", "router", &ids).await
        }
        RouterCmd::SetGateway {
            router,
            external_network,
            clear: _,
        } => match external_network {
            Some(n) => ctx
                .client
                .put(
                    &["routers", &router, "gateway"],
                    Some(&json!({"network_id": n})),
                )
                .await?
                .unwrap_or(Value::Null),
            None => ctx
                .client
                .send(
                    reqwest::Method::DELETE,
                    &["routers", &router, "gateway"],
                    &[],
                    None,
                    true,
                )
                .await?
                .unwrap_or(Value::Null),
        },
        RouterCmd::AddInterface { router, subnet } => {
            ctx.client
                .post(
                    &["routers", &router, "interfaces"],
                    &json!({"subnet_id": subnet}),
                )
                .await?
        }
        RouterCmd::RemoveInterface { router, subnet } => ctx
            .client
            .send(
                reqwest::Method::DELETE,
                &["routers", &router, "interfaces", &subnet],
                &[],
                None,
                true,
            )
            .await?
            .unwrap_or(Value::Null),
    };
    output::show(ctx.format, &v);
    Ok(())
}

// -------------------------------------------------------- the aws verbs

/// The EC2 verbs, flattened into the top level of `nuage`.
#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Create a security group (as `aws ec2 create-security-group`)
    CreateSecurityGroup {
        /// The group's name, unique in the project
        #[arg(long)]
        group_name: String,
        /// What the group is for
        #[arg(long, default_value = "")]
        description: String,
        /// Accepted for aws compatibility: a group applies to every
        /// network of the project
        #[arg(long, value_name = "ID")]
        vpc_id: Option<String>,
    },
    /// List security groups with their rules
    DescribeSecurityGroups {
        /// Only these groups, by id
        #[arg(long, num_args = 1.., value_name = "ID")]
        group_ids: Vec<String>,
        /// Only these groups, by name
        #[arg(long, num_args = 1.., value_name = "NAME")]
        group_names: Vec<String>,
    },
    /// Delete a security group (refused while a port uses it)
    DeleteSecurityGroup {
        #[command(flatten)]
        group: GroupRef,
    },
    /// Allow inbound traffic into a security group's members
    AuthorizeSecurityGroupIngress(RuleArgs),
    /// Allow outbound traffic from a security group's members
    AuthorizeSecurityGroupEgress(RuleArgs),
    /// Remove inbound rules (matched by their content or given by id)
    RevokeSecurityGroupIngress(RevokeArgs),
    /// Remove outbound rules (matched by their content or given by id)
    RevokeSecurityGroupEgress(RevokeArgs),
    /// Set the security groups of a network interface (while its
    /// instance runs, too)
    ModifyNetworkInterfaceAttribute {
        /// The network interface (eni-...)
        #[arg(long, value_name = "ID")]
        network_interface_id: String,
        /// Its groups from now on, by id or name (replacing the old ones)
        #[arg(long, num_args = 1.., required = true, value_name = "GROUP")]
        groups: Vec<String>,
    },
    /// Allocate an elastic (floating) address from an external network
    AllocateAddress {
        /// Accepted for aws compatibility: every address is a VPC one
        #[arg(long, value_name = "vpc")]
        domain: Option<String>,
        /// The external network to take it from (default: the only one)
        #[arg(long, value_name = "ID")]
        network_id: Option<String>,
    },
    /// Associate an elastic address with an instance or a network interface
    AssociateAddress {
        /// The address's allocation id (eipalloc-...)
        #[arg(long, value_name = "ID")]
        allocation_id: String,
        /// The instance whose (first) network interface gets the address
        #[arg(
            long,
            value_name = "ID",
            required_unless_present = "network_interface_id"
        )]
        instance_id: Option<String>,
        /// The network interface (eni-...) that gets the address
        #[arg(long, value_name = "ID", conflicts_with = "instance_id")]
        network_interface_id: Option<String>,
        /// Which of the interface's private addresses (default: its first)
        #[arg(long, value_name = "IP")]
        private_ip_address: Option<String>,
    },
    /// Disassociate an elastic address from its interface
    DisassociateAddress {
        #[command(flatten)]
        address: AddressRef,
    },
    /// Release an elastic address back to the pool
    ReleaseAddress {
        #[command(flatten)]
        address: AddressRef,
    },
    /// List the project's elastic addresses
    DescribeAddresses {
        /// Only these, by allocation id
        #[arg(long, num_args = 1.., value_name = "ID")]
        allocation_ids: Vec<String>,
        /// Only these, by public address
        #[arg(long, num_args = 1.., value_name = "IP")]
        public_ips: Vec<String>,
    },
}

/// `--group-id ID` or `--group-name NAME`.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct GroupRef {
    /// The security group's id (sg-...)
    #[arg(long, value_name = "ID")]
    group_id: Option<String>,
    /// The security group's name
    #[arg(long, value_name = "NAME")]
    group_name: Option<String>,
}

/// `--allocation-id ID` or `--public-ip IP` (also `--association-id`,
/// which is the allocation id here: an address has one association).
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct AddressRef {
    /// The address's allocation id (eipalloc-...)
    #[arg(long, value_name = "ID")]
    allocation_id: Option<String>,
    /// The association's id; nuage answers the allocation id for it
    #[arg(long, value_name = "ID")]
    association_id: Option<String>,
    /// The public address itself
    #[arg(long, value_name = "IP")]
    public_ip: Option<String>,
}

/// The rule flags of `authorize-security-group-{ingress,egress}`.
#[derive(Debug, Args)]
pub struct RuleArgs {
    #[command(flatten)]
    group: GroupRef,
    #[command(flatten)]
    rule: RuleSpec,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    group: GroupRef,
    #[command(flatten)]
    rule: RuleSpec,
    /// Remove these rules (sgr-...) instead of matching by content
    #[arg(long, num_args = 1.., value_name = "ID", conflicts_with_all = ["protocol", "ip_permissions"])]
    security_group_rule_ids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RuleSpec {
    /// tcp, udp, icmp or all (also 6, 17, 1, -1)
    #[arg(long, value_name = "PROTO", conflicts_with = "ip_permissions")]
    protocol: Option<String>,
    /// TCP/UDP: a port or a range FROM-TO; ICMP: a type or TYPE-CODE; -1 or
    /// absent: all
    #[arg(
        long,
        value_name = "RANGE",
        requires = "protocol",
        allow_hyphen_values = true
    )]
    port: Option<String>,
    /// The peer's addresses as a CIDR (default with no --source-group:
    /// anywhere)
    #[arg(long, value_name = "CIDR", requires = "protocol")]
    cidr: Option<String>,
    /// The peer as the members of a group of the project (id or name)
    #[arg(
        long,
        value_name = "GROUP",
        requires = "protocol",
        conflicts_with = "cidr"
    )]
    source_group: Option<String>,
    /// Rules in the aws shorthand or JSON:
    /// 'IpProtocol=tcp,FromPort=22,ToPort=22,IpRanges=[{CidrIp=10.0.0.0/8}]'
    #[arg(long, num_args = 1.., value_name = "SPEC", value_parser = parse_ip_permissions)]
    ip_permissions: Vec<IpPermissions>,
}

/// One rule as the native API takes it, before the direction.
#[derive(Debug, Clone, PartialEq, Eq)]
struct WantRule {
    protocol: String,
    min: Option<i64>,
    max: Option<i64>,
    cidr: Option<String>,
    group: Option<String>,
    description: String,
}

/// `--port`: `N`, `FROM-TO`, or `-1` for all.
fn port_range(s: &str) -> Result<(Option<i64>, Option<i64>)> {
    let s = s.trim();
    if s == "-1" {
        return Ok((None, None));
    }
    let num = |x: &str| {
        x.trim()
            .parse::<i64>()
            .map_err(|_| anyhow!("--port {s}: expected N, FROM-TO or -1"))
    };
    match s.split_once('-') {
        Some((a, b)) => Ok((Some(num(a)?), Some(num(b)?))),
        None => {
            let n = num(s)?;
            Ok((Some(n), Some(n)))
        }
    }
}

/// The canonical name of a protocol as the server returns it, so that a
/// revoke by content matches `6` with `tcp`.
fn canonical_protocol(p: &str) -> String {
    match p.to_ascii_lowercase().as_str() {
        "6" => "tcp".into(),
        "17" => "udp".into(),
        "1" => "icmp".into(),
        "-1" | "any" => "all".into(),
        other => other.to_string(),
    }
}

impl RuleSpec {
    /// The rules these flags describe; a source group given by name is
    /// resolved through `groups` (the project's groups).
    fn rules(&self, groups: &[Value]) -> Result<Vec<WantRule>> {
        let group_id = |g: &str| -> Result<String> {
            if g.starts_with("sg-") {
                return Ok(g.to_string());
            }
            by_name(groups, g)
        };
        if let Some(p) = &self.protocol {
            let protocol = canonical_protocol(p);
            let (min, max) = match &self.port {
                // For ICMP a lone number is a type, with every code.
                Some(r) if protocol == "icmp" && !r.trim_start_matches('-').contains('-') => {
                    (port_range(r)?.0, None)
                }
                Some(r) => port_range(r)?,
                None => (None, None),
            };
            return Ok(vec![WantRule {
                protocol,
                min,
                max,
                cidr: self.cidr.clone(),
                group: self.source_group.as_deref().map(group_id).transpose()?,
                description: String::new(),
            }]);
        }
        let mut out = Vec::new();
        for perm in self.ip_permissions.iter().flat_map(|p| &p.0) {
            let (min, max) = match (perm.from_port, perm.to_port) {
                // EC2 writes "all ports" (and "all ICMP types") as -1.
                (Some(-1), _) | (None, None) => (None, None),
                (a, b) => (a, b.or(a)),
            };
            // -1 is EC2's "all" for a code too; the server stores none.
            let max = max.filter(|m| *m != -1);
            let base = WantRule {
                protocol: canonical_protocol(&perm.protocol),
                min,
                max,
                cidr: None,
                group: None,
                description: String::new(),
            };
            if perm.cidrs.is_empty() && perm.groups.is_empty() {
                out.push(base.clone());
            }
            for (c, d) in &perm.cidrs {
                out.push(WantRule {
                    cidr: Some(c.clone()),
                    description: d.clone(),
                    ..base.clone()
                });
            }
            for (g, d) in &perm.groups {
                out.push(WantRule {
                    group: Some(group_id(g)?),
                    description: d.clone(),
                    ..base.clone()
                });
            }
        }
        if out.is_empty() {
            bail!("say which traffic: --protocol (with --port, --cidr or --source-group) or --ip-permissions");
        }
        Ok(out)
    }
}

impl WantRule {
    fn body(&self, direction: &str) -> Value {
        let mut b = Map::new();
        b.insert("direction".into(), json!(direction));
        b.insert("protocol".into(), json!(self.protocol));
        if let Some(m) = self.min {
            b.insert("port_range_min".into(), json!(m));
        }
        if let Some(m) = self.max {
            b.insert("port_range_max".into(), json!(m));
        }
        if let Some(c) = &self.cidr {
            b.insert("remote_cidr".into(), json!(c));
        }
        if let Some(g) = &self.group {
            b.insert("remote_group_id".into(), json!(g));
        }
        if !self.description.is_empty() {
            b.insert("description".into(), json!(self.description));
        }
        Value::Object(b)
    }

    /// Whether the server's rule `r` is this one in `direction`. The
    /// server writes "anywhere" as no CIDR; `0.0.0.0/0` asks for the same.
    fn matches(&self, direction: &str, r: &Value) -> bool {
        let anywhere = |c: Option<&str>| c.filter(|c| *c != "0.0.0.0/0").map(str::to_string);
        r["direction"] == direction
            && r["protocol"].as_str() == Some(self.protocol.as_str())
            && r["port_range_min"].as_i64() == self.min
            && r["port_range_max"].as_i64() == self.max
            && anywhere(r["remote_cidr"].as_str()) == anywhere(self.cidr.as_deref())
            && r["remote_group_id"].as_str() == self.group.as_deref()
    }
}

/// The id of the project's group named `name`.
fn by_name(groups: &[Value], name: &str) -> Result<String> {
    groups
        .iter()
        .find(|g| g["name"] == name)
        .and_then(|g| g["id"].as_str())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no security group named {name}"))
}

async fn groups(ctx: &Ctx) -> Result<Vec<Value>> {
    let v = ctx.client.get(&["security-groups"], &[]).await?;
    Ok(items(&v).to_vec())
}

/// The group `g` names, by id as given or by name among the project's.
fn group_id(g: &GroupRef, all: &[Value]) -> Result<String> {
    match (&g.group_id, &g.group_name) {
        (Some(id), _) => Ok(id.clone()),
        (None, Some(name)) => by_name(all, name),
        (None, None) => bail!("give --group-id or --group-name"),
    }
}

async fn authorize(ctx: &Ctx, a: RuleArgs, direction: &str) -> Result<()> {
    let all = groups(ctx).await?;
    let id = group_id(&a.group, &all)?;
    let mut added = Vec::new();
    for r in a.rule.rules(&all)? {
        added.push(
            ctx.client
                .post(&["security-groups", &id, "rules"], &r.body(direction))
                .await?,
        );
    }
    let answer = json!({ "items": added });
    let cols = rule_columns();
    output::list(ctx.format, &answer, items(&answer), &cols);
    Ok(())
}

fn rule_columns() -> Vec<Col<'static>> {
    vec![
        Col::field("Rule", "id"),
        Col::field("Group", "group_id"),
        Col::field("Direction", "direction"),
        Col::field("Protocol", "protocol"),
        Col::field("From", "port_range_min"),
        Col::field("To", "port_range_max"),
        Col::field("CIDR", "remote_cidr"),
        Col::field("Source group", "remote_group_id"),
    ]
}

async fn revoke(ctx: &Ctx, a: RevokeArgs, direction: &str) -> Result<()> {
    let all = groups(ctx).await?;
    let id = group_id(&a.group, &all)?;
    let ids = if a.security_group_rule_ids.is_empty() {
        let g = ctx.client.get(&["security-groups", &id], &[]).await?;
        let rules = g["rules"].as_array().cloned().unwrap_or_default();
        let mut ids = Vec::new();
        for want in a.rule.rules(&all)? {
            let found = rules
                .iter()
                .find(|r| want.matches(direction, r))
                .and_then(|r| r["id"].as_str())
                .ok_or_else(|| anyhow!("security group {id} has no such {direction} rule"))?;
            ids.push(found.to_string());
        }
        ids
    } else {
        a.security_group_rule_ids
    };
    for r in &ids {
        ctx.client.delete(&["security-group-rules", r]).await?;
    }
    if ctx.format == output::Format::Json {
        output::json(&json!({ "Return": true, "RevokedRuleIds": ids }));
    }
    Ok(())
}

/// The allocation id `a` names, looking a public address up if need be.
async fn allocation_id(ctx: &Ctx, a: &AddressRef) -> Result<String> {
    if let Some(id) = a.allocation_id.as_ref().or(a.association_id.as_ref()) {
        return Ok(id.clone());
    }
    let ip = a
        .public_ip
        .as_deref()
        .ok_or_else(|| anyhow!("give --allocation-id or --public-ip"))?;
    let v = ctx.client.get(&["floating-ips"], &[]).await?;
    items(&v)
        .iter()
        .find(|f| f["floating_ip_address"] == ip)
        .and_then(|f| f["id"].as_str())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no elastic address {ip} in this project"))
}

/// The first port of an instance (compute's ports carry the instance id as
/// their device id), found through the server's port listing.
async fn instance_port(ctx: &Ctx, instance: &str) -> Result<String> {
    let v = ctx
        .client
        .get(&["ports"], &[("device_id", instance.to_string())])
        .await?;
    items(&v)
        .iter()
        .filter(|p| p["device_owner"] == "compute:instance")
        .find_map(|p| p["id"].as_str())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("instance {instance} has no network interface"))
}

/// Keeps the rows whose `key` is among `wanted` (all when both lists are
/// empty), naming any wanted that none has.
fn select(rows: &[Value], wanted: &[(&str, &[String])], what: &str) -> Result<Vec<Value>> {
    if wanted.iter().all(|(_, w)| w.is_empty()) {
        return Ok(rows.to_vec());
    }
    let mut out: Vec<Value> = Vec::new();
    for (key, names) in wanted {
        for n in *names {
            let row = rows
                .iter()
                .find(|r| r[*key].as_str() == Some(n.as_str()))
                .ok_or_else(|| anyhow!("no such {what}: {n}"))?;
            if !out.contains(row) {
                out.push(row.clone());
            }
        }
    }
    Ok(out)
}

pub async fn run(verb: Verb, ctx: &Ctx) -> Result<()> {
    match verb {
        Verb::CreateSecurityGroup {
            group_name,
            description,
            vpc_id: _,
        } => {
            let v = ctx
                .client
                .post(
                    &["security-groups"],
                    &json!({"name": group_name, "description": description}),
                )
                .await?;
            output::pairs(
                ctx.format,
                &v,
                &[("GroupId".into(), output::cell(&v["id"]))],
            );
            Ok(())
        }
        Verb::DescribeSecurityGroups {
            group_ids,
            group_names,
        } => {
            let all = groups(ctx).await?;
            let rows = select(
                &all,
                &[("id", &group_ids), ("name", &group_names)],
                "security group",
            )?;
            let answer = json!({ "items": rows });
            output::list(ctx.format, &answer, items(&answer), &group_columns());
            Ok(())
        }
        Verb::DeleteSecurityGroup { group } => {
            let all = if group.group_id.is_some() {
                Vec::new()
            } else {
                groups(ctx).await?
            };
            let id = group_id(&group, &all)?;
            ctx.client.delete(&["security-groups", &id]).await
        }
        Verb::AuthorizeSecurityGroupIngress(a) => authorize(ctx, a, "ingress").await,
        Verb::AuthorizeSecurityGroupEgress(a) => authorize(ctx, a, "egress").await,
        Verb::RevokeSecurityGroupIngress(a) => revoke(ctx, a, "ingress").await,
        Verb::RevokeSecurityGroupEgress(a) => revoke(ctx, a, "egress").await,
        Verb::ModifyNetworkInterfaceAttribute {
            network_interface_id,
            groups: wanted,
        } => {
            let all = if wanted.iter().all(|g| g.starts_with("sg-")) {
                Vec::new()
            } else {
                groups(ctx).await?
            };
            let ids = wanted
                .iter()
                .map(|g| {
                    if g.starts_with("sg-") {
                        Ok(g.clone())
                    } else {
                        by_name(&all, g)
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            let v = ctx
                .client
                .patch(
                    &["ports", &network_interface_id],
                    &json!({ "security_groups": ids }),
                )
                .await?;
            output::show(ctx.format, &v);
            Ok(())
        }
        Verb::AllocateAddress {
            domain: _,
            network_id,
        } => {
            let body = match network_id {
                Some(n) => json!({ "network_id": n }),
                None => json!({}),
            };
            let v = ctx.client.post(&["floating-ips"], &body).await?;
            output::show(ctx.format, &v);
            Ok(())
        }
        Verb::AssociateAddress {
            allocation_id,
            instance_id,
            network_interface_id,
            private_ip_address,
        } => {
            let port = match (network_interface_id, instance_id) {
                (Some(p), _) => p,
                (None, Some(i)) => instance_port(ctx, &i).await?,
                (None, None) => bail!("give --instance-id or --network-interface-id"),
            };
            let mut body = json!({ "port_id": port });
            if let Some(ip) = private_ip_address {
                body["fixed_ip"] = json!(ip);
            }
            let v = ctx
                .client
                .put(
                    &["floating-ips", &allocation_id, "association"],
                    Some(&body),
                )
                .await?
                .unwrap_or(Value::Null);
            output::show(ctx.format, &v);
            Ok(())
        }
        Verb::DisassociateAddress { address } => {
            let id = allocation_id(ctx, &address).await?;
            let v = ctx
                .client
                .send(
                    reqwest::Method::DELETE,
                    &["floating-ips", &id, "association"],
                    &[],
                    None,
                    true,
                )
                .await?
                .unwrap_or(Value::Null);
            output::show(ctx.format, &v);
            Ok(())
        }
        Verb::ReleaseAddress { address } => {
            let id = allocation_id(ctx, &address).await?;
            ctx.client.delete(&["floating-ips", &id]).await
        }
        Verb::DescribeAddresses {
            allocation_ids,
            public_ips,
        } => {
            let v = ctx.client.get(&["floating-ips"], &[]).await?;
            let rows = select(
                items(&v),
                &[
                    ("id", &allocation_ids),
                    ("floating_ip_address", &public_ips),
                ],
                "elastic address",
            )?;
            let answer = json!({ "items": rows });
            output::list(ctx.format, &answer, items(&answer), &address_columns());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(subcommand)]
        verb: Verb,
    }

    fn parse(args: &[&str]) -> Result<Verb, clap::Error> {
        T::try_parse_from(std::iter::once("nuage").chain(args.iter().copied())).map(|t| t.verb)
    }

    fn rule_args(args: &[&str]) -> RuleArgs {
        match parse(args).expect("parses") {
            Verb::AuthorizeSecurityGroupIngress(a) | Verb::AuthorizeSecurityGroupEgress(a) => a,
            other => panic!("not an authorize verb: {other:?}"),
        }
    }

    #[test]
    fn rule_flags_become_bodies() {
        let groups = [json!({"id": "sg-web", "name": "web"})];
        let a = rule_args(&[
            "authorize-security-group-ingress",
            "--group-name",
            "web",
            "--protocol",
            "6",
            "--port",
            "8000-8080",
            "--cidr",
            "192.0.2.0/24",
        ]);
        assert_eq!(group_id(&a.group, &groups).expect("by name"), "sg-web");
        let rules = a.rule.rules(&groups).expect("rules");
        assert_eq!(
            rules.iter().map(|r| r.body("ingress")).collect::<Vec<_>>(),
            [
                json!({"direction": "ingress", "protocol": "tcp", "port_range_min": 8000,
                    "port_range_max": 8080, "remote_cidr": "192.0.2.0/24"})
            ]
        );
        let a = rule_args(&[
            "authorize-security-group-egress",
            "--group-id",
            "sg-1",
            "--protocol",
            "all",
            "--source-group",
            "web",
        ]);
        let rules = a.rule.rules(&groups).expect("rules");
        assert_eq!(
            rules[0].body("egress"),
            json!({"direction": "egress", "protocol": "all", "remote_group_id": "sg-web"})
        );
        // A port range is passed on as given: the server judges it.
        let a = rule_args(&[
            "authorize-security-group-ingress",
            "--group-id",
            "sg-1",
            "--protocol",
            "tcp",
            "--port",
            "80-22",
        ]);
        let r = &a.rule.rules(&groups).expect("rules")[0];
        assert_eq!((r.min, r.max), (Some(80), Some(22)));
        // ICMP: a lone number is a type with every code; TYPE-CODE both.
        for (port, want) in [
            ("8", (Some(8), None)),
            ("3-4", (Some(3), Some(4))),
            ("-1", (None, None)),
        ] {
            let a = rule_args(&[
                "authorize-security-group-ingress",
                "--group-id",
                "sg-1",
                "--protocol",
                "icmp",
                "--port",
                port,
            ]);
            let r = &a.rule.rules(&groups).expect("rules")[0];
            assert_eq!((r.min, r.max), want, "--port {port}");
        }
    }

    #[test]
    fn ip_permissions_give_one_rule_per_peer() {
        let a = rule_args(&[
            "authorize-security-group-ingress",
            "--group-id",
            "sg-1",
            "--ip-permissions",
            "IpProtocol=udp,FromPort=53,ToPort=53,IpRanges=[{CidrIp=10.0.0.0/8,Description=dns},{CidrIp=192.0.2.1/32}],UserIdGroupPairs=[{GroupId=sg-2}]",
            r#"[{"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1}]"#,
        ]);
        let rules = a.rule.rules(&[]).expect("rules");
        let bodies: Vec<Value> = rules.iter().map(|r| r.body("ingress")).collect();
        assert_eq!(
            bodies,
            [
                json!({"direction": "ingress", "protocol": "udp", "port_range_min": 53, "port_range_max": 53,
                       "remote_cidr": "10.0.0.0/8", "description": "dns"}),
                json!({"direction": "ingress", "protocol": "udp", "port_range_min": 53, "port_range_max": 53,
                       "remote_cidr": "192.0.2.1/32"}),
                json!({"direction": "ingress", "protocol": "udp", "port_range_min": 53, "port_range_max": 53,
                       "remote_group_id": "sg-2"}),
                json!({"direction": "ingress", "protocol": "icmp"}),
            ]
        );
        let e = parse(&[
            "authorize-security-group-ingress",
            "--group-id",
            "sg-1",
            "--ip-permissions",
            "IpProtocol=tcp,Ports=22",
        ])
        .expect_err("unknown key");
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("unknown key"), "{e}");
    }

    #[test]
    fn usage_errors() {
        // Neither or both of --group-id and --group-name.
        assert!(parse(&["delete-security-group"]).is_err());
        assert!(parse(&[
            "delete-security-group",
            "--group-id",
            "sg-1",
            "--group-name",
            "x"
        ])
        .is_err());
        // A port without a protocol, a CIDR and a source group together.
        assert!(parse(&[
            "authorize-security-group-ingress",
            "--group-id",
            "sg-1",
            "--port",
            "22"
        ])
        .is_err());
        assert!(parse(&[
            "authorize-security-group-ingress",
            "--group-id",
            "sg-1",
            "--protocol",
            "tcp",
            "--cidr",
            "0.0.0.0/0",
            "--source-group",
            "sg-2"
        ])
        .is_err());
        // associate-address needs a target, and only one.
        assert!(parse(&["associate-address", "--allocation-id", "eipalloc-1"]).is_err());
        assert!(parse(&[
            "associate-address",
            "--allocation-id",
            "eipalloc-1",
            "--instance-id",
            "i-1",
            "--network-interface-id",
            "eni-1"
        ])
        .is_err());
        assert!(port_range("http").is_err());
        assert_eq!(port_range("-1").expect("all"), (None, None));
        assert_eq!(port_range("22").expect("one"), (Some(22), Some(22)));
    }

    #[test]
    fn revoke_matches_the_servers_rule() {
        let want = WantRule {
            protocol: "tcp".into(),
            min: Some(22),
            max: Some(22),
            cidr: Some("0.0.0.0/0".into()),
            group: None,
            description: String::new(),
        };
        let server = json!({"id": "sgr-1", "direction": "ingress", "protocol": "tcp",
            "port_range_min": 22, "port_range_max": 22, "remote_cidr": null, "remote_group_id": null});
        assert!(want.matches("ingress", &server));
        assert!(!want.matches("egress", &server));
        let other = json!({"id": "sgr-2", "direction": "ingress", "protocol": "tcp",
            "port_range_min": 22, "port_range_max": 23, "remote_cidr": null, "remote_group_id": null});
        assert!(!want.matches("ingress", &other));
    }
}
