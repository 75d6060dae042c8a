//! Acting inside network namespaces.
//!
//! A namespace is per thread, and a netlink socket belongs for its whole
//! life to the namespace of the thread that opened it. So each operation
//! runs on a fresh OS thread that enters the node's namespace (the
//! driver's, when it is not the process's own), opens its rtnetlink socket
//! there, and for a port enters the instance's namespace next and opens a
//! second socket: afterwards one small current-thread runtime drives both
//! sockets, each still speaking to its own namespace. The thread ends with
//! the operation, so no pooled thread (tokio's blocking pool) is ever left
//! in a foreign namespace; spawning it costs some 50 µs, a small part of a
//! port's wiring.

use std::fs::File;
use std::future::Future;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use crate::{NetError, NetResult};

/// Runs `job` on a fresh thread inside the namespace at `netns` (the
/// process's own when `None`), on a runtime of its own, and waits for it
/// without blocking the caller's runtime.
pub(crate) async fn on_thread<T, F, Fut>(netns: Option<PathBuf>, job: F) -> NetResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = NetResult<T>>,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("nuage-netns".into())
        .spawn(move || {
            let result = (|| {
                if let Some(p) = &netns {
                    enter(p)?;
                }
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| NetError::failed("network driver runtime", e))?;
                rt.block_on(job())
            })();
            let _ = tx.send(result);
        })
        .map_err(|e| NetError::failed("network driver thread", e))?;
    rx.await
        .map_err(|_| NetError::Failed("network driver thread panicked".into()))?
}

/// Moves the calling thread into the network namespace kept at `path`.
/// Only for threads that end with their task (see the module's doc).
pub(crate) fn enter(path: &Path) -> NetResult<()> {
    let ns = open(path)?;
    nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| NetError::failed(format!("entering network namespace {}", path.display()), e))
}

pub(crate) fn open(path: &Path) -> NetResult<File> {
    File::open(path)
        .map_err(|e| NetError::failed(format!("opening network namespace {}", path.display()), e))
}

/// An rtnetlink socket in the calling thread's namespace, driven by the
/// current runtime.
pub(crate) fn connect() -> NetResult<rtnetlink::Handle> {
    let (conn, handle, _) =
        rtnetlink::new_connection().map_err(|e| NetError::failed("opening rtnetlink", e))?;
    tokio::spawn(conn);
    Ok(handle)
}
