//! What the scheduler reads (node states, requests) and what it answers.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A CPU architecture, as a node reports it and an image or instance type asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Arch {
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "aarch64")]
    Aarch64,
}

impl Arch {
    /// The name used by `uname -m`, images and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Arch {
    type Err = String;

    /// Accepts the kernel's names and the common aliases (`amd64`, `arm64`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "x86_64" | "amd64" | "x86-64" => Ok(Arch::X86_64),
            "aarch64" | "arm64" => Ok(Arch::Aarch64),
            other => Err(format!(
                "unknown architecture {other:?} (x86_64 or aarch64)"
            )),
        }
    }
}

/// How an instance runs on a node: an OCI container or a QEMU virtual machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HypervisorType {
    Container,
    Vm,
}

impl HypervisorType {
    pub fn as_str(self) -> &'static str {
        match self {
            HypervisorType::Container => "container",
            HypervisorType::Vm => "vm",
        }
    }
}

impl fmt::Display for HypervisorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One compute node as the scheduler sees it: the capacity its agent
/// reported and the usage the control plane has placed on it.
///
/// The compute service builds these from the store before each scheduling
/// round; [`crate::Scheduler::place`] updates the usage fields of the nodes it
/// picks so that the caller can write the placements back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeState {
    pub id: String,
    /// Availability zone, e.g. `nuage-1a`.
    pub az: String,
    pub arch: Arch,
    /// What this node can run; an image asking for a type absent here is refused.
    pub hypervisor_types: Vec<HypervisorType>,
    /// Physical capacity, before allocation ratios.
    pub vcpus: u32,
    pub ram_mib: u64,
    pub disk_gib: u64,
    /// Sum of what the instances placed here were given.
    pub used_vcpus: u32,
    pub used_ram_mib: u64,
    pub used_disk_gib: u64,
    /// Number of instances placed here.
    pub instances: u32,
    /// Recent CPU load per vCPU (1-minute load average / vcpus), as the agent
    /// reported it; 1.0 means every core busy.
    pub load: f64,
    /// Operator-set labels (`gpu=nvidia`, `ssd=true`), matched by image properties.
    pub labels: BTreeMap<String, String>,
    /// A disabled node keeps its instances but takes no new ones.
    pub enabled: bool,
    /// Server groups that have at least one member on this node.
    pub groups: BTreeSet<String>,
}

impl NodeState {
    /// An enabled, empty container node with no labels.
    pub fn new(
        id: impl Into<String>,
        az: impl Into<String>,
        arch: Arch,
        vcpus: u32,
        ram_mib: u64,
        disk_gib: u64,
    ) -> Self {
        NodeState {
            id: id.into(),
            az: az.into(),
            arch,
            hypervisor_types: vec![HypervisorType::Container],
            vcpus,
            ram_mib,
            disk_gib,
            used_vcpus: 0,
            used_ram_mib: 0,
            used_disk_gib: 0,
            instances: 0,
            load: 0.0,
            labels: BTreeMap::new(),
            enabled: true,
            groups: BTreeSet::new(),
        }
    }

    /// RAM not yet given to instances (physical, ignoring the allocation ratio).
    pub fn free_ram_mib(&self) -> i64 {
        self.ram_mib as i64 - self.used_ram_mib as i64
    }

    /// Takes one instance of `req` on this node. Returns whether the request's
    /// server group was newly recorded here (so [`NodeState::release`] can undo it).
    pub fn claim(&mut self, req: &Request) -> bool {
        self.used_vcpus = self.used_vcpus.saturating_add(req.vcpus);
        self.used_ram_mib = self.used_ram_mib.saturating_add(req.ram_mib);
        self.used_disk_gib = self.used_disk_gib.saturating_add(req.disk_gib);
        self.instances = self.instances.saturating_add(1);
        match &req.group {
            Some(g) if !self.groups.contains(&g.id) => {
                self.groups.insert(g.id.clone());
                true
            }
            _ => false,
        }
    }

    /// Undoes one [`NodeState::claim`] of `req`.
    pub fn release(&mut self, req: &Request, added_group: bool) {
        self.used_vcpus = self.used_vcpus.saturating_sub(req.vcpus);
        self.used_ram_mib = self.used_ram_mib.saturating_sub(req.ram_mib);
        self.used_disk_gib = self.used_disk_gib.saturating_sub(req.disk_gib);
        self.instances = self.instances.saturating_sub(1);
        if added_group {
            if let Some(g) = &req.group {
                self.groups.remove(&g.id);
            }
        }
    }
}

/// What the image being launched requires of the node (Nova's image
/// properties: `hw_architecture`, `img_hv_type`, plus required node labels).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageProperties {
    pub arch: Option<Arch>,
    pub hypervisor_type: Option<HypervisorType>,
    /// Every one of these must be present on the node with the same value.
    pub required_labels: BTreeMap<String, String>,
}

/// Server group policy: keep members together or apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// All members on one node.
    Affinity,
    /// No two members on the same node.
    AntiAffinity,
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Policy::Affinity => "affinity",
            Policy::AntiAffinity => "anti-affinity",
        })
    }
}

/// The server group the new instances join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRef {
    pub id: String,
    pub policy: Policy,
}

/// One launch to place: the size of each instance (from its instance type),
/// where it may go, and how many.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub vcpus: u32,
    pub ram_mib: u64,
    pub disk_gib: u64,
    /// Architecture asked for by the instance type or the caller.
    pub arch: Option<Arch>,
    pub az: Option<String>,
    pub image_properties: ImageProperties,
    pub group: Option<GroupRef>,
    /// How many instances [`crate::Scheduler::place`] must place (all or none).
    /// `0` is read as 1.
    pub count: u32,
}

impl Request {
    /// A request for one instance of this size, anywhere.
    pub fn new(vcpus: u32, ram_mib: u64, disk_gib: u64) -> Self {
        Request {
            vcpus,
            ram_mib,
            disk_gib,
            count: 1,
            ..Request::default()
        }
    }
}

/// Where one instance goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// Index of the node in the slice given to the scheduler.
    pub node_index: usize,
    pub node_id: String,
}
