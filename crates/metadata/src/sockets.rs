//! Sockets inside a router namespace. A socket belongs for its whole life
//! to the namespace of the thread that created it, so a fresh OS thread
//! enters the namespace (setns), creates the link's sockets there and ends;
//! the sockets stay in the namespace and are driven by the process's
//! runtime like any other. No pooled thread is ever left in a foreign
//! namespace.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nuage_netdriver::services::{ServiceLink, METADATA_ADDR};
use socket2::{Domain, Protocol, Socket, Type};

/// The listening sockets of one network's link.
#[derive(Debug)]
pub(crate) struct LinkSockets {
    /// TCP 169.254.169.254:80.
    pub metadata: std::net::TcpListener,
    /// UDP gateway:53.
    pub dns_udp: std::net::UdpSocket,
    /// TCP gateway:53.
    pub dns_tcp: std::net::TcpListener,
}

const BACKLOG: i32 = 1024;

/// A socket bound to `addr` on the device `ifname` only, non-blocking.
/// IP_FREEBIND lets it bind before the router agent has put the address
/// on the link (it listens from the moment the address appears).
fn socket(ty: Type, proto: Protocol, ifname: &str, addr: SocketAddrV4) -> io::Result<Socket> {
    let s = Socket::new(Domain::IPV4, ty, Some(proto))?;
    s.set_reuse_address(true)?;
    s.bind_device(Some(ifname.as_bytes()))?;
    s.set_freebind_v4(true)?;
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::V4(addr).into())?;
    Ok(s)
}

fn open_here(ifname: &str, gateway: Ipv4Addr) -> io::Result<LinkSockets> {
    let ctx = |what: &str, e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"));
    let metadata = socket(
        Type::STREAM,
        Protocol::TCP,
        ifname,
        SocketAddrV4::new(METADATA_ADDR, 80),
    )
    .map_err(|e| ctx("metadata socket", e))?;
    metadata.listen(BACKLOG)?;
    let dns_udp = socket(
        Type::DGRAM,
        Protocol::UDP,
        ifname,
        SocketAddrV4::new(gateway, 53),
    )
    .map_err(|e| ctx("DNS UDP socket", e))?;
    let dns_tcp = socket(
        Type::STREAM,
        Protocol::TCP,
        ifname,
        SocketAddrV4::new(gateway, 53),
    )
    .map_err(|e| ctx("DNS TCP socket", e))?;
    dns_tcp.listen(BACKLOG)?;
    Ok(LinkSockets {
        metadata: metadata.into(),
        dns_udp: dns_udp.into(),
        dns_tcp: dns_tcp.into(),
    })
}

/// Opens `link`'s sockets inside the namespace kept at `netns`, on a
/// thread of its own, without blocking the caller's runtime.
pub(crate) async fn open(netns: &Path, link: &ServiceLink) -> io::Result<LinkSockets> {
    let netns: PathBuf = netns.to_path_buf();
    let (ifname, gateway) = (link.ifname.clone(), link.gateway);
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("nuage-imds-ns".into())
        .spawn(move || {
            let r = (|| {
                let f = std::fs::File::open(&netns).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("opening network namespace {}: {e}", netns.display()),
                    )
                })?;
                nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).map_err(
                    |e| {
                        io::Error::other(format!(
                            "entering network namespace {}: {e}",
                            netns.display()
                        ))
                    },
                )?;
                open_here(&ifname, gateway)
            })();
            let _ = tx.send(r);
        })?;
    rx.await
        .map_err(|_| io::Error::other("the namespace thread panicked"))?
}
