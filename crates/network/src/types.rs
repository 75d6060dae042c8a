//! The network resources as the service returns them, and what callers
//! send to create them. Ids follow EC2's shapes (`vpc-`, `subnet-`,
//! `eni-`, `sg-`, `sgr-`, `eipalloc-`) from [`nuage_model::id::ec2`], as
//! instance ids do; routers, which EC2 splits into gateways and route
//! tables, are `rtr-`.

use serde::{Deserialize, Serialize};

/// Id prefixes, one per resource.
pub mod prefix {
    pub const NETWORK: &str = "vpc";
    pub const SUBNET: &str = "subnet";
    pub const PORT: &str = "eni";
    pub const ROUTER: &str = "rtr";
    pub const SECURITY_GROUP: &str = "sg";
    pub const RULE: &str = "sgr";
    pub const FLOATING_IP: &str = "eipalloc";
}

/// `device_owner` values of the ports the service makes itself; compute
/// sets [`device_owner::INSTANCE`] on an instance's ports.
pub mod device_owner {
    pub const INSTANCE: &str = "compute:instance";
    pub const ROUTER_INTERFACE: &str = "network:router_interface";
    pub const ROUTER_GATEWAY: &str = "network:router_gateway";
    pub const FLOATING_IP: &str = "network:floatingip";

    /// Owners whose ports only the service creates and deletes.
    pub fn is_service(owner: &str) -> bool {
        owner.starts_with("network:")
    }
}

/// The name of every project's default network and security group.
pub const DEFAULT_NAME: &str = "default";

/// An L2 network (Neutron network, EC2 VPC): one bridge per node, isolated
/// from every other network; addresses come from its subnets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Network {
    pub id: String,
    pub project_id: String,
    pub name: String,
    /// The 802.1Q tag on the shared trunk, for VLAN networks.
    pub vlan_id: Option<u16>,
    /// Floating addresses and router gateways come from external networks.
    pub external: bool,
    /// Every project may put ports on a shared network.
    pub shared: bool,
    /// The project's default network, made at first use (EC2's default VPC).
    pub is_default: bool,
    /// The range its subnets must lie in (EC2's VPC CidrBlock); `None`:
    /// any range.
    pub cidr: Option<String>,
    pub subnets: Vec<String>,
    pub generation: i64,
    pub observed_generation: i64,
    pub created_at: i64,
}

/// An inclusive range of a subnet's addresses that IPAM hands out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    pub start: String,
    pub end: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subnet {
    pub id: String,
    pub network_id: String,
    pub project_id: String,
    pub name: String,
    pub cidr: String,
    pub gateway_ip: Option<String>,
    pub allocation_pools: Vec<Pool>,
    /// Resolvers given to instances; empty means the network's own
    /// resolver at the gateway.
    pub dns_servers: Vec<String>,
    pub generation: i64,
    pub observed_generation: i64,
    pub created_at: i64,
}

/// One address of a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FixedIp {
    pub subnet_id: String,
    pub ip_address: String,
}

/// A NIC on a network (Neutron port, EC2 network interface).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Port {
    pub id: String,
    pub project_id: String,
    pub network_id: String,
    pub name: String,
    pub mac_address: String,
    pub fixed_ips: Vec<FixedIp>,
    pub device_owner: String,
    pub device_id: String,
    pub security_groups: Vec<String>,
    pub generation: i64,
    pub observed_generation: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "ingress" => Some(Direction::Ingress),
            "egress" => Some(Direction::Egress),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    All,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
            Protocol::All => "all",
        }
    }

    /// Names and IANA numbers as EC2 and Neutron accept them (`-1` is
    /// EC2's "all").
    pub fn parse(s: &str) -> Option<Protocol> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" | "6" => Some(Protocol::Tcp),
            "udp" | "17" => Some(Protocol::Udp),
            "icmp" | "1" => Some(Protocol::Icmp),
            "all" | "-1" | "any" => Some(Protocol::All),
            _ => None,
        }
    }
}

/// One allow rule; a group's rules are a union, everything else is
/// dropped, and replies to allowed traffic pass (stateful).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecurityGroupRule {
    pub id: String,
    pub group_id: String,
    pub direction: Direction,
    pub protocol: Protocol,
    /// TCP/UDP: the first port; ICMP: the type. `None`: all.
    pub port_range_min: Option<u16>,
    /// TCP/UDP: the last port; ICMP: the code. `None`: all.
    pub port_range_max: Option<u16>,
    /// The peer as a prefix; `None` with no remote group means anywhere.
    pub remote_cidr: Option<String>,
    /// The peer as the members of a group (of the same project).
    pub remote_group_id: Option<String>,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecurityGroup {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub rules: Vec<SecurityGroupRule>,
    pub generation: i64,
    pub observed_generation: i64,
    pub created_at: i64,
}

/// A router joins a project's subnets (interfaces holding each subnet's
/// gateway address) and gives them outbound access by SNAT through its
/// external gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Router {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub external_network_id: Option<String>,
    /// The router's address on the external network (its SNAT source).
    pub external_ip: Option<String>,
    pub gateway_port_id: Option<String>,
    /// The subnets joined, by their interface ports.
    pub interfaces: Vec<RouterInterface>,
    pub generation: i64,
    pub observed_generation: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouterInterface {
    pub subnet_id: String,
    pub port_id: String,
    pub ip_address: String,
}

/// A public (floating, elastic) address: allocated to a project from an
/// external network, associated with one fixed address of one port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FloatingIp {
    pub id: String,
    pub project_id: String,
    pub network_id: String,
    pub floating_ip_address: String,
    pub port_id: Option<String>,
    pub fixed_ip_address: Option<String>,
    /// The router that translates for it, while associated.
    pub router_id: Option<String>,
    pub generation: i64,
    pub observed_generation: i64,
    pub created_at: i64,
}

/// One address of a device's port as describe output shows it: the
/// private (fixed) address and, when associated, its public one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceAddress {
    pub port_id: String,
    pub network_id: String,
    pub subnet_id: String,
    pub mac_address: String,
    pub private_ip: String,
    pub public_ip: Option<String>,
    pub floating_ip_id: Option<String>,
    /// The port's security groups: (id, name), by id.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<(String, String)>,
}

/// What creating a network asks for. `vlan_id`, `external` and `shared`
/// are the operator's (admin only), as Neutron's provider attributes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewNetwork {
    pub name: String,
    #[serde(default)]
    pub vlan_id: Option<u16>,
    #[serde(default)]
    pub external: bool,
    #[serde(default)]
    pub shared: bool,
    /// The range its subnets must lie in (EC2's VPC CidrBlock), /16 to /28.
    #[serde(default)]
    pub cidr: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSubnet {
    pub network_id: String,
    #[serde(default)]
    pub name: String,
    pub cidr: String,
    /// Defaults to the first usable address.
    #[serde(default)]
    pub gateway_ip: Option<String>,
    /// Default: every usable address but the gateway.
    #[serde(default)]
    pub allocation_pools: Vec<Pool>,
    #[serde(default)]
    pub dns_servers: Vec<String>,
}

/// One address a new port asks for: a subnet (any free address of it), an
/// address (in whichever subnet holds it), or both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedIpRequest {
    #[serde(default)]
    pub subnet_id: Option<String>,
    #[serde(default)]
    pub ip_address: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPort {
    pub network_id: String,
    #[serde(default)]
    pub name: String,
    /// Empty: one address from the network's first subnet with room.
    #[serde(default)]
    pub fixed_ips: Vec<FixedIpRequest>,
    /// `None`: the project's `default` group.
    #[serde(default)]
    pub security_groups: Option<Vec<String>>,
    #[serde(default)]
    pub device_owner: String,
    #[serde(default)]
    pub device_id: String,
}

/// A rule of a group to revoke, named as EC2's Revoke names it.
#[derive(Debug, Clone)]
pub enum RuleMatch {
    /// The rule with this content (the same normalisation as the
    /// duplicate check; the description does not count).
    Content(NewRule),
    /// The rule with this id, which must go in this direction.
    Id { id: String, direction: Direction },
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSecurityGroup {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRule {
    pub direction: Direction,
    /// `tcp`, `udp`, `icmp`, `all` (or 6, 17, 1, -1).
    pub protocol: String,
    #[serde(default)]
    pub port_range_min: Option<i64>,
    #[serde(default)]
    pub port_range_max: Option<i64>,
    #[serde(default)]
    pub remote_cidr: Option<String>,
    #[serde(default)]
    pub remote_group_id: Option<String>,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRouter {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub external_network_id: Option<String>,
}
