//! Time to wire one port (veth pair made with its peer in the instance's
//! namespace, renamed, MAC, address, default route, links up, host end on
//! the bridge): what networking adds to an instance launch (issue 11's
//! "port wiring ≤ 10 ms").
//!
//! Everything happens in namespaces this program creates; run as root:
//!
//! ```text
//! cargo run -p nuage-netdriver --example port_wiring -- [ports, default 100]
//! ```

use std::time::{Duration, Instant};

use nuage_netdriver::linux::{LinuxConfig, LinuxNetDriver};
use nuage_netdriver::testing::NetNs;
use nuage_netdriver::{Ipv4Cidr, Mac, NetDriver, NetworkSpec, PortSpec};

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
    }
    let t = Instant::now();
    let observed = driver.observe().await?;
    let observe = t.elapsed();
    assert_eq!(observed.ports.len(), n);

    report("wire a port", &mut wire);
    report("re-ensure a wired port", &mut again);
    println!("observe {n} ports: {:.2} ms", ms(observe));
    Ok(())
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
