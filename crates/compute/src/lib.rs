//! nuage's compute service (Glance, Nova and EC2 in the course): images,
//! instance types, key pairs, placement groups, compute nodes, instances,
//! the scheduler's placement of new instances, and the reconciler that
//! makes every node run what the store says.
//!
//! The API writes the desired state in one transaction (quota, placement
//! and the new rows together) and triggers the instance controller; the
//! controller (one [`nuage_runtime::Controller`]) asks each node's
//! [`agent::NodeAgent`] to converge and records what it observed. Nothing
//! else changes a node, so a crash at any point is repaired by the next
//! pass. See `docs/adr/0009-compute.md`.

pub mod agent;
pub mod catalog;
mod error;
mod image_data;
mod images;
mod instance_types;
mod instances;
mod keys;
mod metadata;
mod nodes;
mod reconcile;
mod repo;
mod snapshots;
pub mod types;
mod usage;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use nuage_identity::Identity;
use nuage_image::ImageStore;
use nuage_scheduler::{Scheduler, SchedulerConfig};
use nuage_store::{now_ms, Db};
use tokio::sync::Notify;

pub use agent::{AgentSpec, LocalAgent, NodeAgent};
pub use error::{ComputeError, ComputeResult, Resource};
pub use images::{ImagePatch, ImageQuery, NewImage, Upload};
pub use instances::{
    Action, HttpTokens, InstancePatch, InstanceQuery, MetadataOptions, Page, RunRequest,
    INSTANCE_FILTERS,
};
pub use keys::NewKeyPair;
pub use metadata::InstanceMetadata;
pub use nodes::NodeRegistration;
pub use snapshots::NewSnapshot;
pub use usage::Usage;

/// Largest user-data an instance takes, as EC2 (16 KiB, before base64).
pub const MAX_USER_DATA: usize = 16 * 1024;

/// Snapshots of root disks made at once on the whole service.
const SNAPSHOTS_AT_ONCE: usize = 2;

/// Snapshots accepted and not finished (made or waiting) on the whole
/// service: past it CreateImage is refused as busy rather than queueing a
/// task and a `snapshotting` image per request without end.
const SNAPSHOTS_QUEUED: usize = 32;

/// How the service is set up.
#[derive(Debug, Clone)]
pub struct ComputeConfig {
    pub region: String,
    /// The zone of nodes that name none.
    pub default_zone: String,
    pub scheduler: SchedulerConfig,
    /// How long a stop waits for the init to exit before killing it.
    pub stop_grace: Duration,
    /// How often every instance is reconciled even if nothing triggered it.
    pub resync_every: Duration,
    /// Reconciles running at once.
    pub concurrency: usize,
}

impl Default for ComputeConfig {
    fn default() -> Self {
        ComputeConfig {
            region: "nuage-1".into(),
            default_zone: "nuage-1a".into(),
            scheduler: SchedulerConfig::default(),
            stop_grace: Duration::from_secs(10),
            resync_every: Duration::from_secs(30),
            concurrency: 16,
        }
    }
}

/// The compute service; cheap to clone.
#[derive(Clone)]
pub struct Compute {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Compute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compute").finish_non_exhaustive()
    }
}

struct Inner {
    db: Db,
    identity: Identity,
    images: ImageStore,
    config: ComputeConfig,
    scheduler: Mutex<Scheduler>,
    agents: RwLock<HashMap<String, Arc<dyn NodeAgent>>>,
    controller: OnceLock<nuage_runtime::Handle<String>>,
    /// The network service, once attached: launches then give every
    /// instance a port, and specs carry its NICs.
    network: OnceLock<nuage_network::NetworkService>,
    /// Woken whenever an instance's observed state is written, for the
    /// long-polls that wait for a state.
    changed: Notify,
    /// Held (shared) by uploads between writing a blob and recording it,
    /// and (exclusive) by the image garbage collector, so it never removes
    /// a blob that is about to be referenced.
    blob_gc: tokio::sync::RwLock<()>,
    /// Bounds the snapshots made at once (each copies a whole root disk);
    /// the others wait with their image `snapshotting`.
    snapshot_slots: tokio::sync::Semaphore,
    /// Bounds the snapshots accepted and not finished.
    snapshot_queue: Arc<tokio::sync::Semaphore>,
}

impl Compute {
    /// Opens the service on `db`, with image data under `images`; seeds
    /// the built-in instance types and repairs uploads a crash interrupted.
    pub async fn open(
        db: Db,
        identity: Identity,
        images: ImageStore,
        config: ComputeConfig,
    ) -> ComputeResult<Compute> {
        let now = now_ms();
        let mut tx = db.begin().await?;
        for (name, vcpus, memory_mib, disk_gib) in catalog::builtin() {
            repo::insert_type(
                &mut *tx,
                &types::InstanceType {
                    name: name.into(),
                    vcpus,
                    memory_mib,
                    disk_gib,
                    pids_limit: catalog::default_pids_limit(vcpus),
                    io_weight: catalog::DEFAULT_IO_WEIGHT,
                    builtin: true,
                    is_public: true,
                    description: None,
                    extra_specs: Default::default(),
                },
                now,
                true,
            )
            .await?;
        }
        let reset = repo::reset_saving_images(&mut *tx, now).await?;
        let killed = repo::fail_snapshotting_images(&mut *tx, now).await?;
        tx.commit().await.map_err(nuage_store::StoreError::from)?;
        if killed > 0 {
            tracing::warn!(
                images = killed,
                "images from instances interrupted by a restart: marked killed (EC2 failed)"
            );
        }
        if reset > 0 {
            tracing::warn!(
                images = reset,
                "uploads interrupted by a restart: images back to queued"
            );
        }
        let scheduler = Scheduler::new(config.scheduler);
        let compute = Compute {
            inner: Arc::new(Inner {
                db,
                identity,
                images,
                config,
                scheduler: Mutex::new(scheduler),
                agents: RwLock::new(HashMap::new()),
                controller: OnceLock::new(),
                network: OnceLock::new(),
                changed: Notify::new(),
                blob_gc: tokio::sync::RwLock::new(()),
                snapshot_slots: tokio::sync::Semaphore::new(SNAPSHOTS_AT_ONCE),
                snapshot_queue: Arc::new(tokio::sync::Semaphore::new(SNAPSHOTS_QUEUED)),
            }),
        };
        if killed > 0 {
            // A blob an interrupted snapshot finished is referenced by nothing.
            compute.collect_images().await;
        }
        Ok(compute)
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// Gives instances networking: from now on every launch gives each
    /// instance a port (on the project's default network unless the
    /// request names one) in the launch's transaction. Set once, at start.
    pub fn attach_network(&self, network: nuage_network::NetworkService) {
        let _ = self.inner.network.set(network);
    }

    pub(crate) fn network(&self) -> Option<&nuage_network::NetworkService> {
        self.inner.network.get()
    }

    pub fn region(&self) -> &str {
        &self.inner.config.region
    }

    pub fn image_store(&self) -> &ImageStore {
        &self.inner.images
    }

    fn agent(&self, node: &str) -> Option<Arc<dyn NodeAgent>> {
        self.inner
            .agents
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(node)
            .cloned()
    }

    fn agents(&self) -> Vec<Arc<dyn NodeAgent>> {
        self.inner
            .agents
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Asks the controller to look at these instances now.
    fn trigger(&self, ids: impl IntoIterator<Item = String>) {
        if let Some(h) = self.inner.controller.get() {
            h.trigger_all(ids);
        }
    }

    /// Asks the controller to look at an instance again soon: a reader
    /// who looks at one instance gets fresh observations (OOM kills, an
    /// init that exited) on its next look instead of at the next resync.
    pub fn refresh(&self, id: &str) {
        self.trigger([id.to_string()]);
    }

    /// Reconcile statistics, for `/metrics` and tests.
    pub fn controller_stats(&self) -> Option<nuage_runtime::Stats> {
        self.inner.controller.get().map(|h| h.stats())
    }

    /// Runs the instance controller and the node heartbeats until
    /// `shutdown` turns true.
    pub async fn run(&self, shutdown: tokio::sync::watch::Receiver<bool>) {
        let this = self.clone();
        let controller = nuage_runtime::Controller::new(
            "instances",
            reconcile::InstanceReconciler {
                compute: self.clone(),
            },
        )
        .concurrency(self.inner.config.concurrency)
        .backoff(Duration::from_millis(200), Duration::from_secs(30))
        .resync(self.inner.config.resync_every, move || {
            let this = this.clone();
            async move { this.resync_keys().await }
        });
        let _ = self.inner.controller.set(controller.handle());
        let beats = {
            let this = self.clone();
            let mut shutdown = shutdown.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(10)) => {}
                        _ = shutdown.changed() => return,
                    }
                    this.heartbeat().await;
                }
            })
        };
        controller.run(shutdown).await;
        beats.abort();
    }

    fn notify_changed(&self) {
        self.inner.changed.notify_waiters();
    }
}

/// Milliseconds since the epoch.
pub(crate) fn now() -> i64 {
    now_ms()
}
