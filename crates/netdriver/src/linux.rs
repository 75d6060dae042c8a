//! The Linux network driver: bridges, veth pairs, VLAN subinterfaces,
//! addresses and routes through rtnetlink (never `ip`), security groups
//! through `nft -j -f -` ([`crate::nft`]).
//!
//! Everything it makes in the node's namespace carries an interface alias
//! `nuage:<kind>:<id>` naming its owner, which [`NetDriver::observe`] reads
//! back: the kernel itself records what belongs to which network or port,
//! so a restarted reconciler needs no file of its own to find leftovers.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{
    InfoData, InfoVeth, InfoVlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, LinkVlan, RouteMessageBuilder};

use crate::ns::{connect, enter, on_thread, open};
use crate::{
    alias, bridge_name, port_ifname, validate_id, validate_network, validate_port, validate_router,
    validate_router_key, vlan_ifname, Ipv4Cidr, Member, NetDriver, NetError, NetResult,
    NetworkSpec, Observed, ObservedNetwork, ObservedPort, PortSpec, RouterSpec, SecurityPlan,
};

/// Where the Linux driver works.
#[derive(Debug, Clone, Default)]
pub struct LinuxConfig {
    /// The network namespace holding the node's bridges and rules; `None`
    /// for the process's own (a real node). Tests and benchmarks give the
    /// namespace they created, so nothing touches the machine's network.
    pub host_netns: Option<PathBuf>,
    /// The trunk VLAN networks hang from (a bridge or NIC the operator
    /// names); VLAN networks are refused without one.
    pub trunk: Option<String>,
    /// The `nft` program; `nft` on `PATH` when `None`.
    pub nft: Option<PathBuf>,
    /// How long security-group changes are applied incrementally (only
    /// what changed since the last plan this driver applied) before the
    /// next change replaces the whole table again, which also repairs a
    /// rule changed by hand. `None`: 5 minutes. Zero: always whole.
    pub security_full_every: Option<Duration>,
    /// How often `observe` counts the table's rules against the plan in
    /// force (an `nft` listing, tens of ms for a thousand rules), so that a
    /// rule deleted by hand is put back by the next whole apply. `None`:
    /// 30 seconds. Between counts `observe` only checks the table exists.
    pub security_check_every: Option<Duration>,
    /// Where routing domains' namespaces are kept (`DATA_DIR/network/routers`);
    /// routers are refused without one.
    pub routers_dir: Option<PathBuf>,
    /// The operator's external network; routers with an external gateway
    /// are refused without one, and nothing of the host is touched.
    pub external: Option<crate::router::ExternalBridge>,
}

/// What this driver last put in force, for incremental changes.
#[derive(Debug, Default)]
struct SecurityState {
    /// The plan in force, as far as this driver knows.
    applied: Option<SecurityPlan>,
    /// Groups whose sets `set_group_members` changed since.
    dirty: BTreeSet<String>,
    last_full: Option<Instant>,
    /// When `observe` last counted the table's rules.
    last_checked: Option<Instant>,
}

/// What this driver last applied of each router's table, for `observe`.
#[derive(Debug, Default)]
struct RouterTables {
    /// Rules of each router's table as last applied, by router key.
    rules: std::collections::BTreeMap<String, usize>,
    /// When `observe` last listed the routers' tables.
    last_checked: Option<Instant>,
}

/// The real data plane of one node.
#[derive(Debug, Clone)]
pub struct LinuxNetDriver {
    config: LinuxConfig,
    security: Arc<tokio::sync::Mutex<SecurityState>>,
    routers: Arc<std::sync::Mutex<RouterTables>>,
}

impl LinuxNetDriver {
    /// Whether the security table is there as this driver last applied it:
    /// it exists, and (every `security_check_every`) holds as many rules as
    /// the plan in force compiles to. Deleted or changed behind our back,
    /// the next apply replaces it whole, even for an unchanged plan (whose
    /// update would otherwise be empty until the next whole apply is due).
    async fn security_table_as_applied(&self) -> NetResult<bool> {
        let (ns, nft) = (self.config.host_netns.clone(), self.nft_program());
        let every = self
            .config
            .security_check_every
            .unwrap_or(Duration::from_secs(30));
        // Held across the listing, so no apply lands between it and the
        // comparison.
        let mut st = self.security.lock().await;
        let due = st.last_checked.is_none_or(|t| t.elapsed() >= every);
        let present = if due {
            let count = crate::nft::table_rule_count(ns, nft).await?;
            st.last_checked = Some(Instant::now());
            match (count, &st.applied) {
                (None, _) => false,
                (Some(n), Some(plan)) => {
                    let want = crate::nft::plan_rule_count(plan)?;
                    if n != want {
                        tracing::warn!(
                            rules = n,
                            expected = want,
                            "the security table was changed behind nuage's back; it will be applied whole"
                        );
                    }
                    n == want
                }
                (Some(_), None) => true,
            }
        } else {
            crate::nft::table_exists(ns, nft).await?
        };
        if !present {
            st.applied = None;
        }
        Ok(present)
    }

    pub fn new(config: LinuxConfig) -> Self {
        LinuxNetDriver {
            config,
            security: Arc::default(),
            routers: Arc::default(),
        }
    }

    pub fn config(&self) -> &LinuxConfig {
        &self.config
    }

    fn routers_dir(&self, key: &str) -> NetResult<PathBuf> {
        self.config.routers_dir.clone().ok_or_else(|| {
            NetError::Invalid(format!(
                "router {key}: this driver has no directory for router namespaces"
            ))
        })
    }

    fn nft_program(&self) -> PathBuf {
        self.config.nft.clone().unwrap_or_else(|| "nft".into())
    }

    /// Runs `f` with an rtnetlink handle in the node's namespace.
    async fn host<T, F, Fut>(&self, f: F) -> NetResult<T>
    where
        T: Send + 'static,
        F: FnOnce(Handle) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = NetResult<T>>,
    {
        on_thread(self.config.host_netns.clone(), move || async move {
            f(connect()?).await
        })
        .await
    }
}

/// The errno of a netlink refusal, positive.
pub(crate) fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

const ENODEV: i32 = 19;
pub(crate) const EADDRNOTAVAIL: i32 = 99;
const EEXIST: i32 = 17;
const EOPNOTSUPP: i32 = 95;

pub(crate) fn nl(context: impl std::fmt::Display) -> impl FnOnce(rtnetlink::Error) -> NetError {
    move |e| NetError::failed(context, e)
}

/// The link named `name`, or `None` when the kernel says there is none.
pub(crate) async fn link_by_name(h: &Handle, name: &str) -> NetResult<Option<LinkMessage>> {
    match h
        .link()
        .get()
        .match_name(name.to_string())
        .execute()
        .try_next()
        .await
    {
        Ok(l) => Ok(l),
        Err(e) if errno(&e) == Some(ENODEV) => Ok(None),
        Err(e) => Err(NetError::failed(format!("looking up link {name}"), e)),
    }
}

pub(crate) async fn all_links(h: &Handle) -> NetResult<Vec<LinkMessage>> {
    h.link()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(nl("listing links"))
}

pub(crate) async fn ipv4_addresses(
    h: &Handle,
    index: Option<u32>,
) -> NetResult<Vec<AddressMessage>> {
    let mut req = h.address().get();
    if let Some(i) = index {
        req = req.set_link_index_filter(i);
    }
    let all: Vec<AddressMessage> = req
        .execute()
        .try_collect()
        .await
        .map_err(nl("listing addresses"))?;
    Ok(all
        .into_iter()
        .filter(|a| a.header.family == AddressFamily::Inet)
        .collect())
}

pub(crate) fn address_of(a: &AddressMessage) -> Option<Ipv4Cidr> {
    a.attributes.iter().find_map(|at| match at {
        AddressAttribute::Local(IpAddr::V4(v)) => Some(Ipv4Cidr {
            addr: *v,
            prefix: a.header.prefix_len,
        }),
        _ => None,
    })
}

pub(crate) fn link_alias(l: &LinkMessage) -> Option<&str> {
    l.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfAlias(s) => Some(s.as_str()),
        _ => None,
    })
}

pub(crate) fn link_name(l: &LinkMessage) -> &str {
    l.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::IfName(s) => Some(s.as_str()),
            _ => None,
        })
        .unwrap_or("")
}

fn link_controller(l: &LinkMessage) -> Option<u32> {
    l.attributes.iter().find_map(|a| match a {
        LinkAttribute::Controller(i) => Some(*i),
        _ => None,
    })
}

pub(crate) fn link_peer(l: &LinkMessage) -> Option<u32> {
    l.attributes.iter().find_map(|a| match a {
        LinkAttribute::Link(i) => Some(*i),
        _ => None,
    })
}

fn link_address(l: &LinkMessage) -> Option<&[u8]> {
    l.attributes.iter().find_map(|a| match a {
        LinkAttribute::Address(m) => Some(m.as_slice()),
        _ => None,
    })
}

fn link_vlan_id(l: &LinkMessage) -> Option<u16> {
    l.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            LinkInfo::Data(InfoData::Vlan(v)) => v.iter().find_map(|x| match x {
                InfoVlan::Id(id) => Some(*id),
                _ => None,
            }),
            _ => None,
        }),
        _ => None,
    })
}

fn is_up(l: &LinkMessage) -> bool {
    l.header.flags.contains(LinkFlags::Up)
}

/// Refuses to adopt a device under a nuage name that nuage did not make
/// for this owner (a hash collision or an operator's device).
fn check_owner(l: &LinkMessage, expected: &str) -> NetResult<()> {
    match link_alias(l) {
        Some(a) if a != expected => Err(NetError::Invalid(format!(
            "device {} belongs to {a:?}, not {expected:?}",
            link_name(l)
        ))),
        _ => Ok(()),
    }
}

/// Sets the link's owner alias and brings it up (under `controller` when
/// given): one RTM_SETLINK.
async fn own_and_up(h: &Handle, index: u32, owner: &str, controller: Option<u32>) -> NetResult<()> {
    let mut msg = LinkUnspec::new_with_index(index).alias(owner).up();
    if let Some(c) = controller {
        msg = msg.controller(c);
    }
    h.link()
        .set(msg.build())
        .execute()
        .await
        .map_err(nl(format!("setting up {owner}")))
}

/// Deletes the link `name` if there is one, refusing one that belongs to
/// another owner than `owner` (see [`check_owner`]).
pub(crate) async fn delete_link(h: &Handle, name: &str, owner: &str) -> NetResult<()> {
    let Some(l) = link_by_name(h, name).await? else {
        return Ok(());
    };
    check_owner(&l, owner)?;
    match h.link().del(l.header.index).execute().await {
        Err(e) if errno(&e) != Some(ENODEV) => {
            Err(NetError::failed(format!("deleting link {name}"), e))
        }
        _ => Ok(()),
    }
}

async fn ensure_network_in(h: Handle, net: NetworkSpec, trunk: Option<String>) -> NetResult<()> {
    // The VLAN subinterface first: a node that cannot make it gets no
    // half-made network.
    let vlan = ensure_vlan(&h, &net, trunk).await?;
    let name = bridge_name(&net.id);
    let owner = alias("network", &net.id);
    let bridge = match link_by_name(&h, &name).await? {
        Some(l) => {
            check_owner(&l, &owner)?;
            // Bridged IPv4 through the `inet` hooks on this bridge alone,
            // whatever the namespace's sysctl says (ADR 20).
            h.link()
                .change(LinkBridge::new(&name).nf_call_iptables(true).build())
                .execute()
                .await
                .map_err(nl(format!("network {}: configuring bridge {name}", net.id)))?;
            l
        }
        None => {
            match h
                .link()
                .add(LinkBridge::new(&name).nf_call_iptables(true).build())
                .execute()
                .await
            {
                Err(e) if errno(&e) != Some(EEXIST) => {
                    return Err(NetError::failed(
                        format!("network {}: creating bridge {name}", net.id),
                        e,
                    ))
                }
                _ => {}
            }
            link_by_name(&h, &name).await?.ok_or_else(|| {
                NetError::Failed(format!("network {}: bridge {name} vanished", net.id))
            })?
        }
    };
    own_and_up(&h, bridge.header.index, &owner, None).await?;
    if let Some(v) = vlan {
        own_and_up(&h, v, &alias("vlan", &net.id), Some(bridge.header.index)).await?;
    }
    Ok(())
}

/// Makes the network's VLAN subinterface of the trunk exist (or not, for
/// a network without VLAN) and returns its index.
async fn ensure_vlan(
    h: &Handle,
    net: &NetworkSpec,
    trunk: Option<String>,
) -> NetResult<Option<u32>> {
    let vname = vlan_ifname(&net.id);
    let existing = link_by_name(h, &vname).await?;
    let Some(vid) = net.vlan else {
        if existing.is_some() {
            delete_link(h, &vname, &alias("vlan", &net.id)).await?;
        }
        return Ok(None);
    };
    let trunk = trunk.ok_or_else(|| {
        NetError::Invalid(format!(
            "network {}: VLAN {vid} needs the node's trunk, and none is configured",
            net.id
        ))
    })?;
    let trunk_link = link_by_name(h, &trunk).await?.ok_or_else(|| {
        NetError::Failed(format!("network {}: trunk {trunk} does not exist", net.id))
    })?;
    if let Some(l) = &existing {
        check_owner(l, &alias("vlan", &net.id))?;
        if link_vlan_id(l) == Some(vid) && link_peer(l) == Some(trunk_link.header.index) {
            return Ok(Some(l.header.index));
        }
        delete_link(h, &vname, &alias("vlan", &net.id)).await?;
    }
    match h
        .link()
        .add(LinkVlan::new(&vname, trunk_link.header.index, vid).build())
        .execute()
        .await
    {
        Err(e) if errno(&e) == Some(EOPNOTSUPP) => {
            return Err(NetError::Invalid(format!(
                "network {}: this node's kernel has no 802.1Q VLAN devices (CONFIG_VLAN_8021Q)",
                net.id
            )))
        }
        Err(e) => {
            return Err(NetError::failed(
                format!("network {}: creating VLAN {vid} on {trunk}", net.id),
                e,
            ))
        }
        Ok(()) => {}
    }
    let l = link_by_name(h, &vname)
        .await?
        .ok_or_else(|| NetError::Failed(format!("network {}: {vname} vanished", net.id)))?;
    Ok(Some(l.header.index))
}

/// Wires one port: the host side on `h` (the node's namespace), the
/// instance side on a second socket opened inside `netns`.
async fn ensure_port_in(h: Handle, port: PortSpec) -> NetResult<()> {
    let ctx = |step: &str| format!("port {}: {step}", port.id);
    let bname = bridge_name(&port.network_id);
    let bridge = link_by_name(&h, &bname).await?.ok_or_else(|| {
        NetError::Failed(format!(
            "port {}: the bridge {bname} of network {} does not exist (ensure the network first)",
            port.id, port.network_id
        ))
    })?;
    let ns_file = open(&port.netns)?;
    // From here on this thread is in the instance's namespace; `h` still
    // speaks to the node's.
    enter(&port.netns)?;
    let inner_h = connect()?;

    let host_name = port_ifname(&port.id);
    let owner = alias("port", &port.id);
    let mut host = link_by_name(&h, &host_name).await?;
    if let Some(l) = &host {
        check_owner(l, &owner)?;
    }
    let inner = link_by_name(&inner_h, &port.device).await?;
    match (&host, &inner) {
        (Some(hl), Some(il)) if link_peer(il) != Some(hl.header.index) => {
            return Err(NetError::Failed(format!(
                "port {}: {} in {} is not this port's peer",
                port.id,
                port.device,
                port.netns.display()
            )))
        }
        (Some(_), None) => {
            // The peer is not in this namespace (the instance's namespace
            // was made anew): replace the pair.
            delete_link(&h, &host_name, &owner).await?;
            host = None;
        }
        (None, Some(_)) => {
            return Err(NetError::Failed(format!(
                "port {}: {} already exists in {} and is not this port's",
                port.id,
                port.device,
                port.netns.display()
            )))
        }
        _ => {}
    }
    if host.is_none() {
        // One RTM_NEWLINK makes the pair, the host end up on the bridge,
        // the peer in the instance's namespace, named and with its MAC: no
        // temporary name, no move. (The peer cannot be made up in the same
        // message: veth refuses to open before both ends are paired.)
        let peer = rtnetlink::LinkMessageBuilder::<LinkUnspec>::new()
            .name(port.device.clone())
            .address(port.mac.0.to_vec())
            .setns_by_fd(ns_file.as_raw_fd())
            .build();
        let msg = LinkVeth::new(&host_name, &port.device)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .controller(bridge.header.index)
            .up()
            .build();
        h.link()
            .add(msg)
            .execute()
            .await
            .map_err(nl(ctx("creating the veth pair")))?;
        // The alias is no attribute a new link takes: set it by name.
        h.link()
            .set(LinkUnspec::new_with_name(&host_name).alias(&owner).build())
            .execute()
            .await
            .map_err(nl(ctx("marking the host end")))?;
        let inner = link_by_name(&inner_h, &port.device)
            .await?
            .ok_or_else(|| NetError::Failed(ctx("the instance end vanished")))?;
        inner_h
            .link()
            .set(LinkUnspec::new_with_index(inner.header.index).up().build())
            .execute()
            .await
            .map_err(nl(ctx("setting the link up")))?;
        return address_and_route(&inner_h, inner.header.index, &port, true).await;
    }
    let host = host.ok_or_else(|| NetError::Failed(ctx("the host end vanished")))?;
    let inner = inner.ok_or_else(|| NetError::Failed(ctx("the instance end vanished")))?;
    own_and_up(&h, host.header.index, &owner, Some(bridge.header.index)).await?;

    let idx = inner.header.index;
    if link_address(&inner) != Some(&port.mac.0[..]) {
        inner_h
            .link()
            .set(
                LinkUnspec::new_with_index(idx)
                    .down()
                    .address(port.mac.0.to_vec())
                    .build(),
            )
            .execute()
            .await
            .map_err(nl(ctx("setting the MAC")))?;
    }
    if !is_up(&inner) || link_address(&inner) != Some(&port.mac.0[..]) {
        inner_h
            .link()
            .set(LinkUnspec::new_with_index(idx).up().build())
            .execute()
            .await
            .map_err(nl(ctx("setting the link up")))?;
    }
    address_and_route(&inner_h, idx, &port, false).await
}

/// Makes the port's address the only IPv4 address of the instance's
/// device (a fresh device has none to look at) and its default route
/// point at the gateway.
async fn address_and_route(h: &Handle, idx: u32, port: &PortSpec, fresh: bool) -> NetResult<()> {
    let ctx = |step: &str| format!("port {}: {step}", port.id);
    let mut have = false;
    if !fresh {
        for a in ipv4_addresses(h, Some(idx)).await? {
            if address_of(&a) == Some(port.address) {
                have = true;
            } else {
                match h.address().del(a).execute().await {
                    Err(e) if errno(&e) != Some(EADDRNOTAVAIL) => {
                        return Err(NetError::failed(ctx("removing a stray address"), e))
                    }
                    _ => {}
                }
            }
        }
    }
    if !have {
        h.address()
            .add(idx, IpAddr::V4(port.address.addr), port.address.prefix)
            .replace()
            .execute()
            .await
            .map_err(nl(ctx("adding the address")))?;
    }
    if let Some(gw) = port.gateway {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gw)
            .output_interface(idx)
            .build();
        h.route()
            .add(route)
            .replace()
            .execute()
            .await
            .map_err(nl(ctx("adding the default route")))?;
    }
    Ok(())
}

/// Router links' ends in the node's namespace that are on a nuage bridge:
/// (router key, network).
type AttachedRouterLinks = BTreeSet<(String, String)>;

async fn observe_in(
    h: Handle,
) -> NetResult<(Vec<ObservedNetwork>, Vec<ObservedPort>, AttachedRouterLinks)> {
    let links = all_links(&h).await?;
    let addresses = ipv4_addresses(&h, None).await?;
    let mut networks = Vec::new();
    let mut bridge_of = std::collections::BTreeMap::new();
    for l in &links {
        if let Some(id) = link_alias(l).and_then(|a| a.strip_prefix("nuage:network:")) {
            bridge_of.insert(l.header.index, networks.len());
            networks.push(ObservedNetwork {
                id: id.to_string(),
                bridge: link_name(l).to_string(),
                vlan: None,
                up: is_up(l),
                addresses: addresses
                    .iter()
                    .filter(|a| a.header.index == l.header.index)
                    .filter_map(address_of)
                    .collect(),
            });
        }
    }
    let mut ports = Vec::new();
    let mut attached = BTreeSet::new();
    for l in &links {
        let Some(a) = link_alias(l) else { continue };
        let on = link_controller(l).and_then(|c| bridge_of.get(&c).copied());
        if let Some(kn) = a.strip_prefix("nuage:rlink:") {
            if let (Some((k, n)), Some(b)) = (kn.rsplit_once('/'), on) {
                if networks[b].id == n {
                    attached.insert((k.to_string(), n.to_string()));
                }
            }
        } else if let Some(id) = a.strip_prefix("nuage:port:") {
            ports.push(ObservedPort {
                id: id.to_string(),
                host_ifname: link_name(l).to_string(),
                network_id: on.map(|n| networks[n].id.clone()),
                up: is_up(l),
            });
        } else if a.starts_with("nuage:vlan:") {
            if let Some(n) = on {
                networks[n].vlan = link_vlan_id(l);
            }
        }
    }
    Ok((networks, ports, attached))
}

#[async_trait::async_trait]
impl NetDriver for LinuxNetDriver {
    fn name(&self) -> &'static str {
        "linux"
    }

    async fn ensure_network(&self, network: &NetworkSpec) -> NetResult<()> {
        validate_network(network)?;
        let (net, trunk) = (network.clone(), self.config.trunk.clone());
        self.host(move |h| ensure_network_in(h, net, trunk)).await
    }

    async fn remove_network(&self, network_id: &str) -> NetResult<()> {
        validate_id("network", network_id)?;
        let id = network_id.to_string();
        self.host(move |h| async move {
            delete_link(&h, &vlan_ifname(&id), &alias("vlan", &id)).await?;
            delete_link(&h, &bridge_name(&id), &alias("network", &id)).await
        })
        .await
    }

    async fn ensure_gateway(&self, network_id: &str, address: Ipv4Cidr) -> NetResult<()> {
        validate_id("network", network_id)?;
        let id = network_id.to_string();
        self.host(move |h| async move {
            let name = bridge_name(&id);
            let b = link_by_name(&h, &name).await?.ok_or_else(|| {
                NetError::Failed(format!("network {id}: bridge {name} does not exist"))
            })?;
            h.address()
                .add(b.header.index, IpAddr::V4(address.addr), address.prefix)
                .replace()
                .execute()
                .await
                .map_err(nl(format!("network {id}: adding gateway {address}")))
        })
        .await
    }

    async fn remove_gateway(&self, network_id: &str, address: Ipv4Cidr) -> NetResult<()> {
        validate_id("network", network_id)?;
        let id = network_id.to_string();
        self.host(move |h| async move {
            let Some(b) = link_by_name(&h, &bridge_name(&id)).await? else {
                return Ok(());
            };
            for a in ipv4_addresses(&h, Some(b.header.index)).await? {
                if address_of(&a) == Some(address) {
                    match h.address().del(a).execute().await {
                        Err(e) if errno(&e) != Some(EADDRNOTAVAIL) => {
                            return Err(NetError::failed(
                                format!("network {id}: removing gateway {address}"),
                                e,
                            ))
                        }
                        _ => {}
                    }
                }
            }
            Ok(())
        })
        .await
    }

    async fn ensure_port(&self, port: &PortSpec) -> NetResult<()> {
        validate_port(port)?;
        let port = port.clone();
        self.host(move |h| ensure_port_in(h, port)).await
    }

    async fn remove_port(&self, port_id: &str) -> NetResult<()> {
        validate_id("port", port_id)?;
        let (name, owner) = (port_ifname(port_id), alias("port", port_id));
        self.host(move |h| async move { delete_link(&h, &name, &owner).await })
            .await
    }

    async fn apply_security(&self, plan: &SecurityPlan) -> NetResult<()> {
        let (ns, nft) = (self.config.host_netns.clone(), self.nft_program());
        let every = self
            .config
            .security_full_every
            .unwrap_or(Duration::from_secs(300));
        let mut st = self.security.lock().await;
        let full_due = st.last_full.is_none_or(|t| t.elapsed() >= every);
        if let (Some(old), false) = (&st.applied, full_due) {
            // Invalid plans are refused here, before anything is sent.
            let batch = crate::nft::compile_update(old, plan, &st.dirty)?;
            let empty = batch["nftables"].as_array().is_some_and(|a| a.is_empty());
            // A failed update (the table changed behind our back) changed
            // nothing; the whole table replaces it below.
            if empty
                || crate::nft::apply(ns.clone(), nft.clone(), batch)
                    .await
                    .is_ok()
            {
                st.applied = Some(plan.clone());
                st.dirty.clear();
                return Ok(());
            }
        }
        let batch = crate::nft::compile(plan)?;
        match crate::nft::apply(ns, nft, batch).await {
            Ok(()) => {
                st.applied = Some(plan.clone());
                st.dirty.clear();
                st.last_full = Some(Instant::now());
                Ok(())
            }
            Err(e) => {
                // The kernel kept what it had, which may not be what we
                // last applied: the next change replaces the table.
                st.applied = None;
                Err(e)
            }
        }
    }

    async fn set_group_members(&self, group_id: &str, members: &[Member]) -> NetResult<()> {
        let batch = crate::nft::members_update(group_id, members)?;
        let mut st = self.security.lock().await;
        crate::nft::apply(self.config.host_netns.clone(), self.nft_program(), batch).await?;
        st.dirty.insert(group_id.to_string());
        Ok(())
    }

    async fn ensure_router(&self, router: &RouterSpec) -> NetResult<()> {
        validate_router(router)?;
        let dir = self.routers_dir(&router.key)?;
        let rules = crate::router::table_rule_count(router);
        let r = crate::router::ensure_router(
            self.config.host_netns.clone(),
            dir,
            self.config.external.clone(),
            self.nft_program(),
            router.clone(),
        )
        .await;
        if let Ok(mut t) = self.routers.lock() {
            match r {
                Ok(()) => t.rules.insert(router.key.clone(), rules),
                // Whatever the table holds now, it is not known.
                Err(_) => t.rules.remove(&router.key),
            };
        }
        r
    }

    fn router_netns(&self, key: &str) -> Option<PathBuf> {
        let dir = self.config.routers_dir.as_ref()?;
        Some(crate::router_netns(dir, key))
    }

    async fn remove_router(&self, key: &str) -> NetResult<()> {
        validate_router_key(key)?;
        let dir = self.routers_dir(key)?;
        crate::router::remove_router(dir, key.to_string()).await?;
        if let Ok(mut t) = self.routers.lock() {
            t.rules.remove(key);
        }
        Ok(())
    }

    async fn observe_ports(&self) -> NetResult<Vec<ObservedPort>> {
        Ok(self.host(observe_in).await?.1)
    }

    async fn observe(&self) -> NetResult<Observed> {
        let (networks, ports, attached) = self.host(observe_in).await?;
        // The routers' tables are listed as often as the security table's
        // rules are counted: one `nft` per router.
        let every = self
            .config
            .security_check_every
            .unwrap_or(Duration::from_secs(30));
        let tables = match self.routers.lock() {
            Ok(mut t) if t.last_checked.is_none_or(|c| c.elapsed() >= every) => {
                t.last_checked = Some(Instant::now());
                Some((self.nft_program(), t.rules.clone()))
            }
            _ => None,
        };
        let mut routers = match &self.config.routers_dir {
            Some(d) => crate::router::observe_routers(d.clone(), tables).await?,
            None => Vec::new(),
        };
        for r in &mut routers {
            for l in &mut r.links {
                l.attached = attached.contains(&(r.key.clone(), l.network_id.clone()));
            }
        }
        let security_table = self.security_table_as_applied().await?;
        Ok(Observed {
            networks,
            ports,
            routers,
            security_table,
        })
    }
}
