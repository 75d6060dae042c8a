//! [`NetPlugger`]: the compute driver's [`NicPlugger`] over a [`NetDriver`].
//!
//! The container driver calls it once an instance's network namespace
//! exists and before its init starts (CNI's ADD), and again when it removes
//! the instance (DEL). It wires exactly what the instance's spec names: each
//! NIC's network bridge, then the NIC itself (`eth0`, `eth1`, ... by
//! position). Gateways on bridges, security groups and leftovers are the
//! network service's reconcilers' (`nuage_network::agent`), which share the
//! plugger's [`PlugGate`] so that they never remove a bridge while a plug
//! is putting a port on it.
//!
//! With [`NetPlugger::with_security_in_force`] a plug also waits, bounded,
//! until the node's security plan in force names every port it plugged
//! (ADR 24): an instance's init never runs while its port is outside its
//! groups (which the forward chain would fail closed on anyway, ADR 20).

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nuage_driver::{DriverError, DriverResult, Nic, NicPlugger};

use crate::{Ipv4Cidr, Mac, NetDriver, NetError, NetworkSpec, PortSpec};

/// Serialises plugs against the reconcilers' removals on one node: a plug
/// holds it shared for its whole duration, a removal exclusively. A removal
/// that re-reads the store under the exclusive hold therefore sees every
/// port whose plug could be under way (a launch commits its ports before
/// the driver plugs them).
#[derive(Debug, Clone, Default)]
pub struct PlugGate(Arc<tokio::sync::RwLock<()>>);

impl PlugGate {
    pub fn new() -> Self {
        Self::default()
    }

    /// Held by a plug or unplug.
    pub async fn shared(&self) -> tokio::sync::OwnedRwLockReadGuard<()> {
        self.0.clone().read_owned().await
    }

    /// Held by a pass that removes bridges or ports.
    pub async fn exclusive(&self) -> tokio::sync::OwnedRwLockWriteGuard<()> {
        self.0.clone().write_owned().await
    }
}

/// Whoever applies the node's security plan (the network agent), as the
/// plugger sees it; netdriver knows nothing of the network service.
#[async_trait::async_trait]
pub trait SecurityInForce: Send + Sync {
    /// Returns once a plan naming each of `ports` (at the generation the
    /// port has now, or later) is in force. Unbounded: the plugger bounds
    /// it. Never called with the [`PlugGate`] held, so the agent may take
    /// the gate while answering.
    async fn wait(&self, ports: &[String]) -> Result<(), NetError>;
}

/// How long a plug waits for its ports' security by default.
pub const SECURITY_WAIT: Duration = Duration::from_secs(5);

/// Wires instances' NICs through a network driver.
#[derive(Clone)]
pub struct NetPlugger {
    driver: Arc<dyn NetDriver>,
    gate: PlugGate,
    security: Option<(Arc<dyn SecurityInForce>, Duration)>,
}

impl std::fmt::Debug for NetPlugger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetPlugger")
            .field("driver", &self.driver.name())
            .finish()
    }
}

impl NetPlugger {
    pub fn new(driver: Arc<dyn NetDriver>) -> Self {
        NetPlugger {
            driver,
            gate: PlugGate::new(),
            security: None,
        }
    }

    /// From now on a plug returns only once `security` says the plan in
    /// force names every port it plugged, and fails (`Failed`, which the
    /// compute reconciler retries) if that takes longer than `bound`.
    pub fn with_security_in_force(
        mut self,
        security: Arc<dyn SecurityInForce>,
        bound: Duration,
    ) -> Self {
        self.security = Some((security, bound));
        self
    }

    /// Waits for `ports` to be in the plan in force, if a waiter is set.
    async fn wait_in_force(&self, instance_id: &str, ports: &[String]) -> DriverResult<()> {
        let Some((security, bound)) = &self.security else {
            return Ok(());
        };
        if ports.is_empty() {
            return Ok(());
        }
        match tokio::time::timeout(*bound, security.wait(ports)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(DriverError::Failed(format!(
                "instance {instance_id}: waiting for the security groups of ports {}: {e}",
                ports.join(", ")
            ))),
            Err(_) => Err(DriverError::Failed(format!(
                "instance {instance_id}: the security groups of ports {} were not in force \
                 within {} ms; the start will be retried",
                ports.join(", "),
                bound.as_millis()
            ))),
        }
    }

    /// The gate to give the network service's reconcilers on this node.
    pub fn gate(&self) -> PlugGate {
        self.gate.clone()
    }
}

/// A driver error as the compute driver reports it: `Invalid` stays
/// invalid (retrying will not help), everything else may pass on a retry.
fn driver_error(context: &str, e: NetError) -> DriverError {
    match e {
        NetError::Invalid(m) => DriverError::Invalid(format!("{context}: {m}")),
        NetError::Failed(m) => DriverError::Failed(format!("{context}: {m}")),
    }
}

/// The port the driver must make for the NIC at `position`.
pub fn port_spec(netns: &Path, position: usize, nic: &Nic) -> Result<PortSpec, NetError> {
    let mac: Mac = nic.mac.parse()?;
    let address: Ipv4Cidr = nic.address.parse()?;
    let gateway = match &nic.gateway {
        Some(g) => Some(
            g.parse::<Ipv4Addr>()
                .map_err(|_| NetError::Invalid(format!("gateway {g:?} is not an IPv4 address")))?,
        ),
        None => None,
    };
    Ok(PortSpec {
        id: nic.port_id.clone(),
        network_id: nic.network_id.clone(),
        netns: netns.to_path_buf(),
        device: format!("eth{position}"),
        mac,
        address,
        gateway,
    })
}

#[async_trait::async_trait]
impl NicPlugger for NetPlugger {
    async fn plug(&self, instance_id: &str, netns: &Path, nics: &[Nic]) -> DriverResult<()> {
        // Every spec is checked before anything is made: a bad NIC leaves
        // nothing half-wired.
        let mut ports = Vec::with_capacity(nics.len());
        for (i, nic) in nics.iter().enumerate() {
            let spec = port_spec(netns, i, nic).map_err(|e| {
                driver_error(
                    &format!("instance {instance_id}: NIC eth{i} (port {})", nic.port_id),
                    e,
                )
            })?;
            ports.push(spec);
        }
        let began = std::time::Instant::now();
        let held = self.gate.shared().await;
        let gate_at = began.elapsed();
        for (nic, port) in nics.iter().zip(&ports) {
            let context = format!(
                "instance {instance_id}: NIC {} (port {})",
                port.device, port.id
            );
            self.driver
                .ensure_network(&NetworkSpec {
                    id: nic.network_id.clone(),
                    vlan: nic.vlan,
                })
                .await
                .map_err(|e| driver_error(&format!("{context}: network {}", nic.network_id), e))?;
            self.driver
                .ensure_port(port)
                .await
                .map_err(|e| driver_error(&context, e))?;
        }
        // The gate is let go first: the agent's passes never wait on a plug
        // that waits on them.
        drop(held);
        let wired_at = began.elapsed();
        let ids: Vec<String> = ports.into_iter().map(|p| p.id).collect();
        self.wait_in_force(instance_id, &ids).await?;
        tracing::debug!(
            instance = %instance_id,
            gate_us = gate_at.as_micros() as u64,
            wire_us = (wired_at - gate_at).as_micros() as u64,
            security_us = (began.elapsed() - wired_at).as_micros() as u64,
            "plugged"
        );
        Ok(())
    }

    async fn unplug(&self, instance_id: &str, nics: &[Nic]) -> DriverResult<()> {
        let _held = self.gate.shared().await;
        for nic in nics {
            self.driver.remove_port(&nic.port_id).await.map_err(|e| {
                driver_error(
                    &format!("instance {instance_id}: removing port {}", nic.port_id),
                    e,
                )
            })?;
        }
        Ok(())
    }

    async fn wired(&self, nics: &[Nic]) -> DriverResult<Vec<bool>> {
        let seen = self
            .driver
            .observe_ports()
            .await
            .map_err(|e| driver_error("looking at the node's ports", e))?;
        Ok(nics
            .iter()
            .map(|nic| {
                seen.iter().any(|p| {
                    p.id == nic.port_id && p.up && p.network_id.as_deref() == Some(&nic.network_id)
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{Call, FakeNetDriver};

    fn nic(port: &str, net: &str, last: u8) -> Nic {
        Nic {
            port_id: port.into(),
            network_id: net.into(),
            vlan: None,
            mac: format!("fa:16:3e:00:00:{last:02x}"),
            address: format!("10.0.0.{last}/24"),
            gateway: Some("10.0.0.1".into()),
            host_ifname: nuage_driver::nic_host_ifname(port),
        }
    }

    #[tokio::test]
    async fn plugs_in_order_and_unplugs() {
        let fake = Arc::new(FakeNetDriver::new());
        let p = NetPlugger::new(fake.clone());
        let nics = [nic("eni-a", "vpc-1", 5), nic("eni-b", "vpc-2", 6)];
        p.plug("i-1", Path::new("/run/netns/i-1"), &nics)
            .await
            .expect("plug");
        assert_eq!(
            fake.calls(),
            [
                Call::EnsureNetwork("vpc-1".into()),
                Call::EnsurePort("eni-a".into()),
                Call::EnsureNetwork("vpc-2".into()),
                Call::EnsurePort("eni-b".into()),
            ]
        );
        let b = fake.port("eni-b").expect("eni-b");
        assert_eq!(b.device, "eth1");
        assert_eq!(b.address.to_string(), "10.0.0.6/24");
        assert_eq!(b.gateway, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(b.mac.to_string(), "fa:16:3e:00:00:06");
        p.unplug("i-1", &nics).await.expect("unplug");
        assert!(fake.port("eni-a").is_none() && fake.port("eni-b").is_none());
        p.unplug("i-1", &nics).await.expect("unplug is idempotent");
    }

    #[tokio::test]
    async fn wired_reports_what_the_node_has_and_errors_are_not_absence() {
        let fake = Arc::new(FakeNetDriver::new());
        let p = NetPlugger::new(fake.clone());
        let nics = [nic("eni-a", "vpc-1", 5), nic("eni-b", "vpc-2", 6)];
        assert_eq!(p.wired(&nics).await.expect("look"), [false, false]);
        p.plug("i-1", Path::new("/run/netns/i-1"), &nics)
            .await
            .expect("plug");
        assert_eq!(p.wired(&nics).await.expect("look"), [true, true]);
        fake.forget_port("eni-b");
        assert_eq!(p.wired(&nics).await.expect("look"), [true, false]);
        fake.fail_observe(true);
        assert!(p.wired(&nics).await.is_err());
    }

    #[tokio::test]
    async fn a_bad_nic_is_invalid_and_wires_nothing() {
        let fake = Arc::new(FakeNetDriver::new());
        let p = NetPlugger::new(fake.clone());
        for (field, bad) in [
            ("mac", "fa:16:3e:00:00"),
            ("address", "10.0.0.7"),
            ("gateway", "10.0.0"),
        ] {
            let mut second = nic("eni-b", "vpc-1", 7);
            match field {
                "mac" => second.mac = bad.into(),
                "address" => second.address = bad.into(),
                _ => second.gateway = Some(bad.into()),
            }
            let err = p
                .plug("i-1", Path::new("/x"), &[nic("eni-a", "vpc-1", 5), second])
                .await
                .expect_err(field);
            let DriverError::Invalid(m) = err else {
                panic!("{field}: not Invalid: {err}")
            };
            assert!(
                m.contains("eth1") && m.contains("eni-b") && m.contains(bad),
                "{m}"
            );
        }
        assert!(fake.calls().is_empty(), "nothing was wired");
    }

    #[tokio::test]
    async fn driver_failures_keep_their_kind() {
        // The fake refuses a VLAN id out of range as Invalid.
        let fake = Arc::new(FakeNetDriver::new());
        let p = NetPlugger::new(fake.clone());
        let mut n = nic("eni-a", "vpc-1", 5);
        n.vlan = Some(5000);
        let err = p
            .plug("i-1", Path::new("/x"), &[n])
            .await
            .expect_err("vlan");
        assert!(matches!(err, DriverError::Invalid(_)), "{err}");
        assert_eq!(
            driver_error("x", NetError::Failed("EBUSY".into())).to_string(),
            "x: EBUSY"
        );
        assert!(matches!(
            driver_error("x", NetError::Failed("EBUSY".into())),
            DriverError::Failed(_)
        ));
    }

    #[tokio::test]
    async fn a_removal_waits_for_a_plug_in_flight() {
        let p = NetPlugger::new(Arc::new(FakeNetDriver::new()));
        let gate = p.gate();
        let held = gate.shared().await;
        let removal = tokio::spawn({
            let gate = gate.clone();
            async move {
                let _x = gate.exclusive().await;
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!removal.is_finished(), "the removal waited");
        drop(held);
        removal.await.expect("removal ran");
    }
}
