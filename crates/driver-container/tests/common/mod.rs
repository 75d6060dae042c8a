//! Shared fixture: a busybox root filesystem, a driver on a temporary state
//! directory with a cgroup parent of its own, and cleanup of everything
//! (instances, cgroup parent) even when a test fails.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nuage_driver::{ComputeDriver, ConfigFile, InstanceSpec, Observed, Resources};
use nuage_driver_container::{ContainerConfig, ContainerDriver};

pub struct Fixture {
    pub driver: ContainerDriver,
    pub rootfs: PathBuf,
    pub parent: String,
    pub tmp: tempfile::TempDir,
}

/// Fails (never skips) when what the tests drive is missing.
pub fn require_host() {
    assert!(
        rustix::process::geteuid().is_root(),
        "the container driver tests run real containers and must run as root"
    );
    assert!(
        Path::new("/bin/busybox").is_file(),
        "the container driver tests need /bin/busybox (apt-get install busybox-static)"
    );
    let runc = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("runc"))
        .chain([PathBuf::from("/usr/sbin/runc")])
        .find(|p| p.is_file());
    assert!(
        runc.is_some(),
        "the container driver tests need runc on PATH or at /usr/sbin/runc (apt-get install runc)"
    );
}

pub fn runc_path() -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("runc"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/runc"))
}

/// A minimal image: static busybox and a link per applet.
pub fn make_rootfs(dir: &Path) {
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "mnt", "root"] {
        std::fs::create_dir_all(dir.join(d)).expect("rootfs dirs");
    }
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).expect("copy busybox");
    let list = std::process::Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.contains('/') {
            let _ = std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet));
        }
    }
}

pub fn fixture() -> Fixture {
    require_host();
    let tmp = tempfile::Builder::new()
        .prefix("nuage-dc-test-")
        .tempdir()
        .expect("tempdir");
    let rootfs = tmp.path().join("image");
    make_rootfs(&rootfs);
    let parent = format!("nuage-test-{:08x}", rand::random::<u32>());
    let driver = ContainerDriver::new(ContainerConfig {
        state_dir: tmp.path().join("state"),
        runtime: runc_path(),
        cgroup_parent: parent.clone(),
    })
    .expect("driver starts");
    Fixture {
        driver,
        rootfs,
        parent,
        tmp,
    }
}

pub fn new_id() -> String {
    format!("i-{:016x}", rand::random::<u64>())
}

pub fn resources() -> Resources {
    Resources {
        vcpus: 1,
        memory_mib: 64,
        pids_limit: 128,
        io_weight: 100,
        disk_gib: 1,
    }
}

impl Fixture {
    /// An instance running `sh -c script`.
    pub fn spec(&self, id: &str, script: &str) -> InstanceSpec {
        InstanceSpec {
            id: id.to_string(),
            hostname: format!("host-{}", &id[id.len() - 6..]),
            rootfs: self.rootfs.clone(),
            command: vec!["/bin/sh".into(), "-c".into(), script.into()],
            env: vec!["GREETING=hello".into()],
            workdir: "/".into(),
            resources: resources(),
            config_drive: vec![
                ConfigFile {
                    path: "openstack/latest/meta_data.json".into(),
                    contents: format!("{{\"uuid\": \"{id}\"}}").into_bytes(),
                },
                ConfigFile {
                    path: "openstack/latest/user_data".into(),
                    contents: b"#!/bin/sh\necho user-data-here\n".to_vec(),
                },
            ],
            nics: vec![],
            dns_domain: None,
        }
    }

    pub async fn console(&self, id: &str) -> String {
        String::from_utf8_lossy(&self.driver.console(id, 1 << 20).await.expect("console"))
            .into_owned()
    }

    /// Waits until the console contains `needle`.
    pub async fn wait_console(&self, id: &str, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let c = self.console(id).await;
            if c.contains(needle) {
                return c;
            }
            assert!(
                Instant::now() < deadline,
                "console of {id} never showed {needle:?}; it holds:\n{c}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_observed(
        &self,
        id: &str,
        what: &str,
        timeout: Duration,
        ok: impl Fn(&Observed) -> bool,
    ) -> Observed {
        let deadline = Instant::now() + timeout;
        loop {
            let o = self.driver.observe(id).await.expect("observe");
            if ok(&o) {
                return o;
            }
            assert!(Instant::now() < deadline, "{id} never became {what}: {o:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Mount points under the state directory.
    pub fn mounts_under_state(&self) -> Vec<String> {
        let state = std::fs::canonicalize(self.tmp.path().join("state")).expect("state dir");
        let run = format!("{}/run", state.display());
        mounts_under(&state)
            .into_iter()
            // The driver's tmpfs, mounted once for all instances.
            .filter(|m| *m != run)
            .collect()
    }

    /// Asserts that nothing of `id` is left on the node.
    pub fn assert_nothing_left(&self, id: &str) {
        let d = &self.driver;
        assert!(!d.instance_dir(id).exists(), "instance dir of {id} left");
        assert!(!d.run_dir(id).exists(), "run dir of {id} left");
        assert!(!d.netns_path(id).exists(), "netns file of {id} left");
        assert!(!d.runc_state_dir(id).exists(), "runc state of {id} left");
        for c in d.cgroup_dirs(id) {
            assert!(!c.exists(), "cgroup {} left", c.display());
        }
        let mounts: Vec<String> = self
            .mounts_under_state()
            .into_iter()
            .filter(|m| m.contains(id))
            .collect();
        assert!(mounts.is_empty(), "mounts of {id} left: {mounts:?}");
    }

    /// The instance's cgroup directory in the hierarchy named `name`
    /// (`pids`, `cpuacct`, …), or the unified one on cgroup v2.
    pub fn cgroup_dir(&self, id: &str, name: &str) -> PathBuf {
        let dirs = self.driver.cgroup_dirs(id);
        if self.driver.cgroup_v2() {
            return dirs.into_iter().next().expect("unified hierarchy");
        }
        dirs.into_iter()
            .find(|d| {
                d.parent()
                    .and_then(Path::parent)
                    .and_then(Path::file_name)
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.split(',').any(|c| c == name))
            })
            .unwrap_or_else(|| panic!("no {name} cgroup hierarchy"))
    }
}

impl Drop for Fixture {
    /// Removes every instance left (a failed test) and the cgroup parent.
    fn drop(&mut self) {
        let driver = self.driver.clone();
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            rt.block_on(async {
                for id in driver.list().await.unwrap_or_default() {
                    if let Err(e) = driver.ensure_absent(&id).await {
                        eprintln!("cleanup of {id} failed: {e}");
                    }
                }
            });
            for dir in driver.cgroup_dirs("x") {
                if let Some(parent) = dir.parent() {
                    let _ = std::fs::remove_dir(parent);
                }
            }
        });
        let _ = cleanup.join();
        // The drivers' tmpfs (`state/run`) and whatever a failed test left,
        // deepest first, so that the temporary directory can go.
        if let Ok(tmp) = std::fs::canonicalize(self.tmp.path()) {
            let mut mounts = mounts_under(&tmp);
            mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
            for m in mounts {
                let _ = std::process::Command::new("umount")
                    .arg("-l")
                    .arg(&m)
                    .status();
            }
        }
    }
}

/// Mount points at or below `dir` (canonical), from /proc/self/mountinfo.
fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m.starts_with(&dir))
        .collect()
}
