//! The NIC plugger over the Linux driver: what the container driver calls
//! for an instance, wired in namespaces the test creates.

mod common;

use std::sync::Arc;

use common::{ping, Node};
use nuage_driver::{DriverError, Nic, NicPlugger};
use nuage_netdriver::plug::NetPlugger;
use nuage_netdriver::{bridge_name, port_ifname, NetDriver};

fn nic(port: &str, net: &str, address: &str) -> Nic {
    Nic {
        port_id: port.into(),
        network_id: net.into(),
        vlan: None,
        // Distinct per port: the last byte of the port id and its length.
        mac: format!(
            "fa:16:3e:00:{:02x}:{:02x}",
            port.len(),
            port.bytes().last().unwrap_or(0)
        ),
        address: address.into(),
        gateway: Some("10.0.0.1".into()),
        host_ifname: nuage_driver::nic_host_ifname(port),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn plugs_two_nics_into_an_instance_and_unplugs_them() {
    let node = Node::new();
    let driver: Arc<dyn NetDriver> = Arc::new(node.driver.clone());
    let plugger = NetPlugger::new(driver.clone());
    let inst = node.instance("i-1");
    let peer = node.instance("peer");
    let nics = [
        nic("eni-a", "vpc-1", "10.0.0.5/24"),
        nic("eni-bb", "vpc-2", "10.1.0.5/24"),
    ];
    let mut second = nics[1].clone();
    second.gateway = None;
    let nics = [nics[0].clone(), second];
    plugger.plug("i-1", inst.path(), &nics).await.expect("plug");
    plugger
        .plug("i-1", inst.path(), &nics)
        .await
        .expect("plug again (idempotent)");

    let mut links = inst.link_names().expect("links");
    links.sort();
    assert_eq!(links, ["eth0", "eth1", "lo"]);
    let mut host = node.host.link_names().expect("host links");
    host.sort();
    let mut want = vec![
        bridge_name("vpc-1"),
        bridge_name("vpc-2"),
        port_ifname("eni-a"),
        port_ifname("eni-bb"),
        "lo".to_string(),
    ];
    want.sort();
    assert_eq!(host, want);
    assert_eq!(nics[0].host_ifname, port_ifname("eni-a"));

    // A peer on vpc-1, plugged the same way, reaches eth0.
    plugger
        .plug("peer", peer.path(), &[nic("eni-c", "vpc-1", "10.0.0.6/24")])
        .await
        .expect("plug peer");
    assert!(ping(&peer, "10.0.0.5"), "the peer cannot reach eth0");
    assert!(!ping(&peer, "10.1.0.5"), "eth1 is on another network");

    plugger.unplug("i-1", &nics).await.expect("unplug");
    assert_eq!(inst.link_names().expect("links"), ["lo"]);
    let o = driver.observe().await.expect("observe");
    let ports: Vec<_> = o.ports.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ports, ["eni-c"], "only the peer's port remains");
    assert_eq!(
        o.networks.len(),
        2,
        "bridges are the reconcilers' to remove"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_namespace_fails_and_a_bad_nic_is_invalid() {
    let node = Node::new();
    let plugger = NetPlugger::new(Arc::new(node.driver.clone()));
    let gone = node.tmp.path().join("no-such-namespace");
    let err = plugger
        .plug("i-2", &gone, &[nic("eni-a", "vpc-1", "10.0.0.5/24")])
        .await
        .expect_err("no namespace");
    assert!(err.to_string().contains("eni-a"), "{err}");
    let inst = node.instance("i-3");
    let err = plugger
        .plug(
            "i-3",
            inst.path(),
            &[nic("eni-a", "vpc-1", "10.0.0.300/24")],
        )
        .await
        .expect_err("bad address");
    assert!(matches!(err, DriverError::Invalid(_)), "{err}");
    assert_eq!(inst.link_names().expect("links"), ["lo"]);
}
