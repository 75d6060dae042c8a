//! Instances: run (quota, scheduling and the new rows in one transaction),
//! describe with EC2's filters and pagination, the state-changing actions,
//! long-polls for a state, and console output.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use base64::Engine;
use nuage_identity::policy::{authorize, Rule};
use nuage_model::identity::Principal;
use nuage_scheduler::{Arch, GroupRef, ImageProperties, Policy, Request};
use nuage_store::{StoreError, TxLock};
use serde::Deserialize;

use crate::error::Resource;
use crate::types::{Desired, Instance, State, StateChange};
use crate::{now, repo, Compute, ComputeError, ComputeResult, MAX_USER_DATA};

/// What `POST /instances` (RunInstances) asks for.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    pub image_id: String,
    pub instance_type: String,
    #[serde(default)]
    pub min_count: Option<u32>,
    #[serde(default)]
    pub max_count: Option<u32>,
    #[serde(default)]
    pub key_name: Option<String>,
    /// Base64, at most 16 KiB once decoded.
    #[serde(default)]
    pub user_data: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub availability_zone: Option<String>,
    /// The placement group the instances join, by name or id.
    #[serde(default)]
    pub placement_group: Option<String>,
    /// Makes the request idempotent: a retry with the same token returns
    /// the instances of the first.
    #[serde(default)]
    pub client_token: Option<String>,
    /// The network of each instance's port; the project's default network
    /// (made at first use) when absent.
    #[serde(default)]
    pub network_id: Option<String>,
    /// The ports' security groups (ids); the project's `default` group
    /// when absent.
    #[serde(default)]
    pub security_groups: Option<Vec<String>>,
    /// The subnet each port's address comes from (EC2's `SubnetId`); its
    /// network is the ports' network. With `network_id` too, they must
    /// agree.
    #[serde(default)]
    pub subnet_id: Option<String>,
    /// The port's exact address (EC2's `PrivateIpAddress`): one instance
    /// only, from `subnet_id` or the network's subnet holding it.
    #[serde(default)]
    pub private_ip_address: Option<String>,
    /// How the instance metadata service answers this instance (EC2's
    /// MetadataOptions).
    #[serde(default)]
    pub metadata_options: Option<MetadataOptions>,
}

/// EC2's `MetadataOptions`: only `HttpTokens` so far.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataOptions {
    #[serde(default)]
    pub http_tokens: Option<HttpTokens>,
}

/// Whether metadata requests need an IMDSv2 session token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpTokens {
    /// IMDSv1 and IMDSv2 both answered (EC2's default).
    #[default]
    Optional,
    /// Only requests with a valid token are answered (IMDSv2 only).
    Required,
}

impl HttpTokens {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpTokens::Optional => "optional",
            HttpTokens::Required => "required",
        }
    }

    pub fn parse(s: &str) -> Option<HttpTokens> {
        match s {
            "optional" => Some(HttpTokens::Optional),
            "required" => Some(HttpTokens::Required),
            _ => None,
        }
    }
}

/// What `PATCH /instances/{id}` changes (EC2's ModifyInstanceAttribute).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstancePatch {
    /// A new instance type: a stopped instance starts with it, a running
    /// one takes its limits in place (the reconciler re-applies the spec).
    #[serde(default)]
    pub instance_type: Option<String>,
    /// New user data (decoded bytes): only while the instance is stopped,
    /// as on EC2; the next start serves it.
    #[serde(skip)]
    pub user_data: Option<Vec<u8>>,
    /// The security groups (ids) of the instance's primary interface, its
    /// first port; allowed while it runs (EC2's GroupId.N).
    #[serde(skip)]
    pub security_groups: Option<Vec<String>>,
}

/// The state-changing actions on instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Stop,
    Start,
    Reboot,
    Terminate,
}

impl Action {
    const ALL: [Action; 4] = [
        Action::Stop,
        Action::Start,
        Action::Reboot,
        Action::Terminate,
    ];

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.verb() == s)
    }

    /// The verb, as in the API path and the policy action `compute:<verb>_instances`.
    pub fn verb(self) -> &'static str {
        match self {
            Action::Stop => "stop",
            Action::Start => "start",
            Action::Reboot => "reboot",
            Action::Terminate => "terminate",
        }
    }
}

/// What an action does to one instance: (new desired, new state, reboot).
type Change = (Desired, State, bool);

/// The change `action` makes to an instance in `state`: `None` where it is
/// already there, `Err` (why not, to follow "it is <state>") where it cannot.
fn transition(action: Action, state: State) -> Result<Option<Change>, &'static str> {
    match (action, state) {
        (Action::Stop, State::Running) => Ok(Some((Desired::Stopped, State::Stopping, false))),
        (Action::Stop, State::Stopping | State::Stopped) => Ok(None),
        (Action::Stop, State::Pending) => Err("; wait until it is running"),
        (Action::Start, State::Stopped) => Ok(Some((Desired::Running, State::Pending, false))),
        (Action::Start, State::Pending | State::Running) => Ok(None),
        (Action::Start, State::Stopping) => Err("; wait until it is stopped"),
        (Action::Reboot, State::Running) => Ok(Some((Desired::Running, State::Running, true))),
        (Action::Reboot, _) => Err("; only running instances can be rebooted"),
        (Action::Terminate, State::ShuttingDown | State::Terminated) => Err(" already"),
        (Action::Terminate, _) => Ok(Some((Desired::Terminated, State::ShuttingDown, false))),
        (_, State::ShuttingDown | State::Terminated) => Err(""),
    }
}

/// How many times an action plans again after losing a race with the
/// reconciler before it gives up with a conflict.
const ACT_RETRIES: u32 = 8;

/// DescribeInstances' filters and pagination, from query parameters.
#[derive(Debug, Clone, Default)]
pub struct InstanceQuery {
    /// Ids that must all exist (EC2's `--instance-ids`): an unknown one is
    /// an error, unlike the `instance-id` filter.
    pub instance_ids: Vec<String>,
    pub filters: Vec<(String, Vec<String>)>,
    pub max_results: Option<usize>,
    pub next_token: Option<String>,
    /// Admins only: every project's instances.
    pub all_projects: bool,
}

/// The instance filters the service answers (EC2's names; `node` is
/// nuage's own).
pub const INSTANCE_FILTERS: &[&str] = &[
    "instance-id",
    "instance-state-name",
    "instance-state-code",
    "instance-type",
    "image-id",
    "availability-zone",
    "key-name",
    "reservation-id",
    "placement-group-name",
    "owner-id",
    "tag-key",
    "tag-value",
    "node",
    "private-ip-address",
    "ip-address",
    "private-dns-name",
    "vpc-id",
    "subnet-id",
    "network-interface.network-interface-id",
    "network-interface.mac-address",
    "network-interface.subnet-id",
    "network-interface.vpc-id",
    "instance.group-id",
    "instance.group-name",
    "network-interface.group-id",
    "network-interface.group-name",
];

/// Filters answered from the instances' ports, which are read for every
/// candidate before filtering when one of these is used.
const ADDRESS_FILTERS: &[&str] = &[
    "private-ip-address",
    "ip-address",
    "private-dns-name",
    "vpc-id",
    "subnet-id",
    "network-interface.network-interface-id",
    "network-interface.mac-address",
    "network-interface.subnet-id",
    "network-interface.vpc-id",
    "instance.group-id",
    "instance.group-name",
    "network-interface.group-id",
    "network-interface.group-name",
];

impl InstanceQuery {
    /// Reads `name=v1,v2` pairs; `tag:KEY=v` filters on a tag's value.
    pub fn from_pairs(pairs: &[(String, String)]) -> ComputeResult<InstanceQuery> {
        let mut q = InstanceQuery::default();
        for (k, v) in pairs {
            let values = || {
                v.split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect::<Vec<_>>()
            };
            match k.as_str() {
                "instance_ids" => q.instance_ids.extend(values()),
                "max_results" => {
                    let n: usize = v
                        .parse()
                        .map_err(|_| ComputeError::invalid("max_results must be a number"))?;
                    if !(1..=1000).contains(&n) {
                        return Err(ComputeError::invalid("max_results must be 1 to 1000"));
                    }
                    q.max_results = Some(n);
                }
                "next_token" => q.next_token = Some(v.clone()),
                "all_projects" => q.all_projects = v == "true" || v == "1",
                name if INSTANCE_FILTERS.contains(&name) || name.starts_with("tag:") => {
                    q.filters.push((name.to_string(), values()))
                }
                other => {
                    return Err(ComputeError::invalid(format!(
                        "unknown filter {other:?}; known: {}, tag:KEY",
                        INSTANCE_FILTERS.join(", ")
                    )))
                }
            }
        }
        Ok(q)
    }

    /// Whether an instance passes every filter: EC2's semantics, values of
    /// one filter ORed with `*`/`?` wildcards, filters ANDed.
    fn matches(&self, i: &Instance, region: &str) -> bool {
        use nuage_model::filter::wildcard_match;
        self.filters.iter().all(|(name, values)| {
            let any = |x: &str| values.iter().any(|v| wildcard_match(v, x));
            let nics = || i.network_interfaces.iter();
            match name.as_str() {
                "instance-id" => any(&i.id),
                "instance-state-name" => any(i.state.as_str()),
                "instance-state-code" => any(&i.state_code.to_string()),
                "instance-type" => any(&i.instance_type),
                "image-id" => any(&i.image_id),
                "availability-zone" => any(&i.availability_zone),
                "key-name" => i.key_name.as_deref().is_some_and(any),
                "reservation-id" => any(&i.reservation_id),
                "placement-group-name" => i.placement_group.as_deref().is_some_and(any),
                "owner-id" => any(&i.project_id),
                "node" => any(&i.node),
                "tag-key" => i.tags.keys().any(|k| any(k)),
                "tag-value" => i.tags.values().any(|v| any(v)),
                "private-ip-address" => nics().any(|n| any(&n.private_ip)),
                "ip-address" => nics().any(|n| n.public_ip.as_deref().is_some_and(any)),
                "private-dns-name" => nics().any(|n| {
                    any(&nuage_model::filter::private_dns_name(
                        &n.private_ip,
                        region,
                    ))
                }),
                "vpc-id" | "network-interface.vpc-id" => nics().any(|n| any(&n.network_id)),
                "subnet-id" | "network-interface.subnet-id" => nics().any(|n| any(&n.subnet_id)),
                "network-interface.network-interface-id" => nics().any(|n| any(&n.port_id)),
                "network-interface.mac-address" => nics().any(|n| any(&n.mac_address)),
                "instance.group-id" | "network-interface.group-id" => {
                    nics().any(|n| n.security_groups.iter().any(|(id, _)| any(id)))
                }
                "instance.group-name" | "network-interface.group-name" => {
                    nics().any(|n| n.security_groups.iter().any(|(_, name)| any(name)))
                }
                tag => {
                    let key = tag.trim_start_matches("tag:");
                    i.tags.get(key).is_some_and(|v| values.is_empty() || any(v))
                }
            }
        })
    }

    /// What the store can narrow for this query (a superset of the
    /// answer; [`InstanceQuery::matches`] decides). Ids asked for are read
    /// alone, unfiltered, since every one must exist.
    fn scan(&self, project: Option<&str>) -> repo::InstanceScan {
        let mut scan = repo::InstanceScan {
            project: project.map(String::from),
            ..repo::InstanceScan::default()
        };
        if !self.instance_ids.is_empty() {
            if self.instance_ids.len() <= MAX_SCAN_VALUES {
                scan.ids = self.instance_ids.clone();
            }
            return scan;
        }
        for (name, values) in &self.filters {
            if values.len() > MAX_SCAN_VALUES {
                continue;
            }
            let column = match name.as_str() {
                "instance-id" => "id",
                "instance-state-name" => "state",
                "instance-type" => "instance_type",
                "image-id" => "image_id",
                "availability-zone" => "availability_zone",
                "key-name" => "key_name",
                "reservation-id" => "reservation_id",
                "placement-group-name" => "placement_group",
                "owner-id" => "project_id",
                "node" => "node_id",
                "tag-key" if !values.is_empty() => {
                    scan.tags_like.push(
                        values
                            .iter()
                            .map(|v| format!("%\"{}\":%", json_like(v)))
                            .collect(),
                    );
                    continue;
                }
                "tag-value" if !values.is_empty() => {
                    scan.tags_like.push(
                        values
                            .iter()
                            .map(|v| format!("%:\"{}\"%", json_like(v)))
                            .collect(),
                    );
                    continue;
                }
                tag if tag.starts_with("tag:") => {
                    // The key is literal; its wildcards are characters.
                    let key = json_like_literal(&tag["tag:".len()..]);
                    scan.tags_like.push(if values.is_empty() {
                        vec![format!("%\"{key}\":%")]
                    } else {
                        values
                            .iter()
                            .map(|v| format!("%\"{key}\":\"{}\"%", json_like(v)))
                            .collect()
                    });
                    continue;
                }
                _ => continue,
            };
            // Exact values only: a wildcard or escape stays with `matches`.
            if !values.is_empty() && values.iter().all(|v| !v.contains(['*', '?', '\\'])) {
                if column == "id" && scan.ids.is_empty() {
                    // Read through the primary key.
                    scan.ids = values.clone();
                } else {
                    scan.equal.push((column, values.clone()));
                }
            }
        }
        scan
    }

    fn needs_addresses(&self) -> bool {
        self.filters
            .iter()
            .any(|(n, _)| ADDRESS_FILTERS.contains(&n.as_str()))
    }
}

/// The most values of one filter (or ids) the store is asked to compare;
/// past it the filter is applied after reading, keeping each query's
/// parameters well under SQLite's and PostgreSQL's limits.
const MAX_SCAN_VALUES: usize = 200;

/// `s` as it appears inside a JSON string (serde_json's escapes, as the
/// tags column is written), then escaped for LIKE with `\`.
fn json_like_literal(s: &str) -> String {
    let json = serde_json::to_string(s).unwrap_or_default();
    let inner = json
        .get(1..json.len().saturating_sub(1))
        .unwrap_or_default();
    let mut out = String::with_capacity(inner.len());
    for c in inner.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An EC2 filter value (`*`, `?`, `\` escapes) as a LIKE pattern over the
/// JSON text that matches at least what the value matches: every wildcard
/// or escape becomes `%`, the literal runs between them are exact.
fn json_like(pattern: &str) -> String {
    let mut out = String::new();
    for (i, run) in pattern.split(['*', '?', '\\']).enumerate() {
        if i > 0 && !out.ends_with('%') {
            out.push('%');
        }
        out.push_str(&json_like_literal(run));
    }
    out
}

/// One page of instances.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<Instance>,
    pub next_token: Option<String>,
}

fn sort_key(i: &Instance) -> String {
    format!("{:016x}:{:08x}:{}", i.launch_ms, i.launch_index, i.id)
}

fn check_tags(tags: &BTreeMap<String, String>) -> ComputeResult<()> {
    if tags.len() > 50 {
        return Err(ComputeError::invalid("an instance has at most 50 tags"));
    }
    for (k, v) in tags {
        if k.is_empty() || k.len() > 128 || v.len() > 256 {
            return Err(ComputeError::invalid(format!(
                "tag {k:?}: keys are 1 to 128 characters, values at most 256"
            )));
        }
        if k.starts_with("aws:") || k.starts_with("nuage:") {
            return Err(ComputeError::invalid(format!(
                "tag {k:?}: the aws: and nuage: prefixes are reserved"
            )));
        }
    }
    Ok(())
}

impl Compute {
    /// Launches between `min_count` and `max_count` instances (as many as
    /// quota and capacity allow), all or nothing below `min_count`.
    pub async fn run_instances(
        &self,
        caller: &Principal,
        req: RunRequest,
    ) -> ComputeResult<Vec<Instance>> {
        let project = caller.project_id.clone();
        authorize(
            caller,
            "compute:run_instances",
            Rule::ProjectWrite(&project),
        )?;
        let min = req.min_count.unwrap_or(1);
        let max = req.max_count.unwrap_or(min);
        if min == 0 || max < min || max > 1000 {
            return Err(ComputeError::invalid(format!(
                "count {min}..{max}: min_count must be at least 1 and at most max_count, max_count at most 1000"
            )));
        }
        let user_data = match &req.user_data {
            None => None,
            Some(b64) => {
                let data = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|e| {
                        ComputeError::invalid(format!("user_data is not valid base64: {e}"))
                    })?;
                if data.len() > MAX_USER_DATA {
                    return Err(ComputeError::invalid(format!(
                        "user data is {} bytes; the limit is {MAX_USER_DATA} bytes (16 KiB)",
                        data.len()
                    )));
                }
                Some(data)
            }
        };
        check_tags(&req.tags)?;
        if let Some(token) = &req.client_token {
            if token.is_empty() || token.len() > 64 {
                return Err(ComputeError::invalid("client_token is 1 to 64 characters"));
            }
            // A retry after the launch committed: answer at once. The check
            // that counts is the one inside the launch's transaction.
            let previous = repo::instances_by_token(self.db().reader(), &project, token).await?;
            if !previous.is_empty() {
                return Ok(previous);
            }
        }
        let image = self.get_image(caller, &req.image_id).await?;
        if image.status != "active" {
            return Err(ComputeError::invalid(format!(
                "image {} is {}; only active images can be launched",
                image.id, image.status
            )));
        }
        let itype = self.launchable_type(caller, &req.instance_type).await?;
        if let Some(k) = &req.key_name {
            repo::get_key(self.db().reader(), &project, k)
                .await?
                .ok_or_else(|| ComputeError::not_found(Resource::KeyPair, k))?;
        }
        let group = match &req.placement_group {
            None => None,
            Some(name) => {
                // By name (EC2's GroupName), or by id (Nova's server group
                // hint names the group's id).
                let g = match repo::get_group(self.db().reader(), &project, name).await? {
                    Some(g) => Some(g),
                    None => {
                        repo::get_project_group_by_id(self.db().reader(), &project, name).await?
                    }
                }
                .ok_or_else(|| ComputeError::not_found(Resource::PlacementGroup, name))?;
                Some(GroupRef {
                    id: g.id,
                    policy: if g.strategy == "cluster" {
                        Policy::Affinity
                    } else {
                        Policy::AntiAffinity
                    },
                })
            }
        };
        // The subnet is looked up before the transaction: on SQLite a read
        // of the network service inside it would wait for its own writer.
        let subnet_network = match (self.network(), &req.subnet_id) {
            (_, None) => None,
            (None, Some(_)) => {
                return Err(ComputeError::invalid(
                    "subnet_id: this cloud runs no network service",
                ))
            }
            (Some(net), Some(sid)) => {
                let sub = net.get_subnet(caller, sid).await?;
                if let Some(n) = req.network_id.as_ref().filter(|n| **n != sub.network_id) {
                    return Err(ComputeError::invalid(format!(
                        "subnet {sid} is on network {}, not on network {n}",
                        sub.network_id
                    )));
                }
                Some(sub.network_id)
            }
        };
        if req.private_ip_address.is_some() && max > 1 {
            return Err(ComputeError::invalid(
                "private_ip_address names one address: launch one instance with it, not several",
            ));
        }
        let fixed_ips = match (&req.subnet_id, &req.private_ip_address) {
            (None, None) => Vec::new(),
            (subnet_id, ip_address) => vec![nuage_network::types::FixedIpRequest {
                subnet_id: subnet_id.clone(),
                ip_address: ip_address.clone(),
            }],
        };
        if let Some(az) = &req.availability_zone {
            let zones = self.availability_zones(caller).await?;
            if !zones.iter().any(|z| &z.name == az) {
                return Err(ComputeError::invalid(format!(
                    "availability zone {az} does not exist"
                )));
            }
        }
        let limit = |r: &'static str| {
            let id = self.inner.identity.clone();
            let p = project.clone();
            async move { id.quota_limit(&p, r).await }
        };
        let (lim_n, lim_c, lim_r) = (
            limit("instances").await?,
            limit("cores").await?,
            limit("ram").await?,
        );
        let arch = match &image.architecture {
            Some(a) => Some(a.parse::<Arch>().map_err(ComputeError::Invalid)?),
            None => None,
        };

        let mut tx = self.db().begin().await?;
        // One scheduler decision and one token check at a time across
        // controllers: a concurrent retry with the same client token waits
        // here, then finds the first launch's instances.
        self.db()
            .lock_transaction(&mut tx, TxLock::ComputeLaunch)
            .await?;
        if let Some(token) = &req.client_token {
            let previous = repo::instances_by_token(&mut *tx, &project, token).await?;
            if !previous.is_empty() {
                return Ok(previous);
            }
        }
        let (used_n, used_c, used_r) = repo::project_usage(&mut *tx, &project).await?;
        let fit = |limit: i64, used: i64, each: i64| -> i64 {
            if limit < 0 {
                i64::MAX
            } else {
                ((limit - used) / each.max(1)).max(0)
            }
        };
        let by_quota = [
            ("instances", fit(lim_n, used_n, 1), lim_n, used_n, 1),
            (
                "cores",
                fit(lim_c, used_c, itype.vcpus as i64),
                lim_c,
                used_c,
                itype.vcpus as i64,
            ),
            (
                "ram",
                fit(lim_r, used_r, itype.memory_mib as i64),
                lim_r,
                used_r,
                itype.memory_mib as i64,
            ),
        ];
        let allowed = by_quota.iter().map(|q| q.1).min().unwrap_or(0);
        if allowed < min as i64 {
            let (res, _, lim, used, each) = by_quota
                .iter()
                .find(|q| q.1 < min as i64)
                .copied()
                .unwrap_or(by_quota[0]);
            return Err(ComputeError::QuotaExceeded(format!(
                "quota exceeded for {res}: {min} instance(s) of {} need {} more, the project uses {used} of {lim}",
                itype.name,
                each * min as i64
            )));
        }
        let upper = (max as i64).min(allowed) as u32;
        let mut nodes = self.node_states(&mut tx).await?;
        let request = Request {
            vcpus: itype.vcpus,
            ram_mib: itype.memory_mib,
            disk_gib: itype.disk_gib,
            arch: None,
            az: req.availability_zone.clone(),
            image_properties: ImageProperties {
                arch,
                hypervisor_type: None,
                required_labels: BTreeMap::new(),
            },
            group: group.clone(),
            count: upper,
        };
        let placements = {
            let mut s = self
                .inner
                .scheduler
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            s.place_range(&mut nodes, &request, min, upper)
                .map_err(|e| ComputeError::InsufficientCapacity(e.to_string()))?
        };
        let reservation = nuage_model::id::ec2("r");
        let launch = now();
        // Ports are made in this transaction: a launch that fails or is
        // killed leaves no address allocated, a committed one has them all.
        let network_id = match (self.network(), &req.network_id) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(ComputeError::invalid(
                    "network_id: this cloud runs no network service",
                ))
            }
            (Some(_), Some(n)) => Some(n.clone()),
            (Some(_), None) if subnet_network.is_some() => subnet_network,
            (Some(net), None) => Some(net.ensure_default_network_in(&mut tx, &project).await?.id),
        };
        let mut out = Vec::with_capacity(placements.len());
        for (idx, p) in placements.iter().enumerate() {
            let id = nuage_model::id::ec2("i");
            let node = &nodes[p.node_index];
            let inst = Instance {
                id: id.clone(),
                reservation_id: reservation.clone(),
                project_id: project.clone(),
                user_id: caller.user_id.clone(),
                image_id: image.id.clone(),
                instance_type: itype.name.clone(),
                vcpus: itype.vcpus,
                memory_mib: itype.memory_mib,
                disk_gib: itype.disk_gib,
                state: State::Pending,
                state_code: State::Pending.code(),
                state_reason: None,
                status: "BUILD",
                key_name: req.key_name.clone(),
                availability_zone: node.az.clone(),
                placement_group: group.as_ref().map(|g| g.id.clone()),
                node: p.node_id.clone(),
                hostname: id.clone(),
                launch_index: idx as u32,
                launch_time: crate::types::rfc3339(launch),
                terminated_at: None,
                tags: req.tags.clone(),
                oom_kills: 0,
                desired: Desired::Running,
                reboot_requested: 0,
                reboot_done: 0,
                launch_ms: launch,
                terminated_ms: None,
                client_token: req.client_token.clone(),
                force_stop: false,
                generation: 1,
                observed_generation: 0,
                network_interfaces: Vec::new(),
                private_ip_address: None,
                public_ip_address: None,
            };
            let inserted = repo::insert_instance(
                &mut *tx,
                repo::NewInstance {
                    inst: &inst,
                    user_data: user_data.as_deref(),
                    http_tokens: req
                        .metadata_options
                        .as_ref()
                        .and_then(|m| m.http_tokens)
                        .unwrap_or_default(),
                },
                launch,
            )
            .await;
            match (inserted, &req.client_token) {
                (Ok(()), _) => {
                    if let (Some(net), Some(network_id)) = (self.network(), &network_id) {
                        net.create_port_in(
                            &mut tx,
                            caller,
                            nuage_network::types::NewPort {
                                network_id: network_id.clone(),
                                name: String::new(),
                                fixed_ips: fixed_ips.clone(),
                                security_groups: req.security_groups.clone(),
                                device_owner: nuage_network::types::device_owner::INSTANCE.into(),
                                device_id: id.clone(),
                            },
                        )
                        .await?;
                    }
                    out.push(inst)
                }
                (Err(StoreError::AlreadyExists { .. }), Some(token)) => {
                    // The unique index on (project, client token) refused a
                    // second launch that the lock did not serialise: the
                    // answer is the first launch's.
                    drop(tx);
                    return Ok(
                        repo::instances_by_token(self.db().reader(), &project, token).await?,
                    );
                }
                (Err(e), _) => return Err(e.into()),
            }
        }
        tx.commit().await.map_err(StoreError::from)?;
        if let Some(net) = self.network() {
            // The ports were written in this transaction: wake the agent.
            net.notify_changed();
        }
        tracing::info!(project = %project, reservation = %reservation, count = out.len(), instance_type = %itype.name, image = %image.id, "instances launched");
        // The reconciler starts before the answer is dressed: reading the
        // addresses back is no reason to delay the launch.
        self.trigger(out.iter().map(|i| i.id.clone()));
        self.fill_addresses(&mut out).await?;
        Ok(out)
    }

    /// An instance the caller may read; another project's is "not found".
    /// The instance's user data, base64 as it was given (EC2's
    /// DescribeInstanceAttribute userData); readers of the project only.
    /// An instance type the caller may launch: a private type is one only
    /// for its projects and admins, and a type the caller cannot see does
    /// not exist for it (the request is invalid, not a lookup miss).
    async fn launchable_type(
        &self,
        caller: &Principal,
        name: &str,
    ) -> ComputeResult<crate::types::InstanceType> {
        match self.get_instance_type(caller, name).await {
            Err(e) if nuage_model::HasKind::kind(&e) == nuage_model::ErrorKind::NotFound => Err(
                ComputeError::invalid(format!("instance type {name} does not exist")),
            ),
            other => other,
        }
    }

    pub async fn user_data(&self, caller: &Principal, id: &str) -> ComputeResult<Option<String>> {
        let inst = self.get_instance_row(caller, id).await?;
        Ok(repo::user_data(self.db().reader(), &inst.id)
            .await?
            .map(|b| base64::engine::general_purpose::STANDARD.encode(b)))
    }

    pub async fn get_instance(&self, caller: &Principal, id: &str) -> ComputeResult<Instance> {
        let inst = self.get_instance_row(caller, id).await?;
        self.with_addresses(inst).await
    }

    async fn with_addresses(&self, inst: Instance) -> ComputeResult<Instance> {
        let mut one = [inst];
        self.fill_addresses(&mut one).await?;
        let [inst] = one;
        Ok(inst)
    }

    /// The instance's row, without its addresses (one query).
    async fn get_instance_row(&self, caller: &Principal, id: &str) -> ComputeResult<Instance> {
        let missing = || ComputeError::not_found(Resource::Instance, id);
        if !id.starts_with("i-") || id.len() > 32 {
            return Err(ComputeError::invalid(format!(
                "{id:?} is not an instance id (i-…)"
            )));
        }
        let inst = repo::get_instance(self.db().reader(), id)
            .await?
            .ok_or_else(missing)?;
        authorize(
            caller,
            "compute:describe_instances",
            Rule::ProjectRead(&inst.project_id),
        )
        .map_err(|_| missing())?;
        Ok(inst)
    }

    /// Fills the instances' network interfaces and addresses from the
    /// network service (one query per few hundred instances).
    pub(crate) async fn fill_addresses(&self, items: &mut [Instance]) -> ComputeResult<()> {
        let Some(net) = self.network() else {
            return Ok(());
        };
        let ids: Vec<String> = items.iter().map(|i| i.id.clone()).collect();
        let mut by_device = net.device_addresses(&ids).await?;
        for inst in items.iter_mut() {
            if let Some(nics) = by_device.remove(&inst.id) {
                inst.private_ip_address = nics.first().map(|a| a.private_ip.clone());
                inst.public_ip_address = nics.iter().find_map(|a| a.public_ip.clone());
                inst.network_interfaces = nics;
            }
        }
        Ok(())
    }

    pub async fn describe_instances(
        &self,
        caller: &Principal,
        q: &InstanceQuery,
    ) -> ComputeResult<Page> {
        authorize(
            caller,
            "compute:describe_instances",
            Rule::ProjectRead(&caller.project_id),
        )?;
        let scope = if q.all_projects {
            authorize(caller, "compute:describe_all_instances", Rule::Admin)?;
            None
        } else {
            Some(caller.project_id.as_str())
        };
        let all = repo::scan_instances(self.db().reader(), &q.scan(scope)).await?;
        if !q.instance_ids.is_empty() {
            let have: HashSet<&str> = all.iter().map(|i| i.id.as_str()).collect();
            if let Some(missing) = q.instance_ids.iter().find(|id| !have.contains(id.as_str())) {
                return Err(ComputeError::not_found(Resource::Instance, missing));
            }
        }
        let ids: HashSet<&str> = q.instance_ids.iter().map(String::as_str).collect();
        let mut items: Vec<Instance> = all
            .into_iter()
            .filter(|i| ids.is_empty() || ids.contains(i.id.as_str()))
            .collect();
        // Address filters need the ports of every candidate; the others
        // filter first, so only the page's instances read their ports.
        let filled = q.needs_addresses();
        if filled {
            self.fill_addresses(&mut items).await?;
        }
        let region = self.region().to_string();
        items.retain(|i| q.matches(i, &region));
        if let Some(t) = &q.next_token {
            let after = String::from_utf8(
                hex::decode(t).map_err(|_| ComputeError::invalid("next_token is not valid"))?,
            )
            .map_err(|_| ComputeError::invalid("next_token is not valid"))?;
            items.retain(|i| sort_key(i) > after);
        }
        let mut next_token = None;
        if let Some(n) = q.max_results {
            if items.len() > n {
                items.truncate(n);
                next_token = items.last().map(|i| hex::encode(sort_key(i)));
            }
        }
        if !filled {
            self.fill_addresses(&mut items).await?;
        }
        Ok(Page { items, next_token })
    }

    /// (id, tags) of the caller's project's instances, oldest first:
    /// DescribeTags' share, without reading whole rows or addresses.
    pub async fn instance_tags(
        &self,
        caller: &Principal,
    ) -> ComputeResult<Vec<(String, BTreeMap<String, String>)>> {
        authorize(
            caller,
            "compute:describe_instances",
            Rule::ProjectRead(&caller.project_id),
        )?;
        Ok(repo::instance_tags(self.db().reader(), &caller.project_id).await?)
    }

    /// Waits until the instance is in `target` (or can no longer get there,
    /// or `timeout` passes), then returns it.
    pub async fn wait_for(
        &self,
        caller: &Principal,
        id: &str,
        target: State,
        timeout: Duration,
    ) -> ComputeResult<Instance> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Each wake reads the row alone; the addresses once, at the end.
            let inst = self.get_instance_row(caller, id).await?;
            let hopeless = inst.state == State::Terminated
                || (target == State::Running && inst.desired != Desired::Running)
                || (target == State::Stopped && inst.desired == Desired::Terminated);
            if inst.state == target || hopeless || tokio::time::Instant::now() >= deadline {
                return self.with_addresses(inst).await;
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// Adds or replaces the tags in `set` and removes those in `remove`
    /// (a key, or a key with the value it must have: EC2's DeleteTags) on
    /// an instance of the caller's project; at most 50 tags remain. With
    /// nothing to set or remove it only checks, writing nothing.
    pub async fn set_instance_tags(
        &self,
        caller: &Principal,
        id: &str,
        set: &BTreeMap<String, String>,
        remove: &[(String, Option<String>)],
    ) -> ComputeResult<()> {
        let inst = self.get_instance_row(caller, id).await?;
        authorize(
            caller,
            "compute:tag_instance",
            Rule::ProjectWrite(&inst.project_id),
        )?;
        if set.is_empty() && remove.is_empty() {
            // Nothing to change: the instance exists and is the caller's.
            return Ok(());
        }
        check_tags(set)?;
        // A concurrent change makes the swap miss; read again and retry.
        for _ in 0..8 {
            let Some(old) = repo::instance_tags_text(self.db().reader(), id).await? else {
                return Err(ComputeError::not_found(Resource::Instance, id));
            };
            let mut tags: BTreeMap<String, String> = serde_json::from_str(&old)
                .map_err(|e| ComputeError::Internal(format!("tags of {id}: {e}")))?;
            for (k, v) in remove {
                if v.as_ref().is_none_or(|v| tags.get(k) == Some(v)) {
                    tags.remove(k);
                }
            }
            tags.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
            check_tags(&tags)?;
            let new = serde_json::to_string(&tags)
                .map_err(|e| ComputeError::Internal(format!("tags of {id}: {e}")))?;
            if repo::swap_instance_tags(self.db().writer(), id, &old, &new, now()).await? {
                return Ok(());
            }
        }
        Err(ComputeError::Conflict(format!(
            "the tags of instance {id} kept changing; try again"
        )))
    }

    /// Changes an instance's spec. A resize is allowed while it runs or is
    /// stopped, within the project's quota and its node's capacity; it
    /// bumps the spec generation, and the reconciler applies it.
    pub async fn modify_instance(
        &self,
        caller: &Principal,
        id: &str,
        patch: InstancePatch,
    ) -> ComputeResult<Instance> {
        let inst = self.get_instance(caller, id).await?;
        authorize(
            caller,
            "compute:modify_instance",
            Rule::ProjectWrite(&inst.project_id),
        )?;
        if let Some(data) = &patch.user_data {
            if data.len() > crate::MAX_USER_DATA {
                return Err(ComputeError::invalid(format!(
                    "user data is at most {} bytes before base64",
                    crate::MAX_USER_DATA
                )));
            }
            if !repo::set_user_data(self.db().writer(), id, data, now()).await? {
                return Err(ComputeError::IncorrectState {
                    id: id.to_string(),
                    state: inst.state,
                    action: "change the user data of",
                    hint: "; the user data changes only while the instance is stopped",
                });
            }
            tracing::info!(instance = %id, bytes = data.len(), "user data replaced");
        }
        if let Some(groups) = &patch.security_groups {
            let net = self.network().ok_or_else(|| {
                ComputeError::invalid(
                    "this server runs without networking: instances have no interfaces",
                )
            })?;
            let ports = net.list_ports(caller, Some(&inst.id), false).await?;
            let primary = ports.first().ok_or_else(|| {
                ComputeError::invalid(format!(
                    "instance {id} has no network interface to put in security groups"
                ))
            })?;
            net.set_port_security_groups(caller, &primary.id, groups)
                .await?;
        }
        let Some(type_name) = patch.instance_type else {
            return self.get_instance(caller, id).await;
        };
        let itype = self.launchable_type(caller, &type_name).await?;
        if itype.name == inst.instance_type {
            return Ok(inst);
        }
        let limit = |r: &'static str| {
            let id = self.inner.identity.clone();
            let p = inst.project_id.clone();
            async move { id.quota_limit(&p, r).await }
        };
        let (lim_c, lim_r) = (limit("cores").await?, limit("ram").await?);
        let mut tx = self.db().begin().await?;
        self.db()
            .lock_transaction(&mut tx, TxLock::ComputeLaunch)
            .await?;
        let (_, used_c, used_r) = repo::project_usage(&mut *tx, &inst.project_id).await?;
        for (res, lim, used, old, new) in [
            (
                "cores",
                lim_c,
                used_c,
                inst.vcpus as i64,
                itype.vcpus as i64,
            ),
            (
                "ram",
                lim_r,
                used_r,
                inst.memory_mib as i64,
                itype.memory_mib as i64,
            ),
        ] {
            if lim >= 0 && new > old && used - old + new > lim {
                return Err(ComputeError::QuotaExceeded(format!(
                    "quota exceeded for {res}: {} needs {} more, the project uses {used} of {lim}",
                    itype.name,
                    new - old
                )));
            }
        }
        let mut nodes = self.node_states(&mut tx).await?;
        let node = nodes
            .iter_mut()
            .find(|n| n.id == inst.node)
            .ok_or_else(|| {
                ComputeError::Internal(format!("node {} of {id} is not registered", inst.node))
            })?;
        let size = |vcpus, ram_mib, disk_gib| Request {
            vcpus,
            ram_mib,
            disk_gib,
            arch: None,
            az: None,
            image_properties: ImageProperties::default(),
            group: None,
            count: 1,
        };
        node.release(&size(inst.vcpus, inst.memory_mib, inst.disk_gib), false);
        {
            let mut s = self
                .inner
                .scheduler
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            s.place(
                std::slice::from_mut(node),
                &size(itype.vcpus, itype.memory_mib, itype.disk_gib),
            )
            .map_err(|e| {
                ComputeError::InsufficientCapacity(format!(
                    "its node cannot take {}: {e}",
                    itype.name
                ))
            })?;
        }
        if !repo::resize_instance(&mut *tx, id, &itype, now()).await? {
            return Err(ComputeError::IncorrectState {
                id: id.to_string(),
                state: inst.state,
                action: "resize",
                hint: "; only running or stopped instances can be resized",
            });
        }
        tx.commit().await.map_err(StoreError::from)?;
        tracing::info!(instance = %id, from = %inst.instance_type, to = %itype.name, "instance resized");
        self.trigger([id.to_string()]);
        self.get_instance(caller, id).await
    }

    /// Stops, starts, reboots or terminates instances: every id is checked
    /// first, and one that is unknown, foreign or in the wrong state fails
    /// the whole call with nothing changed.
    pub async fn act(
        &self,
        caller: &Principal,
        action: Action,
        ids: &[String],
        force: bool,
    ) -> ComputeResult<Vec<StateChange>> {
        if ids.is_empty() {
            return Err(ComputeError::invalid("name at least one instance id"));
        }
        // The reconciler may move an instance between the plan's read and its
        // write. A move that leaves the action's change the same (terminate:
        // pending → running) is written as planned; one that changes it (a
        // running instance being rebooted crashes) makes the call plan again
        // on the new state, as if it had come a moment later, rather than
        // fail a request the user could not have timed better.
        let mut attempt = 0;
        let (plan, out) = loop {
            let plan = self.plan_action(caller, action, ids).await?;
            match self.apply_action(action, force, &plan).await? {
                Some(out) => break (plan, out),
                None if attempt < ACT_RETRIES => attempt += 1,
                None => {
                    return Err(ComputeError::conflict(
                        "the instances kept changing state; nothing was done, try again",
                    ))
                }
            }
        };
        tracing::info!(action = action.verb(), count = out.len(), "instance action");
        self.notify_changed();
        let forced = force && action == Action::Stop;
        self.trigger(
            plan.iter()
                .filter(|(_, c)| c.is_some() || forced)
                .map(|(i, _)| i.id.clone()),
        );
        Ok(out)
    }

    /// Each named instance (once) with the change `action` makes to it, or
    /// `None` where it is already there; an error if any cannot take it.
    async fn plan_action(
        &self,
        caller: &Principal,
        action: Action,
        ids: &[String],
    ) -> ComputeResult<Vec<(Instance, Option<Change>)>> {
        let verb = action.verb();
        let mut plan = Vec::with_capacity(ids.len());
        let mut seen = HashSet::new();
        for id in ids {
            if !seen.insert(id.as_str()) {
                continue;
            }
            let inst = self.get_instance(caller, id).await?;
            authorize(
                caller,
                &format!("compute:{verb}_instances"),
                Rule::ProjectWrite(&inst.project_id),
            )?;
            let change =
                transition(action, inst.state).map_err(|hint| ComputeError::IncorrectState {
                    id: id.clone(),
                    state: inst.state,
                    action: verb,
                    hint,
                })?;
            plan.push((inst, change));
        }
        Ok(plan)
    }

    /// Writes a plan in one transaction, each change only if its instance is
    /// still in a state from which `action` makes that same change (a
    /// terminate planned on `pending` still holds once it is `running`);
    /// `None` (nothing written) if one moved elsewhere meanwhile. A forced
    /// stop is written with the change (or onto an instance already
    /// stopping), in the store, so it survives a restart.
    async fn apply_action(
        &self,
        action: Action,
        force: bool,
        plan: &[(Instance, Option<Change>)],
    ) -> ComputeResult<Option<Vec<StateChange>>> {
        let force_stop = force && action == Action::Stop;
        let mut tx = self.db().begin().await?;
        let mut out = Vec::with_capacity(plan.len());
        for (inst, change) in plan {
            let current_state = match change {
                None => {
                    if force_stop && inst.state == State::Stopping {
                        repo::force_stop(&mut *tx, &inst.id, now()).await?;
                    }
                    inst.state
                }
                Some(change @ (desired, state, reboot)) => {
                    let from: Vec<State> = State::ALL
                        .into_iter()
                        .filter(|s| transition(action, *s) == Ok(Some(*change)))
                        .collect();
                    let won = repo::set_desired(
                        &mut *tx,
                        &inst.id,
                        &from,
                        *desired,
                        *state,
                        *reboot,
                        force_stop,
                        now(),
                    )
                    .await?;
                    if !won {
                        return Ok(None);
                    }
                    *state
                }
            };
            out.push(StateChange {
                instance_id: inst.id.clone(),
                previous_state: inst.state,
                current_state,
            });
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(Some(out))
    }

    /// The last `max_bytes` of the instance's console, as text.
    pub async fn console_output(
        &self,
        caller: &Principal,
        id: &str,
        max_bytes: usize,
    ) -> ComputeResult<String> {
        let inst = self.get_instance(caller, id).await?;
        let Some(agent) = self.agent(&inst.node) else {
            return Ok(String::new());
        };
        let bytes = agent
            .console(&inst.id, max_bytes.clamp(1, 1 << 20))
            .await
            .map_err(|e| ComputeError::driver(&inst.id, "reading the console of", e))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nuage_store::testing::{fresh, ENGINES};

    /// Tags chosen to trip a naive pattern: JSON escapes, LIKE's own
    /// wildcards, case, a value that looks like another pair.
    fn tags_of(n: usize) -> BTreeMap<String, String> {
        let mut t = BTreeMap::new();
        let name = match n % 7 {
            0 => "needle",
            1 => "Needle",
            2 => "hay",
            3 => "say \"hi\"",
            4 => "100%_sure\\",
            5 => "\"Name\":\"needle\"",
            _ => "née",
        };
        t.insert("Name".to_string(), name.to_string());
        if n.is_multiple_of(3) {
            t.insert("env".to_string(), "prod".to_string());
        }
        if n.is_multiple_of(5) {
            t.insert("odd key%_".to_string(), String::new());
        }
        t
    }

    fn instance(n: usize, project: &str) -> Instance {
        let state = State::ALL[n % State::ALL.len()];
        Instance {
            id: format!("i-{n:017x}"),
            reservation_id: format!("r-{:017x}", n / 4),
            project_id: project.to_string(),
            user_id: "u".into(),
            image_id: format!("ami-{:017x}", n % 2),
            instance_type: ["t2.nano", "t2.micro"][n % 2].into(),
            vcpus: 1,
            memory_mib: 512,
            disk_gib: 1,
            state,
            state_code: state.code(),
            state_reason: None,
            status: "",
            key_name: (!n.is_multiple_of(4)).then(|| format!("key-{}", n % 3)),
            availability_zone: ["nuage-1a", "nuage-1b"][n % 2].into(),
            placement_group: n.is_multiple_of(6).then(|| "pg".to_string()),
            node: format!("node-{}", n % 3),
            hostname: format!("h{n}"),
            launch_index: (n % 4) as u32,
            launch_time: String::new(),
            terminated_at: None,
            tags: tags_of(n),
            oom_kills: 0,
            desired: Desired::Running,
            reboot_requested: 0,
            reboot_done: 0,
            launch_ms: 0,
            terminated_ms: None,
            client_token: None,
            force_stop: false,
            generation: 1,
            observed_generation: 0,
            network_interfaces: Vec::new(),
            private_ip_address: None,
            public_ip_address: None,
        }
    }

    fn query(pairs: &[(&str, &[&str])]) -> InstanceQuery {
        InstanceQuery {
            filters: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect(),
            ..InstanceQuery::default()
        }
    }

    /// What the store narrows to is a superset of the answer for every
    /// filter (so the answer equals filtering every row of the project),
    /// and exact filters do narrow.
    #[tokio::test]
    async fn store_side_filters_never_lose_an_instance() {
        for engine in ENGINES {
            let t = fresh(engine).await.expect("a test database");
            let db = &t.db;
            for n in 0..70 {
                let project = if n % 10 == 9 { "other" } else { "p" };
                let inst = instance(n, project);
                repo::insert_instance(
                    db.writer(),
                    repo::NewInstance {
                        inst: &inst,
                        user_data: None,
                        http_tokens: HttpTokens::Optional,
                    },
                    1_000 + n as i64,
                )
                .await
                .expect("insert");
            }
            let every =
                repo::scan_instances(db.reader(), &InstanceQuery::default().scan(Some("p")))
                    .await
                    .expect("scan");
            assert_eq!(every.len(), 63, "{engine}");
            let cases: Vec<(InstanceQuery, usize)> = vec![
                (query(&[("tag:Name", &["needle"])]), 9),
                (query(&[("tag:Name", &["Needle", "hay"])]), 18),
                (query(&[("tag:Name", &["say \"hi\""])]), 9),
                (query(&[("tag:Name", &["100%_sure\\\\"])]), 9),
                (query(&[("tag:Name", &["100%_sure*"])]), 9),
                (query(&[("tag:Name", &["\"Name\":\"needle\""])]), 9),
                (query(&[("tag:Name", &["n?e"])]), 9),
                (query(&[("tag:Name", &["*eedle"])]), 18),
                (query(&[("tag:Name", &[])]), 63),
                (query(&[("tag:env", &[])]), 21),
                (query(&[("tag:odd key%_", &[""])]), 14),
                (query(&[("tag:odd key", &[])]), 0),
                (query(&[("tag-key", &["env", "odd*"])]), 30),
                (query(&[("tag-key", &["Nam?"])]), 63),
                (query(&[("tag-value", &["prod"])]), 21),
                (query(&[("tag-value", &["needle"])]), 9),
                (query(&[("tag-value", &[])]), 0),
                (
                    query(&[("instance-state-name", &["running", "stopped"])]),
                    19,
                ),
                (query(&[("instance-state-name", &["run*"])]), 10),
                (query(&[("instance-state-code", &["16"])]), 10),
                (
                    query(&[("instance-type", &["t2.nano"]), ("tag:env", &["prod"])]),
                    12,
                ),
                (query(&[("key-name", &["key-1"])]), 15),
                (query(&[("placement-group-name", &["pg"])]), 12),
                (query(&[("owner-id", &["other"])]), 0),
                (
                    query(&[("node", &["node-2"]), ("availability-zone", &["nuage-1b"])]),
                    9,
                ),
                (
                    query(&[(
                        "instance-id",
                        &["i-00000000000000005", "i-00000000000000009"],
                    )]),
                    1,
                ),
                (query(&[("reservation-id", &["r-00000000000000001"])]), 4),
                (query(&[("image-id", &["ami-00000000000000001"])]), 28),
            ];
            for (q, want) in cases {
                let narrowed = repo::scan_instances(db.reader(), &q.scan(Some("p")))
                    .await
                    .expect("scan");
                let got: Vec<&str> = narrowed
                    .iter()
                    .filter(|i| q.matches(i, "nuage-1"))
                    .map(|i| i.id.as_str())
                    .collect();
                let oracle: Vec<&str> = every
                    .iter()
                    .filter(|i| q.matches(i, "nuage-1"))
                    .map(|i| i.id.as_str())
                    .collect();
                assert_eq!(got, oracle, "{engine}: {:?}", q.filters);
                assert_eq!(got.len(), want, "{engine}: {:?}", q.filters);
                // Exact tag values and columns are narrowed by the store
                // (SQLite's LIKE also lets the other case through).
                let exact = q.filters.iter().all(|(name, values)| {
                    !name.contains("state-code")
                        && (name.starts_with("tag:") || !values.is_empty())
                        && values.iter().all(|v| !v.contains(['*', '?', '\\']))
                });
                if exact && *engine == "postgres" {
                    assert_eq!(narrowed.len(), want, "{engine}: {:?}", q.filters);
                }
            }
            // Ids are read alone, whatever the filters, and only the
            // project's.
            let q = InstanceQuery {
                instance_ids: vec!["i-00000000000000003".into(), "i-00000000000000009".into()],
                ..query(&[("tag:Name", &["hay"])])
            };
            let rows = repo::scan_instances(db.reader(), &q.scan(Some("p")))
                .await
                .expect("scan");
            let ids: Vec<&str> = rows.iter().map(|i| i.id.as_str()).collect();
            assert_eq!(ids, ["i-00000000000000003"], "{engine}");
        }
    }

    #[test]
    fn filter_values_become_json_like_patterns() {
        assert_eq!(json_like("needle"), "needle");
        assert_eq!(json_like("a*b?c"), "a%b%c");
        assert_eq!(json_like("**"), "%");
        assert_eq!(json_like("say \"hi\""), "say \\\\\"hi\\\\\"");
        assert_eq!(json_like("100%_"), "100\\%\\_");
        assert_eq!(json_like("a\\*b"), "a%b");
    }
}
