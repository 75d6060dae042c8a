//! TCP throughput between two instances on one bridge with security groups
//! on, against the same veth/bridge path with no ruleset (issue 11's
//! "≥ 90%"), measured with iperf3 in the namespaces, alternating rounds in
//! one run. The two ports are wired by `LinuxNetDriver` as for instances;
//! with rules, `inet nuage` holds a group with all egress, a few hundred
//! ingress rules that do not match and, last, tcp 5201 from the subnet.
//! Without, the table is deleted (the bridge still passes br_netfilter's
//! hooks: the same path, nothing to evaluate).
//!
//! Everything happens in namespaces this program creates; run as root with
//! iperf3 installed (`scripts/bench-network` does both):
//!
//! ```text
//! cargo run -p nuage-netdriver --example sg_throughput -- [--rounds 3] [--seconds 5] [--rules 300]
//! ```
//!
//! Prints each round, then one JSON line with the figures.

use std::process::{Command, Stdio};
use std::time::Duration;

use nuage_netdriver::linux::{LinuxConfig, LinuxNetDriver};
use nuage_netdriver::testing::NetNs;
use nuage_netdriver::{
    port_ifname, Direction, Ipv4Cidr, Mac, NetDriver, NetworkSpec, PortRange, PortSpec, Protocol,
    Remote, SecurityGroup, SecurityPlan, SgPort, SgRule,
};

struct Args {
    rounds: usize,
    seconds: u64,
    rules: u16,
}

fn args() -> Result<Args, Box<dyn std::error::Error>> {
    let mut a = Args {
        rounds: 3,
        seconds: 5,
        rules: 300,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--rounds" => a.rounds = v.parse()?,
            "--seconds" => a.seconds = v.parse()?,
            "--rules" => a.rules = v.parse()?,
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    if !(1..=10).contains(&a.rounds) || !(1..=30).contains(&a.seconds) || a.rules > 999 {
        return Err("--rounds 1..=10, --seconds 1..=30, --rules 0..=999".into());
    }
    Ok(a)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = args()?;
    let tmp = tempfile::tempdir()?;
    let node = NetNs::create(tmp.path(), "node")?;
    let config = LinuxConfig {
        host_netns: Some(node.path().to_path_buf()),
        ..LinuxConfig::default()
    };
    let driver = LinuxNetDriver::new(config.clone());
    driver
        .ensure_network(&NetworkSpec {
            id: "net-iperf".into(),
            vlan: None,
        })
        .await?;
    let mut specs = Vec::new();
    let mut instances = Vec::new();
    for i in 0..2u8 {
        let ns = NetNs::create(tmp.path(), &format!("i{i}"))?;
        let spec = PortSpec {
            id: format!("port-{i}"),
            network_id: "net-iperf".into(),
            netns: ns.path().to_path_buf(),
            device: "eth0".into(),
            mac: Mac([0x02, 0x4e, 10, 0, 0, 10 + i]),
            address: Ipv4Cidr::new([10, 0, 0, 10 + i].into(), 24)?,
            gateway: None,
        };
        driver.ensure_port(&spec).await?;
        specs.push(spec);
        instances.push(ns);
    }
    let plan = plan(&specs, a.rules);
    let rules = plan.groups.iter().map(|g| g.rules.len()).sum::<usize>();
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for round in 0..a.rounds {
        // A fresh driver applies the table whole; none deletes it.
        LinuxNetDriver::new(config.clone())
            .apply_security(&plan)
            .await?;
        let g = iperf(&instances, a.seconds)?;
        println!("round {round}: with {rules} rules {g:.2} Gbit/s");
        on.push(g);
        let out = node.exec("nft", &["delete", "table", "inet", "nuage"])?;
        if !out.status.success() {
            return Err(format!("nft delete table: {out:?}").into());
        }
        let g = iperf(&instances, a.seconds)?;
        println!("round {round}: without a table {g:.2} Gbit/s");
        off.push(g);
    }
    println!(
        "{}",
        serde_json::json!({"rules": rules, "with_rules_gbps": on, "without_gbps": off})
    );
    Ok(())
}

/// One iperf3 run from the second instance to the first: Gbit/s received.
fn iperf(instances: &[NetNs], seconds: u64) -> Result<f64, Box<dyn std::error::Error>> {
    let mut server = Command::new("nsenter")
        .arg(format!("--net={}", instances[0].path().display()))
        .args(["iperf3", "-s", "-1", "-B", "10.0.0.10"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    std::thread::sleep(Duration::from_millis(300));
    let secs = seconds.to_string();
    let out = instances[1].exec("iperf3", &["-c", "10.0.0.10", "-t", &secs, "-J"]);
    let _ = server.kill();
    let _ = server.wait();
    let out = out?;
    if !out.status.success() {
        return Err(format!("iperf3 -c: {}", String::from_utf8_lossy(&out.stdout)).into());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let bps = v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .ok_or("iperf3 reported no sum_received")?;
    Ok(bps / 1e9)
}

/// One group for both ports: all egress, `extra` ingress rules that never
/// match (other ports, other sources), then tcp 5201 from the subnet.
fn plan(specs: &[PortSpec], extra: u16) -> SecurityPlan {
    let mut rules = vec![SgRule {
        direction: Direction::Egress,
        protocol: Protocol::All,
        remote: Remote::Any,
    }];
    for r in 0..extra {
        rules.push(SgRule {
            direction: Direction::Ingress,
            protocol: if r % 2 == 0 {
                Protocol::Tcp(PortRange::single(10000 + r))
            } else {
                Protocol::Udp(PortRange::single(10000 + r))
            },
            remote: Remote::Cidr(Ipv4Cidr {
                addr: [172, 16, (r / 250) as u8, (r % 250) as u8].into(),
                prefix: 32,
            }),
        });
    }
    rules.push(SgRule {
        direction: Direction::Ingress,
        protocol: Protocol::Tcp(PortRange::single(5201)),
        remote: Remote::Cidr("10.0.0.0/24".parse().expect("a CIDR")),
    });
    SecurityPlan {
        ports: specs
            .iter()
            .map(|s| SgPort {
                id: s.id.clone(),
                network_id: s.network_id.clone(),
                host_ifname: port_ifname(&s.id),
                mac: s.mac,
                ip: s.address.addr,
                groups: vec!["sg-iperf".into()],
            })
            .collect(),
        groups: vec![SecurityGroup {
            id: "sg-iperf".into(),
            rules,
        }],
    }
}
