//! Node agents: what the controller talks to for each compute node.
//!
//! The server runs one [`LocalAgent`] for its own node, in process, through
//! the same [`NodeAgent`] interface that agents on other machines will
//! implement over HTTP. An agent owns its node's image cache (it turns an
//! image digest into an unpacked root filesystem) and its compute driver.

use std::sync::Arc;
use std::time::Duration;

use nuage_driver::{
    Capacity, ComputeDriver, DriverError, DriverResult, EventSink, InstanceSpec, Observed,
    SnapshotSink,
};
use nuage_image::ImageStore;

/// What the controller sends to a node: the instance spec, with the image
/// named by digest (the node resolves it to a root filesystem of its own).
#[derive(Debug, Clone)]
pub struct AgentSpec {
    pub image_sha256: String,
    /// `rootfs` is ignored: the agent sets it.
    pub spec: InstanceSpec,
}

/// One compute node, as the controller sees it.
#[async_trait::async_trait]
pub trait NodeAgent: Send + Sync + 'static {
    /// The node's id in the store.
    fn node_id(&self) -> &str;
    async fn capacity(&self) -> DriverResult<Capacity>;
    /// Where the node reports instances that changed on their own.
    fn set_event_sink(&self, sink: EventSink);
    async fn ensure_running(&self, spec: &AgentSpec) -> DriverResult<Observed>;
    /// Makes a running instance take a changed spec in place (see
    /// [`ComputeDriver::apply`]).
    async fn apply(&self, spec: &AgentSpec) -> DriverResult<Observed>;
    async fn ensure_stopped(&self, id: &str, grace: Duration) -> DriverResult<Observed>;
    async fn ensure_absent(&self, id: &str) -> DriverResult<()>;
    async fn observe(&self, id: &str) -> DriverResult<Observed>;
    async fn list(&self) -> DriverResult<Vec<String>>;
    async fn console(&self, id: &str, max_bytes: usize) -> DriverResult<Vec<u8>>;
    /// Writes the instance's root disk as a root filesystem tar (see
    /// [`ComputeDriver::snapshot`]).
    async fn snapshot(&self, spec: &AgentSpec, out: SnapshotSink) -> DriverResult<()>;
}

/// The agent of the node the server runs on.
pub struct LocalAgent {
    node_id: String,
    driver: Arc<dyn ComputeDriver>,
    images: ImageStore,
}

impl std::fmt::Debug for LocalAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalAgent")
            .field("node_id", &self.node_id)
            .field("driver", &self.driver.name())
            .finish()
    }
}

impl LocalAgent {
    pub fn new(
        node_id: impl Into<String>,
        driver: Arc<dyn ComputeDriver>,
        images: ImageStore,
    ) -> Self {
        LocalAgent {
            node_id: node_id.into(),
            driver,
            images,
        }
    }

    pub fn driver(&self) -> &Arc<dyn ComputeDriver> {
        &self.driver
    }

    /// The driver's spec: the agent's, with this node's root filesystem.
    async fn node_spec(&self, spec: &AgentSpec) -> DriverResult<InstanceSpec> {
        let mut s = spec.spec.clone();
        if self.driver.name() != "fake" {
            s.rootfs = self.rootfs(&spec.image_sha256).await?;
        }
        Ok(s)
    }

    /// The unpacked root filesystem of an image, unpacking it on first use
    /// (an image is unpacked at upload; this repairs a lost cache).
    async fn rootfs(&self, sha: &str) -> DriverResult<std::path::PathBuf> {
        let path = self.images.rootfs_path(sha);
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => return Ok(path),
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                // Failing to look is not "the cache is lost".
                return Err(DriverError::failed(
                    format!("looking for the image's root filesystem {}", path.display()),
                    e,
                ));
            }
            _ => {}
        }
        let images = self.images.clone();
        let sha = sha.to_string();
        tokio::task::spawn_blocking(move || images.unpack(&sha).map(|_| images.rootfs_path(&sha)))
            .await
            .map_err(|e| DriverError::failed("unpacking the image", e))?
            .map_err(|e| DriverError::Failed(format!("unpacking the image: {e}")))
    }
}

#[async_trait::async_trait]
impl NodeAgent for LocalAgent {
    fn node_id(&self) -> &str {
        &self.node_id
    }
    async fn capacity(&self) -> DriverResult<Capacity> {
        self.driver.capacity().await
    }
    fn set_event_sink(&self, sink: EventSink) {
        self.driver.set_event_sink(sink)
    }
    async fn ensure_running(&self, spec: &AgentSpec) -> DriverResult<Observed> {
        let s = self.node_spec(spec).await?;
        self.driver.ensure_running(&s).await
    }
    async fn apply(&self, spec: &AgentSpec) -> DriverResult<Observed> {
        let s = self.node_spec(spec).await?;
        self.driver.apply(&s).await
    }
    async fn ensure_stopped(&self, id: &str, grace: Duration) -> DriverResult<Observed> {
        self.driver.ensure_stopped(id, grace).await
    }
    async fn ensure_absent(&self, id: &str) -> DriverResult<()> {
        self.driver.ensure_absent(id).await
    }
    async fn observe(&self, id: &str) -> DriverResult<Observed> {
        self.driver.observe(id).await
    }
    async fn list(&self) -> DriverResult<Vec<String>> {
        self.driver.list().await
    }
    async fn console(&self, id: &str, max_bytes: usize) -> DriverResult<Vec<u8>> {
        self.driver.console(id, max_bytes).await
    }
    async fn snapshot(&self, spec: &AgentSpec, out: SnapshotSink) -> DriverResult<()> {
        let s = self.node_spec(spec).await?;
        self.driver.snapshot(&s, out).await
    }
}
