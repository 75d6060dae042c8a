//! `FakeNetDriver`: a test double, never a data plane.
//!
//! It records every call and keeps the would-be state of a node in memory,
//! so that the network service's reconcilers can be tested (and measured)
//! at thousands of ports on one small machine, and a test can delete
//! something "by hand" ([`FakeNetDriver::forget_port`]) or make
//! observation fail ([`FakeNetDriver::fail_observe`]). It never stands in
//! for [`crate::linux::LinuxNetDriver`] where a test is about traffic.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::{
    bridge_name, port_ifname, validate_network, validate_port, Ipv4Cidr, Member, NetDriver,
    NetError, NetResult, NetworkSpec, Observed, ObservedNetwork, ObservedPort, ObservedRouter,
    ObservedRouterLink, PortSpec, RouterSpec, SecurityPlan,
};

/// One recorded call, with the ids it named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    EnsureNetwork(String),
    RemoveNetwork(String),
    EnsureGateway(String, Ipv4Cidr),
    RemoveGateway(String, Ipv4Cidr),
    EnsurePort(String),
    RemovePort(String),
    ApplySecurity,
    SetGroupMembers(String, usize),
    EnsureRouter(String),
    RemoveRouter(String),
    Observe,
}

#[derive(Debug, Default)]
struct State {
    calls: Vec<Call>,
    networks: BTreeMap<String, (NetworkSpec, Vec<Ipv4Cidr>)>,
    ports: BTreeMap<String, PortSpec>,
    plan: Option<SecurityPlan>,
    members: BTreeMap<String, Vec<Member>>,
    routers: BTreeMap<String, RouterSpec>,
    fail_observe: bool,
}

/// A node's data plane in memory.
#[derive(Debug, Default)]
pub struct FakeNetDriver {
    state: Mutex<State>,
}

impl FakeNetDriver {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The port as last ensured, if it exists.
    pub fn port(&self, id: &str) -> Option<PortSpec> {
        self.lock().ports.get(id).cloned()
    }

    /// The plan in force, if one was applied.
    pub fn plan(&self) -> Option<SecurityPlan> {
        self.lock().plan.clone()
    }

    /// The members of a group as the last plan or set update left them.
    pub fn members(&self, group_id: &str) -> Vec<Member> {
        self.lock()
            .members
            .get(group_id)
            .cloned()
            .unwrap_or_default()
    }

    /// The routing domain as last ensured, if it exists.
    pub fn router(&self, key: &str) -> Option<RouterSpec> {
        self.lock().routers.get(key).cloned()
    }

    /// Deletes a routing domain behind the reconciler's back.
    pub fn forget_router(&self, key: &str) {
        self.lock().routers.remove(key);
    }

    /// Deletes a port behind the reconciler's back, as an operator might.
    pub fn forget_port(&self, id: &str) {
        self.lock().ports.remove(id);
    }

    /// Makes `observe` fail (as a real one does on EMFILE) until called
    /// again with `false`.
    pub fn fail_observe(&self, fail: bool) {
        self.lock().fail_observe = fail;
    }
}

#[async_trait::async_trait]
impl NetDriver for FakeNetDriver {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn ensure_network(&self, network: &NetworkSpec) -> NetResult<()> {
        validate_network(network)?;
        let mut s = self.lock();
        s.calls.push(Call::EnsureNetwork(network.id.clone()));
        let entry = s
            .networks
            .entry(network.id.clone())
            .or_insert_with(|| (network.clone(), Vec::new()));
        entry.0 = network.clone();
        Ok(())
    }

    async fn remove_network(&self, network_id: &str) -> NetResult<()> {
        let mut s = self.lock();
        s.calls.push(Call::RemoveNetwork(network_id.into()));
        s.networks.remove(network_id);
        Ok(())
    }

    async fn ensure_gateway(&self, network_id: &str, address: Ipv4Cidr) -> NetResult<()> {
        let mut s = self.lock();
        s.calls
            .push(Call::EnsureGateway(network_id.into(), address));
        let (_, addrs) = s.networks.get_mut(network_id).ok_or_else(|| {
            NetError::Failed(format!("network {network_id}: bridge does not exist"))
        })?;
        if !addrs.contains(&address) {
            addrs.push(address);
        }
        Ok(())
    }

    async fn remove_gateway(&self, network_id: &str, address: Ipv4Cidr) -> NetResult<()> {
        let mut s = self.lock();
        s.calls
            .push(Call::RemoveGateway(network_id.into(), address));
        if let Some((_, addrs)) = s.networks.get_mut(network_id) {
            addrs.retain(|a| *a != address);
        }
        Ok(())
    }

    async fn ensure_port(&self, port: &PortSpec) -> NetResult<()> {
        validate_port(port)?;
        let mut s = self.lock();
        s.calls.push(Call::EnsurePort(port.id.clone()));
        if !s.networks.contains_key(&port.network_id) {
            return Err(NetError::Failed(format!(
                "port {}: the bridge of network {} does not exist",
                port.id, port.network_id
            )));
        }
        s.ports.insert(port.id.clone(), port.clone());
        Ok(())
    }

    async fn remove_port(&self, port_id: &str) -> NetResult<()> {
        let mut s = self.lock();
        s.calls.push(Call::RemovePort(port_id.into()));
        s.ports.remove(port_id);
        Ok(())
    }

    async fn apply_security(&self, plan: &SecurityPlan) -> NetResult<()> {
        // The real compiler's validation, so bad plans fail here too.
        crate::nft::compile(plan)?;
        let mut s = self.lock();
        s.calls.push(Call::ApplySecurity);
        s.members = plan
            .groups
            .iter()
            .map(|g| {
                let m = plan
                    .ports
                    .iter()
                    .filter(|p| p.groups.contains(&g.id))
                    .map(|p| Member {
                        network_id: p.network_id.clone(),
                        ip: p.ip,
                    })
                    .collect();
                (g.id.clone(), m)
            })
            .collect();
        s.plan = Some(plan.clone());
        Ok(())
    }

    async fn set_group_members(&self, group_id: &str, members: &[Member]) -> NetResult<()> {
        crate::nft::members_update(group_id, members)?;
        let mut s = self.lock();
        s.calls
            .push(Call::SetGroupMembers(group_id.into(), members.len()));
        if !s.members.contains_key(group_id) {
            return Err(NetError::Failed(format!(
                "security group {group_id} is not in the ruleset in force"
            )));
        }
        s.members.insert(group_id.into(), members.to_vec());
        Ok(())
    }

    async fn ensure_router(&self, router: &RouterSpec) -> NetResult<()> {
        crate::validate_router(router)?;
        let mut s = self.lock();
        s.calls.push(Call::EnsureRouter(router.key.clone()));
        if let Some(l) = router
            .links
            .iter()
            .find(|l| !s.networks.contains_key(&l.network_id))
        {
            return Err(NetError::Failed(format!(
                "router {}: the bridge of network {} does not exist",
                router.key, l.network_id
            )));
        }
        // A network is in one domain: take it from any other.
        for other in s.routers.values_mut() {
            if other.key != router.key {
                other
                    .links
                    .retain(|l| !router.links.iter().any(|m| m.network_id == l.network_id));
            }
        }
        s.routers.insert(router.key.clone(), router.clone());
        Ok(())
    }

    fn router_netns(&self, key: &str) -> Option<std::path::PathBuf> {
        Some(std::path::Path::new("/fake/routers").join(key))
    }

    async fn remove_router(&self, key: &str) -> NetResult<()> {
        crate::validate_router_key(key)?;
        let mut s = self.lock();
        s.calls.push(Call::RemoveRouter(key.into()));
        s.routers.remove(key);
        Ok(())
    }

    async fn observe(&self) -> NetResult<Observed> {
        let mut s = self.lock();
        s.calls.push(Call::Observe);
        if s.fail_observe {
            return Err(NetError::Failed("fake: observation failed".into()));
        }
        Ok(Observed {
            networks: s
                .networks
                .values()
                .map(|(n, addrs)| ObservedNetwork {
                    id: n.id.clone(),
                    bridge: bridge_name(&n.id),
                    vlan: n.vlan,
                    up: true,
                    addresses: addrs.clone(),
                })
                .collect(),
            ports: s
                .ports
                .values()
                .map(|p| ObservedPort {
                    id: p.id.clone(),
                    host_ifname: port_ifname(&p.id),
                    network_id: s
                        .networks
                        .contains_key(&p.network_id)
                        .then(|| p.network_id.clone()),
                    up: true,
                })
                .collect(),
            routers: s
                .routers
                .values()
                .map(|r| ObservedRouter {
                    key: r.key.clone(),
                    netns: std::path::Path::new("/fake/routers").join(&r.key),
                    links: r
                        .links
                        .iter()
                        .map(|l| ObservedRouterLink {
                            network_id: l.network_id.clone(),
                            ifname: crate::router_link_ifname(&l.network_id),
                            addresses: l.gateways.clone(),
                            attached: s.networks.contains_key(&l.network_id),
                        })
                        .collect(),
                    external: r.external.as_ref().map(|e| {
                        let mut a = vec![e.address];
                        a.extend(e.floating.iter().map(|f| Ipv4Cidr {
                            addr: f.public,
                            prefix: 32,
                        }));
                        a
                    }),
                    table: Some(true),
                })
                .collect(),
            security_table: s.plan.is_some(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mac;
    use std::net::Ipv4Addr;

    #[tokio::test]
    async fn records_calls_and_keeps_state() {
        // Object-safe, as reconcilers hold it.
        let d: std::sync::Arc<dyn NetDriver> = std::sync::Arc::new(FakeNetDriver::new());
        assert_eq!(d.name(), "fake");
        let d = FakeNetDriver::new();
        let net = NetworkSpec {
            id: "net-1".into(),
            vlan: None,
        };
        let port = PortSpec {
            id: "port-1".into(),
            network_id: "net-1".into(),
            netns: "/nonexistent".into(),
            device: "eth0".into(),
            mac: Mac([2, 0, 0, 0, 0, 1]),
            address: "10.0.0.2/24".parse().expect("cidr"),
            gateway: Some(Ipv4Addr::new(10, 0, 0, 1)),
        };
        assert!(d.ensure_port(&port).await.is_err(), "no bridge yet");
        d.ensure_network(&net).await.expect("net");
        d.ensure_network(&net).await.expect("net again");
        d.ensure_port(&port).await.expect("port");
        let o = d.observe().await.expect("observe");
        assert_eq!(o.ports.len(), 1);
        assert_eq!(o.ports[0].network_id.as_deref(), Some("net-1"));
        d.forget_port("port-1");
        assert!(d.observe().await.expect("observe").ports.is_empty());
        d.fail_observe(true);
        assert!(d.observe().await.is_err(), "an error, never \"absent\"");
        d.fail_observe(false);
        assert!(d.set_group_members("sg", &[]).await.is_err());
        d.apply_security(&SecurityPlan::default())
            .await
            .expect("plan");
        d.remove_port("port-1").await.expect("remove");
        assert_eq!(d.calls()[0], Call::EnsurePort("port-1".into()));
        assert_eq!(d.calls().len(), 10);
    }
}
