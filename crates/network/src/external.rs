//! The operator's external network (ADR 22): made in the store at start
//! from the configuration, shared by every project so `allocate-address`
//! draws from it, and the default router each project's default network
//! gets once it exists (EC2's default VPC has an internet gateway).

use nuage_model::id;
use nuage_store::sqlx::AnyConnection;
use nuage_store::{Db, Tx};

use crate::cidr::Cidr;
use crate::ipam::Want;
use crate::networks::{insert_planned, plan_subnet};
use crate::ports::{insert_port, PortSpec};
use crate::types::{device_owner, prefix, Network, NewSubnet, Pool, Router, DEFAULT_NAME};
use crate::{now, repo, NetworkError, NetworkResult, NetworkService, REVISION_AREA};

/// The external network as the operator configures it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalNetworkConfig {
    /// Its name in the store (one per owner project).
    pub name: String,
    pub cidr: String,
    /// Default: the first usable address.
    pub gateway_ip: Option<String>,
    /// Where router gateways and floating addresses come from; default:
    /// every usable address but the gateway.
    pub allocation_pool: Option<Pool>,
}

impl NetworkService {
    /// Makes the external network (external, shared, owned by `project`,
    /// the admin's) and its subnet exist, idempotently and under the
    /// project's lock so two servers starting together make one; from now
    /// on default networks get a default router through it. A stored
    /// subnet with another CIDR than the configuration's is refused rather
    /// than silently kept.
    pub async fn ensure_external_network(
        &self,
        project: &str,
        cfg: &ExternalNetworkConfig,
    ) -> NetworkResult<Network> {
        let plan = plan_subnet(&NewSubnet {
            network_id: String::new(),
            name: cfg.name.clone(),
            cidr: cfg.cidr.clone(),
            gateway_ip: cfg.gateway_ip.clone(),
            allocation_pools: cfg.allocation_pool.iter().cloned().collect(),
            dns_servers: Vec::new(),
        })?;
        let t = now();
        let mut tx = self.begin().await?;
        repo::lock_project(&mut tx, project, t).await?;
        let existing = repo::list_networks(&mut tx, Some(project))
            .await?
            .into_iter()
            .find(|n| n.external && n.name == cfg.name);
        let n = match existing {
            Some(n) => n,
            None => {
                let n = Network {
                    id: id::ec2(prefix::NETWORK),
                    project_id: project.to_string(),
                    name: cfg.name.clone(),
                    vlan_id: None,
                    external: true,
                    shared: true,
                    is_default: false,
                    cidr: None,
                    subnets: Vec::new(),
                    generation: 1,
                    observed_generation: 0,
                    created_at: t,
                };
                if !repo::insert_network(&mut tx, &n, t).await? {
                    return Err(NetworkError::Conflict(format!(
                        "the external network {} was made concurrently; try again",
                        cfg.name
                    )));
                }
                tracing::info!(network = %n.id, cidr = %cfg.cidr, "external network created");
                n
            }
        };
        let subnets = repo::subnets_of(&mut tx, &n.id).await?;
        match subnets.first() {
            None => {
                insert_planned(&mut tx, &n, &cfg.name, &plan).await?;
            }
            Some(s) => {
                let stored: Option<Cidr> = s.cidr.parse().ok();
                if stored != Some(plan_cidr(&cfg.cidr)?) {
                    return Err(NetworkError::invalid(format!(
                        "the external network {} has subnet {} in the store, the configuration says {}",
                        n.id, s.cidr, cfg.cidr
                    )));
                }
            }
        }
        let n = repo::get_network(&mut tx, &n.id)
            .await?
            .ok_or_else(|| NetworkError::Internal(format!("network {} vanished", n.id)))?;
        self.commit(tx).await?;
        let _ = self.inner.default_external.set(n.id.clone());
        Ok(n)
    }
}

fn plan_cidr(cidr: &str) -> NetworkResult<Cidr> {
    cidr.trim()
        .parse()
        .map_err(|reason| NetworkError::InvalidCidr {
            cidr: cidr.to_string(),
            reason,
        })
}

/// Gives the project's default network a router named `default` with its
/// gateway on `external` and an interface on the default subnet, in the
/// caller's transaction (a launch's), unless the project has a router of
/// that name (kept even if its owner detached it) or some router already
/// serves the network. Best effort inside a savepoint: an external
/// network out of addresses leaves the launch without outside access, with
/// a warning, rather than failing it; the next launch tries again.
pub(crate) async fn ensure_default_router(
    tx: &mut Tx,
    project: &str,
    network: &Network,
    external: &str,
) -> NetworkResult<()> {
    let Some(subnet) = network.subnets.first() else {
        return Ok(());
    };
    if repo::router_named(tx, project, DEFAULT_NAME).await?
        || repo::network_has_router(tx, &network.id).await?
    {
        return Ok(());
    }
    savepoint(tx, "SAVEPOINT default_router").await?;
    match make_default_router(tx, project, &network.id, subnet, external).await {
        Ok(id) => {
            savepoint(tx, "RELEASE SAVEPOINT default_router").await?;
            Db::bump_revision(tx, REVISION_AREA).await?;
            tracing::info!(project, router = %id, network = %network.id, "default router created");
            Ok(())
        }
        Err(e @ (NetworkError::PoolExhausted { .. } | NetworkError::AddressInUse { .. })) => {
            savepoint(tx, "ROLLBACK TO SAVEPOINT default_router").await?;
            tracing::warn!(project, network = %network.id, "no default router: {e}");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

async fn savepoint(c: &mut AnyConnection, sql: &str) -> NetworkResult<()> {
    nuage_store::sqlx::query(sql)
        .execute(&mut *c)
        .await
        .map_err(nuage_store::StoreError::from)?;
    Ok(())
}

async fn make_default_router(
    c: &mut AnyConnection,
    project: &str,
    network: &str,
    subnet: &str,
    external: &str,
) -> NetworkResult<String> {
    let t = now();
    let r = Router {
        id: id::ec2(prefix::ROUTER),
        project_id: project.to_string(),
        name: DEFAULT_NAME.into(),
        external_network_id: None,
        external_ip: None,
        gateway_port_id: None,
        interfaces: Vec::new(),
        generation: 1,
        observed_generation: 0,
        created_at: t,
    };
    repo::insert_router(c, &r, t).await?;
    let gw = insert_port(
        c,
        PortSpec {
            project,
            network: external,
            name: "",
            owner: device_owner::ROUTER_GATEWAY,
            device: &r.id,
            addresses: Vec::new(),
            groups: Vec::new(),
        },
    )
    .await?;
    repo::set_router_gateway(c, &r.id, Some(external), Some(&gw.id)).await?;
    insert_port(
        c,
        PortSpec {
            project,
            network,
            name: "",
            owner: device_owner::ROUTER_INTERFACE,
            device: &r.id,
            addresses: vec![(subnet.to_string(), Want::Gateway)],
            groups: Vec::new(),
        },
    )
    .await?;
    Ok(r.id)
}
