//! nuage's network service (Neutron and EC2's VPC in the course): networks,
//! subnets and their IPAM, ports, routers, security groups and floating
//! (elastic) addresses — the desired state of every instance's network, in
//! the store.
//!
//! It owns the rows, the rules on them (who may use what, which addresses
//! are free, what overlaps) and the transactional contract with compute: a
//! launch creates its ports with [`NetworkService::create_port_in`] inside
//! its own transaction, so ports, addresses, quota and instance rows commit
//! together. The service itself never touches a node: the data plane
//! (bridges, gateways, nftables) follows these rows through the reconcilers
//! of [`agent::NetworkAgent`], which call the driver trait of
//! `nuage-netdriver` and record each row's `observed_generation`. See
//! `docs/adr/0019-network-service.md`.

pub mod agent;
pub mod cidr;
pub mod domains;
mod error;
mod external;
pub mod ipam;
mod labels;
mod lookup;
mod networks;
mod nics;
mod ports;
mod repo;
mod routers;
mod security;
pub mod tags;
pub mod types;

use std::sync::Arc;

use nuage_identity::policy::{authorize, Rule};
use nuage_identity::Identity;
use nuage_model::identity::Principal;
use nuage_store::{now_ms, Db, StoreError, Tx};

pub use error::{NetworkError, NetworkResult, Resource};
pub use external::ExternalNetworkConfig;
pub use labels::check_description;
pub use nics::PortWiring;
pub use security::MAX_RULES_PER_GROUP;

/// The revision area every network change bumps (in its transaction), for
/// controllers that watch the store (`Controller::watch_store_revision`).
pub const REVISION_AREA: &str = "network";

/// How the service is set up.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// The CIDR of every project's default subnet (projects' networks are
    /// isolated, so they all use the same one, as EC2's default VPCs do).
    pub default_cidr: String,
    /// Resolvers of the default subnet; empty means the network's own
    /// resolver at the gateway.
    pub default_dns: Vec<String>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            default_cidr: "10.0.0.0/16".into(),
            default_dns: Vec::new(),
        }
    }
}

/// The network service; cheap to clone.
#[derive(Clone)]
pub struct NetworkService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for NetworkService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkService").finish_non_exhaustive()
    }
}

struct Inner {
    db: Db,
    identity: Identity,
    config: NetworkConfig,
    /// The operator's external network, once
    /// [`NetworkService::ensure_external_network`] made it: each project's
    /// default network then gets a default router with its gateway there.
    default_external: std::sync::OnceLock<String>,
    /// Counts committed writes; see [`NetworkService::changes`].
    changed: tokio::sync::watch::Sender<u64>,
}

impl NetworkService {
    /// Opens the service on `db`; `identity` answers quota limits. The
    /// default CIDR is checked now so a bad configuration fails at start,
    /// not at a project's first launch.
    pub fn new(db: Db, identity: Identity, config: NetworkConfig) -> NetworkResult<Self> {
        let cidr: cidr::Cidr =
            config
                .default_cidr
                .parse()
                .map_err(|reason| NetworkError::InvalidCidr {
                    cidr: config.default_cidr.clone(),
                    reason,
                })?;
        if cidr.usable().is_none() {
            return Err(NetworkError::invalid(format!(
                "the default CIDR {cidr} has no usable address"
            )));
        }
        Ok(NetworkService {
            inner: Arc::new(Inner {
                db,
                identity,
                config,
                default_external: std::sync::OnceLock::new(),
                changed: tokio::sync::watch::Sender::new(0),
            }),
        })
    }

    /// A receiver that sees a new value after every committed network
    /// write of this process: the node's agent reconciles at once instead
    /// of at its next poll of the store's revision (which stays, for
    /// writes made by other processes).
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.changed.subscribe()
    }

    /// Tells [`Self::changes`]' receivers that a network write committed.
    /// The service calls it after each of its own commits; a caller of the
    /// `_in` functions (compute's launch, its termination) calls it after
    /// committing its transaction.
    pub fn notify_changed(&self) {
        self.inner.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Commits `tx` after bumping the network revision in it, then wakes
    /// this process's watchers.
    async fn commit(&self, tx: Tx) -> NetworkResult<()> {
        commit(tx).await?;
        self.notify_changed();
        Ok(())
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// A connection of the reader pool, for reads outside a transaction.
    async fn reader(
        &self,
    ) -> NetworkResult<nuage_store::sqlx::pool::PoolConnection<nuage_store::sqlx::Any>> {
        Ok(self
            .inner
            .db
            .reader()
            .acquire()
            .await
            .map_err(StoreError::from)?)
    }

    async fn begin(&self) -> NetworkResult<Tx> {
        Ok(self.inner.db.begin().await?)
    }
}

/// Commits `tx` after bumping the network revision in it.
async fn commit(mut tx: Tx) -> NetworkResult<()> {
    Db::bump_revision(&mut tx, REVISION_AREA).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// Milliseconds since the epoch.
fn now() -> i64 {
    now_ms()
}

/// Whether `caller` may read what `project` owns; refusals are logged by
/// the policy check.
fn may_read(caller: &Principal, action: &str, project: &str) -> bool {
    authorize(caller, action, Rule::ProjectRead(project)).is_ok()
}

/// The write check on a resource the caller can see: a refusal keeps the
/// policy's reason (the caller may read it but lacks the member role).
fn must_write(caller: &Principal, action: &str, project: &str) -> NetworkResult<()> {
    authorize(caller, action, Rule::ProjectWrite(project))?;
    Ok(())
}

/// A name as the API takes it: at most 255 characters, no control ones.
fn check_name(what: &str, name: &str) -> NetworkResult<()> {
    if name.chars().count() > 255 || name.chars().any(char::is_control) {
        return Err(NetworkError::invalid(format!(
            "{what} is at most 255 characters, without control characters"
        )));
    }
    Ok(())
}
