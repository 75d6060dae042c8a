//! The networking half of the EC2 door: security groups and their rules,
//! elastic addresses, VPCs, subnets and network interfaces, translated
//! onto the network service (ADR 26 says how EC2's concepts map onto
//! networks, subnets, ports, routers and floating IPs).
//!
//! As every area (see `meta.rs`): `Op` holds each action's parsed
//! parameters, `Op::parse` reads them from [`Params`] only, `Op::run`
//! calls the service and writes the answer. The rules (what a valid rule,
//! CIDR or association is, who owns what) are the service's; this module
//! only spells them the way EC2 does.

use std::collections::BTreeMap;

use nuage_network::types::{
    device_owner, Direction, FloatingIp, Network, NewNetwork, NewRouter, NewRule, NewSecurityGroup,
    NewSubnet, Port, Protocol, Router, RuleMatch, SecurityGroup, SecurityGroupRule, Subnet,
};
use nuage_network::{NetworkError, Resource};

use super::error::{Ec2Error, Result};
use super::ops::Ctx;
use super::params::{keep, Filter, Params, TagSpecification};
use super::xml::Xml;

pub const ACTIONS: &[&str] = &[
    "AllocateAddress",
    "AssociateAddress",
    "AssociateRouteTable",
    "AttachInternetGateway",
    "AuthorizeSecurityGroupEgress",
    "AuthorizeSecurityGroupIngress",
    "CreateInternetGateway",
    "CreateRoute",
    "CreateSecurityGroup",
    "CreateSubnet",
    "CreateVpc",
    "DeleteInternetGateway",
    "DeleteSecurityGroup",
    "DeleteSubnet",
    "DeleteVpc",
    "DescribeAddresses",
    "DescribeInternetGateways",
    "DescribeNetworkInterfaces",
    "DescribeRouteTables",
    "DescribeSecurityGroupRules",
    "DescribeSecurityGroups",
    "DescribeSubnets",
    "DescribeVpcs",
    "DetachInternetGateway",
    "DisassociateAddress",
    "ReleaseAddress",
    "RevokeSecurityGroupEgress",
    "RevokeSecurityGroupIngress",
];

const GROUP_FILTERS: &[&str] = &[
    "description",
    "group-id",
    "group-name",
    "owner-id",
    "vpc-id",
    "ip-permission.cidr",
    "ip-permission.from-port",
    "ip-permission.group-id",
    "ip-permission.protocol",
    "ip-permission.to-port",
    "egress.ip-permission.cidr",
    "egress.ip-permission.from-port",
    "egress.ip-permission.group-id",
    "egress.ip-permission.protocol",
    "egress.ip-permission.to-port",
];
const RULE_FILTERS: &[&str] = &["group-id", "security-group-rule-id"];
const ADDRESS_FILTERS: &[&str] = &[
    "allocation-id",
    "association-id",
    "domain",
    "instance-id",
    "network-border-group",
    "network-interface-id",
    "network-interface-owner-id",
    "private-ip-address",
    "public-ip",
];
const VPC_FILTERS: &[&str] = &[
    "cidr",
    "cidr-block-association.cidr-block",
    "dhcp-options-id",
    "is-default",
    "owner-id",
    "state",
    "vpc-id",
];
const SUBNET_FILTERS: &[&str] = &[
    "availability-zone",
    "cidr",
    "cidr-block",
    "cidrBlock",
    "default-for-az",
    "owner-id",
    "state",
    "subnet-id",
    "vpc-id",
];
const IGW_FILTERS: &[&str] = &[
    "attachment.state",
    "attachment.vpc-id",
    "internet-gateway-id",
    "owner-id",
];
const RTB_FILTERS: &[&str] = &[
    "association.main",
    "association.route-table-association-id",
    "association.route-table-id",
    "association.subnet-id",
    "owner-id",
    "route-table-id",
    "route.destination-cidr-block",
    "route.gateway-id",
    "route.state",
    "vpc-id",
];
const ENI_FILTERS: &[&str] = &[
    "attachment.instance-id",
    "group-id",
    "mac-address",
    "network-interface-id",
    "owner-id",
    "private-ip-address",
    "status",
    "subnet-id",
    "vpc-id",
];

/// An elastic address's association id is its allocation id under EC2's
/// `eipassoc-` prefix: an address has at most one association, so the
/// pair needs no row of its own.
const ALLOC: &str = "eipalloc-";
const ASSOC: &str = "eipassoc-";

/// Which group a call names: by id, or by name in the caller's project.
#[derive(Debug, Clone)]
pub enum GroupRef {
    Id(String),
    Name(String),
}

/// One `IpPermissions.N` (or the legacy flat form), spelled as EC2 does.
#[derive(Debug, Clone, Default)]
pub struct Permission {
    pub protocol: String,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// (CIDR, description).
    pub cidrs: Vec<(String, String)>,
    /// Peer groups: (id or name, description).
    pub groups: Vec<(GroupRef, String)>,
}

/// An address named by allocation id or (legacy) public IP.
#[derive(Debug, Clone)]
pub enum AddressRef {
    Allocation(String),
    PublicIp(String),
}

/// What an address is associated with.
#[derive(Debug, Clone)]
pub enum Target {
    Instance(String),
    Interface(String),
}

/// Variants are named after the EC2 actions they are.
#[allow(clippy::enum_variant_names)]
#[derive(Debug)]
pub enum Op {
    CreateSecurityGroup {
        name: String,
        description: String,
        vpc: Option<String>,
        tags: BTreeMap<String, String>,
    },
    DescribeSecurityGroups {
        ids: Vec<String>,
        names: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    },
    DescribeSecurityGroupRules {
        ids: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    },
    Authorize {
        direction: Direction,
        group: GroupRef,
        perms: Vec<Permission>,
    },
    Revoke {
        direction: Direction,
        group: GroupRef,
        perms: Vec<Permission>,
        rule_ids: Vec<String>,
    },
    DeleteSecurityGroup {
        group: GroupRef,
    },
    AllocateAddress {
        tags: BTreeMap<String, String>,
    },
    AssociateAddress {
        address: AddressRef,
        target: Target,
        private_ip: Option<String>,
    },
    DisassociateAddress {
        address: AddressRef,
    },
    ReleaseAddress {
        address: AddressRef,
    },
    DescribeAddresses {
        ids: Vec<String>,
        ips: Vec<String>,
        filters: Vec<Filter>,
    },
    CreateVpc {
        cidr: String,
        tags: BTreeMap<String, String>,
    },
    DeleteVpc {
        id: String,
    },
    DescribeVpcs {
        ids: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    },
    CreateSubnet {
        vpc: String,
        cidr: String,
        zone: Option<String>,
        tags: BTreeMap<String, String>,
    },
    DeleteSubnet {
        id: String,
    },
    DescribeSubnets {
        ids: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    },
    DescribeNetworkInterfaces {
        ids: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    },
    CreateInternetGateway {
        tags: BTreeMap<String, String>,
    },
    AttachInternetGateway {
        igw: String,
        vpc: String,
    },
    DetachInternetGateway {
        igw: String,
        vpc: String,
    },
    DeleteInternetGateway {
        igw: String,
    },
    DescribeInternetGateways {
        ids: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    },
    DescribeRouteTables {
        ids: Vec<String>,
        filters: Vec<Filter>,
        page: Page,
    },
    CreateRoute {
        table: String,
        destination: String,
        gateway: String,
    },
    AssociateRouteTable {
        table: String,
        subnet: String,
    },
}

/// `MaxResults` and `NextToken` of a describe call.
#[derive(Debug, Default)]
pub struct Page {
    max: Option<usize>,
    token: Option<String>,
}

impl Page {
    fn parse(p: &Params) -> Result<Page> {
        let (max, token) = p.page(5, 1000)?;
        Ok(Page { max, token })
    }

    /// The page of `items` (in a stable order) the token points at, and
    /// the token of the next one: the id of its first item.
    fn cut<T>(&self, items: Vec<T>, id: impl Fn(&T) -> &str) -> Result<(Vec<T>, Option<String>)> {
        let start = match &self.token {
            None => 0,
            Some(t) => items
                .iter()
                .position(|i| id(i) == t)
                .ok_or_else(|| Ec2Error::invalid(format!("Invalid NextToken: {t}")))?,
        };
        let mut items: Vec<T> = items.into_iter().skip(start).collect();
        let next = match self.max {
            Some(m) if items.len() > m => {
                let rest = items.split_off(m);
                rest.first().map(|i| id(i).to_string())
            }
            _ => None,
        };
        Ok((items, next))
    }
}

/// The tags `TagSpecification` gives for a resource of type `rtype`; a
/// specification for any other type is refused (the call makes none).
fn spec_tags(specs: Vec<TagSpecification>, rtype: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for s in specs {
        if s.resource_type != rtype {
            return Err(Ec2Error::invalid(format!(
                "'{}' is not a valid taggable resource type for this operation (it makes a {rtype})",
                s.resource_type
            )));
        }
        for t in s.tags {
            out.insert(t.key, t.value);
        }
    }
    if out.len() > 50 {
        return Err(Ec2Error::new(
            400,
            "TagLimitExceeded",
            "a resource has at most 50 tags",
        ));
    }
    Ok(out)
}

/// The group a call names, by `GroupId` or `GroupName`.
fn group_ref(p: &Params) -> Result<GroupRef> {
    match (p.opt("GroupId"), p.opt("GroupName")) {
        (Some(id), None) if !id.is_empty() => Ok(GroupRef::Id(id.to_string())),
        (None, Some(n)) if !n.is_empty() => Ok(GroupRef::Name(n.to_string())),
        (Some(_), Some(_)) => Err(Ec2Error::combination("give GroupId or GroupName, not both")),
        _ => Err(Ec2Error::missing("GroupId")),
    }
}

/// `IpPermissions.N...`, or the legacy flat `IpProtocol`/`FromPort`/
/// `ToPort`/`CidrIp`/`SourceSecurityGroupName` form.
fn permissions(p: &Params) -> Result<Vec<Permission>> {
    let mut out = Vec::new();
    for i in p.indices("IpPermissions")? {
        let at = |n: &str| format!("IpPermissions.{i}.{n}");
        let mut perm = Permission {
            protocol: p.req(&at("IpProtocol"))?.to_string(),
            from: p.int(&at("FromPort"), -1, 65535)?,
            to: p.int(&at("ToPort"), -1, 65535)?,
            ..Permission::default()
        };
        for j in p.indices(&at("IpRanges"))? {
            let r = |n: &str| format!("IpPermissions.{i}.IpRanges.{j}.{n}");
            perm.cidrs.push((
                p.req(&r("CidrIp"))?.to_string(),
                p.opt(&r("Description")).unwrap_or("").to_string(),
            ));
        }
        for j in p.indices(&at("UserIdGroupPairs"))? {
            let g = |n: &str| format!("IpPermissions.{i}.UserIdGroupPairs.{j}.{n}");
            // The owner is always the caller's project: groups of other
            // projects are not peers in nuage.
            p.opt(&g("UserId"));
            let desc = p.opt(&g("Description")).unwrap_or("").to_string();
            let group = match (p.opt(&g("GroupId")), p.opt(&g("GroupName"))) {
                (Some(id), _) => GroupRef::Id(id.to_string()),
                (None, Some(n)) => GroupRef::Name(n.to_string()),
                (None, None) => return Err(Ec2Error::missing(&g("GroupId"))),
            };
            perm.groups.push((group, desc));
        }
        out.push(perm);
    }
    let flat = Permission {
        protocol: p.opt("IpProtocol").unwrap_or("").to_string(),
        from: p.int("FromPort", -1, 65535)?,
        to: p.int("ToPort", -1, 65535)?,
        cidrs: p
            .opt("CidrIp")
            .map(|c| vec![(c.to_string(), String::new())])
            .unwrap_or_default(),
        groups: p
            .opt("SourceSecurityGroupName")
            .map(|n| vec![(GroupRef::Name(n.to_string()), String::new())])
            .unwrap_or_default(),
    };
    p.opt("SourceSecurityGroupOwnerId");
    let flat_given = !flat.protocol.is_empty()
        || flat.from.is_some()
        || flat.to.is_some()
        || !flat.cidrs.is_empty()
        || !flat.groups.is_empty();
    if flat_given {
        if !out.is_empty() {
            return Err(Ec2Error::combination(
                "give IpPermissions or the flat IpProtocol/CidrIp form, not both",
            ));
        }
        if flat.protocol.is_empty() {
            return Err(Ec2Error::missing("IpProtocol"));
        }
        out.push(flat);
    }
    for perm in &out {
        if perm.cidrs.is_empty() && perm.groups.is_empty() {
            return Err(Ec2Error::missing(
                "IpPermissions.N.IpRanges or UserIdGroupPairs",
            ));
        }
    }
    Ok(out)
}

fn address_ref(p: &Params) -> Result<AddressRef> {
    match (p.opt("AllocationId"), p.opt("PublicIp")) {
        (Some(a), None) if !a.is_empty() => Ok(AddressRef::Allocation(a.to_string())),
        (None, Some(ip)) if !ip.is_empty() => Ok(AddressRef::PublicIp(ip.to_string())),
        (Some(_), Some(_)) => Err(Ec2Error::combination(
            "give AllocationId or PublicIp, not both",
        )),
        _ => Err(Ec2Error::missing("AllocationId")),
    }
}

impl Op {
    pub fn parse(action: &str, p: &Params) -> Result<Option<Op>> {
        Ok(Some(match action {
            "CreateSecurityGroup" => Op::CreateSecurityGroup {
                name: p.req("GroupName")?.to_string(),
                description: p.req("GroupDescription")?.to_string(),
                vpc: p.opt("VpcId").map(str::to_string),
                tags: spec_tags(p.tag_specifications()?, "security-group")?,
            },
            "DescribeSecurityGroups" => Op::DescribeSecurityGroups {
                ids: p.list("GroupId")?,
                names: p.list("GroupName")?,
                filters: p.filters(GROUP_FILTERS, true)?,
                page: Page::parse(p)?,
            },
            "DescribeSecurityGroupRules" => Op::DescribeSecurityGroupRules {
                ids: p.list("SecurityGroupRuleId")?,
                filters: p.filters(RULE_FILTERS, true)?,
                page: Page::parse(p)?,
            },
            "AuthorizeSecurityGroupIngress" | "AuthorizeSecurityGroupEgress" => {
                let direction = if action.ends_with("Ingress") {
                    Direction::Ingress
                } else {
                    Direction::Egress
                };
                let group = group_ref(p)?;
                // Rules carry no tags in nuage: refused rather than dropped.
                if !spec_tags(p.tag_specifications()?, "security-group-rule")?.is_empty() {
                    return Err(Ec2Error::invalid(
                        "security group rules cannot be tagged in nuage",
                    ));
                }
                let perms = permissions(p)?;
                if perms.is_empty() {
                    return Err(Ec2Error::missing("IpPermissions"));
                }
                Op::Authorize {
                    direction,
                    group,
                    perms,
                }
            }
            "RevokeSecurityGroupIngress" | "RevokeSecurityGroupEgress" => {
                let direction = if action.ends_with("Ingress") {
                    Direction::Ingress
                } else {
                    Direction::Egress
                };
                let group = group_ref(p)?;
                let perms = permissions(p)?;
                let rule_ids = p.list("SecurityGroupRuleId")?;
                if perms.is_empty() && rule_ids.is_empty() {
                    return Err(Ec2Error::missing("IpPermissions"));
                }
                Op::Revoke {
                    direction,
                    group,
                    perms,
                    rule_ids,
                }
            }
            "DeleteSecurityGroup" => Op::DeleteSecurityGroup {
                group: group_ref(p)?,
            },
            "AllocateAddress" => {
                if let Some(d) = p.opt("Domain") {
                    if d != "vpc" {
                        return Err(Ec2Error::invalid(format!(
                            "Value ({d}) for parameter Domain is invalid. nuage's addresses are all 'vpc'."
                        )));
                    }
                }
                Op::AllocateAddress {
                    tags: spec_tags(p.tag_specifications()?, "elastic-ip")?,
                }
            }
            "AssociateAddress" => {
                let address = address_ref(p)?;
                let target = match (p.opt("InstanceId"), p.opt("NetworkInterfaceId")) {
                    (Some(i), None) => Target::Instance(i.to_string()),
                    (None, Some(n)) => Target::Interface(n.to_string()),
                    (Some(_), Some(_)) => {
                        return Err(Ec2Error::combination(
                            "give InstanceId or NetworkInterfaceId, not both",
                        ))
                    }
                    (None, None) => return Err(Ec2Error::missing("InstanceId")),
                };
                Op::AssociateAddress {
                    address,
                    target,
                    private_ip: p.opt("PrivateIpAddress").map(str::to_string),
                }
            }
            "DisassociateAddress" => {
                let address = match (p.opt("AssociationId"), p.opt("PublicIp")) {
                    (Some(a), None) => {
                        let id =
                            a.strip_prefix(ASSOC)
                                .filter(|s| !s.is_empty())
                                .ok_or_else(|| {
                                    Ec2Error::not_found(
                                        "InvalidAssociationID.NotFound",
                                        format!("The association ID '{a}' does not exist"),
                                    )
                                })?;
                        AddressRef::Allocation(format!("{ALLOC}{id}"))
                    }
                    (None, Some(ip)) => AddressRef::PublicIp(ip.to_string()),
                    (Some(_), Some(_)) => {
                        return Err(Ec2Error::combination(
                            "give AssociationId or PublicIp, not both",
                        ))
                    }
                    (None, None) => return Err(Ec2Error::missing("AssociationId")),
                };
                Op::DisassociateAddress { address }
            }
            "ReleaseAddress" => {
                p.opt("NetworkBorderGroup");
                Op::ReleaseAddress {
                    address: address_ref(p)?,
                }
            }
            "DescribeAddresses" => Op::DescribeAddresses {
                ids: p.list("AllocationId")?,
                ips: p.list("PublicIp")?,
                filters: p.filters(ADDRESS_FILTERS, true)?,
            },
            "CreateVpc" => {
                if let Some(t) = p.opt("InstanceTenancy") {
                    if t != "default" {
                        return Err(Ec2Error::invalid(format!(
                            "Value ({t}) for parameter InstanceTenancy is invalid. nuage offers 'default' tenancy only."
                        )));
                    }
                }
                Op::CreateVpc {
                    cidr: p.req("CidrBlock")?.to_string(),
                    tags: spec_tags(p.tag_specifications()?, "vpc")?,
                }
            }
            "DeleteVpc" => Op::DeleteVpc {
                id: p.req("VpcId")?.to_string(),
            },
            "DescribeVpcs" => Op::DescribeVpcs {
                ids: p.list("VpcId")?,
                filters: p.filters(VPC_FILTERS, true)?,
                page: Page::parse(p)?,
            },
            "CreateSubnet" => Op::CreateSubnet {
                vpc: p.req("VpcId")?.to_string(),
                cidr: p.req("CidrBlock")?.to_string(),
                zone: p.opt("AvailabilityZone").map(str::to_string),
                tags: spec_tags(p.tag_specifications()?, "subnet")?,
            },
            "DeleteSubnet" => Op::DeleteSubnet {
                id: p.req("SubnetId")?.to_string(),
            },
            "DescribeSubnets" => Op::DescribeSubnets {
                ids: p.list("SubnetId")?,
                filters: p.filters(SUBNET_FILTERS, true)?,
                page: Page::parse(p)?,
            },
            "DescribeNetworkInterfaces" => Op::DescribeNetworkInterfaces {
                ids: p.list("NetworkInterfaceId")?,
                filters: p.filters(ENI_FILTERS, true)?,
                page: Page::parse(p)?,
            },
            "CreateInternetGateway" => Op::CreateInternetGateway {
                tags: spec_tags(p.tag_specifications()?, "internet-gateway")?,
            },
            "AttachInternetGateway" | "DetachInternetGateway" => {
                let igw = p.req("InternetGatewayId")?.to_string();
                let vpc = p.req("VpcId")?.to_string();
                if action.starts_with("Attach") {
                    Op::AttachInternetGateway { igw, vpc }
                } else {
                    Op::DetachInternetGateway { igw, vpc }
                }
            }
            "DeleteInternetGateway" => Op::DeleteInternetGateway {
                igw: p.req("InternetGatewayId")?.to_string(),
            },
            "DescribeInternetGateways" => Op::DescribeInternetGateways {
                ids: p.list("InternetGatewayId")?,
                filters: p.filters(IGW_FILTERS, true)?,
                page: Page::parse(p)?,
            },
            "DescribeRouteTables" => Op::DescribeRouteTables {
                ids: p.list("RouteTableId")?,
                filters: p.filters(RTB_FILTERS, true)?,
                page: Page::parse(p)?,
            },
            "CreateRoute" => Op::CreateRoute {
                table: p.req("RouteTableId")?.to_string(),
                destination: p.req("DestinationCidrBlock")?.to_string(),
                gateway: p.req("GatewayId")?.to_string(),
            },
            "AssociateRouteTable" => Op::AssociateRouteTable {
                table: p.req("RouteTableId")?.to_string(),
                subnet: p.req("SubnetId")?.to_string(),
            },
            _ => return Ok(None),
        }))
    }

    pub fn action(&self) -> &'static str {
        match self {
            Op::CreateSecurityGroup { .. } => "CreateSecurityGroup",
            Op::DescribeSecurityGroups { .. } => "DescribeSecurityGroups",
            Op::DescribeSecurityGroupRules { .. } => "DescribeSecurityGroupRules",
            Op::Authorize {
                direction: Direction::Ingress,
                ..
            } => "AuthorizeSecurityGroupIngress",
            Op::Authorize { .. } => "AuthorizeSecurityGroupEgress",
            Op::Revoke {
                direction: Direction::Ingress,
                ..
            } => "RevokeSecurityGroupIngress",
            Op::Revoke { .. } => "RevokeSecurityGroupEgress",
            Op::DeleteSecurityGroup { .. } => "DeleteSecurityGroup",
            Op::AllocateAddress { .. } => "AllocateAddress",
            Op::AssociateAddress { .. } => "AssociateAddress",
            Op::DisassociateAddress { .. } => "DisassociateAddress",
            Op::ReleaseAddress { .. } => "ReleaseAddress",
            Op::DescribeAddresses { .. } => "DescribeAddresses",
            Op::CreateVpc { .. } => "CreateVpc",
            Op::DeleteVpc { .. } => "DeleteVpc",
            Op::DescribeVpcs { .. } => "DescribeVpcs",
            Op::CreateSubnet { .. } => "CreateSubnet",
            Op::DeleteSubnet { .. } => "DeleteSubnet",
            Op::DescribeSubnets { .. } => "DescribeSubnets",
            Op::DescribeNetworkInterfaces { .. } => "DescribeNetworkInterfaces",
            Op::CreateInternetGateway { .. } => "CreateInternetGateway",
            Op::AttachInternetGateway { .. } => "AttachInternetGateway",
            Op::DetachInternetGateway { .. } => "DetachInternetGateway",
            Op::DeleteInternetGateway { .. } => "DeleteInternetGateway",
            Op::DescribeInternetGateways { .. } => "DescribeInternetGateways",
            Op::DescribeRouteTables { .. } => "DescribeRouteTables",
            Op::CreateRoute { .. } => "CreateRoute",
            Op::AssociateRouteTable { .. } => "AssociateRouteTable",
        }
    }

    pub async fn run(self, ctx: &Ctx<'_>) -> Result<Xml> {
        let action = self.action();
        match self {
            Op::CreateSecurityGroup {
                name,
                description,
                vpc,
                tags,
            } => create_group(ctx, name, description, vpc, tags).await,
            Op::DescribeSecurityGroups {
                ids,
                names,
                filters,
                page,
            } => describe_groups(ctx, ids, names, filters, page).await,
            Op::DescribeSecurityGroupRules { ids, filters, page } => {
                describe_rules(ctx, ids, filters, page).await
            }
            Op::Authorize {
                direction,
                group,
                perms,
            } => authorize(ctx, action, direction, group, perms).await,
            Op::Revoke {
                direction,
                group,
                perms,
                rule_ids,
            } => revoke(ctx, action, direction, group, perms, rule_ids).await,
            Op::DeleteSecurityGroup { group } => {
                let id = group_id(ctx, &group).await?;
                ctx.core
                    .network
                    .delete_security_group(ctx.principal, &id)
                    .await?;
                Ok(returns_true(ctx, action))
            }
            Op::AllocateAddress { tags } => allocate(ctx, tags).await,
            Op::AssociateAddress {
                address,
                target,
                private_ip,
            } => associate(ctx, address, target, private_ip).await,
            Op::DisassociateAddress { address } => {
                let id = allocation_id(ctx, &address).await?;
                let f = ctx.core.network.get_floating_ip(ctx.principal, &id).await?;
                if f.port_id.is_none() {
                    return Err(Ec2Error::not_found(
                        "InvalidAssociationID.NotFound",
                        format!("The address {} is not associated", f.floating_ip_address),
                    ));
                }
                ctx.core
                    .network
                    .disassociate_floating_ip(ctx.principal, &id)
                    .await?;
                Ok(returns_true(ctx, action))
            }
            Op::ReleaseAddress { address } => {
                let id = allocation_id(ctx, &address).await?;
                ctx.core
                    .network
                    .release_floating_ip(ctx.principal, &id)
                    .await?;
                Ok(returns_true(ctx, action))
            }
            Op::DescribeAddresses { ids, ips, filters } => {
                describe_addresses(ctx, ids, ips, filters).await
            }
            Op::CreateVpc { cidr, tags } => create_vpc(ctx, cidr, tags).await,
            Op::DeleteVpc { id } => {
                let n = own_vpc(ctx, &id).await?;
                ctx.core
                    .network
                    .delete_network(ctx.principal, &n.id)
                    .await?;
                Ok(returns_true(ctx, action))
            }
            Op::DescribeVpcs { ids, filters, page } => describe_vpcs(ctx, ids, filters, page).await,
            Op::CreateSubnet {
                vpc,
                cidr,
                zone,
                tags,
            } => create_subnet(ctx, vpc, cidr, zone, tags).await,
            Op::DeleteSubnet { id } => {
                let s = own_subnet(ctx, &id).await?;
                ctx.core.network.delete_subnet(ctx.principal, &s.id).await?;
                Ok(returns_true(ctx, action))
            }
            Op::DescribeSubnets { ids, filters, page } => {
                describe_subnets(ctx, ids, filters, page).await
            }
            Op::DescribeNetworkInterfaces { ids, filters, page } => {
                describe_interfaces(ctx, ids, filters, page).await
            }
            Op::CreateInternetGateway { tags } => create_gateway(ctx, tags).await,
            Op::AttachInternetGateway { igw, vpc } => {
                attach_gateway(ctx, &igw, &vpc).await?;
                Ok(returns_true(ctx, action))
            }
            Op::DetachInternetGateway { igw, vpc } => {
                detach_gateway(ctx, &igw, &vpc).await?;
                Ok(returns_true(ctx, action))
            }
            Op::DeleteInternetGateway { igw } => {
                let r = gateway(ctx, &igw).await?;
                ctx.core.network.delete_router(ctx.principal, &r.id).await?;
                Ok(returns_true(ctx, action))
            }
            Op::DescribeInternetGateways { ids, filters, page } => {
                describe_gateways(ctx, ids, filters, page).await
            }
            Op::DescribeRouteTables { ids, filters, page } => {
                describe_route_tables(ctx, ids, filters, page).await
            }
            Op::CreateRoute {
                table,
                destination,
                gateway,
            } => {
                create_route(ctx, &table, &destination, &gateway).await?;
                Ok(returns_true(ctx, action))
            }
            Op::AssociateRouteTable { table, subnet } => {
                let vpc = table_vpc(ctx, &table).await?;
                let s = own_subnet(ctx, &subnet).await?;
                if s.network_id != vpc.id {
                    return Err(Ec2Error::invalid(format!(
                        "the route table {table} and the subnet {subnet} belong to different VPCs"
                    )));
                }
                let mut x = ctx.xml(action);
                x.text("associationId", &format!("{RTBASSOC}{}", id_tail(&s.id)))
                    .open("associationState")
                    .text("state", "associated")
                    .close("associationState");
                Ok(x)
            }
        }
    }
}

fn returns_true(ctx: &Ctx<'_>, action: &str) -> Xml {
    let mut x = ctx.xml(action);
    x.bool("return", true);
    x
}

/// Sets the tags a create call's `TagSpecification` asked for.
async fn put_tags(ctx: &Ctx<'_>, id: &str, tags: &BTreeMap<String, String>) -> Result<()> {
    if !tags.is_empty() {
        ctx.core
            .network
            .set_tags(ctx.principal, id, tags, &[])
            .await?;
    }
    Ok(())
}

fn group_not_found(what: &str) -> Ec2Error {
    Ec2Error::not_found(
        "InvalidGroup.NotFound",
        format!("The security group '{what}' does not exist"),
    )
}

/// The caller's project's groups (its `default` one made at first use,
/// as every EC2 account has it).
async fn own_groups(ctx: &Ctx<'_>) -> Result<Vec<SecurityGroup>> {
    ctx.core
        .network
        .ensure_default_network(ctx.principal)
        .await?;
    Ok(ctx
        .core
        .network
        .list_security_groups(ctx.principal, false)
        .await?
        .into_iter()
        .filter(|g| g.project_id == ctx.principal.project_id)
        .collect())
}

/// The id of the group `g` names; a name is looked up in the caller's
/// project.
async fn group_id(ctx: &Ctx<'_>, g: &GroupRef) -> Result<String> {
    match g {
        GroupRef::Id(id) => Ok(id.clone()),
        GroupRef::Name(n) => own_groups(ctx)
            .await?
            .into_iter()
            .find(|g| &g.name == n)
            .map(|g| g.id)
            .ok_or_else(|| group_not_found(n)),
    }
}

/// The project's default VPC, if made.
async fn default_vpc(ctx: &Ctx<'_>) -> Result<Option<String>> {
    Ok(own_vpcs(ctx)
        .await?
        .into_iter()
        .find(|n| n.is_default)
        .map(|n| n.id))
}

async fn create_group(
    ctx: &Ctx<'_>,
    name: String,
    description: String,
    vpc: Option<String>,
    tags: BTreeMap<String, String>,
) -> Result<Xml> {
    if let Some(v) = &vpc {
        own_vpc(ctx, v).await?;
    }
    let g = ctx
        .core
        .network
        .create_security_group(ctx.principal, NewSecurityGroup { name, description })
        .await
        .map_err(|e| match e {
            // "default" is the project's own group, made for it.
            NetworkError::Invalid(m) if m.contains("reserved") => Ec2Error::new(
                400,
                "InvalidGroup.Reserved",
                "The security group 'default' is reserved",
            ),
            e => e.into(),
        })?;
    put_tags(ctx, &g.id, &tags).await?;
    let mut x = ctx.xml("CreateSecurityGroup");
    x.bool("return", true).text("groupId", &g.id);
    x.tag_set(&tags);
    Ok(x)
}

/// EC2's spelling of a rule's protocol and ports.
fn ec2_protocol(r: &SecurityGroupRule) -> &'static str {
    match r.protocol {
        Protocol::All => "-1",
        p => p.as_str(),
    }
}

fn ec2_ports(r: &SecurityGroupRule) -> Option<(i64, i64)> {
    let v = |p: Option<u16>, none: i64| p.map_or(none, i64::from);
    match r.protocol {
        Protocol::All => None,
        Protocol::Icmp => Some((v(r.port_range_min, -1), v(r.port_range_max, -1))),
        Protocol::Tcp | Protocol::Udp => Some((v(r.port_range_min, 0), v(r.port_range_max, 65535))),
    }
}

/// What EC2 groups a direction's rules by: protocol and port range.
type Shape<'a> = (&'a str, Option<(i64, i64)>);

/// `ipPermissions` (or `ipPermissionsEgress`): the rules of one direction
/// grouped by protocol and ports, as EC2 shows them.
fn write_permissions(x: &mut Xml, name: &str, owner: &str, rules: Vec<&SecurityGroupRule>) {
    let mut grouped: BTreeMap<Shape<'_>, Vec<&SecurityGroupRule>> = BTreeMap::new();
    for r in rules {
        grouped
            .entry((ec2_protocol(r), ec2_ports(r)))
            .or_default()
            .push(r);
    }
    x.items(name, grouped, |x, ((proto, ports), rules)| {
        x.text("ipProtocol", proto);
        if let Some((from, to)) = ports {
            x.display("fromPort", from).display("toPort", to);
        }
        x.items(
            "groups",
            rules.iter().filter(|r| r.remote_group_id.is_some()),
            |x, r| {
                x.text("userId", owner)
                    .opt("groupId", r.remote_group_id.as_deref());
                if !r.description.is_empty() {
                    x.text("description", &r.description);
                }
            },
        );
        x.items(
            "ipRanges",
            rules.iter().filter(|r| r.remote_group_id.is_none()),
            |x, r| {
                x.text("cidrIp", r.remote_cidr.as_deref().unwrap_or("0.0.0.0/0"));
                if !r.description.is_empty() {
                    x.text("description", &r.description);
                }
            },
        );
        x.items("ipv6Ranges", Vec::<()>::new(), |_, ()| {});
        x.items("prefixListIds", Vec::<()>::new(), |_, ()| {});
    });
}

/// A rule's values for `ip-permission.*` filters.
fn rule_field(r: &SecurityGroupRule, field: &str) -> Vec<String> {
    let ports = ec2_ports(r);
    match field {
        "cidr" => r.remote_cidr.iter().cloned().collect(),
        "from-port" => ports.map(|p| p.0.to_string()).into_iter().collect(),
        "to-port" => ports.map(|p| p.1.to_string()).into_iter().collect(),
        "group-id" => r.remote_group_id.iter().cloned().collect(),
        "protocol" => vec![ec2_protocol(r).to_string()],
        _ => vec![],
    }
}

async fn describe_groups(
    ctx: &Ctx<'_>,
    ids: Vec<String>,
    names: Vec<String>,
    filters: Vec<Filter>,
    page: Page,
) -> Result<Xml> {
    let groups = own_groups(ctx).await?;
    for id in &ids {
        if !groups.iter().any(|g| &g.id == id) {
            return Err(group_not_found(id));
        }
    }
    for n in &names {
        if !groups.iter().any(|g| &g.name == n) {
            return Err(group_not_found(n));
        }
    }
    let tags = ctx.core.network.tags(ctx.principal).await?;
    let vpcs: Vec<String> = own_vpcs(ctx).await?.into_iter().map(|n| n.id).collect();
    let vpc = default_vpc(ctx).await?;
    let none = BTreeMap::new();
    let shown: Vec<SecurityGroup> = groups
        .into_iter()
        .filter(|g| {
            (ids.is_empty() || ids.contains(&g.id))
                && (names.is_empty() || names.contains(&g.name))
                && keep(&filters, tags.get(&g.id).unwrap_or(&none), |f| {
                    let dir_rules = |d: Direction, field: &str| -> Vec<String> {
                        g.rules
                            .iter()
                            .filter(|r| r.direction == d)
                            .flat_map(|r| rule_field(r, field))
                            .collect()
                    };
                    match f {
                        "description" => vec![g.description.clone()],
                        "group-id" => vec![g.id.clone()],
                        "group-name" => vec![g.name.clone()],
                        "owner-id" => vec![g.project_id.clone()],
                        // A group serves every network of its project.
                        "vpc-id" => vpcs.clone(),
                        f => match f.strip_prefix("egress.ip-permission.") {
                            Some(field) => dir_rules(Direction::Egress, field),
                            None => f
                                .strip_prefix("ip-permission.")
                                .map(|field| dir_rules(Direction::Ingress, field))
                                .unwrap_or_default(),
                        },
                    }
                })
        })
        .collect();
    let (shown, next) = page.cut(shown, |g| &g.id)?;
    let mut x = ctx.xml("DescribeSecurityGroups");
    x.items("securityGroupInfo", shown, |x, g| {
        x.text("ownerId", &g.project_id)
            .text("groupId", &g.id)
            .text("groupName", &g.name)
            .text("groupDescription", &g.description)
            .opt("vpcId", vpc.as_deref());
        let of = |d: Direction| g.rules.iter().filter(|r| r.direction == d).collect();
        write_permissions(x, "ipPermissions", &g.project_id, of(Direction::Ingress));
        write_permissions(
            x,
            "ipPermissionsEgress",
            &g.project_id,
            of(Direction::Egress),
        );
        x.tag_set(tags.get(&g.id).unwrap_or(&none));
    });
    x.opt("nextToken", next.as_deref());
    Ok(x)
}

/// One rule as `securityGroupRuleSet` shows it.
fn write_rule(x: &mut Xml, owner: &str, r: &SecurityGroupRule, tags: &BTreeMap<String, String>) {
    x.text("securityGroupRuleId", &r.id)
        .text("groupId", &r.group_id)
        .text("groupOwnerId", owner)
        .bool("isEgress", r.direction == Direction::Egress)
        .text("ipProtocol", ec2_protocol(r));
    let (from, to) = ec2_ports(r).unwrap_or((-1, -1));
    x.display("fromPort", from).display("toPort", to);
    match &r.remote_group_id {
        Some(g) => {
            x.open("referencedGroupInfo")
                .text("groupId", g)
                .text("userId", owner)
                .close("referencedGroupInfo");
        }
        None => {
            x.opt("cidrIpv4", r.remote_cidr.as_deref());
        }
    }
    if !r.description.is_empty() {
        x.text("description", &r.description);
    }
    x.tag_set(tags);
}

async fn describe_rules(
    ctx: &Ctx<'_>,
    ids: Vec<String>,
    filters: Vec<Filter>,
    page: Page,
) -> Result<Xml> {
    let groups = own_groups(ctx).await?;
    let rules: Vec<(String, SecurityGroupRule)> = groups
        .into_iter()
        .flat_map(|g| {
            let owner = g.project_id;
            g.rules.into_iter().map(move |r| (owner.clone(), r))
        })
        .collect();
    for id in &ids {
        if !rules.iter().any(|(_, r)| &r.id == id) {
            return Err(Ec2Error::not_found(
                "InvalidSecurityGroupRuleId.NotFound",
                format!("The security group rule ID '{id}' does not exist"),
            ));
        }
    }
    let tags = ctx.core.network.tags(ctx.principal).await?;
    let none = BTreeMap::new();
    let shown: Vec<_> = rules
        .into_iter()
        .filter(|(_, r)| {
            (ids.is_empty() || ids.contains(&r.id))
                && keep(&filters, tags.get(&r.id).unwrap_or(&none), |f| match f {
                    "group-id" => vec![r.group_id.clone()],
                    "security-group-rule-id" => vec![r.id.clone()],
                    _ => vec![],
                })
        })
        .collect();
    let (shown, next) = page.cut(shown, |(_, r)| &r.id)?;
    let mut x = ctx.xml("DescribeSecurityGroupRules");
    x.items("securityGroupRuleSet", shown, |x, (owner, r)| {
        write_rule(x, &owner, &r, tags.get(&r.id).unwrap_or(&none));
    });
    x.opt("nextToken", next.as_deref());
    Ok(x)
}

/// The service's rules for `perms`, peer names resolved to ids.
async fn new_rules(
    ctx: &Ctx<'_>,
    direction: Direction,
    perms: Vec<Permission>,
) -> Result<Vec<NewRule>> {
    let mut out = Vec::new();
    for perm in perms {
        // EC2 spells "every port" -1 or 0-65535; the service, no range.
        let (from, to) = match (perm.protocol.as_str(), perm.from, perm.to) {
            ("tcp" | "6" | "udp" | "17", Some(0), Some(65535)) => (None, None),
            (_, f, t) => (f, t),
        };
        let base = NewRule {
            direction,
            protocol: perm.protocol.clone(),
            port_range_min: from,
            port_range_max: to,
            remote_cidr: None,
            remote_group_id: None,
            description: String::new(),
        };
        for (cidr, description) in perm.cidrs {
            out.push(NewRule {
                remote_cidr: Some(cidr),
                description,
                ..base.clone()
            });
        }
        for (g, description) in perm.groups {
            out.push(NewRule {
                remote_group_id: Some(group_id(ctx, &g).await?),
                description,
                ..base.clone()
            });
        }
    }
    Ok(out)
}

/// Adds every rule or none: the service does it in one transaction, and
/// a duplicate is its `AlreadyExists` (`InvalidPermission.Duplicate`).
async fn authorize(
    ctx: &Ctx<'_>,
    action: &str,
    direction: Direction,
    group: GroupRef,
    perms: Vec<Permission>,
) -> Result<Xml> {
    let id = group_id(ctx, &group).await?;
    let rules = new_rules(ctx, direction, perms).await?;
    let added = ctx
        .core
        .network
        .add_security_group_rules(ctx.principal, &id, rules)
        .await?;
    let owner = ctx.principal.project_id.clone();
    let none = BTreeMap::new();
    let mut x = ctx.xml(action);
    x.bool("return", true);
    x.items("securityGroupRuleSet", added, |x, r| {
        write_rule(x, &owner, &r, &none);
    });
    Ok(x)
}

/// Removes every rule named, by content or by id, or none (one service
/// transaction). A rule id that matches nothing is EC2's
/// `InvalidSecurityGroupRuleId.NotFound`, a permission
/// `InvalidPermission.NotFound`.
async fn revoke(
    ctx: &Ctx<'_>,
    action: &str,
    direction: Direction,
    group: GroupRef,
    perms: Vec<Permission>,
    rule_ids: Vec<String>,
) -> Result<Xml> {
    let id = group_id(ctx, &group).await?;
    let mut wanted: Vec<RuleMatch> = new_rules(ctx, direction, perms)
        .await?
        .into_iter()
        .map(RuleMatch::Content)
        .collect();
    wanted.extend(rule_ids.iter().map(|r| RuleMatch::Id {
        id: r.clone(),
        direction,
    }));
    ctx.core
        .network
        .remove_security_group_rules(ctx.principal, &id, wanted)
        .await
        .map_err(|e| match e {
            NetworkError::NotFound {
                kind: Resource::SecurityGroupRule,
                id: r,
            } if rule_ids.contains(&r) => Ec2Error::not_found(
                "InvalidSecurityGroupRuleId.NotFound",
                format!("The security group rule ID '{r}' does not exist in group {id}"),
            ),
            NetworkError::NotFound {
                kind: Resource::SecurityGroupRule,
                ..
            } => Ec2Error::not_found(
                "InvalidPermission.NotFound",
                "The specified rule does not exist in this security group.",
            ),
            e => e.into(),
        })?;
    Ok(returns_true(ctx, action))
}

// --------------------------------------------------------------- addresses

fn address_not_found(ip: &str) -> Ec2Error {
    Ec2Error::not_found(
        "InvalidAddress.NotFound",
        format!("The address '{ip}' does not belong to you."),
    )
}

async fn allocation_id(ctx: &Ctx<'_>, a: &AddressRef) -> Result<String> {
    match a {
        AddressRef::Allocation(id) => Ok(id.clone()),
        AddressRef::PublicIp(ip) => ctx
            .core
            .network
            .list_floating_ips(ctx.principal, false)
            .await?
            .into_iter()
            .find(|f| &f.floating_ip_address == ip && f.project_id == ctx.principal.project_id)
            .map(|f| f.id)
            .ok_or_else(|| address_not_found(ip)),
    }
}

fn association_id(f: &FloatingIp) -> Option<String> {
    f.port_id.as_ref()?;
    Some(format!(
        "{ASSOC}{}",
        f.id.strip_prefix(ALLOC).unwrap_or(&f.id)
    ))
}

async fn allocate(ctx: &Ctx<'_>, tags: BTreeMap<String, String>) -> Result<Xml> {
    let f = ctx
        .core
        .network
        .allocate_floating_ip(ctx.principal, None)
        .await?;
    put_tags(ctx, &f.id, &tags).await?;
    let mut x = ctx.xml("AllocateAddress");
    x.text("publicIp", &f.floating_ip_address)
        .text("domain", "vpc")
        .text("allocationId", &f.id)
        .text("networkBorderGroup", &ctx.core.region);
    Ok(x)
}

async fn associate(
    ctx: &Ctx<'_>,
    address: AddressRef,
    target: Target,
    private_ip: Option<String>,
) -> Result<Xml> {
    let id = allocation_id(ctx, &address).await?;
    let port = match target {
        Target::Interface(eni) => eni,
        Target::Instance(instance) => ctx
            .core
            .network
            .list_ports(ctx.principal, Some(&instance), false)
            .await?
            .into_iter()
            .find(|p| {
                p.device_owner == device_owner::INSTANCE
                    && private_ip
                        .as_ref()
                        .is_none_or(|ip| p.fixed_ips.iter().any(|f| &f.ip_address == ip))
            })
            .map(|p| p.id)
            .ok_or_else(|| {
                Ec2Error::not_found(
                    "InvalidInstanceID.NotFound",
                    format!(
                        "The instance ID '{instance}' does not exist or has no network interface"
                    ),
                )
            })?,
    };
    let f = ctx
        .core
        .network
        .associate_floating_ip(ctx.principal, &id, &port, private_ip.as_deref())
        .await?;
    let mut x = ctx.xml("AssociateAddress");
    x.bool("return", true)
        .opt("associationId", association_id(&f).as_deref());
    Ok(x)
}

async fn describe_addresses(
    ctx: &Ctx<'_>,
    ids: Vec<String>,
    ips: Vec<String>,
    filters: Vec<Filter>,
) -> Result<Xml> {
    let p = ctx.principal;
    let fips: Vec<FloatingIp> = ctx
        .core
        .network
        .list_floating_ips(p, false)
        .await?
        .into_iter()
        .filter(|f| f.project_id == p.project_id)
        .collect();
    for id in &ids {
        if !fips.iter().any(|f| &f.id == id) {
            return Err(Ec2Error::not_found(
                "InvalidAllocationID.NotFound",
                format!("The allocation ID '{id}' does not exist"),
            ));
        }
    }
    for ip in &ips {
        if !fips.iter().any(|f| &f.floating_ip_address == ip) {
            return Err(address_not_found(ip));
        }
    }
    let devices: BTreeMap<String, String> = ctx
        .core
        .network
        .list_ports(p, None, false)
        .await?
        .into_iter()
        .filter(|x| x.device_owner == device_owner::INSTANCE)
        .map(|x| (x.id, x.device_id))
        .collect();
    let tags = ctx.core.network.tags(p).await?;
    let none = BTreeMap::new();
    let region = &ctx.core.region;
    let shown = fips.into_iter().filter(|f| {
        (ids.is_empty() || ids.contains(&f.id))
            && (ips.is_empty() || ips.contains(&f.floating_ip_address))
            && keep(&filters, tags.get(&f.id).unwrap_or(&none), |name| {
                let instance = f.port_id.as_ref().and_then(|x| devices.get(x)).cloned();
                match name {
                    "allocation-id" => vec![f.id.clone()],
                    "association-id" => association_id(f).into_iter().collect(),
                    "domain" => vec!["vpc".into()],
                    "instance-id" => instance.into_iter().collect(),
                    "network-border-group" => vec![region.clone()],
                    "network-interface-id" => f.port_id.iter().cloned().collect(),
                    "network-interface-owner-id" => f
                        .port_id
                        .as_ref()
                        .map(|_| f.project_id.clone())
                        .into_iter()
                        .collect(),
                    "private-ip-address" => f.fixed_ip_address.iter().cloned().collect(),
                    "public-ip" => vec![f.floating_ip_address.clone()],
                    _ => vec![],
                }
            })
    });
    let mut x = ctx.xml("DescribeAddresses");
    x.items("addressesSet", shown, |x, f| {
        x.text("publicIp", &f.floating_ip_address)
            .text("allocationId", &f.id)
            .text("domain", "vpc");
        if let Some(port) = &f.port_id {
            x.opt("instanceId", devices.get(port).map(String::as_str))
                .opt("associationId", association_id(&f).as_deref())
                .text("networkInterfaceId", port)
                .text("networkInterfaceOwnerId", &f.project_id)
                .opt("privateIpAddress", f.fixed_ip_address.as_deref());
        }
        x.tag_set(tags.get(&f.id).unwrap_or(&none))
            .text("networkBorderGroup", region);
    });
    Ok(x)
}

// -------------------------------------------------------- VPCs and subnets

fn vpc_not_found(id: &str) -> Ec2Error {
    Ec2Error::not_found(
        "InvalidVpcID.NotFound",
        format!("The vpc ID '{id}' does not exist"),
    )
}

fn subnet_not_found(id: &str) -> Ec2Error {
    Ec2Error::not_found(
        "InvalidSubnetID.NotFound",
        format!("The subnet ID '{id}' does not exist"),
    )
}

/// The caller's project's own networks: its VPCs (the operator's external
/// and shared networks are not).
async fn own_vpcs(ctx: &Ctx<'_>) -> Result<Vec<Network>> {
    Ok(ctx
        .core
        .network
        .list_networks(ctx.principal, false)
        .await?
        .into_iter()
        .filter(|n| n.project_id == ctx.principal.project_id && !n.external)
        .collect())
}

async fn own_vpc(ctx: &Ctx<'_>, id: &str) -> Result<Network> {
    own_vpcs(ctx)
        .await?
        .into_iter()
        .find(|n| n.id == id)
        .ok_or_else(|| vpc_not_found(id))
}

async fn own_subnets(ctx: &Ctx<'_>) -> Result<Vec<Subnet>> {
    Ok(ctx
        .core
        .network
        .list_subnets(ctx.principal, None)
        .await?
        .into_iter()
        .filter(|s| s.project_id == ctx.principal.project_id)
        .collect())
}

async fn own_subnet(ctx: &Ctx<'_>, id: &str) -> Result<Subnet> {
    own_subnets(ctx)
        .await?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| subnet_not_found(id))
}

fn write_vpc(x: &mut Xml, n: &Network, tags: &BTreeMap<String, String>) {
    let cidr = n.cidr.as_deref().unwrap_or("0.0.0.0/0");
    x.text("vpcId", &n.id)
        .text("ownerId", &n.project_id)
        .text("state", "available")
        .text("cidrBlock", cidr);
    x.items("cidrBlockAssociationSet", [()], |x, ()| {
        x.text("cidrBlock", cidr)
            .text(
                "associationId",
                &format!("vpc-cidr-assoc-{}", id_tail(&n.id)),
            )
            .open("cidrBlockState")
            .text("state", "associated")
            .close("cidrBlockState");
    });
    x.text("dhcpOptionsId", "default")
        .text("instanceTenancy", "default")
        .bool("isDefault", n.is_default);
    x.tag_set(tags);
}

fn id_tail(id: &str) -> &str {
    id.split_once('-').map_or(id, |(_, t)| t)
}

async fn create_vpc(ctx: &Ctx<'_>, cidr: String, tags: BTreeMap<String, String>) -> Result<Xml> {
    let n = ctx
        .core
        .network
        .create_network(
            ctx.principal,
            NewNetwork {
                name: tags.get("Name").cloned().unwrap_or_default(),
                cidr: Some(cidr),
                ..NewNetwork::default()
            },
        )
        .await
        .map_err(|e| match e {
            NetworkError::InvalidCidr { .. } => {
                Ec2Error::new(400, "InvalidVpc.Range", e.to_string())
            }
            e => e.into(),
        })?;
    put_tags(ctx, &n.id, &tags).await?;
    let mut x = ctx.xml("CreateVpc");
    x.open("vpc");
    write_vpc(&mut x, &n, &tags);
    x.close("vpc");
    Ok(x)
}

async fn describe_vpcs(
    ctx: &Ctx<'_>,
    ids: Vec<String>,
    filters: Vec<Filter>,
    page: Page,
) -> Result<Xml> {
    ctx.core
        .network
        .ensure_default_network(ctx.principal)
        .await?;
    let vpcs = own_vpcs(ctx).await?;
    for id in &ids {
        if !vpcs.iter().any(|n| &n.id == id) {
            return Err(vpc_not_found(id));
        }
    }
    let tags = ctx.core.network.tags(ctx.principal).await?;
    let none = BTreeMap::new();
    let shown: Vec<Network> = vpcs
        .into_iter()
        .filter(|n| {
            (ids.is_empty() || ids.contains(&n.id))
                && keep(&filters, tags.get(&n.id).unwrap_or(&none), |f| match f {
                    "cidr" | "cidr-block-association.cidr-block" => {
                        n.cidr.iter().cloned().collect()
                    }
                    "dhcp-options-id" => vec!["default".into()],
                    "is-default" => vec![n.is_default.to_string()],
                    "owner-id" => vec![n.project_id.clone()],
                    "state" => vec!["available".into()],
                    "vpc-id" => vec![n.id.clone()],
                    _ => vec![],
                })
        })
        .collect();
    let (shown, next) = page.cut(shown, |n| &n.id)?;
    let mut x = ctx.xml("DescribeVpcs");
    x.items("vpcSet", shown, |x, n| {
        write_vpc(x, &n, tags.get(&n.id).unwrap_or(&none));
    });
    x.opt("nextToken", next.as_deref());
    Ok(x)
}

/// The zone a subnet is shown in: nuage's subnets span every zone of the
/// region (ADR 26), so the first zone stands for them.
async fn subnet_zone(ctx: &Ctx<'_>) -> Result<String> {
    let zones = ctx.core.compute.availability_zones(ctx.principal).await?;
    Ok(zones
        .into_iter()
        .next()
        .map_or_else(|| format!("{}a", ctx.core.region), |z| z.name))
}

fn write_subnet(
    x: &mut Xml,
    s: &Subnet,
    default: bool,
    zone: &str,
    tags: &BTreeMap<String, String>,
) {
    x.text("subnetId", &s.id)
        .text("subnetArn", &format!("arn:aws:ec2:::subnet/{}", s.id))
        .text("state", "available")
        .text("vpcId", &s.network_id)
        .text("ownerId", &s.project_id)
        .text("cidrBlock", &s.cidr)
        .text("availabilityZone", zone)
        .bool("defaultForAz", default)
        .bool("mapPublicIpOnLaunch", false)
        .bool("assignIpv6AddressOnCreation", false);
    x.items("ipv6CidrBlockAssociationSet", Vec::<()>::new(), |_, ()| {});
    x.tag_set(tags);
}

async fn create_subnet(
    ctx: &Ctx<'_>,
    vpc: String,
    cidr: String,
    zone: Option<String>,
    tags: BTreeMap<String, String>,
) -> Result<Xml> {
    let zones = ctx.core.compute.availability_zones(ctx.principal).await?;
    if let Some(z) = &zone {
        if !zones.iter().any(|x| &x.name == z) {
            return Err(Ec2Error::invalid(format!(
                "Value ({z}) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: {}.",
                zones.iter().map(|z| z.name.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let n = own_vpc(ctx, &vpc).await?;
    let s = ctx
        .core
        .network
        .create_subnet(
            ctx.principal,
            NewSubnet {
                network_id: n.id.clone(),
                name: tags.get("Name").cloned().unwrap_or_default(),
                cidr,
                ..NewSubnet::default()
            },
        )
        .await
        .map_err(|e| match e {
            NetworkError::OverlappingCidr { .. } => {
                Ec2Error::new(400, "InvalidSubnet.Conflict", e.to_string())
            }
            e => e.into(),
        })?;
    put_tags(ctx, &s.id, &tags).await?;
    let zone = match zone {
        Some(z) => z,
        None => subnet_zone(ctx).await?,
    };
    let mut x = ctx.xml("CreateSubnet");
    x.open("subnet");
    write_subnet(&mut x, &s, false, &zone, &tags);
    x.close("subnet");
    Ok(x)
}

async fn describe_subnets(
    ctx: &Ctx<'_>,
    ids: Vec<String>,
    filters: Vec<Filter>,
    page: Page,
) -> Result<Xml> {
    ctx.core
        .network
        .ensure_default_network(ctx.principal)
        .await?;
    let defaults: Vec<String> = own_vpcs(ctx)
        .await?
        .into_iter()
        .filter(|n| n.is_default)
        .map(|n| n.id)
        .collect();
    let subnets = own_subnets(ctx).await?;
    for id in &ids {
        if !subnets.iter().any(|s| &s.id == id) {
            return Err(subnet_not_found(id));
        }
    }
    let zone = subnet_zone(ctx).await?;
    let tags = ctx.core.network.tags(ctx.principal).await?;
    let none = BTreeMap::new();
    let shown: Vec<Subnet> = subnets
        .into_iter()
        .filter(|s| {
            (ids.is_empty() || ids.contains(&s.id))
                && keep(&filters, tags.get(&s.id).unwrap_or(&none), |f| match f {
                    "availability-zone" => vec![zone.clone()],
                    "cidr" | "cidr-block" | "cidrBlock" => vec![s.cidr.clone()],
                    "default-for-az" => vec![defaults.contains(&s.network_id).to_string()],
                    "owner-id" => vec![s.project_id.clone()],
                    "state" => vec!["available".into()],
                    "subnet-id" => vec![s.id.clone()],
                    "vpc-id" => vec![s.network_id.clone()],
                    _ => vec![],
                })
        })
        .collect();
    let (shown, next) = page.cut(shown, |s| &s.id)?;
    let mut x = ctx.xml("DescribeSubnets");
    x.items("subnetSet", shown, |x, s| {
        let default = defaults.contains(&s.network_id);
        write_subnet(x, &s, default, &zone, tags.get(&s.id).unwrap_or(&none));
    });
    x.opt("nextToken", next.as_deref());
    Ok(x)
}

// ------------------------------------------------------ network interfaces

async fn describe_interfaces(
    ctx: &Ctx<'_>,
    ids: Vec<String>,
    filters: Vec<Filter>,
    page: Page,
) -> Result<Xml> {
    let p = ctx.principal;
    // A router's or an address's port is the service's, not an interface
    // the project manages (EC2 shows no such thing).
    let ports: Vec<Port> = ctx
        .core
        .network
        .list_ports(p, None, false)
        .await?
        .into_iter()
        .filter(|x| !device_owner::is_service(&x.device_owner))
        .collect();
    for id in &ids {
        if !ports.iter().any(|x| &x.id == id) {
            return Err(Ec2Error::not_found(
                "InvalidNetworkInterfaceID.NotFound",
                format!("The networkInterface ID '{id}' does not exist"),
            ));
        }
    }
    let fips: BTreeMap<String, FloatingIp> = ctx
        .core
        .network
        .list_floating_ips(p, false)
        .await?
        .into_iter()
        .filter_map(|f| Some((f.port_id.clone()?, f)))
        .collect();
    let group_names: BTreeMap<String, String> = own_groups(ctx)
        .await?
        .into_iter()
        .map(|g| (g.id, g.name))
        .collect();
    let zone = subnet_zone(ctx).await?;
    let tags = ctx.core.network.tags(p).await?;
    let none = BTreeMap::new();
    let attached = |x: &Port| x.device_owner == device_owner::INSTANCE && !x.device_id.is_empty();
    let shown: Vec<Port> = ports
        .into_iter()
        .filter(|x| {
            (ids.is_empty() || ids.contains(&x.id))
                && keep(&filters, tags.get(&x.id).unwrap_or(&none), |f| match f {
                    "attachment.instance-id" => attached(x)
                        .then(|| x.device_id.clone())
                        .into_iter()
                        .collect(),
                    "group-id" => x.security_groups.clone(),
                    "mac-address" => vec![x.mac_address.clone()],
                    "network-interface-id" => vec![x.id.clone()],
                    "owner-id" => vec![x.project_id.clone()],
                    "private-ip-address" => {
                        x.fixed_ips.iter().map(|f| f.ip_address.clone()).collect()
                    }
                    "status" => vec![if attached(x) { "in-use" } else { "available" }.into()],
                    "subnet-id" => x.fixed_ips.iter().map(|f| f.subnet_id.clone()).collect(),
                    "vpc-id" => vec![x.network_id.clone()],
                    _ => vec![],
                })
        })
        .collect();
    let (shown, next) = page.cut(shown, |x| &x.id)?;
    let mut x = ctx.xml("DescribeNetworkInterfaces");
    x.items("networkInterfaceSet", shown, |x, port| {
        let first = port.fixed_ips.first();
        x.text("networkInterfaceId", &port.id)
            .opt("subnetId", first.map(|f| f.subnet_id.as_str()))
            .text("vpcId", &port.network_id)
            .text("availabilityZone", &zone)
            .text("description", &port.name)
            .text("ownerId", &port.project_id)
            .text("requesterManaged", "false")
            .text(
                "status",
                if attached(&port) {
                    "in-use"
                } else {
                    "available"
                },
            )
            .text("macAddress", &port.mac_address)
            .opt("privateIpAddress", first.map(|f| f.ip_address.as_str()))
            .bool("sourceDestCheck", true)
            .text("interfaceType", "interface");
        x.items("groupSet", &port.security_groups, |x, g| {
            x.text("groupId", g)
                .opt("groupName", group_names.get(g).map(String::as_str));
        });
        if attached(&port) {
            x.open("attachment")
                .text("attachmentId", &format!("eni-attach-{}", id_tail(&port.id)))
                .text("instanceId", &port.device_id)
                .text("instanceOwnerId", &port.project_id)
                .display("deviceIndex", 0)
                .text("status", "attached")
                .bool("deleteOnTermination", true)
                .close("attachment");
        }
        let fip = fips.get(&port.id);
        if let Some(f) = fip {
            x.open("association")
                .text("publicIp", &f.floating_ip_address)
                .text("ipOwnerId", &f.project_id)
                .text("allocationId", &f.id)
                .opt("associationId", association_id(f).as_deref())
                .close("association");
        }
        x.tag_set(tags.get(&port.id).unwrap_or(&none));
        x.items("privateIpAddressesSet", &port.fixed_ips, |x, f| {
            x.text("privateIpAddress", &f.ip_address)
                .bool("primary", first.is_some_and(|p| p == f));
        });
    });
    x.opt("nextToken", next.as_deref());
    Ok(x)
}

// ------------------------------------------ internet gateways, route tables

/// A gateway's EC2 id is its router's under `igw-`; a VPC's main route
/// table is the VPC's id under `rtb-` (ADR 26).
const IGW: &str = "igw-";
const RTB: &str = "rtb-";
const RTBASSOC: &str = "rtbassoc-";
const ROUTER: &str = "rtr-";

fn igw_not_found(id: &str) -> Ec2Error {
    Ec2Error::not_found(
        "InvalidInternetGatewayID.NotFound",
        format!("The internetGateway ID '{id}' does not exist"),
    )
}

fn igw_id(r: &Router) -> String {
    format!("{IGW}{}", id_tail(&r.id))
}

/// The caller's router an internet gateway id names (one with a gateway
/// on an external network).
async fn gateway(ctx: &Ctx<'_>, igw: &str) -> Result<Router> {
    let tail = igw
        .strip_prefix(IGW)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| igw_not_found(igw))?;
    let r = ctx
        .core
        .network
        .get_router(ctx.principal, &format!("{ROUTER}{tail}"))
        .await
        .map_err(|e| match e {
            NetworkError::NotFound { .. } => igw_not_found(igw),
            e => e.into(),
        })?;
    if r.external_network_id.is_none() || r.project_id != ctx.principal.project_id {
        return Err(igw_not_found(igw));
    }
    Ok(r)
}

/// The caller's project's routers that are internet gateways.
async fn gateways(ctx: &Ctx<'_>) -> Result<Vec<Router>> {
    Ok(ctx
        .core
        .network
        .list_routers(ctx.principal, false)
        .await?
        .into_iter()
        .filter(|r| r.project_id == ctx.principal.project_id && r.external_network_id.is_some())
        .collect())
}

/// The VPCs a router joins: the networks of its interfaces' subnets.
fn attached_vpcs(r: &Router, subnets: &[Subnet]) -> Vec<String> {
    let mut out: Vec<String> = r
        .interfaces
        .iter()
        .filter_map(|i| subnets.iter().find(|s| s.id == i.subnet_id))
        .map(|s| s.network_id.clone())
        .collect();
    out.sort();
    out.dedup();
    out
}

async fn create_gateway(ctx: &Ctx<'_>, tags: BTreeMap<String, String>) -> Result<Xml> {
    let ext = ctx
        .core
        .network
        .list_networks(ctx.principal, false)
        .await?
        .into_iter()
        .find(|n| n.external)
        .ok_or_else(|| {
            Ec2Error::invalid("this cloud has no external network for internet gateways")
        })?;
    let r = ctx
        .core
        .network
        .create_router(
            ctx.principal,
            NewRouter {
                name: tags.get("Name").cloned().unwrap_or_default(),
                external_network_id: Some(ext.id),
            },
        )
        .await?;
    put_tags(ctx, &r.id, &tags).await?;
    let mut x = ctx.xml("CreateInternetGateway");
    x.open("internetGateway")
        .text("internetGatewayId", &igw_id(&r))
        .text("ownerId", &r.project_id);
    x.items("attachmentSet", Vec::<()>::new(), |_, ()| {});
    x.tag_set(&tags);
    x.close("internetGateway");
    Ok(x)
}

/// Joins the gateway's router to every subnet of the VPC, or to none (one
/// service transaction).
async fn attach_gateway(ctx: &Ctx<'_>, igw: &str, vpc: &str) -> Result<()> {
    let r = gateway(ctx, igw).await?;
    let n = own_vpc(ctx, vpc).await?;
    ctx.core
        .network
        .attach_router_to_network(ctx.principal, &r.id, &n.id)
        .await
        .map_err(|e| match e {
            NetworkError::InUse {
                kind: Resource::Router,
                ..
            } => Ec2Error::new(
                400,
                "Resource.AlreadyAssociated",
                format!("resource {igw} is already attached to a network"),
            ),
            NetworkError::InUse { .. } | NetworkError::AddressInUse { .. } => Ec2Error::new(
                400,
                "Resource.AlreadyAssociated",
                format!("a subnet of {vpc} is already served by another gateway: {e}"),
            ),
            e => e.into(),
        })?;
    Ok(())
}

/// Takes the gateway's router off every subnet of the VPC, or none (one
/// service transaction).
async fn detach_gateway(ctx: &Ctx<'_>, igw: &str, vpc: &str) -> Result<()> {
    let r = gateway(ctx, igw).await?;
    let n = own_vpc(ctx, vpc).await?;
    ctx.core
        .network
        .detach_router_from_network(ctx.principal, &r.id, &n.id)
        .await
        .map_err(|e| match e {
            NetworkError::NotAttached { .. } => Ec2Error::new(
                400,
                "Gateway.NotAttached",
                format!("resource {igw} is not attached to network {vpc}"),
            ),
            e => e.into(),
        })?;
    Ok(())
}

async fn describe_gateways(
    ctx: &Ctx<'_>,
    ids: Vec<String>,
    filters: Vec<Filter>,
    page: Page,
) -> Result<Xml> {
    let routers = gateways(ctx).await?;
    for id in &ids {
        if !routers.iter().any(|r| &igw_id(r) == id) {
            return Err(igw_not_found(id));
        }
    }
    let subnets = own_subnets(ctx).await?;
    let tags = ctx.core.network.tags(ctx.principal).await?;
    let none = BTreeMap::new();
    let shown: Vec<(String, Router, Vec<String>)> = routers
        .into_iter()
        .map(|r| (igw_id(&r), attached_vpcs(&r, &subnets), r))
        .filter(|(id, vpcs, r)| {
            (ids.is_empty() || ids.contains(id))
                && keep(&filters, tags.get(&r.id).unwrap_or(&none), |f| match f {
                    "attachment.state" => {
                        if vpcs.is_empty() {
                            vec![]
                        } else {
                            vec!["available".into()]
                        }
                    }
                    "attachment.vpc-id" => vpcs.clone(),
                    "internet-gateway-id" => vec![id.clone()],
                    "owner-id" => vec![r.project_id.clone()],
                    _ => vec![],
                })
        })
        .map(|(id, vpcs, r)| (id, r, vpcs))
        .collect();
    let (shown, next) = page.cut(shown, |(id, _, _)| id)?;
    let mut x = ctx.xml("DescribeInternetGateways");
    x.items("internetGatewaySet", shown, |x, (id, r, vpcs)| {
        x.text("internetGatewayId", &id)
            .text("ownerId", &r.project_id);
        x.items("attachmentSet", vpcs, |x, v| {
            x.text("vpcId", &v).text("state", "available");
        });
        x.tag_set(tags.get(&r.id).unwrap_or(&none));
    });
    x.opt("nextToken", next.as_deref());
    Ok(x)
}

/// The VPC whose main route table `table` is.
async fn table_vpc(ctx: &Ctx<'_>, table: &str) -> Result<Network> {
    let missing = || {
        Ec2Error::not_found(
            "InvalidRouteTableID.NotFound",
            format!("The routeTable ID '{table}' does not exist"),
        )
    };
    let tail = table
        .strip_prefix(RTB)
        .filter(|t| !t.is_empty())
        .ok_or_else(missing)?;
    let vpc = format!("vpc-{tail}");
    own_vpcs(ctx)
        .await?
        .into_iter()
        .find(|n| n.id == vpc)
        .ok_or_else(missing)
}

/// The internet gateway serving a VPC's subnets, if one does.
fn vpc_gateway<'a>(n: &Network, routers: &'a [Router]) -> Option<&'a Router> {
    routers.iter().find(|r| {
        r.interfaces
            .iter()
            .any(|i| n.subnets.contains(&i.subnet_id))
    })
}

/// EC2's CreateRoute on the one table nuage has per VPC: the default
/// route to the gateway attached to that VPC is the route the data plane
/// already has; any other route cannot be made.
async fn create_route(ctx: &Ctx<'_>, table: &str, destination: &str, gw: &str) -> Result<()> {
    let n = table_vpc(ctx, table).await?;
    let r = gateway(ctx, gw).await?;
    if destination != "0.0.0.0/0" {
        return Err(Ec2Error::invalid(format!(
            "nuage routes only 0.0.0.0/0 through an internet gateway, not {destination}"
        )));
    }
    if !r
        .interfaces
        .iter()
        .any(|i| n.subnets.contains(&i.subnet_id))
    {
        return Err(Ec2Error::new(
            400,
            "Gateway.NotAttached",
            format!("the gateway {gw} is not attached to {}", n.id),
        ));
    }
    Ok(())
}

async fn describe_route_tables(
    ctx: &Ctx<'_>,
    ids: Vec<String>,
    filters: Vec<Filter>,
    page: Page,
) -> Result<Xml> {
    ctx.core
        .network
        .ensure_default_network(ctx.principal)
        .await?;
    let vpcs = own_vpcs(ctx).await?;
    let table_of = |n: &Network| format!("{RTB}{}", id_tail(&n.id));
    for id in &ids {
        if !vpcs.iter().any(|n| &table_of(n) == id) {
            return Err(Ec2Error::not_found(
                "InvalidRouteTableID.NotFound",
                format!("The routeTable ID '{id}' does not exist"),
            ));
        }
    }
    let routers = gateways(ctx).await?;
    let none = BTreeMap::new();
    let shown: Vec<(String, Network, Option<String>)> = vpcs
        .into_iter()
        .map(|n| {
            let gw = vpc_gateway(&n, &routers).map(igw_id);
            (table_of(&n), n, gw)
        })
        .filter(|(id, n, gw)| {
            (ids.is_empty() || ids.contains(id))
                && keep(&filters, &none, |f| match f {
                    "association.main" => vec!["true".into()],
                    "association.route-table-association-id" => {
                        vec![format!("{RTBASSOC}{}", id_tail(&n.id))]
                    }
                    "association.route-table-id" | "route-table-id" => vec![id.clone()],
                    "association.subnet-id" => n.subnets.clone(),
                    "owner-id" => vec![n.project_id.clone()],
                    "route.destination-cidr-block" => {
                        let mut v: Vec<String> = n.cidr.iter().cloned().collect();
                        if gw.is_some() {
                            v.push("0.0.0.0/0".into());
                        }
                        v
                    }
                    "route.gateway-id" => {
                        let mut v = vec!["local".to_string()];
                        v.extend(gw.iter().cloned());
                        v
                    }
                    "route.state" => vec!["active".into()],
                    "vpc-id" => vec![n.id.clone()],
                    _ => vec![],
                })
        })
        .collect();
    let (shown, next) = page.cut(shown, |(id, _, _)| id)?;
    let mut x = ctx.xml("DescribeRouteTables");
    x.items("routeTableSet", shown, |x, (id, n, gw)| {
        x.text("routeTableId", &id)
            .text("vpcId", &n.id)
            .text("ownerId", &n.project_id);
        let mut routes: Vec<(String, String)> = Vec::new();
        if let Some(c) = &n.cidr {
            routes.push((c.clone(), "local".into()));
        }
        if let Some(g) = gw {
            routes.push(("0.0.0.0/0".into(), g));
        }
        x.items("routeSet", routes, |x, (dest, gw)| {
            x.text("destinationCidrBlock", &dest)
                .text("gatewayId", &gw)
                .text("state", "active")
                .text(
                    "origin",
                    if gw == "local" {
                        "CreateRouteTable"
                    } else {
                        "CreateRoute"
                    },
                );
        });
        x.items("associationSet", [()], |x, ()| {
            x.text(
                "routeTableAssociationId",
                &format!("{RTBASSOC}{}", id_tail(&n.id)),
            )
            .text("routeTableId", &id)
            .bool("main", true)
            .open("associationState")
            .text("state", "associated")
            .close("associationState");
        });
        x.items("propagatingVgwSet", Vec::<()>::new(), |_, ()| {});
        x.tag_set(&none);
    });
    x.opt("nextToken", next.as_deref());
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::super::params::params;
    use super::*;

    #[test]
    fn both_permission_forms_are_read() {
        let p = params(&[
            ("GroupId", "sg-1"),
            ("IpPermissions.1.IpProtocol", "tcp"),
            ("IpPermissions.1.FromPort", "22"),
            ("IpPermissions.1.ToPort", "22"),
            ("IpPermissions.1.IpRanges.1.CidrIp", "10.0.0.0/8"),
            ("IpPermissions.1.IpRanges.2.CidrIp", "192.168.0.0/16"),
            ("IpPermissions.1.IpRanges.2.Description", "lab"),
            ("IpPermissions.2.IpProtocol", "icmp"),
            ("IpPermissions.2.FromPort", "-1"),
            ("IpPermissions.2.ToPort", "-1"),
            ("IpPermissions.2.UserIdGroupPairs.1.GroupId", "sg-2"),
        ]);
        let op = Op::parse("AuthorizeSecurityGroupIngress", &p)
            .expect("parse")
            .expect("ours");
        p.finish().expect("every parameter read");
        let Op::Authorize { perms, .. } = op else {
            panic!("{op:?}");
        };
        assert_eq!(perms.len(), 2);
        assert_eq!(perms[0].cidrs[1], ("192.168.0.0/16".into(), "lab".into()));
        assert!(matches!(&perms[1].groups[0].0, GroupRef::Id(g) if g == "sg-2"));

        let p = params(&[
            ("GroupName", "web"),
            ("IpProtocol", "tcp"),
            ("FromPort", "80"),
            ("ToPort", "80"),
            ("CidrIp", "0.0.0.0/0"),
        ]);
        let op = Op::parse("RevokeSecurityGroupEgress", &p)
            .expect("parse")
            .expect("ours");
        assert_eq!(op.action(), "RevokeSecurityGroupEgress");
        let Op::Revoke { perms, group, .. } = op else {
            panic!("{op:?}");
        };
        assert!(matches!(group, GroupRef::Name(n) if n == "web"));
        assert_eq!(perms[0].from, Some(80));

        for bad in [
            vec![("GroupId", "sg-1")],
            vec![("GroupId", "sg-1"), ("IpProtocol", "tcp")],
            vec![
                ("GroupId", "sg-1"),
                ("GroupName", "x"),
                ("CidrIp", "1.0.0.0/8"),
            ],
            vec![
                ("GroupId", "sg-1"),
                ("IpProtocol", "tcp"),
                ("FromPort", "70000"),
                ("CidrIp", "1.0.0.0/8"),
            ],
        ] {
            let p = params(&bad);
            assert!(
                Op::parse("AuthorizeSecurityGroupIngress", &p).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn pages_cut_by_the_next_items_id() {
        let page = Page {
            max: Some(2),
            token: None,
        };
        let (a, next) = page.cut(vec!["a", "b", "c"], |s| s).expect("cut");
        assert_eq!((a, next.as_deref()), (vec!["a", "b"], Some("c")));
        let page = Page {
            max: Some(2),
            token: Some("c".into()),
        };
        let (a, next) = page.cut(vec!["a", "b", "c"], |s| s).expect("cut");
        assert_eq!((a, next), (vec!["c"], None));
        let page = Page {
            max: None,
            token: Some("zz".into()),
        };
        assert!(page.cut(vec!["a"], |s| s).is_err());
    }

    #[test]
    fn tag_specifications_must_name_the_resource_made() {
        let p = params(&[
            ("TagSpecification.1.ResourceType", "vpc"),
            ("TagSpecification.1.Tag.1.Key", "Name"),
            ("TagSpecification.1.Tag.1.Value", "lab"),
        ]);
        let specs = p.tag_specifications().expect("specs");
        assert_eq!(spec_tags(specs.clone(), "vpc").expect("vpc")["Name"], "lab");
        assert!(spec_tags(specs, "subnet").is_err());
    }
}
