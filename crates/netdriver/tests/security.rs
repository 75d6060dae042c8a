//! Security groups in nftables, with real TCP and ICMP between instance
//! namespaces on one bridge of a node namespace the test creates.

mod common;

use std::net::Ipv4Addr;
use std::path::PathBuf;

use common::{connect, connect_from, echo, echo_server, ensure, ping, port, Node};
use nuage_netdriver::testing::NetNs;
use nuage_netdriver::{
    nft, port_ifname, Direction, Mac, Member, NetDriver, PortRange, PortSpec, Protocol, Remote,
    SecurityGroup, SecurityPlan, SgPort, SgRule,
};

fn sg_port(p: &PortSpec, groups: &[&str]) -> SgPort {
    SgPort {
        id: p.id.clone(),
        network_id: p.network_id.clone(),
        host_ifname: port_ifname(&p.id),
        mac: p.mac,
        ip: p.address.addr,
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

fn allow(direction: Direction, protocol: Protocol, remote: Remote) -> SgRule {
    SgRule {
        direction,
        protocol,
        remote,
    }
}

/// `server`: TCP 8080 from anywhere, TCP 9090 from members of `trusted`,
/// ICMP echo requests from 10.0.0.0/24, and no egress at all (its replies
/// pass only as replies). `client`: any egress, no ingress.
fn groups(open_8080: bool) -> Vec<SecurityGroup> {
    let mut server = vec![
        allow(
            Direction::Ingress,
            Protocol::Tcp(PortRange::single(9090)),
            Remote::Group("trusted".into()),
        ),
        allow(
            Direction::Ingress,
            Protocol::Icmp {
                icmp_type: Some(8),
                code: None,
            },
            Remote::Cidr("10.0.0.0/24".parse().expect("cidr")),
        ),
    ];
    server.push(allow(
        Direction::Ingress,
        Protocol::Udp(PortRange {
            from: 5300,
            to: 5399,
        }),
        Remote::Any,
    ));
    if open_8080 {
        server.push(allow(
            Direction::Ingress,
            Protocol::Tcp(PortRange::single(8080)),
            Remote::Any,
        ));
    }
    vec![
        SecurityGroup {
            id: "server".into(),
            rules: server,
        },
        SecurityGroup {
            id: "client".into(),
            rules: vec![allow(Direction::Egress, Protocol::All, Remote::Any)],
        },
        SecurityGroup {
            id: "trusted".into(),
            rules: vec![],
        },
    ]
}

struct Setup {
    node: Node,
    a: NetNs,
    b: NetNs,
    c: NetNs,
    pa: PortSpec,
    pb: PortSpec,
    pc: PortSpec,
}

impl Setup {
    async fn new() -> Setup {
        let node = Node::new();
        node.network("net-a", "10.0.0.1/24").await;
        let (a, b, c) = (node.instance("a"), node.instance("b"), node.instance("c"));
        let pa = port("port-a", "net-a", &a, "10.0.0.2/24", Some("10.0.0.1"));
        let pb = port("port-b", "net-a", &b, "10.0.0.3/24", Some("10.0.0.1"));
        let pc = port("port-c", "net-a", &c, "10.0.0.4/24", Some("10.0.0.1"));
        for p in [&pa, &pb, &pc] {
            ensure(&node, p).await;
        }
        Setup {
            node,
            a,
            b,
            c,
            pa,
            pb,
            pc,
        }
    }

    fn plan(&self, open_8080: bool) -> SecurityPlan {
        SecurityPlan {
            ports: vec![
                sg_port(&self.pa, &["client"]),
                sg_port(&self.pb, &["server"]),
                sg_port(&self.pc, &["client"]),
            ],
            groups: groups(open_8080),
        }
    }

    /// The table in force, as nft lists it in JSON, without its handles'
    /// generation counter.
    fn table(&self) -> serde_json::Value {
        let out = self
            .node
            .host
            .exec("nft", &["-j", "list", "table", "inet", "nuage"])
            .expect("nft");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("nft json");
        if let Some(items) = v["nftables"].as_array_mut() {
            items.retain(|i| i.get("metainfo").is_none());
        }
        v
    }

    fn rules(&self) -> Vec<serde_json::Value> {
        self.table()["nftables"]
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|i| i.get("rule").cloned())
            .collect()
    }
}

/// A datagram from `from` to `to`'s 10.0.0.3:`port`, echoed back by a
/// socket in `to`: the reply, or `None` when either way was dropped.
fn udp_echo(from: &NetNs, to: &NetNs, port: u16) -> Option<Vec<u8>> {
    use std::net::UdpSocket;
    use std::time::Duration;
    let server = to
        .run(|| UdpSocket::bind(("10.0.0.3", port)))
        .expect("thread")
        .expect("bind");
    server
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let echoer = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        if let Ok((n, peer)) = server.recv_from(&mut buf) {
            let _ = server.send_to(&buf[..n], peer);
        }
    });
    let client = from
        .run(|| UdpSocket::bind("0.0.0.0:0"))
        .expect("thread")
        .expect("bind");
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    client.send_to(b"ping", ("10.0.0.3", port)).expect("send");
    let mut buf = [0u8; 64];
    let r = client.recv(&mut buf).ok().map(|n| buf[..n].to_vec());
    echoer.join().expect("echoer");
    r
}

fn nft_program() -> PathBuf {
    "nft".into()
}

#[tokio::test(flavor = "multi_thread")]
async fn allowed_flows_pass_statefully_and_others_are_dropped() {
    let s = Setup::new().await;
    let on_b_8080 = echo_server(&s.b, "10.0.0.3:8080");
    let on_b_8081 = echo_server(&s.b, "10.0.0.3:8081");
    let on_b_9090 = echo_server(&s.b, "10.0.0.3:9090");
    let on_a_7000 = echo_server(&s.a, "10.0.0.2:7000");

    // Before any ruleset everything flows.
    assert!(connect(&s.a, on_b_8081).is_some());
    s.node
        .driver
        .apply_security(&s.plan(true))
        .await
        .expect("apply");
    assert!(
        s.node
            .driver
            .observe()
            .await
            .expect("observe")
            .security_table
    );

    // Allowed, and the reply passes although b allows no egress.
    let mut conn = connect(&s.a, on_b_8080).expect("8080 is allowed");
    assert_eq!(echo(&mut conn, "one"), "echo:one");
    assert!(
        ping(&s.a, "10.0.0.3"),
        "ICMP echo from the subnet is allowed"
    );
    // Dropped: another port, b's own egress, a's ingress.
    assert!(connect(&s.a, on_b_8081).is_none(), "8081 is not allowed");
    assert!(connect(&s.b, on_a_7000).is_none(), "b has no egress");
    assert!(!ping(&s.b, "10.0.0.2"), "a allows no ingress");
    // UDP: a port in the allowed range answers, one outside it does not.
    assert_eq!(udp_echo(&s.a, &s.b, 5353), Some(b"ping".to_vec()));
    assert_eq!(udp_echo(&s.a, &s.b, 5400), None);
    // 9090 only from members of `trusted`, which has none yet.
    assert!(connect(&s.a, on_b_9090).is_none());
    assert!(connect(&s.c, on_b_9090).is_none());

    // Membership is a set update: no rule changes.
    let rules_before = s.rules();
    s.node
        .driver
        .set_group_members(
            "trusted",
            &[Member {
                network_id: "net-a".into(),
                ip: s.pa.address.addr,
            }],
        )
        .await
        .expect("members");
    assert_eq!(s.rules(), rules_before, "a membership change rewrote rules");
    let mut t = connect(&s.a, on_b_9090).expect("a is trusted now");
    assert_eq!(echo(&mut t, "nine"), "echo:nine");
    assert!(connect(&s.c, on_b_9090).is_none(), "c is not trusted");

    // A rule change on a running instance: 8080 closes for new
    // connections, the established one keeps flowing.
    s.node
        .driver
        .apply_security(&s.plan(false))
        .await
        .expect("re-apply");
    assert!(connect(&s.a, on_b_8080).is_none(), "8080 is closed now");
    assert_eq!(
        echo(&mut conn, "two"),
        "echo:two",
        "the established connection was cut"
    );
    // The re-apply took membership from the plan: a is no member any more.
    assert!(connect(&s.a, on_b_9090).is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_port_sends_only_from_its_own_mac_and_address() {
    let s = Setup::new().await;
    let on_b = echo_server(&s.b, "10.0.0.3:8080");
    s.node
        .driver
        .apply_security(&s.plan(true))
        .await
        .expect("apply");
    assert!(connect(&s.a, on_b).is_some());

    // Another source address, even one a holds: dropped at a's veth.
    s.a.add_address("eth0", "10.0.0.50/24".parse().expect("cidr"))
        .expect("address");
    assert!(connect_from(&s.a, Some(Ipv4Addr::new(10, 0, 0, 50)), on_b).is_none());
    // c's address from a: dropped too (without the check, c would refuse
    // or a would get the answer: either fails the test).
    s.a.add_address("eth0", "10.0.0.4/32".parse().expect("cidr"))
        .expect("address");
    assert!(connect_from(&s.a, Some(s.pc.address.addr), on_b).is_none());
    assert!(connect_from(&s.a, Some(s.pa.address.addr), on_b).is_some());

    // Another MAC: dropped.
    s.a.set_mac("eth0", Mac([0x02, 0x66, 0, 0, 0, 1]))
        .expect("mac");
    assert!(connect(&s.a, on_b).is_none(), "a spoofed MAC got through");
    s.a.set_mac("eth0", s.pa.mac).expect("mac back");
    assert!(connect(&s.a, on_b).is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_batch_leaves_the_ruleset_in_force_intact() {
    let s = Setup::new().await;
    let on_b_8081 = echo_server(&s.b, "10.0.0.3:8081");
    s.node
        .driver
        .apply_security(&s.plan(true))
        .await
        .expect("apply");
    let before = s.table();

    // A batch that would open 8081 for everyone, with one bad rule last.
    let mut open = s.plan(true);
    open.groups[0].rules.push(allow(
        Direction::Ingress,
        Protocol::Tcp(PortRange::single(8081)),
        Remote::Any,
    ));
    let mut batch = nft::compile(&open).expect("compile");
    batch["nftables"]
        .as_array_mut()
        .expect("array")
        .push(serde_json::json!({ "add": { "rule": {
            "family": "inet", "table": "nuage", "chain": "forward",
            "expr": [ { "match": { "op": "==", "left": { "meta": { "key": "iifname" } },
                                   "right": "@no-such-set" } }, { "accept": null } ] } } }));
    let r = nft::apply(Some(s.node.host.path().to_path_buf()), nft_program(), batch).await;
    assert!(r.is_err(), "nft took a rule on a set that does not exist");
    assert_eq!(s.table(), before, "the failed batch changed the table");
    assert!(
        connect(&s.a, on_b_8081).is_none(),
        "8081 opened by a failed batch"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_port_wired_after_the_ruleset_gets_its_anti_spoofing() {
    // Linux 6.16 and later keep an ingress hook on a device name that does
    // not exist (yet) and attach it when the device appears, so a ruleset
    // may name a port before its veth is made.
    let s = Setup::new().await;
    let on_b = echo_server(&s.b, "10.0.0.3:8080");
    let late = s.node.instance("late");
    let pl = port("port-late", "net-a", &late, "10.0.0.7/24", Some("10.0.0.1"));
    let mut plan = s.plan(true);
    plan.ports.push(sg_port(&pl, &["client"]));
    s.node
        .driver
        .apply_security(&plan)
        .await
        .expect("apply before wiring");
    ensure(&s.node, &pl).await;
    assert!(
        connect(&late, on_b).is_some(),
        "the late port cannot reach b"
    );
    late.add_address("eth0", "10.0.0.51/24".parse().expect("cidr"))
        .expect("address");
    assert!(
        connect_from(&late, Some(Ipv4Addr::new(10, 0, 0, 51)), on_b).is_none(),
        "the late port's anti-spoofing is not in force"
    );
}

/// Both tables (`inet nuage`, `bridge nuage`) as nft lists them, without
/// handles, each chain's rules in order, set elements sorted: equal for
/// equal rulesets however made.
fn normalized(node: &Node) -> Vec<String> {
    let mut listed = Vec::new();
    for family in ["inet", "bridge"] {
        let out = node
            .host
            .exec("nft", &["-j", "list", "table", family, "nuage"])
            .expect("nft");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("nft json");
        listed.extend(v["nftables"].as_array().expect("array").iter().cloned());
    }
    let mut per_chain: std::collections::BTreeMap<String, usize> = Default::default();
    let mut items = Vec::new();
    for item in &listed {
        let Some((kind, body)) = item.as_object().and_then(|o| o.iter().next()) else {
            continue;
        };
        if kind == "metainfo" {
            continue;
        }
        let mut body = body.clone();
        if let Some(o) = body.as_object_mut() {
            o.remove("handle");
            if let Some(serde_json::Value::Array(e)) = o.get_mut("elem") {
                e.sort_by_key(|x| x.to_string());
            }
        }
        let key = if kind == "rule" {
            let chain = format!(
                "{} {}",
                body["family"].as_str().unwrap_or_default(),
                body["chain"].as_str().unwrap_or_default()
            );
            let n = per_chain.entry(chain.clone()).or_default();
            *n += 1;
            format!("rule {chain} #{n}")
        } else {
            kind.clone()
        };
        items.push(format!("{key} {body}"));
    }
    items.sort();
    items
}

#[tokio::test(flavor = "multi_thread")]
async fn incremental_changes_give_the_table_a_full_apply_gives() {
    let s = Setup::new().await;
    let on_b = echo_server(&s.b, "10.0.0.3:8080");
    let d = &s.node.driver;
    d.apply_security(&s.plan(true)).await.expect("first, whole");
    let mut conn = connect(&s.a, on_b).expect("8080 open");

    // Many kinds of change at once: a rule removed (8080), a port gone
    // (c), a port changing groups (a joins `trusted`), a new group with a
    // remote-group rule.
    let mut next = s.plan(false);
    next.ports.retain(|p| p.id != "port-c");
    next.ports[0].groups.push("trusted".into());
    next.groups.push(SecurityGroup {
        id: "extra".into(),
        rules: vec![allow(
            Direction::Ingress,
            Protocol::Udp(PortRange { from: 1, to: 9 }),
            Remote::Group("trusted".into()),
        )],
    });
    next.ports[1].groups.push("extra".into());
    let table_handle = |s: &Setup| {
        s.table()["nftables"]
            .as_array()
            .and_then(|a| a.iter().find_map(|i| i["table"]["handle"].as_u64()))
            .expect("table handle")
    };
    let before = table_handle(&s);
    d.apply_security(&next).await.expect("incremental");
    assert_eq!(table_handle(&s), before, "the change replaced the table");
    let incremental = normalized(&s.node);

    // The same plan applied whole by a driver that knows nothing.
    let fresh = nuage_netdriver::linux::LinuxNetDriver::new(s.node.driver.config().clone());
    fresh.apply_security(&next).await.expect("whole");
    assert_ne!(
        table_handle(&s),
        before,
        "a first apply must replace the table"
    );
    assert_eq!(incremental, normalized(&s.node));

    // A rule appended to a group (an API add) is appended to its chain,
    // and the chain is what a whole apply makes.
    let mut more = next.clone();
    more.groups[0].rules.push(allow(
        Direction::Ingress,
        Protocol::Tcp(PortRange::single(9999)),
        Remote::Cidr("192.168.77.0/24".parse().expect("cidr")),
    ));
    fresh.apply_security(&more).await.expect("appended");
    let appended = normalized(&s.node);
    nuage_netdriver::linux::LinuxNetDriver::new(s.node.driver.config().clone())
        .apply_security(&more)
        .await
        .expect("whole");
    assert_eq!(appended, normalized(&s.node));
    // The established connection lived through both.
    assert_eq!(echo(&mut conn, "still"), "echo:still");

    // The table deleted by hand: the next change notices and replaces it.
    let out = s
        .node
        .host
        .exec("nft", &["delete", "table", "inet", "nuage"])
        .expect("nft");
    assert!(out.status.success());
    assert!(!d.observe().await.expect("observe").security_table);
    d.apply_security(&s.plan(true))
        .await
        .expect("after a hand deletion");
    assert!(d.observe().await.expect("observe").security_table);
    assert!(connect(&s.a, on_b).is_some(), "8080 is open again");
    assert!(connect(&s.c, on_b).is_some(), "c is back");
}

/// A rule deleted by hand is noticed by `observe`'s count of the table's
/// rules, and the next apply, even of an unchanged plan, puts it back.
#[tokio::test(flavor = "multi_thread")]
async fn a_rule_deleted_by_hand_is_put_back() {
    let s = Setup::new().await;
    let mut config = s.node.driver.config().clone();
    config.security_check_every = Some(std::time::Duration::ZERO);
    let d = nuage_netdriver::linux::LinuxNetDriver::new(config);
    let plan = s.plan(true);
    d.apply_security(&plan).await.expect("apply");
    let whole = normalized(&s.node);
    assert!(d.observe().await.expect("observe").security_table);

    let table = s.table();
    let (chain, handle) = table["nftables"]
        .as_array()
        .and_then(|a| {
            a.iter().rev().find_map(|i| {
                let r = &i["rule"];
                Some((r["chain"].as_str()?.to_string(), r["handle"].as_u64()?))
            })
        })
        .expect("a rule with its handle");
    let out = s
        .node
        .host
        .exec(
            "nft",
            &[
                "delete",
                "rule",
                "inet",
                "nuage",
                &chain,
                "handle",
                &handle.to_string(),
            ],
        )
        .expect("nft");
    assert!(out.status.success(), "{out:?}");
    assert_ne!(normalized(&s.node), whole, "the rule is still there");
    assert!(!d.observe().await.expect("observe").security_table);
    d.apply_security(&plan).await.expect("apply again");
    assert_eq!(normalized(&s.node), whole, "the rule is not back");
    assert!(d.observe().await.expect("observe").security_table);
}

/// The MAC `ns` has cached for `ip` on eth0, from iproute2's JSON
/// listing; `None` when it has none (or an incomplete one).
fn neighbour(ns: &NetNs, ip: &str) -> Option<String> {
    let out = ns
        .exec("ip", &["-j", "neigh", "show", ip, "dev", "eth0"])
        .expect("ip neigh");
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j neigh");
    v.as_array()?
        .iter()
        .find_map(|n| n["lladdr"].as_str().map(str::to_string))
}

/// busybox arping from `ns`'s eth0 with the sender address `src`: `-U`
/// sends gratuitous ARP (requests for `src` itself), otherwise requests
/// for `dst`. Whether anything answered.
fn arping(ns: &NetNs, src: &str, dst: &str, gratuitous: bool) -> bool {
    let mut args = vec!["arping", "-c", "3", "-w", "3", "-I", "eth0", "-s", src];
    if gratuitous {
        args.push("-U");
    }
    args.push(dst);
    let out = ns.exec("/bin/busybox", &args).expect("busybox arping");
    eprintln!(
        "arping {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.status.success()
}

/// ARP from a port claims only its own address and MAC: a gratuitous ARP
/// or a request for a foreign address changes no neighbour's cache, and
/// ordinary ARP (what a ping needs) still works.
#[tokio::test(flavor = "multi_thread")]
async fn arp_from_a_port_claims_only_its_own_address_and_mac() {
    let s = Setup::new().await;
    let mut plan = s.plan(true);
    for p in &mut plan.ports {
        p.groups = vec!["client".into(), "server".into()];
    }
    s.node.driver.apply_security(&plan).await.expect("apply");
    let (mac_a, mac_c) = (s.pa.mac.to_string(), s.pc.mac.to_string());
    // b learns c, and c learns b, by ordinary ARP.
    assert!(ping(&s.b, "10.0.0.4"), "b cannot reach c");
    assert_eq!(neighbour(&s.b, "10.0.0.4").as_deref(), Some(mac_c.as_str()));
    // An ARP request in a's own name is answered.
    assert!(arping(&s.a, "10.0.0.2", "10.0.0.3", false), "plain ARP");

    // a claims c's address: gratuitous ARP, then requests to b in c's
    // name. The kernel ignores updates within a second (`locktime`);
    // arping sends one a second, three times.
    s.a.sysctl("net/ipv4/ip_nonlocal_bind", "1")
        .expect("sysctl");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    arping(&s.a, "10.0.0.4", "10.0.0.4", true);
    assert!(
        !arping(&s.a, "10.0.0.4", "10.0.0.3", false),
        "b answered an ARP request in c's name"
    );
    assert_eq!(
        neighbour(&s.b, "10.0.0.4").as_deref(),
        Some(mac_c.as_str()),
        "a's ARP took c's address in b's cache"
    );
    assert!(ping(&s.b, "10.0.0.4"), "b no longer reaches c");

    // a with another MAC, claiming its own address: dropped too.
    s.a.set_mac("eth0", Mac([0x02, 0x66, 0, 0, 0, 2]))
        .expect("mac");
    assert!(!arping(&s.a, "10.0.0.2", "10.0.0.3", false));
    assert_ne!(
        neighbour(&s.b, "10.0.0.2").as_deref(),
        Some("02:66:00:00:00:02"),
        "a's spoofed MAC reached b's cache"
    );
    s.a.set_mac("eth0", s.pa.mac).expect("mac back");
    assert!(arping(&s.a, "10.0.0.2", "10.0.0.3", false));
    assert!(ping(&s.a, "10.0.0.3"), "a no longer reaches b");
    assert_eq!(neighbour(&s.b, "10.0.0.2").as_deref(), Some(mac_a.as_str()));
}

/// A UDP socket bound inside `ns`, reading with a short timeout.
fn udp_socket(ns: &NetNs, addr: &str) -> std::net::UdpSocket {
    let s = ns
        .run(|| std::net::UdpSocket::bind(addr))
        .expect("thread")
        .expect("bind");
    s.set_read_timeout(Some(std::time::Duration::from_millis(1500)))
        .expect("timeout");
    s
}

/// A UDP server in `ns` answering every datagram with `name`.
fn udp_server(ns: &NetNs, addr: &str, name: &'static str) {
    let s = udp_socket(ns, addr);
    s.set_read_timeout(None).expect("timeout");
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        while let Ok((_, peer)) = s.recv_from(&mut buf) {
            let _ = s.send_to(name.as_bytes(), peer);
        }
    });
}

fn recv(s: &std::net::UdpSocket) -> Option<String> {
    let mut buf = [0u8; 64];
    let n = s.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Two networks with the same CIDR and the same addresses: each bridge
/// has its own conntrack zone, so a flow of one network is never taken
/// for a reply to the other's, identical flows at once both pass, and
/// replies still pass statefully.
#[tokio::test(flavor = "multi_thread")]
async fn overlapping_networks_never_share_a_conntrack_entry() {
    let node = Node::new();
    node.bridge("net-1").await;
    node.bridge("net-2").await;
    let (a1, b1) = (node.instance("a1"), node.instance("b1"));
    let (a2, b2) = (node.instance("a2"), node.instance("b2"));
    let pa1 = port("pa1", "net-1", &a1, "10.0.0.2/24", None);
    let pb1 = port("pb1", "net-1", &b1, "10.0.0.3/24", None);
    let pa2 = port("pa2", "net-2", &a2, "10.0.0.2/24", None);
    let pb2 = port("pb2", "net-2", &b2, "10.0.0.3/24", None);
    for p in [&pa1, &pb1, &pa2, &pb2] {
        ensure(&node, p).await;
    }
    // a1, a2: egress only. b1: UDP 6000 in, no egress (its replies pass
    // as replies only). b2: both.
    let groups = vec![
        SecurityGroup {
            id: "out".into(),
            rules: vec![allow(Direction::Egress, Protocol::All, Remote::Any)],
        },
        SecurityGroup {
            id: "udp-in".into(),
            rules: vec![allow(
                Direction::Ingress,
                Protocol::Udp(PortRange::single(6000)),
                Remote::Any,
            )],
        },
    ];
    let plan = SecurityPlan {
        ports: vec![
            sg_port(&pa1, &["out"]),
            sg_port(&pb1, &["udp-in"]),
            sg_port(&pa2, &["out"]),
            sg_port(&pb2, &["out", "udp-in"]),
        ],
        groups,
    };
    node.driver.apply_security(&plan).await.expect("apply");
    udp_server(&b1, "10.0.0.3:6000", "b1");

    // net-1: a1:5100 → b1:6000, answered statefully.
    let c1 = udp_socket(&a1, "10.0.0.2:5100");
    c1.send_to(b"x", "10.0.0.3:6000").expect("send");
    assert_eq!(recv(&c1).as_deref(), Some("b1"));
    // net-2: b2:6000 → a2:5100 has the 5-tuple of that flow's reply, and
    // a2 allows no ingress: without zones it would pass as "established".
    let victim = udp_socket(&a2, "10.0.0.2:5100");
    let b2_sender = udp_socket(&b2, "10.0.0.3:6000");
    b2_sender.send_to(b"leak", "10.0.0.2:5100").expect("send");
    assert_eq!(
        recv(&victim),
        None,
        "net-2's packet passed as a reply to net-1's flow"
    );
    drop(b2_sender);

    // The very same flow on both networks at once: each reaches its own
    // server, each answer comes back.
    udp_server(&b2, "10.0.0.3:6000", "b2");
    let (x1, x2) = (
        udp_socket(&a1, "10.0.0.2:5000"),
        udp_socket(&a2, "10.0.0.2:5000"),
    );
    x1.send_to(b"1", "10.0.0.3:6000").expect("send");
    x2.send_to(b"2", "10.0.0.3:6000").expect("send");
    assert_eq!(recv(&x1).as_deref(), Some("b1"));
    assert_eq!(recv(&x2).as_deref(), Some("b2"));

    // Two conntrack entries for that 5-tuple, in two zones, neither the
    // default one.
    let out = node
        .host
        .exec(
            "conntrack",
            &["-L", "-p", "udp", "--sport", "5000", "--dport", "6000"],
        )
        .expect("conntrack (apt-get install conntrack)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let zones: std::collections::BTreeSet<&str> = text
        .lines()
        .map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("zone="))
                .unwrap_or("0")
        })
        .collect();
    eprintln!("conntrack:\n{text}");
    assert_eq!(text.lines().count(), 2, "{text}");
    assert_eq!(zones.len(), 2, "one zone for both networks: {text}");
    assert!(!zones.contains("0"), "a flow in the default zone: {text}");
}
