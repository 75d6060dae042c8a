//! The instance reconciler: one level-triggered step from what the store
//! wants of an instance to what its node has, run by the shared runtime.
//!
//! It reads the instance row, asks the node's agent to converge (each
//! agent call is idempotent), and records what it observed only if the
//! desired state is still the one it acted on. A kill -9 at any point
//! leaves a state the next pass repairs: a half-created instance is
//! created again or removed, a half-removed one removed again, and ids a
//! node holds that the store does not know are removed (the periodic
//! resync feeds them in).

use std::sync::Arc;

use nuage_driver::{ConfigFile, DriverError, InstanceSpec, Power, Resources};
use nuage_runtime::{Action, Reconciler};
use serde_json::json;

use crate::agent::{AgentSpec, NodeAgent};
use crate::types::{Desired, Instance, State, StateReason};
use crate::{now, repo, Compute, ComputeError, ComputeResult};

pub(crate) struct InstanceReconciler {
    pub compute: Compute,
}

fn reason(code: &str, message: &str) -> StateReason {
    StateReason {
        code: code.into(),
        message: message.into(),
    }
}

impl Reconciler for InstanceReconciler {
    type Key = String;
    type Error = ComputeError;

    async fn reconcile(&self, id: &String) -> Result<Action, ComputeError> {
        let c = &self.compute;
        let Some(inst) = repo::get_instance(c.db().reader(), id).await? else {
            // Something on a node that the store does not know: an orphan.
            for agent in c.agents() {
                // A node that cannot list is an error to retry, not "the
                // orphan is not there".
                let listed = agent.list().await.map_err(|e| fail(id, "listing", e))?;
                if listed.contains(id) {
                    tracing::info!(instance = %id, node = agent.node_id(), "removing an orphaned instance");
                    agent
                        .ensure_absent(id)
                        .await
                        .map_err(|e| fail(id, "removing", e))?;
                }
            }
            return Ok(Action::Done);
        };
        let Some(agent) = c.agent(&inst.node) else {
            // Another node's agent handles it.
            return Ok(Action::Done);
        };
        match inst.desired {
            Desired::Terminated => {
                agent
                    .ensure_absent(id)
                    .await
                    .map_err(|e| fail(id, "terminating", e))?;
                if inst.state != State::Terminated {
                    let r = inst.state_reason.clone().unwrap_or_else(|| {
                        reason("Client.UserInitiatedShutdown", "User initiated shutdown")
                    });
                    self.record_terminated(&inst, &r).await?;
                }
                Ok(Action::Done)
            }
            Desired::Stopped => {
                // A forced stop is in the store (it survives a restart);
                // recording the stop clears it.
                let grace = if inst.force_stop {
                    std::time::Duration::ZERO
                } else {
                    c.inner.config.stop_grace
                };
                let obs = agent
                    .ensure_stopped(id, grace)
                    .await
                    .map_err(|e| fail(id, "stopping", e))?;
                let r = inst.state_reason.clone().unwrap_or_else(|| {
                    reason("Client.UserInitiatedShutdown", "User initiated shutdown")
                });
                let oom = obs.oom_kills.max(inst.oom_kills);
                if inst.state != State::Stopped || oom != inst.oom_kills {
                    self.record(&inst, State::Stopped, Some(&r), oom, inst.reboot_done)
                        .await?;
                }
                Ok(Action::Done)
            }
            Desired::Running => self.make_running(&inst, agent).await,
        }
    }
}

/// A driver's failure is an error the runtime retries with back-off; it
/// never reads as a state.
fn fail(id: &str, doing: &'static str, e: DriverError) -> ComputeError {
    ComputeError::driver(id, doing, e)
}

impl InstanceReconciler {
    async fn record(
        &self,
        inst: &Instance,
        state: State,
        reason: Option<&StateReason>,
        oom_kills: u64,
        reboot_done: i64,
    ) -> ComputeResult<()> {
        let c = &self.compute;
        if repo::set_observed(
            c.db().writer(),
            &inst.id,
            inst.desired,
            state,
            reason,
            oom_kills,
            reboot_done,
            now(),
        )
        .await?
        {
            if state != inst.state {
                tracing::info!(instance = %inst.id, from = inst.state.as_str(), to = state.as_str(), "instance state");
            }
            c.notify_changed();
        }
        Ok(())
    }

    /// Records the termination and frees the instance's ports and
    /// addresses in the same transaction: an address is never held by a
    /// terminated instance, nor freed while the instance still runs.
    async fn record_terminated(&self, inst: &Instance, r: &StateReason) -> ComputeResult<()> {
        let c = &self.compute;
        let mut tx = c.db().begin().await?;
        let changed = repo::set_observed(
            &mut *tx,
            &inst.id,
            inst.desired,
            State::Terminated,
            Some(r),
            inst.oom_kills,
            inst.reboot_done,
            now(),
        )
        .await?;
        if changed {
            if let Some(net) = c.network() {
                net.delete_device_ports_in(&mut tx, &inst.id).await?;
            }
        }
        tx.commit().await.map_err(nuage_store::StoreError::from)?;
        if changed {
            if let Some(net) = c.network() {
                net.notify_changed();
            }
            tracing::info!(instance = %inst.id, from = inst.state.as_str(), to = "terminated", "instance state");
            c.notify_changed();
        }
        Ok(())
    }

    /// Records a start: running, and from the spec of the instance's
    /// generation, in one commit (one turn of SQLite's single writer per
    /// launch, not two).
    async fn record_started(
        &self,
        inst: &Instance,
        reason: Option<&StateReason>,
        oom_kills: u64,
    ) -> ComputeResult<()> {
        let c = &self.compute;
        let now = now();
        let mut tx = c.db().begin().await?;
        let changed = repo::set_observed(
            &mut *tx,
            &inst.id,
            inst.desired,
            State::Running,
            reason,
            oom_kills,
            inst.reboot_requested,
            now,
        )
        .await?;
        let applied = inst.observed_generation < inst.generation
            && repo::set_observed_generation(&mut *tx, &inst.id, inst.generation, now).await?;
        tx.commit().await.map_err(nuage_store::StoreError::from)?;
        if changed && inst.state != State::Running {
            tracing::info!(instance = %inst.id, from = inst.state.as_str(), to = "running", "instance state");
        }
        if applied {
            tracing::info!(instance = %inst.id, generation = inst.generation, "spec applied");
        }
        if changed || applied {
            c.notify_changed();
        }
        Ok(())
    }

    /// Records that the node runs the spec of the instance's generation.
    async fn record_generation(&self, inst: &Instance) -> ComputeResult<()> {
        let c = &self.compute;
        if inst.observed_generation < inst.generation
            && repo::set_observed_generation(c.db().writer(), &inst.id, inst.generation, now())
                .await?
        {
            tracing::info!(instance = %inst.id, generation = inst.generation, "spec applied");
            c.notify_changed();
        }
        Ok(())
    }

    async fn make_running(
        &self,
        inst: &Instance,
        agent: Arc<dyn NodeAgent>,
    ) -> ComputeResult<Action> {
        let c = &self.compute;
        let id = &inst.id;
        let grace = c.inner.config.stop_grace;
        let rebooting = inst.reboot_requested > inst.reboot_done;
        if inst.state == State::Running && !rebooting {
            let obs = agent
                .observe(id)
                .await
                .map_err(|e| fail(id, "observing", e))?;
            match obs.power {
                Power::Running { .. } => {
                    let unwired = obs.nics.iter().any(|n| n.wired == Some(false));
                    if inst.generation > inst.observed_generation || unwired {
                        // The spec changed while it runs, or a NIC was
                        // deleted by hand: re-apply it in place, then
                        // record the generation applied.
                        if unwired {
                            tracing::warn!(instance = %id, "a NIC is no longer wired; plugging it again");
                        }
                        let spec = self.spec(inst).await?;
                        agent
                            .apply(&spec)
                            .await
                            .map_err(|e| fail(id, "applying the changed spec of", e))?;
                        self.record_generation(inst).await?;
                    }
                    if obs.oom_kills != inst.oom_kills {
                        self.record(
                            inst,
                            State::Running,
                            inst.state_reason.as_ref(),
                            obs.oom_kills,
                            inst.reboot_done,
                        )
                        .await?;
                    }
                    return Ok(Action::Done);
                }
                Power::Stopped => {
                    // The init exited on its own: EC2's instance-initiated
                    // shutdown, whose default behaviour is to stop.
                    let r = if obs.oom_kills > inst.oom_kills {
                        reason(
                            "Server.OutOfMemory",
                            "the instance's init was killed for exceeding its memory",
                        )
                    } else {
                        match obs.exit {
                            Some(exit) => reason(
                                "Client.InstanceInitiatedShutdown",
                                &format!("Instance initiated shutdown: {exit}"),
                            ),
                            None => reason(
                                "Client.InstanceInitiatedShutdown",
                                "Instance initiated shutdown",
                            ),
                        }
                    };
                    let changed = repo::reconciler_set_desired(
                        c.db().writer(),
                        id,
                        Desired::Running,
                        Desired::Stopped,
                        &r,
                        now(),
                    )
                    .await?;
                    if changed {
                        tracing::info!(instance = %id, reason = %r.code, "instance stopped on its own");
                    }
                    return Ok(Action::RequeueAfter(std::time::Duration::ZERO));
                }
                Power::Absent => {
                    tracing::warn!(instance = %id, "a running instance is gone from its node; recreating it");
                }
            }
        }
        if rebooting {
            agent
                .ensure_stopped(id, grace)
                .await
                .map_err(|e| fail(id, "rebooting", e))?;
        }
        let spec = self.spec(inst).await?;
        match agent.ensure_running(&spec).await {
            Ok(obs) => {
                let oom = obs.oom_kills.max(inst.oom_kills);
                if !matches!(obs.power, Power::Running { .. }) {
                    return Ok(Action::RequeueAfter(std::time::Duration::from_millis(200)));
                }
                let reason = if inst.state == State::Running {
                    inst.state_reason.clone()
                } else {
                    None
                };
                self.record_started(inst, reason.as_ref(), oom).await?;
                Ok(Action::Done)
            }
            Err(DriverError::Invalid(m)) => {
                // This launch can never work: terminate it, as EC2 does with
                // Server.InternalError, and say why.
                let r = reason("Server.InternalError", &m);
                repo::reconciler_set_desired(
                    c.db().writer(),
                    id,
                    Desired::Running,
                    Desired::Terminated,
                    &r,
                    now(),
                )
                .await?;
                tracing::warn!(instance = %id, error = %m, "launch failed; terminating");
                Ok(Action::RequeueAfter(std::time::Duration::ZERO))
            }
            Err(e) => Err(fail(id, "starting", e)),
        }
    }

    /// The spec of an instance, with its config drive.
    pub(crate) async fn spec(&self, inst: &Instance) -> ComputeResult<AgentSpec> {
        let c = &self.compute;
        let image = repo::get_image(c.db().reader(), &inst.image_id)
            .await?
            .ok_or_else(|| {
                ComputeError::Internal(format!("image {} of {} is gone", inst.image_id, inst.id))
            })?;
        let sha = image
            .sha256
            .clone()
            .ok_or_else(|| ComputeError::Internal(format!("image {} has no data", image.id)))?;
        let itype = repo::get_type(c.db().reader(), &inst.instance_type).await?;
        let (pids_limit, io_weight) = match &itype {
            Some(t) => (t.pids_limit, t.io_weight),
            None => (
                crate::catalog::default_pids_limit(inst.vcpus),
                crate::catalog::DEFAULT_IO_WEIGHT,
            ),
        };
        let user_data = repo::user_data(c.db().reader(), &inst.id).await?;
        let mut keys = serde_json::Map::new();
        if let Some(k) = &inst.key_name {
            if let Some(kp) = repo::get_key(c.db().reader(), &inst.project_id, k).await? {
                keys.insert(k.clone(), json!(kp.public_key));
            }
        }
        let name = inst
            .tags
            .get("Name")
            .cloned()
            .unwrap_or_else(|| inst.id.clone());
        let meta = json!({
            "uuid": inst.id,
            "name": name,
            "hostname": inst.hostname,
            "availability_zone": inst.availability_zone,
            "project_id": inst.project_id,
            "launch_index": inst.launch_index,
            "public_keys": keys,
            "meta": inst.tags,
        });
        let ec2 = json!({
            "instance-id": inst.id,
            "ami-id": inst.image_id,
            "instance-type": inst.instance_type,
            "hostname": inst.hostname,
            "local-hostname": inst.hostname,
            "reservation-id": inst.reservation_id,
            "ami-launch-index": inst.launch_index,
            "placement": {"availability-zone": inst.availability_zone, "region": c.region()},
            "public-keys": keys,
        });
        let mut files = vec![
            ConfigFile {
                path: "openstack/latest/meta_data.json".into(),
                contents: serde_json::to_vec_pretty(&meta)?,
            },
            ConfigFile {
                path: "ec2/latest/meta-data.json".into(),
                contents: serde_json::to_vec_pretty(&ec2)?,
            },
            ConfigFile {
                path: "nuage/instance-id".into(),
                contents: inst.id.clone().into_bytes(),
            },
        ];
        if let Some(d) = user_data {
            files.push(ConfigFile {
                path: "openstack/latest/user_data".into(),
                contents: d.clone(),
            });
            files.push(ConfigFile {
                path: "ec2/latest/user-data".into(),
                contents: d,
            });
        }
        let nics = match c.network() {
            Some(net) => net
                .instance_wiring(&inst.id)
                .await?
                .into_iter()
                .map(|w| nuage_driver::Nic {
                    host_ifname: nuage_driver::nic_host_ifname(&w.port_id),
                    address: format!("{}/{}", w.address, w.prefix),
                    gateway: w.gateway.map(|g| g.to_string()),
                    port_id: w.port_id,
                    network_id: w.network_id,
                    vlan: w.vlan,
                    mac: w.mac,
                })
                .collect(),
            None => Vec::new(),
        };
        let launch = image.launch;
        Ok(AgentSpec {
            image_sha256: sha,
            spec: InstanceSpec {
                id: inst.id.clone(),
                hostname: inst.hostname.clone(),
                rootfs: std::path::PathBuf::new(),
                command: if launch.command.is_empty() {
                    vec!["/sbin/init".into()]
                } else {
                    launch.command
                },
                env: launch.env,
                workdir: if launch.workdir.is_empty() {
                    "/".into()
                } else {
                    launch.workdir
                },
                resources: Resources {
                    vcpus: inst.vcpus,
                    memory_mib: inst.memory_mib,
                    pids_limit,
                    io_weight,
                    disk_gib: inst.disk_gib,
                },
                config_drive: files,
                nics,
                dns_domain: Some(format!("{}.compute.internal", c.region())),
            },
        })
    }
}
