//! Time to wire one port (veth pair made with its peer in the instance's
//! namespace, renamed, MAC, address, default route, links up, host end on
//! the bridge): what networking adds to an instance launch (issue 11's
//! "port wiring ≤ 10 ms"); then, on those ports, the time to apply a
//! ruleset of 1,000 security-group rules (10 groups of 100) whole, to
//! change one rule of it (issue 11's "≤ 100 ms"), and to replace a
//! group's members.
//!
//! Everything happens in namespaces this program creates; run as root:
//!
//! ```text
//! cargo run -p nuage-netdriver --example port_wiring -- [ports, default 100]
//! ```

use std::time::{Duration, Instant};

use nuage_netdriver::linux::{LinuxConfig, LinuxNetDriver};
use nuage_netdriver::testing::NetNs;
use nuage_netdriver::{
    port_ifname, Direction, Ipv4Cidr, Mac, Member, NetDriver, NetworkSpec, PortRange, PortSpec,
    Protocol, Remote, SecurityGroup, SecurityPlan, SgPort, SgRule,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100);
    if n == 0 || n > 250 {
        return Err("ports: 1..=250 (one /24)".into());
    }
    let tmp = tempfile::tempdir()?;
    let host = NetNs::create(tmp.path(), "node")?;
    let driver = LinuxNetDriver::new(LinuxConfig {
        host_netns: Some(host.path().to_path_buf()),
        ..LinuxConfig::default()
    });
    driver
        .ensure_network(&NetworkSpec {
            id: "net-bench".into(),
            vlan: None,
        })
        .await?;
    driver
        .ensure_gateway("net-bench", "10.0.0.1/24".parse()?)
        .await?;
    let instances: Vec<NetNs> = (0..n)
        .map(|i| NetNs::create(tmp.path(), &format!("i{i}")))
        .collect::<Result<_, _>>()?;

    let mut wire = Vec::with_capacity(n);
    let mut specs = Vec::with_capacity(n);
    let mut again = Vec::with_capacity(n);
    for (i, ns) in instances.iter().enumerate() {
        let host_part = u8::try_from(i + 2)?;
        let spec = PortSpec {
            id: format!("port-{i}"),
            network_id: "net-bench".into(),
            netns: ns.path().to_path_buf(),
            device: "eth0".into(),
            mac: Mac([0x02, 0x4e, 10, 0, 0, host_part]),
            address: Ipv4Cidr::new([10, 0, 0, host_part].into(), 24)?,
            gateway: Some([10, 0, 0, 1].into()),
        };
        let t = Instant::now();
        driver.ensure_port(&spec).await?;
        wire.push(t.elapsed());
        // An idempotent re-check, as a reconciler's resync pays it.
        let t = Instant::now();
        driver.ensure_port(&spec).await?;
        again.push(t.elapsed());
        specs.push(spec);
    }
    let t = Instant::now();
    let observed = driver.observe().await?;
    let observe = t.elapsed();
    assert_eq!(observed.ports.len(), n);

    report("wire a port", &mut wire);
    report("re-ensure a wired port", &mut again);
    println!("observe {n} ports: {:.2} ms", ms(observe));

    let mut plan = plan(&specs);
    let rules: usize = plan.groups.iter().map(|g| g.rules.len()).sum();
    let mut whole = Vec::new();
    for _ in 0..5 {
        // A driver that knows nothing replaces the whole table.
        let fresh = LinuxNetDriver::new(driver.config().clone());
        let t = Instant::now();
        fresh.apply_security(&plan).await?;
        whole.push(t.elapsed());
    }
    report(
        &format!("apply {rules} rules on {n} ports whole"),
        &mut whole,
    );
    driver.apply_security(&plan).await?;
    let mut change = Vec::new();
    for i in 0..10u16 {
        // One rule of one group changes: what an API call does.
        plan.groups[3].rules[0].protocol = Protocol::Tcp(PortRange::single(40000 + i));
        let t = Instant::now();
        driver.apply_security(&plan).await?;
        change.push(t.elapsed());
    }
    report(
        &format!("change one rule of {rules} on {n} ports"),
        &mut change,
    );
    let members: Vec<Member> = specs
        .iter()
        .map(|s| Member {
            network_id: s.network_id.clone(),
            ip: s.address.addr,
        })
        .collect();
    let mut update = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        driver.set_group_members("sg-0", &members).await?;
        update.push(t.elapsed());
    }
    report(&format!("replace the {n} members of a group"), &mut update);
    Ok(())
}

/// 10 groups of 100 rules (TCP ports, UDP ranges, ICMP, CIDRs and remote
/// groups mixed); port i is in groups i % 10 and (i + 1) % 10.
fn plan(specs: &[PortSpec]) -> SecurityPlan {
    let groups = (0..10)
        .map(|g| SecurityGroup {
            id: format!("sg-{g}"),
            rules: (0..100u16)
                .map(|r| SgRule {
                    direction: if r % 4 == 3 {
                        Direction::Egress
                    } else {
                        Direction::Ingress
                    },
                    protocol: match r % 3 {
                        0 => Protocol::Tcp(PortRange::single(1000 + r)),
                        1 => Protocol::Udp(PortRange {
                            from: 2000 + r,
                            to: 2010 + r,
                        }),
                        _ => Protocol::Icmp {
                            icmp_type: Some(8),
                            code: None,
                        },
                    },
                    remote: match r % 2 {
                        0 => Remote::Cidr(Ipv4Cidr {
                            addr: [10, 1, (r % 250) as u8, 0].into(),
                            prefix: 24,
                        }),
                        _ => Remote::Group(format!("sg-{}", (g + 1) % 10)),
                    },
                })
                .collect(),
        })
        .collect();
    let ports = specs
        .iter()
        .enumerate()
        .map(|(i, s)| SgPort {
            id: s.id.clone(),
            network_id: s.network_id.clone(),
            host_ifname: port_ifname(&s.id),
            mac: s.mac,
            ip: s.address.addr,
            groups: vec![format!("sg-{}", i % 10), format!("sg-{}", (i + 1) % 10)],
        })
        .collect();
    SecurityPlan { ports, groups }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn report(what: &str, samples: &mut [Duration]) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{what}: n={} p50={:.2} ms p90={:.2} ms p99={:.2} ms max={:.2} ms",
        samples.len(),
        ms(at(0.5)),
        ms(at(0.9)),
        ms(at(0.99)),
        ms(at(1.0)),
    );
}
