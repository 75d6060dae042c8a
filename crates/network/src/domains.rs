//! Routing domains from the store: what router namespaces a node must
//! have (ADR 22). A Neutron router with an interface on a network holding
//! instance ports is one domain; every other network with instance ports
//! gets an implicit domain of its own, keyed `net:<network id>` (EC2's VPC
//! router), so every instance has a gateway that answers and two networks
//! of different domains never share a routing table.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use nuage_netdriver::services::{RouterDomain, ServiceLink};
use nuage_netdriver::{ExternalGateway, FloatingAddress, Ipv4Cidr, RouterLink, RouterSpec};
use nuage_store::sqlx::AnyConnection;
use nuage_store::StoreError;

use crate::cidr::Cidr;
use crate::repo::{self, Observable};
use crate::types::{FloatingIp, Router};

/// The implicit domain of a network no router serves.
pub fn implicit_key(network_id: &str) -> String {
    format!("net:{network_id}")
}

/// A subnet as domains need it.
#[derive(Debug, Clone)]
pub(crate) struct SubnetBrief {
    pub id: String,
    pub network_id: String,
    pub cidr: Cidr,
    pub gateway: Option<Ipv4Addr>,
}

/// Every domain the node must have, with the rows they apply (routers and
/// floating addresses, at the generations read).
pub(crate) struct Desired {
    pub routers: Vec<RouterSpec>,
    pub observed: Vec<(Observable, String, i64)>,
    /// Each linked network's VLAN, so its bridge can be made first.
    pub vlans: BTreeMap<String, Option<u16>>,
}

/// Reads the store and computes the domains (four queries plus two per
/// router for its interfaces and gateway address).
pub(crate) async fn read(c: &mut AnyConnection) -> Result<Desired, StoreError> {
    let vlans: BTreeMap<String, Option<u16>> = repo::vlans_of_instance_networks(c)
        .await?
        .into_iter()
        .map(|(n, v)| (n, v.and_then(|v| u16::try_from(v).ok())))
        .collect();
    let nets: BTreeSet<String> = vlans.keys().cloned().collect();
    let subnets: Vec<SubnetBrief> = repo::all_subnets_brief(c)
        .await?
        .into_iter()
        .filter_map(|(id, network_id, cidr, gw)| {
            let cidr = cidr.parse::<Cidr>().ok()?;
            Some(SubnetBrief {
                id,
                network_id,
                cidr,
                gateway: gw.as_deref().and_then(crate::cidr::parse_ip),
            })
        })
        .collect();
    let routers = repo::list_routers(c, None).await?;
    let fips = repo::list_fips(c, None).await?;
    let mut d = compute(&nets, &subnets, &routers, &fips);
    d.vlans = vlans;
    Ok(d)
}

fn gateways_of(subnets: &[SubnetBrief], network: &str) -> Vec<Ipv4Cidr> {
    subnets
        .iter()
        .filter(|s| s.network_id == network)
        .filter_map(|s| {
            s.gateway.map(|g| Ipv4Cidr {
                addr: g,
                prefix: s.cidr.prefix(),
            })
        })
        .collect()
}

/// The domains, as a pure function of what was read. A router's link on a
/// network holds the gateways of all that network's subnets (the
/// network's instances must all reach a gateway; the one a router
/// interface took is the subnet's anyway). A router without an interface
/// on a network with instance ports has nothing to serve on this node and
/// gets no namespace. A network is claimed by the first router (by
/// creation) with an interface on it.
pub(crate) fn compute(
    nets: &BTreeSet<String>,
    subnets: &[SubnetBrief],
    routers: &[Router],
    fips: &[FloatingIp],
) -> Desired {
    let network_of: BTreeMap<&str, &SubnetBrief> =
        subnets.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut claimed: BTreeSet<&str> = BTreeSet::new();
    let mut out = Desired {
        routers: Vec::new(),
        observed: Vec::new(),
        vlans: BTreeMap::new(),
    };
    for r in routers {
        let mut links: Vec<RouterLink> = Vec::new();
        for i in &r.interfaces {
            let Some(s) = network_of.get(i.subnet_id.as_str()) else {
                continue;
            };
            let n = s.network_id.as_str();
            if !nets.contains(n) || claimed.contains(n) {
                continue;
            }
            claimed.insert(n);
            links.push(RouterLink {
                network_id: n.to_string(),
                gateways: gateways_of(subnets, n),
            });
        }
        if links.is_empty() {
            continue;
        }
        let external = external_of(r, subnets, fips);
        out.routers.push(RouterSpec {
            key: r.id.clone(),
            links,
            external,
        });
        out.observed
            .push((Observable::Router, r.id.clone(), r.generation));
        for f in fips
            .iter()
            .filter(|f| f.router_id.as_deref() == Some(&r.id))
        {
            out.observed
                .push((Observable::FloatingIp, f.id.clone(), f.generation));
        }
    }
    for n in nets.iter().filter(|n| !claimed.contains(n.as_str())) {
        out.routers.push(RouterSpec {
            key: implicit_key(n),
            links: vec![RouterLink {
                network_id: n.clone(),
                gateways: gateways_of(subnets, n),
            }],
            external: None,
        });
    }
    out
}

/// The router's external leg: its gateway port's address with the prefix
/// of the external subnet holding it, that subnet's gateway, and the
/// floating addresses associated through it.
fn external_of(
    r: &Router,
    subnets: &[SubnetBrief],
    fips: &[FloatingIp],
) -> Option<ExternalGateway> {
    let net = r.external_network_id.as_deref()?;
    let ip = r.external_ip.as_deref().and_then(crate::cidr::parse_ip)?;
    let s = subnets
        .iter()
        .find(|s| s.network_id == net && s.cidr.contains(ip))?;
    let mut floating: Vec<FloatingAddress> = fips
        .iter()
        .filter(|f| f.router_id.as_deref() == Some(&r.id))
        .filter_map(|f| {
            Some(FloatingAddress {
                public: crate::cidr::parse_ip(&f.floating_ip_address)?,
                fixed: crate::cidr::parse_ip(f.fixed_ip_address.as_deref()?)?,
            })
        })
        .collect();
    floating.sort();
    Some(ExternalGateway {
        address: Ipv4Cidr {
            addr: ip,
            prefix: s.cidr.prefix(),
        },
        gateway: s.gateway,
        floating,
    })
}

/// Whether an observed namespace holds what its spec asks: the same
/// networks with the same gateways, the same external addresses, its
/// table (when the observation listed it) as applied.
pub(crate) fn as_wanted(o: &nuage_netdriver::ObservedRouter, spec: &RouterSpec) -> bool {
    let sorted = |v: &[Ipv4Cidr]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    let have: BTreeMap<&str, Vec<Ipv4Cidr>> = o
        .links
        .iter()
        .map(|l| (l.network_id.as_str(), sorted(&l.addresses)))
        .collect();
    let want: BTreeMap<&str, Vec<Ipv4Cidr>> = spec
        .links
        .iter()
        .map(|l| (l.network_id.as_str(), sorted(&l.gateways)))
        .collect();
    let ext_want = spec.external.as_ref().map(|e| {
        let mut a = vec![e.address];
        a.extend(e.floating.iter().map(|f| Ipv4Cidr {
            addr: f.public,
            prefix: 32,
        }));
        sorted(&a)
    });
    o.links.iter().all(|l| l.attached)
        && o.table != Some(false)
        && have == want
        && o.external.as_deref().map(sorted) == ext_want
}

/// What the instance services are told of a domain: its namespace and,
/// per gateway, the interface it is on.
pub(crate) fn service_view(spec: &RouterSpec, netns: std::path::PathBuf) -> RouterDomain {
    RouterDomain {
        key: spec.key.clone(),
        netns,
        links: spec
            .links
            .iter()
            .flat_map(|l| {
                l.gateways.iter().map(|g| ServiceLink {
                    network_id: l.network_id.clone(),
                    ifname: nuage_netdriver::router_link_ifname(&l.network_id),
                    gateway: g.addr,
                    prefix: g.prefix,
                })
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::RouterInterface;

    fn subnet(id: &str, net: &str, cidr: &str, gw: &str) -> SubnetBrief {
        SubnetBrief {
            id: id.into(),
            network_id: net.into(),
            cidr: cidr.parse().expect("cidr"),
            gateway: gw.parse().ok(),
        }
    }

    fn router(id: &str, subnets: &[&str], external: Option<(&str, &str)>) -> Router {
        Router {
            id: id.into(),
            project_id: "p".into(),
            name: String::new(),
            external_network_id: external.map(|e| e.0.to_string()),
            external_ip: external.map(|e| e.1.to_string()),
            gateway_port_id: external.map(|_| "eni-gw".to_string()),
            interfaces: subnets
                .iter()
                .map(|s| RouterInterface {
                    subnet_id: s.to_string(),
                    port_id: format!("eni-{s}"),
                    ip_address: String::new(),
                })
                .collect(),
            generation: 3,
            observed_generation: 0,
            created_at: 0,
        }
    }

    #[test]
    fn routers_claim_networks_and_the_rest_get_implicit_domains() {
        let nets: BTreeSet<String> = ["vpc-a", "vpc-b", "vpc-c"].map(String::from).into();
        let subnets = [
            subnet("subnet-a", "vpc-a", "10.0.0.0/16", "10.0.0.1"),
            subnet("subnet-b", "vpc-b", "10.0.0.0/16", "10.0.0.1"),
            subnet("subnet-c", "vpc-c", "10.1.0.0/24", "10.1.0.1"),
            subnet("subnet-x", "vpc-x", "10.9.0.0/24", "10.9.0.1"),
            subnet("subnet-ext", "vpc-ext", "192.168.100.0/24", "192.168.100.1"),
        ];
        let routers = [
            router(
                "rtr-1",
                &["subnet-a", "subnet-c"],
                Some(("vpc-ext", "192.168.100.10")),
            ),
            // Nothing of it has instances here: no namespace.
            router("rtr-2", &["subnet-x"], None),
        ];
        let fips = [FloatingIp {
            id: "eipalloc-1".into(),
            project_id: "p".into(),
            network_id: "vpc-ext".into(),
            floating_ip_address: "192.168.100.20".into(),
            port_id: Some("eni-i".into()),
            fixed_ip_address: Some("10.0.0.5".into()),
            router_id: Some("rtr-1".into()),
            generation: 2,
            observed_generation: 0,
            created_at: 0,
        }];
        let d = compute(&nets, &subnets, &routers, &fips);
        let keys: Vec<_> = d.routers.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["rtr-1", "net:vpc-b"]);
        let r = &d.routers[0];
        let linked: Vec<_> = r.links.iter().map(|l| l.network_id.as_str()).collect();
        assert_eq!(linked, ["vpc-a", "vpc-c"]);
        let e = r.external.as_ref().expect("external leg");
        assert_eq!(e.address.to_string(), "192.168.100.10/24");
        assert_eq!(e.gateway, Some(Ipv4Addr::new(192, 168, 100, 1)));
        assert_eq!(
            e.floating,
            [FloatingAddress {
                public: Ipv4Addr::new(192, 168, 100, 20),
                fixed: Ipv4Addr::new(10, 0, 0, 5)
            }]
        );
        assert_eq!(d.routers[1].links[0].gateways[0].to_string(), "10.0.0.1/16");
        assert_eq!(
            d.observed,
            [
                (Observable::Router, "rtr-1".to_string(), 3),
                (Observable::FloatingIp, "eipalloc-1".to_string(), 2)
            ]
        );
        let v = service_view(&d.routers[1], "/x/net:vpc-b".into());
        assert_eq!(v.links[0].gateway, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(v.links[0].prefix, 16);
    }
}
