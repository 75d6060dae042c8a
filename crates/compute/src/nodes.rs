//! Compute nodes: registration and heartbeats of node agents, the node
//! states the scheduler reads, availability zones and regions.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use nuage_identity::policy::{authorize, Rule};
use nuage_model::identity::Principal;
use nuage_scheduler::{Arch, HypervisorType, NodeState};

use crate::agent::NodeAgent;
use crate::types::{rfc3339, AvailabilityZone, Node};
use crate::{now, repo, Compute, ComputeError, ComputeResult};

/// A node stops taking new instances when it has not reported for this long.
const NODE_TIMEOUT_MS: i64 = 60_000;

/// How an agent's node is named and placed.
#[derive(Debug, Clone)]
pub struct NodeRegistration {
    pub id: String,
    pub name: String,
    pub availability_zone: Option<String>,
    pub labels: BTreeMap<String, String>,
}

impl Compute {
    /// Registers (or re-registers) a node agent: records the node's
    /// capacity in the store and routes its instances to it.
    pub async fn register_agent(
        &self,
        agent: Arc<dyn NodeAgent>,
        reg: NodeRegistration,
    ) -> ComputeResult<()> {
        let cap = agent.capacity().await.map_err(|e| {
            ComputeError::internal(format!("node {}: reading capacity", reg.name), e)
        })?;
        let row = (
            reg.id.clone(),
            reg.name.clone(),
            reg.availability_zone
                .clone()
                .unwrap_or_else(|| self.inner.config.default_zone.clone()),
            cap.arch.clone(),
            cap.hypervisor.clone(),
            cap.vcpus as i64,
            cap.ram_mib as i64,
            cap.disk_gib as i64,
            serde_json::to_string(&reg.labels)?,
            1,
            now(),
        );
        repo::upsert_node(self.db().writer(), &row, now()).await?;
        let this = self.clone();
        agent.set_event_sink(Arc::new(move |id: &str| this.trigger([id.to_string()])));
        self.inner
            .agents
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(reg.id.clone(), agent);
        tracing::info!(node = %reg.name, vcpus = cap.vcpus, ram_mib = cap.ram_mib, hypervisor = %cap.hypervisor, "compute node registered");
        Ok(())
    }

    /// Refreshes every local node's capacity and heartbeat.
    pub(crate) async fn heartbeat(&self) {
        let rows = match repo::list_nodes(self.db().reader()).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "heartbeat: cannot read nodes");
                return;
            }
        };
        for agent in self.agents() {
            let Some(mut row) = rows.iter().find(|r| r.0 == agent.node_id()).cloned() else {
                continue;
            };
            match agent.capacity().await {
                Ok(cap) => {
                    row.5 = cap.vcpus as i64;
                    row.6 = cap.ram_mib as i64;
                    row.7 = cap.disk_gib as i64;
                }
                // Not looking is not "no capacity": keep what was recorded.
                Err(e) => {
                    tracing::warn!(node = %row.1, error = %e, "heartbeat: cannot read the node's capacity")
                }
            }
            row.10 = now();
            if let Err(e) = repo::upsert_node(self.db().writer(), &row, now()).await {
                tracing::warn!(node = %row.1, error = %e, "heartbeat not recorded");
            }
        }
    }

    /// Every node with what its instances take, for the scheduler.
    pub(crate) async fn node_states(
        &self,
        e: &mut nuage_store::sqlx::AnyConnection,
    ) -> ComputeResult<Vec<NodeState>> {
        let rows = repo::list_nodes(&mut *e).await?;
        let usage = repo::node_usage(&mut *e).await?;
        let groups = repo::node_groups(&mut *e).await?;
        let now = now();
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let arch = r.3.parse::<Arch>().unwrap_or(Arch::X86_64);
            let mut n = NodeState::new(&r.0, &r.2, arch, r.5 as u32, r.6 as u64, r.7 as u64);
            n.hypervisor_types = match r.4.as_str() {
                "qemu" => vec![HypervisorType::Vm],
                _ => vec![HypervisorType::Container],
            };
            n.labels = serde_json::from_str(&r.8).unwrap_or_default();
            n.enabled = r.9 != 0 && now - r.10 < NODE_TIMEOUT_MS;
            if let Some(u) = usage.iter().find(|u| u.0 == r.0) {
                n.instances = u.1 as u32;
                n.used_vcpus = u.2 as u32;
                n.used_ram_mib = u.3 as u64;
                n.used_disk_gib = u.4 as u64;
            }
            n.groups = groups
                .iter()
                .filter(|g| g.0 == r.0)
                .map(|g| g.1.clone())
                .collect();
            out.push(n);
        }
        Ok(out)
    }

    /// The nodes and their use (admins only).
    pub async fn list_nodes(&self, caller: &Principal) -> ComputeResult<Vec<Node>> {
        authorize(caller, "compute:list_nodes", Rule::Admin)?;
        let mut conn = self
            .db()
            .reader()
            .acquire()
            .await
            .map_err(nuage_store::StoreError::from)?;
        let states = self.node_states(&mut conn).await?;
        let rows = repo::list_nodes(&mut *conn).await?;
        Ok(rows
            .into_iter()
            .zip(states)
            .map(|(r, s)| Node {
                id: r.0,
                name: r.1,
                availability_zone: r.2,
                arch: r.3,
                hypervisor: r.4,
                vcpus: s.vcpus,
                ram_mib: s.ram_mib,
                disk_gib: s.disk_gib,
                used_vcpus: s.used_vcpus,
                used_ram_mib: s.used_ram_mib,
                used_disk_gib: s.used_disk_gib,
                instances: s.instances,
                labels: s.labels,
                enabled: s.enabled,
                heartbeat_at: rfc3339(r.10),
            })
            .collect())
    }

    /// The zones that have at least one node (the default zone always).
    pub async fn availability_zones(
        &self,
        _caller: &Principal,
    ) -> ComputeResult<Vec<AvailabilityZone>> {
        let rows = repo::list_nodes(self.db().reader()).await?;
        let mut names: Vec<String> = rows.into_iter().map(|r| r.2).collect();
        names.push(self.inner.config.default_zone.clone());
        names.sort();
        names.dedup();
        Ok(names
            .into_iter()
            .map(|name| AvailabilityZone {
                name,
                state: "available",
                region: self.inner.config.region.clone(),
            })
            .collect())
    }

    /// Ids the periodic resync reconciles: every instance of a local node
    /// not yet terminated, plus whatever the nodes hold that the store does
    /// not (orphans, removed by the reconciler).
    pub(crate) async fn resync_keys(&self) -> ComputeResult<Vec<String>> {
        let mut keys: HashSet<String> = HashSet::new();
        for agent in self.agents() {
            keys.extend(repo::node_instance_ids(self.db().reader(), agent.node_id()).await?);
            match agent.list().await {
                Ok(ids) => keys.extend(ids),
                Err(e) => {
                    tracing::warn!(node = agent.node_id(), error = %e, "cannot list the node's instances")
                }
            }
        }
        let purged = repo::purge_terminated(self.db().writer(), now() - 3_600_000).await?;
        if purged > 0 {
            tracing::debug!(purged, "terminated instances forgotten");
        }
        self.collect_images().await;
        Ok(keys.into_iter().collect())
    }
}
