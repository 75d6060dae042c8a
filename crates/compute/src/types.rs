//! The compute resources as the API shows them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Milliseconds since the epoch as RFC 3339, as every API dialect shows time.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Who may launch an image (Glance's visibility).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Its project only.
    Private,
    /// Its project and the projects it is shared with (members).
    Shared,
    /// Every project; only admins may publish.
    Public,
    /// Launchable by every project, listed to others only when they ask
    /// for community images (Glance's `community`).
    Community,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Shared => "shared",
            Visibility::Public => "public",
            Visibility::Community => "community",
        }
    }
    pub fn parse(s: &str) -> Option<Visibility> {
        match s {
            "private" => Some(Visibility::Private),
            "shared" => Some(Visibility::Shared),
            "public" => Some(Visibility::Public),
            "community" => Some(Visibility::Community),
            _ => None,
        }
    }
}

/// How to start an image's init: from its OCI config, or found in a rootfs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Launch {
    pub command: Vec<String>,
    pub env: Vec<String>,
    pub workdir: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Image {
    pub id: String,
    pub name: String,
    /// `queued` (registered, no data yet), `saving` (upload in progress),
    /// `active` (launchable), `deactivated` (kept, but neither launched
    /// nor downloaded by non-admins until reactivated).
    pub status: String,
    pub format: Option<String>,
    pub architecture: Option<String>,
    pub size: Option<i64>,
    pub sha256: Option<String>,
    /// MD5 of the uploaded data (Glance's `checksum`), if uploaded since
    /// nuage computes it.
    pub md5: Option<String>,
    /// SHA-512 of the uploaded data (Glance's `os_hash_value`), likewise.
    pub sha512: Option<String>,
    pub tags: Vec<String>,
    pub visibility: Visibility,
    pub owner: String,
    pub members: Vec<String>,
    pub properties: BTreeMap<String, String>,
    pub command: Vec<String>,
    #[serde(skip)]
    pub launch: Launch,
    pub created_at: String,
    #[serde(skip)]
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceType {
    pub name: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub disk_gib: u64,
    pub pids_limit: u32,
    pub io_weight: u16,
    pub builtin: bool,
    /// Private types are seen and launched only by the projects on their
    /// access list, and by admins.
    pub is_public: bool,
    pub description: Option<String>,
    /// Free key/value pairs (Nova's extra specs).
    pub extra_specs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyPair {
    pub id: String,
    pub name: String,
    pub key_type: String,
    pub fingerprint: String,
    pub public_key: String,
    pub created_at: String,
    /// Only in the answer to a create that generated the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlacementGroup {
    pub id: String,
    pub name: String,
    pub project_id: String,
    /// Who made it; None for groups made before nuage kept it.
    pub user_id: Option<String>,
    /// `cluster` (together: affinity) or `spread` (apart: anti-affinity).
    pub strategy: String,
    pub created_at: String,
}

/// EC2's instance states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Pending,
    Running,
    Stopping,
    Stopped,
    ShuttingDown,
    Terminated,
}

impl State {
    pub const ALL: [State; 6] = [
        State::Pending,
        State::Running,
        State::Stopping,
        State::Stopped,
        State::ShuttingDown,
        State::Terminated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Running => "running",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
            State::ShuttingDown => "shutting-down",
            State::Terminated => "terminated",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// EC2's numeric state code.
    pub fn code(self) -> u8 {
        match self {
            State::Pending => 0,
            State::Running => 16,
            State::ShuttingDown => 32,
            State::Terminated => 48,
            State::Stopping => 64,
            State::Stopped => 80,
        }
    }
}

/// What the user wants of an instance; the reconciler makes it so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Desired {
    Running,
    Stopped,
    Terminated,
}

impl Desired {
    pub fn as_str(self) -> &'static str {
        match self {
            Desired::Running => "running",
            Desired::Stopped => "stopped",
            Desired::Terminated => "terminated",
        }
    }
    pub fn parse(s: &str) -> Option<Desired> {
        match s {
            "running" => Some(Desired::Running),
            "stopped" => Some(Desired::Stopped),
            "terminated" => Some(Desired::Terminated),
            _ => None,
        }
    }
}

/// Why an instance is in its state, as EC2's StateReason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateReason {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Instance {
    pub id: String,
    pub reservation_id: String,
    pub project_id: String,
    pub user_id: String,
    pub image_id: String,
    pub instance_type: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub disk_gib: u64,
    pub state: State,
    pub state_code: u8,
    pub state_reason: Option<StateReason>,
    /// The OpenStack (Nova) status of the same state.
    pub status: &'static str,
    pub key_name: Option<String>,
    pub availability_zone: String,
    pub placement_group: Option<String>,
    pub node: String,
    pub hostname: String,
    pub launch_index: u32,
    pub launch_time: String,
    pub terminated_at: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub oom_kills: u64,
    #[serde(skip)]
    pub desired: Desired,
    #[serde(skip)]
    pub reboot_requested: i64,
    #[serde(skip)]
    pub reboot_done: i64,
    #[serde(skip)]
    pub launch_ms: i64,
    #[serde(skip)]
    pub terminated_ms: Option<i64>,
    #[serde(skip)]
    pub client_token: Option<String>,
    /// The next stop takes no grace period (a forced stop); kept in the
    /// store so that it survives a restart before the reconcile.
    #[serde(skip)]
    pub force_stop: bool,
    /// The generation of the instance's spec: grows with every change a
    /// running instance must take (Kubernetes' metadata.generation).
    pub generation: i64,
    /// The generation its node last applied (status.observedGeneration).
    pub observed_generation: i64,
    /// Its ports' addresses, first port first (EC2's NetworkInterfaces);
    /// filled from the network service when it runs one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub network_interfaces: Vec<nuage_network::types::DeviceAddress>,
    /// The first port's fixed address.
    pub private_ip_address: Option<String>,
    /// The public (elastic) address associated with one of its ports.
    pub public_ip_address: Option<String>,
}

impl Instance {
    /// Nova's status for this instance.
    pub fn nova_status(state: State, desired: Desired, reboot: bool, failed: bool) -> &'static str {
        NovaState::of(state, desired, reboot, failed, false).status
    }

    /// Nova's status, vm_state, task_state and power_state for this
    /// instance: one mapping of the one state machine (ADR 31).
    pub fn nova_state(&self) -> NovaState {
        let failed = self
            .state_reason
            .as_ref()
            .is_some_and(|r| r.code.starts_with("Server."));
        NovaState::of(
            self.state,
            self.desired,
            self.reboot_requested > self.reboot_done,
            failed,
            // Its node has run it once: a pending instance is starting
            // again, not being built.
            self.observed_generation > 0,
        )
    }
}

/// An instance's state as Nova shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NovaState {
    /// `BUILD`, `ACTIVE`, `SHUTOFF`, `REBOOT`, `ERROR`, `DELETED`.
    pub status: &'static str,
    /// `OS-EXT-STS:vm_state`.
    pub vm_state: &'static str,
    /// `OS-EXT-STS:task_state`: what is under way, if anything.
    pub task_state: Option<&'static str>,
    /// `OS-EXT-STS:power_state`: 0 no state, 1 running, 4 shut down.
    pub power_state: u8,
}

impl NovaState {
    pub fn of(
        state: State,
        desired: Desired,
        reboot: bool,
        failed: bool,
        started_before: bool,
    ) -> NovaState {
        let s = |status, vm_state, task_state, power_state| NovaState {
            status,
            vm_state,
            task_state,
            power_state,
        };
        if failed {
            let power = if state == State::Running { 1 } else { 4 };
            return s("ERROR", "error", None, power);
        }
        match state {
            State::Pending if started_before && desired == Desired::Running => {
                s("SHUTOFF", "stopped", Some("powering-on"), 4)
            }
            State::Pending => s("BUILD", "building", Some("spawning"), 0),
            State::Running if reboot => s("REBOOT", "active", Some("rebooting"), 1),
            State::Running => s("ACTIVE", "active", None, 1),
            State::Stopping => s("ACTIVE", "active", Some("powering-off"), 1),
            State::Stopped => s("SHUTOFF", "stopped", None, 4),
            State::ShuttingDown if desired == Desired::Terminated => {
                s("ACTIVE", "active", Some("deleting"), 1)
            }
            State::ShuttingDown | State::Terminated => s("DELETED", "deleted", None, 0),
        }
    }
}

/// One state change made by an action, as EC2's InstanceStateChange.
#[derive(Debug, Clone, Serialize)]
pub struct StateChange {
    pub instance_id: String,
    pub previous_state: State,
    pub current_state: State,
}

#[derive(Debug, Clone, Serialize)]
pub struct Node {
    pub id: String,
    pub name: String,
    pub availability_zone: String,
    pub arch: String,
    pub hypervisor: String,
    pub vcpus: u32,
    pub ram_mib: u64,
    pub disk_gib: u64,
    pub used_vcpus: u32,
    pub used_ram_mib: u64,
    pub used_disk_gib: u64,
    pub instances: u32,
    pub labels: BTreeMap<String, String>,
    pub enabled: bool,
    pub heartbeat_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AvailabilityZone {
    pub name: String,
    pub state: &'static str,
    pub region: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nova_states_follow_the_one_state_machine() {
        let of = |s, d, reboot, failed, before| {
            let n = NovaState::of(s, d, reboot, failed, before);
            (n.status, n.vm_state, n.task_state, n.power_state)
        };
        use Desired as D;
        use State as S;
        assert_eq!(
            of(S::Pending, D::Running, false, false, false),
            ("BUILD", "building", Some("spawning"), 0)
        );
        assert_eq!(
            of(S::Pending, D::Running, false, false, true),
            ("SHUTOFF", "stopped", Some("powering-on"), 4)
        );
        assert_eq!(
            of(S::Running, D::Running, false, false, true),
            ("ACTIVE", "active", None, 1)
        );
        assert_eq!(
            of(S::Running, D::Running, true, false, true),
            ("REBOOT", "active", Some("rebooting"), 1)
        );
        assert_eq!(
            of(S::Stopping, D::Stopped, false, false, true),
            ("ACTIVE", "active", Some("powering-off"), 1)
        );
        assert_eq!(
            of(S::Stopped, D::Stopped, false, false, true),
            ("SHUTOFF", "stopped", None, 4)
        );
        assert_eq!(
            of(S::ShuttingDown, D::Terminated, false, false, true),
            ("ACTIVE", "active", Some("deleting"), 1)
        );
        assert_eq!(
            of(S::Terminated, D::Terminated, false, false, true),
            ("DELETED", "deleted", None, 0)
        );
        assert_eq!(
            of(S::Stopped, D::Stopped, false, true, true),
            ("ERROR", "error", None, 4)
        );
        // The status the other doors show is the same mapping's.
        assert_eq!(
            Instance::nova_status(S::Stopping, D::Stopped, false, false),
            "ACTIVE"
        );
    }
}
