//! Routing domains: router namespaces holding the gateways, SNAT and
//! floating addresses to an "external" network that is itself a namespace
//! the test creates (as root; nothing touches the machine's network).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};

use common::{connect, echo, echo_server, ensure, ping, port, Node};
use nuage_netdriver::nft::{Direction, PortRange, Protocol, Remote, SecurityGroup, SgPort, SgRule};
use nuage_netdriver::testing::{run_in, NetNs};
use nuage_netdriver::{
    router_port_ifname, ExternalGateway, FloatingAddress, NetDriver, PortSpec, RouterLink,
    RouterSpec, SecurityPlan,
};

fn domain(key: &str, network: &str, gateway: &str) -> RouterSpec {
    RouterSpec {
        key: key.into(),
        links: vec![RouterLink {
            network_id: network.into(),
            gateways: vec![gateway.parse().expect("gateway")],
        }],
        external: None,
    }
}

/// A TCP server in `ns` answering each connection with the address it came
/// from: what the external side sees.
fn whoami_server(ns: &NetNs, addr: &str) -> SocketAddr {
    let addr: SocketAddr = addr.parse().expect("address");
    let l = ns
        .run(|| TcpListener::bind(addr))
        .expect("thread")
        .expect("bind");
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { return };
            let peer = c
                .peer_addr()
                .map(|p| p.ip().to_string())
                .unwrap_or_default();
            let _ = c.write_all(peer.as_bytes());
        }
    });
    addr
}

fn whoami(ns: &NetNs, to: SocketAddr) -> Option<String> {
    let mut s = connect(ns, to)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(3)))
        .expect("timeout");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    Some(out)
}

fn sg_port(p: &PortSpec) -> SgPort {
    SgPort {
        id: p.id.clone(),
        network_id: p.network_id.clone(),
        host_ifname: nuage_netdriver::port_ifname(&p.id),
        mac: p.mac,
        ip: p.address.addr,
        groups: vec!["sg-web".into()],
    }
}

/// All egress; ingress ICMP and TCP 7000 from anywhere, nothing else.
fn web() -> SecurityGroup {
    let rule = |direction, protocol| SgRule {
        direction,
        protocol,
        remote: Remote::Any,
    };
    SecurityGroup {
        id: "sg-web".into(),
        rules: vec![
            rule(Direction::Egress, Protocol::All),
            rule(
                Direction::Ingress,
                Protocol::Icmp {
                    icmp_type: None,
                    code: None,
                },
            ),
            rule(Direction::Ingress, Protocol::Tcp(PortRange::single(7000))),
        ],
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn overlapping_networks_each_reach_their_own_gateway() {
    let node = Node::new();
    node.bridge("net-1").await;
    node.bridge("net-2").await;
    let (a, b) = (node.instance("a"), node.instance("b"));
    // The same address on both networks, the same gateway.
    let pa = port("pa", "net-1", &a, "10.0.0.2/24", Some("10.0.0.1"));
    let pb = port("pb", "net-2", &b, "10.0.0.2/24", Some("10.0.0.1"));
    ensure(&node, &pa).await;
    ensure(&node, &pb).await;
    for (key, net) in [("net:net-1", "net-1"), ("net:net-2", "net-2")] {
        let d = domain(key, net, "10.0.0.1/24");
        let began = std::time::Instant::now();
        node.driver.ensure_router(&d).await.expect("domain");
        let made = began.elapsed();
        let began = std::time::Instant::now();
        node.driver.ensure_router(&d).await.expect("idempotent");
        eprintln!(
            "{key}: made in {made:?}, checked again in {:?}",
            began.elapsed()
        );
    }
    // With the security table in force: traffic to the router passes the
    // sender's egress rules and reaches it.
    node.driver
        .apply_security(&SecurityPlan {
            ports: vec![sg_port(&pa), sg_port(&pb)],
            groups: vec![web()],
        })
        .await
        .expect("plan");
    assert!(ping(&a, "10.0.0.1"), "a does not reach its gateway");
    assert!(ping(&b, "10.0.0.1"), "b does not reach its gateway");
    assert!(
        ping(&a, "169.254.169.254"),
        "a does not reach the metadata address"
    );
    // Each domain answered on its own link: the listener in net-2's
    // domain hears b only.
    let o = node.driver.observe().await.expect("observe");
    let keys: Vec<_> = o.routers.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["net:net-1", "net:net-2"]);
    for r in &o.routers {
        assert_eq!(r.links.len(), 1);
        assert_eq!(
            r.links[0].addresses,
            vec!["10.0.0.1/24".parse().expect("cidr")]
        );
        assert_eq!(r.external, None);
    }
    // (On the DNS port: a router's input filter lets only its services'
    // ports in.)
    let listener = run_in(&o.routers[1].netns, || TcpListener::bind("10.0.0.1:53"))
        .expect("thread")
        .expect("bind in net-2's domain");
    let server = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for c in listener.incoming() {
            let Ok(mut c) = c else { return };
            let _ = c.write_all(b"net-2");
        }
    });
    let mut s = connect(&b, server).expect("b reaches its router");
    let mut got = String::new();
    s.read_to_string(&mut got).expect("read");
    assert_eq!(got, "net-2");
    // a's gateway is its own domain's, where nothing listens: refused.
    let refused = a
        .run(|| std::net::TcpStream::connect_timeout(&server, std::time::Duration::from_secs(2)))
        .expect("thread");
    assert_eq!(
        refused.map(drop).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionRefused),
        "a reached the other network's router"
    );
    // Nothing forwards in the node's namespace.
    let fwd = node
        .host
        .run(|| std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward"))
        .expect("thread")
        .expect("sysctl");
    assert_eq!(fwd.trim(), "0");
}

/// Fields drop in order: instances, then the node (whose directory holds
/// their files), then the external namespace and its directory.
struct External {
    a: NetNs,
    c: NetNs,
    pa: PortSpec,
    pc: PortSpec,
    node: Node,
    ext: NetNs,
    _ext_dir: tempfile::TempDir,
}

/// net-1 (10.0.0.0/24) behind router rtr-1, whose external leg is
/// 192.168.100.10 on `ext0`, a bridge in the namespace `ext` holding
/// 192.168.100.1 (the external gateway and the "internet" host).
async fn external() -> External {
    let tmp_ext = tempfile::tempdir().expect("tempdir");
    let ext = NetNs::create(tmp_ext.path(), "ext").expect("external namespace");
    ext.add_bridge("ext0").expect("external bridge");
    ext.add_address("ext0", "192.168.100.1/24".parse().expect("cidr"))
        .expect("external host address");
    let node = Node::with_external(&ext, "ext0");
    node.bridge("net-1").await;
    let (a, c) = (node.instance("a"), node.instance("c"));
    let pa = port("pa", "net-1", &a, "10.0.0.2/24", Some("10.0.0.1"));
    let pc = port("pc", "net-1", &c, "10.0.0.3/24", Some("10.0.0.1"));
    ensure(&node, &pa).await;
    ensure(&node, &pc).await;
    node.driver
        .apply_security(&SecurityPlan {
            ports: vec![sg_port(&pa), sg_port(&pc)],
            groups: vec![web()],
        })
        .await
        .expect("plan");
    External {
        node,
        ext,
        _ext_dir: tmp_ext,
        a,
        c,
        pa,
        pc,
    }
}

fn router(floating: bool) -> RouterSpec {
    let mut r = domain("rtr-1", "net-1", "10.0.0.1/24");
    r.external = Some(ExternalGateway {
        address: "192.168.100.10/24".parse().expect("cidr"),
        gateway: Some("192.168.100.1".parse().expect("ip")),
        floating: if floating {
            vec![FloatingAddress {
                public: "192.168.100.20".parse().expect("ip"),
                fixed: "10.0.0.2".parse().expect("ip"),
            }]
        } else {
            Vec::new()
        },
    });
    r
}

#[tokio::test(flavor = "multi_thread")]
async fn snat_out_and_floating_addresses_in() {
    let t = external().await;
    let _ = (&t.pa, &t.pc);
    let began = std::time::Instant::now();
    t.node
        .driver
        .ensure_router(&router(true))
        .await
        .expect("router");
    let made = began.elapsed();
    let began = std::time::Instant::now();
    t.node
        .driver
        .ensure_router(&router(true))
        .await
        .expect("router again");
    eprintln!(
        "rtr-1 with its external leg and NAT: made in {made:?}, checked again in {:?}",
        began.elapsed()
    );
    assert!(
        ping(&t.c, "192.168.100.1"),
        "c does not reach the external host"
    );
    let who = whoami_server(&t.ext, "192.168.100.1:7100");
    assert_eq!(
        whoami(&t.c, who).as_deref(),
        Some("192.168.100.10"),
        "c leaves by the router's address"
    );
    assert_eq!(
        whoami(&t.a, who).as_deref(),
        Some("192.168.100.20"),
        "a leaves by its floating address"
    );
    // In through the floating address, to what a's groups allow; the reply
    // comes from the floating address (the socket is connected to it).
    let on_a = echo_server(&t.a, "10.0.0.2:7000");
    let mut s = connect(&t.ext, "192.168.100.20:7000".parse().expect("addr"))
        .expect("the external host reaches a by its floating address");
    assert_eq!(echo(&mut s, "in"), "echo:in");
    assert_eq!(
        s.peer_addr().expect("peer").ip().to_string(),
        "192.168.100.20"
    );
    assert!(ping(&t.ext, "192.168.100.20"));
    let _closed = echo_server(&t.a, "10.0.0.2:7001");
    assert!(
        connect(&t.ext, "192.168.100.20:7001".parse().expect("addr")).is_none(),
        "a's security groups do not hold on its floating address"
    );
    // The external side cannot route into the private network.
    t.ext
        .exec(
            "ip",
            &["route", "add", "10.0.0.0/24", "via", "192.168.100.10"],
        )
        .expect("route");
    assert!(
        connect(&t.ext, on_a).is_none(),
        "the router forwards the external network into a private one"
    );

    // Disassociated: the address is gone, c and a still leave by SNAT.
    t.node
        .driver
        .ensure_router(&router(false))
        .await
        .expect("disassociate");
    assert!(
        connect(&t.ext, "192.168.100.20:7000".parse().expect("addr")).is_none(),
        "the floating address still answers"
    );
    assert_eq!(whoami(&t.a, who).as_deref(), Some("192.168.100.10"));
    let o = t.node.driver.observe().await.expect("observe");
    assert_eq!(
        o.routers[0].external,
        Some(vec!["192.168.100.10/24".parse().expect("cidr")])
    );
    // No gateway: the external leg goes, nothing leaves.
    t.node
        .driver
        .ensure_router(&domain("rtr-1", "net-1", "10.0.0.1/24"))
        .await
        .expect("gateway cleared");
    assert!(!ping(&t.c, "192.168.100.1"));
    assert!(
        t.ext.link_names().expect("links").len() == 2,
        "ext0 and lo only"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn what_is_deleted_by_hand_comes_back_and_orphans_go() {
    let t = external().await;
    let d = &t.node.driver;
    d.ensure_router(&router(true)).await.expect("router");
    assert!(ping(&t.c, "192.168.100.1"));
    // The link on the bridge, by hand.
    t.node
        .host
        .delete_link(&router_port_ifname("rtr-1", "net-1"))
        .expect("delete by hand");
    assert!(!ping(&t.c, "10.0.0.1"));
    d.ensure_router(&router(true)).await.expect("repair link");
    assert!(ping(&t.c, "10.0.0.1"), "the link is not back");
    // The whole namespace, by hand.
    let o = d.observe().await.expect("observe");
    let ns = o.routers[0].netns.clone();
    rustix::mount::unmount(&ns, rustix::mount::UnmountFlags::DETACH).expect("unmount");
    std::fs::remove_file(&ns).expect("rm");
    d.ensure_router(&router(true))
        .await
        .expect("repair namespace");
    assert!(ping(&t.c, "192.168.100.1"), "the namespace is not back");
    assert!(
        ping(&t.ext, "192.168.100.20"),
        "the floating address is not back"
    );
    // The network moves to another domain: taken over, one gateway.
    d.ensure_router(&domain("net:net-1", "net-1", "10.0.0.1/24"))
        .await
        .expect("implicit domain");
    assert!(ping(&t.c, "10.0.0.1"));
    // An orphan (the router nothing owns any more) is removed whole.
    d.remove_router("rtr-1").await.expect("remove");
    d.remove_router("rtr-1").await.expect("remove again");
    let o = d.observe().await.expect("observe");
    let keys: Vec<_> = o.routers.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["net:net-1"]);
    assert!(ping(&t.c, "10.0.0.1"));
    assert!(!ping(&t.c, "192.168.100.1"));
    assert_eq!(
        t.ext.link_names().expect("links").len(),
        2,
        "ext0 and lo only"
    );
    // Without an external network configured, a gateway is refused.
    let plain = Node::new();
    plain.bridge("net-1").await;
    assert!(matches!(
        plain.driver.ensure_router(&router(false)).await,
        Err(nuage_netdriver::NetError::Invalid(_))
    ));
}

/// Hairpin: an instance reaches a floating address of its own router, its
/// own or another instance's, and is seen there as the outside would see
/// it: by its own floating address, or the router's.
#[tokio::test(flavor = "multi_thread")]
async fn instances_reach_floating_addresses_of_their_own_router() {
    let t = external().await;
    let mut r = router(true);
    let ext = r.external.as_mut().expect("external");
    ext.floating.push(FloatingAddress {
        public: "192.168.100.21".parse().expect("ip"),
        fixed: "10.0.0.3".parse().expect("ip"),
    });
    t.node.driver.ensure_router(&r).await.expect("router");
    let on_a = whoami_server(&t.a, "10.0.0.2:7000");
    let a_public: SocketAddr = "192.168.100.20:7000".parse().expect("addr");
    assert_eq!(whoami(&t.ext, a_public).as_deref(), Some("192.168.100.1"));
    assert_eq!(
        whoami(&t.c, a_public).as_deref(),
        Some("192.168.100.21"),
        "c does not reach a by a's floating address, as c's"
    );
    assert_eq!(
        whoami(&t.a, a_public).as_deref(),
        Some("192.168.100.20"),
        "a does not reach itself by its floating address"
    );
    // Without a floating address of its own, c is seen as the router.
    t.node
        .driver
        .ensure_router(&router(true))
        .await
        .expect("c's address released");
    assert_eq!(whoami(&t.c, a_public).as_deref(), Some("192.168.100.10"));
    // Direct traffic is untouched: c reaches a by a's fixed address, as
    // itself.
    assert_eq!(whoami(&t.c, on_a).as_deref(), Some("10.0.0.3"));
}

/// A listener on `addr` inside the router namespace `ns` that answers
/// every connection with "ok".
fn router_listener(ns: &std::path::Path, addr: &str) {
    let l = run_in(ns, || TcpListener::bind(addr))
        .expect("thread")
        .expect("bind in the router namespace");
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { return };
            let _ = c.write_all(b"ok");
        }
    });
}

/// A UDP exchange with `to` from inside `ns`: the answer, or `None`.
fn udp_ask(ns: &NetNs, to: &str) -> Option<String> {
    let s = ns
        .run(|| std::net::UdpSocket::bind("0.0.0.0:0"))
        .expect("thread")
        .expect("bind");
    s.set_read_timeout(Some(std::time::Duration::from_millis(1500)))
        .expect("timeout");
    s.send_to(b"q", to).expect("send");
    let mut buf = [0u8; 16];
    let n = s.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Inside a router namespace only what nuage serves is open to instances
/// (ICMP, DNS on 53, metadata on 169.254.169.254:80) and nothing to the
/// external network but ICMP; a port the test opens there is reached by
/// nobody. With or without an external leg.
#[tokio::test(flavor = "multi_thread")]
async fn a_router_accepts_only_what_nuage_serves() {
    let t = external().await;
    t.node
        .driver
        .ensure_router(&router(true))
        .await
        .expect("router");
    let ns = t.node.driver.router_netns("rtr-1").expect("router netns");
    router_listener(&ns, "0.0.0.0:7000");
    router_listener(&ns, "0.0.0.0:53");
    router_listener(&ns, "169.254.169.254:80");
    let dns_udp = run_in(&ns, || std::net::UdpSocket::bind("0.0.0.0:53"))
        .expect("thread")
        .expect("bind");
    std::thread::spawn(move || {
        let mut buf = [0u8; 16];
        while let Ok((_, peer)) = dns_udp.recv_from(&mut buf) {
            let _ = dns_udp.send_to(b"dns", peer);
        }
    });
    let addr = |a: &str| -> SocketAddr { a.parse().expect("addr") };
    let check = |what: &str| {
        assert!(
            ping(&t.c, "10.0.0.1"),
            "{what}: the gateway does not answer ping"
        );
        assert!(
            connect(&t.c, addr("10.0.0.1:53")).is_some(),
            "{what}: DNS over TCP"
        );
        assert_eq!(
            udp_ask(&t.c, "10.0.0.1:53").as_deref(),
            Some("dns"),
            "{what}"
        );
        assert!(
            connect(&t.c, addr("169.254.169.254:80")).is_some(),
            "{what}: metadata"
        );
        assert!(
            connect(&t.c, addr("10.0.0.1:7000")).is_none(),
            "{what}: an instance reached a port nuage does not serve"
        );
        assert!(
            connect(&t.c, addr("169.254.169.254:7000")).is_none(),
            "{what}: an instance reached a port nuage does not serve"
        );
    };
    check("with an external leg");
    // From outside: ICMP only, even to the services' ports, even routed
    // to the metadata address.
    assert!(ping(&t.ext, "192.168.100.10"));
    assert!(connect(&t.ext, addr("192.168.100.10:7000")).is_none());
    assert!(connect(&t.ext, addr("192.168.100.10:53")).is_none());
    t.ext
        .exec(
            "ip",
            &[
                "route",
                "add",
                "169.254.169.254/32",
                "via",
                "192.168.100.10",
            ],
        )
        .expect("route");
    assert!(
        connect(&t.ext, addr("169.254.169.254:80")).is_none(),
        "the external network reached the metadata port"
    );
    // Replies to what the router itself opens still come back.
    let who = whoami_server(&t.ext, "192.168.100.1:7100");
    let from_router = run_in(&ns, || {
        std::net::TcpStream::connect_timeout(&who, std::time::Duration::from_secs(2))
    })
    .expect("thread");
    assert!(from_router.is_ok(), "{from_router:?}");

    // Without an external leg the filter stays.
    t.node
        .driver
        .ensure_router(&domain("rtr-1", "net-1", "10.0.0.1/24"))
        .await
        .expect("gateway cleared");
    check("without an external leg");
}

/// nft inside a router namespace.
fn nft_in(ns: &std::path::Path, args: &[&str]) -> std::process::Output {
    run_in(ns, || std::process::Command::new("nft").args(args).output())
        .expect("thread")
        .expect("nft")
}

/// A router's table deleted (or a rule of it) by hand is reported by
/// `observe`, which lists the routers' tables every
/// `security_check_every`, so the agent's next pass ensures the router
/// again and the table is back.
#[tokio::test(flavor = "multi_thread")]
async fn a_router_table_changed_by_hand_is_observed() {
    let mut t = external().await;
    let mut config = t.node.driver.config().clone();
    config.security_check_every = Some(std::time::Duration::ZERO);
    t.node.driver = nuage_netdriver::linux::LinuxNetDriver::new(config);
    let d = &t.node.driver;
    d.ensure_router(&router(true)).await.expect("router");
    let ns = d.router_netns("rtr-1").expect("router netns");
    let table = |d: &nuage_netdriver::linux::LinuxNetDriver| {
        let d = d.clone();
        async move { d.observe().await.expect("observe").routers[0].table }
    };
    assert_eq!(table(d).await, Some(true));

    let out = nft_in(&ns, &["delete", "table", "ip", "nuage-router"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(table(d).await, Some(false), "a missing table went unseen");
    d.ensure_router(&router(true)).await.expect("router again");
    assert_eq!(table(d).await, Some(true));

    // One rule deleted: the count differs.
    let listed = nft_in(&ns, &["-j", "list", "chain", "ip", "nuage-router", "input"]);
    let v: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    let handle = v["nftables"]
        .as_array()
        .and_then(|a| a.iter().rev().find_map(|i| i["rule"]["handle"].as_u64()))
        .expect("a rule");
    let out = nft_in(
        &ns,
        &[
            "delete",
            "rule",
            "ip",
            "nuage-router",
            "input",
            "handle",
            &handle.to_string(),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(table(d).await, Some(false), "a deleted rule went unseen");
    d.ensure_router(&router(true)).await.expect("router again");
    assert_eq!(table(d).await, Some(true));

    // A driver that has applied nothing yet (a restarted agent) checks
    // the table is there; between checks it does not list it.
    let mut config = d.config().clone();
    config.security_check_every = Some(std::time::Duration::from_secs(3600));
    let fresh = nuage_netdriver::linux::LinuxNetDriver::new(config);
    assert_eq!(table(&fresh).await, Some(true));
    assert_eq!(table(&fresh).await, None);
}
