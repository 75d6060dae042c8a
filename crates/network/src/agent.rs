//! The node's network agent: reconcilers on the shared runtime that make a
//! node's data plane follow the service's rows, through a
//! [`nuage_netdriver::NetDriver`].
//!
//! One controller, three kinds of key ([`AgentKey`]):
//! - `Network(id)`: a network holding an instance port has its bridge (and
//!   VLAN uplink) and, on the bridge, each subnet's gateway address, so an
//!   instance's default gateway answers. Instances' own NICs are wired by
//!   the compute driver through `nuage_netdriver::plug::NetPlugger`, which
//!   knows their namespaces; this agent never makes a port.
//! - `Security`: the whole security plan (every group its instance ports
//!   need, with rules and members) applied in one driver call, which sends
//!   nftables only the difference.
//! - `Orphans`: what the driver observes that no row owns is removed:
//!   instance ports without a row, bridges of networks without instance
//!   ports, addresses on bridges that are no subnet's gateway; a security
//!   table found missing has the plan applied again at once. It observes
//!   first and reads the store second; when that finds something to
//!   remove, it looks again under the plugger's exclusive gate and removes
//!   only what that look finds, so it never removes what a launch committed
//!   and a plug is wiring, and plugs are not held while a clean node is
//!   looked at. It runs at most once per [`ORPHANS_AT_MOST_EVERY`].
//!
//! Every key is listed by the periodic resync and again whenever the
//! store's `network` revision moves. Each applied row's
//! `observed_generation` is recorded (without bumping the revision);
//! driver and store errors are retried with back-off and never recorded as
//! state (ADR 14). One node today: every instance port is this node's.
//!
//! ```text
//! let driver: Arc<dyn NetDriver> = Arc::new(LinuxNetDriver::new(LinuxConfig::default()));
//! let plugger = Arc::new(NetPlugger::new(driver.clone())); // the container driver's NicPlugger
//! let agent = NetworkAgent::new(db.clone(), driver, plugger.gate(), AgentConfig::default());
//! tokio::spawn({ let a = agent.clone(); async move { a.run(shutdown_rx).await } });
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use nuage_netdriver::plug::{PlugGate, SecurityInForce};
use nuage_netdriver::services::RouterDomain;
use nuage_netdriver::{
    Ipv4Cidr, Mac, NetDriver, NetError, NetworkSpec, PortRange, Remote, RouterSpec, SecurityPlan,
    SgPort, SgRule,
};
use nuage_runtime::{Action, Controller, Handle, Reconciler, Stats};
use nuage_store::{Db, StoreError};

use crate::repo::{self, Observable};
use crate::types::{Direction, Protocol, SecurityGroupRule};
use crate::REVISION_AREA;

/// What the agent works on; see the module's documentation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AgentKey {
    Network(String),
    Security,
    /// Every routing domain (router namespaces), in one pass so a network
    /// moves between domains consistently ([`crate::domains`]).
    Routers,
    Orphans,
}

/// Why a pass failed; retried with back-off, never recorded.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{doing}: {source}")]
    Driver {
        doing: String,
        #[source]
        source: NetError,
    },
    /// A row the node cannot apply as stored (an address that does not
    /// parse); retried in case the row is corrected.
    #[error("{0}")]
    Invalid(String),
}

fn driver(doing: impl Into<String>) -> impl FnOnce(NetError) -> AgentError {
    let doing = doing.into();
    move |source| AgentError::Driver { doing, source }
}

/// How the agent runs.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Every key is reconciled at least this often, which repairs what was
    /// changed by hand on the node.
    pub resync_every: Duration,
    /// How often the store's `network` revision is polled.
    pub revision_poll: Duration,
    /// Reconciles (of different keys) running at once.
    pub concurrency: usize,
    /// Back-off of failed passes: first delay and most.
    pub backoff: (Duration, Duration),
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            resync_every: Duration::from_secs(30),
            revision_poll: Duration::from_millis(200),
            concurrency: 8,
            backoff: (Duration::from_millis(200), Duration::from_secs(30)),
        }
    }
}

/// The network agent of this node; cheap to clone.
#[derive(Clone)]
pub struct NetworkAgent {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    driver: Arc<dyn NetDriver>,
    gate: PlugGate,
    config: AgentConfig,
    handle: OnceLock<Handle<AgentKey>>,
    /// This process's network writes ([`NetworkAgent::wake_on`]).
    wake: OnceLock<tokio::sync::watch::Receiver<u64>>,
    /// The ports of the security plan in force, at the generations
    /// applied ([`NetworkAgent::security_in_force`]).
    applied: tokio::sync::watch::Sender<Arc<HashMap<String, i64>>>,
    /// Security groups as last read, by id ([`NetworkAgent::groups`]).
    groups: std::sync::Mutex<HashMap<String, crate::types::SecurityGroup>>,
    routers: RouterState,
    /// The generations this agent has recorded as observed, so a pass
    /// writes only rows that moved ([`NetworkAgent::observed`]).
    recorded: std::sync::Mutex<HashMap<(Observable, String), i64>>,
    /// When the last orphan pass began ([`ORPHANS_AT_MOST_EVERY`]).
    last_orphans: std::sync::Mutex<Option<std::time::Instant>>,
}

/// The orphan pass (a whole observation of the node: every link, address,
/// routing domain and the security table) runs at most this often, however
/// many changes wake the agent: a launch every 100 ms does not pay for
/// one each. Leftovers of a termination go within this much longer; the
/// first pass after a start runs at once.
pub const ORPHANS_AT_MOST_EVERY: Duration = Duration::from_secs(1);

/// Entries kept in the record of observed generations before it is
/// forgotten (which costs only one write of each row again).
const RECORDED_MAX: usize = 1 << 16;

/// The routing domains: what was last ensured (to skip an unchanged
/// domain between resyncs) and what the instance services are told.
struct RouterState {
    applied: tokio::sync::Mutex<BTreeMap<String, (RouterSpec, std::time::Instant)>>,
    published: tokio::sync::watch::Sender<Vec<RouterDomain>>,
}

impl std::fmt::Debug for NetworkAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkAgent")
            .field("driver", &self.inner.driver.name())
            .finish_non_exhaustive()
    }
}

impl NetworkAgent {
    /// An agent over `driver`; `gate` is the node's plugger's
    /// (`NetPlugger::gate`), so removals never race a plug.
    pub fn new(db: Db, driver: Arc<dyn NetDriver>, gate: PlugGate, config: AgentConfig) -> Self {
        NetworkAgent {
            inner: Arc::new(Inner {
                db,
                driver,
                gate,
                config,
                handle: OnceLock::new(),
                routers: RouterState {
                    applied: Default::default(),
                    published: tokio::sync::watch::channel(Vec::new()).0,
                },
                wake: OnceLock::new(),
                applied: tokio::sync::watch::Sender::new(Arc::default()),
                groups: std::sync::Mutex::default(),
                recorded: std::sync::Mutex::default(),
                last_orphans: std::sync::Mutex::default(),
            }),
        }
    }

    /// The controller, for callers that run it themselves; [`Self::run`]
    /// is the usual way. Its handle is kept for [`Self::resync`] and
    /// [`Self::stats`].
    pub fn controller(&self) -> Controller<AgentReconciler> {
        let c = &self.inner.config;
        let this = self.clone();
        let controller = Controller::new(
            "network-agent",
            AgentReconciler {
                agent: self.clone(),
            },
        )
        .concurrency(c.concurrency)
        .backoff(c.backoff.0, c.backoff.1)
        .resync(c.resync_every, move || {
            let this = this.clone();
            async move { this.keys().await }
        })
        .watch_store_revision(self.inner.db.clone(), REVISION_AREA, c.revision_poll);
        let _ = self.inner.handle.set(controller.handle());
        controller
    }

    /// Runs the agent until `shutdown` turns true.
    pub async fn run(&self, shutdown: tokio::sync::watch::Receiver<bool>) {
        let controller = self.controller();
        let waker = self.spawn_waker(controller.handle());
        controller.run(shutdown).await;
        if let Some(w) = waker {
            w.abort();
        }
    }

    /// Wakes the agent on every committed network write of this process
    /// (`NetworkService::changes`), so a change is reconciled at once; the
    /// store's revision, polled, still brings other processes' writes. Set
    /// before [`Self::run`]; once.
    pub fn wake_on(&self, changes: tokio::sync::watch::Receiver<u64>) {
        let _ = self.inner.wake.set(changes);
    }

    /// A full pass (listing every key) after each change `wake_on` sees;
    /// the listing reads the revision first, so the poll does not repeat
    /// it. Not also a trigger of `Security` before the listing: the
    /// listing's trigger would then find it running and earn it a second,
    /// empty pass (a whole read of the plan) on every change.
    fn spawn_waker(&self, handle: Handle<AgentKey>) -> Option<tokio::task::JoinHandle<()>> {
        let mut changes = self.inner.wake.get()?.clone();
        changes.mark_unchanged();
        Some(tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                handle.resync();
            }
        }))
    }

    /// What the node's `NetPlugger` waits on before an instance's init
    /// starts: a security plan in force that names the instance's ports at
    /// their current generations (ADR 24).
    pub fn security_in_force(&self) -> Arc<dyn SecurityInForce> {
        Arc::new(InForce {
            agent: self.clone(),
        })
    }

    /// Every security group with its rules, reading again only the groups
    /// whose generation moved since the last pass (every rule change bumps
    /// its group, ADR 19): one rule changed reads that group's rules, not
    /// the node's thousand. A group is stored with the generation read
    /// before its rules, so a change racing the read is read again next
    /// time, never missed.
    async fn groups(
        &self,
        c: &mut nuage_store::sqlx::AnyConnection,
    ) -> Result<Vec<crate::types::SecurityGroup>, StoreError> {
        let now = repo::sg_generations(c).await?;
        let stale: Vec<&str> = {
            let cache = self.inner.groups.lock().unwrap_or_else(|e| e.into_inner());
            now.iter()
                .filter(|(id, g)| cache.get(id).is_none_or(|c| c.generation != *g))
                .map(|(id, _)| id.as_str())
                .collect()
        };
        // Many stale (the first pass): one read of all beats one per group.
        let fresh = if stale.len() > 8 {
            repo::all_sgs_with_rules(c).await?
        } else {
            let mut fresh = Vec::with_capacity(stale.len());
            for id in stale {
                fresh.extend(repo::get_sg(c, id).await?);
            }
            fresh
        };
        let mut cache = self.inner.groups.lock().unwrap_or_else(|e| e.into_inner());
        for g in fresh {
            cache.insert(g.id.clone(), g);
        }
        let live: BTreeSet<&str> = now.iter().map(|(id, _)| id.as_str()).collect();
        cache.retain(|id, _| live.contains(id.as_str()));
        Ok(now
            .iter()
            .filter_map(|(id, _)| cache.get(id).cloned())
            .collect())
    }

    /// Publishes the ports of a plan just put in force, at the
    /// generations it was built from.
    fn publish_applied(&self, observed: &[(Observable, String, i64)]) {
        let ports: HashMap<String, i64> = observed
            .iter()
            .filter(|(t, _, _)| *t == Observable::Port)
            .map(|(_, id, g)| (id.clone(), *g))
            .collect();
        self.inner.applied.send_replace(Arc::new(ports));
    }

    /// Returns once the plan in force holds every port of `ports` at the
    /// generation it has now, asking for a security pass if it does not.
    async fn wait_in_force(&self, ports: &[String]) -> Result<(), NetError> {
        let failed = |e: StoreError| NetError::Failed(format!("reading ports: {e}"));
        let mut wanted = Vec::with_capacity(ports.len());
        {
            let mut c = self.reader().await.map_err(failed)?;
            for id in ports {
                let port = repo::get_port(&mut c, id).await.map_err(failed)?;
                let Some(port) = port else {
                    return Err(NetError::Failed(format!("port {id} no longer exists")));
                };
                wanted.push((id.clone(), port.generation));
            }
        }
        let holds = |applied: &Arc<HashMap<String, i64>>| {
            wanted
                .iter()
                .all(|(id, g)| applied.get(id).is_some_and(|a| a >= g))
        };
        let mut rx = self.inner.applied.subscribe();
        if !holds(&rx.borrow_and_update()) {
            if let Some(h) = self.inner.handle.get() {
                h.trigger(AgentKey::Security);
            }
        }
        rx.wait_for(holds)
            .await
            .map(|_| ())
            .map_err(|_| NetError::Failed("the network agent has stopped".into()))
    }

    /// Asks for a full pass now (every key), as after a change the
    /// revision watch has not seen yet.
    pub fn resync(&self) {
        if let Some(h) = self.inner.handle.get() {
            h.resync();
        }
    }

    /// The routing domains in force, for the instance services (metadata,
    /// DNS) that listen inside them; updated after each routers pass.
    pub fn router_domains(&self) -> tokio::sync::watch::Receiver<Vec<RouterDomain>> {
        self.inner.routers.published.subscribe()
    }

    /// Reconcile statistics, for `/metrics` and tests.
    pub fn stats(&self) -> Option<Stats> {
        self.inner.handle.get().map(|h| h.stats())
    }

    /// Every key that may need work.
    async fn keys(&self) -> Result<Vec<AgentKey>, AgentError> {
        let mut c = self.reader().await?;
        let mut keys = vec![AgentKey::Orphans, AgentKey::Security, AgentKey::Routers];
        keys.extend(
            repo::networks_with_instance_ports(&mut c)
                .await?
                .into_iter()
                .map(AgentKey::Network),
        );
        Ok(keys)
    }

    async fn reader(
        &self,
    ) -> Result<nuage_store::sqlx::pool::PoolConnection<nuage_store::sqlx::Any>, StoreError> {
        Ok(self.inner.db.reader().acquire().await?)
    }

    /// Records observed generations in one transaction; writes only the
    /// rows that are behind, and sends the store only those this agent has
    /// not recorded yet: a security pass names every port of the node, and
    /// a hundred no-op updates held SQLite's one writer for tens of ms
    /// during a burst of launches.
    async fn observed(&self, rows: Vec<(Observable, String, i64)>) -> Result<(), StoreError> {
        let rows: Vec<_> = {
            let recorded = self
                .inner
                .recorded
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            rows.into_iter()
                .filter(|(t, id, g)| recorded.get(&(*t, id.clone())).is_none_or(|r| r < g))
                .collect()
        };
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.inner.db.begin().await?;
        for (table, id, generation) in &rows {
            repo::set_observed(&mut tx, *table, id, *generation).await?;
        }
        tx.commit().await?;
        let mut recorded = self
            .inner
            .recorded
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if recorded.len() + rows.len() > RECORDED_MAX {
            recorded.clear();
        }
        for (table, id, generation) in rows {
            let r = recorded.entry((table, id)).or_insert(generation);
            *r = (*r).max(generation);
        }
        Ok(())
    }

    async fn network(&self, id: &str) -> Result<Action, AgentError> {
        let d = &self.inner.driver;
        let mut c = self.reader().await?;
        let net = repo::get_network(&mut c, id).await?;
        let wanted = net.is_some() && repo::has_instance_ports(&mut c, id).await?;
        let Some(net) = net.filter(|_| wanted) else {
            drop(c);
            // Re-read under the gate: a plug in flight has committed its
            // port, and none starts until the bridge is gone.
            let _held = self.inner.gate.exclusive().await;
            let mut c = self.reader().await?;
            if !repo::has_instance_ports(&mut c, id).await? {
                d.remove_network(id)
                    .await
                    .map_err(driver(format!("removing network {id}")))?;
            }
            return Ok(Action::Done);
        };
        let subnets = repo::subnets_of(&mut c, id).await?;
        drop(c);
        d.ensure_network(&NetworkSpec {
            id: net.id.clone(),
            vlan: net.vlan_id,
        })
        .await
        .map_err(driver(format!("making the bridge of network {id}")))?;
        // The subnets' gateways live in the network's routing domain
        // (`AgentKey::Routers`), not on the bridge.
        let mut observed = vec![(Observable::Network, net.id.clone(), net.generation)];
        for s in &subnets {
            observed.push((Observable::Subnet, s.id.clone(), s.generation));
        }
        self.observed(observed).await?;
        Ok(Action::Done)
    }

    async fn security(&self) -> Result<Action, AgentError> {
        let began = std::time::Instant::now();
        let mut c = self.reader().await?;
        let ports = repo::instance_ports(&mut c).await?;
        let ips = repo::instance_port_ips(&mut c).await?;
        let memberships = repo::instance_port_groups(&mut c).await?;
        let groups = self.groups(&mut c).await?;
        drop(c);
        let read = began.elapsed();
        let (plan, observed) = security_plan(&ports, &ips, &memberships, &groups);
        let planned = began.elapsed();
        self.inner
            .driver
            .apply_security(&plan)
            .await
            .map_err(driver("applying the security plan"))?;
        let applied = began.elapsed();
        self.publish_applied(&observed);
        self.observed(observed).await?;
        // Where a pass spends its time (issue 11's figure is 100 ms from
        // the API call to nftables).
        tracing::debug!(
            ports = plan.ports.len(),
            read_ms = read.as_secs_f64() * 1e3,
            plan_ms = (planned - read).as_secs_f64() * 1e3,
            apply_ms = (applied - planned).as_secs_f64() * 1e3,
            record_ms = (began.elapsed() - applied).as_secs_f64() * 1e3,
            "security pass"
        );
        Ok(Action::Done)
    }

    async fn orphans(&self) -> Result<Action, AgentError> {
        {
            let mut last = self
                .inner
                .last_orphans
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(wait) = last.and_then(|t| ORPHANS_AT_MOST_EVERY.checked_sub(t.elapsed())) {
                return Ok(Action::RequeueAfter(wait));
            }
            *last = Some(std::time::Instant::now());
        }
        // A first look without the gate: plugs are not held up while the
        // node is observed. Only when there is something to remove is the
        // look taken again under the exclusive gate, which decides.
        if !self.orphans_once(false).await? {
            self.orphans_once(true).await?;
        }
        Ok(Action::Done)
    }

    /// One orphan pass; without `exclusive` it removes nothing and returns
    /// whether there was nothing to remove.
    async fn orphans_once(&self, exclusive: bool) -> Result<bool, AgentError> {
        let d = &self.inner.driver;
        let _held = match exclusive {
            true => Some(self.inner.gate.exclusive().await),
            false => None,
        };
        // Observe first: whatever is seen existed before the store is
        // read, so its row (if any) is in what is read.
        let o = d
            .observe()
            .await
            .map_err(driver("observing the node's network"))?;
        let mut c = self.reader().await?;
        let ports: BTreeSet<String> = repo::instance_ports(&mut c)
            .await?
            .into_iter()
            .map(|p| p.0)
            .collect();
        let networks: BTreeSet<String> = repo::networks_with_instance_ports(&mut c)
            .await?
            .into_iter()
            .collect();
        let domains = crate::domains::read(&mut c).await?;
        drop(c);
        if !exclusive {
            let want: BTreeSet<&str> = domains.routers.iter().map(|r| r.key.as_str()).collect();
            let clean = o.ports.iter().all(|p| ports.contains(&p.id))
                && o.networks
                    .iter()
                    .all(|n| networks.contains(&n.id) && n.addresses.is_empty())
                && o.routers.iter().all(|r| want.contains(r.key.as_str()));
            if !clean {
                return Ok(false);
            }
        }
        self.router_orphans(&o, &domains.routers).await?;
        if !o.security_table {
            // Gone or changed (a rule deleted by hand), or never applied:
            // the driver now applies the next plan whole; ask for it now.
            if let Some(h) = self.inner.handle.get() {
                h.trigger(AgentKey::Security);
            }
        }
        for p in o.ports.iter().filter(|p| !ports.contains(&p.id)) {
            tracing::info!(port = %p.id, ifname = %p.host_ifname, "removing an orphaned port");
            d.remove_port(&p.id)
                .await
                .map_err(driver(format!("removing orphaned port {}", p.id)))?;
        }
        for n in &o.networks {
            if !networks.contains(&n.id) {
                tracing::info!(network = %n.id, bridge = %n.bridge, "removing a bridge no instance port needs");
                d.remove_network(&n.id)
                    .await
                    .map_err(driver(format!("removing network {}", n.id)))?;
                continue;
            }
            // Gateways live in routing domains: an address on a bridge is
            // a leftover (of a version that put them there, or by hand).
            for a in &n.addresses {
                tracing::info!(network = %n.id, address = %a, "removing an address from a bridge");
                d.remove_gateway(&n.id, *a)
                    .await
                    .map_err(driver(format!("removing address {a} of network {}", n.id)))?;
            }
        }
        Ok(true)
    }
}

/// Routing domains (ADR 22): kept apart from the other keys.
impl NetworkAgent {
    /// Ensures every routing domain the store implies and publishes them
    /// to the instance services. An unchanged domain is not ensured again
    /// until `resync_every` has passed (or the orphan pass saw it differ),
    /// so a launch does not re-check every router of the node. One failing
    /// domain does not hold the others back; the pass then fails and is
    /// retried, recording nothing.
    async fn routers(&self) -> Result<Action, AgentError> {
        let d = &self.inner.driver;
        let mut c = self.reader().await?;
        let desired = crate::domains::read(&mut c).await?;
        drop(c);
        let resync = self.inner.config.resync_every;
        let mut applied = self.inner.routers.applied.lock().await;
        let mut failed = None;
        let mut published = Vec::new();
        for spec in &desired.routers {
            let fresh = applied
                .get(&spec.key)
                .is_some_and(|(s, t)| s == spec && t.elapsed() < resync);
            if !fresh {
                // The bridges first (the `Network` keys may not have run
                // yet for a new network): idempotent, about 1 ms each.
                let mut made = Ok(());
                for l in &spec.links {
                    let vlan = desired.vlans.get(&l.network_id).copied().flatten();
                    made = d
                        .ensure_network(&NetworkSpec {
                            id: l.network_id.clone(),
                            vlan,
                        })
                        .await;
                    if made.is_err() {
                        break;
                    }
                }
                if let Err(e) = match made {
                    Ok(()) => d.ensure_router(spec).await,
                    Err(e) => Err(e),
                } {
                    applied.remove(&spec.key);
                    tracing::warn!(router = %spec.key, "routing domain not applied: {e}");
                    failed.get_or_insert(AgentError::Driver {
                        doing: format!("making routing domain {}", spec.key),
                        source: e,
                    });
                    continue;
                }
                applied.insert(spec.key.clone(), (spec.clone(), std::time::Instant::now()));
            }
            if let Some(ns) = d.router_netns(&spec.key) {
                published.push(crate::domains::service_view(spec, ns));
            }
        }
        applied.retain(|k, _| desired.routers.iter().any(|r| &r.key == k));
        drop(applied);
        self.inner.routers.published.send_if_modified(|v| {
            let changed = *v != published;
            if changed {
                *v = published;
            }
            changed
        });
        if let Some(e) = failed {
            return Err(e);
        }
        self.observed(desired.observed).await?;
        Ok(Action::Done)
    }

    /// The orphan pass's part for routing domains: a namespace no domain
    /// owns is removed; one that differs from what was last applied (a
    /// link or address deleted by hand) or is missing is applied again now.
    async fn router_orphans(
        &self,
        o: &nuage_netdriver::Observed,
        desired: &[RouterSpec],
    ) -> Result<(), AgentError> {
        let want: BTreeMap<&str, &RouterSpec> =
            desired.iter().map(|r| (r.key.as_str(), r)).collect();
        let mut stale = false;
        {
            let mut applied = self.inner.routers.applied.lock().await;
            for r in &o.routers {
                match want.get(r.key.as_str()) {
                    None => {
                        tracing::info!(router = %r.key, "removing a routing domain nothing owns");
                        self.inner
                            .driver
                            .remove_router(&r.key)
                            .await
                            .map_err(driver(format!("removing routing domain {}", r.key)))?;
                        applied.remove(&r.key);
                    }
                    Some(spec) if !crate::domains::as_wanted(r, spec) => {
                        applied.remove(&r.key);
                        stale = true;
                    }
                    Some(_) => {}
                }
            }
            for k in want.keys() {
                if !o.routers.iter().any(|r| r.key == *k) {
                    applied.remove(*k);
                    stale = true;
                }
            }
        }
        if stale {
            if let Some(h) = self.inner.handle.get() {
                h.trigger(AgentKey::Routers);
            }
        }
        Ok(())
    }
}

/// [`NetworkAgent::security_in_force`]'s answer to the plugger.
struct InForce {
    agent: NetworkAgent,
}

#[async_trait::async_trait]
impl SecurityInForce for InForce {
    async fn wait(&self, ports: &[String]) -> Result<(), NetError> {
        self.agent.wait_in_force(ports).await
    }
}

/// Runs the agent's keys; made by [`NetworkAgent::controller`].
pub struct AgentReconciler {
    agent: NetworkAgent,
}

impl Reconciler for AgentReconciler {
    type Key = AgentKey;
    type Error = AgentError;

    async fn reconcile(&self, key: &AgentKey) -> Result<Action, AgentError> {
        match key {
            AgentKey::Network(id) => self.agent.network(id).await,
            AgentKey::Security => self.agent.security().await,
            AgentKey::Routers => self.agent.routers().await,
            AgentKey::Orphans => self.agent.orphans().await,
        }
    }
}

/// The security plan for the node's instance ports: each port with its
/// first IPv4 address and its groups, and every group those ports use or
/// name as a remote (a remote group's members are a set the plan must
/// hold). Also the rows it applies, at the generations read. A port whose
/// MAC or address does not parse (the service never stores one) is left
/// out with a warning rather than blocking every other port.
fn security_plan(
    ports: &[repo::AgentPortRow],
    ips: &[(String, String, String)],
    memberships: &[(String, String)],
    groups: &[crate::types::SecurityGroup],
) -> (SecurityPlan, Vec<(Observable, String, i64)>) {
    let mut first_ip: HashMap<&str, &str> = HashMap::new();
    for (port, ip, _) in ips {
        first_ip.entry(port.as_str()).or_insert(ip.as_str());
    }
    let mut port_groups: HashMap<&str, Vec<String>> = HashMap::new();
    for (port, group) in memberships {
        port_groups
            .entry(port.as_str())
            .or_default()
            .push(group.clone());
    }
    let mut plan = SecurityPlan::default();
    let mut observed = Vec::new();
    let mut needed: BTreeSet<&str> = BTreeSet::new();
    for (id, network, mac, generation, _) in ports {
        let Some(ip) = first_ip.get(id.as_str()) else {
            continue;
        };
        let (Ok(mac), Ok(ip)) = (mac.parse::<Mac>(), ip.parse::<Ipv4Addr>()) else {
            tracing::warn!(port = %id, %mac, %ip, "a port's MAC or address does not parse: left out of the security plan");
            continue;
        };
        let groups = port_groups.remove(id.as_str()).unwrap_or_default();
        plan.ports.push(SgPort {
            id: id.clone(),
            network_id: network.clone(),
            host_ifname: nuage_netdriver::port_ifname(id),
            mac,
            ip,
            groups,
        });
        observed.push((Observable::Port, id.clone(), *generation));
    }
    for p in &plan.ports {
        needed.extend(p.groups.iter().map(String::as_str));
    }
    let by_id: HashMap<&str, &crate::types::SecurityGroup> =
        groups.iter().map(|g| (g.id.as_str(), g)).collect();
    // Remote groups, transitively: each is in the plan so its set exists.
    let mut todo: Vec<&str> = needed.iter().copied().collect();
    while let Some(g) = todo.pop() {
        for r in by_id.get(g).map(|g| g.rules.as_slice()).unwrap_or_default() {
            if let Some(remote) = r.remote_group_id.as_deref() {
                if by_id.contains_key(remote) && needed.insert(remote) {
                    todo.push(remote);
                }
            }
        }
    }
    for g in needed {
        let Some(group) = by_id.get(g) else {
            // Deleted since the ports were read; the next pass sees both.
            continue;
        };
        let rules = group
            .rules
            .iter()
            .filter_map(|r| sg_rule(r, &by_id))
            .collect();
        plan.groups.push(nuage_netdriver::SecurityGroup {
            id: group.id.clone(),
            rules,
        });
        observed.push((
            Observable::SecurityGroup,
            group.id.clone(),
            group.generation,
        ));
    }
    // A port naming a group that is not in the plan would make the plan
    // invalid; it was deleted between the reads, so drop the name.
    let present: BTreeSet<String> = plan.groups.iter().map(|g| g.id.clone()).collect();
    for p in &mut plan.ports {
        p.groups.retain(|g| present.contains(g));
    }
    (plan, observed)
}

/// One stored rule as the driver takes it; `None` (with a warning) for a
/// rule it cannot express, which the service's checks never store.
fn sg_rule(
    r: &SecurityGroupRule,
    groups: &HashMap<&str, &crate::types::SecurityGroup>,
) -> Option<SgRule> {
    let range = || PortRange {
        from: r.port_range_min.unwrap_or(0),
        to: r.port_range_max.unwrap_or(u16::MAX),
    };
    let icmp = |v: Option<u16>| v.and_then(|v| u8::try_from(v).ok());
    let protocol = match r.protocol {
        Protocol::All => nuage_netdriver::Protocol::All,
        Protocol::Tcp => nuage_netdriver::Protocol::Tcp(range()),
        Protocol::Udp => nuage_netdriver::Protocol::Udp(range()),
        Protocol::Icmp => nuage_netdriver::Protocol::Icmp {
            icmp_type: icmp(r.port_range_min),
            code: icmp(r.port_range_max),
        },
    };
    let remote = match (&r.remote_group_id, &r.remote_cidr) {
        (Some(g), _) if groups.contains_key(g.as_str()) => Remote::Group(g.clone()),
        (Some(_), _) => return None,
        (None, Some(c)) => match c.parse::<Ipv4Cidr>() {
            Ok(c) if c.prefix == 0 => Remote::Any,
            Ok(c) => Remote::Cidr(c),
            Err(e) => {
                tracing::warn!(rule = %r.id, cidr = %c, "left out of the security plan: {e}");
                return None;
            }
        },
        (None, None) => Remote::Any,
    };
    Some(SgRule {
        direction: match r.direction {
            Direction::Ingress => nuage_netdriver::Direction::Ingress,
            Direction::Egress => nuage_netdriver::Direction::Egress,
        },
        protocol,
        remote,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::SecurityGroup;

    fn group(id: &str, generation: i64, rules: Vec<SecurityGroupRule>) -> SecurityGroup {
        SecurityGroup {
            id: id.into(),
            project_id: "p".into(),
            name: id.into(),
            description: String::new(),
            rules,
            generation,
            observed_generation: 0,
            created_at: 0,
        }
    }

    fn rule(
        group: &str,
        protocol: Protocol,
        min: Option<u16>,
        max: Option<u16>,
    ) -> SecurityGroupRule {
        SecurityGroupRule {
            id: format!("sgr-{group}"),
            group_id: group.into(),
            direction: Direction::Ingress,
            protocol,
            port_range_min: min,
            port_range_max: max,
            remote_cidr: None,
            remote_group_id: None,
            description: String::new(),
        }
    }

    #[test]
    fn plan_holds_used_and_remote_groups_only() {
        let mut from_db = rule("sg-web", Protocol::Tcp, Some(80), Some(80));
        from_db.remote_group_id = Some("sg-db".into());
        let mut icmp = rule("sg-db", Protocol::Icmp, Some(8), None);
        icmp.remote_cidr = Some("10.0.0.0/8".into());
        let groups = [
            group("sg-web", 3, vec![from_db]),
            group("sg-db", 2, vec![icmp]),
            group("sg-unused", 1, vec![]),
        ];
        let ports = [
            (
                "eni-1".to_string(),
                "vpc-1".to_string(),
                "fa:16:3e:00:00:01".to_string(),
                4,
                0,
            ),
            (
                "eni-2".to_string(),
                "vpc-1".to_string(),
                "not-a-mac".to_string(),
                1,
                0,
            ),
            (
                "eni-3".to_string(),
                "vpc-1".to_string(),
                "fa:16:3e:00:00:03".to_string(),
                1,
                0,
            ),
        ];
        let ips = [
            ("eni-1".into(), "10.0.0.5".into(), "10.0.0.0/24".into()),
            ("eni-1".into(), "10.0.0.9".into(), "10.0.0.0/24".into()),
            ("eni-2".into(), "10.0.0.6".into(), "10.0.0.0/24".into()),
        ];
        let members = [
            ("eni-1".to_string(), "sg-web".to_string()),
            ("eni-1".to_string(), "sg-gone".to_string()),
        ];
        let (plan, observed) = security_plan(&ports, &ips, &members, &groups);
        nuage_netdriver::nft::compile(&plan).expect("the plan compiles");
        assert_eq!(plan.ports.len(), 1, "no address, a bad MAC: left out");
        let p = &plan.ports[0];
        assert_eq!(
            (p.ip.to_string(), p.groups.clone()),
            ("10.0.0.5".into(), vec!["sg-web".to_string()])
        );
        let ids: Vec<_> = plan.groups.iter().map(|g| g.id.as_str()).collect();
        assert_eq!(ids, ["sg-db", "sg-web"]);
        assert_eq!(
            plan.groups[1].rules[0].remote,
            Remote::Group("sg-db".into())
        );
        assert_eq!(
            plan.groups[1].rules[0].protocol,
            nuage_netdriver::Protocol::Tcp(PortRange::single(80))
        );
        assert_eq!(
            plan.groups[0].rules[0].protocol,
            nuage_netdriver::Protocol::Icmp {
                icmp_type: Some(8),
                code: None
            }
        );
        assert_eq!(
            observed,
            [
                (Observable::Port, "eni-1".to_string(), 4),
                (Observable::SecurityGroup, "sg-db".to_string(), 2),
                (Observable::SecurityGroup, "sg-web".to_string(), 3),
            ]
        );
    }
}
