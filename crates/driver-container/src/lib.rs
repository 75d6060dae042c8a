//! The container compute driver: every instance is an OCI container run by
//! Debian's `runc`, detached (no shim, no per-instance daemon: an idle
//! instance costs the node its own processes and nothing else).
//!
//! Per instance, under the state directory, what outlives a reboot:
//!
//! ```text
//! instances/<id>/disk.img      the root disk: a sparse ext4 file of the type's size
//!                disk/         its mount: upper/, work/, the overlay's copy-on-write layer
//!                idmap         the instance's slot of host ids (ADR 16)
//!                console.log   the init's stdout and stderr (bounded, kept across restarts)
//!                oom           OOM kills of earlier incarnations (cgroups die on stop)
//! disks/<n>G.ext4              an empty root disk of n GiB, copied for each instance
//! ```
//!
//! and under `run/`, a tmpfs the driver mounts (as `/run` is for runc),
//! what lives only as long as the instance runs, remade at every start:
//!
//! ```text
//! run/instances/<id>/lower         the shared image, idmapped to the instance's ids
//!                    rootfs        the overlay mount, the container's /
//!                    userns        bind mount keeping the instance's user namespace
//!                    config.json   the OCI bundle's spec (bundle = run/instances/<id>)
//!                    config-drive/ the config drive, bind-mounted read-only at /mnt/config
//!                    hosts         bind-mounted read-only at /etc/hosts
//!                    resolv.conf   bind-mounted read-only at /etc/resolv.conf
//!                    init          "<pid> <start time>" of the running init (init.pid: runc's)
//!                    runc.log      runc's own messages of the last start (JSON)
//! run/netns/<id>                   bind mount keeping the instance's network namespace
//! run/runc/<id>                    runc's own state (`runc --root`)
//! ```
//!
//! A start creates some twenty files and directories; on a disk file system
//! each is an inode allocation, which ext4 without a journal makes costly
//! after many deletions (it skips recently deleted inodes one by one): on a
//! tmpfs they cost a launch nothing measurable (ADR 16).
//!
//! runc's cgroupfs manager creates each instance's cgroups at
//! `/<cgroup_parent>/<id>` and deletes them on `runc delete`; the driver
//! only probes which limit files the kernel has (so the spec never asks runc
//! for a write that fails) and removes what runc leaves or forgets. Observing
//! an instance reads files only, and a file it cannot read is an error,
//! never "stopped" (ADR 14); stopping signals the init through a pidfd;
//! only starting (`runc run -d`), resizing in place (`runc update`) and
//! deleting (`runc delete --force`) exec runc. Exits are watched with one pidfd per running instance registered in
//! tokio, and reported to the [`EventSink`]. At most `4 × CPUs` starts run
//! at once; the rest queue (more would only make runc processes fight over
//! the CPUs).
//!
//! Least privilege (ADR 16): each instance runs in a user namespace of its
//! own, its root being an unprivileged range of host ids ([`userns`]), under
//! Docker's default seccomp profile ([`seccomp`]) with Docker's default
//! capabilities and no new privileges. An instance's directory is
//! `root:<its root group>` 0710: its own root may reach its bundle, no
//! other host user may. Every directory above the state directory must be
//! searchable (o+x) for that; the driver adds the search bit where missing.
//! The root disk is the instance type's size ([`disk`]); a type of 0 GiB
//! (none of the built-in ones) keeps its upper directory on the node's
//! filesystem, unbounded, as Nova's `root_gb = 0` means "no disk of its own".

mod cgroups;
mod console;
mod disk;
mod mounts;
mod procfs;
mod runc;
mod seccomp;
mod snapshot;
mod spec;
mod userns;

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use nuage_driver::{
    Capacity, ComputeDriver, ConfigFile, DriverError, DriverResult, EventSink, InstanceSpec, Nic,
    NicPlugger, Observed, ObservedNic, Power, SnapshotSink,
};
use rustix::process::{PidfdFlags, Signal};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::cgroups::Cgroups;
use crate::procfs::InitRecord;
use crate::runc::Runc;

/// How long a SIGKILLed init may take to be gone before the driver reports
/// a failure (a process stuck in uninterruptible sleep).
const KILL_WAIT: Duration = Duration::from_secs(10);

/// Starts in flight per CPU. Much of a runc start waits on the kernel (an
/// RCU grace period per cgroup v1 attach) rather than burning CPU, so a
/// few per CPU keep the CPUs busy; measured on 2 cores, 200 starts went
/// 49/s at 4 per CPU and 57/s at 8 (scripts/bench-compute).
const START_SLOTS_PER_CPU: usize = 8;

/// Where and with what the driver runs containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerConfig {
    /// Everything the driver keeps on the node (see the crate docs).
    pub state_dir: PathBuf,
    /// The OCI runtime: `runc`, found on `PATH` when not absolute.
    pub runtime: PathBuf,
    /// The cgroup under which every instance's cgroup is made, in every
    /// hierarchy (`/<cgroup_parent>/<id>`).
    pub cgroup_parent: String,
}

impl ContainerConfig {
    /// The production defaults: `runc` from `PATH`, cgroup parent `nuage`.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        ContainerConfig {
            state_dir: state_dir.into(),
            runtime: PathBuf::from("runc"),
            cgroup_parent: "nuage".to_string(),
        }
    }
}

/// The container driver. Cheap to clone; clones share watchers and state.
#[derive(Clone)]
pub struct ContainerDriver {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ContainerDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerDriver")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

struct Inner {
    config: ContainerConfig,
    instances: PathBuf,
    /// `run/instances`: the per-start files of each instance, on tmpfs.
    instances_run: PathBuf,
    netns_dir: PathBuf,
    runc: Runc,
    /// Which host id ranges are taken.
    ranges: userns::Ranges,
    disks: disk::Disks,
    cgroups: Cgroups,
    nofile_hard: u64,
    /// Bounds how many instances start at once (see [`START_SLOTS_PER_CPU`]).
    start_slots: tokio::sync::Semaphore,
    sink: RwLock<Option<EventSink>>,
    plugger: RwLock<Option<Arc<dyn NicPlugger>>>,
    /// At most one exit watcher per running instance.
    watchers: Mutex<HashMap<String, Watcher>>,
    next_watcher: AtomicU64,
}

struct Watcher {
    generation: u64,
    task: tokio::task::AbortHandle,
}

/// The files of one instance.
struct InstancePaths {
    dir: PathBuf,
    /// The per-start files' directory (on the `run/` tmpfs), the bundle.
    run: PathBuf,
    disk_image: PathBuf,
    disk: PathBuf,
    upper: PathBuf,
    work: PathBuf,
    lower: PathBuf,
    rootfs: PathBuf,
    idmap: PathBuf,
    userns: PathBuf,
    config: PathBuf,
    config_drive: PathBuf,
    hosts: PathBuf,
    resolv_conf: PathBuf,
    console: PathBuf,
    init: PathBuf,
    /// Present while a snapshot holds the instance frozen.
    frozen: PathBuf,
    pid_file: PathBuf,
    /// How the last incarnation's init ended (`code N` or `signal N`).
    exit: PathBuf,
    /// The NICs plugged for the running incarnation (JSON).
    nics: PathBuf,
    oom: PathBuf,
    runc_log: PathBuf,
    netns: PathBuf,
}

impl ContainerDriver {
    /// Prepares the state directory, finds the runtime, detects the cgroup
    /// layout (v1 or v2, swap and block I/O weight support) and raises this
    /// process's open-file soft limit to its hard limit (one pidfd per
    /// running instance). Blocking; call it at startup.
    pub fn new(config: ContainerConfig) -> DriverResult<ContainerDriver> {
        let startup = |what: &str, e: &dyn std::fmt::Display| {
            DriverError::Failed(format!("container driver: {what}: {e}"))
        };
        if !valid_name(&config.cgroup_parent) {
            return Err(DriverError::Invalid(format!(
                "container driver: bad cgroup parent {:?}",
                config.cgroup_parent
            )));
        }
        let runtime = find_runtime(&config.runtime).ok_or_else(|| {
            DriverError::Invalid(format!(
                "container driver: OCI runtime {} not found",
                config.runtime.display()
            ))
        })?;
        std::fs::create_dir_all(&config.state_dir)
            .map_err(|e| startup(&format!("creating {}", config.state_dir.display()), &e))?;
        let state_dir = std::fs::canonicalize(&config.state_dir)
            .map_err(|e| startup(&format!("resolving {}", config.state_dir.display()), &e))?;
        if !mounts::overlay_safe(&state_dir) {
            return Err(DriverError::Invalid(format!(
                "container driver: state dir {} has characters overlayfs options cannot carry (, : \\)",
                state_dir.display()
            )));
        }
        let _ = std::fs::set_permissions(&state_dir, std::fs::Permissions::from_mode(0o711));
        refuse_legacy_layout(&state_dir)?;
        make_searchable(&state_dir)
            .map_err(|e| startup("opening the path to the state dir", &e))?;
        let instances = state_dir.join("instances");
        let run = state_dir.join("run");
        std::fs::create_dir_all(&run)
            .map_err(|e| startup(&format!("creating {}", run.display()), &e))?;
        mount_run(&run)
            .map_err(|e| startup(&format!("mounting a tmpfs on {}", run.display()), &e))?;
        let instances_run = run.join("instances");
        let netns_dir = run.join("netns");
        let runc_root = run.join("runc");
        for (d, mode) in [
            (&instances, 0o711),
            (&instances_run, 0o711),
            (&netns_dir, 0o700),
            (&runc_root, 0o700),
        ] {
            std::fs::create_dir_all(d)
                .map_err(|e| startup(&format!("creating {}", d.display()), &e))?;
            let _ = std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode));
        }
        // `runc run -d` exits once the init runs; the init then comes to
        // the nearest subreaper, which alone can learn its exit status.
        rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
            .map_err(|e| startup("becoming the instances' subreaper", &e))?;
        let ranges = userns::Ranges::load(&instances)
            .map_err(|e| startup("reading the instances' id ranges", &e))?;
        let tool = |name: &str| {
            find_runtime(Path::new(name)).ok_or_else(|| {
                DriverError::Invalid(format!("container driver: {name} not found on PATH"))
            })
        };
        let disks = disk::Disks::new(state_dir.join("disks"), tool("mkfs.ext4")?);
        let cgroups =
            Cgroups::detect(&config.cgroup_parent).map_err(|e| startup("detecting cgroups", &e))?;
        tracing::info!(
            cgroup_v2 = cgroups.unified,
            swap_limit = cgroups.swap_limit,
            io_weight = cgroups.io_weight,
            runtime = %runtime.display(),
            "container driver ready"
        );
        if !cgroups.io_weight {
            tracing::warn!("this kernel has no block I/O weight file (blkio.weight, blkio.bfq.weight, io.weight, io.bfq.weight): instances' io_weight is not enforced");
        }
        if !cgroups.swap_limit {
            tracing::warn!("this kernel cannot limit memory+swap (no memsw / memory.swap.max): instances' memory limit does not bound swap");
        }
        let nofile_hard = raise_nofile_limit();
        let driver = ContainerDriver {
            inner: Arc::new(Inner {
                config: ContainerConfig {
                    state_dir,
                    runtime: runtime.clone(),
                    cgroup_parent: config.cgroup_parent,
                },
                instances,
                instances_run,
                netns_dir,
                runc: Runc {
                    bin: runtime,
                    root: runc_root,
                },
                ranges,
                disks,
                cgroups,
                nofile_hard,
                start_slots: tokio::sync::Semaphore::new(
                    START_SLOTS_PER_CPU * procfs::online_cpus().unwrap_or(1).max(1) as usize,
                ),
                sink: RwLock::new(None),
                plugger: RwLock::new(None),
                watchers: Mutex::new(HashMap::new()),
                next_watcher: AtomicU64::new(1),
            }),
        };
        driver
            .inner
            .thaw_leftovers()
            .map_err(|e| startup("thawing instances a crash left frozen", &e))?;
        Ok(driver)
    }

    /// The configuration in force (state dir resolved, runtime absolute).
    pub fn config(&self) -> &ContainerConfig {
        &self.inner.config
    }

    /// The instance's directory (its bundle).
    pub fn instance_dir(&self, id: &str) -> PathBuf {
        self.inner.instances.join(id)
    }

    /// Where the instance's network namespace is bind-mounted.
    pub fn netns_path(&self, id: &str) -> PathBuf {
        self.inner.netns_dir.join(id)
    }

    /// The instance's per-start files (on the driver's tmpfs): the OCI
    /// bundle, the config drive, the namespaces' and mounts' anchors.
    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.inner.paths(id).run
    }

    /// runc's state directory for the instance.
    pub fn runc_state_dir(&self, id: &str) -> PathBuf {
        self.inner.runc.state_dir(id)
    }

    /// The instance's cgroup directory in every mounted hierarchy, whether
    /// it exists or not (for diagnostics and tests).
    pub fn cgroup_dirs(&self, id: &str) -> Vec<PathBuf> {
        self.inner.cgroups.dirs(id).collect()
    }

    /// Whether the node runs cgroup v2 only.
    pub fn cgroup_v2(&self) -> bool {
        self.inner.cgroups.unified
    }
}

#[async_trait::async_trait]
impl ComputeDriver for ContainerDriver {
    fn name(&self) -> &'static str {
        "container"
    }

    async fn capacity(&self) -> DriverResult<Capacity> {
        let state_dir = self.inner.config.state_dir.clone();
        blocking(move || {
            let fail =
                |what: &str, e: io::Error| DriverError::failed(format!("capacity: {what}"), e);
            let vfs = rustix::fs::statvfs(&state_dir).map_err(|e| fail("statvfs", e.into()))?;
            Ok(Capacity {
                vcpus: procfs::online_cpus().map_err(|e| fail("online CPUs", e))?,
                ram_mib: procfs::mem_total_mib().map_err(|e| fail("MemTotal", e))?,
                // The filesystem's size, as Nova's `local_gb`: capacity is
                // what the node has, not what happens to be free right now
                // (builds and logs beside it would make placement flap).
                disk_gib: vfs.f_blocks.saturating_mul(vfs.f_frsize) >> 30,
                arch: rustix::system::uname()
                    .machine()
                    .to_string_lossy()
                    .into_owned(),
                hypervisor: "container".to_string(),
            })
        })
        .await
    }

    fn set_event_sink(&self, sink: EventSink) {
        *self.inner.sink.write().unwrap_or_else(|e| e.into_inner()) = Some(sink);
    }

    fn set_nic_plugger(&self, plugger: Arc<dyn NicPlugger>) {
        *self
            .inner
            .plugger
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(plugger);
    }

    async fn ensure_running(&self, spec: &InstanceSpec) -> DriverResult<Observed> {
        validate(spec)?;
        // Already running: answer without queueing behind starts.
        let init = self.inner.paths(&spec.id).init;
        if let Some(r) = read_running(&spec.id, &init)? {
            self.inner.watch(&spec.id, r);
            return self.observe(&spec.id).await;
        }
        let _slot = self.inner.start_slots.acquire().await;
        let t0 = Instant::now();
        let id = spec.id.clone();
        let inner = self.inner.clone();
        let s = spec.clone();
        let prepared = blocking(move || inner.prepare(&s)).await?;
        let base = match prepared {
            Prepared::Running(observed, record) => {
                self.inner.watch(&id, record);
                return Ok(observed);
            }
            Prepared::Namespaces { base } => base,
        };
        let prepared_in = t0.elapsed();
        let p = self.inner.paths(&id);
        // The NICs are plugged, and their security groups waited for, while
        // the disk and the root filesystem are mounted: both must be done
        // before the init starts, neither needs the other.
        let inner = self.inner.clone();
        let s = spec.clone();
        let (files, plugged) =
            tokio::join!(blocking(move || inner.prepare_files(&s, base)), async {
                let began = Instant::now();
                self.inner
                    .plug(&id, &p, &spec.nics)
                    .await
                    .map(|()| began.elapsed())
            });
        let Files {
            console,
            console_len,
            stale,
        } = files?;
        let plug_took = plugged?;
        let files_in = t0.elapsed();
        if stale {
            // A dead container of this id (its init exited on its own, or a
            // crash left it): runc refuses to run over it.
            self.inner
                .delete_container(&id, "removing the dead container")
                .await?;
        }
        let plugged_in = t0.elapsed();
        if let Err(msg) = self
            .inner
            .runc
            .run_detached(
                &id,
                &p.run,
                &p.pid_file,
                &p.runc_log,
                console.try_clone().map_err(|e| fail(&id, "console", e))?,
            )
            .await
        {
            // In detached mode runc's stderr is the console: take its
            // complaint back out so the instance's console stays its own.
            let _ = console.set_len(console_len);
            return Err(fail(&id, "runc run", msg));
        }
        drop(console);
        let ran_in = t0.elapsed();
        let inner = self.inner.clone();
        let id2 = id.clone();
        let (observed, record) = blocking(move || inner.record_start(&id2)).await?;
        if let Some(r) = record {
            self.inner.watch(&id, r);
        }
        tracing::debug!(
            instance = %id,
            namespaces_us = prepared_in.as_micros() as u64,
            files_and_plug_us = (files_in - prepared_in).as_micros() as u64,
            plug_us = plug_took.as_micros() as u64,
            runc_us = (ran_in - plugged_in).as_micros() as u64,
            record_us = (t0.elapsed() - ran_in).as_micros() as u64,
            "started"
        );
        Ok(observed)
    }

    /// New cgroup limits for a running instance (`runc update`); the
    /// next start writes the whole spec anyway. The config drive is not
    /// changed in place: the instance holds the old one bind-mounted.
    async fn apply(&self, spec: &InstanceSpec) -> DriverResult<Observed> {
        validate(spec)?;
        let id = spec.id.as_str();
        let p = self.inner.paths(id);
        if read_running(id, &p.init)?.is_none() {
            return self.observe(id).await;
        }
        // NICs added or changed while it runs (hot-plug); removed ones go.
        self.inner.plug(id, &p, &spec.nics).await?;
        // A running instance has its slot of host ids (ADR 16).
        let slot = userns::read_slot(&p.idmap)
            .map_err(|e| fail(id, "reading the instance's host ids", e))?
            .ok_or_else(|| fail(id, "reading the instance's host ids", "no slot recorded"))?;
        let oci = spec::config(
            spec,
            &spec::Paths {
                nofile_hard: self.inner.nofile_hard,
                netns: &p.netns,
                userns: &p.userns,
                id_base: userns::base_of(slot),
                config_drive: &p.config_drive,
                hosts: &p.hosts,
                resolv_conf: &p.resolv_conf,
            },
            &self.inner.cgroups,
        );
        let mut resources = oci["linux"]["resources"].clone();
        if let Some(r) = resources.as_object_mut() {
            // Devices are set once, at creation.
            r.remove("devices");
        }
        let json =
            serde_json::to_vec(&resources).map_err(|e| fail(id, "encoding the resources", e))?;
        self.inner
            .runc
            .update(id, &json)
            .await
            .map_err(|m| fail(id, "runc update", m))?;
        self.observe(id).await
    }

    async fn ensure_stopped(&self, id: &str, grace: Duration) -> DriverResult<Observed> {
        validate_id(id)?;
        self.inner.unwatch(id);
        let p = self.inner.paths(id);
        if let Some(r) = read_running(id, &p.init)? {
            self.inner.kill(id, r, Some(grace)).await?;
        }
        let inner = self.inner.clone();
        let id2 = id.to_string();
        let stale = blocking(move || {
            inner
                .settle_exit(&inner.paths(&id2))
                .map_err(|e| fail(&id2, "reaping the init", e))?;
            inner.fold_if_stale(&id2)
        })
        .await?;
        if stale {
            self.inner
                .delete_container(id, "deleting the container")
                .await?;
        }
        match std::fs::remove_file(&p.init) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(fail(id, "removing the init record", e))
            }
            _ => {}
        }
        self.observe(id).await
    }

    async fn ensure_absent(&self, id: &str) -> DriverResult<()> {
        validate_id(id)?;
        self.inner.unwatch(id);
        let p = self.inner.paths(id);
        if let Some(r) = read_running(id, &p.init)? {
            self.inner.kill(id, r, None).await?;
        }
        if self.inner.runc.state_dir(id).exists() {
            if let Err(msg) = self.inner.runc.delete_force(id).await {
                // The manual cleanup below removes what runc would have.
                tracing::warn!(instance = id, error = %msg, "runc delete failed; cleaning up by hand");
            }
        }
        let inner = self.inner.clone();
        let id2 = id.to_string();
        blocking(move || {
            inner
                .settle_exit(&inner.paths(&id2))
                .map_err(|e| fail(&id2, "reaping the init", e))?;
            inner.remove_everything(&id2)
        })
        .await
    }

    async fn observe(&self, id: &str) -> DriverResult<Observed> {
        validate_id(id)?;
        let inner = self.inner.clone();
        let id2 = id.to_string();
        let (mut observed, record) = blocking(move || inner.observe_now(&id2)).await?;
        if let Some(r) = record {
            // Re-arms the exit watcher after a server restart.
            self.inner.watch(id, r);
        }
        if !observed.nics.is_empty() {
            self.inner.look_at_wiring(id, &mut observed).await?;
        }
        Ok(observed)
    }

    async fn list(&self) -> DriverResult<Vec<String>> {
        let inner = self.inner.clone();
        blocking(move || inner.list_now().map_err(|e| DriverError::failed("list", e))).await
    }

    async fn console(&self, id: &str, max_bytes: usize) -> DriverResult<Vec<u8>> {
        validate_id(id)?;
        let path = self.inner.paths(id).console;
        let id = id.to_string();
        blocking(move || {
            let _ = console::bound(&path);
            console::tail(&path, max_bytes).map_err(|e| fail(&id, "reading the console", e))
        })
        .await
    }

    /// The merged overlay root filesystem as a tar; a running instance's
    /// cgroup frozen meanwhile (see [`snapshot`]).
    async fn snapshot(&self, spec: &InstanceSpec, out: SnapshotSink) -> DriverResult<()> {
        validate(spec)?;
        let inner = self.inner.clone();
        let s = spec.clone();
        blocking(move || inner.snapshot(&s, out).map(|_| ())).await
    }
}

enum Prepared {
    Running(Observed, InitRecord),
    /// Ready for the NICs; the instance's host ids start at `base`.
    Namespaces {
        base: u32,
    },
}

/// The bundle written and the console opened, for `runc run`.
struct Files {
    console: File,
    console_len: u64,
    /// runc state or cgroups of a previous incarnation remain.
    stale: bool,
}

impl Inner {
    fn paths(&self, id: &str) -> InstancePaths {
        let dir = self.instances.join(id);
        let run = self.instances_run.join(id);
        InstancePaths {
            disk_image: dir.join("disk.img"),
            disk: dir.join("disk"),
            upper: dir.join("disk/upper"),
            work: dir.join("disk/work"),
            idmap: dir.join("idmap"),
            console: dir.join("console.log"),
            oom: dir.join("oom"),
            exit: dir.join("exit"),
            lower: run.join("lower"),
            rootfs: run.join("rootfs"),
            userns: run.join("userns"),
            config: run.join("config.json"),
            config_drive: run.join("config-drive"),
            hosts: run.join("hosts"),
            resolv_conf: run.join("resolv.conf"),
            init: run.join("init"),
            frozen: run.join("frozen"),
            pid_file: run.join("init.pid"),
            nics: run.join("nics.json"),
            runc_log: run.join("runc.log"),
            netns: self.netns_dir.join(id),
            dir,
            run,
        }
    }

    fn sink(&self) -> Option<EventSink> {
        self.sink.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// What a start needs first: directories, host ids and the user and
    /// network namespaces, so that the NICs can be plugged (and their
    /// security waited for) while [`Inner::prepare_files`] mounts the disk
    /// and the root filesystem.
    fn prepare(&self, spec: &InstanceSpec) -> DriverResult<Prepared> {
        let id = spec.id.as_str();
        let p = self.paths(id);
        if let Some(r) = read_running(id, &p.init)? {
            return Ok(Prepared::Running(self.observe_now(id)?.0, r));
        }
        // A new incarnation: the previous init is reaped, and how it ended
        // no longer describes the instance.
        self.settle_exit(&p)
            .map_err(|e| fail(id, "reaping the previous init", e))?;
        match std::fs::remove_file(&p.exit) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(fail(id, "removing the previous exit status", e))
            }
            _ => {}
        }
        let base = self.namespaces(spec)?;
        Ok(Prepared::Namespaces { base })
    }

    /// The instance's directories, slot of host ids and user and network
    /// namespaces, made where missing; returns the first of its host ids.
    fn namespaces(&self, spec: &InstanceSpec) -> DriverResult<u32> {
        let id = spec.id.as_str();
        let p = self.paths(id);
        if !spec.rootfs.is_dir() {
            return Err(fail(
                id,
                "image root filesystem",
                format!("{} is not a directory", spec.rootfs.display()),
            ));
        }
        let t0 = Instant::now();
        for d in [&p.dir, &p.disk, &p.run, &p.lower, &p.rootfs] {
            std::fs::create_dir_all(d)
                .map_err(|e| fail(id, format!("creating {}", d.display()), e))?;
        }
        let slot = self
            .ranges
            .slot_of(&p.idmap)
            .map_err(|e| fail(id, "allocating host ids", e))?;
        let base = userns::base_of(slot);
        let root = Some(rustix::fs::Uid::from_raw(0));
        let group = Some(rustix::fs::Gid::from_raw(base));
        for d in [&p.dir, &p.run] {
            rustix::fs::chown(d, root, group)
                .and_then(|()| rustix::fs::chmod(d, rustix::fs::Mode::from_raw_mode(0o710)))
                .map_err(|e| fail(id, "restricting the instance directory", e))?;
        }
        let ids_at = t0.elapsed();
        if !(mounts::is_nsfs(&p.userns) && mounts::is_nsfs(&p.netns)) {
            // After a reboot (or from an older driver): both anew, together,
            // since the network namespace belongs to the user namespace.
            for m in [&p.rootfs, &p.lower, &p.userns, &p.netns] {
                mounts::unmount_all(m).map_err(|e| fail(id, "unmounting stale namespaces", e))?;
            }
            userns::create_namespaces(base, &p.userns, &p.netns)
                .map_err(|e| fail(id, "creating the user and network namespaces", e))?;
        }
        tracing::debug!(
            instance = %id,
            ids_us = ids_at.as_micros() as u64,
            namespaces_us = (t0.elapsed() - ids_at).as_micros() as u64,
            "namespaces ready"
        );
        Ok(base)
    }

    /// The rest of what `runc run` needs, in dependency order: the root
    /// disk, the overlay root filesystem, config drive, hosts, spec; then
    /// the console opened for the init. Runs while the NICs are plugged.
    fn prepare_files(&self, spec: &InstanceSpec, base: u32) -> DriverResult<Files> {
        let id = spec.id.as_str();
        let p = self.paths(id);
        let t0 = Instant::now();
        let (disk_at, upper_at) = self.mount_disk(spec, base)?;
        let rootfs_at = t0.elapsed();
        write_config_drive(&p.config_drive, &spec.config_drive)
            .map_err(|e| fail(id, "writing the config drive", e))?;
        let (hosts, resolv_conf) = spec::name_files(spec);
        write_atomic(&p.hosts, hosts.as_bytes()).map_err(|e| fail(id, "writing hosts", e))?;
        write_atomic(&p.resolv_conf, resolv_conf.as_bytes())
            .map_err(|e| fail(id, "writing resolv.conf", e))?;
        let oci = spec::config(
            spec,
            &spec::Paths {
                nofile_hard: self.nofile_hard,
                netns: &p.netns,
                userns: &p.userns,
                id_base: base,
                config_drive: &p.config_drive,
                hosts: &p.hosts,
                resolv_conf: &p.resolv_conf,
            },
            &self.cgroups,
        );
        let json = serde_json::to_vec(&oci).map_err(|e| fail(id, "encoding config.json", e))?;
        write_atomic(&p.config, &json).map_err(|e| fail(id, "writing config.json", e))?;
        let stale = self.fold_if_stale(id)?;
        std::fs::write(&p.runc_log, b"").map_err(|e| fail(id, "emptying runc.log", e))?;
        let _ = console::bound(&p.console);
        let console =
            console::open_append(&p.console).map_err(|e| fail(id, "opening the console", e))?;
        let console_len = console
            .metadata()
            .map_err(|e| fail(id, "console", e))?
            .len();
        tracing::debug!(
            instance = %id,
            disk_us = disk_at.as_micros() as u64,
            upper_us = (upper_at - disk_at).as_micros() as u64,
            rootfs_us = (rootfs_at - upper_at).as_micros() as u64,
            files_us = (t0.elapsed() - rootfs_at).as_micros() as u64,
            "prepared"
        );
        Ok(Files {
            console,
            console_len,
            stale,
        })
    }

    /// The root disk mounted and the overlay root filesystem over the
    /// image, where missing (a start, or a snapshot of a stopped instance
    /// whose mounts a node reboot took); returns when the disk and the
    /// upper directory were ready, for the start's timings.
    fn mount_disk(&self, spec: &InstanceSpec, base: u32) -> DriverResult<(Duration, Duration)> {
        let id = spec.id.as_str();
        let p = self.paths(id);
        let t0 = Instant::now();
        if spec.resources.disk_gib > 0 {
            self.disks
                .ensure_mounted(&p.disk_image, spec.resources.disk_gib, &p.disk)
                .map_err(|e| fail(id, "mounting the root disk", e))?;
        }
        let disk_at = t0.elapsed();
        let upper_missing = !p.upper.exists();
        for d in [&p.upper, &p.work] {
            std::fs::create_dir_all(d)
                .map_err(|e| fail(id, format!("creating {}", d.display()), e))?;
        }
        if upper_missing {
            // The overlay's root directory is the upper one: the instance's root owns it.
            rustix::fs::chown(
                &p.upper,
                Some(rustix::fs::Uid::from_raw(base)),
                Some(rustix::fs::Gid::from_raw(base)),
            )
            .map_err(|e| fail(id, "giving / to the instance's root", e))?;
        }
        let upper_at = t0.elapsed();
        self.mount_rootfs(spec, &p, upper_missing)?;
        Ok((disk_at, upper_at))
    }

    /// Writes the instance's root filesystem as a tar (see [`snapshot`]),
    /// its cgroup frozen for the copy if it runs. Blocking.
    fn snapshot(&self, spec: &InstanceSpec, out: SnapshotSink) -> DriverResult<u64> {
        let id = spec.id.as_str();
        let p = self.paths(id);
        if !p.dir.is_dir() {
            return Err(fail(
                id,
                "snapshot",
                "the instance has no disk on this node",
            ));
        }
        let base = if mounts::is_overlay(&p.rootfs) {
            userns::read_slot(&p.idmap)
                .map_err(|e| fail(id, "reading the instance's host ids", e))?
                .map(userns::base_of)
                .ok_or_else(|| fail(id, "reading the instance's host ids", "no slot recorded"))?
        } else {
            let base = self.namespaces(spec)?;
            self.mount_disk(spec, base)?;
            base
        };
        let freezer = match read_running(id, &p.init)? {
            Some(_) => snapshot::Freezer::find(self.cgroups.dirs(id)),
            None => None,
        };
        if let Some(f) = &freezer {
            // The marker first: a crash while frozen is thawed at start.
            write_atomic(&p.frozen, b"").map_err(|e| fail(id, "marking the freeze", e))?;
            if let Err(e) = f.freeze() {
                let _ = f.thaw();
                let _ = std::fs::remove_file(&p.frozen);
                return Err(fail(id, "freezing the instance", e));
            }
        }
        let t0 = Instant::now();
        let written = snapshot::write_tar(&p.rootfs, base, out);
        let held = t0.elapsed();
        if let Some(f) = &freezer {
            f.thaw().map_err(|e| fail(id, "thawing the instance", e))?;
            std::fs::remove_file(&p.frozen).map_err(|e| fail(id, "unmarking the freeze", e))?;
        }
        let members = written.map_err(|e| fail(id, "writing the snapshot", e))?;
        tracing::info!(
            instance = %id,
            members,
            frozen_ms = freezer.as_ref().map(|_| held.as_millis() as u64),
            "root disk snapshot written"
        );
        Ok(members)
    }

    /// Thaws every instance a crash left frozen mid-snapshot.
    fn thaw_leftovers(&self) -> io::Result<()> {
        for entry in std::fs::read_dir(&self.instances_run)? {
            let entry = entry?;
            let Some(id) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let marker = entry.path().join("frozen");
            if !marker.exists() {
                continue;
            }
            if let Some(f) = snapshot::Freezer::find(self.cgroups.dirs(&id)) {
                f.thaw()?;
            }
            std::fs::remove_file(&marker)?;
            tracing::warn!(instance = %id, "thawed: a snapshot was interrupted while it was frozen");
        }
        Ok(())
    }

    /// The instance's overlay root filesystem, over the image idmapped
    /// through the instance's user namespace.
    fn mount_rootfs(
        &self,
        spec: &InstanceSpec,
        p: &InstancePaths,
        upper_missing: bool,
    ) -> DriverResult<()> {
        let id = spec.id.as_str();
        if mounts::is_overlay(&p.rootfs) && upper_missing {
            // Half-deleted leftover: an overlay over a removed upper dir.
            mounts::unmount_all(&p.rootfs)
                .map_err(|e| fail(id, "unmounting a stale overlay", e))?;
        }
        if !mounts::is_overlay(&p.rootfs) {
            mounts::unmount_all(&p.lower).map_err(|e| fail(id, "unmounting a stale image", e))?;
            userns::mount_idmapped(&spec.rootfs, &p.userns, &p.lower)
                .map_err(|e| fail(id, "mounting the image idmapped", e))?;
            mounts::mount_overlay(&p.lower, &p.upper, &p.work, &p.rootfs)
                .map_err(|e| fail(id, "mounting the overlay root filesystem", e))?;
        }
        Ok(())
    }

    /// After `runc run`: records the init's pid and start time.
    fn record_start(&self, id: &str) -> DriverResult<(Observed, Option<InitRecord>)> {
        let p = self.paths(id);
        let text = std::fs::read_to_string(&p.pid_file)
            .map_err(|e| fail(id, "reading runc's pid file", e))?;
        let pid: u32 = text
            .trim()
            .parse()
            .map_err(|e| fail(id, "reading runc's pid file", e))?;
        // Start time 0 (already gone) reads as not running; failing to
        // look is an error (the next pass records the start again).
        let start = match procfs::stat(pid) {
            Ok(s) => s.start,
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(fail(id, "reading the init's /proc entry", e)),
        };
        let record = InitRecord { pid, start };
        write_atomic(&p.init, record.encode().as_bytes())
            .map_err(|e| fail(id, "recording the init", e))?;
        let (observed, _) = self.observe_now(id)?;
        Ok((observed, (start != 0).then_some(record)))
    }

    /// Wires the NICs through the node's plugger and records them for
    /// observe; unplugs those of the last record the spec no longer has.
    async fn plug(&self, id: &str, p: &InstancePaths, nics: &[Nic]) -> DriverResult<()> {
        let before = read_nics(&p.nics).map_err(|e| fail(id, "reading the plugged NICs", e))?;
        if nics.is_empty() && before.is_empty() {
            return Ok(());
        }
        let plugger = self.plugger(id, "plug its NICs")?;
        let gone: Vec<Nic> = before
            .into_iter()
            .filter(|b| !nics.iter().any(|n| n.port_id == b.port_id))
            .collect();
        if !gone.is_empty() {
            plugger.unplug(id, &gone).await?;
        }
        plugger.plug(id, &p.netns, nics).await?;
        let json = serde_json::to_vec(nics).map_err(|e| fail(id, "encoding the NICs", e))?;
        write_atomic(&p.nics, &json).map_err(|e| fail(id, "recording the plugged NICs", e))
    }

    /// The node's plugger; without one an instance with NICs is refused
    /// (never run unplugged).
    fn plugger(&self, id: &str, doing: &str) -> DriverResult<Arc<dyn NicPlugger>> {
        self.plugger
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| {
                DriverError::Invalid(format!(
                    "instance {id}: this node has no network data plane to {doing}"
                ))
            })
    }

    /// Asks the plugger whether the running instance's recorded NICs are
    /// still wired: a veth or bridge deleted by hand shows here, and the
    /// reconciler plugs again.
    async fn look_at_wiring(&self, id: &str, observed: &mut Observed) -> DriverResult<()> {
        let p = self.paths(id);
        let nics = read_nics(&p.nics).map_err(|e| fail(id, "observing: the plugged NICs", e))?;
        let plugger = self.plugger(id, "look at its NICs")?;
        let wired = plugger.wired(&nics).await?;
        for o in &mut observed.nics {
            o.wired = nics
                .iter()
                .zip(&wired)
                .find(|(n, _)| n.port_id == o.port_id)
                .map(|(_, w)| *w);
        }
        Ok(())
    }

    /// Reaps the recorded init if it exited (it would stay a zombie
    /// otherwise) and writes how it ended to the `exit` file.
    fn settle_exit(&self, p: &InstancePaths) -> io::Result<()> {
        let Some(record) = InitRecord::read(&p.init)? else {
            return Ok(());
        };
        if let Some(exit) = procfs::reap(record)? {
            write_atomic(&p.exit, procfs::encode_exit(exit).as_bytes())?;
        }
        Ok(())
    }

    /// Whether a previous incarnation left runc state or cgroups; if so its
    /// OOM kills are added to the instance's total before they go.
    fn fold_if_stale(&self, id: &str) -> DriverResult<bool> {
        let stale = self
            .runc
            .state_dir(id)
            .try_exists()
            .map_err(|e| fail(id, "looking for runc state", e))?
            || self
                .cgroups
                .any_exists(id)
                .map_err(|e| fail(id, "looking for cgroups", e))?;
        if stale {
            self.fold_oom(id)
                .map_err(|e| fail(id, "saving the OOM kill count", e))?;
        }
        Ok(stale)
    }

    /// `runc delete --force`, then whatever cgroups runc left or never knew.
    async fn delete_container(&self, id: &str, step: &str) -> DriverResult<()> {
        if self.runc.state_dir(id).exists() {
            self.runc
                .delete_force(id)
                .await
                .map_err(|m| fail(id, step, m))?;
        }
        if self
            .cgroups
            .any_exists(id)
            .map_err(|e| fail(id, "looking for cgroups", e))?
        {
            let cg = self.cgroups.clone();
            let id2 = id.to_string();
            blocking(move || {
                cg.remove(&id2)
                    .map_err(|e| fail(&id2, "removing cgroups", e))
            })
            .await?;
        }
        Ok(())
    }

    /// What the node has of the instance, from files alone. Every answer
    /// is a positive observation: absent only when its directory is not
    /// there, stopped only when no init is recorded or the recorded one is
    /// gone from `/proc`. A file that could not be read (EMFILE under a
    /// descriptor flood, EIO...) is an error, which the reconciler retries
    /// with back-off without recording anything (ADR 0014).
    fn observe_now(&self, id: &str) -> DriverResult<(Observed, Option<InitRecord>)> {
        let p = self.paths(id);
        match std::fs::symlink_metadata(&p.dir) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Observed::absent(), None)),
            Err(e) => return Err(fail(id, "observing: looking for the instance directory", e)),
        }
        let record =
            InitRecord::read(&p.init).map_err(|e| fail(id, "observing: the init record", e))?;
        let running = match record {
            Some(r)
                if r.alive()
                    .map_err(|e| fail(id, "observing: the init's /proc entry", e))? =>
            {
                Some(r)
            }
            _ => None,
        };
        let exit = match running {
            Some(_) => None,
            None => {
                self.settle_exit(&p)
                    .map_err(|e| fail(id, "observing: reaping the init", e))?;
                procfs::read_exit(&p.exit)
                    .map_err(|e| fail(id, "observing: the init's exit status", e))?
            }
        };
        let _ = console::bound(&p.console);
        let oom_kills = self
            .oom_total(id, &p, record)
            .map_err(|e| fail(id, "observing: the OOM kill count", e))?;
        let netns = p
            .netns
            .try_exists()
            .map_err(|e| fail(id, "observing: the network namespace", e))?;
        let observed = Observed {
            power: match running {
                Some(r) => Power::Running { pid: r.pid },
                None => Power::Stopped,
            },
            oom_kills,
            netns: netns.then(|| p.netns.clone()),
            exit,
            nics: match running {
                Some(_) => read_nics(&p.nics)
                    .map_err(|e| fail(id, "observing: the plugged NICs", e))?
                    .into_iter()
                    .map(|n| ObservedNic {
                        port_id: n.port_id,
                        host_ifname: n.host_ifname,
                        wired: None,
                    })
                    .collect(),
                None => Vec::new(),
            },
        };
        Ok((observed, running))
    }

    /// OOM kills of earlier incarnations (the `oom` file: `<total> <start
    /// time of the last incarnation folded in>`) plus the live cgroup's
    /// counter unless that incarnation was already folded in.
    fn oom_total(
        &self,
        id: &str,
        p: &InstancePaths,
        record: Option<InitRecord>,
    ) -> io::Result<u64> {
        let (base, folded) = read_oom(&p.oom)?;
        let key = record.map(|r| r.start).unwrap_or(0);
        Ok(match self.cgroups.oom_kills(id)? {
            Some(n) if folded != Some(key) => base + n,
            _ => base,
        })
    }

    fn fold_oom(&self, id: &str) -> io::Result<()> {
        let Some(n) = self.cgroups.oom_kills(id)? else {
            return Ok(());
        };
        let p = self.paths(id);
        let key = InitRecord::read(&p.init)?.map(|r| r.start).unwrap_or(0);
        let (base, folded) = read_oom(&p.oom)?;
        if folded == Some(key) {
            return Ok(());
        }
        write_atomic(&p.oom, format!("{} {key}\n", base + n).as_bytes())
    }

    /// Signals the init (SIGTERM then, after `grace`, SIGKILL; SIGKILL at
    /// once without grace) through a pidfd, and waits for it to exit. The
    /// init is pid 1 of the instance's pid namespace: when it dies the
    /// kernel kills everything else in the instance.
    async fn kill(
        &self,
        id: &str,
        record: InitRecord,
        grace: Option<Duration>,
    ) -> DriverResult<()> {
        let Some(fd) = open_pidfd(record).map_err(|e| fail(id, "opening the init's pidfd", e))?
        else {
            return Ok(());
        };
        let fd = async_pidfd(fd).map_err(|e| fail(id, "watching the init", e))?;
        if let Some(grace) = grace {
            let _ = rustix::process::pidfd_send_signal(fd.get_ref(), Signal::TERM);
            if tokio::time::timeout(grace, fd.readable()).await.is_ok() {
                return Ok(());
            }
        }
        let _ = rustix::process::pidfd_send_signal(fd.get_ref(), Signal::KILL);
        match tokio::time::timeout(KILL_WAIT, fd.readable()).await {
            Ok(_) => Ok(()),
            Err(_) => Err(fail(
                id,
                "killing the init",
                format!("pid {} still runs {KILL_WAIT:?} after SIGKILL", record.pid),
            )),
        }
    }

    /// Watches the running init's exit and reports it to the event sink;
    /// does nothing if the instance is already watched. A pidfd that cannot
    /// be opened or registered (EMFILE) is not an exit: nothing is reported
    /// and no watcher is kept, so the next observe (the periodic resync's)
    /// tries again.
    fn watch(self: &Arc<Self>, id: &str, record: InitRecord) {
        let mut watchers = self.watchers.lock().unwrap_or_else(|e| e.into_inner());
        if watchers.contains_key(id) {
            return;
        }
        let generation = self.next_watcher.fetch_add(1, Ordering::Relaxed);
        let fd = match open_pidfd(record).and_then(|fd| fd.map(async_pidfd).transpose()) {
            Ok(fd) => fd,
            Err(e) => {
                tracing::warn!(instance = id, error = %e, "cannot watch the init's exit; will retry");
                return;
            }
        };
        let weak: Weak<Inner> = Arc::downgrade(self);
        let id2 = id.to_string();
        let task = tokio::spawn(async move {
            // No pidfd: the init is already gone; report it at once.
            if let Some(fd) = fd {
                let _ = fd.readable().await;
            }
            let Some(inner) = weak.upgrade() else {
                return;
            };
            {
                let mut w = inner.watchers.lock().unwrap_or_else(|e| e.into_inner());
                if w.get(&id2).is_some_and(|w| w.generation == generation) {
                    w.remove(&id2);
                }
            }
            if let Some(sink) = inner.sink() {
                sink(&id2);
            }
        });
        watchers.insert(
            id.to_string(),
            Watcher {
                generation,
                task: task.abort_handle(),
            },
        );
    }

    /// Stops watching (the driver is about to stop the instance itself).
    fn unwatch(&self, id: &str) {
        if let Some(w) = self
            .watchers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)
        {
            w.task.abort();
        }
    }

    /// The blocking part of `ensure_absent`, after the init is dead and
    /// runc was asked to delete: each step tolerates the others' absence.
    fn remove_everything(&self, id: &str) -> DriverResult<()> {
        let p = self.paths(id);
        self.cgroups
            .remove(id)
            .map_err(|e| fail(id, "removing cgroups", e))?;
        remove_dir_all(&self.runc.state_dir(id)).map_err(|e| fail(id, "removing runc state", e))?;
        mounts::unmount_all(&p.rootfs)
            .map_err(|e| fail(id, "unmounting the root filesystem", e))?;
        mounts::unmount_all(&p.lower).map_err(|e| fail(id, "unmounting the image", e))?;
        mounts::unmount_all(&p.disk).map_err(|e| fail(id, "unmounting the root disk", e))?;
        mounts::unmount_all(&p.userns).map_err(|e| fail(id, "unmounting the user namespace", e))?;
        mounts::unmount_all(&p.netns)
            .map_err(|e| fail(id, "unmounting the network namespace", e))?;
        let slot = userns::read_slot(&p.idmap).unwrap_or(None);
        if mounts::is_overlay(&p.rootfs) || disk::is_mount_point(&p.disk).unwrap_or(true) {
            // Never recurse into a mounted root filesystem or disk.
            return Err(fail(id, "unmounting the root filesystem", "still mounted"));
        }
        if mounts::is_overlay(&p.rootfs) || disk::is_mount_point(&p.lower).unwrap_or(true) {
            return Err(fail(id, "unmounting the image", "still mounted"));
        }
        remove_dir_all(&p.run).map_err(|e| fail(id, format!("removing {}", p.run.display()), e))?;
        remove_dir_all(&p.dir).map_err(|e| fail(id, format!("removing {}", p.dir.display()), e))?;
        if let Some(slot) = slot {
            self.ranges.release(slot);
        }
        match std::fs::remove_file(&p.netns) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(fail(id, "removing the network namespace file", e))
            }
            _ => {}
        }
        Ok(())
    }

    /// Every id with anything on the node: instance directories, runc
    /// state, cgroups, network namespace files, mounts under the state dir.
    fn list_now(&self) -> io::Result<Vec<String>> {
        let mut ids = BTreeSet::new();
        for dir in [
            &self.instances,
            &self.instances_run,
            &self.runc.root,
            &self.netns_dir,
        ] {
            for e in std::fs::read_dir(dir)?.flatten() {
                if let Some(n) = e.file_name().to_str() {
                    ids.insert(n.to_string());
                }
            }
        }
        ids.extend(self.cgroups.list());
        for m in mounts::mountinfo()? {
            for base in [&self.instances, &self.instances_run, &self.netns_dir] {
                if let Ok(rest) = m.mount_point.strip_prefix(base) {
                    if let Some(Component::Normal(n)) = rest.components().next() {
                        ids.insert(n.to_string_lossy().into_owned());
                    }
                }
            }
        }
        Ok(ids.into_iter().filter(|i| valid_name(i)).collect())
    }
}

/// Drivers before the `run/` tmpfs kept runc's state in `<state>/runc` and
/// the namespace anchors in `<state>/netns`. Instances started there would
/// look stopped to this driver while they still run, so it refuses to
/// start beside them rather than misread them (ADR 14); empty leftovers
/// are removed.
fn refuse_legacy_layout(state_dir: &Path) -> DriverResult<()> {
    for name in ["runc", "netns"] {
        let dir = state_dir.join(name);
        let mut entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(DriverError::Failed(format!(
                    "container driver: looking for an older layout in {}: {e}",
                    dir.display()
                )))
            }
        };
        if let Some(first) = entries.next() {
            let first = first.map(|e| e.file_name().to_string_lossy().into_owned());
            return Err(DriverError::Invalid(format!(
                "container driver: {} holds instances ({}) started by an older nuage that \
                 kept runc state outside {}/run; stop them with that version, or delete \
                 them with `runc --root {} delete --force ID`, then remove the directory",
                dir.display(),
                first.unwrap_or_else(|e| e.to_string()),
                state_dir.display(),
                state_dir.join("runc").display(),
            )));
        }
        std::fs::remove_dir(&dir).map_err(|e| {
            DriverError::Failed(format!(
                "container driver: removing the empty {}: {e}",
                dir.display()
            ))
        })?;
    }
    Ok(())
}

/// A pidfd for the init if it still runs (checked after opening, so that a
/// reused pid is never signalled or watched); `Ok(None)` only when it is
/// gone, an error when the kernel would not say (EMFILE...).
fn open_pidfd(record: InitRecord) -> io::Result<Option<OwnedFd>> {
    let Some(pid) = i32::try_from(record.pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return Ok(None);
    };
    let fd = match rustix::process::pidfd_open(pid, PidfdFlags::NONBLOCK) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::SRCH) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(record.alive()?.then_some(fd))
}

/// Registers a pidfd with tokio's reactor; it turns readable when the
/// process exits.
// tokio 1.54 deprecates the safe constructors (tokio#8587: a registered fd
// that its owner closes or replaces confuses the reactor) in favour of
// `unsafe fn register`, which this crate may not call. Here the `OwnedFd`
// moves into the `AsyncFd`, nothing else can close or replace it, and it is
// deregistered before it is closed on drop: the sound case.
#[allow(deprecated)]
fn async_pidfd(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    AsyncFd::with_interest(fd, Interest::READABLE)
}

/// The NICs recorded as plugged; none when there is no record.
fn read_nics(path: &Path) -> io::Result<Vec<Nic>> {
    match std::fs::read(path) {
        Ok(b) => {
            serde_json::from_slice(&b).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The `oom` file: `(0, None)` when there is none; an error when it could
/// not be read, so that a failed read never lowers the recorded count.
fn read_oom(path: &Path) -> io::Result<(u64, Option<u64>)> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, None)),
        Err(e) => return Err(e),
    };
    let mut it = text.split_ascii_whitespace();
    let base = it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok((base, it.next().and_then(|v| v.parse().ok())))
}

/// The instance's init if it still runs; an error if that could not be
/// told (see [`InitRecord::read_running`]).
fn read_running(id: &str, init: &Path) -> DriverResult<Option<InitRecord>> {
    InitRecord::read_running(init).map_err(|e| fail(id, "reading the init record", e))
}

/// Replaces the config drive as a whole: written beside it, then swapped in
/// with one `renameat2(RENAME_EXCHANGE)`, so the instance never starts on a
/// half-written drive.
fn write_config_drive(dir: &Path, files: &[ConfigFile]) -> io::Result<()> {
    let new = dir.with_extension("new");
    remove_dir_all(&new)?;
    std::fs::create_dir(&new)?;
    for f in files {
        let path = new.join(&f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, &f.contents)?;
    }
    if dir.exists() {
        rustix::fs::renameat_with(
            rustix::fs::CWD,
            &new,
            rustix::fs::CWD,
            dir,
            rustix::fs::RenameFlags::EXCHANGE,
        )?;
        remove_dir_all(&new)
    } else {
        std::fs::rename(&new, dir)
    }
}

/// Write to a temporary file and rename over: readers see old or new.
/// Mounts the driver's tmpfs on `run` unless one is there already (a
/// restarted server finds it, with its running instances' files, as it
/// left it; a rebooted node finds it empty, as its instances are stopped).
fn mount_run(run: &Path) -> io::Result<()> {
    // `f_type`'s width differs between architectures.
    #[allow(clippy::useless_conversion)]
    let fs_type = i64::from(rustix::fs::statfs(run)?.f_type);
    if fs_type == libc::TMPFS_MAGIC {
        return Ok(());
    }
    rustix::mount::mount(
        "nuage-run",
        run,
        "tmpfs",
        rustix::mount::MountFlags::NOSUID
            | rustix::mount::MountFlags::NODEV
            | rustix::mount::MountFlags::NOEXEC,
        c"mode=0711",
    )?;
    Ok(())
}

fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}

fn remove_dir_all(path: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn fail(id: &str, step: impl std::fmt::Display, err: impl std::fmt::Display) -> DriverError {
    DriverError::Failed(format!("instance {id}: {step}: {err}"))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> DriverResult<T> + Send + 'static,
) -> DriverResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DriverError::Failed(format!("container driver task: {e}")))?
}

/// Instance ids and the cgroup parent name files, cgroups and runc
/// containers: ASCII letters, digits, `_`, `.`, `-`, not starting with a dot
/// or dash.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with(['.', '-'])
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn validate_id(id: &str) -> DriverResult<()> {
    if valid_name(id) {
        Ok(())
    } else {
        Err(DriverError::Invalid(format!("bad instance id {id:?}")))
    }
}

fn validate(spec: &InstanceSpec) -> DriverResult<()> {
    validate_id(&spec.id)?;
    let invalid = |what: String| {
        Err(DriverError::Invalid(format!(
            "instance {}: {what}",
            spec.id
        )))
    };
    let h = &spec.hostname;
    if h.is_empty()
        || h.len() > 64
        || !h
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
    {
        return invalid(format!("bad hostname {h:?}"));
    }
    if !spec.rootfs.is_absolute() || !mounts::overlay_safe(&spec.rootfs) {
        return invalid(format!(
            "image root filesystem {} must be an absolute path without , : \\",
            spec.rootfs.display()
        ));
    }
    if spec.command.is_empty() || spec.command[0].is_empty() {
        return invalid("empty command".to_string());
    }
    if !spec.workdir.is_empty() && !spec.workdir.starts_with('/') {
        return invalid(format!("workdir {:?} is not absolute", spec.workdir));
    }
    if spec.resources.disk_gib > 1 << 20 {
        return invalid(format!(
            "root disk of {} GiB is larger than 1 PiB",
            spec.resources.disk_gib
        ));
    }
    if spec.resources.memory_mib < 6 {
        return invalid(format!(
            "memory {} MiB is below the 6 MiB a container needs",
            spec.resources.memory_mib
        ));
    }
    for f in &spec.config_drive {
        let p = Path::new(&f.path);
        if f.path.is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
            return invalid(format!(
                "config drive path {:?} must be relative, without ..",
                f.path
            ));
        }
    }
    Ok(())
}

/// Adds the search bit for others (never read or write) to `dir` and every
/// directory above it that lacks it: runc sets up an instance's root
/// filesystem as the instance's root, an unprivileged host id, which must
/// reach the bundle.
fn make_searchable(dir: &Path) -> io::Result<()> {
    for d in dir.ancestors() {
        let mode = std::fs::metadata(d)?.permissions().mode();
        if mode & 0o001 == 0 {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode & 0o7777 | 0o001))?;
            tracing::info!(dir = %d.display(), "made searchable (o+x) so instances' roots reach their bundles");
        }
    }
    Ok(())
}

/// Resolves a bare runtime name on `PATH`, once, at startup.
fn find_runtime(runtime: &Path) -> Option<PathBuf> {
    let is_exec = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if runtime.components().count() > 1 || runtime.is_absolute() {
        return is_exec(runtime).then(|| runtime.to_path_buf());
    }
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(runtime))
        .find(|p| is_exec(p))
}

/// One pidfd per running instance: 1,000 instances outgrow the usual soft
/// limit of 1,024 open files. The hard limit is the administrator's word;
/// returns it (unlimited reads as the kernel's usual `nr_open`, 1048576).
fn raise_nofile_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let lim = getrlimit(Resource::Nofile);
    let hard = lim.maximum.unwrap_or(1 << 20);
    if lim.current < lim.maximum {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: lim.maximum,
                maximum: lim.maximum,
            },
        );
    }
    hard
}
