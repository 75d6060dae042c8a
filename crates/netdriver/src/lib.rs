//! The network data plane of one node: what must exist in the kernel for
//! instances to have ports on virtual networks, and the driver trait the
//! network service's reconcilers call to make it so.
//!
//! Every network is a Linux bridge (optionally joined to a VLAN of the
//! node's trunk), every port a veth pair whose host end sits on the bridge
//! and whose peer is the instance's `eth0` inside its network namespace;
//! security groups are one nftables table, `inet nuage`, applied as one
//! transaction ([`nft`]). See `docs/adr/0020-network-data-plane.md`.
//!
//! The types here are plain descriptions of what a node must have, with no
//! notion of projects, quotas or the store: this crate knows nothing of the
//! network service and must not depend on it. Every operation is
//! declarative and idempotent, shaped for level-triggered reconciliation
//! like the compute driver's (`nuage-driver`): "this port exists, like
//! this", "nothing of this network remains"; [`NetDriver::observe`] says
//! what the node has, tagged with the ids that own it, so a reconciler can
//! remove what nothing owns after a crash and re-create what was deleted by
//! hand. An observation that fails is an error, never "absent" (ADR 14).
//!
//! [`linux::LinuxNetDriver`] is the real driver (rtnetlink and `nft`);
//! [`fake::FakeNetDriver`] a recording test double; [`testing`] the network
//! namespaces tests create so nothing touches the machine's own network;
//! [`plug::NetPlugger`] the compute driver's `NicPlugger` over any of them.

pub mod fake;
pub mod linux;
pub mod nft;
pub mod node;
mod ns;
pub mod plug;
pub mod router;
pub mod services;
pub mod testing;

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use nft::{
    Direction, PortRange, Protocol, Remote, SecurityGroup, SecurityPlan, SgPort, SgRule,
};

/// What can go wrong in a network driver; the message carries the context.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The request cannot be carried out as given (a bad id or name, a VLAN
    /// without a trunk, a rule nftables refuses); retrying will not help.
    #[error("{0}")]
    Invalid(String),
    /// The kernel or `nft` refused or failed; a retry may succeed.
    #[error("{0}")]
    Failed(String),
}

impl NetError {
    pub fn failed(context: impl fmt::Display, err: impl fmt::Display) -> Self {
        NetError::Failed(format!("{context}: {err}"))
    }
}

pub type NetResult<T> = Result<T, NetError>;

/// An IPv4 address with its prefix length: an interface address
/// (`10.0.0.5/24`) or a network (`10.0.0.0/24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ipv4Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Cidr {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> NetResult<Self> {
        if prefix > 32 {
            return Err(NetError::Invalid(format!(
                "prefix length {prefix} of {addr} is over 32"
            )));
        }
        Ok(Ipv4Cidr { addr, prefix })
    }

    /// The network address: the host bits cleared.
    pub fn network(&self) -> Ipv4Addr {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0);
        Ipv4Addr::from(u32::from(self.addr) & mask)
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = NetError;
    fn from_str(s: &str) -> NetResult<Self> {
        let bad = || NetError::Invalid(format!("{s:?} is not an IPv4 CIDR (a.b.c.d/n)"));
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        Ipv4Cidr::new(a.parse().map_err(|_| bad())?, p.parse().map_err(|_| bad())?)
    }
}

/// An Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl FromStr for Mac {
    type Err = NetError;
    fn from_str(s: &str) -> NetResult<Self> {
        let bad = || NetError::Invalid(format!("{s:?} is not a MAC address (aa:bb:cc:dd:ee:ff)"));
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for b in &mut out {
            let p = parts.next().filter(|p| p.len() == 2).ok_or_else(bad)?;
            *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Mac(out))
    }
}

/// A network as the node must have it: its bridge, and for a VLAN network
/// the VLAN subinterface of the node's trunk that joins the bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// The network id; the bridge is named after it ([`bridge_name`]).
    pub id: String,
    /// 802.1Q VLAN id (1..=4094) on the node's trunk; `None` for a network
    /// that lives on this node alone.
    pub vlan: Option<u16>,
}

/// One port as the node must have it: a veth pair, host end on the
/// network's bridge, peer inside the instance's network namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    /// The port id; the host end is named after it ([`port_ifname`]).
    pub id: String,
    pub network_id: String,
    /// The instance's network namespace: a bind-mounted nsfs file, like
    /// `/run/netns/x` or the container driver's `<state>/compute/run/netns/<id>`.
    pub netns: std::path::PathBuf,
    /// The device's name inside the instance: `eth0` for its first NIC.
    pub device: String,
    pub mac: Mac,
    /// The port's fixed IP with the subnet's prefix length.
    pub address: Ipv4Cidr,
    /// Where the instance's default route points; `None` for an isolated
    /// subnet.
    pub gateway: Option<Ipv4Addr>,
}

/// A nuage bridge found on the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedNetwork {
    pub id: String,
    pub bridge: String,
    /// The VLAN of the trunk subinterface on the bridge, if there is one.
    pub vlan: Option<u16>,
    pub up: bool,
    /// The addresses on the bridge (gateways).
    pub addresses: Vec<Ipv4Cidr>,
}

/// The host end of a nuage port found on the node. If the instance's
/// namespace or its end was deleted, the kernel deleted this end too: a
/// port listed here has both ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedPort {
    pub id: String,
    pub host_ifname: String,
    /// The network whose bridge it is on; `None` if it is on none.
    pub network_id: Option<String>,
    pub up: bool,
}

/// A routing domain as the node must have it: one network namespace
/// holding the gateway addresses of its networks (a Neutron router's, or a
/// network's implicit one), with its own routing table and conntrack, so
/// networks of different domains may overlap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterSpec {
    /// The router's id, or `net:<network id>` for a network's implicit
    /// domain; names the namespace file ([`router_netns`]).
    pub key: String,
    /// The networks it is the gateway of (each network in one domain).
    pub links: Vec<RouterLink>,
    /// Its leg on the operator's external network, if it has a gateway.
    pub external: Option<ExternalGateway>,
}

/// A router's interface on a network: a veth from the network's bridge to
/// the router namespace, holding the network's subnets' gateways.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterLink {
    pub network_id: String,
    /// Gateway addresses with their subnets' prefix lengths.
    pub gateways: Vec<Ipv4Cidr>,
}

/// A router's external leg: its address (the SNAT source of its networks),
/// the external network's gateway, and the floating addresses it
/// translates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalGateway {
    /// The router's address with the external subnet's prefix length.
    pub address: Ipv4Cidr,
    /// The external subnet's gateway: the router's default route.
    pub gateway: Option<Ipv4Addr>,
    pub floating: Vec<FloatingAddress>,
}

/// A floating (elastic) address: public ↔ fixed, DNAT one way, SNAT the
/// other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FloatingAddress {
    pub public: Ipv4Addr,
    pub fixed: Ipv4Addr,
}

/// A router namespace found on the node, with what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedRouter {
    pub key: String,
    pub netns: std::path::PathBuf,
    /// Its interfaces on networks, found inside its namespace.
    pub links: Vec<ObservedRouterLink>,
    /// The addresses of its external leg, if it has one.
    pub external: Option<Vec<Ipv4Cidr>>,
    /// Whether its nftables table (input filter, NAT) is there as last
    /// applied: `Some(false)` when missing or holding another number of
    /// rules; `None` when this observation did not list it (the Linux
    /// driver lists tables every `security_check_every`).
    pub table: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedRouterLink {
    pub network_id: String,
    /// The interface inside the router namespace.
    pub ifname: String,
    pub addresses: Vec<Ipv4Cidr>,
    /// Whether its other end is on the network's bridge (a bridge deleted
    /// by hand and made anew has lost it).
    pub attached: bool,
}

/// What a node has of nuage's network data plane.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    pub networks: Vec<ObservedNetwork>,
    pub ports: Vec<ObservedPort>,
    /// Router namespaces (empty when the driver has no routers directory).
    pub routers: Vec<ObservedRouter>,
    /// Whether the `inet nuage` nftables table exists.
    pub security_table: bool,
}

/// A member of a security group, as its set in nftables holds it: the
/// bridge the port is on and the port's address (addresses alone would be
/// ambiguous: two networks may use the same CIDR).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Member {
    pub network_id: String,
    pub ip: Ipv4Addr,
}

/// What the network service's reconcilers ask of a node's data plane.
///
/// Every method is idempotent and says what should be true afterwards.
/// Implementations must be safe to call concurrently for different
/// networks and ports; the reconcilers never call them concurrently for the
/// same one.
#[async_trait::async_trait]
pub trait NetDriver: Send + Sync + 'static {
    /// Short name: `linux`, `fake`.
    fn name(&self) -> &'static str;

    /// Makes the network's bridge exist and be up (with its VLAN
    /// subinterface for a VLAN network).
    async fn ensure_network(&self, network: &NetworkSpec) -> NetResult<()>;

    /// Makes nothing of the network remain: bridge and VLAN subinterface.
    /// Ports still on the bridge are detached, not deleted.
    async fn remove_network(&self, network_id: &str) -> NetResult<()>;

    /// Makes the gateway address exist on the network's bridge.
    async fn ensure_gateway(&self, network_id: &str, address: Ipv4Cidr) -> NetResult<()>;

    /// Makes the gateway address not exist on the network's bridge.
    async fn remove_gateway(&self, network_id: &str, address: Ipv4Cidr) -> NetResult<()>;

    /// Makes the port exist as specified: host end on the bridge and up,
    /// peer in the namespace renamed, with its MAC, address, default route
    /// and link up. Whatever differs is corrected; a host end whose peer is
    /// no longer in the namespace is replaced.
    async fn ensure_port(&self, port: &PortSpec) -> NetResult<()>;

    /// Makes nothing of the port remain (deleting one end deletes both).
    async fn remove_port(&self, port_id: &str) -> NetResult<()>;

    /// Puts the plan's security ruleset in force in one transaction:
    /// either all of it is in force afterwards, or (on an error) all of the
    /// previous one still is. The Linux driver sends only what changed
    /// since the plan it last applied, and the whole table when it knows
    /// of none, when the table changed behind its back, and periodically.
    async fn apply_security(&self, plan: &SecurityPlan) -> NetResult<()>;

    /// Replaces the members of one security group in one transaction: a
    /// set update, no rule is rewritten. The group must be in the plan in
    /// force.
    async fn set_group_members(&self, group_id: &str, members: &[Member]) -> NetResult<()>;

    /// Makes the routing domain exist as specified: its namespace (IPv4
    /// forwarding on inside it only, the metadata address on its `lo`), a
    /// link to each network's bridge (which must exist) holding exactly its
    /// gateways, the external leg and its NAT table; links it no longer
    /// lists are removed, and a network's link of another domain is taken
    /// over (a network is in one domain).
    async fn ensure_router(&self, router: &RouterSpec) -> NetResult<()>;

    /// Makes nothing of the domain remain: its links and its namespace.
    async fn remove_router(&self, key: &str) -> NetResult<()>;

    /// The namespace file of a routing domain (made by `ensure_router`),
    /// where the instance services listen; `None` if this driver keeps
    /// no routers.
    fn router_netns(&self, key: &str) -> Option<std::path::PathBuf> {
        let _ = key;
        None
    }

    /// What the node has now.
    async fn observe(&self) -> NetResult<Observed>;

    /// The node's ports alone: what the plugger asks on every instance
    /// observation, without the routers and the security table that a
    /// whole [`NetDriver::observe`] also looks at.
    async fn observe_ports(&self) -> NetResult<Vec<ObservedPort>> {
        Ok(self.observe().await?.ports)
    }
}

/// Linux interface names hold at most 15 bytes (IFNAMSIZ 16 with its NUL).
pub const IFNAMSIZ_MAX: usize = 15;

fn derived_name(prefix: &str, id: &str) -> String {
    let name = nuage_driver::derived_ifname(prefix, id);
    debug_assert!(name.len() <= IFNAMSIZ_MAX);
    name
}

/// The prefix of every bridge nuage makes: what its security table
/// recognises as its own, ports in the plan or not.
pub(crate) const BRIDGE_PREFIX: &str = "nb-";

/// The bridge of a network on every node.
pub fn bridge_name(network_id: &str) -> String {
    derived_name(BRIDGE_PREFIX, network_id)
}

/// The host end of a port's veth pair: what the compute driver's spec
/// calls the NIC's host interface ([`nuage_driver::nic_host_ifname`]).
pub fn port_ifname(port_id: &str) -> String {
    nuage_driver::nic_host_ifname(port_id)
}

/// The VLAN subinterface of the trunk joining a VLAN network's bridge.
pub fn vlan_ifname(network_id: &str) -> String {
    derived_name("nl-", network_id)
}

/// The namespace file of a routing domain under the driver's routers
/// directory: the key itself (ids and `net:` hold no `/`).
pub fn router_netns(dir: &std::path::Path, key: &str) -> std::path::PathBuf {
    dir.join(key)
}

/// A router's interface on a network, inside its namespace (what
/// [`services::ServiceLink::ifname`] names).
pub fn router_link_ifname(network_id: &str) -> String {
    derived_name("rn-", network_id)
}

/// The end of a router's link on the network's bridge, in the node's
/// namespace.
pub fn router_port_ifname(key: &str, network_id: &str) -> String {
    derived_name("nr-", &format!("{key}/{network_id}"))
}

/// A router's external leg inside its namespace.
pub fn router_external_ifname(key: &str) -> String {
    derived_name("rg-", key)
}

/// The end of a router's external leg on the external bridge.
pub fn router_uplink_ifname(key: &str) -> String {
    derived_name("ng-", key)
}

/// The first three bytes of every router interface's MAC on a network:
/// how the security table tells the router's traffic from instances'
/// (instances send only from their own MAC, ADR 20).
pub const ROUTER_MAC_PREFIX: [u8; 3] = [0x02, 0x6e, 0x75];

/// The MAC of a router's interface on a network (one router per bridge,
/// so 24 bits of hash cannot collide with another router's there).
pub fn router_mac(network_id: &str) -> Mac {
    let h = nuage_driver::derived_ifname("", network_id);
    let b = |i: usize| u8::from_str_radix(&h[i..i + 2], 16).unwrap_or(0);
    let p = ROUTER_MAC_PREFIX;
    Mac([p[0], p[1], p[2], b(0), b(2), b(4)])
}

/// A routing domain's key: an id, or `net:` and a network id.
pub(crate) fn validate_router_key(key: &str) -> NetResult<()> {
    validate_id("router", key.strip_prefix("net:").unwrap_or(key))
}

pub(crate) fn validate_router(r: &RouterSpec) -> NetResult<()> {
    validate_router_key(&r.key)?;
    let mut seen = std::collections::BTreeSet::new();
    for l in &r.links {
        validate_id("network", &l.network_id)?;
        if !seen.insert(&l.network_id) {
            return Err(NetError::Invalid(format!(
                "router {}: network {} is linked twice",
                r.key, l.network_id
            )));
        }
        for g in &l.gateways {
            if g.prefix == 0 || g.prefix > 30 {
                return Err(NetError::Invalid(format!(
                    "router {}: gateway {g} must have a prefix length of 1..=30",
                    r.key
                )));
            }
        }
    }
    if let Some(e) = &r.external {
        if e.address.prefix == 0 || e.address.prefix > 32 {
            return Err(NetError::Invalid(format!(
                "router {}: external address {} has no usable prefix",
                r.key, e.address
            )));
        }
    }
    Ok(())
}

/// Ids name chains, sets and interface aliases: ASCII letters, digits, `_`,
/// `.`, `-`, at most 128 bytes, not starting with `.` or `-`.
pub(crate) fn validate_id(kind: &str, id: &str) -> NetResult<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with(['.', '-'])
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(NetError::Invalid(format!("bad {kind} id {id:?}")))
    }
}

pub(crate) fn validate_port(port: &PortSpec) -> NetResult<()> {
    validate_id("port", &port.id)?;
    validate_id("network", &port.network_id)?;
    let dev = &port.device;
    if dev.is_empty()
        || dev.len() > IFNAMSIZ_MAX
        || !dev
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(NetError::Invalid(format!(
            "port {}: bad device name {dev:?}",
            port.id
        )));
    }
    if port.mac.0[0] & 1 == 1 || port.mac.0 == [0; 6] {
        return Err(NetError::Invalid(format!(
            "port {}: {} is not a unicast MAC address",
            port.id, port.mac
        )));
    }
    if port.address.prefix == 0 || port.address.prefix > 30 {
        return Err(NetError::Invalid(format!(
            "port {}: prefix length of {} must be 1..=30",
            port.id, port.address
        )));
    }
    Ok(())
}

pub(crate) fn validate_network(net: &NetworkSpec) -> NetResult<()> {
    validate_id("network", &net.id)?;
    if let Some(v) = net.vlan {
        if !(1..=4094).contains(&v) {
            return Err(NetError::Invalid(format!(
                "network {}: VLAN id {v} is not in 1..=4094",
                net.id
            )));
        }
    }
    Ok(())
}

/// The interface alias marking what nuage made, with the id that owns it:
/// what [`NetDriver::observe`] reads back.
pub(crate) fn alias(kind: &str, id: &str) -> String {
    format!("nuage:{kind}:{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_ifnamsiz_and_differ() {
        let long = "n".repeat(128);
        for n in [bridge_name(&long), port_ifname("p-1"), vlan_ifname("x")] {
            assert_eq!(n.len(), IFNAMSIZ_MAX, "{n}");
        }
        assert_ne!(bridge_name("net-1"), bridge_name("net-2"));
        assert_eq!(bridge_name("net-1"), bridge_name("net-1"));
        assert!(port_ifname("p").starts_with("nv-"));
    }

    #[test]
    fn parses_and_rejects() {
        let c: Ipv4Cidr = "10.0.3.7/24".parse().expect("cidr");
        assert_eq!(c.network(), Ipv4Addr::new(10, 0, 3, 0));
        assert_eq!(
            "0.0.0.0/0".parse::<Ipv4Cidr>().expect("any").network(),
            Ipv4Addr::UNSPECIFIED
        );
        for bad in ["10.0.0.1", "10.0.0.1/33", "x/8", "10.0.0/8"] {
            assert!(bad.parse::<Ipv4Cidr>().is_err(), "{bad}");
        }
        let m: Mac = "02:00:0a:00:00:05".parse().expect("mac");
        assert_eq!(m.to_string(), "02:00:0a:00:00:05");
        for bad in [
            "02:00:0a:00:00",
            "02:00:0a:00:00:05:06",
            "zz:00:00:00:00:00",
        ] {
            assert!(bad.parse::<Mac>().is_err(), "{bad}");
        }
        assert!(validate_id("port", "-x").is_err());
        assert!(validate_id("port", "a b").is_err());
        assert!(validate_network(&NetworkSpec {
            id: "n".into(),
            vlan: Some(4095)
        })
        .is_err());
    }
}
