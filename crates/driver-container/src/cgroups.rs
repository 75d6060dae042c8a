//! What the driver knows of the node's cgroups. runc's cgroupfs manager
//! creates, limits and deletes each instance's cgroups; the driver only
//! detects what the kernel offers (so the OCI spec asks for nothing runc
//! would fail to write), reads the OOM-kill counter, and removes cgroups
//! runc left behind or lost track of.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use crate::mounts;

#[derive(Debug, Clone)]
pub(crate) struct Cgroups {
    /// The node runs the unified (v2 only) hierarchy.
    pub unified: bool,
    /// Every cgroup hierarchy mounted (each v1 controller hierarchy, named
    /// ones like `name=systemd`, and the v2 one, also in hybrid mode): where
    /// an instance may have left a cgroup directory.
    pub hierarchies: Vec<PathBuf>,
    /// The hierarchy holding the memory controller.
    pub memory: Option<PathBuf>,
    /// memory+swap can be limited (v1 `memory.memsw.limit_in_bytes`, v2
    /// `memory.swap.max`); runc fails on the write when it cannot.
    pub swap_limit: bool,
    /// Some block I/O weight file exists (v1 `blkio.weight` or
    /// `blkio.bfq.weight`, v2 `io.bfq.weight` or `io.weight`); runc writes
    /// whichever exists and fails when none does.
    pub io_weight: bool,
    /// `cgroup_parent`: instances live at `/<parent>/<id>` in each hierarchy.
    pub parent: String,
}

impl Cgroups {
    /// Looks at the mounted hierarchies and probes, in the parent cgroup
    /// (created as runc would), which limit files the kernel provides.
    pub fn detect(parent: &str) -> io::Result<Cgroups> {
        let unified = mounts::fs_type(Path::new("/sys/fs/cgroup"))? == mounts::CGROUP2_SUPER_MAGIC;
        let mut hierarchies = Vec::new();
        let mut memory = None;
        let mut blkio = None;
        for m in mounts::mountinfo()? {
            let v1 = m.fs_type == "cgroup";
            if !v1 && m.fs_type != "cgroup2" {
                continue;
            }
            if hierarchies.contains(&m.mount_point) {
                continue;
            }
            let has = |c: &str| m.super_options.split(',').any(|o| o == c);
            if v1 && has("memory") && memory.is_none() {
                memory = Some(m.mount_point.clone());
            }
            if v1 && has("blkio") && blkio.is_none() {
                blkio = Some(m.mount_point.clone());
            }
            hierarchies.push(m.mount_point);
        }
        if unified {
            let root = PathBuf::from("/sys/fs/cgroup");
            // Controllers reach the parent only if the root delegates them;
            // runc does the same when it creates the path.
            let available =
                std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
            let enable: Vec<String> = ["cpu", "io", "memory", "pids"]
                .iter()
                .filter(|c| available.split_whitespace().any(|a| a == **c))
                .map(|c| format!("+{c}"))
                .collect();
            let _ = std::fs::write(root.join("cgroup.subtree_control"), enable.join(" "));
            let p = root.join(parent);
            std::fs::create_dir_all(&p)?;
            let _ = std::fs::write(p.join("cgroup.subtree_control"), enable.join(" "));
            return Ok(Cgroups {
                unified,
                swap_limit: p.join("memory.swap.max").exists(),
                io_weight: p.join("io.bfq.weight").exists() || p.join("io.weight").exists(),
                memory: Some(root),
                hierarchies,
                parent: parent.to_string(),
            });
        }
        let swap_limit = match &memory {
            Some(m) => {
                let p = m.join(parent);
                std::fs::create_dir_all(&p)?;
                p.join("memory.memsw.limit_in_bytes").exists()
            }
            None => false,
        };
        let io_weight = match &blkio {
            Some(b) => {
                let p = b.join(parent);
                std::fs::create_dir_all(&p)?;
                p.join("blkio.weight").exists() || p.join("blkio.bfq.weight").exists()
            }
            None => false,
        };
        Ok(Cgroups {
            unified,
            hierarchies,
            memory,
            swap_limit,
            io_weight,
            parent: parent.to_string(),
        })
    }

    /// runc's `cgroupsPath` for an instance.
    pub fn path_of(&self, id: &str) -> String {
        format!("/{}/{}", self.parent, id)
    }

    /// The instance's directory in every hierarchy.
    pub fn dirs(&self, id: &str) -> impl Iterator<Item = PathBuf> + '_ {
        let rel = format!("{}/{}", self.parent, id);
        self.hierarchies.iter().map(move |h| h.join(&rel))
    }

    pub fn any_exists(&self, id: &str) -> io::Result<bool> {
        for d in self.dirs(id) {
            if d.try_exists()? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Processes OOM-killed in the instance's memory cgroup; `None` when it
    /// has none (the counter dies with the cgroup); an error when the
    /// counter could not be read, so a failed read never lowers a count.
    pub fn oom_kills(&self, id: &str) -> io::Result<Option<u64>> {
        let Some(memory) = self.memory.as_ref() else {
            return Ok(None);
        };
        let dir = memory.join(&self.parent).join(id);
        let file = if self.unified {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        let text = match std::fs::read_to_string(dir.join(file)) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(Some(
            text.lines()
                .find_map(|l| l.strip_prefix("oom_kill "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
        ))
    }

    /// Ids with a cgroup under the parent in any hierarchy.
    pub fn list(&self) -> Vec<String> {
        let mut ids = Vec::new();
        for h in &self.hierarchies {
            let Ok(rd) = std::fs::read_dir(h.join(&self.parent)) else {
                continue;
            };
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    if let Some(n) = e.file_name().to_str() {
                        ids.push(n.to_string());
                    }
                }
            }
        }
        ids
    }

    /// Kills whatever still runs in the instance's cgroups and removes them
    /// in every hierarchy: the fallback for when runc's state is lost or
    /// `runc delete` left something. Blocking (waits for processes to die).
    pub fn remove(&self, id: &str) -> io::Result<()> {
        for dir in self.dirs(id) {
            if dir.exists() {
                remove_tree(&dir)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
            }
        }
        Ok(())
    }
}

/// Removes a cgroup directory and any child cgroups, deepest first.
fn remove_tree(dir: &Path) -> io::Result<()> {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path())?;
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        kill_all(dir);
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Thaws the cgroup (a frozen task never dies) and SIGKILLs its processes.
fn kill_all(dir: &Path) {
    if dir.join("freezer.state").exists() {
        let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
    }
    if dir.join("cgroup.freeze").exists() {
        let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
    }
    if dir.join("cgroup.kill").exists() && std::fs::write(dir.join("cgroup.kill"), "1").is_ok() {
        return;
    }
    if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            if let Some(pid) = Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, Signal::KILL);
            }
        }
    }
}
