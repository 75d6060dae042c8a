//! Instances, key pairs, images and instance types over the EC2 Query API:
//! RunInstances, DescribeInstances, DescribeInstanceStatus, Start/Stop/
//! Reboot/TerminateInstances, GetConsoleOutput, Describe/ModifyInstance-
//! Attribute, Create/Import/Describe/DeleteKeyPair, CreateImage,
//! DescribeImages,
//! DescribeInstanceTypes. Each translates onto the compute service, which
//! holds every rule (quotas, states, scheduling, idempotent ClientToken).

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use nuage_compute::types::{Image, Instance, InstanceType, KeyPair, State};
use nuage_compute::{
    Action, HttpTokens, ImageQuery, InstancePatch, InstanceQuery, MetadataOptions, NewKeyPair,
    RunRequest,
};

use super::error::{Ec2Error, Result};
use super::ops::Ctx;
use super::params::{keep, Filter, Params};
use super::xml::Xml;

pub const ACTIONS: &[&str] = &[
    "CreateImage",
    "CreateKeyPair",
    "DeleteKeyPair",
    "DescribeImageAttribute",
    "DescribeImages",
    "DeregisterImage",
    "DescribeInstanceAttribute",
    "DescribeInstanceStatus",
    "DescribeInstanceTypes",
    "DescribeInstances",
    "DescribeKeyPairs",
    "GetConsoleOutput",
    "ImportKeyPair",
    "ModifyImageAttribute",
    "ModifyInstanceAttribute",
    "RebootInstances",
    "RegisterImage",
    "RunInstances",
    "StartInstances",
    "StopInstances",
    "TerminateInstances",
];

const KEY_FILTERS: &[&str] = &["key-pair-id", "key-name", "fingerprint", "key-type"];
const IMAGE_FILTERS: &[&str] = &[
    "architecture",
    "image-id",
    "image-type",
    "is-public",
    "name",
    "owner-id",
    "state",
    "root-device-type",
    "virtualization-type",
];
const TYPE_FILTERS: &[&str] = &[
    "instance-type",
    "vcpu-info.default-vcpus",
    "memory-info.size-in-mib",
    "current-generation",
];
const STATUS_FILTERS: &[&str] = &[
    "availability-zone",
    "instance-state-name",
    "instance-state-code",
    "instance-status.status",
    "system-status.status",
];

/// EC2's aliases of filters the compute service answers under another
/// name (the service's own list is `nuage_compute::INSTANCE_FILTERS`).
const FILTER_ALIASES: &[(&str, &str)] = &[
    ("placement.availability-zone", "availability-zone"),
    ("placement.group-name", "placement-group-name"),
];

/// Variants are named after the EC2 actions they are.
#[derive(Debug)]
pub enum Op {
    /// The request, and the security groups it names by name
    /// (`SecurityGroup.N`), resolved in the caller's project when it runs.
    RunInstances(Box<RunRequest>, Vec<String>),
    DescribeInstances(InstanceQuery),
    DescribeInstanceStatus {
        q: InstanceQuery,
        all: bool,
        filters: Vec<Filter>,
    },
    Act {
        action: Action,
        ids: Vec<String>,
        force: bool,
    },
    GetConsoleOutput {
        id: String,
    },
    DescribeInstanceAttribute {
        id: String,
        attribute: String,
    },
    ModifyInstanceAttribute {
        id: String,
        change: InstanceChange,
    },
    CreateKeyPair {
        name: String,
        key_type: String,
    },
    ImportKeyPair {
        name: String,
        public_key: String,
    },
    DescribeKeyPairs {
        names: Vec<String>,
        ids: Vec<String>,
        filters: Vec<Filter>,
    },
    DeleteKeyPair {
        name: Option<String>,
        id: Option<String>,
    },
    DescribeImages {
        ids: Vec<String>,
        owners: Vec<String>,
        filters: Vec<Filter>,
    },
    DescribeInstanceTypes {
        names: Vec<String>,
        filters: Vec<Filter>,
        page: (Option<usize>, Option<String>),
    },
    RegisterImage {
        name: String,
        location: String,
        architecture: Option<String>,
        description: Option<String>,
    },
    /// A new image from an instance's root disk. `NoReboot` is read and
    /// has no effect: nuage never reboots for it (ADR 28).
    CreateImage {
        instance_id: String,
        snapshot: nuage_compute::NewSnapshot,
    },
    DeregisterImage {
        id: String,
    },
    DescribeImageAttribute {
        id: String,
        attribute: String,
    },
    ModifyImageAttribute {
        id: String,
        change: ImageChange,
    },
}

/// The one attribute a ModifyInstanceAttribute call changes.
#[derive(Debug, PartialEq)]
pub enum InstanceChange {
    InstanceType(String),
    /// The primary interface's security groups, by id.
    Groups(Vec<String>),
    /// Decoded user data.
    UserData(Vec<u8>),
}

/// What ModifyImageAttribute asks: launch permissions added and removed
/// (project ids, and whether `all`), or a new description.
#[derive(Debug, Default)]
pub struct ImageChange {
    add_projects: Vec<String>,
    remove_projects: Vec<String>,
    add_all: bool,
    remove_all: bool,
    description: Option<String>,
}

fn image_id(p: &Params) -> Result<String> {
    id_of("ami", "InvalidAMIID.Malformed", p.req("ImageId")?)
}

/// Reads ModifyImageAttribute's two spellings: the structured
/// `LaunchPermission.Add.N.UserId|Group` and the older
/// `Attribute=launchPermission&OperationType=add&UserId.N&UserGroup.N`.
fn image_change(p: &Params) -> Result<ImageChange> {
    let mut c = ImageChange::default();
    for (op, add) in [("Add", true), ("Remove", false)] {
        for i in p.indices(&format!("LaunchPermission.{op}"))? {
            let user = p.opt(&format!("LaunchPermission.{op}.{i}.UserId"));
            let group = p.opt(&format!("LaunchPermission.{op}.{i}.Group"));
            match (user, group) {
                (Some(u), None) if add => c.add_projects.push(u.to_string()),
                (Some(u), None) => c.remove_projects.push(u.to_string()),
                (None, Some("all")) if add => c.add_all = true,
                (None, Some("all")) => c.remove_all = true,
                _ => {
                    return Err(Ec2Error::invalid(format!(
                        "LaunchPermission.{op}.{i} names either a UserId or the Group 'all'"
                    )))
                }
            }
        }
    }
    let users = p.list("UserId")?;
    let groups = p.list("UserGroup")?;
    match p.opt("OperationType") {
        Some(op @ ("add" | "remove")) => {
            let add = op == "add";
            if groups.iter().any(|g| g != "all") {
                return Err(Ec2Error::invalid("UserGroup may only be 'all'"));
            }
            let all = !groups.is_empty();
            if add {
                c.add_projects.extend(users);
                c.add_all |= all;
            } else {
                c.remove_projects.extend(users);
                c.remove_all |= all;
            }
        }
        Some(other) => {
            return Err(Ec2Error::invalid(format!(
            "Value ({other}) for parameter OperationType is invalid. Expected: 'add' or 'remove'."
        )))
        }
        None if !users.is_empty() || !groups.is_empty() => {
            return Err(Ec2Error::missing("OperationType"))
        }
        None => {}
    }
    c.description = p
        .opt("Description.Value")
        .or_else(|| match p.opt("Attribute") {
            Some("description") => p.opt("Value"),
            _ => None,
        })
        .map(str::to_string);
    if let Some(a) = p.opt("Attribute") {
        if a != "launchPermission" && a != "description" {
            return Err(Ec2Error::invalid(format!(
                "Value ({a}) for parameter attribute is invalid. nuage changes launchPermission and description."
            )));
        }
    }
    let nothing = c.add_projects.is_empty()
        && c.remove_projects.is_empty()
        && !c.add_all
        && !c.remove_all
        && c.description.is_none();
    if nothing {
        return Err(Ec2Error::missing("LaunchPermission"));
    }
    Ok(c)
}

/// Checks an id's shape (`i-` then hex), as EC2 does before looking.
fn id_of(kind: &str, code: &'static str, id: &str) -> Result<String> {
    let ok = id
        .strip_prefix(kind)
        .and_then(|r| r.strip_prefix('-'))
        .is_some_and(|hex| {
            !hex.is_empty() && hex.len() <= 17 && hex.bytes().all(|b| b.is_ascii_hexdigit())
        });
    if ok {
        Ok(id.to_string())
    } else {
        Err(Ec2Error::malformed(code, id))
    }
}

fn instance_ids(p: &Params) -> Result<Vec<String>> {
    p.list("InstanceId")?
        .iter()
        .map(|i| id_of("i", "InvalidInstanceID.Malformed", i))
        .collect()
}

fn one_instance(p: &Params) -> Result<String> {
    id_of("i", "InvalidInstanceID.Malformed", p.req("InstanceId")?)
}

/// The compute service's filters from EC2's (`placement.*` are aliases).
fn instance_query(p: &Params) -> Result<InstanceQuery> {
    let mut q = InstanceQuery {
        instance_ids: instance_ids(p)?,
        ..InstanceQuery::default()
    };
    // `node` is the operator's: not an EC2 filter.
    let mut allowed: Vec<&str> = nuage_compute::INSTANCE_FILTERS
        .iter()
        .copied()
        .filter(|f| *f != "node")
        .collect();
    allowed.extend(FILTER_ALIASES.iter().map(|(alias, _)| *alias));
    for f in p.filters(&allowed, true)? {
        let name = FILTER_ALIASES
            .iter()
            .find(|(alias, _)| *alias == f.name)
            .map_or(f.name.clone(), |(_, name)| name.to_string());
        q.filters.push((name, f.values));
    }
    Ok(q)
}

/// The prefix under which an image's EC2 tags are kept in its properties.
const TAG_PROPERTY: &str = "tag:";

/// EC2's rule for AMI names: 3 to 128 letters, digits and `()[] ./-'@_`.
fn ami_name(name: &str) -> Result<String> {
    let ok = (3..=128).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "()[] ./-'@_".contains(c));
    if ok {
        Ok(name.to_string())
    } else {
        Err(Ec2Error::new(
            400,
            "InvalidAMIName.Malformed",
            format!("AMI names must be between 3 and 128 characters long, and may contain letters, numbers, '(', ')', '.', '-', '/' and '_': {name:?}"),
        ))
    }
}

/// CreateImage's parameters, as the EC2 API reference lists them.
fn create_image(p: &Params) -> Result<Op> {
    let instance_id = one_instance(p)?;
    let name = ami_name(p.req("Name")?)?;
    let description = p.opt("Description").map(str::to_string);
    if description.as_ref().is_some_and(|d| d.len() > 255) {
        return Err(Ec2Error::invalid(
            "Value for parameter Description is invalid: at most 255 characters",
        ));
    }
    p.bool("NoReboot")?;
    if !p.indices("BlockDeviceMapping")?.is_empty() {
        return Err(Ec2Error::invalid(
            "BlockDeviceMapping is not supported: nuage images hold the root disk only (no volumes yet)",
        ));
    }
    let mut properties = BTreeMap::new();
    for spec in p.tag_specifications()? {
        match spec.resource_type.as_str() {
            "image" => {
                for t in spec.tags {
                    properties.insert(format!("{TAG_PROPERTY}{}", t.key), t.value);
                }
            }
            other => {
                return Err(Ec2Error::invalid(format!(
                    "'{other}' is not a valid taggable resource type for this operation (nuage tags the image only)."
                )))
            }
        }
    }
    Ok(Op::CreateImage {
        instance_id,
        snapshot: nuage_compute::NewSnapshot {
            name,
            description,
            properties,
        },
    })
}

fn run_request(p: &Params) -> Result<(RunRequest, Vec<String>)> {
    let image_id = id_of("ami", "InvalidAMIID.Malformed", p.req("ImageId")?)?;
    let min = p.int("MinCount", 1, 1000)?;
    let max = p.int("MaxCount", 1, 1000)?;
    let (min, max) = match (min, max) {
        (Some(a), Some(b)) => (a, b),
        (None, _) => return Err(Ec2Error::missing("MinCount")),
        (_, None) => return Err(Ec2Error::missing("MaxCount")),
    };
    if min > max {
        return Err(Ec2Error::invalid(format!(
            "MinCount ({min}) must not be greater than MaxCount ({max})"
        )));
    }
    let user_data = match p.opt("UserData") {
        Some(u) => {
            // Checked here for EC2's code; the service enforces the size.
            base64::engine::general_purpose::STANDARD
                .decode(u.trim())
                .map_err(|_| Ec2Error::invalid("Invalid BASE64 encoding of user data."))?;
            Some(u.trim().to_string())
        }
        None => None,
    };
    let mut tags = BTreeMap::new();
    for spec in p.tag_specifications()? {
        match spec.resource_type.as_str() {
            "instance" => {
                for t in spec.tags {
                    tags.insert(t.key, t.value);
                }
            }
            "network-interface" | "volume" => {}
            other => {
                return Err(Ec2Error::invalid(format!(
                    "'{other}' is not a valid taggable resource type for this operation."
                )))
            }
        }
    }
    let groups: Vec<String> = p.list("SecurityGroupId")?;
    let names = p.list("SecurityGroup")?;
    let subnet_id = p.opt("SubnetId").map(str::to_string);
    let private_ip_address = p.opt("PrivateIpAddress").map(str::to_string);
    let availability_zone = p.opt("Placement.AvailabilityZone").map(str::to_string);
    let placement_group = p.opt("Placement.GroupName").map(str::to_string);
    p.opt("Placement.Tenancy")
        .filter(|t| *t != "default")
        .map_or(Ok(()), |t| {
            Err(Ec2Error::invalid(format!(
                "The tenancy '{t}' is not supported; nuage places instances on shared nodes (default)"
            )))
        })?;
    let http_tokens = match p.opt("MetadataOptions.HttpTokens") {
        None => None,
        Some(t) => Some(HttpTokens::parse(t).ok_or_else(|| {
            Ec2Error::invalid(format!(
                "Value ({t}) for parameter MetadataOptions.HttpTokens is invalid. Expected: 'optional' or 'required'."
            ))
        })?),
    };
    let req = RunRequest {
        image_id,
        instance_type: p.opt("InstanceType").unwrap_or("m1.small").to_string(),
        min_count: Some(min as u32),
        max_count: Some(max as u32),
        key_name: p.opt("KeyName").map(str::to_string),
        user_data,
        tags,
        availability_zone,
        placement_group,
        client_token: p
            .opt("ClientToken")
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        network_id: None,
        security_groups: (!groups.is_empty()).then_some(groups),
        subnet_id,
        private_ip_address,
        metadata_options: http_tokens.map(|t| MetadataOptions {
            http_tokens: Some(t),
        }),
    };
    Ok((req, names))
}

impl Op {
    pub fn parse(action: &str, p: &Params) -> Result<Option<Op>> {
        Ok(Some(match action {
            "RunInstances" => {
                let (req, names) = run_request(p)?;
                Op::RunInstances(Box::new(req), names)
            }
            "DescribeInstances" => {
                let mut q = instance_query(p)?;
                let (max, token) = p.page(5, 1000)?;
                if max.is_some() && !q.instance_ids.is_empty() {
                    return Err(Ec2Error::combination(
                        "The parameter instancesSet cannot be used with the parameter maxResults",
                    ));
                }
                q.max_results = max;
                q.next_token = token;
                Op::DescribeInstances(q)
            }
            "DescribeInstanceStatus" => {
                let mut filters = Vec::new();
                let mut q = InstanceQuery {
                    instance_ids: instance_ids(p)?,
                    ..InstanceQuery::default()
                };
                for f in p.filters(STATUS_FILTERS, false)? {
                    match f.name.as_str() {
                        "availability-zone" | "instance-state-name" | "instance-state-code" => {
                            q.filters.push((f.name, f.values))
                        }
                        _ => filters.push(f),
                    }
                }
                let (max, token) = p.page(5, 1000)?;
                q.max_results = max;
                q.next_token = token;
                Op::DescribeInstanceStatus {
                    q,
                    all: p.bool("IncludeAllInstances")?.unwrap_or(false),
                    filters,
                }
            }
            "StartInstances" | "StopInstances" | "RebootInstances" | "TerminateInstances" => {
                let action = match action {
                    "StartInstances" => Action::Start,
                    "StopInstances" => Action::Stop,
                    "RebootInstances" => Action::Reboot,
                    _ => Action::Terminate,
                };
                let force = if action == Action::Stop {
                    p.bool("Force")?.unwrap_or(false)
                } else {
                    false
                };
                if action == Action::Stop {
                    p.bool("Hibernate")?.filter(|h| *h).map_or(Ok(()), |_| {
                        Err(Ec2Error::new(
                            400,
                            "UnsupportedHibernationConfiguration",
                            "nuage instances cannot hibernate",
                        ))
                    })?;
                }
                if action == Action::Start {
                    p.opt("AdditionalInfo");
                }
                let ids = instance_ids(p)?;
                if ids.is_empty() {
                    return Err(Ec2Error::missing("InstanceId"));
                }
                Op::Act { action, ids, force }
            }
            "GetConsoleOutput" => {
                p.bool("Latest")?;
                Op::GetConsoleOutput {
                    id: one_instance(p)?,
                }
            }
            "DescribeInstanceAttribute" => {
                let id = one_instance(p)?;
                let attribute = p.req("Attribute")?.to_string();
                if !matches!(
                    attribute.as_str(),
                    "instanceType"
                        | "userData"
                        | "groupSet"
                        | "disableApiTermination"
                        | "instanceInitiatedShutdownBehavior"
                        | "rootDeviceName"
                        | "blockDeviceMapping"
                        | "sourceDestCheck"
                        | "ebsOptimized"
                        | "kernel"
                        | "ramdisk"
                ) {
                    return Err(Ec2Error::invalid(format!(
                        "Value ({attribute}) for parameter attribute is invalid. Unknown attribute."
                    )));
                }
                Op::DescribeInstanceAttribute { id, attribute }
            }
            "ModifyInstanceAttribute" => {
                let id = one_instance(p)?;
                let attribute = p.opt("Attribute");
                let value = p.opt("Value");
                let mut changes = Vec::new();
                if let Some(t) = p.opt("InstanceType.Value").or(match attribute {
                    Some("instanceType") => value,
                    _ => None,
                }) {
                    changes.push(InstanceChange::InstanceType(t.to_string()));
                }
                let groups = p.list("GroupId")?;
                if !groups.is_empty() {
                    changes.push(InstanceChange::Groups(groups));
                }
                if let Some(u) = p.opt("UserData.Value").or(match attribute {
                    Some("userData") => value,
                    _ => None,
                }) {
                    let data = base64::engine::general_purpose::STANDARD
                        .decode(u.trim())
                        .map_err(|_| Ec2Error::invalid("Invalid BASE64 encoding of user data."))?;
                    changes.push(InstanceChange::UserData(data));
                }
                if let Some(a) = attribute {
                    if !matches!(a, "instanceType" | "userData") {
                        return Err(Ec2Error::invalid(format!(
                            "nuage changes an instance's instanceType, groupSet (GroupId.N) or userData; not {a}"
                        )));
                    }
                }
                if changes.len() != 1 {
                    return Err(Ec2Error::new(
                        400,
                        "InvalidParameterCombination",
                        "name exactly one attribute to change: InstanceType.Value, GroupId.N or UserData.Value (or Attribute with Value)",
                    ));
                }
                Op::ModifyInstanceAttribute {
                    id,
                    change: changes.remove(0),
                }
            }
            "CreateKeyPair" => {
                let name = p.req("KeyName")?.to_string();
                let key_type = p.opt("KeyType").unwrap_or("rsa").to_string();
                if key_type != "rsa" && key_type != "ed25519" {
                    return Err(Ec2Error::invalid(format!(
                        "Value ({key_type}) for parameter KeyType is invalid. Expected: 'rsa' or 'ed25519'."
                    )));
                }
                let format = p.opt("KeyFormat").unwrap_or("pem");
                if format != "pem" {
                    return Err(Ec2Error::invalid(format!(
                        "Value ({format}) for parameter KeyFormat is invalid. nuage gives keys in 'pem'."
                    )));
                }
                p.tag_specifications()?;
                Op::CreateKeyPair { name, key_type }
            }
            "ImportKeyPair" => {
                let name = p.req("KeyName")?.to_string();
                let material = p.req("PublicKeyMaterial")?;
                // The SDKs base64 the material (blob); older tools send it raw.
                let public_key = base64::engine::general_purpose::STANDARD
                    .decode(material)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .unwrap_or_else(|| material.to_string());
                p.tag_specifications()?;
                Op::ImportKeyPair {
                    name,
                    public_key: public_key.trim().to_string(),
                }
            }
            "DescribeKeyPairs" => {
                p.bool("IncludePublicKey")?;
                Op::DescribeKeyPairs {
                    names: p.list("KeyName")?,
                    ids: p.list("KeyPairId")?,
                    filters: p.filters(KEY_FILTERS, false)?,
                }
            }
            "DeleteKeyPair" => {
                let name = p.opt("KeyName").map(str::to_string);
                let id = p.opt("KeyPairId").map(str::to_string);
                if name.is_none() && id.is_none() {
                    return Err(Ec2Error::missing("KeyName"));
                }
                Op::DeleteKeyPair { name, id }
            }
            "DescribeImages" => {
                let ids = p
                    .list("ImageId")?
                    .iter()
                    .map(|i| id_of("ami", "InvalidAMIID.Malformed", i))
                    .collect::<Result<_>>()?;
                p.list("ExecutableBy")?;
                p.bool("IncludeDeprecated")?;
                p.bool("IncludeDisabled")?;
                let (_, _) = p.page(5, 1000)?;
                Op::DescribeImages {
                    ids,
                    owners: p.list("Owner")?,
                    filters: p.filters(IMAGE_FILTERS, false)?,
                }
            }
            "RegisterImage" => {
                let name = p.req("Name")?.to_string();
                let location = p.opt("ImageLocation").map(str::to_string);
                if p.opt("RootDeviceName").is_some() || !p.indices("BlockDeviceMapping")?.is_empty()
                {
                    return Err(Ec2Error::new(
                        400,
                        "InvalidParameterCombination",
                        "nuage registers images from an object (ImageLocation=bucket/key of a root filesystem tar), not from snapshots",
                    ));
                }
                let Some(location) = location else {
                    return Err(Ec2Error::missing("ImageLocation"));
                };
                let architecture = p.opt("Architecture").map(str::to_string);
                if let Some(a) = &architecture {
                    if !matches!(a.as_str(), "x86_64" | "arm64" | "i386") {
                        return Err(Ec2Error::invalid(format!(
                            "Value ({a}) for parameter Architecture is invalid."
                        )));
                    }
                }
                p.opt("VirtualizationType");
                Op::RegisterImage {
                    name,
                    location,
                    architecture,
                    description: p.opt("Description").map(str::to_string),
                }
            }
            "CreateImage" => create_image(p)?,
            "DeregisterImage" => Op::DeregisterImage { id: image_id(p)? },
            "DescribeImageAttribute" => {
                let id = image_id(p)?;
                let attribute = p.req("Attribute")?.to_string();
                if !matches!(
                    attribute.as_str(),
                    "launchPermission" | "description" | "blockDeviceMapping"
                ) {
                    return Err(Ec2Error::invalid(format!(
                        "Value ({attribute}) for parameter attribute is invalid. Unknown attribute."
                    )));
                }
                Op::DescribeImageAttribute { id, attribute }
            }
            "ModifyImageAttribute" => Op::ModifyImageAttribute {
                id: image_id(p)?,
                change: image_change(p)?,
            },
            "DescribeInstanceTypes" => Op::DescribeInstanceTypes {
                names: p.list("InstanceType")?,
                filters: p.filters(TYPE_FILTERS, false)?,
                page: p.page(5, 100)?,
            },
            _ => return Ok(None),
        }))
    }

    pub fn action(&self) -> &'static str {
        match self {
            Op::RunInstances(..) => "RunInstances",
            Op::DescribeInstances(_) => "DescribeInstances",
            Op::DescribeInstanceStatus { .. } => "DescribeInstanceStatus",
            Op::Act { action, .. } => match action {
                Action::Start => "StartInstances",
                Action::Stop => "StopInstances",
                Action::Reboot => "RebootInstances",
                Action::Terminate => "TerminateInstances",
            },
            Op::GetConsoleOutput { .. } => "GetConsoleOutput",
            Op::DescribeInstanceAttribute { .. } => "DescribeInstanceAttribute",
            Op::ModifyInstanceAttribute { .. } => "ModifyInstanceAttribute",
            Op::CreateKeyPair { .. } => "CreateKeyPair",
            Op::ImportKeyPair { .. } => "ImportKeyPair",
            Op::DescribeKeyPairs { .. } => "DescribeKeyPairs",
            Op::DeleteKeyPair { .. } => "DeleteKeyPair",
            Op::DescribeImages { .. } => "DescribeImages",
            Op::DescribeInstanceTypes { .. } => "DescribeInstanceTypes",
            Op::RegisterImage { .. } => "RegisterImage",
            Op::CreateImage { .. } => "CreateImage",
            Op::DeregisterImage { .. } => "DeregisterImage",
            Op::DescribeImageAttribute { .. } => "DescribeImageAttribute",
            Op::ModifyImageAttribute { .. } => "ModifyImageAttribute",
        }
    }

    pub async fn run(self, ctx: &Ctx<'_>) -> Result<Xml> {
        let c = &ctx.core.compute;
        let p = ctx.principal;
        match self {
            Op::RunInstances(req, names) => run_instances(ctx, *req, names).await,
            Op::DescribeInstances(q) => {
                let page = c.describe_instances(p, &q).await?;
                let mut x = ctx.xml("DescribeInstances");
                // One reservation per launch, in launch order.
                let mut reservations: Vec<(String, Vec<&Instance>)> = Vec::new();
                let mut at: HashMap<&str, usize> = HashMap::new();
                for i in &page.items {
                    match at.get(i.reservation_id.as_str()) {
                        Some(&n) => reservations[n].1.push(i),
                        None => {
                            at.insert(&i.reservation_id, reservations.len());
                            reservations.push((i.reservation_id.clone(), vec![i]));
                        }
                    }
                }
                x.items("reservationSet", reservations, |x, (r, insts)| {
                    x.text("reservationId", &r)
                        .text("ownerId", &insts[0].project_id);
                    x.items("groupSet", Vec::<()>::new(), |_, ()| {});
                    x.items("instancesSet", insts, |x, i| {
                        instance(x, i, &ctx.core.region)
                    });
                });
                x.opt("nextToken", page.next_token.as_deref());
                Ok(x)
            }
            Op::DescribeInstanceStatus { q, all, filters } => {
                let page = c.describe_instances(p, &q).await?;
                let mut x = ctx.xml("DescribeInstanceStatus");
                let shown = page.items.iter().filter(|i| {
                    (all || i.state == State::Running)
                        && keep(&filters, &BTreeMap::new(), |f| match f {
                            "instance-status.status" | "system-status.status" => {
                                vec![health(i).to_string()]
                            }
                            _ => vec![],
                        })
                });
                x.items("instanceStatusSet", shown, |x, i| {
                    x.text("instanceId", &i.id)
                        .text("availabilityZone", &i.availability_zone);
                    state(x, "instanceState", i.state);
                    for s in ["systemStatus", "instanceStatus"] {
                        x.open(s).text("status", health(i));
                        x.items("details", [()], |x, ()| {
                            x.text("name", "reachability").text(
                                "status",
                                if health(i) == "ok" {
                                    "passed"
                                } else {
                                    "initializing"
                                },
                            );
                        });
                        x.close(s);
                    }
                });
                x.opt("nextToken", page.next_token.as_deref());
                Ok(x)
            }
            Op::Act { action, ids, force } => {
                let changes = c.act(p, action, &ids, force).await?;
                let name = Op::Act {
                    action,
                    ids: vec![],
                    force,
                }
                .action();
                let mut x = ctx.xml(name);
                if action == Action::Reboot {
                    x.bool("return", true);
                } else {
                    x.items("instancesSet", changes, |x, ch| {
                        x.text("instanceId", &ch.instance_id);
                        state(x, "currentState", ch.current_state);
                        state(x, "previousState", ch.previous_state);
                    });
                }
                Ok(x)
            }
            Op::GetConsoleOutput { id } => {
                let out = c.console_output(p, &id, 64 * 1024).await?;
                let mut x = ctx.xml("GetConsoleOutput");
                x.text("instanceId", &id).text("timestamp", &now()).text(
                    "output",
                    &base64::engine::general_purpose::STANDARD.encode(out.as_bytes()),
                );
                Ok(x)
            }
            Op::DescribeInstanceAttribute { id, attribute } => {
                let i = c.get_instance(p, &id).await?;
                let mut x = ctx.xml("DescribeInstanceAttribute");
                x.text("instanceId", &i.id);
                match attribute.as_str() {
                    "instanceType" => {
                        x.open("instanceType")
                            .text("value", &i.instance_type)
                            .close("instanceType");
                    }
                    "userData" => {
                        let ud = c.user_data(p, &id).await?;
                        x.open("userData");
                        if let Some(ud) = ud {
                            x.text("value", &ud);
                        }
                        x.close("userData");
                    }
                    "groupSet" => {
                        x.items("groupSet", groups_of(&i), |x, (gid, name)| {
                            x.text("groupId", gid).text("groupName", name);
                        });
                    }
                    "disableApiTermination" => {
                        x.open("disableApiTermination")
                            .bool("value", false)
                            .close("disableApiTermination");
                    }
                    "instanceInitiatedShutdownBehavior" => {
                        x.open("instanceInitiatedShutdownBehavior")
                            .text("value", "stop")
                            .close("instanceInitiatedShutdownBehavior");
                    }
                    "rootDeviceName" => {
                        x.open("rootDeviceName")
                            .text("value", "/dev/sda1")
                            .close("rootDeviceName");
                    }
                    "sourceDestCheck" => {
                        x.open("sourceDestCheck")
                            .bool("value", true)
                            .close("sourceDestCheck");
                    }
                    "ebsOptimized" => {
                        x.open("ebsOptimized")
                            .bool("value", false)
                            .close("ebsOptimized");
                    }
                    "blockDeviceMapping" => {
                        x.items("blockDeviceMapping", Vec::<()>::new(), |_, ()| {});
                    }
                    _ => {
                        // kernel, ramdisk: containers have neither.
                        x.open(&attribute).close(&attribute);
                    }
                }
                Ok(x)
            }
            Op::ModifyInstanceAttribute { id, change } => {
                let patch = match change {
                    InstanceChange::InstanceType(t) => InstancePatch {
                        instance_type: Some(t),
                        ..InstancePatch::default()
                    },
                    InstanceChange::UserData(data) => InstancePatch {
                        user_data: Some(data),
                        ..InstancePatch::default()
                    },
                    InstanceChange::Groups(groups) => InstancePatch {
                        security_groups: Some(groups),
                        ..InstancePatch::default()
                    },
                };
                c.modify_instance(p, &id, patch).await?;
                let mut x = ctx.xml("ModifyInstanceAttribute");
                x.bool("return", true);
                Ok(x)
            }
            Op::CreateKeyPair { name, key_type } => {
                let k = c
                    .create_key_pair(
                        p,
                        NewKeyPair {
                            name,
                            key_type: Some(key_type),
                            public_key: None,
                        },
                    )
                    .await?;
                let mut x = ctx.xml("CreateKeyPair");
                x.text("keyName", &k.name)
                    .text("keyFingerprint", &k.fingerprint)
                    .text("keyMaterial", k.private_key.as_deref().unwrap_or(""))
                    .text("keyPairId", &k.id);
                Ok(x)
            }
            Op::ImportKeyPair { name, public_key } => {
                let k = c
                    .create_key_pair(
                        p,
                        NewKeyPair {
                            name,
                            key_type: None,
                            public_key: Some(public_key),
                        },
                    )
                    .await?;
                let mut x = ctx.xml("ImportKeyPair");
                x.text("keyName", &k.name)
                    .text("keyFingerprint", &k.fingerprint)
                    .text("keyPairId", &k.id);
                Ok(x)
            }
            Op::DescribeKeyPairs {
                names,
                ids,
                filters,
            } => {
                let all = c.list_key_pairs(p).await?;
                for n in &names {
                    if !all.iter().any(|k| &k.name == n) {
                        return Err(Ec2Error::not_found(
                            "InvalidKeyPair.NotFound",
                            format!("The key pair '{n}' does not exist"),
                        ));
                    }
                }
                for i in &ids {
                    if !all.iter().any(|k| &k.id == i) {
                        return Err(Ec2Error::not_found(
                            "InvalidKeyPair.NotFound",
                            format!("The key pair ID '{i}' does not exist"),
                        ));
                    }
                }
                let shown = all.iter().filter(|k| {
                    (names.is_empty() || names.contains(&k.name))
                        && (ids.is_empty() || ids.contains(&k.id))
                        && keep(&filters, &BTreeMap::new(), |f| key_field(k, f))
                });
                let mut x = ctx.xml("DescribeKeyPairs");
                x.items("keySet", shown, |x, k| {
                    x.text("keyPairId", &k.id)
                        .text("keyName", &k.name)
                        .text("keyFingerprint", &k.fingerprint)
                        .text("keyType", &k.key_type)
                        .text("createTime", &k.created_at);
                });
                Ok(x)
            }
            Op::DeleteKeyPair { name, id } => {
                let name = match (name, id) {
                    (Some(n), _) => n,
                    (None, Some(id)) => {
                        match c.list_key_pairs(p).await?.into_iter().find(|k| k.id == id) {
                            Some(k) => k.name,
                            None => {
                                return Err(Ec2Error::not_found(
                                    "InvalidKeyPair.NotFound",
                                    format!("The key pair ID '{id}' does not exist"),
                                ))
                            }
                        }
                    }
                    (None, None) => return Err(Ec2Error::missing("KeyName")),
                };
                // EC2 answers success for a key pair that is already gone.
                match c.delete_key_pair(p, &name).await {
                    Ok(()) | Err(nuage_compute::ComputeError::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                let mut x = ctx.xml("DeleteKeyPair");
                x.bool("return", true);
                Ok(x)
            }
            Op::DescribeImages {
                ids,
                owners,
                filters,
            } => {
                let all = c.list_images(p, &ImageQuery::default()).await?;
                for i in &ids {
                    if !all.iter().any(|im| &im.id == i) {
                        return Err(Ec2Error::not_found(
                            "InvalidAMIID.NotFound",
                            format!("The image id '[{i}]' does not exist"),
                        ));
                    }
                }
                let owner_ok = |im: &Image| {
                    owners.is_empty()
                        || owners.iter().any(|o| match o.as_str() {
                            "self" => im.owner == p.project_id,
                            // Public images are the cloud's catalogue,
                            // EC2's "amazon" owner.
                            "amazon" | "aws-marketplace" => im.visibility.as_str() == "public",
                            o => im.owner == o,
                        })
                };
                let shown = all.iter().filter(|im| {
                    (ids.is_empty() || ids.contains(&im.id))
                        && owner_ok(im)
                        && keep(&filters, &BTreeMap::new(), |f| image_field(im, f))
                });
                let mut x = ctx.xml("DescribeImages");
                x.items("imagesSet", shown, image);
                Ok(x)
            }
            Op::RegisterImage {
                name,
                location,
                architecture,
                description,
            } => register_image(ctx, name, location, architecture, description).await,
            Op::CreateImage {
                instance_id,
                snapshot,
            } => {
                let im = c
                    .create_image_from_instance(p, &instance_id, snapshot)
                    .await?;
                let mut x = ctx.xml("CreateImage");
                x.text("imageId", &im.id);
                Ok(x)
            }
            Op::DeregisterImage { id } => {
                c.delete_image(p, &id).await?;
                let mut x = ctx.xml("DeregisterImage");
                x.bool("return", true);
                Ok(x)
            }
            Op::DescribeImageAttribute { id, attribute } => {
                let im = c.get_image(p, &id).await?;
                if im.owner != p.project_id {
                    // Launch permissions are the owner's to read.
                    nuage_identity::policy::authorize(
                        p,
                        "image:get_image_members",
                        nuage_identity::policy::Rule::ProjectWrite(&im.owner),
                    )?;
                }
                let mut x = ctx.xml("DescribeImageAttribute");
                x.text("imageId", &im.id);
                match attribute.as_str() {
                    "launchPermission" => {
                        let public = im.visibility.as_str() == "public";
                        x.open("launchPermission");
                        if public {
                            x.open("item").text("group", "all").close("item");
                        }
                        for m in &im.members {
                            x.open("item").text("userId", m).close("item");
                        }
                        x.close("launchPermission");
                    }
                    "description" => {
                        x.open("description");
                        if let Some(d) = im.properties.get("description") {
                            x.text("value", d);
                        }
                        x.close("description");
                    }
                    _ => {
                        x.items("blockDeviceMapping", Vec::<()>::new(), |_, ()| {});
                    }
                }
                Ok(x)
            }
            Op::ModifyImageAttribute { id, change } => {
                let im = c.get_image(p, &id).await?;
                // Every name checked before the first change: bad input
                // changes nothing.
                for project in &change.add_projects {
                    if ctx
                        .core
                        .identity
                        .find_project(project, None)
                        .await?
                        .is_none()
                    {
                        return Err(Ec2Error::new(
                            400,
                            "InvalidUserID.Malformed",
                            format!("The user ID '{project}' is not a project of this cloud"),
                        ));
                    }
                }
                if let Some(gone) = change
                    .remove_projects
                    .iter()
                    .find(|r| !im.members.contains(r))
                {
                    return Err(Ec2Error::invalid(format!(
                        "The image {} has no launch permission for '{gone}'",
                        im.id
                    )));
                }
                for project in &change.add_projects {
                    c.share_image(p, &im.id, project).await?;
                }
                for project in &change.remove_projects {
                    c.unshare_image(p, &im.id, project).await?;
                }
                if change.add_all || change.remove_all {
                    let visibility = if change.add_all {
                        "public"
                    } else if c.get_image(p, &im.id).await?.members.is_empty() {
                        "private"
                    } else {
                        "shared"
                    };
                    c.update_image(
                        p,
                        &im.id,
                        nuage_compute::ImagePatch {
                            visibility: Some(visibility.into()),
                            ..Default::default()
                        },
                    )
                    .await?;
                }
                if let Some(d) = change.description {
                    c.update_image(
                        p,
                        &im.id,
                        nuage_compute::ImagePatch {
                            properties: BTreeMap::from([("description".to_string(), d)]),
                            ..Default::default()
                        },
                    )
                    .await?;
                }
                let mut x = ctx.xml("ModifyImageAttribute");
                x.bool("return", true);
                Ok(x)
            }
            Op::DescribeInstanceTypes {
                names,
                filters,
                page: (max, token),
            } => {
                let all = c.list_instance_types(p).await?;
                for n in &names {
                    if !all.iter().any(|t| &t.name == n) {
                        return Err(Ec2Error::invalid(format!(
                            "The following supplied instance types do not exist: [{n}]"
                        )));
                    }
                }
                let mut shown: Vec<&InstanceType> = all
                    .iter()
                    .filter(|t| {
                        (names.is_empty() || names.contains(&t.name))
                            && keep(&filters, &BTreeMap::new(), |f| match f {
                                "instance-type" => vec![t.name.clone()],
                                "vcpu-info.default-vcpus" => vec![t.vcpus.to_string()],
                                "memory-info.size-in-mib" => vec![t.memory_mib.to_string()],
                                "current-generation" => vec!["true".into()],
                                _ => vec![],
                            })
                    })
                    .collect();
                shown.sort_by(|a, b| a.name.cmp(&b.name));
                if let Some(t) = &token {
                    shown.retain(|it| it.name.as_str() > t.as_str());
                }
                let mut next = None;
                if let Some(n) = max {
                    if shown.len() > n {
                        shown.truncate(n);
                        next = shown.last().map(|t| t.name.clone());
                    }
                }
                let mut x = ctx.xml("DescribeInstanceTypes");
                x.items("instanceTypeSet", shown, |x, t| {
                    x.text("instanceType", &t.name)
                        .bool("currentGeneration", true)
                        .bool("freeTierEligible", false)
                        .bool("bareMetal", false)
                        .text("hypervisor", "nitro")
                        .bool("burstablePerformanceSupported", t.name.starts_with("t2."))
                        .bool("instanceStorageSupported", true);
                    x.strings("supportedUsageClasses", ["on-demand", "spot"]);
                    x.open("processorInfo");
                    x.strings("supportedArchitectures", [arch()]);
                    x.close("processorInfo");
                    x.open("vCpuInfo")
                        .display("defaultVCpus", t.vcpus)
                        .display("defaultCores", t.vcpus)
                        .display("defaultThreadsPerCore", 1)
                        .close("vCpuInfo");
                    x.open("memoryInfo")
                        .display("sizeInMiB", t.memory_mib)
                        .close("memoryInfo");
                    x.open("instanceStorageInfo")
                        .display("totalSizeInGB", t.disk_gib)
                        .close("instanceStorageInfo");
                });
                x.opt("nextToken", next.as_deref());
                Ok(x)
            }
        }
    }
}

async fn run_instances(ctx: &Ctx<'_>, mut req: RunRequest, names: Vec<String>) -> Result<Xml> {
    let p = ctx.principal;
    // Security groups named rather than given by id: resolve them in the
    // caller's project (EC2's SecurityGroup.N).
    if !names.is_empty() {
        let all = ctx.core.network.list_security_groups(p, false).await?;
        let ids = req.security_groups.get_or_insert_with(Vec::new);
        for name in &names {
            match all
                .iter()
                .find(|sg| &sg.name == name && sg.project_id == p.project_id)
            {
                Some(sg) => ids.push(sg.id.clone()),
                None => {
                    return Err(Ec2Error::not_found(
                        "InvalidGroup.NotFound",
                        format!("The security group '{name}' does not exist"),
                    ))
                }
            }
        }
    }
    let instances = ctx.core.compute.run_instances(p, req).await?;
    let mut x = ctx.xml("RunInstances");
    if let Some(first) = instances.first() {
        x.text("reservationId", &first.reservation_id)
            .text("ownerId", &first.project_id);
    }
    x.items("groupSet", Vec::<()>::new(), |_, ()| {});
    x.items("instancesSet", &instances, |x, i| {
        instance(x, i, &ctx.core.region)
    });
    Ok(x)
}

/// RegisterImage: a new image whose data is the object at
/// `bucket/key` (a root filesystem tar, as `nuage image upload` takes),
/// read with the caller's own rights on the object store.
async fn register_image(
    ctx: &Ctx<'_>,
    name: String,
    location: String,
    architecture: Option<String>,
    description: Option<String>,
) -> Result<Xml> {
    use futures_util::StreamExt;
    let p = ctx.principal;
    let (bucket, key) = location
        .trim_start_matches("s3://")
        .split_once('/')
        .filter(|(b, k)| !b.is_empty() && !k.is_empty())
        .ok_or_else(|| {
            Ec2Error::invalid(format!(
                "ImageLocation '{location}' is not bucket/key of an object"
            ))
        })?;
    let (_, _, body) = ctx
        .core
        .objects
        .get_object(Some(p), bucket, key, None)
        .await
        .map_err(|e| {
            let (_, msg) = crate::context::public_error(&e);
            Ec2Error::invalid(format!("ImageLocation '{location}': {msg}"))
        })?;
    let mut properties = BTreeMap::new();
    if let Some(d) = description {
        properties.insert("description".to_string(), d);
    }
    let image = ctx
        .core
        .compute
        .create_image(
            p,
            nuage_compute::NewImage {
                name,
                visibility: None,
                architecture: architecture.map(|a| if a == "arm64" { "aarch64".into() } else { a }),
                properties,
            },
        )
        .await?;
    let result = async {
        let mut upload = ctx.core.compute.begin_upload(p, &image.id).await?;
        let mut stream = body.into_stream();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(c) => upload.write(c).await?,
                Err(e) => {
                    upload.abort().await;
                    return Err(nuage_compute::ComputeError::Internal(format!(
                        "reading {location}: {e}"
                    )));
                }
            }
        }
        upload.finish().await
    }
    .await;
    if let Err(e) = result {
        // No half-registered image stays behind.
        let _ = ctx.core.compute.delete_image(p, &image.id).await;
        return Err(e.into());
    }
    let mut x = ctx.xml("RegisterImage");
    x.text("imageId", &image.id);
    Ok(x)
}

/// The security groups of an instance's first port (EC2's instance
/// `groupSet`), as the network service gives them with its addresses.
fn groups_of(i: &Instance) -> &[(String, String)] {
    i.network_interfaces
        .first()
        .map_or(&[][..], |n| n.security_groups.as_slice())
}

fn state(x: &mut Xml, name: &str, s: State) {
    x.open(name)
        .display("code", state_code(s))
        .text("name", s.as_str())
        .close(name);
}

/// EC2's state codes (the low byte of `instanceState.code`).
fn state_code(s: State) -> u8 {
    match s {
        State::Pending => 0,
        State::Running => 16,
        State::ShuttingDown => 32,
        State::Terminated => 48,
        State::Stopping => 64,
        State::Stopped => 80,
    }
}

/// DescribeInstanceStatus's summary: `ok` once running, else
/// `initializing` or `not-applicable`.
fn health(i: &Instance) -> &'static str {
    match i.state {
        State::Running => "ok",
        State::Pending => "initializing",
        _ => "not-applicable",
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One instance, with the fields clients read (the EC2 reference's
/// `Instance`): state, addresses and DNS names, VPC and subnet, network
/// interfaces, groups, placement, launch time, key, architecture, root
/// device, state reason, tags.
fn instance(x: &mut Xml, i: &Instance, region: &str) {
    use nuage_model::filter::private_dns_name;
    let private_dns = i
        .private_ip_address
        .as_deref()
        .map(|ip| private_dns_name(ip, region))
        .unwrap_or_default();
    x.text("instanceId", &i.id).text("imageId", &i.image_id);
    state(x, "instanceState", i.state);
    x.text("privateDnsName", &private_dns)
        .text("dnsName", "")
        .text(
            "reason",
            i.state_reason.as_ref().map_or("", |r| r.message.as_str()),
        )
        .opt("keyName", i.key_name.as_deref())
        .display("amiLaunchIndex", i.launch_index);
    x.items("productCodes", Vec::<()>::new(), |_, ()| {});
    x.text("instanceType", &i.instance_type)
        .text("launchTime", &i.launch_time);
    x.open("placement")
        .text("availabilityZone", &i.availability_zone)
        .text("groupName", i.placement_group.as_deref().unwrap_or(""))
        .text("tenancy", "default")
        .close("placement");
    x.open("monitoring")
        .text("state", "disabled")
        .close("monitoring");
    if let Some(n) = i.network_interfaces.first() {
        x.text("subnetId", &n.subnet_id)
            .text("vpcId", &n.network_id);
    }
    x.opt("privateIpAddress", i.private_ip_address.as_deref())
        .opt("ipAddress", i.public_ip_address.as_deref())
        .bool("sourceDestCheck", true);
    x.items("groupSet", groups_of(i), |x, (gid, name)| {
        x.text("groupId", gid).text("groupName", name);
    });
    if let Some(r) = &i.state_reason {
        x.open("stateReason")
            .text("code", &r.code)
            .text("message", &r.message)
            .close("stateReason");
    }
    x.text("architecture", arch())
        .text("rootDeviceType", "ebs")
        .text("rootDeviceName", "/dev/sda1");
    x.items("blockDeviceMapping", Vec::<()>::new(), |_, ()| {});
    x.text("virtualizationType", "hvm")
        .opt("clientToken", i.client_token.as_deref());
    x.tag_set(&i.tags);
    x.text("hypervisor", "xen");
    x.items(
        "networkInterfaceSet",
        i.network_interfaces.iter().enumerate(),
        |x, (idx, n)| {
            let dns = private_dns_name(&n.private_ip, region);
            x.text("networkInterfaceId", &n.port_id)
                .text("subnetId", &n.subnet_id)
                .text("vpcId", &n.network_id)
                .text("description", "")
                .text("ownerId", &i.project_id)
                .text("status", "in-use")
                .text("macAddress", &n.mac_address)
                .text("privateIpAddress", &n.private_ip)
                .text("privateDnsName", &dns)
                .bool("sourceDestCheck", true);
            x.items("groupSet", &n.security_groups, |x, (gid, name)| {
                x.text("groupId", gid).text("groupName", name);
            });
            x.open("attachment")
                .text(
                    "attachmentId",
                    &format!(
                        "eni-attach-{}",
                        n.port_id
                            .trim_start_matches("eni-")
                            .trim_start_matches("port-")
                    ),
                )
                .display("deviceIndex", idx)
                .text("status", "attached")
                .text("attachTime", &i.launch_time)
                .bool("deleteOnTermination", true)
                .close("attachment");
            let assoc = |x: &mut Xml| {
                if let Some(ip) = &n.public_ip {
                    x.open("association")
                        .text("publicIp", ip)
                        .text("publicDnsName", "")
                        .text("ipOwnerId", &i.project_id)
                        .close("association");
                }
            };
            assoc(x);
            x.items("privateIpAddressesSet", [()], |x, ()| {
                x.text("privateIpAddress", &n.private_ip)
                    .text("privateDnsName", &dns)
                    .bool("primary", true);
                assoc(x);
            });
            x.text("interfaceType", "interface");
        },
    );
    x.bool("ebsOptimized", false).bool("enaSupport", true);
    x.open("cpuOptions")
        .display("coreCount", i.vcpus)
        .display("threadsPerCore", 1)
        .close("cpuOptions");
    x.open("metadataOptions")
        .text("state", "applied")
        .text("httpEndpoint", "enabled")
        .display("httpPutResponseHopLimit", 1)
        .close("metadataOptions");
}

/// EC2's name for this machine's architecture.
fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        "x86" => "i386",
        other => other,
    }
}

fn key_field(k: &KeyPair, f: &str) -> Vec<String> {
    match f {
        "key-pair-id" => vec![k.id.clone()],
        "key-name" => vec![k.name.clone()],
        "fingerprint" => vec![k.fingerprint.clone()],
        "key-type" => vec![k.key_type.clone()],
        _ => vec![],
    }
}

fn image_arch(im: &Image) -> String {
    match im.architecture.as_deref() {
        Some("amd64") | None => arch().to_string(),
        Some("arm64") | Some("aarch64") => "arm64".into(),
        Some(a) => a.to_string(),
    }
}

/// EC2's image state from Glance's status.
fn image_state(im: &Image) -> &'static str {
    match im.status.as_str() {
        "active" => "available",
        "queued" | "saving" | "snapshotting" => "pending",
        "deleted" => "deregistered",
        _ => "failed",
    }
}

fn image_field(im: &Image, f: &str) -> Vec<String> {
    match f {
        "architecture" => vec![image_arch(im)],
        "image-id" => vec![im.id.clone()],
        "image-type" => vec!["machine".into()],
        "is-public" => vec![(im.visibility.as_str() == "public").to_string()],
        "name" => vec![im.name.clone()],
        "owner-id" => vec![im.owner.clone()],
        "state" => vec![image_state(im).into()],
        "root-device-type" => vec!["ebs".into()],
        "virtualization-type" => vec!["hvm".into()],
        _ => vec![],
    }
}

fn image(x: &mut Xml, im: &Image) {
    x.text("imageId", &im.id)
        .text("imageLocation", &format!("{}/{}", im.owner, im.name))
        .text("imageState", image_state(im))
        .text("imageOwnerId", &im.owner)
        .text("creationDate", &im.created_at)
        .bool("isPublic", im.visibility.as_str() == "public")
        .text("architecture", &image_arch(im))
        .text("imageType", "machine")
        .text("name", &im.name)
        .opt(
            "description",
            im.properties.get("description").map(String::as_str),
        )
        .text("rootDeviceType", "ebs")
        .text("rootDeviceName", "/dev/sda1");
    x.items("blockDeviceMapping", Vec::<()>::new(), |_, ()| {});
    x.text("virtualizationType", "hvm")
        .text("hypervisor", "xen");
    if im.status == "killed" {
        x.open("stateReason")
            .text("code", "Client.InternalError")
            .text(
                "message",
                "the image could not be made; see the server's log for why",
            )
            .close("stateReason");
    }
    let tags: Vec<(String, String)> = im
        .properties
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(TAG_PROPERTY)?.to_string(), v.clone())))
        .collect();
    x.tag_set(tags.iter().map(|(k, v)| (k, v)));
}
