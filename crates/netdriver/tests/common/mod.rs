//! A node in a namespace of its own, instances in namespaces of their own:
//! nothing these tests make touches the machine's network.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use nuage_netdriver::linux::{LinuxConfig, LinuxNetDriver};
use nuage_netdriver::testing::NetNs;
use nuage_netdriver::{Ipv4Cidr, Mac, NetDriver, NetworkSpec, PortSpec};

/// Fails (never skips) when what the tests drive is missing.
pub fn require_host() {
    assert!(
        rustix::process::geteuid().is_root(),
        "the network driver tests make namespaces, bridges and rules and must run as root"
    );
    assert!(
        Path::new("/bin/busybox").is_file(),
        "the network driver tests need /bin/busybox (apt-get install busybox-static)"
    );
    let nft = std::process::Command::new("nft").arg("--version").output();
    assert!(
        nft.is_ok_and(|o| o.status.success()),
        "the network driver tests need nft (apt-get install nftables)"
    );
}

pub struct Node {
    pub driver: LinuxNetDriver,
    pub host: NetNs,
    // Dropped last: the namespaces' files live in it.
    pub tmp: tempfile::TempDir,
}

impl Node {
    pub fn new() -> Node {
        Node::with_trunk(None)
    }

    pub fn with_trunk(trunk: Option<&str>) -> Node {
        require_host();
        let tmp = tempfile::tempdir().expect("tempdir");
        let host = NetNs::create(tmp.path(), "node").expect("node namespace");
        if let Some(t) = trunk {
            host.add_bridge(t).expect("trunk bridge");
        }
        let driver = LinuxNetDriver::new(LinuxConfig {
            host_netns: Some(host.path().to_path_buf()),
            trunk: trunk.map(str::to_string),
            nft: None,
            security_full_every: None,
            security_check_every: None,
            routers_dir: Some(tmp.path().join("routers")),
            external: None,
        });
        Node { driver, host, tmp }
    }

    /// A node whose routers reach `bridge` in the namespace `external`.
    pub fn with_external(external: &NetNs, bridge: &str) -> Node {
        let mut node = Node::new();
        let mut config = node.driver.config().clone();
        config.external = Some(nuage_netdriver::router::ExternalBridge {
            bridge: bridge.into(),
            netns: Some(external.path().to_path_buf()),
        });
        node.driver = LinuxNetDriver::new(config);
        node
    }

    /// A network's bridge without a gateway (routers hold gateways).
    pub async fn bridge(&self, id: &str) {
        self.driver
            .ensure_network(&NetworkSpec {
                id: id.into(),
                vlan: None,
            })
            .await
            .expect("ensure network");
    }

    pub fn instance(&self, name: &str) -> NetNs {
        NetNs::create(self.tmp.path(), name).expect("instance namespace")
    }

    pub async fn network(&self, id: &str, gateway: &str) {
        self.driver
            .ensure_network(&NetworkSpec {
                id: id.into(),
                vlan: None,
            })
            .await
            .expect("ensure network");
        self.driver
            .ensure_gateway(id, gateway.parse().expect("gateway"))
            .await
            .expect("ensure gateway");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Router namespaces the driver made under the test's directory.
        if let Ok(entries) = std::fs::read_dir(self.tmp.path().join("routers")) {
            for e in entries.flatten() {
                let _ = rustix::mount::unmount(e.path(), rustix::mount::UnmountFlags::DETACH);
            }
        }
    }
}

pub fn port(id: &str, network: &str, ns: &NetNs, address: &str, gateway: Option<&str>) -> PortSpec {
    let cidr: Ipv4Cidr = address.parse().expect("address");
    let o = cidr.addr.octets();
    PortSpec {
        id: id.into(),
        network_id: network.into(),
        netns: ns.path().to_path_buf(),
        device: "eth0".into(),
        mac: Mac([0x02, 0x4e, o[0], o[1], o[2], o[3]]),
        address: cidr,
        gateway: gateway.map(|g| g.parse().expect("gateway")),
    }
}

/// busybox ping from inside `ns`: whether `to` answered.
pub fn ping(ns: &NetNs, to: &str) -> bool {
    let out = ns
        .exec("/bin/busybox", &["ping", "-c", "1", "-W", "2", to])
        .expect("busybox ping");
    out.status.success()
}

/// A TCP server in `ns` answering every line with "echo:" and the line.
pub fn echo_server(ns: &NetNs, addr: &str) -> SocketAddr {
    let addr: SocketAddr = addr.parse().expect("socket address");
    let listener = ns
        .run(|| TcpListener::bind(addr))
        .expect("thread in namespace")
        .expect("bind");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 256];
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    let mut reply = b"echo:".to_vec();
                    reply.extend_from_slice(&buf[..n]);
                    if c.write_all(&reply).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// Connects from inside `ns`; `None` when nothing answered in time (a
/// drop), panics on a refusal (the packet got through to a closed port).
pub fn connect(ns: &NetNs, to: SocketAddr) -> Option<TcpStream> {
    connect_from(ns, None, to)
}

/// Connects from inside `ns`, from the source address `from` if given.
pub fn connect_from(ns: &NetNs, from: Option<Ipv4Addr>, to: SocketAddr) -> Option<TcpStream> {
    use rustix::net::{sockopt, AddressFamily, SocketType};
    let r = ns
        .run(|| -> std::io::Result<TcpStream> {
            let fd = rustix::net::socket(AddressFamily::INET, SocketType::STREAM, None)?;
            if let Some(src) = from {
                rustix::net::sockopt::set_ip_freebind(&fd, true)?;
                rustix::net::bind(&fd, &SocketAddr::new(src.into(), 0))?;
            }
            // Linux bounds a blocking connect by the send timeout.
            sockopt::set_socket_timeout(
                &fd,
                sockopt::Timeout::Send,
                Some(Duration::from_millis(1500)),
            )?;
            rustix::net::connect(&fd, &to)?;
            Ok(TcpStream::from(fd))
        })
        .expect("thread in namespace");
    match r {
        Ok(s) => Some(s),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::WouldBlock
                    | std::io::ErrorKind::Interrupted
            ) || e.raw_os_error() == Some(115) =>
        {
            None
        }
        Err(e) => panic!("connect to {to}: {e} (expected an answer or a drop)"),
    }
}

/// One request and its echo over `s`.
pub fn echo(s: &mut TcpStream, line: &str) -> String {
    s.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    s.write_all(line.as_bytes()).expect("write");
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).expect("echo read");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

pub async fn ensure(node: &Node, p: &PortSpec) {
    node.driver.ensure_port(p).await.expect("ensure port");
}
