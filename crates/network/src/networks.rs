//! Networks and subnets, and each project's default network.

use std::net::Ipv4Addr;

use nuage_identity::policy::{authorize, Rule};
use nuage_model::id;
use nuage_model::identity::Principal;
use nuage_store::sqlx::AnyConnection;
use nuage_store::{Db, Tx};

use crate::cidr::{self, Cidr, Range};
use crate::types::{prefix, Network, NewNetwork, NewSubnet, Pool, Subnet, DEFAULT_NAME};
use crate::{
    check_name, may_read, must_write, now, repo, security, NetworkError, NetworkResult,
    NetworkService, Resource, REVISION_AREA,
};

/// Subnets are /8 to /30: larger ones are not a LAN, smaller ones have no
/// address for an instance beside the gateway.
const PREFIXES: std::ops::RangeInclusive<u8> = 8..=30;
const MAX_POOLS: usize = 16;
/// A network's own range is /16 to /28, as EC2's VPC CidrBlock.
const NETWORK_PREFIXES: std::ops::RangeInclusive<u8> = 16..=28;

/// A network's range as asked for, checked and normalised.
fn check_network_cidr(c: &str) -> NetworkResult<String> {
    let invalid = |reason| NetworkError::InvalidCidr {
        cidr: c.to_string(),
        reason,
    };
    let cidr: Cidr = c.trim().parse().map_err(invalid)?;
    if !NETWORK_PREFIXES.contains(&cidr.prefix()) {
        return Err(invalid("a network's prefix length is 16 to 28"));
    }
    Ok(cidr.to_string())
}
const MAX_DNS: usize = 5;

/// A subnet request checked against its CIDR, ready to insert.
pub(crate) struct Plan {
    cidr: Cidr,
    gateway: Option<u32>,
    pools: Vec<Range>,
    dns: Vec<String>,
}

pub(crate) fn plan_subnet(req: &NewSubnet) -> NetworkResult<Plan> {
    let invalid_cidr = |reason| NetworkError::InvalidCidr {
        cidr: req.cidr.clone(),
        reason,
    };
    let cidr: Cidr = req.cidr.trim().parse().map_err(invalid_cidr)?;
    if !PREFIXES.contains(&cidr.prefix()) {
        return Err(invalid_cidr("a subnet's prefix length is 8 to 30"));
    }
    let usable = cidr.usable().ok_or(invalid_cidr("no usable address"))?;
    let gateway = match &req.gateway_ip {
        None => usable.start,
        Some(g) => {
            let ip = cidr::parse_ip(g.trim()).ok_or_else(|| {
                NetworkError::invalid(format!("gateway {g:?} is not an IPv4 address"))
            })?;
            if !usable.contains(u32::from(ip)) {
                return Err(NetworkError::GatewayOutsideSubnet {
                    gateway: ip.to_string(),
                    cidr: cidr.to_string(),
                });
            }
            u32::from(ip)
        }
    };
    let pools = if req.allocation_pools.is_empty() {
        cidr::pools_without(usable, Some(gateway))
    } else {
        if req.allocation_pools.len() > MAX_POOLS {
            return Err(NetworkError::invalid(format!(
                "a subnet has at most {MAX_POOLS} allocation pools"
            )));
        }
        let mut pools = Vec::with_capacity(req.allocation_pools.len());
        for p in &req.allocation_pools {
            let parse = |s: &str| {
                cidr::parse_ip(s.trim()).map(u32::from).ok_or_else(|| {
                    NetworkError::invalid(format!(
                        "allocation pool {}-{}: {s:?} is not an IPv4 address",
                        p.start, p.end
                    ))
                })
            };
            let r = Range {
                start: parse(&p.start)?,
                end: parse(&p.end)?,
            };
            if r.start > r.end || !usable.contains(r.start) || !usable.contains(r.end) {
                return Err(NetworkError::invalid(format!(
                    "allocation pool {}-{} must be an ascending range of usable addresses of {cidr}",
                    p.start, p.end
                )));
            }
            if r.contains(gateway) {
                return Err(NetworkError::invalid(format!(
                    "allocation pool {}-{} holds the gateway {}",
                    p.start,
                    p.end,
                    Ipv4Addr::from(gateway)
                )));
            }
            pools.push(r);
        }
        pools.sort();
        if pools.windows(2).any(|w| w[0].overlaps(w[1])) {
            return Err(NetworkError::invalid("allocation pools overlap"));
        }
        pools
    };
    if req.dns_servers.len() > MAX_DNS {
        return Err(NetworkError::invalid(format!(
            "a subnet has at most {MAX_DNS} DNS servers"
        )));
    }
    let mut dns = Vec::with_capacity(req.dns_servers.len());
    for d in &req.dns_servers {
        let ip = cidr::parse_ip(d.trim()).ok_or_else(|| {
            NetworkError::invalid(format!("DNS server {d:?} is not an IPv4 address"))
        })?;
        dns.push(ip.to_string());
    }
    Ok(Plan {
        cidr,
        gateway: Some(gateway),
        pools,
        dns,
    })
}

fn pool_json(r: Range) -> Pool {
    Pool {
        start: Ipv4Addr::from(r.start).to_string(),
        end: Ipv4Addr::from(r.end).to_string(),
    }
}

/// Inserts a planned subnet into `network` after the overlap check; the
/// network's row is locked first, so two subnets of one network are
/// checked one after the other.
pub(crate) async fn insert_planned(
    c: &mut AnyConnection,
    network: &Network,
    name: &str,
    plan: &Plan,
) -> NetworkResult<Subnet> {
    if let Some(range) = &network.cidr {
        let outer: Cidr = range.parse().map_err(|reason| NetworkError::InvalidCidr {
            cidr: range.clone(),
            reason,
        })?;
        if plan.cidr.first() < outer.first() || plan.cidr.last() > outer.last() {
            return Err(NetworkError::InvalidCidr {
                cidr: plan.cidr.to_string(),
                reason: "it is not inside its network's range",
            });
        }
    }
    let t = now();
    if !repo::bump_network(c, &network.id, t).await? {
        return Err(NetworkError::not_found(Resource::Network, &network.id));
    }
    if let Some((existing, existing_cidr)) =
        repo::overlapping(c, &network.id, plan.cidr.first(), plan.cidr.last()).await?
    {
        return Err(NetworkError::OverlappingCidr {
            cidr: plan.cidr.to_string(),
            network: network.id.clone(),
            existing,
            existing_cidr,
        });
    }
    let s = Subnet {
        id: id::ec2(prefix::SUBNET),
        network_id: network.id.clone(),
        project_id: network.project_id.clone(),
        name: name.to_string(),
        cidr: plan.cidr.to_string(),
        gateway_ip: plan.gateway.map(|g| Ipv4Addr::from(g).to_string()),
        allocation_pools: plan.pools.iter().copied().map(pool_json).collect(),
        dns_servers: plan.dns.clone(),
        generation: 1,
        observed_generation: 0,
        created_at: t,
    };
    let hint = plan.pools.first().map(|p| p.start).unwrap_or(0);
    repo::insert_subnet(c, &s, (plan.cidr.first(), plan.cidr.last(), hint), t).await?;
    Ok(s)
}

impl NetworkService {
    /// A network the caller may see: its project's, or a shared or
    /// external one. Anything else answers "not found".
    pub(crate) async fn visible_network(
        &self,
        c: &mut AnyConnection,
        caller: &Principal,
        id: &str,
    ) -> NetworkResult<Network> {
        let n = repo::get_network(c, id)
            .await?
            .ok_or_else(|| NetworkError::not_found(Resource::Network, id))?;
        if n.shared || n.external || may_read(caller, "network:get_network", &n.project_id) {
            Ok(n)
        } else {
            Err(NetworkError::not_found(Resource::Network, id))
        }
    }

    pub async fn create_network(
        &self,
        caller: &Principal,
        req: NewNetwork,
    ) -> NetworkResult<Network> {
        let project = caller.project_id.clone();
        authorize(
            caller,
            "network:create_network",
            Rule::ProjectWrite(&project),
        )?;
        check_name("a network's name", &req.name)?;
        if req.vlan_id.is_some() || req.external || req.shared {
            authorize(caller, "network:create_provider_network", Rule::Admin)?;
        }
        if let Some(v) = req.vlan_id {
            if !(1..=4094).contains(&v) {
                return Err(NetworkError::invalid(format!(
                    "VLAN id {v}: 802.1Q ids are 1 to 4094"
                )));
            }
        }
        let cidr = req.cidr.as_deref().map(check_network_cidr).transpose()?;
        let t = now();
        let n = Network {
            id: id::ec2(prefix::NETWORK),
            project_id: project,
            name: req.name,
            vlan_id: req.vlan_id,
            external: req.external,
            shared: req.shared,
            is_default: false,
            cidr,
            subnets: Vec::new(),
            generation: 1,
            observed_generation: 0,
            created_at: t,
        };
        let mut tx = self.begin().await?;
        if let Some(v) = n.vlan_id {
            if repo::vlan_taken(&mut tx, v).await? {
                return Err(NetworkError::Conflict(format!(
                    "VLAN {v} is already used by another network"
                )));
            }
        }
        if !repo::insert_network(&mut tx, &n, t).await? {
            return Err(NetworkError::Conflict(format!(
                "network {} conflicts with another one (its VLAN was taken meanwhile); try again",
                n.name
            )));
        }
        self.commit(tx).await?;
        tracing::info!(network = %n.id, project = %n.project_id, external = n.external, "network created");
        Ok(n)
    }

    pub async fn get_network(&self, caller: &Principal, id: &str) -> NetworkResult<Network> {
        let mut c = self.reader().await?;
        self.visible_network(&mut c, caller, id).await
    }

    /// The caller's project's networks, with the shared and external ones;
    /// every network for an admin asking for `all_projects`.
    pub async fn list_networks(
        &self,
        caller: &Principal,
        all_projects: bool,
    ) -> NetworkResult<Vec<Network>> {
        authorize(
            caller,
            "network:list_networks",
            Rule::ProjectRead(&caller.project_id),
        )?;
        let scope = if all_projects {
            authorize(caller, "network:list_all_networks", Rule::Admin)?;
            None
        } else {
            Some(caller.project_id.as_str())
        };
        let mut c = self.reader().await?;
        Ok(repo::list_networks(&mut c, scope).await?)
    }

    /// Deletes a network and its subnets; refused while any port (an
    /// instance's, a router's, a floating address's) is on it.
    pub async fn delete_network(&self, caller: &Principal, id: &str) -> NetworkResult<()> {
        let mut tx = self.begin().await?;
        let n = self.visible_network(&mut tx, caller, id).await?;
        must_write(caller, "network:delete_network", &n.project_id)?;
        repo::bump_network(&mut tx, id, now()).await?;
        let ports = repo::count_ports_on_network(&mut tx, id).await?;
        if ports > 0 {
            return Err(NetworkError::in_use(
                Resource::Network,
                id,
                format!("{ports} port(s)"),
            ));
        }
        let routers = repo::routers_on_network(&mut tx, id).await?;
        if routers > 0 {
            return Err(NetworkError::in_use(
                Resource::Network,
                id,
                format!("{routers} router gateway(s)"),
            ));
        }
        repo::delete_network(&mut tx, id).await?;
        self.commit(tx).await?;
        tracing::info!(network = %id, "network deleted");
        Ok(())
    }

    /// Adds a subnet to a network the caller owns: a CIDR overlapping
    /// another subnet of the same network is refused (other networks,
    /// isolated, may reuse it).
    pub async fn create_subnet(&self, caller: &Principal, req: NewSubnet) -> NetworkResult<Subnet> {
        check_name("a subnet's name", &req.name)?;
        let mut tx = self.begin().await?;
        let n = self
            .visible_network(&mut tx, caller, &req.network_id)
            .await?;
        must_write(caller, "network:create_subnet", &n.project_id)?;
        let plan = plan_subnet(&req)?;
        let s = insert_planned(&mut tx, &n, &req.name, &plan).await?;
        self.commit(tx).await?;
        tracing::info!(subnet = %s.id, network = %n.id, cidr = %s.cidr, "subnet created");
        Ok(s)
    }

    pub async fn get_subnet(&self, caller: &Principal, id: &str) -> NetworkResult<Subnet> {
        let mut c = self.reader().await?;
        let s = repo::get_subnet(&mut c, id)
            .await?
            .ok_or_else(|| NetworkError::not_found(Resource::Subnet, id))?;
        self.visible_network(&mut c, caller, &s.network_id)
            .await
            .map_err(|_| NetworkError::not_found(Resource::Subnet, id))?;
        Ok(s)
    }

    /// The subnets of every network the caller sees, or of one.
    pub async fn list_subnets(
        &self,
        caller: &Principal,
        network: Option<&str>,
    ) -> NetworkResult<Vec<Subnet>> {
        let mut c = self.reader().await?;
        let networks = match network {
            Some(id) => vec![self.visible_network(&mut c, caller, id).await?],
            None => repo::list_networks(&mut c, Some(&caller.project_id)).await?,
        };
        let mut out = Vec::new();
        for n in networks {
            out.extend(repo::subnets_of(&mut c, &n.id).await?);
        }
        Ok(out)
    }

    /// Deletes a subnet none of whose addresses is held.
    pub async fn delete_subnet(&self, caller: &Principal, id: &str) -> NetworkResult<()> {
        let mut tx = self.begin().await?;
        let s = repo::get_subnet(&mut tx, id)
            .await?
            .ok_or_else(|| NetworkError::not_found(Resource::Subnet, id))?;
        let n = self
            .visible_network(&mut tx, caller, &s.network_id)
            .await
            .map_err(|_| NetworkError::not_found(Resource::Subnet, id))?;
        must_write(caller, "network:delete_subnet", &n.project_id)?;
        let t = now();
        repo::bump_network(&mut tx, &n.id, t).await?;
        if !repo::bump_subnet(&mut tx, id, t).await? {
            return Err(NetworkError::not_found(Resource::Subnet, id));
        }
        let held = repo::count_ips_in_subnet(&mut tx, id).await?;
        if held > 0 {
            return Err(NetworkError::in_use(
                Resource::Subnet,
                id,
                format!("{held} port address(es)"),
            ));
        }
        repo::delete_subnet(&mut tx, id).await?;
        self.commit(tx).await?;
        tracing::info!(subnet = %id, "subnet deleted");
        Ok(())
    }

    /// The caller's project's default network, made with its subnet and
    /// the project's `default` security group at first use. Idempotent and
    /// safe under concurrent first uses: one network, one subnet, one group.
    pub async fn ensure_default_network(&self, caller: &Principal) -> NetworkResult<Network> {
        let project = caller.project_id.clone();
        authorize(
            caller,
            "network:ensure_default_network",
            Rule::ProjectRead(&project),
        )?;
        {
            let mut c = self.reader().await?;
            if let Some(n) = repo::default_network(&mut c, &project).await? {
                if !n.subnets.is_empty()
                    && repo::sg_by_name(&mut c, &project, DEFAULT_NAME)
                        .await?
                        .is_some()
                    && (self.inner.default_external.get().is_none()
                        || repo::router_named(&mut c, &project, DEFAULT_NAME).await?
                        || repo::network_has_router(&mut c, &n.id).await?)
                {
                    return Ok(n);
                }
            }
        }
        let mut tx = self.begin().await?;
        let n = self.ensure_default_network_in(&mut tx, &project).await?;
        self.commit(tx).await?;
        Ok(n)
    }

    /// [`NetworkService::ensure_default_network`] inside the caller's
    /// transaction, for a launch that has authorised its caller already.
    /// On SQLite, call it (or the service method, before the transaction)
    /// on the launch's own transaction: the single writer connection means
    /// a second transaction would wait for the first forever.
    pub async fn ensure_default_network_in(
        &self,
        tx: &mut Tx,
        project: &str,
    ) -> NetworkResult<Network> {
        let t = now();
        repo::lock_project(tx, project, t).await?;
        security::ensure_default_group(tx, project, t).await?;
        let n = match repo::default_network(tx, project).await? {
            Some(n) => n,
            None => {
                let n = Network {
                    id: id::ec2(prefix::NETWORK),
                    project_id: project.to_string(),
                    name: DEFAULT_NAME.into(),
                    vlan_id: None,
                    external: false,
                    shared: false,
                    is_default: true,
                    cidr: Some(self.inner.config.default_cidr.clone()),
                    subnets: Vec::new(),
                    generation: 1,
                    observed_generation: 0,
                    created_at: t,
                };
                if !repo::insert_network(tx, &n, t).await? {
                    return Err(NetworkError::Conflict(format!(
                        "the default network of project {project} was made concurrently; try again"
                    )));
                }
                n
            }
        };
        if n.subnets.is_empty() {
            let plan = plan_subnet(&NewSubnet {
                network_id: n.id.clone(),
                name: DEFAULT_NAME.into(),
                cidr: self.inner.config.default_cidr.clone(),
                gateway_ip: None,
                allocation_pools: Vec::new(),
                dns_servers: self.inner.config.default_dns.clone(),
            })?;
            insert_planned(tx, &n, DEFAULT_NAME, &plan).await?;
            Db::bump_revision(tx, REVISION_AREA).await?;
            tracing::info!(project, network = %n.id, cidr = %plan.cidr, "default network created");
        }
        if let Some(ext) = self.inner.default_external.get() {
            let n = repo::get_network(tx, &n.id)
                .await?
                .ok_or_else(|| NetworkError::not_found(Resource::Network, &n.id))?;
            crate::external::ensure_default_router(tx, project, &n, ext).await?;
        }
        repo::get_network(tx, &n.id)
            .await?
            .ok_or_else(|| NetworkError::not_found(Resource::Network, &n.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(cidr: &str) -> NewSubnet {
        NewSubnet {
            network_id: "vpc-x".into(),
            cidr: cidr.into(),
            ..Default::default()
        }
    }

    #[test]
    fn default_plan_skips_gateway() {
        let p = plan_subnet(&req("192.168.7.0/24")).expect("valid");
        assert_eq!(p.gateway, Some(u32::from(Ipv4Addr::new(192, 168, 7, 1))));
        assert_eq!(p.pools.len(), 1);
        assert_eq!(p.pools[0].len(), 253);
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            plan_subnet(&req("10.0.0.1/24")),
            Err(NetworkError::InvalidCidr { .. })
        ));
        assert!(matches!(
            plan_subnet(&req("10.0.0.0/31")),
            Err(NetworkError::InvalidCidr { .. })
        ));
        let mut r = req("10.0.0.0/24");
        r.gateway_ip = Some("10.0.1.1".into());
        assert!(matches!(
            plan_subnet(&r),
            Err(NetworkError::GatewayOutsideSubnet { .. })
        ));
        r.gateway_ip = Some("10.0.0.255".into());
        assert!(matches!(
            plan_subnet(&r),
            Err(NetworkError::GatewayOutsideSubnet { .. })
        ));
        let mut r = req("10.0.0.0/24");
        r.allocation_pools = vec![Pool {
            start: "10.0.0.1".into(),
            end: "10.0.0.9".into(),
        }];
        assert!(
            matches!(plan_subnet(&r), Err(NetworkError::Invalid(_))),
            "pool holds the gateway"
        );
        r.allocation_pools = vec![
            Pool {
                start: "10.0.0.10".into(),
                end: "10.0.0.20".into(),
            },
            Pool {
                start: "10.0.0.20".into(),
                end: "10.0.0.30".into(),
            },
        ];
        assert!(
            matches!(plan_subnet(&r), Err(NetworkError::Invalid(_))),
            "pools overlap"
        );
    }
}
