//! Ports: a MAC and fixed addresses on one network, the security groups
//! that filter them, and the device (instance, router, floating address)
//! that holds them.

use std::collections::{BTreeMap, BTreeSet};

use nuage_identity::policy::{authorize, Rule};
use nuage_model::id;
use nuage_model::identity::Principal;
use nuage_store::sqlx::AnyConnection;
use nuage_store::{Db, Tx};
use rand::Rng;

use crate::cidr::{self, Cidr};
use crate::ipam::{self, Want};
use crate::types::{device_owner, prefix, DeviceAddress, FixedIpRequest, NewPort, Port, Subnet};
use crate::{
    check_name, may_read, must_write, now, repo, security, NetworkError, NetworkResult,
    NetworkService, Resource, REVISION_AREA,
};

const MAX_FIXED_IPS: usize = 8;
const MAX_GROUPS: usize = 16;
/// Draws of a random MAC before giving up; with 24 random bits a network
/// would need millions of ports to lose even once.
const MAC_DRAWS: u32 = 8;

/// A MAC with OpenStack's locally administered prefix `fa:16:3e`.
fn random_mac() -> String {
    let b: [u8; 3] = rand::thread_rng().gen();
    format!("fa:16:3e:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2])
}

/// Where each requested address comes from, checked against the
/// network's subnets before anything is written.
fn plan_addresses(
    network: &str,
    subnets: &[Subnet],
    reqs: &[FixedIpRequest],
) -> NetworkResult<Vec<(String, Want)>> {
    if subnets.is_empty() {
        return Err(NetworkError::invalid(format!(
            "network {network} has no subnet to take an address from"
        )));
    }
    if reqs.len() > MAX_FIXED_IPS {
        return Err(NetworkError::invalid(format!(
            "a port has at most {MAX_FIXED_IPS} fixed addresses"
        )));
    }
    let mut out = Vec::with_capacity(reqs.len());
    for r in reqs {
        let ip =
            match &r.ip_address {
                Some(s) => Some(cidr::parse_ip(s.trim()).ok_or_else(|| {
                    NetworkError::invalid(format!("{s:?} is not an IPv4 address"))
                })?),
                None => None,
            };
        let subnet = match (&r.subnet_id, ip) {
            (Some(id), _) => subnets
                .iter()
                .find(|s| &s.id == id)
                .ok_or_else(|| NetworkError::not_found(Resource::Subnet, id))?,
            (None, Some(ip)) => subnets
                .iter()
                .find(|s| s.cidr.parse::<Cidr>().is_ok_and(|c| c.contains(ip)))
                .ok_or_else(|| {
                    NetworkError::invalid(format!("no subnet of network {network} holds {ip}"))
                })?,
            (None, None) => {
                return Err(NetworkError::invalid(
                    "a fixed address names a subnet, an address, or both",
                ))
            }
        };
        out.push((subnet.id.clone(), ip.map(Want::Exact).unwrap_or(Want::Any)));
    }
    Ok(out)
}

/// A port the service inserts: the public paths and the internal ones
/// (router interfaces and gateways, floating addresses) share it.
pub(crate) struct PortSpec<'a> {
    pub project: &'a str,
    pub network: &'a str,
    pub name: &'a str,
    pub owner: &'a str,
    pub device: &'a str,
    /// Explicit addresses; empty means one from the first subnet with room.
    pub addresses: Vec<(String, Want)>,
    pub groups: Vec<String>,
}

/// Inserts the port, allocates its addresses and sets its groups, all in
/// `c`'s transaction.
pub(crate) async fn insert_port(c: &mut AnyConnection, spec: PortSpec<'_>) -> NetworkResult<Port> {
    let t = now();
    let mut port = Port {
        id: id::ec2(prefix::PORT),
        project_id: spec.project.to_string(),
        network_id: spec.network.to_string(),
        name: spec.name.to_string(),
        mac_address: String::new(),
        fixed_ips: Vec::new(),
        device_owner: spec.owner.to_string(),
        device_id: spec.device.to_string(),
        security_groups: Vec::new(),
        generation: 1,
        observed_generation: 0,
        created_at: t,
    };
    let mut inserted = false;
    for _ in 0..MAC_DRAWS {
        port.mac_address = random_mac();
        if repo::insert_port(c, &port, t).await? {
            inserted = true;
            break;
        }
    }
    if !inserted {
        return Err(NetworkError::Conflict(format!(
            "no free MAC address found on network {}; try again",
            spec.network
        )));
    }
    if spec.addresses.is_empty() {
        // The first subnet with a free address.
        let subnets = repo::subnets_of(c, spec.network).await?;
        let mut last = None;
        for s in &subnets {
            match ipam::allocate(c, &s.id, &port.id, Want::Any).await {
                Ok(_) => {
                    last = None;
                    break;
                }
                Err(e @ NetworkError::PoolExhausted { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        if subnets.is_empty() {
            return Err(NetworkError::invalid(format!(
                "network {} has no subnet to take an address from",
                spec.network
            )));
        }
        if last.is_some() {
            return Err(NetworkError::PoolExhausted {
                kind: Resource::Network,
                id: spec.network.to_string(),
            });
        }
    } else {
        for (subnet, want) in &spec.addresses {
            ipam::allocate(c, subnet, &port.id, *want).await?;
        }
    }
    repo::set_port_groups(c, &port.id, &spec.groups).await?;
    repo::get_port(c, &port.id)
        .await?
        .ok_or_else(|| NetworkError::not_found(Resource::Port, &port.id))
}

/// Deletes a port in `c`'s transaction: its floating addresses are
/// disassociated (they stay allocated to the project), its addresses go
/// back to IPAM.
pub(crate) async fn remove_port(c: &mut AnyConnection, id: &str) -> NetworkResult<()> {
    let t = now();
    for fip in repo::fips_on_port(c, id).await? {
        repo::set_fip_association(c, &fip, None, None, None, t).await?;
    }
    ipam::release_port(c, id).await?;
    repo::delete_port_row(c, id).await?;
    Ok(())
}

impl NetworkService {
    /// A port the caller may read; another project's is "not found".
    pub(crate) async fn visible_port(
        &self,
        c: &mut AnyConnection,
        caller: &Principal,
        id: &str,
    ) -> NetworkResult<Port> {
        let p = repo::get_port(c, id)
            .await?
            .ok_or_else(|| NetworkError::not_found(Resource::Port, id))?;
        if may_read(caller, "network:get_port", &p.project_id) {
            Ok(p)
        } else {
            Err(NetworkError::not_found(Resource::Port, id))
        }
    }

    /// The group ids a port of `project` gets: the named ones (each of
    /// that project, or "not found"), or the project's `default` group.
    async fn port_groups(
        &self,
        c: &mut AnyConnection,
        project: &str,
        groups: Option<&[String]>,
    ) -> NetworkResult<Vec<String>> {
        match groups {
            None => Ok(vec![
                security::ensure_default_group(c, project, now()).await?,
            ]),
            Some(ids) => {
                let ids: BTreeSet<&String> = ids.iter().collect();
                if ids.len() > MAX_GROUPS {
                    return Err(NetworkError::invalid(format!(
                        "a port has at most {MAX_GROUPS} security groups"
                    )));
                }
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    match repo::get_sg(c, id).await? {
                        Some(g) if g.project_id == project => out.push(g.id),
                        _ => return Err(NetworkError::not_found(Resource::SecurityGroup, id)),
                    }
                }
                Ok(out)
            }
        }
    }

    /// Creates a port and commits it.
    pub async fn create_port(&self, caller: &Principal, req: NewPort) -> NetworkResult<Port> {
        let mut tx = self.begin().await?;
        let p = self.create_port_in(&mut tx, caller, req).await?;
        self.commit(tx).await?;
        tracing::info!(port = %p.id, network = %p.network_id, "port created");
        Ok(p)
    }

    /// Creates a port inside the caller's transaction: compute's launch
    /// calls this so that the port, its addresses and the instance commit
    /// together (the network revision is bumped in it too). A port goes on a network of the caller's project, or on a
    /// shared one; external networks take only the service's own ports
    /// (router gateways, floating addresses) unless an admin asks.
    pub async fn create_port_in(
        &self,
        tx: &mut Tx,
        caller: &Principal,
        req: NewPort,
    ) -> NetworkResult<Port> {
        check_name("a port's name", &req.name)?;
        check_name("a port's device id", &req.device_id)?;
        if device_owner::is_service(&req.device_owner) || req.device_owner.len() > 255 {
            return Err(NetworkError::invalid(format!(
                "device owner {:?} is reserved for the network service's own ports",
                req.device_owner
            )));
        }
        let n = self.visible_network(tx, caller, &req.network_id).await?;
        if n.external {
            authorize(
                caller,
                "network:create_port_on_external_network",
                Rule::Admin,
            )?;
        }
        let project = if n.shared || n.external {
            caller.project_id.clone()
        } else {
            n.project_id.clone()
        };
        must_write(caller, "network:create_port", &project)?;
        let subnets = repo::subnets_of(tx, &n.id).await?;
        let addresses = if req.fixed_ips.is_empty() {
            if subnets.is_empty() {
                return Err(NetworkError::invalid(format!(
                    "network {} has no subnet to take an address from",
                    n.id
                )));
            }
            Vec::new()
        } else {
            plan_addresses(&n.id, &subnets, &req.fixed_ips)?
        };
        let groups = self
            .port_groups(tx, &project, req.security_groups.as_deref())
            .await?;
        Db::bump_revision(tx, REVISION_AREA).await?;
        insert_port(
            tx,
            PortSpec {
                project: &project,
                network: &n.id,
                name: &req.name,
                owner: &req.device_owner,
                device: &req.device_id,
                addresses,
                groups,
            },
        )
        .await
    }

    pub async fn get_port(&self, caller: &Principal, id: &str) -> NetworkResult<Port> {
        let mut c = self.reader().await?;
        self.visible_port(&mut c, caller, id).await
    }

    /// The caller's project's ports (every project's for an admin asking
    /// for `all_projects`), optionally of one device.
    pub async fn list_ports(
        &self,
        caller: &Principal,
        device_id: Option<&str>,
        all_projects: bool,
    ) -> NetworkResult<Vec<Port>> {
        authorize(
            caller,
            "network:list_ports",
            Rule::ProjectRead(&caller.project_id),
        )?;
        let scope = if all_projects {
            authorize(caller, "network:list_all_ports", Rule::Admin)?;
            None
        } else {
            Some(caller.project_id.as_str())
        };
        let mut c = self.reader().await?;
        Ok(repo::list_ports(&mut c, scope, device_id).await?)
    }

    /// Deletes a port no device holds; a router's or a floating address's
    /// port goes with that resource, an instance's with the instance.
    pub async fn delete_port(&self, caller: &Principal, id: &str) -> NetworkResult<()> {
        let mut tx = self.begin().await?;
        let p = self.visible_port(&mut tx, caller, id).await?;
        must_write(caller, "network:delete_port", &p.project_id)?;
        if !p.device_id.is_empty() {
            return Err(NetworkError::in_use(
                Resource::Port,
                id,
                format!("{} {}", p.device_owner, p.device_id),
            ));
        }
        remove_port(&mut tx, id).await?;
        self.commit(tx).await?;
        tracing::info!(port = %id, "port deleted");
        Ok(())
    }

    /// Deletes every instance port of `device` inside the caller's
    /// transaction (compute's terminate); returns the ids deleted.
    pub async fn delete_device_ports_in(
        &self,
        tx: &mut Tx,
        device_id: &str,
    ) -> NetworkResult<Vec<String>> {
        let ports = repo::ports_of_device(tx, device_id, device_owner::INSTANCE).await?;
        if !ports.is_empty() {
            Db::bump_revision(tx, REVISION_AREA).await?;
        }
        let mut out = Vec::with_capacity(ports.len());
        for p in ports {
            remove_port(tx, &p.id).await?;
            out.push(p.id);
        }
        Ok(out)
    }

    /// The private and public addresses of instances, for describe output
    /// (EC2's PrivateIpAddress/PublicIpAddress, Nova's addresses): one
    /// query per 500 ids, whatever their number. No policy check: the
    /// caller (compute) has authorised the instances it describes.
    pub async fn device_addresses(
        &self,
        devices: &[String],
    ) -> NetworkResult<BTreeMap<String, Vec<DeviceAddress>>> {
        let mut c = self.reader().await?;
        let mut out: BTreeMap<String, Vec<DeviceAddress>> = BTreeMap::new();
        for chunk in devices.chunks(500) {
            let rows = repo::device_addresses(&mut c, chunk).await?;
            let ports: Vec<String> = rows.iter().map(|(_, a)| a.port_id.clone()).collect();
            let groups = repo::ports_groups(&mut c, &ports).await?;
            for (device, mut a) in rows {
                // A port with two addresses holds its groups once per row.
                a.security_groups = groups.get(&a.port_id).cloned().unwrap_or_default();
                out.entry(device).or_default().push(a);
            }
        }
        Ok(out)
    }

    /// Replaces a port's security groups (allowed while its instance runs:
    /// the port's generation grows and the reconciler updates the sets).
    pub async fn set_port_security_groups(
        &self,
        caller: &Principal,
        id: &str,
        groups: &[String],
    ) -> NetworkResult<Port> {
        let mut tx = self.begin().await?;
        let p = self.visible_port(&mut tx, caller, id).await?;
        must_write(caller, "network:update_port", &p.project_id)?;
        let groups = self
            .port_groups(&mut tx, &p.project_id, Some(groups))
            .await?;
        repo::bump_port(&mut tx, id, now()).await?;
        repo::set_port_groups(&mut tx, id, &groups).await?;
        let p = repo::get_port(&mut tx, id)
            .await?
            .ok_or_else(|| NetworkError::not_found(Resource::Port, id))?;
        self.commit(tx).await?;
        Ok(p)
    }
}
