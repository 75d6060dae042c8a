//! The compute driver trait: what a node agent asks of whatever runs
//! instances on its node.
//!
//! One trait serves the container driver (an OCI runtime), the VM driver
//! (QEMU) and the [`fake`] driver (simulated nodes for scheduler and API
//! tests at thousands of instances). It is shaped for level-triggered
//! reconciliation: every call is idempotent and says what should be true
//! afterwards ("this instance runs", "nothing of this instance is left"),
//! never "do this step", so that a reconciler can call it again after a
//! crash at any point and the node converges. See `docs/adr/0009-compute.md`.

pub mod fake;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What can go wrong in a driver; the message carries the context.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The spec cannot be run by this driver (unsupported image format,
    /// limits the node cannot enforce…). Retrying will not help.
    #[error("{0}")]
    Invalid(String),
    /// The runtime or the kernel refused or failed; a retry may succeed.
    #[error("{0}")]
    Failed(String),
}

impl DriverError {
    pub fn failed(context: impl std::fmt::Display, err: impl std::fmt::Display) -> Self {
        DriverError::Failed(format!("{context}: {err}"))
    }
}

pub type DriverResult<T> = Result<T, DriverError>;

/// What a node offers, reported to the scheduler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    pub vcpus: u32,
    pub ram_mib: u64,
    pub disk_gib: u64,
    /// `x86_64`, `aarch64`…, as `uname -m` says.
    pub arch: String,
    /// `container`, `qemu` or `fake`.
    pub hypervisor: String,
}

/// The limits an instance type sets; enforced by cgroups for containers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    pub vcpus: u32,
    pub memory_mib: u64,
    /// Most processes (and threads) the instance may have at once.
    pub pids_limit: u32,
    /// Relative block I/O weight, 10..=1000 (cgroup blkio/io weight).
    pub io_weight: u16,
    pub disk_gib: u64,
}

/// A file the driver places on the instance's config drive, which the
/// instance sees read-only under [`CONFIG_DRIVE_MOUNT`], laid out as
/// OpenStack's config drive (`openstack/latest/meta_data.json`,
/// `openstack/latest/user_data`, `ec2/latest/meta-data.json`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigFile {
    /// Relative path inside the config drive, e.g. `openstack/latest/user_data`.
    pub path: String,
    pub contents: Vec<u8>,
}

/// Where instances find their config drive.
pub const CONFIG_DRIVE_MOUNT: &str = "/mnt/config";

/// One network interface of an instance: its port on a virtual network, as
/// the network service allocated it. The driver makes it exist before the
/// init (or a VM) starts, through the node's [`NicPlugger`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nic {
    /// The port (`eni-…`).
    pub port_id: String,
    pub network_id: String,
    /// The network's VLAN id, for a network carried on the node's trunk.
    #[serde(default)]
    pub vlan: Option<u16>,
    /// `fa:16:3e:…`.
    pub mac: String,
    /// The fixed address with its subnet's prefix length: `10.0.0.5/16`.
    pub address: String,
    /// Where the default route points; `None` on an isolated subnet.
    pub gateway: Option<String>,
    /// The host end of the NIC (a veth for a container, a TAP for a VM):
    /// [`nic_host_ifname`] of the port.
    pub host_ifname: String,
}

/// The host-side interface name of a port: `nv-` and the first 12 hex
/// digits of the port id's SHA-256, 15 bytes (Linux's IFNAMSIZ less its
/// NUL); a collision on one node needs some 16 million ports to get likely.
pub fn nic_host_ifname(port_id: &str) -> String {
    derived_ifname("nv-", port_id)
}

/// `prefix` + 12 hex digits of the id's SHA-256: the naming of every
/// interface nuage makes, so that names stay within IFNAMSIZ.
pub fn derived_ifname(prefix: &str, id: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(id.as_bytes());
    let mut name = String::with_capacity(prefix.len() + 12);
    name.push_str(prefix);
    for b in &digest[..6] {
        name.push_str(&format!("{b:02x}"));
    }
    name
}

/// What wires an instance's NICs on the node's virtual networks: the
/// network data plane, which the compute driver calls once the instance's
/// network namespace exists and before its init starts (CNI's ADD and DEL).
#[async_trait::async_trait]
pub trait NicPlugger: Send + Sync + 'static {
    /// Makes the NICs exist, configured, in the namespace (a bind-mounted
    /// nsfs file). Idempotent; corrects whatever differs.
    async fn plug(&self, instance_id: &str, netns: &Path, nics: &[Nic]) -> DriverResult<()>;

    /// Makes nothing of these NICs remain on the node. Idempotent.
    async fn unplug(&self, instance_id: &str, nics: &[Nic]) -> DriverResult<()>;

    /// Which of these NICs are wired now (host end on its network's
    /// bridge), in order. A failure to look is an error, never "unwired".
    async fn wired(&self, nics: &[Nic]) -> DriverResult<Vec<bool>>;
}

/// Everything a driver needs to run one instance. The same spec is passed on
/// every call for the instance's whole life, so a driver can (re)create what
/// is missing from it alone.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSpec {
    /// The instance id (`i-…`); the driver names everything it makes after it.
    pub id: String,
    pub hostname: String,
    /// The image's unpacked root filesystem on this node, read-only; shared by
    /// every instance of the image (the driver layers a private copy-on-write
    /// upper directory on it).
    pub rootfs: PathBuf,
    /// The process to run as the instance's init, with its environment
    /// (`KEY=value`) and working directory.
    pub command: Vec<String>,
    pub env: Vec<String>,
    pub workdir: String,
    pub resources: Resources,
    pub config_drive: Vec<ConfigFile>,
    /// Its network interfaces, in order (`eth0` first); empty: loopback only.
    pub nics: Vec<Nic>,
    /// The search domain of the instance's resolver (`<region>.compute.internal`),
    /// whose names the network's resolver at the first NIC's gateway answers.
    pub dns_domain: Option<String>,
}

/// What a driver observes of an instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "power", rename_all = "snake_case")]
pub enum Power {
    /// The instance's init process runs.
    Running { pid: u32 },
    /// The instance exists on the node (its disk is kept) but nothing runs:
    /// never started, stopped, or its init exited.
    Stopped,
    /// Nothing of the instance is on this node.
    Absent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    pub power: Power,
    /// Processes of the instance killed for exceeding its memory limit since
    /// it was created (kept across stops and starts while the driver can).
    pub oom_kills: u64,
    /// The instance's network namespace, where the network driver plugs its
    /// interfaces (the hook point); `None` when the instance is absent.
    pub netns: Option<PathBuf>,
    /// How the last incarnation's init ended, when the driver saw it end;
    /// `None` while it runs, before it first ran, or when the end was not
    /// seen (a driver that restarted cannot always tell).
    #[serde(default)]
    pub exit: Option<Exit>,
    /// The host ends of its NICs that exist, by port id.
    #[serde(default)]
    pub nics: Vec<ObservedNic>,
}

/// A NIC of an instance as the node has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedNic {
    pub port_id: String,
    pub host_ifname: String,
    /// Whether its host end is on its network's bridge, as the node's
    /// plugger found it (`observe` looks; a NIC deleted by hand reads
    /// `Some(false)` and the reconciler plugs it again); `None` where the
    /// call did not look.
    #[serde(default)]
    pub wired: Option<bool>,
}

impl Observed {
    pub fn absent() -> Self {
        Observed {
            power: Power::Absent,
            oom_kills: 0,
            netns: None,
            exit: None,
            nics: Vec::new(),
        }
    }
}

/// How an instance's init ended: what tells "it exited with status 3" from
/// "it was killed", in the instance's state reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// This signal killed it.
    Signal(i32),
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "its init exited with status {c}"),
            Exit::Signal(s) => write!(f, "its init was killed by signal {s}"),
        }
    }
}

/// Called by a driver with an instance id when that instance changed state
/// on its own (its init exited, it was OOM-killed), so the reconciler looks
/// at it without waiting for the next resync.
pub type EventSink = Arc<dyn Fn(&str) + Send + Sync>;

/// What a node agent asks of the thing that runs instances.
///
/// Every method is idempotent. Implementations must be safe to call
/// concurrently for different instances; the reconcile runtime never calls
/// them concurrently for the same instance.
#[async_trait::async_trait]
pub trait ComputeDriver: Send + Sync + 'static {
    /// Short name: `container`, `qemu`, `fake`.
    fn name(&self) -> &'static str;

    /// What this node offers.
    async fn capacity(&self) -> DriverResult<Capacity>;

    /// Where the driver reports instances that change on their own.
    fn set_event_sink(&self, sink: EventSink);

    /// What wires instances' NICs on this node's networks. A driver that
    /// plugs NICs itself refuses a spec with NICs until it has one; the
    /// default ignores it (the fake driver simulates NICs).
    fn set_nic_plugger(&self, plugger: Arc<dyn NicPlugger>) {
        let _ = plugger;
    }

    /// Makes the instance run: creates whatever is missing (disk, config
    /// drive, namespaces, cgroup), starts its init if it does not run.
    async fn ensure_running(&self, spec: &InstanceSpec) -> DriverResult<Observed>;

    /// Makes a running instance take a changed spec in place, without a
    /// restart: what the reconciler calls when the instance's spec
    /// generation is ahead of the one its node applied. The container
    /// driver updates the cgroup limits (a resize); the VM driver will
    /// hot-plug NICs and volumes here. An instance that does not run has
    /// nothing to update (its next start uses the spec). A change the
    /// driver cannot make in place is [`DriverError::Invalid`].
    async fn apply(&self, spec: &InstanceSpec) -> DriverResult<Observed>;

    /// Makes the instance not run, keeping its disk: asks its init to stop
    /// (SIGTERM for containers, ACPI for VMs), waits up to `grace`, then
    /// kills it.
    async fn ensure_stopped(&self, id: &str, grace: Duration) -> DriverResult<Observed>;

    /// Makes nothing of the instance remain on the node: process, runtime
    /// state, cgroup, mounts, directories, namespaces, console log.
    async fn ensure_absent(&self, id: &str) -> DriverResult<()>;

    /// What the node has of this instance now.
    async fn observe(&self, id: &str) -> DriverResult<Observed>;

    /// The ids of every instance that has anything on this node, including
    /// half-created or half-deleted leftovers, so that the agent can remove
    /// those the store no longer knows.
    async fn list(&self) -> DriverResult<Vec<String>>;

    /// The last `max_bytes` of the instance's console (its init's stdout and
    /// stderr), kept across reboots; empty when nothing was written.
    async fn console(&self, id: &str, max_bytes: usize) -> DriverResult<Vec<u8>>;

    /// Writes the instance's root disk, as its init sees it (the image with
    /// every change the instance made), to `out` as an uncompressed tar of
    /// a root filesystem, owners as the instance knows them: what the image
    /// store takes for a new image (CreateImage, Nova's `createImage`).
    ///
    /// Allowed while the instance runs or is stopped (its disk is kept).
    /// A running instance is held still for the copy so that the tar is one
    /// moment of its disk, and let go afterwards whatever happened; the
    /// container driver freezes its cgroup, the VM driver will take a qcow2
    /// snapshot of its disk. Writes nothing on the node beyond what the
    /// instance already has; a failure leaves the instance as it was.
    /// `spec` is the instance's (its image's root filesystem is the base
    /// of the disk).
    async fn snapshot(&self, spec: &InstanceSpec, out: SnapshotSink) -> DriverResult<()>;
}

/// Where [`ComputeDriver::snapshot`] writes its tar; blocking writes (the
/// driver writes from a blocking thread).
pub type SnapshotSink = Box<dyn std::io::Write + Send>;
