//! The user namespace of each instance (ADR 16): root inside is an
//! unprivileged range of host uids and gids, one range per instance.
//!
//! - Ranges are [`RANGE`] ids wide, from [`FIRST_BASE`] up, numbered by
//!   slot. An instance's slot is written (and fsynced) to `idmap` in its
//!   directory before anything runs under it, and freed only when that
//!   directory is removed; a restarting driver reads every `idmap` back, so
//!   a live range is never handed out twice.
//! - The namespaces are made by a short-lived forked child (this
//!   multi-threaded process may not unshare a user namespace itself; the
//!   kernel refuses), whose maps the driver writes; both are then kept by
//!   bind mounts (`userns` in the instance's directory, `netns/<id>`),
//!   which runc joins. The child execs nothing: running util-linux's
//!   `unshare` and `sleep` instead cost a launch ~4 ms. The network namespace is
//!   owned by the instance's user namespace, so the instance can mount its
//!   own sysfs and nothing else's.
//! - The shared image is seen through an idmapped mount (`lower`), so the
//!   image's root-owned files belong to the instance's root without chowning
//!   a copy per instance; overlayfs stacks the instance's upper directory on
//!   it (overlayfs accepts idmapped lower layers since Linux 5.19).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rustix::mount::{MoveMountFlags, OpenTreeFlags};

/// Ids per instance: the 16-bit range every distribution's tools assume.
pub(crate) const RANGE: u32 = 65_536;
/// The first host id handed out: far above the ranges `/etc/subuid` gives
/// users (100000 + 65536·n), so instance ids never meet a host user's.
pub(crate) const FIRST_BASE: u32 = 1 << 28;
/// Slots between [`FIRST_BASE`] and the top of the 32-bit id space (the
/// last id, 2³²−1, is the kernel's "invalid").
const SLOTS: u32 = ((u32::MAX - FIRST_BASE) / RANGE) - 1;

/// The host id that an instance's id 0 maps to.
pub(crate) fn base_of(slot: u32) -> u32 {
    FIRST_BASE + slot * RANGE
}

/// Which slots are taken, by the instance directories that name them.
pub(crate) struct Ranges {
    used: Mutex<BTreeSet<u32>>,
}

impl Ranges {
    /// Reads the `idmap` file of every instance directory under `instances`.
    pub fn load(instances: &Path) -> io::Result<Ranges> {
        let mut used = BTreeSet::new();
        for e in std::fs::read_dir(instances)?.flatten() {
            if let Some(slot) = read_slot(&e.path().join("idmap"))? {
                used.insert(slot);
            }
        }
        Ok(Ranges {
            used: Mutex::new(used),
        })
    }

    /// The instance's slot: the one its `idmap` file names, or the lowest
    /// free one, recorded durably in `idmap` before it is returned. The
    /// lock is held to read and reserve, not across the two fsyncs: in a
    /// burst, starts queued behind each other's fsyncs (p50 80 ms for this
    /// step of 16 starts at once). Never called twice at once for one
    /// instance (its reconciles are serialised).
    pub fn slot_of(&self, idmap: &Path) -> io::Result<u32> {
        let slot = {
            let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(slot) = read_slot(idmap)? {
                used.insert(slot);
                return Ok(slot);
            }
            let slot = (0..SLOTS)
                .find(|s| !used.contains(s))
                .ok_or_else(|| io::Error::other("every user id range is taken"))?;
            used.insert(slot);
            slot
        };
        let recorded = (|| {
            let tmp = idmap.with_extension("tmp");
            let mut f = File::create(&tmp)?;
            writeln!(f, "{slot}")?;
            f.sync_all()?;
            std::fs::rename(&tmp, idmap)?;
            if let Some(dir) = idmap.parent() {
                File::open(dir)?.sync_all()?;
            }
            Ok(())
        })();
        if let Err(e) = recorded {
            self.release(slot);
            return Err(e);
        }
        Ok(slot)
    }

    /// Frees the slot of a removed instance directory.
    pub fn release(&self, slot: u32) {
        self.used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&slot);
    }
}

/// The slot an `idmap` file names; `None` when there is no such file.
pub(crate) fn read_slot(idmap: &Path) -> io::Result<Option<u32>> {
    match std::fs::read_to_string(idmap) {
        Ok(text) => text
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|s| *s < SLOTS)
            .map(Some)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} does not name a user id range", idmap.display()),
                )
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Makes a user namespace mapping ids 0..[`RANGE`] to `base`.., and a
/// network namespace owned by it with its loopback up, and keeps both by
/// bind mounting them on `userns` and `netns` (created empty first).
pub(crate) fn create_namespaces(base: u32, userns: &Path, netns: &Path) -> io::Result<()> {
    for target in [userns, netns] {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(target)?;
    }
    let child = Holder::spawn()?;
    let result = (|| {
        let proc = PathBuf::from(format!("/proc/{}", child.pid));
        let map = format!("0 {base} {RANGE}\n");
        std::fs::write(proc.join("uid_map"), &map)?;
        std::fs::write(proc.join("gid_map"), &map)?;
        rustix::mount::mount_bind(proc.join("ns/user"), userns)?;
        rustix::mount::mount_bind(proc.join("ns/net"), netns)?;
        Ok::<(), io::Error>(())
    })();
    child.finish()?;
    result?;
    loopback_up(netns)
}

/// A forked child that has unshared a user and a network namespace and
/// holds them until [`Holder::finish`] kills it. It keeps no descriptor but
/// its end of the status pipe, so concurrent holders never hold each
/// other's pipes open.
struct Holder {
    pid: libc::pid_t,
    reaped: bool,
}

impl Holder {
    fn spawn() -> io::Result<Holder> {
        let (mut ready_r, ready_w) = io::pipe()?;
        let rw = ready_w.as_raw_fd();
        // SAFETY: fork in a multi-threaded process: the child runs only
        // async-signal-safe system calls on values prepared before the fork
        // (no allocation, no lock, no Rust runtime), and never returns.
        #[allow(unsafe_code)]
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            // SAFETY: see above; every pointer is to this frame's locals.
            #[allow(unsafe_code)]
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
                if rw > 3 {
                    libc::close_range(3, (rw - 1) as libc::c_uint, 0);
                }
                libc::close_range((rw + 1) as libc::c_uint, libc::c_uint::MAX, 0);
                let status: u8 = if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) == 0 {
                    0
                } else {
                    u8::try_from(*libc::__errno_location()).unwrap_or(u8::MAX)
                };
                libc::write(rw, (&raw const status).cast(), 1);
                loop {
                    libc::pause();
                }
            }
        }
        drop(ready_w);
        let holder = Holder { pid, reaped: false };
        let mut status = [0u8; 1];
        // The child writes before anything can block it; end of file means
        // it died first.
        match ready_r.read(&mut status)? {
            1 if status[0] == 0 => Ok(holder),
            1 => {
                let err = io::Error::from_raw_os_error(i32::from(status[0]));
                Err(io::Error::new(
                    err.kind(),
                    format!("unshare(CLONE_NEWUSER|CLONE_NEWNET): {err}"),
                ))
            }
            _ => Err(io::Error::other(
                "the namespace holder died before unsharing",
            )),
        }
    }

    /// Kills and reaps the child.
    fn finish(mut self) -> io::Result<()> {
        self.reap()
    }

    fn reap(&mut self) -> io::Result<()> {
        if std::mem::replace(&mut self.reaped, true) {
            return Ok(());
        }
        // SAFETY: signals our own unreaped child (its pid cannot be reused
        // before the wait below).
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
        }
        loop {
            let mut status = 0;
            // SAFETY: waits for our own child; writes only `status`.
            #[allow(unsafe_code)]
            let rc = unsafe { libc::waitpid(self.pid, &mut status, 0) };
            if rc >= 0 {
                return Ok(());
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.reap();
    }
}

/// Sets `lo` up in the network namespace kept at `netns`, with one
/// RTM_NEWLINK over rtnetlink, from a throwaway thread that enters the
/// namespace (namespaces are per thread; the thread is never reused).
pub(crate) fn loopback_up(netns: &Path) -> io::Result<()> {
    let ns = File::open(netns)?;
    std::thread::Builder::new()
        .name("nuage-netns".into())
        .spawn(move || -> io::Result<()> {
            nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(io::Error::from)?;
            set_link_up(LOOPBACK_IFINDEX)
        })?
        .join()
        .map_err(|_| io::Error::other("netns thread panicked"))?
}

/// The loopback device's index in every network namespace.
const LOOPBACK_IFINDEX: i32 = 1;

fn set_link_up(index: i32) -> io::Result<()> {
    use rustix::net::{AddressFamily, SocketType};
    const RTM_NEWLINK: u16 = 16;
    const NLM_F_REQUEST: u16 = 1;
    const NLM_F_ACK: u16 = 4;
    const NLMSG_ERROR: u16 = 2;
    const IFF_UP: u32 = 1;
    let sock = rustix::net::socket(AddressFamily::NETLINK, SocketType::RAW, None)?;
    // struct nlmsghdr (16 bytes) + struct ifinfomsg (16 bytes), native endian.
    let mut msg = Vec::with_capacity(32);
    msg.extend_from_slice(&32u32.to_ne_bytes());
    msg.extend_from_slice(&RTM_NEWLINK.to_ne_bytes());
    msg.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    msg.extend_from_slice(&0u32.to_ne_bytes()); // port: the kernel
    msg.extend_from_slice(&[0, 0]); // family AF_UNSPEC, padding
    msg.extend_from_slice(&0u16.to_ne_bytes()); // device type
    msg.extend_from_slice(&index.to_ne_bytes());
    msg.extend_from_slice(&IFF_UP.to_ne_bytes()); // flags
    msg.extend_from_slice(&IFF_UP.to_ne_bytes()); // change mask
    rustix::net::send(&sock, &msg, rustix::net::SendFlags::empty())?;
    let mut buf = [0u8; 256];
    let (n, _) = rustix::net::recv(&sock, &mut buf[..], rustix::net::RecvFlags::empty())?;
    let field = |at: usize, len: usize| buf.get(at..at + len).filter(|_| at + len <= n);
    let kind = field(4, 2).map(|b| u16::from_ne_bytes([b[0], b[1]]));
    let errno = field(16, 4).map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
    match (kind, errno) {
        (Some(NLMSG_ERROR), Some(0)) => Ok(()),
        (Some(NLMSG_ERROR), Some(e)) => Err(io::Error::from_raw_os_error(-e)),
        _ => Err(io::Error::other(
            "unexpected rtnetlink answer to RTM_NEWLINK",
        )),
    }
}

/// Mounts `image` at `target` idmapped through the user namespace kept at
/// `userns`: the image's id n shows as the namespace's host id base+n.
pub(crate) fn mount_idmapped(image: &Path, userns: &Path, target: &Path) -> io::Result<()> {
    let ns = File::open(userns)?;
    let tree = rustix::mount::open_tree(
        rustix::fs::CWD,
        image,
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )?;
    set_idmap(tree.as_raw_fd(), ns.as_raw_fd())?;
    rustix::mount::move_mount(
        &tree,
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )?;
    Ok(())
}

/// `mount_setattr(tree, "", AT_EMPTY_PATH, {MOUNT_ATTR_IDMAP, userns})`:
/// neither rustix nor nix wraps this system call yet.
fn set_idmap(tree: i32, userns: i32) -> io::Result<()> {
    /// `struct mount_attr` of <linux/mount.h>.
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns as u64,
    };
    let empty = c"";
    // SAFETY: every pointer passed points to a live value of the type the
    // kernel reads there (a NUL-terminated string, a `struct mount_attr` of
    // the size passed); both fds are open for the whole call; the kernel
    // writes nothing back.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree,
            empty.as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_fit_the_id_space_and_never_overlap() {
        assert_eq!(base_of(0), FIRST_BASE);
        assert_eq!(base_of(1) - base_of(0), RANGE);
        let last = u64::from(base_of(SLOTS - 1)) + u64::from(RANGE);
        assert!(last < u64::from(u32::MAX), "{last}");
    }

    #[test]
    fn slots_are_durable_and_reused_only_when_released() {
        let dir = tempfile::tempdir().expect("tempdir");
        for n in ["a", "b", "c"] {
            std::fs::create_dir(dir.path().join(n)).expect("dir");
        }
        let r = Ranges::load(dir.path()).expect("load");
        let a = r.slot_of(&dir.path().join("a/idmap")).expect("a");
        let b = r.slot_of(&dir.path().join("b/idmap")).expect("b");
        assert_eq!((a, b), (0, 1));
        assert_eq!(r.slot_of(&dir.path().join("a/idmap")).expect("a again"), 0);
        // A restart reads the taken slots back.
        let r = Ranges::load(dir.path()).expect("reload");
        assert_eq!(r.slot_of(&dir.path().join("c/idmap")).expect("c"), 2);
        std::fs::remove_dir_all(dir.path().join("a")).expect("rm a");
        r.release(a);
        std::fs::create_dir(dir.path().join("d")).expect("dir");
        assert_eq!(r.slot_of(&dir.path().join("d/idmap")).expect("d"), 0);
        // Many at once (a burst of starts): each its own slot, and a slot
        // whose record failed is free again.
        let r = std::sync::Arc::new(Ranges::load(dir.path()).expect("reload"));
        let names: Vec<String> = (0..16).map(|i| format!("burst-{i}")).collect();
        for n in &names {
            std::fs::create_dir(dir.path().join(n)).expect("dir");
        }
        let slots: BTreeSet<u32> = std::thread::scope(|s| {
            let handles: Vec<_> = names
                .iter()
                .map(|n| {
                    let (r, p) = (r.clone(), dir.path().join(n).join("idmap"));
                    s.spawn(move || r.slot_of(&p).expect("slot"))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        assert_eq!(slots, (3..19).collect(), "d, b and c hold 0, 1 and 2");
        assert_eq!(r.slot_of(&dir.path().join("d/idmap")).expect("d"), 0);
        assert!(r.slot_of(&dir.path().join("no-such-dir/idmap")).is_err());
        std::fs::create_dir(dir.path().join("e")).expect("dir");
        let e = r.slot_of(&dir.path().join("e/idmap")).expect("e");
        assert_eq!(e, 19, "the slot of the failed record is free again");
        std::fs::write(dir.path().join("d/idmap"), "junk").expect("write");
        assert!(
            Ranges::load(dir.path()).is_err(),
            "a corrupt idmap must stop the driver"
        );
    }
}
