//! Instances on virtual networks, end to end: a real `nuage serve` with the
//! container driver gives each instance a port on its project's default
//! network, wired (veth, bridge, address, route) in nuage's own node
//! namespace before the init starts. Real traffic between instances; two
//! projects with the same CIDR never reach each other; terminating frees
//! the address and the interface. Nothing is created in the machine's own
//! network namespace: the node's lives under the test's data directory.
//! Needs root, runc, busybox-static and nftables, as CI has.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{call, Server};
use serde_json::{json, Value};

async fn run_one(s: &Server, t: &str, user_data: &str) -> Value {
    common::launch_busybox(s, t, user_data).await
}

async fn wait(s: &Server, t: &str, id: &str, state: &str) -> Value {
    common::wait_state(s, t, id, state).await
}

async fn console_until(s: &Server, t: &str, id: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let (_, v) = call(
            s,
            t,
            "GET",
            &format!("/nuage/v1/instances/{id}/console"),
            None,
        )
        .await;
        let c = v["output"].as_str().unwrap_or_default().to_string();
        if c.contains(needle) {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "console of {id} never showed {needle:?}:\n{c}\n{}",
            s.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Interface names in a network namespace (the machine's own with `None`),
/// from `ip -o link` (sysfs would show the mounting namespace's).
fn links(netns: Option<&Path>) -> BTreeSet<String> {
    let mut cmd = Command::new("nsenter");
    if let Some(ns) = netns {
        cmd.arg(format!("--net={}", ns.display()));
    }
    let out = cmd
        .args(["/bin/busybox", "ip", "-o", "link", "show"])
        .output()
        .expect("listing links");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

fn private_ip(v: &Value) -> String {
    v["private_ip_address"]
        .as_str()
        .unwrap_or_else(|| panic!("no private address: {v}"))
        .to_string()
}

#[tokio::test]
async fn instances_get_ports_reach_each_other_and_projects_stay_apart() {
    let s = Server::start();
    common::build_busybox(&s);
    let t = s.admin_token().await;
    let before_host = links(None);

    // The first instance shows its interface on its console.
    let show = "#!/bin/sh\nip -4 addr show dev eth0\nip route\necho net-shown\n";
    let a = run_one(&s, &t, show).await;
    let a_id = a["id"].as_str().expect("id").to_string();
    let a_ip = private_ip(&a);
    assert!(a_ip.starts_with("10.0."), "{a}");
    assert_eq!(a["network_interfaces"][0]["private_ip"], a_ip.as_str());
    wait(&s, &t, &a_id, "running").await;
    let c = console_until(&s, &t, &a_id, "net-shown").await;
    assert!(c.contains(&format!("inet {a_ip}/16")), "{c}");
    assert!(c.contains("default via 10.0.0.1"), "{c}");

    // The second pings the first from inside, over the bridge.
    let ping = format!(
        "#!/bin/sh\n# A port is isolated until the agent's next pass names it: retry.\ni=0\nwhile [ $i -lt 12 ]; do\n  if ping -c 1 -W 1 {a_ip} >/dev/null 2>&1; then echo ping-result=reached; exit 0; fi\n  i=$((i + 1))\ndone\necho ping-result=missed\n"
    );
    let b = run_one(&s, &t, &ping).await;
    let b_id = b["id"].as_str().expect("id").to_string();
    let b_ip = private_ip(&b);
    assert_ne!(a_ip, b_ip, "one address twice");
    wait(&s, &t, &b_id, "running").await;
    let c = console_until(&s, &t, &b_id, "ping-result=").await;
    assert!(
        c.contains("ping-result=reached"),
        "b could not reach a:\n{c}"
    );

    // Another project: the same default CIDR (its first instance gets a's
    // address), its own bridge; it cannot reach b.
    let (other, _) = common::project_with_member(&s, "netother", "netother-pass-1").await;
    let ot = s
        .token_for("netother-user", "netother-pass-1", Some(&other))
        .await;
    let ping_b = format!(
        "#!/bin/sh\n# A port is isolated until the agent's next pass names it: retry.\ni=0\nwhile [ $i -lt 12 ]; do\n  if ping -c 1 -W 1 {b_ip} >/dev/null 2>&1; then echo ping-result=reached; exit 0; fi\n  i=$((i + 1))\ndone\necho ping-result=missed\n"
    );
    let o = run_one(&s, &ot, &ping_b).await;
    let o_id = o["id"].as_str().expect("id").to_string();
    assert_eq!(private_ip(&o), a_ip, "projects' default subnets are alike");
    wait(&s, &ot, &o_id, "running").await;
    let c = console_until(&s, &ot, &o_id, "ping-result=").await;
    assert!(
        c.contains("ping-result=missed"),
        "another project reached project 1's instance {b_ip}:\n{c}"
    );

    // Everything is in nuage's node namespace, nothing in the machine's.
    let node_ns = s.data_dir().join("network/node.netns");
    let node_links = links(Some(&node_ns));
    let ports: Vec<&String> = node_links.iter().filter(|l| l.starts_with("nv-")).collect();
    let bridges: Vec<&String> = node_links.iter().filter(|l| l.starts_with("nb-")).collect();
    assert_eq!(ports.len(), 3, "{node_links:?}");
    assert_eq!(bridges.len(), 2, "one bridge per network: {node_links:?}");
    // The network agent applied the security groups there: nuage's table.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let nft = Command::new("nsenter")
            .arg(format!("--net={}", node_ns.display()))
            .args(["nft", "list", "table", "inet", "nuage"])
            .output()
            .expect("nft");
        if nft.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no nuage table in the node's namespace: {nft:?}\n{}",
            s.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after_host = links(None);
    assert_eq!(
        after_host.difference(&before_host).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "interfaces appeared in the machine's own namespace"
    );

    // Terminating frees the interface and the address: the next instance
    // of the project gets a's address back.
    let (st, v) = call(
        &s,
        &t,
        "POST",
        "/nuage/v1/instances/terminate",
        Some(json!({"instance_ids": [a_id]})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    wait(&s, &t, &a_id, "terminated").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while links(Some(&node_ns))
        .iter()
        .filter(|l| l.starts_with("nv-"))
        .count()
        != 2
    {
        assert!(
            Instant::now() < deadline,
            "a's veth is still there: {:?}",
            links(Some(&node_ns))
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let d = run_one(&s, &t, "#!/bin/sh\necho d\n").await;
    assert_eq!(private_ip(&d), a_ip, "the freed address was not reused");
}

/// Pings `target` once from inside the instance's network namespace.
fn pings(s: &Server, from: &str, target: &str) -> bool {
    let ns = common::instance_netns(s, from);
    Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args(["/bin/busybox", "ping", "-c", "1", "-W", "1", target])
        .output()
        .expect("nsenter ping")
        .status
        .success()
}

/// Security groups hold on real traffic, statefully, and a rule added
/// while the instances run takes effect: members of the default group
/// reach each other; an instance in a group with no ingress is not
/// reachable from them (their egress is open, so the refusal is its
/// group's) until ICMP ingress is allowed, and it cannot reach them (the
/// default group admits only its members).
#[tokio::test]
async fn security_groups_filter_real_traffic_and_take_changes_live() {
    let s = Server::start();
    common::build_busybox(&s);
    let t = s.admin_token().await;
    let (st, g) = call(
        &s,
        &t,
        "POST",
        "/nuage/v1/security-groups",
        Some(json!({"name": "closed", "description": "no ingress"})),
    )
    .await;
    assert_eq!(st, 201, "{g}");
    let group = g["id"].as_str().expect("group id").to_string();
    let (st, c) = call(
        &s,
        &t,
        "POST",
        "/nuage/v1/instances",
        Some(
            json!({"image_id": "busybox", "instance_type": "t2.nano", "security_groups": [group]}),
        ),
    )
    .await;
    assert_eq!(st, 201, "{c}");
    let c = &c["items"][0];
    let c_id = c["id"].as_str().expect("id").to_string();
    let c_ip = private_ip(c);
    let d = run_one(&s, &t, "#!/bin/sh\necho d\n").await;
    let d_id = d["id"].as_str().expect("id").to_string();
    let d_ip = private_ip(&d);
    let e = run_one(&s, &t, "#!/bin/sh\necho e\n").await;
    let e_id = e["id"].as_str().expect("id").to_string();
    let e_ip = private_ip(&e);
    for id in [&c_id, &d_id, &e_id] {
        wait(&s, &t, id, "running").await;
    }

    // The default group admits its own members: d reaches e once the agent
    // applied the ruleset (and e's replies come back: stateful).
    let deadline = Instant::now() + Duration::from_secs(15);
    while !pings(&s, &d_id, &e_ip) {
        assert!(Instant::now() < deadline, "d never reached e\n{}", s.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for _ in 0..2 {
        // c's group admits nothing; d's admits only the default's members.
        if pings(&s, &d_id, &c_ip) {
            let ns = s.data_dir().join("network/node.netns");
            let nft = Command::new("nsenter")
                .arg(format!("--net={}", ns.display()))
                .args(["nft", "list", "ruleset"])
                .output()
                .expect("nft");
            let ct = Command::new("nsenter")
                .arg(format!("--net={}", ns.display()))
                .args(["cat", "/proc/net/nf_conntrack"])
                .output()
                .expect("ct");
            panic!(
                "d {d_ip} reached c {c_ip} through a closed group\n{}\n{}\n{}",
                String::from_utf8_lossy(&nft.stdout),
                String::from_utf8_lossy(&ct.stdout),
                s.logs()
            );
        }
        assert!(
            !pings(&s, &c_id, &d_ip),
            "c reached d without being a member of its group"
        );
    }

    // ICMP from the subnet, added while both run.
    let (st, r) = call(
        &s,
        &t,
        "POST",
        &format!("/nuage/v1/security-groups/{group}/rules"),
        Some(json!({"direction": "ingress", "protocol": "icmp", "remote_cidr": "10.0.0.0/16"})),
    )
    .await;
    assert_eq!(st, 201, "{r}");
    let deadline = Instant::now() + Duration::from_secs(15);
    while !pings(&s, &d_id, &c_ip) {
        assert!(
            Instant::now() < deadline,
            "the new rule never let d reach c\n{}",
            s.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What is deleted by hand comes back on the next pass: an instance's veth
/// (the compute reconciler sees its NIC unwired and plugs it again) and its
/// network's bridge (the network agent makes it again; the ports on it are
/// re-attached by compute's pass), and the instances reach each other again.
#[tokio::test]
async fn a_veth_or_a_bridge_deleted_by_hand_is_put_back() {
    let cfg = tempfile::tempdir().expect("temp dir");
    let file = cfg.path().join("nuage.toml");
    std::fs::write(&file, "resync_secs = 2\n").expect("config");
    let s = Server::start_with(common::Options {
        env: vec![("NUAGE_CONFIG".into(), file.display().to_string())],
        ..common::Options::default()
    });
    common::build_busybox(&s);
    let t = s.admin_token().await;
    let idle = "#!/bin/sh\nsleep 600\n";
    let a = run_one(&s, &t, idle).await;
    let b = run_one(&s, &t, idle).await;
    let a_id = a["id"].as_str().expect("id").to_string();
    let b_ip = private_ip(&b);
    wait(&s, &t, &a_id, "running").await;
    wait(&s, &t, b["id"].as_str().expect("id"), "running").await;
    let reached = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !pings(&s, &a_id, &b_ip) {
            assert!(
                Instant::now() < deadline,
                "{what}: a never reached b\n{}",
                s.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    reached("at first");

    let node = s.data_dir().join("network").join("node.netns");
    let delete = |ifname: &str| {
        let out = Command::new("nsenter")
            .arg(format!("--net={}", node.display()))
            .args(["/bin/busybox", "ip", "link", "del", ifname])
            .output()
            .expect("nsenter ip link del");
        assert!(out.status.success(), "deleting {ifname}: {out:?}");
        assert!(!links(Some(&node)).contains(ifname), "{ifname} still there");
    };
    let port = a["network_interfaces"][0]["port_id"]
        .as_str()
        .expect("port id");
    let veth = nuage_driver::nic_host_ifname(port);
    delete(&veth);
    assert!(!pings(&s, &a_id, &b_ip), "a reached b without its veth");
    reached("after its veth was deleted");
    assert!(links(Some(&node)).contains(&veth), "{veth} is not back");

    let network = a["network_interfaces"][0]["network_id"]
        .as_str()
        .expect("network id");
    let bridge = nuage_netdriver::bridge_name(network);
    delete(&bridge);
    reached("after the bridge was deleted");
    assert!(links(Some(&node)).contains(&bridge), "{bridge} is not back");
}

/// The metadata service and the resolver answer from inside a real
/// instance, through its gateway's router namespace: busybox `nc` speaks
/// HTTP/1.0 to 169.254.169.254 (Debian's busybox-static `wget` segfaults)
/// and busybox `nslookup` asks the resolver `/etc/resolv.conf` names.
#[tokio::test]
async fn metadata_and_dns_answer_from_inside_an_instance() {
    let s = Server::start();
    common::build_busybox(&s);
    let t = s.admin_token().await;
    let peer = run_one(&s, &t, "#!/bin/sh\nsleep 600\n").await;
    let peer_ip = private_ip(&peer);
    let peer_name = format!("ip-{}.nuage-1.compute.internal", peer_ip.replace('.', "-"));
    let script = format!(
        r#"#!/bin/sh
get() {{ printf 'GET %s HTTP/1.0\r\nHost: 169.254.169.254\r\n\r\n' "$1" | nc 169.254.169.254 80; }}
i=0
while [ $i -lt 30 ]; do
  if get /latest/meta-data/instance-id | grep -q '^i-'; then break; fi
  i=$((i + 1)); sleep 1
done
echo "md-id=$(get /latest/meta-data/instance-id | tail -n 1)"
echo "md-ip=$(get /latest/meta-data/local-ipv4 | tail -n 1)"
echo "md-user-data=$(get /latest/user-data | grep -c '^get() ')"
echo "os-uuid=$(get /openstack/latest/meta_data.json | tail -n 1 | grep -o '"uuid": *"[^"]*"')"
echo "resolv=$(grep nameserver /etc/resolv.conf)"
if nslookup {peer_name} 2>&1 | grep -q 'Address.*{peer_ip}'; then echo dns-peer=found; else echo dns-peer=missing; fi
echo "dns-outside=$(nslookup example.com 2>&1 | grep -o -e REFUSED -e 'Name:.*example.com')"
echo done-probing
sleep 600
"#
    );
    let a = run_one(&s, &t, &script).await;
    let a_id = a["id"].as_str().expect("id").to_string();
    let a_ip = private_ip(&a);
    wait(&s, &t, &a_id, "running").await;
    let c = console_until(&s, &t, &a_id, "done-probing").await;
    assert!(c.contains(&format!("md-id={a_id}")), "{c}\n{}", s.logs());
    assert!(c.contains(&format!("md-ip={a_ip}")), "{c}");
    assert!(c.contains("md-user-data=1"), "{c}");
    assert!(
        c.contains(&format!("\"uuid\": \"{a_id}\"")) || c.contains(&format!("\"uuid\":\"{a_id}\"")),
        "{c}"
    );
    assert!(c.contains("resolv=nameserver 10.0.0.1"), "{c}");
    assert!(c.contains("dns-peer=found"), "{c}");
    assert!(c.contains("dns-outside=REFUSED"), "{c}");
}
