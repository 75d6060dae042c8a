//! Network namespaces for tests and benchmarks, so that every bridge, veth,
//! route and nftables rule they make lives in a namespace they created and
//! nothing touches the machine's own network. Meant for this crate's tests
//! and the network service's (root only).
//!
//! A [`NetNs`] is made by a short-lived thread that unshares a new network
//! namespace, sets its loopback up and bind-mounts it on a file (as
//! `ip netns add` does under `/run/netns`); dropping it unmounts and removes
//! that file, and the namespace goes once nothing else holds it.

use std::io;
use std::path::{Path, PathBuf};

use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute};

use crate::ns::{connect, enter};
use crate::NetError;

/// Unshares a new network namespace on a short-lived thread, bind-mounts
/// it on `path` (an existing file) and sets its loopback up.
pub(crate) fn new_netns_at(path: &Path) -> io::Result<()> {
    std::thread::scope(|s| {
        s.spawn(|| -> io::Result<()> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)?;
            rustix::mount::mount_bind("/proc/thread-self/ns/net", path)?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let h = connect().map_err(io_err)?;
                h.link()
                    .set(rtnetlink::LinkUnspec::new_with_index(1).up().build())
                    .execute()
                    .await
                    .map_err(io::Error::other)
            })
        })
        .join()
        .map_err(|_| io::Error::other("namespace thread panicked"))?
    })
}

/// Runs `f` on a thread inside the namespace kept at `path` (one the test
/// does not own, such as a router's): sockets it opens belong there.
pub fn run_in<T: Send>(path: &Path, f: impl FnOnce() -> T + Send) -> io::Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| -> io::Result<T> {
            enter(path).map_err(io_err)?;
            Ok(f())
        })
        .join()
        .map_err(|_| io::Error::other("thread in the namespace panicked"))?
    })
}

/// A network namespace kept by a bind mount at [`NetNs::path`].
#[derive(Debug)]
pub struct NetNs {
    path: PathBuf,
}

fn io_err(e: NetError) -> io::Error {
    io::Error::other(e.to_string())
}

impl NetNs {
    /// A new namespace kept at `dir/name`, with `lo` up.
    pub fn create(dir: &Path, name: &str) -> io::Result<NetNs> {
        let path = dir.join(name);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        let ns = NetNs { path: path.clone() };
        new_netns_at(&path)?;
        Ok(ns)
    }

    /// A new namespace kept at `dir/name`, owned by a new user namespace
    /// (as the container driver makes each instance's, ADR 16), with `lo`
    /// up. util-linux's `unshare` makes both: a multi-threaded process may
    /// not unshare a user namespace itself.
    pub fn create_owned_by_user_namespace(dir: &Path, name: &str) -> io::Result<NetNs> {
        let path = dir.join(name);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        let ns = NetNs { path: path.clone() };
        let mut child = std::process::Command::new("unshare")
            .args(["--user", "--net", "--", "sleep", "60"])
            .spawn()?;
        let ours = std::fs::read_link("/proc/self/ns/net")?;
        let theirs = PathBuf::from(format!("/proc/{}/ns/net", child.id()));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let result = loop {
            match std::fs::read_link(&theirs) {
                Ok(l) if l != ours => {
                    break rustix::mount::mount_bind(&theirs, &path).map_err(io::Error::from)
                }
                Ok(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(2))
                }
                Ok(_) => break Err(io::Error::other("unshare did not make a namespace in 5 s")),
                Err(e) => break Err(e),
            }
        };
        let _ = child.kill();
        let _ = child.wait();
        result?;
        ns.netlink(async |h| {
            h.link()
                .set(rtnetlink::LinkUnspec::new_with_index(1).up().build())
                .execute()
                .await
        })?;
        Ok(ns)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a thread inside the namespace: sockets it opens and
    /// processes it spawns belong to the namespace.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> io::Result<T> {
        run_in(&self.path, f)
    }

    /// Runs a program inside the namespace and returns its output.
    pub fn exec(&self, program: &str, args: &[&str]) -> io::Result<std::process::Output> {
        self.run(|| std::process::Command::new(program).args(args).output())?
    }

    /// Runs an rtnetlink job inside the namespace.
    fn netlink<T: Send>(
        &self,
        f: impl AsyncFnOnce(rtnetlink::Handle) -> Result<T, rtnetlink::Error> + Send,
    ) -> io::Result<T> {
        self.run(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let h = connect().map_err(io_err)?;
                f(h).await.map_err(io::Error::other)
            })
        })?
    }

    /// The names of the namespace's links, through rtnetlink.
    pub fn link_names(&self) -> io::Result<Vec<String>> {
        use futures_util::TryStreamExt;
        let links: Vec<_> = self.netlink(async |h| h.link().get().execute().try_collect().await)?;
        Ok(links
            .iter()
            .filter_map(|l| {
                l.attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n.clone()),
                    _ => None,
                })
            })
            .collect())
    }

    /// The index of a link, or `None` if there is no such link.
    fn index(&self, name: &str) -> io::Result<Option<u32>> {
        use futures_util::TryStreamExt;
        let name = name.to_string();
        let r =
            self.netlink(async |h| Ok(h.link().get().match_name(name).execute().try_next().await))?;
        match r {
            Ok(l) => Ok(l.map(|l| l.header.index)),
            Err(rtnetlink::Error::NetlinkError(m)) if m.code.map(|c| c.get()) == Some(-19) => {
                Ok(None)
            }
            Err(e) => Err(io::Error::other(e)),
        }
    }

    fn require(&self, name: &str) -> io::Result<u32> {
        self.index(name)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no link {name}")))
    }

    /// Deletes a link "by hand", behind the driver's back.
    pub fn delete_link(&self, name: &str) -> io::Result<()> {
        let i = self.require(name)?;
        self.netlink(async |h| h.link().del(i).execute().await)
    }

    /// Adds an address to a link (a spoofing instance, a test's own
    /// peer).
    pub fn add_address(&self, name: &str, address: crate::Ipv4Cidr) -> io::Result<()> {
        let i = self.require(name)?;
        self.netlink(async |h| {
            h.address()
                .add(i, std::net::IpAddr::V4(address.addr), address.prefix)
                .execute()
                .await
        })
    }

    /// Sets a link's MAC address (a spoofing instance).
    pub fn set_mac(&self, name: &str, mac: crate::Mac) -> io::Result<()> {
        let i = self.require(name)?;
        self.netlink(async |h| {
            h.link()
                .set(
                    rtnetlink::LinkUnspec::new_with_index(i)
                        .address(mac.0.to_vec())
                        .build(),
                )
                .execute()
                .await
        })
    }

    /// Makes a bridge, up (a node's trunk in tests).
    pub fn add_bridge(&self, name: &str) -> io::Result<()> {
        let name = name.to_string();
        self.netlink(async |h| {
            h.link()
                .add(rtnetlink::LinkBridge::new(&name).up().build())
                .execute()
                .await
        })
    }

    /// Joins two namespaces by a veth pair, up, each end on the given
    /// bridge of its side (the cable between two nodes' trunks).
    pub fn cable(&self, here: (&str, &str), other: &NetNs, there: (&str, &str)) -> io::Result<()> {
        let other_ns = std::fs::File::open(other.path())?;
        let (a, b) = (here.0.to_string(), there.0.to_string());
        self.netlink(async |h| {
            use std::os::fd::AsRawFd;
            let peer = rtnetlink::LinkMessageBuilder::<rtnetlink::LinkUnspec>::new()
                .name(b.clone())
                .setns_by_fd(other_ns.as_raw_fd())
                .build();
            h.link()
                .add(
                    rtnetlink::LinkVeth::new(&a, &b)
                        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
                        .build(),
                )
                .execute()
                .await
        })?;
        for (ns, (end, bridge)) in [(self, here), (other, there)] {
            let i = ns.require(end)?;
            let m = ns.require(bridge)?;
            ns.netlink(async |h| {
                h.link()
                    .set(
                        rtnetlink::LinkUnspec::new_with_index(i)
                            .controller(m)
                            .up()
                            .build(),
                    )
                    .execute()
                    .await
            })?;
        }
        Ok(())
    }

    /// Writes a sysctl of this namespace (`net/ipv4/ip_forward`, ...):
    /// `/proc/sys/net` shows the namespace of the thread that opens it.
    pub fn sysctl(&self, key: &str, value: &str) -> io::Result<()> {
        let path = Path::new("/proc/sys").join(key);
        self.run(|| std::fs::write(&path, value))?
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.path, rustix::mount::UnmountFlags::DETACH);
        let _ = std::fs::remove_file(&self.path);
    }
}
