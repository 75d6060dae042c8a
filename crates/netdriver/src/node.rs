//! The node's own network namespace: where nuage keeps its bridges and
//! rules, apart from the machine's interfaces, routes and firewall. The
//! machine's network is reached only through what the operator configures
//! (an external network); nothing is forwarded there by default.

use std::io;
use std::path::Path;

/// `NSFS_MAGIC`: the filesystem type of a bind-mounted namespace file.
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// Whether `path` is a bind-mounted namespace (it survives the server's
/// restarts, not the machine's).
pub fn is_netns(path: &Path) -> io::Result<bool> {
    match rustix::fs::statfs(path) {
        Ok(s) => Ok(s.f_type == NSFS_MAGIC),
        Err(rustix::io::Errno::NOENT) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Makes `path` hold a network namespace with its loopback up: the one
/// already there (a restarted server finds its bridges as it left them),
/// or a new one (after a reboot, or the first time). Blocking.
pub fn ensure_node_netns(path: &Path) -> io::Result<()> {
    if is_netns(path)? {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    crate::testing::new_netns_at(path)
}
