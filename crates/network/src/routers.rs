//! Routers (a project's subnets joined, SNAT out through an external
//! network) and floating addresses (a public address of an external
//! network, translated to one fixed address by the router between them).

use nuage_identity::policy::{authorize, Rule};
use nuage_model::id;
use nuage_model::identity::Principal;
use nuage_store::sqlx::AnyConnection;

use crate::cidr::Cidr;
use crate::ipam::Want;
use crate::ports::{insert_port, remove_port, PortSpec};
use crate::types::{device_owner, prefix, FloatingIp, NewRouter, Router};
use crate::{
    check_name, may_read, must_write, now, repo, NetworkError, NetworkResult, NetworkService,
    Resource,
};

impl NetworkService {
    pub(crate) async fn visible_router(
        &self,
        c: &mut AnyConnection,
        caller: &Principal,
        id: &str,
    ) -> NetworkResult<Router> {
        let r = repo::get_router(c, id)
            .await?
            .ok_or_else(|| NetworkError::not_found(Resource::Router, id))?;
        if may_read(caller, "network:get_router", &r.project_id) {
            Ok(r)
        } else {
            Err(NetworkError::not_found(Resource::Router, id))
        }
    }

    pub(crate) async fn visible_fip(
        &self,
        c: &mut AnyConnection,
        caller: &Principal,
        id: &str,
    ) -> NetworkResult<FloatingIp> {
        let f = repo::get_fip(c, id)
            .await?
            .ok_or_else(|| NetworkError::not_found(Resource::FloatingIp, id))?;
        if may_read(caller, "network:get_floating_ip", &f.project_id) {
            Ok(f)
        } else {
            Err(NetworkError::not_found(Resource::FloatingIp, id))
        }
    }

    /// Points the router's gateway at `network` (external), or removes it
    /// with `None`; in `c`'s transaction, the router's row locked.
    async fn put_gateway(
        &self,
        c: &mut AnyConnection,
        caller: &Principal,
        router: &Router,
        network: Option<&str>,
    ) -> NetworkResult<()> {
        if router.external_network_id.as_deref() == network {
            return Ok(());
        }
        if let Some(old) = &router.gateway_port_id {
            if let Some(fip) = repo::fip_via_router(c, &router.id, None).await? {
                return Err(NetworkError::in_use(
                    Resource::Router,
                    &router.id,
                    format!("floating IP {fip}, which needs its gateway"),
                ));
            }
            repo::set_router_gateway(c, &router.id, None, None).await?;
            remove_port(c, old).await?;
        }
        if let Some(net) = network {
            let n = self.visible_network(c, caller, net).await?;
            if !n.external {
                return Err(NetworkError::invalid(format!(
                    "network {net} is not external; a router's gateway needs an external network"
                )));
            }
            let port = insert_port(
                c,
                PortSpec {
                    project: &router.project_id,
                    network: &n.id,
                    name: "",
                    owner: device_owner::ROUTER_GATEWAY,
                    device: &router.id,
                    addresses: Vec::new(),
                    groups: Vec::new(),
                },
            )
            .await?;
            repo::set_router_gateway(c, &router.id, Some(&n.id), Some(&port.id)).await?;
        }
        Ok(())
    }

    pub async fn create_router(&self, caller: &Principal, req: NewRouter) -> NetworkResult<Router> {
        let project = caller.project_id.clone();
        authorize(
            caller,
            "network:create_router",
            Rule::ProjectWrite(&project),
        )?;
        check_name("a router's name", &req.name)?;
        let t = now();
        let r = Router {
            id: id::ec2(prefix::ROUTER),
            project_id: project,
            name: req.name,
            external_network_id: None,
            external_ip: None,
            gateway_port_id: None,
            interfaces: Vec::new(),
            generation: 1,
            observed_generation: 0,
            created_at: t,
        };
        let mut tx = self.begin().await?;
        repo::insert_router(&mut tx, &r, t).await?;
        self.put_gateway(&mut tx, caller, &r, req.external_network_id.as_deref())
            .await?;
        let r = repo::get_router(&mut tx, &r.id)
            .await?
            .ok_or_else(|| NetworkError::not_found(Resource::Router, &r.id))?;
        self.commit(tx).await?;
        tracing::info!(router = %r.id, project = %r.project_id, "router created");
        Ok(r)
    }

    pub async fn get_router(&self, caller: &Principal, id: &str) -> NetworkResult<Router> {
        let mut c = self.reader().await?;
        self.visible_router(&mut c, caller, id).await
    }

    pub async fn list_routers(
        &self,
        caller: &Principal,
        all_projects: bool,
    ) -> NetworkResult<Vec<Router>> {
        authorize(
            caller,
            "network:list_routers",
            Rule::ProjectRead(&caller.project_id),
        )?;
        let scope = if all_projects {
            authorize(caller, "network:list_all_routers", Rule::Admin)?;
            None
        } else {
            Some(caller.project_id.as_str())
        };
        let mut c = self.reader().await?;
        Ok(repo::list_routers(&mut c, scope).await?)
    }

    /// Sets (or with `None` clears) the router's external gateway; clearing
    /// is refused while floating addresses go through it.
    pub async fn set_router_gateway(
        &self,
        caller: &Principal,
        id: &str,
        network: Option<&str>,
    ) -> NetworkResult<Router> {
        let mut tx = self.begin().await?;
        let r = self.visible_router(&mut tx, caller, id).await?;
        must_write(caller, "network:update_router", &r.project_id)?;
        repo::bump_router(&mut tx, id, now()).await?;
        self.put_gateway(&mut tx, caller, &r, network).await?;
        let r = repo::get_router(&mut tx, id)
            .await?
            .ok_or_else(|| NetworkError::not_found(Resource::Router, id))?;
        self.commit(tx).await?;
        Ok(r)
    }

    /// Joins a subnet of the router's project to the router: the interface
    /// takes the subnet's gateway address, so a subnet has one router.
    pub async fn add_router_interface(
        &self,
        caller: &Principal,
        id: &str,
        subnet: &str,
    ) -> NetworkResult<Router> {
        let mut tx = self.begin().await?;
        let r = self.visible_router(&mut tx, caller, id).await?;
        must_write(caller, "network:add_router_interface", &r.project_id)?;
        repo::bump_router(&mut tx, id, now()).await?;
        join_subnet(&mut tx, &r.project_id, id, subnet).await?;
        let r = repo::get_router(&mut tx, id)
            .await?
            .ok_or_else(|| NetworkError::not_found(Resource::Router, id))?;
        self.commit(tx).await?;
        tracing::info!(router = %id, subnet = %subnet, "router interface added");
        Ok(r)
    }

    /// Makes the router the gateway of a whole network (EC2's
    /// AttachInternetGateway): it joins every subnet of `network`, all or
    /// none, in one transaction, so a crash never leaves half a VPC
    /// routed. Refused with `InUse` of the router when it already has
    /// interfaces (a router attached this way serves one network), and
    /// with `InUse` of a subnet when another router serves one of them.
    /// Subnets made later join when the router is attached again.
    pub async fn attach_router_to_network(
        &self,
        caller: &Principal,
        id: &str,
        network: &str,
    ) -> NetworkResult<Router> {
        let mut tx = self.begin().await?;
        let r = self.visible_router(&mut tx, caller, id).await?;
        must_write(caller, "network:add_router_interface", &r.project_id)?;
        // The bump locks the router's row: the interface check below
        // cannot race another attach.
        repo::bump_router(&mut tx, id, now()).await?;
        let r = repo::get_router(&mut tx, id)
            .await?
            .ok_or_else(|| NetworkError::not_found(Resource::Router, id))?;
        let n = self.visible_network(&mut tx, caller, network).await?;
        if n.project_id != r.project_id || n.external {
            return Err(NetworkError::not_found(Resource::Network, network));
        }
        if let Some(i) = r.interfaces.first() {
            return Err(NetworkError::in_use(
                Resource::Router,
                id,
                format!("its interface on subnet {}", i.subnet_id),
            ));
        }
        for s in repo::subnets_of(&mut tx, &n.id).await? {
            // A refusal drops `tx`: the interfaces joined before it go too.
            join_subnet(&mut tx, &r.project_id, id, &s.id).await?;
        }
        let r = repo::get_router(&mut tx, id)
            .await?
            .ok_or_else(|| NetworkError::not_found(Resource::Router, id))?;
        self.commit(tx).await?;
        tracing::info!(router = %id, network = %network, "router attached to network");
        Ok(r)
    }

    /// Detaches a subnet; refused while a floating address of that subnet
    /// goes through this router.
    pub async fn remove_router_interface(
        &self,
        caller: &Principal,
        id: &str,
        subnet: &str,
    ) -> NetworkResult<Router> {
        let mut tx = self.begin().await?;
        let r = self.visible_router(&mut tx, caller, id).await?;
        must_write(caller, "network:remove_router_interface", &r.project_id)?;
        repo::bump_router(&mut tx, id, now()).await?;
        let Some(i) = r.interfaces.iter().find(|i| i.subnet_id == subnet) else {
            return Err(NetworkError::not_found(Resource::Subnet, subnet));
        };
        leave_subnet(&mut tx, id, subnet, &i.port_id).await?;
        let r = repo::get_router(&mut tx, id)
            .await?
            .ok_or_else(|| NetworkError::not_found(Resource::Router, id))?;
        self.commit(tx).await?;
        tracing::info!(router = %id, subnet = %subnet, "router interface removed");
        Ok(r)
    }

    /// Takes the router off every subnet of `network` (EC2's
    /// DetachInternetGateway), all or none, in one transaction: refused
    /// while a floating address of one of them goes through the router,
    /// and `NotAttached` when the router joins none of them.
    pub async fn detach_router_from_network(
        &self,
        caller: &Principal,
        id: &str,
        network: &str,
    ) -> NetworkResult<Router> {
        let mut tx = self.begin().await?;
        let r = self.visible_router(&mut tx, caller, id).await?;
        must_write(caller, "network:remove_router_interface", &r.project_id)?;
        repo::bump_router(&mut tx, id, now()).await?;
        let r = repo::get_router(&mut tx, id)
            .await?
            .ok_or_else(|| NetworkError::not_found(Resource::Router, id))?;
        let n = self.visible_network(&mut tx, caller, network).await?;
        if n.project_id != r.project_id {
            return Err(NetworkError::not_found(Resource::Network, network));
        }
        let mine: Vec<_> = r
            .interfaces
            .iter()
            .filter(|i| n.subnets.contains(&i.subnet_id))
            .collect();
        if mine.is_empty() {
            return Err(NetworkError::NotAttached {
                router: id.to_string(),
                network: network.to_string(),
            });
        }
        for i in mine {
            leave_subnet(&mut tx, id, &i.subnet_id, &i.port_id).await?;
        }
        let r = repo::get_router(&mut tx, id)
            .await?
            .ok_or_else(|| NetworkError::not_found(Resource::Router, id))?;
        self.commit(tx).await?;
        tracing::info!(router = %id, network = %network, "router detached from network");
        Ok(r)
    }

    /// Deletes a router without interfaces (its gateway goes with it).
    pub async fn delete_router(&self, caller: &Principal, id: &str) -> NetworkResult<()> {
        let mut tx = self.begin().await?;
        let r = self.visible_router(&mut tx, caller, id).await?;
        must_write(caller, "network:delete_router", &r.project_id)?;
        repo::bump_router(&mut tx, id, now()).await?;
        if let Some(i) = r.interfaces.first() {
            return Err(NetworkError::in_use(
                Resource::Router,
                id,
                format!("its interface on subnet {}", i.subnet_id),
            ));
        }
        self.put_gateway(&mut tx, caller, &r, None).await?;
        repo::delete_router(&mut tx, id).await?;
        self.commit(tx).await?;
        tracing::info!(router = %id, "router deleted");
        Ok(())
    }

    /// Allocates a floating address to the caller's project from an
    /// external network (`network`, or the first one), within the
    /// project's `floating_ips` quota.
    pub async fn allocate_floating_ip(
        &self,
        caller: &Principal,
        network: Option<&str>,
    ) -> NetworkResult<FloatingIp> {
        let project = caller.project_id.clone();
        authorize(
            caller,
            "network:allocate_floating_ip",
            Rule::ProjectWrite(&project),
        )?;
        let limit = self
            .inner
            .identity
            .quota_limit(&project, "floating_ips")
            .await?;
        let mut tx = self.begin().await?;
        let net = match network {
            Some(id) => {
                let n = self.visible_network(&mut tx, caller, id).await?;
                if !n.external {
                    return Err(NetworkError::invalid(format!(
                        "network {id} is not external; floating IPs come from external networks"
                    )));
                }
                n
            }
            None => repo::list_networks(&mut tx, None)
                .await?
                .into_iter()
                .find(|n| n.external)
                .ok_or_else(|| {
                    NetworkError::invalid("no external network is configured for floating IPs")
                })?,
        };
        let t = now();
        // The count and the insert under the project's lock: two
        // allocations racing for the last unit cannot both pass.
        repo::lock_project(&mut tx, &project, t).await?;
        let used = repo::count_fips(&mut tx, &project).await?;
        if limit >= 0 && used >= limit {
            return Err(NetworkError::QuotaExceeded {
                resource: "floating_ips",
                limit,
                used,
            });
        }
        let fip_id = id::ec2(prefix::FLOATING_IP);
        let port = insert_port(
            &mut tx,
            PortSpec {
                project: &project,
                network: &net.id,
                name: "",
                owner: device_owner::FLOATING_IP,
                device: &fip_id,
                addresses: Vec::new(),
                groups: Vec::new(),
            },
        )
        .await?;
        let ip = port
            .fixed_ips
            .first()
            .and_then(|f| crate::cidr::parse_ip(&f.ip_address))
            .ok_or_else(|| NetworkError::Internal(format!("port {} got no address", port.id)))?;
        let f = FloatingIp {
            id: fip_id,
            project_id: project,
            network_id: net.id.clone(),
            floating_ip_address: ip.to_string(),
            port_id: None,
            fixed_ip_address: None,
            router_id: None,
            generation: 1,
            observed_generation: 0,
            created_at: t,
        };
        repo::insert_fip(&mut tx, &f, u32::from(ip), &port.id, t).await?;
        self.commit(tx).await?;
        tracing::info!(floating_ip = %f.id, address = %f.floating_ip_address, project = %f.project_id, "floating IP allocated");
        Ok(f)
    }

    pub async fn get_floating_ip(&self, caller: &Principal, id: &str) -> NetworkResult<FloatingIp> {
        let mut c = self.reader().await?;
        self.visible_fip(&mut c, caller, id).await
    }

    pub async fn list_floating_ips(
        &self,
        caller: &Principal,
        all_projects: bool,
    ) -> NetworkResult<Vec<FloatingIp>> {
        authorize(
            caller,
            "network:list_floating_ips",
            Rule::ProjectRead(&caller.project_id),
        )?;
        let scope = if all_projects {
            authorize(caller, "network:list_all_floating_ips", Rule::Admin)?;
            None
        } else {
            Some(caller.project_id.as_str())
        };
        let mut c = self.reader().await?;
        Ok(repo::list_fips(&mut c, scope).await?)
    }

    /// Associates a floating address with a fixed address of a port of the
    /// same project (its first one when `fixed_ip` is `None`); a router of
    /// the project must join that subnet to the address's network. An
    /// associated address moves to the new port (EC2's reassociation).
    pub async fn associate_floating_ip(
        &self,
        caller: &Principal,
        id: &str,
        port: &str,
        fixed_ip: Option<&str>,
    ) -> NetworkResult<FloatingIp> {
        let mut tx = self.begin().await?;
        let f = self.visible_fip(&mut tx, caller, id).await?;
        must_write(caller, "network:associate_floating_ip", &f.project_id)?;
        let p = match self.visible_port(&mut tx, caller, port).await {
            Ok(p) if p.project_id == f.project_id => p,
            Ok(_) | Err(NetworkError::NotFound { .. }) => {
                return Err(NetworkError::not_found(Resource::Port, port))
            }
            Err(e) => return Err(e),
        };
        if device_owner::is_service(&p.device_owner) {
            return Err(NetworkError::invalid(format!(
                "port {port} belongs to the network service ({}); associate an instance's port",
                p.device_owner
            )));
        }
        let fixed = match fixed_ip {
            Some(ip) => p
                .fixed_ips
                .iter()
                .find(|x| x.ip_address == ip.trim())
                .ok_or_else(|| {
                    NetworkError::invalid(format!("port {port} has no fixed address {ip}"))
                })?,
            None => p.fixed_ips.first().ok_or_else(|| {
                NetworkError::invalid(format!("port {port} has no fixed address"))
            })?,
        };
        let router = repo::router_between(&mut tx, &f.project_id, &f.network_id, &fixed.subnet_id)
            .await?
            .ok_or_else(|| NetworkError::NotReachable {
                network: f.network_id.clone(),
                subnet: fixed.subnet_id.clone(),
            })?;
        if let Some(other) = repo::fip_on_fixed(&mut tx, port, &fixed.ip_address).await? {
            if other != id {
                return Err(NetworkError::in_use(
                    Resource::Port,
                    port,
                    format!("floating IP {other} on {}", fixed.ip_address),
                ));
            }
        }
        repo::set_fip_association(
            &mut tx,
            id,
            Some(port),
            Some(&fixed.ip_address),
            Some(&router),
            now(),
        )
        .await?;
        let f = repo::get_fip(&mut tx, id)
            .await?
            .ok_or_else(|| NetworkError::not_found(Resource::FloatingIp, id))?;
        self.commit(tx).await?;
        tracing::info!(floating_ip = %id, port = %port, router = %router, "floating IP associated");
        Ok(f)
    }

    pub async fn disassociate_floating_ip(
        &self,
        caller: &Principal,
        id: &str,
    ) -> NetworkResult<FloatingIp> {
        let mut tx = self.begin().await?;
        let f = self.visible_fip(&mut tx, caller, id).await?;
        must_write(caller, "network:disassociate_floating_ip", &f.project_id)?;
        if f.port_id.is_some() {
            repo::set_fip_association(&mut tx, id, None, None, None, now()).await?;
        }
        let f = repo::get_fip(&mut tx, id)
            .await?
            .ok_or_else(|| NetworkError::not_found(Resource::FloatingIp, id))?;
        self.commit(tx).await?;
        Ok(f)
    }

    /// Gives the address back to its external network (disassociating it
    /// first), which frees a unit of the project's quota.
    pub async fn release_floating_ip(&self, caller: &Principal, id: &str) -> NetworkResult<()> {
        let mut tx = self.begin().await?;
        let f = self.visible_fip(&mut tx, caller, id).await?;
        must_write(caller, "network:release_floating_ip", &f.project_id)?;
        let port = repo::fip_address_port(&mut tx, id)
            .await?
            .ok_or_else(|| NetworkError::not_found(Resource::FloatingIp, id))?;
        repo::delete_fip(&mut tx, id).await?;
        remove_port(&mut tx, &port).await?;
        self.commit(tx).await?;
        tracing::info!(floating_ip = %id, "floating IP released");
        Ok(())
    }
}

/// Adds the interface of router `id` (of `project`, its row locked by the
/// caller's bump) on `subnet`, in `c`'s transaction.
async fn join_subnet(
    c: &mut AnyConnection,
    project: &str,
    id: &str,
    subnet: &str,
) -> NetworkResult<()> {
    let missing = || NetworkError::not_found(Resource::Subnet, subnet);
    let s = repo::get_subnet(c, subnet).await?.ok_or_else(missing)?;
    let n = repo::get_network(c, &s.network_id)
        .await?
        .ok_or_else(missing)?;
    if n.project_id != project {
        return Err(missing());
    }
    if n.external {
        return Err(NetworkError::invalid(format!(
            "subnet {subnet} is on an external network; set it as the router's gateway instead"
        )));
    }
    let r = repo::get_router(c, id)
        .await?
        .ok_or_else(|| NetworkError::not_found(Resource::Router, id))?;
    let cidr: Cidr = s
        .cidr
        .parse()
        .map_err(|e| NetworkError::Internal(format!("stored CIDR {}: {e}", s.cidr)))?;
    for i in &r.interfaces {
        if i.subnet_id == subnet {
            return Err(NetworkError::Conflict(format!(
                "router {id} already has an interface on subnet {subnet}"
            )));
        }
        if let Some(other) = repo::get_subnet(c, &i.subnet_id).await? {
            if other.cidr.parse::<Cidr>().is_ok_and(|o| o.overlaps(cidr)) {
                return Err(NetworkError::OverlappingCidr {
                    cidr: s.cidr.clone(),
                    network: format!("router {id}"),
                    existing: other.id,
                    existing_cidr: other.cidr,
                });
            }
        }
    }
    let added = insert_port(
        c,
        PortSpec {
            project,
            network: &n.id,
            name: "",
            owner: device_owner::ROUTER_INTERFACE,
            device: id,
            addresses: vec![(subnet.to_string(), Want::Gateway)],
            groups: Vec::new(),
        },
    )
    .await;
    match added {
        Ok(_) => Ok(()),
        Err(NetworkError::AddressInUse { .. }) => Err(NetworkError::in_use(
            Resource::Subnet,
            subnet,
            "another port holding its gateway address (another router's interface)",
        )),
        Err(e) => Err(e),
    }
}

/// Removes router `id`'s interface `port` on `subnet`, in `c`'s
/// transaction; refused while a floating address of that subnet goes
/// through the router.
async fn leave_subnet(
    c: &mut AnyConnection,
    id: &str,
    subnet: &str,
    port: &str,
) -> NetworkResult<()> {
    if let Some(fip) = repo::fip_via_router(c, id, Some(subnet)).await? {
        return Err(NetworkError::in_use(
            Resource::Router,
            id,
            format!("floating IP {fip} of subnet {subnet}"),
        ));
    }
    remove_port(c, port).await
}
