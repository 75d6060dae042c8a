//! The network service on both store engines: IPAM under concurrency,
//! refusals that change nothing, default networks, security groups,
//! floating addresses and project isolation.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Instant;

use nuage_identity::{Bootstrap, Identity, IdentityConfig, NewProject};
use nuage_model::identity::Principal;
use nuage_model::{ErrorKind, HasKind};
use nuage_network::types::{
    Direction, FixedIpRequest, Network, NewNetwork, NewPort, NewRouter, NewRule, NewSecurityGroup,
    NewSubnet, Pool, RuleMatch, Subnet,
};
use nuage_network::{NetworkConfig, NetworkError, NetworkService, Resource};
use nuage_store::sqlx;
use nuage_store::testing::{fresh, TestDb, ENGINES};

/// What a refused request must have answered.
type Expect = fn(&NetworkError) -> bool;

struct World {
    t: TestDb,
    identity: Identity,
    net: NetworkService,
    admin: Principal,
    /// A member of project A.
    a: Principal,
    /// A member of project B.
    b: Principal,
}

fn member(project: &str, user: &str) -> Principal {
    Principal {
        user_id: user.into(),
        user_name: user.into(),
        domain_id: "default".into(),
        project_id: project.into(),
        project_name: project.into(),
        project_domain_id: "default".into(),
        roles: vec!["member".into(), "reader".into()],
        method: "token".into(),
        audit_id: String::new(),
        expires_at: i64::MAX,
    }
}

async fn world(engine: &str) -> World {
    let t = fresh(engine).await.expect("db");
    let identity = Identity::open(t.db.clone(), IdentityConfig::default())
        .await
        .expect("identity");
    let out = identity
        .bootstrap(Bootstrap {
            admin_password: Some("admin-password-1".into()),
            access_key: None,
        })
        .await
        .expect("bootstrap");
    let mut admin = member(&out.admin_project_id, &out.admin_user_id);
    admin.roles.push("admin".into());
    let mut projects = Vec::new();
    for name in ["alpha", "beta"] {
        let p = identity
            .create_project(
                &admin,
                NewProject {
                    name: name.into(),
                    enabled: true,
                    ..Default::default()
                },
            )
            .await
            .expect("project");
        projects.push(p.id);
    }
    let net = NetworkService::new(t.db.clone(), identity.clone(), NetworkConfig::default())
        .expect("network service");
    World {
        a: member(&projects[0], "ua"),
        b: member(&projects[1], "ub"),
        t,
        identity,
        net,
        admin,
    }
}

async fn network_with_subnet(w: &World, who: &Principal, cidr: &str) -> (Network, Subnet) {
    let n = w
        .net
        .create_network(
            who,
            NewNetwork {
                name: "n".into(),
                ..Default::default()
            },
        )
        .await
        .expect("network");
    let s = w
        .net
        .create_subnet(
            who,
            NewSubnet {
                network_id: n.id.clone(),
                cidr: cidr.into(),
                ..Default::default()
            },
        )
        .await
        .expect("subnet");
    (n, s)
}

fn port_on(network: &str) -> NewPort {
    NewPort {
        network_id: network.into(),
        ..Default::default()
    }
}

async fn count(w: &World, table: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(w.t.db.reader())
        .await
        .expect("count");
    n
}

/// An external network with a /24 subnet, made by the admin.
async fn external(w: &World, cidr: &str) -> Network {
    let n = w
        .net
        .create_network(
            &w.admin,
            NewNetwork {
                name: "public".into(),
                external: true,
                ..Default::default()
            },
        )
        .await
        .expect("external network");
    w.net
        .create_subnet(
            &w.admin,
            NewSubnet {
                network_id: n.id.clone(),
                cidr: cidr.into(),
                ..Default::default()
            },
        )
        .await
        .expect("external subnet");
    n
}

/// 50 ports created at once on one subnet: 50 distinct addresses, the 50
/// lowest of the pool, on both engines (PostgreSQL runs them truly in
/// parallel on 16 connections).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_allocations_never_duplicate() {
    for engine in ENGINES {
        let w = world(engine).await;
        let (n, s) = network_with_subnet(&w, &w.a, "10.20.0.0/24").await;
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let net = w.net.clone();
            let who = w.a.clone();
            let id = n.id.clone();
            tasks.push(tokio::spawn(async move {
                net.create_port(&who, port_on(&id)).await
            }));
        }
        let mut addresses = BTreeSet::new();
        let mut macs = BTreeSet::new();
        for t in tasks {
            let p = t.await.expect("task").expect("port");
            assert_eq!(p.fixed_ips.len(), 1, "{engine}");
            assert_eq!(p.fixed_ips[0].subnet_id, s.id, "{engine}");
            addresses.insert(p.fixed_ips[0].ip_address.parse::<Ipv4Addr>().expect("ip"));
            macs.insert(p.mac_address);
        }
        assert_eq!(addresses.len(), 50, "{engine}: an address was given twice");
        assert_eq!(macs.len(), 50, "{engine}: a MAC was given twice");
        let expected: BTreeSet<Ipv4Addr> = (2..52).map(|i| Ipv4Addr::new(10, 20, 0, i)).collect();
        assert_eq!(
            addresses, expected,
            "{engine}: not the lowest free addresses"
        );
        assert_eq!(count(&w, "port_ips").await, 50, "{engine}");
    }
}

/// A full pool refuses the next port with `PoolExhausted` and leaves no
/// port behind; a released address is the next one given.
#[tokio::test]
async fn exhausted_pool_is_an_error_and_releases_are_reused() {
    for engine in ENGINES {
        let w = world(engine).await;
        // A /29: 6 usable addresses, one of them the gateway.
        let (n, s) = network_with_subnet(&w, &w.a, "192.168.9.0/29").await;
        let mut ports = Vec::new();
        for _ in 0..5 {
            ports.push(w.net.create_port(&w.a, port_on(&n.id)).await.expect("port"));
        }
        let before = count(&w, "ports").await;
        let e = w
            .net
            .create_port(&w.a, port_on(&n.id))
            .await
            .expect_err("the pool is full");
        assert!(
            matches!(e, NetworkError::PoolExhausted { .. }),
            "{engine}: {e:?}"
        );
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert_eq!(count(&w, "ports").await, before, "{engine}: a port leaked");
        // Free the third address (.4); the next port gets exactly it.
        let third = &ports[2];
        assert_eq!(third.fixed_ips[0].ip_address, "192.168.9.4", "{engine}");
        w.net.delete_port(&w.a, &third.id).await.expect("delete");
        let again = w.net.create_port(&w.a, port_on(&n.id)).await.expect("port");
        assert_eq!(again.fixed_ips[0].ip_address, "192.168.9.4", "{engine}");
        // An exact address: a held one is refused, the gateway too.
        let exact = |ip: &str| NewPort {
            network_id: n.id.clone(),
            fixed_ips: vec![FixedIpRequest {
                subnet_id: Some(s.id.clone()),
                ip_address: Some(ip.into()),
            }],
            ..Default::default()
        };
        let e = w
            .net
            .create_port(&w.a, exact("192.168.9.2"))
            .await
            .expect_err("held");
        assert!(
            matches!(e, NetworkError::AddressInUse { .. }),
            "{engine}: {e:?}"
        );
        let e = w
            .net
            .create_port(&w.a, exact("192.168.9.1"))
            .await
            .expect_err("gateway");
        assert!(matches!(e, NetworkError::Invalid(_)), "{engine}: {e:?}");
        assert_eq!(count(&w, "ports").await, before, "{engine}: a port leaked");
    }
}

/// Invalid CIDRs, gateways outside the subnet and overlaps are refused
/// with their own errors and change nothing; other networks (and other
/// projects) may reuse a CIDR.
#[tokio::test]
async fn bad_subnets_change_nothing() {
    for engine in ENGINES {
        let w = world(engine).await;
        let (n, _) = network_with_subnet(&w, &w.a, "10.1.0.0/16").await;
        let generation = w
            .net
            .get_network(&w.a, &n.id)
            .await
            .expect("get")
            .generation;
        let subnet = |cidr: &str, gw: Option<&str>| NewSubnet {
            network_id: n.id.clone(),
            cidr: cidr.into(),
            gateway_ip: gw.map(String::from),
            ..Default::default()
        };
        let cases: Vec<(NewSubnet, Expect)> = vec![
            (subnet("10.2.0.1/24", None), |e| {
                matches!(e, NetworkError::InvalidCidr { .. })
            }),
            (subnet("10.2.0.0/33", None), |e| {
                matches!(e, NetworkError::InvalidCidr { .. })
            }),
            (subnet("banana", None), |e| {
                matches!(e, NetworkError::InvalidCidr { .. })
            }),
            (subnet("10.2.0.0/24", Some("10.3.0.1")), |e| {
                matches!(e, NetworkError::GatewayOutsideSubnet { .. })
            }),
            (subnet("10.1.128.0/24", None), |e| {
                matches!(e, NetworkError::OverlappingCidr { .. })
            }),
            (subnet("10.0.0.0/8", None), |e| {
                matches!(e, NetworkError::OverlappingCidr { .. })
            }),
        ];
        for (req, expected) in cases {
            let cidr = req.cidr.clone();
            let e = w.net.create_subnet(&w.a, req).await.expect_err(&cidr);
            assert!(expected(&e), "{engine}: {cidr}: {e:?}");
        }
        let after = w.net.get_network(&w.a, &n.id).await.expect("get");
        assert_eq!(after.subnets.len(), 1, "{engine}");
        assert_eq!(
            after.generation, generation,
            "{engine}: a refusal bumped it"
        );
        assert_eq!(count(&w, "subnets").await, 1, "{engine}");
        // The same CIDR on another network of A, and on B's network.
        network_with_subnet(&w, &w.a, "10.1.0.0/16").await;
        network_with_subnet(&w, &w.b, "10.1.0.0/16").await;
        // A second, disjoint subnet on the first network.
        let s = w
            .net
            .create_subnet(&w.a, subnet("10.2.0.0/24", None))
            .await
            .expect("disjoint");
        assert_eq!(s.gateway_ip.as_deref(), Some("10.2.0.1"));
        let after = w.net.get_network(&w.a, &n.id).await.expect("get");
        assert_eq!(after.subnets.len(), 2, "{engine}");
        assert!(after.generation > generation, "{engine}: no bump");
    }
}

/// Twenty first uses at once make one default network, one subnet, one
/// default group with its two rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn default_network_is_made_once() {
    for engine in ENGINES {
        let w = world(engine).await;
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let net = w.net.clone();
            let who = w.a.clone();
            tasks.push(tokio::spawn(async move {
                net.ensure_default_network(&who).await
            }));
        }
        let mut ids = BTreeSet::new();
        for t in tasks {
            let n = t.await.expect("task").expect("default network");
            assert!(n.is_default);
            assert_eq!(n.subnets.len(), 1, "{engine}");
            ids.insert(n.id);
        }
        assert_eq!(ids.len(), 1, "{engine}: {ids:?}");
        assert_eq!(count(&w, "networks").await, 1, "{engine}");
        assert_eq!(count(&w, "subnets").await, 1, "{engine}");
        let groups = w.net.list_security_groups(&w.a, false).await.expect("list");
        assert_eq!(groups.len(), 1, "{engine}");
        let g = &groups[0];
        assert_eq!(g.name, "default");
        assert_eq!(g.rules.len(), 2, "{engine}: {:?}", g.rules);
        assert!(g.rules.iter().any(|r| r.direction == Direction::Ingress
            && r.remote_group_id.as_deref() == Some(g.id.as_str())));
        assert!(g
            .rules
            .iter()
            .any(|r| r.direction == Direction::Egress
                && r.remote_cidr.as_deref() == Some("0.0.0.0/0")));
        // A port on it gets the default group and the first address.
        let id = ids.into_iter().next().expect("id");
        let p = w.net.create_port(&w.a, port_on(&id)).await.expect("port");
        assert_eq!(p.security_groups, vec![g.id.clone()]);
        assert_eq!(p.fixed_ips[0].ip_address, "10.0.0.2");
        // Another project gets its own, with the same CIDR.
        let nb = w
            .net
            .ensure_default_network(&w.b)
            .await
            .expect("b's default");
        assert_ne!(nb.id, id);
        let sb = w
            .net
            .get_subnet(&w.b, &nb.subnets[0])
            .await
            .expect("subnet");
        assert_eq!(sb.cidr, "10.0.0.0/16");
    }
}

/// A group in use by a port, or named by another group's rule, cannot be
/// deleted; the default group never; invalid and foreign rules are refused
/// and change nothing.
#[tokio::test]
async fn security_groups_in_use_and_bad_rules() {
    for engine in ENGINES {
        let w = world(engine).await;
        let (n, _) = network_with_subnet(&w, &w.a, "10.5.0.0/24").await;
        let web = w
            .net
            .create_security_group(
                &w.a,
                NewSecurityGroup {
                    name: "web".into(),
                    description: "web servers".into(),
                },
            )
            .await
            .expect("group");
        let p = w
            .net
            .create_port(
                &w.a,
                NewPort {
                    network_id: n.id.clone(),
                    security_groups: Some(vec![web.id.clone()]),
                    ..Default::default()
                },
            )
            .await
            .expect("port");
        let e = w
            .net
            .delete_security_group(&w.a, &web.id)
            .await
            .expect_err("in use");
        assert!(
            matches!(
                e,
                NetworkError::InUse {
                    kind: Resource::SecurityGroup,
                    ..
                }
            ),
            "{engine}: {e:?}"
        );
        // Rules: valid ones apply and bump the generation, bad ones do not.
        let rule = |proto: &str, min: Option<i64>, max: Option<i64>| NewRule {
            direction: Direction::Ingress,
            protocol: proto.into(),
            port_range_min: min,
            port_range_max: max,
            remote_cidr: None,
            remote_group_id: None,
            description: String::new(),
        };
        let ssh = w
            .net
            .add_security_group_rule(&w.a, &web.id, rule("tcp", Some(22), Some(22)))
            .await
            .expect("ssh");
        let before = w.net.get_security_group(&w.a, &web.id).await.expect("get");
        assert_eq!(before.generation, 2, "{engine}");
        for bad in [
            rule("tcp", Some(90), Some(80)),
            rule("udp", Some(0), Some(10)),
            rule("icmp", Some(300), None),
            rule("sctp", None, None),
            rule("all", Some(1), Some(1)),
        ] {
            let e = w
                .net
                .add_security_group_rule(&w.a, &web.id, bad)
                .await
                .expect_err("bad rule");
            assert!(matches!(e, NetworkError::InvalidRule(_)), "{engine}: {e:?}");
        }
        let e = w
            .net
            .add_security_group_rule(&w.a, &web.id, rule("tcp", Some(22), Some(22)))
            .await
            .expect_err("duplicate");
        assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{engine}: {e:?}");
        // A rule naming another project's group: that group is not found.
        let foreign = w.net.ensure_default_network(&w.b).await.expect("b");
        let _ = foreign;
        let b_default = w.net.list_security_groups(&w.b, false).await.expect("b")[0]
            .id
            .clone();
        let mut r = rule("tcp", Some(80), Some(80));
        r.remote_group_id = Some(b_default.clone());
        let e = w
            .net
            .add_security_group_rule(&w.a, &web.id, r)
            .await
            .expect_err("foreign group");
        assert!(
            matches!(e, NetworkError::NotFound { kind: Resource::SecurityGroup, ref id } if *id == b_default),
            "{engine}: {e:?}"
        );
        let after = w.net.get_security_group(&w.a, &web.id).await.expect("get");
        assert_eq!(after, before, "{engine}: a refused rule changed the group");
        // Another group's rule names web: still in use once the port is gone.
        let db = w
            .net
            .create_security_group(
                &w.a,
                NewSecurityGroup {
                    name: "db".into(),
                    description: String::new(),
                },
            )
            .await
            .expect("db group");
        let mut from_web = rule("tcp", Some(5432), Some(5432));
        from_web.remote_group_id = Some(web.id.clone());
        w.net
            .add_security_group_rule(&w.a, &db.id, from_web)
            .await
            .expect("rule from web");
        w.net.delete_port(&w.a, &p.id).await.expect("port deleted");
        let e = w
            .net
            .delete_security_group(&w.a, &web.id)
            .await
            .expect_err("referenced");
        assert!(matches!(e, NetworkError::InUse { .. }), "{engine}: {e:?}");
        w.net.delete_security_group(&w.a, &db.id).await.expect("db");
        w.net
            .remove_security_group_rule(&w.a, &ssh.id)
            .await
            .expect("rule removed");
        w.net
            .delete_security_group(&w.a, &web.id)
            .await
            .expect("web");
        w.net
            .ensure_default_network(&w.a)
            .await
            .expect("a's default");
        let default = w
            .net
            .list_security_groups(&w.a, false)
            .await
            .expect("list")
            .into_iter()
            .find(|g| g.name == "default")
            .expect("default group");
        let e = w
            .net
            .delete_security_group(&w.a, &default.id)
            .await
            .expect_err("default");
        assert!(
            matches!(e, NetworkError::CannotDelete { .. }),
            "{engine}: {e:?}"
        );
    }
}

/// Floating addresses: the project's `floating_ips` quota holds under
/// concurrent allocations; association needs a port of the project behind
/// one of its routers; release frees the address and the quota.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn floating_ips_quota_and_association() {
    for engine in ENGINES {
        let w = world(engine).await;
        let ext = external(&w, "203.0.113.0/24").await;
        w.identity
            .set_quota(&w.admin, &w.a.project_id, "floating_ips", 3)
            .await
            .expect("quota");
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let net = w.net.clone();
            let who = w.a.clone();
            tasks.push(tokio::spawn(async move {
                net.allocate_floating_ip(&who, None).await
            }));
        }
        let (mut ok, mut over) = (Vec::new(), 0);
        for t in tasks {
            match t.await.expect("task") {
                Ok(f) => ok.push(f),
                Err(NetworkError::QuotaExceeded {
                    resource, limit, ..
                }) => {
                    assert_eq!((resource, limit), ("floating_ips", 3));
                    over += 1;
                }
                Err(e) => panic!("{engine}: {e:?}"),
            }
        }
        assert_eq!((ok.len(), over), (3, 5), "{engine}");
        let addrs: BTreeSet<_> = ok.iter().map(|f| f.floating_ip_address.clone()).collect();
        assert_eq!(addrs.len(), 3, "{engine}");
        assert_eq!(count(&w, "floating_ips").await, 3, "{engine}");

        // Association needs a router joining the port's subnet to `ext`.
        let (n, s) = network_with_subnet(&w, &w.a, "10.9.0.0/24").await;
        let port = w.net.create_port(&w.a, port_on(&n.id)).await.expect("port");
        let fip = &ok[0];
        let e = w
            .net
            .associate_floating_ip(&w.a, &fip.id, &port.id, None)
            .await
            .expect_err("no router");
        assert!(
            matches!(e, NetworkError::NotReachable { .. }),
            "{engine}: {e:?}"
        );
        let r = w
            .net
            .create_router(
                &w.a,
                NewRouter {
                    name: "r".into(),
                    external_network_id: Some(ext.id.clone()),
                },
            )
            .await
            .expect("router");
        assert!(r.external_ip.is_some(), "{engine}");
        assert!(!addrs.contains(r.external_ip.as_deref().unwrap_or_default()));
        let r = w
            .net
            .add_router_interface(&w.a, &r.id, &s.id)
            .await
            .expect("interface");
        assert_eq!(r.interfaces[0].ip_address, "10.9.0.1", "{engine}");
        let f = w
            .net
            .associate_floating_ip(&w.a, &fip.id, &port.id, None)
            .await
            .expect("associate");
        assert_eq!(f.port_id.as_deref(), Some(port.id.as_str()));
        assert_eq!(f.fixed_ip_address.as_deref(), Some("10.9.0.2"));
        assert_eq!(f.router_id.as_deref(), Some(r.id.as_str()));
        assert_eq!(f.generation, 2, "{engine}");
        // Describe output: the instance's private and public addresses.
        let mut tx = w.t.db.begin().await.expect("begin");
        let inst = w
            .net
            .create_port_in(
                &mut tx,
                &w.a,
                NewPort {
                    network_id: n.id.clone(),
                    device_owner: "compute:instance".into(),
                    device_id: "i-00000000000000042".into(),
                    ..Default::default()
                },
            )
            .await
            .expect("instance port");
        tx.commit().await.expect("commit");
        let f2 = w
            .net
            .associate_floating_ip(&w.a, &ok[2].id, &inst.id, None)
            .await
            .expect("associate the instance's port");
        let seen = w
            .net
            .device_addresses(&["i-00000000000000042".into(), "i-nothing".into()])
            .await
            .expect("addresses");
        assert_eq!(seen.len(), 1, "{engine}: {seen:?}");
        let a = &seen["i-00000000000000042"];
        assert_eq!(a.len(), 1, "{engine}");
        assert_eq!(a[0].port_id, inst.id);
        assert_eq!(a[0].private_ip, "10.9.0.3", "{engine}");
        assert_eq!(
            a[0].public_ip.as_deref(),
            Some(f2.floating_ip_address.as_str())
        );
        assert_eq!(a[0].floating_ip_id.as_deref(), Some(f2.id.as_str()));
        // The router cannot lose that subnet or its gateway meanwhile.
        let e = w
            .net
            .remove_router_interface(&w.a, &r.id, &s.id)
            .await
            .expect_err("in use");
        assert!(matches!(e, NetworkError::InUse { .. }), "{engine}: {e:?}");
        let e = w
            .net
            .set_router_gateway(&w.a, &r.id, None)
            .await
            .expect_err("in use");
        assert!(matches!(e, NetworkError::InUse { .. }), "{engine}: {e:?}");
        // B's port, and B's view of A's address: not found.
        let (nb, _) = network_with_subnet(&w, &w.b, "10.9.0.0/24").await;
        let pb = w
            .net
            .create_port(&w.b, port_on(&nb.id))
            .await
            .expect("b port");
        let e = w
            .net
            .associate_floating_ip(&w.a, &ok[1].id, &pb.id, None)
            .await
            .expect_err("foreign port");
        assert!(
            matches!(
                e,
                NetworkError::NotFound {
                    kind: Resource::Port,
                    ..
                }
            ),
            "{engine}: {e:?}"
        );
        let e = w
            .net
            .associate_floating_ip(&w.b, &ok[1].id, &pb.id, None)
            .await
            .expect_err("foreign address");
        assert!(
            matches!(
                e,
                NetworkError::NotFound {
                    kind: Resource::FloatingIp,
                    ..
                }
            ),
            "{engine}: {e:?}"
        );
        // Disassociate, release, and the quota has room again.
        let f = w
            .net
            .disassociate_floating_ip(&w.a, &fip.id)
            .await
            .expect("dis");
        assert!(f.port_id.is_none());
        w.net
            .release_floating_ip(&w.a, &fip.id)
            .await
            .expect("release");
        let again = w
            .net
            .allocate_floating_ip(&w.a, Some(&ext.id))
            .await
            .expect("room again");
        assert_eq!(
            again.floating_ip_address, fip.floating_ip_address,
            "{engine}: lowest free"
        );
        assert_eq!(count(&w, "floating_ips").await, 3, "{engine}");
    }
}

/// Every resource of project B answers "not found" to project A, and A
/// cannot put a port on B's network.
#[tokio::test]
async fn projects_are_isolated() {
    for engine in ENGINES {
        let w = world(engine).await;
        let (nb, sb) = network_with_subnet(&w, &w.b, "10.7.0.0/24").await;
        let pb = w
            .net
            .create_port(&w.b, port_on(&nb.id))
            .await
            .expect("port");
        let gb = w
            .net
            .create_security_group(
                &w.b,
                NewSecurityGroup {
                    name: "g".into(),
                    description: String::new(),
                },
            )
            .await
            .expect("group");
        let rb = w
            .net
            .create_router(&w.b, NewRouter::default())
            .await
            .expect("router");
        let nf = |e: NetworkError| {
            assert_eq!(e.kind(), ErrorKind::NotFound, "{engine}: {e:?}");
        };
        nf(w.net.get_network(&w.a, &nb.id).await.expect_err("network"));
        nf(w.net.get_subnet(&w.a, &sb.id).await.expect_err("subnet"));
        nf(w.net.get_port(&w.a, &pb.id).await.expect_err("port"));
        nf(w.net
            .get_security_group(&w.a, &gb.id)
            .await
            .expect_err("group"));
        nf(w.net.get_router(&w.a, &rb.id).await.expect_err("router"));
        nf(w.net
            .delete_network(&w.a, &nb.id)
            .await
            .expect_err("delete network"));
        nf(w.net
            .delete_port(&w.a, &pb.id)
            .await
            .expect_err("delete port"));
        nf(w.net
            .delete_security_group(&w.a, &gb.id)
            .await
            .expect_err("delete group"));
        nf(w.net
            .create_port(&w.a, port_on(&nb.id))
            .await
            .expect_err("port on B's network"));
        nf(w.net
            .create_subnet(
                &w.a,
                NewSubnet {
                    network_id: nb.id.clone(),
                    cidr: "10.8.0.0/24".into(),
                    ..Default::default()
                },
            )
            .await
            .expect_err("subnet on B's network"));
        let (na, _) = network_with_subnet(&w, &w.a, "10.7.0.0/24").await;
        let ra = w
            .net
            .create_router(&w.a, NewRouter::default())
            .await
            .expect("router");
        nf(w.net
            .add_router_interface(&w.a, &ra.id, &sb.id)
            .await
            .expect_err("B's subnet"));
        nf(w.net
            .create_port(
                &w.a,
                NewPort {
                    network_id: na.id.clone(),
                    security_groups: Some(vec![gb.id.clone()]),
                    ..Default::default()
                },
            )
            .await
            .expect_err("B's group on A's port"));
        assert!(w
            .net
            .list_networks(&w.a, false)
            .await
            .expect("list")
            .iter()
            .all(|n| n.id != nb.id));
        assert!(w
            .net
            .list_ports(&w.a, None, false)
            .await
            .expect("list")
            .is_empty());
        // The admin sees everything.
        assert_eq!(
            w.net.get_port(&w.admin, &pb.id).await.expect("admin").id,
            pb.id
        );
        // A member cannot make provider networks.
        let e = w
            .net
            .create_network(
                &w.a,
                NewNetwork {
                    name: "x".into(),
                    external: true,
                    ..Default::default()
                },
            )
            .await
            .expect_err("external by a member");
        assert_eq!(e.kind(), ErrorKind::Forbidden, "{engine}: {e:?}");
    }
}

/// A port made inside the caller's transaction exists only if that
/// transaction commits: a launch that fails after its ports leaves no
/// address behind.
#[tokio::test]
async fn ports_follow_the_callers_transaction() {
    for engine in ENGINES {
        let w = world(engine).await;
        let (n, _) = network_with_subnet(&w, &w.a, "10.3.0.0/24").await;
        let mut tx = w.t.db.begin().await.expect("begin");
        let p = w
            .net
            .create_port_in(
                &mut tx,
                &w.a,
                NewPort {
                    network_id: n.id.clone(),
                    device_owner: "compute:instance".into(),
                    device_id: "i-0000000000000001".into(),
                    ..Default::default()
                },
            )
            .await
            .expect("port in tx");
        assert_eq!(p.fixed_ips[0].ip_address, "10.3.0.2");
        drop(tx); // the launch failed: rolled back
        assert_eq!(count(&w, "ports").await, 0, "{engine}");
        assert_eq!(count(&w, "port_ips").await, 0, "{engine}");
        let mut tx = w.t.db.begin().await.expect("begin");
        let p = w
            .net
            .create_port_in(
                &mut tx,
                &w.a,
                NewPort {
                    network_id: n.id.clone(),
                    device_owner: "compute:instance".into(),
                    device_id: "i-0000000000000002".into(),
                    ..Default::default()
                },
            )
            .await
            .expect("port in tx");
        assert_eq!(
            p.fixed_ips[0].ip_address, "10.3.0.2",
            "{engine}: the rollback freed it"
        );
        let revision = w.t.db.revision("network").await.expect("revision");
        tx.commit().await.expect("commit");
        assert!(
            w.t.db.revision("network").await.expect("revision") > revision,
            "{engine}: watchers were not told"
        );
        let e = w.net.delete_port(&w.a, &p.id).await.expect_err("attached");
        assert!(matches!(e, NetworkError::InUse { .. }), "{engine}: {e:?}");
        let mut tx = w.t.db.begin().await.expect("begin");
        let gone = w
            .net
            .delete_device_ports_in(&mut tx, "i-0000000000000002")
            .await
            .expect("terminate");
        tx.commit().await.expect("commit");
        assert_eq!(gone, vec![p.id.clone()]);
        assert_eq!(count(&w, "port_ips").await, 0, "{engine}");
    }
}

/// A /16 with 60,000 addresses held: the next allocation finds the lowest
/// free address without reading the allocations, and a freed address deep
/// in the subnet is found again.
#[tokio::test]
async fn large_subnet_allocation() {
    for engine in ENGINES {
        let w = world(engine).await;
        let (n, s) = network_with_subnet(&w, &w.a, "10.100.0.0/16").await;
        let holder = w
            .net
            .create_port(&w.a, port_on(&n.id))
            .await
            .expect("holder");
        assert_eq!(holder.fixed_ips[0].ip_address, "10.100.0.2");
        // Fill 10.100.0.3 .. 10.100.234.97 (60,000 addresses) in one statement,
        // as if 60,000 ports had taken them, and move the hint as they would.
        let base = u32::from(Ipv4Addr::new(10, 100, 0, 3)) as i64;
        sqlx::query(
            "WITH RECURSIVE seq(a) AS (SELECT $2 UNION ALL SELECT a + 1 FROM seq WHERE a < $3) \
             INSERT INTO port_ips (subnet_id, address, port_id, ip) \
             SELECT $1, a, $4, 'x' FROM seq",
        )
        .bind(&s.id)
        .bind(base)
        .bind(base + 59_999)
        .bind(&holder.id)
        .execute(w.t.db.writer())
        .await
        .expect("fill");
        sqlx::query("UPDATE subnets SET ipam_hint = $2 WHERE id = $1")
            .bind(&s.id)
            .bind(base + 60_000)
            .execute(w.t.db.writer())
            .await
            .expect("hint");
        let started = Instant::now();
        let p = w.net.create_port(&w.a, port_on(&n.id)).await.expect("port");
        let took = started.elapsed();
        let next = Ipv4Addr::from((base + 60_000) as u32).to_string();
        assert_eq!(p.fixed_ips[0].ip_address, next, "{engine}");
        // Free one deep address: the next port takes it, and the one after
        // walks the 30,000-long run above it once.
        let deep = base + 30_000;
        sqlx::query("DELETE FROM port_ips WHERE subnet_id = $1 AND address = $2")
            .bind(&s.id)
            .bind(deep)
            .execute(w.t.db.writer())
            .await
            .expect("free");
        sqlx::query("UPDATE subnets SET ipam_hint = $2 WHERE id = $1")
            .bind(&s.id)
            .bind(deep)
            .execute(w.t.db.writer())
            .await
            .expect("hint");
        let q = w.net.create_port(&w.a, port_on(&n.id)).await.expect("port");
        assert_eq!(
            q.fixed_ips[0].ip_address,
            Ipv4Addr::from(deep as u32).to_string(),
            "{engine}"
        );
        let started_walk = Instant::now();
        let r = w.net.create_port(&w.a, port_on(&n.id)).await.expect("port");
        let walk = started_walk.elapsed();
        assert_eq!(
            r.fixed_ips[0].ip_address,
            Ipv4Addr::from((base + 60_001) as u32).to_string(),
            "{engine}"
        );
        println!("{engine}: /16 with 60,000 held: next port {took:?}; after a deep release, the walk {walk:?}");
    }
}

/// Custom allocation pools: only their addresses are handed out, lowest
/// first, the gap between them skipped.
#[tokio::test]
async fn allocation_pools_are_respected() {
    for engine in ENGINES {
        let w = world(engine).await;
        let n = w
            .net
            .create_network(
                &w.a,
                NewNetwork {
                    name: "pools".into(),
                    ..Default::default()
                },
            )
            .await
            .expect("network");
        w.net
            .create_subnet(
                &w.a,
                NewSubnet {
                    network_id: n.id.clone(),
                    cidr: "172.16.5.0/24".into(),
                    allocation_pools: vec![
                        Pool {
                            start: "172.16.5.200".into(),
                            end: "172.16.5.201".into(),
                        },
                        Pool {
                            start: "172.16.5.10".into(),
                            end: "172.16.5.11".into(),
                        },
                    ],
                    dns_servers: vec!["172.16.5.1".into()],
                    ..Default::default()
                },
            )
            .await
            .expect("subnet");
        let mut got = Vec::new();
        for _ in 0..4 {
            let p = w.net.create_port(&w.a, port_on(&n.id)).await.expect("port");
            got.push(p.fixed_ips[0].ip_address.clone());
        }
        assert_eq!(
            got,
            ["172.16.5.10", "172.16.5.11", "172.16.5.200", "172.16.5.201"],
            "{engine}"
        );
        let e = w
            .net
            .create_port(&w.a, port_on(&n.id))
            .await
            .expect_err("full");
        assert!(
            matches!(e, NetworkError::PoolExhausted { .. }),
            "{engine}: {e:?}"
        );
    }
}

/// Routers: one router per subnet (the gateway address), no overlapping
/// subnets on one router, no deleting with interfaces; a port's groups
/// change in place and bump its generation; a network with ports or a
/// subnet with addresses is not deleted.
#[tokio::test]
async fn routers_port_groups_and_deletes_in_use() {
    for engine in ENGINES {
        let w = world(engine).await;
        let (n1, s1) = network_with_subnet(&w, &w.a, "10.30.0.0/24").await;
        let (_, s2) = network_with_subnet(&w, &w.a, "10.30.0.0/24").await;
        let r1 = w
            .net
            .create_router(&w.a, NewRouter::default())
            .await
            .expect("router");
        let r2 = w
            .net
            .create_router(&w.a, NewRouter::default())
            .await
            .expect("router");
        let r1 = w
            .net
            .add_router_interface(&w.a, &r1.id, &s1.id)
            .await
            .expect("interface");
        assert_eq!(r1.generation, 2, "{engine}");
        let e = w
            .net
            .add_router_interface(&w.a, &r2.id, &s1.id)
            .await
            .expect_err("second router on a subnet");
        assert!(
            matches!(
                e,
                NetworkError::InUse {
                    kind: Resource::Subnet,
                    ..
                }
            ),
            "{engine}: {e:?}"
        );
        let e = w
            .net
            .add_router_interface(&w.a, &r1.id, &s2.id)
            .await
            .expect_err("overlapping subnets on one router");
        assert!(
            matches!(e, NetworkError::OverlappingCidr { .. }),
            "{engine}: {e:?}"
        );
        let e = w
            .net
            .delete_router(&w.a, &r1.id)
            .await
            .expect_err("has an interface");
        assert!(matches!(e, NetworkError::InUse { .. }), "{engine}: {e:?}");
        let e = w
            .net
            .delete_subnet(&w.a, &s1.id)
            .await
            .expect_err("router interface holds its gateway");
        assert!(matches!(e, NetworkError::InUse { .. }), "{engine}: {e:?}");
        w.net
            .remove_router_interface(&w.a, &r1.id, &s1.id)
            .await
            .expect("removed");
        w.net.delete_router(&w.a, &r1.id).await.expect("deleted");

        // A port's groups change in place.
        let p = w
            .net
            .create_port(&w.a, port_on(&n1.id))
            .await
            .expect("port");
        let g = w
            .net
            .create_security_group(
                &w.a,
                NewSecurityGroup {
                    name: "app".into(),
                    description: String::new(),
                },
            )
            .await
            .expect("group");
        let mut both = p.security_groups.clone();
        both.push(g.id.clone());
        let q = w
            .net
            .set_port_security_groups(&w.a, &p.id, &both)
            .await
            .expect("groups");
        assert_eq!(q.security_groups.len(), 2, "{engine}");
        assert_eq!(q.generation, p.generation + 1, "{engine}");
        let e = w
            .net
            .delete_network(&w.a, &n1.id)
            .await
            .expect_err("a port is on it");
        assert!(
            matches!(
                e,
                NetworkError::InUse {
                    kind: Resource::Network,
                    ..
                }
            ),
            "{engine}: {e:?}"
        );
        w.net.delete_port(&w.a, &p.id).await.expect("port deleted");
        w.net
            .delete_network(&w.a, &n1.id)
            .await
            .expect("network deleted");
        let e = w
            .net
            .get_subnet(&w.a, &s1.id)
            .await
            .expect_err("its subnet went with it");
        assert_eq!(e.kind(), ErrorKind::NotFound, "{engine}");
    }
}

/// Provider networks: one network per VLAN id; a shared network takes
/// ports of every project (each port its own project's); an external
/// network is visible to all but takes only the service's own ports.
#[tokio::test]
async fn provider_networks() {
    for engine in ENGINES {
        let w = world(engine).await;
        let vlan = |name: &str| NewNetwork {
            name: name.into(),
            vlan_id: Some(100),
            ..Default::default()
        };
        let v = w
            .net
            .create_network(&w.admin, vlan("v100"))
            .await
            .expect("vlan");
        assert_eq!(v.vlan_id, Some(100));
        let e = w
            .net
            .create_network(&w.admin, vlan("again"))
            .await
            .expect_err("VLAN taken");
        assert!(matches!(e, NetworkError::Conflict(_)), "{engine}: {e:?}");
        let e = w
            .net
            .create_network(&w.a, vlan("member"))
            .await
            .expect_err("members make no VLAN networks");
        assert_eq!(e.kind(), ErrorKind::Forbidden, "{engine}: {e:?}");

        let shared = w
            .net
            .create_network(
                &w.admin,
                NewNetwork {
                    name: "shared".into(),
                    shared: true,
                    ..Default::default()
                },
            )
            .await
            .expect("shared");
        w.net
            .create_subnet(
                &w.admin,
                NewSubnet {
                    network_id: shared.id.clone(),
                    cidr: "10.50.0.0/24".into(),
                    ..Default::default()
                },
            )
            .await
            .expect("subnet");
        let pb = w
            .net
            .create_port(&w.b, port_on(&shared.id))
            .await
            .expect("B's port on the shared network");
        assert_eq!(pb.project_id, w.b.project_id, "{engine}");
        let pa = w
            .net
            .create_port(&w.a, port_on(&shared.id))
            .await
            .expect("A's port");
        assert_ne!(pa.fixed_ips[0].ip_address, pb.fixed_ips[0].ip_address);
        // B's port on it is still B's: A cannot see it.
        let e = w.net.get_port(&w.a, &pb.id).await.expect_err("B's port");
        assert_eq!(e.kind(), ErrorKind::NotFound, "{engine}");
        // Nor change the shared network itself.
        let e = w
            .net
            .delete_network(&w.a, &shared.id)
            .await
            .expect_err("not A's");
        assert_eq!(e.kind(), ErrorKind::Forbidden, "{engine}: {e:?}");

        let ext = external(&w, "198.51.100.0/24").await;
        assert!(w
            .net
            .list_networks(&w.a, false)
            .await
            .expect("list")
            .iter()
            .any(|n| n.id == ext.id && n.external));
        let e = w
            .net
            .create_port(&w.a, port_on(&ext.id))
            .await
            .expect_err("a member's port on an external network");
        assert_eq!(e.kind(), ErrorKind::Forbidden, "{engine}: {e:?}");
        let e = w
            .net
            .create_port(
                &w.a,
                NewPort {
                    network_id: shared.id.clone(),
                    device_owner: "network:router_interface".into(),
                    ..Default::default()
                },
            )
            .await
            .expect_err("a reserved owner");
        assert!(matches!(e, NetworkError::Invalid(_)), "{engine}: {e:?}");
    }
}

/// A group holds at most `MAX_RULES_PER_GROUP` rules; the one past it is
/// refused with `LimitExceeded` and not written.
#[tokio::test]
async fn rules_per_group_are_bounded() {
    for engine in ENGINES {
        let w = world(engine).await;
        let g = w
            .net
            .create_security_group(
                &w.a,
                NewSecurityGroup {
                    name: "many".into(),
                    description: String::new(),
                },
            )
            .await
            .expect("group");
        // The group has its egress rule; fill it to one below the limit
        // directly, as that many adds would.
        let missing = nuage_network::MAX_RULES_PER_GROUP - 2;
        sqlx::query(
            "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < $2) \
             INSERT INTO security_group_rules (id, group_id, direction, protocol, port_min, \
             port_max, remote_cidr, remote_group_id, description, fingerprint, created_at) \
             SELECT 'sgr-fill-' || n, $1, 'ingress', 'tcp', n, n, '0.0.0.0/0', NULL, '', \
             'fill-' || n, 0 FROM seq",
        )
        .bind(&g.id)
        .bind(missing)
        .execute(w.t.db.writer())
        .await
        .expect("fill");
        let rule = |port: i64| NewRule {
            direction: Direction::Ingress,
            protocol: "udp".into(),
            port_range_min: Some(port),
            port_range_max: Some(port),
            remote_cidr: None,
            remote_group_id: None,
            description: String::new(),
        };
        w.net
            .add_security_group_rule(&w.a, &g.id, rule(53))
            .await
            .expect("the last one that fits");
        let e = w
            .net
            .add_security_group_rule(&w.a, &g.id, rule(54))
            .await
            .expect_err("one too many");
        assert!(
            matches!(e, NetworkError::LimitExceeded { limit, .. } if limit == nuage_network::MAX_RULES_PER_GROUP),
            "{engine}: {e:?}"
        );
        let g = w.net.get_security_group(&w.a, &g.id).await.expect("get");
        assert_eq!(
            g.rules.len() as i64,
            nuage_network::MAX_RULES_PER_GROUP,
            "{engine}"
        );
    }
}

/// The configured external network is made once however often (and
/// however concurrently) servers start; from then on each project's
/// default network gets a `default` router with its gateway there, made
/// in the same transaction as the network, once; a floating address of
/// the project's instance port is then reachable through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn external_network_and_default_routers() {
    for engine in ENGINES {
        let w = world(engine).await;
        let cfg = nuage_network::ExternalNetworkConfig {
            name: "external".into(),
            cidr: "192.168.100.0/24".into(),
            gateway_ip: Some("192.168.100.1".into()),
            allocation_pool: Some(Pool {
                start: "192.168.100.10".into(),
                end: "192.168.100.12".into(),
            }),
        };
        // A project whose default network predates the configuration.
        let before = w.net.ensure_default_network(&w.b).await.expect("default");
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let (net, cfg, p) = (w.net.clone(), cfg.clone(), w.admin.project_id.clone());
            tasks.push(tokio::spawn(async move {
                net.ensure_external_network(&p, &cfg).await
            }));
        }
        let mut ids = BTreeSet::new();
        for t in tasks {
            match t.await.expect("task") {
                Ok(n) => {
                    assert!(n.external && n.subnets.len() == 1, "{engine}: {n:?}");
                    ids.insert(n.id);
                }
                // Lost the race to the first maker: a retry finds it.
                Err(NetworkError::Conflict(_)) => {}
                Err(e) => panic!("{engine}: {e:?}"),
            }
        }
        let ext = w
            .net
            .ensure_external_network(&w.admin.project_id, &cfg)
            .await
            .expect("again");
        ids.insert(ext.id.clone());
        assert_eq!(ids.len(), 1, "{engine}: one external network");
        let mut other = cfg.clone();
        other.cidr = "192.168.101.0/24".into();
        assert!(
            w.net
                .ensure_external_network(&w.admin.project_id, &other)
                .await
                .is_err(),
            "{engine}: a changed CIDR is refused, not ignored"
        );

        let n = w.net.ensure_default_network(&w.a).await.expect("default");
        let n2 = w.net.ensure_default_network(&w.a).await.expect("again");
        assert_eq!(n.id, n2.id);
        let routers = w.net.list_routers(&w.a, false).await.expect("routers");
        assert_eq!(routers.len(), 1, "{engine}: one default router");
        let r = &routers[0];
        assert_eq!(r.name, "default");
        assert_eq!(r.external_network_id.as_deref(), Some(ext.id.as_str()));
        assert_eq!(r.external_ip.as_deref(), Some("192.168.100.10"));
        assert_eq!(r.interfaces.len(), 1);
        assert_eq!(r.interfaces[0].ip_address, "10.0.0.1");
        // The project whose default network was there before gets its
        // router at its next use (a launch).
        w.net.ensure_default_network(&w.b).await.expect("b");
        let rb = w.net.list_routers(&w.b, false).await.expect("routers");
        assert_eq!(rb.len(), 1, "{engine}: {before:?}");
        // A floating address is associable through the default router.
        let port = w.net.create_port(&w.a, port_on(&n.id)).await.expect("port");
        let f = w.net.allocate_floating_ip(&w.a, None).await.expect("fip");
        assert_eq!(f.network_id, ext.id);
        let f = w
            .net
            .associate_floating_ip(&w.a, &f.id, &port.id, None)
            .await
            .expect("associate");
        assert_eq!(f.router_id.as_deref(), Some(r.id.as_str()));
        // The pool (3 addresses) is now out: a third project's default
        // network comes without a router, and without an error.
        let c = member("gamma", "u-gamma");
        w.net
            .ensure_default_network(&c)
            .await
            .expect("no router, no error");
        assert!(w
            .net
            .list_routers(&c, false)
            .await
            .expect("list")
            .is_empty());
        assert!(w.net.ensure_default_network(&c).await.is_ok());
    }
}

/// Tags (issue 12): set and removed on each kind of resource, at most 50,
/// only by the owner (another project's resource answers "not found"),
/// and gone with their resource.
#[tokio::test]
async fn tags_follow_their_resources() {
    use std::collections::BTreeMap;
    for engine in ENGINES {
        let w = world(engine).await;
        let ext = external(&w, "198.51.100.0/24").await;
        let (n, s) = network_with_subnet(&w, &w.a, "10.30.0.0/24").await;
        let g = w
            .net
            .create_security_group(
                &w.a,
                NewSecurityGroup {
                    name: "web".into(),
                    description: String::new(),
                },
            )
            .await
            .expect("group");
        let p = w.net.create_port(&w.a, port_on(&n.id)).await.expect("port");
        let r = w
            .net
            .create_router(
                &w.a,
                NewRouter {
                    name: "r".into(),
                    external_network_id: Some(ext.id.clone()),
                },
            )
            .await
            .expect("router");
        let f = w
            .net
            .allocate_floating_ip(&w.a, None)
            .await
            .expect("address");
        let set = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        for id in [&n.id, &s.id, &g.id, &p.id, &r.id, &f.id] {
            w.net
                .set_tags(&w.a, id, &set("Name", id), &[])
                .await
                .unwrap_or_else(|e| panic!("{engine}: tag {id}: {e:?}"));
        }
        let tags = w.net.tags(&w.a).await.expect("tags");
        assert_eq!(tags.len(), 6, "{engine}: {tags:?}");
        assert_eq!(tags[&g.id]["Name"], g.id, "{engine}");
        // Overwrite, then remove only when the value matches.
        w.net
            .set_tags(&w.a, &g.id, &set("Name", "front"), &[])
            .await
            .expect("overwrite");
        w.net
            .set_tags(
                &w.a,
                &g.id,
                &BTreeMap::new(),
                &[("Name".into(), Some("other".into()))],
            )
            .await
            .expect("remove, value differs");
        assert_eq!(
            w.net.tags(&w.a).await.expect("tags")[&g.id]["Name"],
            "front"
        );
        w.net
            .set_tags(&w.a, &g.id, &BTreeMap::new(), &[("Name".into(), None)])
            .await
            .expect("remove");
        assert!(!w.net.tags(&w.a).await.expect("tags").contains_key(&g.id));

        // Another project neither sees nor tags them.
        let e = w
            .net
            .set_tags(&w.b, &n.id, &set("x", "y"), &[])
            .await
            .expect_err("foreign");
        assert!(
            matches!(
                e,
                NetworkError::NotFound {
                    kind: Resource::Network,
                    ..
                }
            ),
            "{engine}: {e:?}"
        );
        assert!(w.net.tags(&w.b).await.expect("tags").is_empty());
        let e = w
            .net
            .set_tags(&w.a, "i-0123", &set("x", "y"), &[])
            .await
            .expect_err("not a network id");
        assert_eq!(e.kind(), ErrorKind::Invalid, "{engine}: {e:?}");

        // 50 at most (its Name and 49 more): the 51st changes nothing.
        let many: BTreeMap<String, String> = (0..49)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect();
        w.net
            .set_tags(&w.a, &s.id, &many, &[])
            .await
            .expect("50 tags");
        let e = w
            .net
            .set_tags(&w.a, &s.id, &set("one-more", "v"), &[])
            .await
            .expect_err("51");
        assert!(
            matches!(e, NetworkError::LimitExceeded { limit: 50, .. }),
            "{engine}: {e:?}"
        );
        assert_eq!(w.net.tags(&w.a).await.expect("tags")[&s.id].len(), 50);

        // Tags go with their resources.
        w.net
            .release_floating_ip(&w.a, &f.id)
            .await
            .expect("release");
        w.net.delete_port(&w.a, &p.id).await.expect("port");
        w.net.delete_router(&w.a, &r.id).await.expect("router");
        w.net.delete_network(&w.a, &n.id).await.expect("network");
        assert_eq!(count(&w, "network_tags").await, 0, "{engine}");
    }
}

/// A network with a range (EC2's VPC CidrBlock) holds only subnets inside
/// it; its range is /16 to /28; revoking a rule by its content removes
/// exactly that rule, and a second revoke finds nothing.
#[tokio::test]
async fn network_ranges_and_rules_revoked_by_content() {
    for engine in ENGINES {
        let w = world(engine).await;
        for bad in ["10.0.0.0/8", "10.0.0.0/29", "10.0.0.1/16", "nonsense"] {
            let e = w
                .net
                .create_network(
                    &w.a,
                    NewNetwork {
                        cidr: Some(bad.into()),
                        ..Default::default()
                    },
                )
                .await
                .expect_err(bad);
            assert!(
                matches!(e, NetworkError::InvalidCidr { .. }),
                "{engine} {bad}: {e:?}"
            );
        }
        assert_eq!(count(&w, "networks").await, 0, "{engine}");
        let n = w
            .net
            .create_network(
                &w.a,
                NewNetwork {
                    cidr: Some("10.40.0.0/16".into()),
                    ..Default::default()
                },
            )
            .await
            .expect("network");
        assert_eq!(n.cidr.as_deref(), Some("10.40.0.0/16"));
        let e = w
            .net
            .create_subnet(
                &w.a,
                NewSubnet {
                    network_id: n.id.clone(),
                    cidr: "10.41.0.0/24".into(),
                    ..Default::default()
                },
            )
            .await
            .expect_err("outside");
        assert!(
            matches!(e, NetworkError::InvalidCidr { .. }),
            "{engine}: {e:?}"
        );
        w.net
            .create_subnet(
                &w.a,
                NewSubnet {
                    network_id: n.id.clone(),
                    cidr: "10.40.3.0/24".into(),
                    ..Default::default()
                },
            )
            .await
            .expect("inside");
        let d = w.net.ensure_default_network(&w.a).await.expect("default");
        assert_eq!(
            d.cidr.as_deref(),
            Some(NetworkConfig::default().default_cidr.as_str())
        );

        let g = w
            .net
            .create_security_group(
                &w.a,
                NewSecurityGroup {
                    name: "ssh".into(),
                    description: String::new(),
                },
            )
            .await
            .expect("group");
        let ssh = |cidr: &str| NewRule {
            direction: Direction::Ingress,
            protocol: "tcp".into(),
            port_range_min: Some(22),
            port_range_max: Some(22),
            remote_cidr: Some(cidr.into()),
            remote_group_id: None,
            description: String::new(),
        };
        let kept = w
            .net
            .add_security_group_rule(&w.a, &g.id, ssh("10.0.0.0/8"))
            .await
            .expect("rule");
        let gone = w
            .net
            .add_security_group_rule(&w.a, &g.id, ssh("192.168.0.0/16"))
            .await
            .expect("rule");
        let e = w
            .net
            .remove_matching_rule(&w.b, &g.id, ssh("192.168.0.0/16"))
            .await
            .expect_err("foreign");
        assert!(
            matches!(e, NetworkError::NotFound { .. }),
            "{engine}: {e:?}"
        );
        let removed = w
            .net
            .remove_matching_rule(&w.a, &g.id, ssh("192.168.0.0/16"))
            .await
            .expect("revoke");
        assert_eq!(removed.id, gone.id, "{engine}");
        let e = w
            .net
            .remove_matching_rule(&w.a, &g.id, ssh("192.168.0.0/16"))
            .await
            .expect_err("again");
        assert!(
            matches!(
                e,
                NetworkError::NotFound {
                    kind: Resource::SecurityGroupRule,
                    ..
                }
            ),
            "{engine}: {e:?}"
        );
        let g = w.net.get_security_group(&w.a, &g.id).await.expect("group");
        let ids: Vec<&str> = g.rules.iter().map(|r| r.id.as_str()).collect();
        assert!(ids.contains(&kept.id.as_str()), "{engine}: {ids:?}");
        assert!(!ids.contains(&gone.id.as_str()), "{engine}: {ids:?}");
    }
}

/// EC2's Authorize and Revoke with several rules are one transaction
/// each: a list whose last rule is a duplicate adds nothing, a revoke
/// naming one missing rule removes nothing.
#[tokio::test]
async fn rule_lists_are_all_or_nothing() {
    for engine in ENGINES {
        let w = world(engine).await;
        let g = w
            .net
            .create_security_group(
                &w.a,
                NewSecurityGroup {
                    name: "web".into(),
                    description: String::new(),
                },
            )
            .await
            .expect("group");
        let rule = |protocol: &str, ports: Option<(i64, i64)>, cidr: &str| NewRule {
            direction: Direction::Ingress,
            protocol: protocol.into(),
            port_range_min: ports.map(|p| p.0),
            port_range_max: ports.map(|p| p.1),
            remote_cidr: Some(cidr.into()),
            remote_group_id: None,
            description: String::new(),
        };
        let ssh = || rule("tcp", Some((22, 22)), "10.0.0.0/8");
        let icmp = || rule("icmp", Some((8, 0)), "0.0.0.0/0");
        let http = || rule("tcp", Some((80, 80)), "0.0.0.0/0");
        let held = w
            .net
            .add_security_group_rules(&w.a, &g.id, vec![http()])
            .await
            .expect("http");
        let before = w.net.get_security_group(&w.a, &g.id).await.expect("group");
        let rows = count(&w, "security_group_rules").await;

        // The last rule is already held; then the last repeats the first.
        for list in [vec![ssh(), icmp(), http()], vec![ssh(), icmp(), ssh()]] {
            let e = w
                .net
                .add_security_group_rules(&w.a, &g.id, list)
                .await
                .expect_err("duplicate");
            assert!(
                matches!(
                    e,
                    NetworkError::AlreadyExists {
                        kind: Resource::SecurityGroupRule,
                        ..
                    }
                ),
                "{engine}: {e:?}"
            );
            assert_eq!(count(&w, "security_group_rules").await, rows, "{engine}");
            let now = w.net.get_security_group(&w.a, &g.id).await.expect("group");
            assert_eq!(now.generation, before.generation, "{engine}");
            assert_eq!(now.rules.len(), before.rules.len(), "{engine}");
        }
        // A bad rule anywhere in the list: nothing either.
        let e = w
            .net
            .add_security_group_rules(&w.a, &g.id, vec![ssh(), rule("gre", None, "0.0.0.0/0")])
            .await
            .expect_err("bad protocol");
        assert!(matches!(e, NetworkError::InvalidRule(_)), "{engine}: {e:?}");
        assert_eq!(count(&w, "security_group_rules").await, rows, "{engine}");

        let added = w
            .net
            .add_security_group_rules(&w.a, &g.id, vec![ssh(), icmp()])
            .await
            .expect("two rules");
        assert_eq!(added.len(), 2, "{engine}");
        assert_eq!(
            count(&w, "security_group_rules").await,
            rows + 2,
            "{engine}"
        );

        // Revoke: one missing rule (by content, then by id, then an egress
        // rule's id named as ingress) and nothing goes.
        let egress = before
            .rules
            .iter()
            .find(|r| r.direction == Direction::Egress)
            .expect("the group's egress rule")
            .id
            .clone();
        for missing in [
            RuleMatch::Content(rule("udp", Some((53, 53)), "0.0.0.0/0")),
            RuleMatch::Id {
                id: "sgr-0000000000000000f".into(),
                direction: Direction::Ingress,
            },
            RuleMatch::Id {
                id: egress.clone(),
                direction: Direction::Ingress,
            },
        ] {
            let e = w
                .net
                .remove_security_group_rules(
                    &w.a,
                    &g.id,
                    vec![RuleMatch::Content(ssh()), missing.clone()],
                )
                .await
                .expect_err("missing");
            assert!(
                matches!(
                    e,
                    NetworkError::NotFound {
                        kind: Resource::SecurityGroupRule,
                        ..
                    }
                ),
                "{engine} {missing:?}: {e:?}"
            );
            assert_eq!(
                count(&w, "security_group_rules").await,
                rows + 2,
                "{engine}"
            );
        }
        let e = w
            .net
            .remove_security_group_rules(&w.b, &g.id, vec![RuleMatch::Content(ssh())])
            .await
            .expect_err("foreign");
        assert!(
            matches!(
                e,
                NetworkError::NotFound {
                    kind: Resource::SecurityGroup,
                    ..
                }
            ),
            "{engine}: {e:?}"
        );
        let removed = w
            .net
            .remove_security_group_rules(
                &w.a,
                &g.id,
                vec![
                    RuleMatch::Content(ssh()),
                    RuleMatch::Id {
                        id: added[1].id.clone(),
                        direction: Direction::Ingress,
                    },
                    RuleMatch::Content(icmp()),
                ],
            )
            .await
            .expect("revoke two");
        let mut gone: Vec<&str> = removed.iter().map(|r| r.id.as_str()).collect();
        gone.sort();
        let mut want = vec![added[0].id.as_str(), added[1].id.as_str()];
        want.sort();
        assert_eq!(gone, want, "{engine}: one rule named twice goes once");
        let g = w.net.get_security_group(&w.a, &g.id).await.expect("group");
        let left: Vec<&str> = g.rules.iter().map(|r| r.id.as_str()).collect();
        assert!(left.contains(&held[0].id.as_str()), "{engine}: {left:?}");
        assert_eq!(count(&w, "security_group_rules").await, rows, "{engine}");
    }
}

/// A router attached to a network joins all its subnets or none, and
/// leaves them all or none.
#[tokio::test]
async fn router_attach_to_a_network_is_atomic() {
    for engine in ENGINES {
        let w = world(engine).await;
        let ext = external(&w, "203.0.113.0/24").await;
        let router = |name: &str| NewRouter {
            name: name.into(),
            external_network_id: Some(ext.id.clone()),
        };
        let r = w
            .net
            .create_router(&w.a, router("igw"))
            .await
            .expect("router");
        let other = w
            .net
            .create_router(&w.a, router("other"))
            .await
            .expect("router");
        let (n, s1) = network_with_subnet(&w, &w.a, "10.50.0.0/24").await;
        let mut subnets = vec![s1.id.clone()];
        for cidr in ["10.50.1.0/24", "10.50.2.0/24"] {
            let s = w
                .net
                .create_subnet(
                    &w.a,
                    NewSubnet {
                        network_id: n.id.clone(),
                        cidr: cidr.into(),
                        ..Default::default()
                    },
                )
                .await
                .expect("subnet");
            subnets.push(s.id);
        }
        // The last subnet is served by another router: nothing joins.
        w.net
            .add_router_interface(&w.a, &other.id, &subnets[2])
            .await
            .expect("other router");
        let ports = count(&w, "ports").await;
        let before = w.net.get_router(&w.a, &r.id).await.expect("router");
        let e = w
            .net
            .attach_router_to_network(&w.a, &r.id, &n.id)
            .await
            .expect_err("a subnet has a router");
        assert!(
            matches!(
                e,
                NetworkError::InUse {
                    kind: Resource::Subnet,
                    ..
                }
            ),
            "{engine}: {e:?}"
        );
        let now = w.net.get_router(&w.a, &r.id).await.expect("router");
        assert!(now.interfaces.is_empty(), "{engine}: {:?}", now.interfaces);
        assert_eq!(now.generation, before.generation, "{engine}");
        assert_eq!(count(&w, "ports").await, ports, "{engine}");
        // Another project's router or network is not found.
        let e = w
            .net
            .attach_router_to_network(&w.b, &r.id, &n.id)
            .await
            .expect_err("foreign router");
        assert!(
            matches!(e, NetworkError::NotFound { .. }),
            "{engine}: {e:?}"
        );
        let (nb, _) = network_with_subnet(&w, &w.b, "10.50.0.0/24").await;
        let e = w
            .net
            .attach_router_to_network(&w.a, &r.id, &nb.id)
            .await
            .expect_err("foreign network");
        assert!(
            matches!(e, NetworkError::NotFound { .. }),
            "{engine}: {e:?}"
        );

        w.net
            .remove_router_interface(&w.a, &other.id, &subnets[2])
            .await
            .expect("free the subnet");
        let attached = w
            .net
            .attach_router_to_network(&w.a, &r.id, &n.id)
            .await
            .expect("attach");
        let mut joined: Vec<String> = attached
            .interfaces
            .iter()
            .map(|i| i.subnet_id.clone())
            .collect();
        joined.sort();
        let mut want = subnets.clone();
        want.sort();
        assert_eq!(joined, want, "{engine}");
        assert_eq!(attached.generation, before.generation + 1, "{engine}");
        let e = w
            .net
            .attach_router_to_network(&w.a, &r.id, &n.id)
            .await
            .expect_err("again");
        assert!(
            matches!(
                e,
                NetworkError::InUse {
                    kind: Resource::Router,
                    ..
                }
            ),
            "{engine}: {e:?}"
        );

        // A floating address through the last subnet holds the whole
        // detach back.
        let port = w
            .net
            .create_port(
                &w.a,
                NewPort {
                    network_id: n.id.clone(),
                    fixed_ips: vec![FixedIpRequest {
                        subnet_id: Some(subnets[2].clone()),
                        ip_address: None,
                    }],
                    ..Default::default()
                },
            )
            .await
            .expect("port");
        let fip = w
            .net
            .allocate_floating_ip(&w.a, Some(&ext.id))
            .await
            .expect("fip");
        w.net
            .associate_floating_ip(&w.a, &fip.id, &port.id, None)
            .await
            .expect("associate");
        let e = w
            .net
            .detach_router_from_network(&w.a, &r.id, &n.id)
            .await
            .expect_err("fip through it");
        assert!(
            matches!(
                e,
                NetworkError::InUse {
                    kind: Resource::Router,
                    ..
                }
            ),
            "{engine}: {e:?}"
        );
        let now = w.net.get_router(&w.a, &r.id).await.expect("router");
        assert_eq!(now.interfaces.len(), 3, "{engine}");
        w.net
            .disassociate_floating_ip(&w.a, &fip.id)
            .await
            .expect("disassociate");
        let detached = w
            .net
            .detach_router_from_network(&w.a, &r.id, &n.id)
            .await
            .expect("detach");
        assert!(detached.interfaces.is_empty(), "{engine}");
        let e = w
            .net
            .detach_router_from_network(&w.a, &r.id, &n.id)
            .await
            .expect_err("not attached");
        assert!(
            matches!(e, NetworkError::NotAttached { .. }),
            "{engine}: {e:?}"
        );
    }
}

#[tokio::test]
async fn renames_keep_names_unique_and_projects_apart() {
    for engine in ENGINES {
        let w = world(engine).await;
        let (n, s) = network_with_subnet(&w, &w.a, "10.7.0.0/24").await;
        let p = w.net.create_port(&w.a, port_on(&n.id)).await.expect("port");
        let r = w
            .net
            .create_router(&w.a, NewRouter::default())
            .await
            .expect("router");
        let g = w
            .net
            .create_security_group(
                &w.a,
                NewSecurityGroup {
                    name: "web".into(),
                    description: String::new(),
                },
            )
            .await
            .expect("group");
        for (kind, id) in [
            (Resource::Network, &n.id),
            (Resource::Subnet, &s.id),
            (Resource::Port, &p.id),
            (Resource::Router, &r.id),
            (Resource::SecurityGroup, &g.id),
        ] {
            // Another project's id is "not found", and changes nothing.
            let e = w
                .net
                .rename(&w.b, kind, id, "stolen")
                .await
                .expect_err("another project's");
            assert!(
                matches!(e, NetworkError::NotFound { kind: k, .. } if k == kind),
                "{engine} {id}: {e}"
            );
            w.net
                .rename(&w.a, kind, id, "renamed")
                .await
                .unwrap_or_else(|e| panic!("{engine} rename {id}: {e}"));
        }
        assert_eq!(
            w.net.get_network(&w.a, &n.id).await.expect("n").name,
            "renamed"
        );
        assert_eq!(
            w.net.get_subnet(&w.a, &s.id).await.expect("s").name,
            "renamed"
        );
        assert_eq!(
            w.net.get_port(&w.a, &p.id).await.expect("p").name,
            "renamed"
        );
        assert_eq!(
            w.net.get_router(&w.a, &r.id).await.expect("r").name,
            "renamed"
        );
        let g2 = w
            .net
            .create_security_group(
                &w.a,
                NewSecurityGroup {
                    name: "db".into(),
                    description: String::new(),
                },
            )
            .await
            .expect("second group");
        // A group's name stays unique in its project, and `default` is the
        // project's own group: neither taken nor renamed.
        let e = w
            .net
            .rename(&w.a, Resource::SecurityGroup, &g2.id, "renamed")
            .await
            .expect_err("duplicate name");
        assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{engine}: {e}");
        let e = w
            .net
            .rename(&w.a, Resource::SecurityGroup, &g2.id, "default")
            .await
            .expect_err("default taken");
        assert_eq!(e.kind(), ErrorKind::Invalid, "{engine}: {e}");
        let groups = w
            .net
            .list_security_groups(&w.a, false)
            .await
            .expect("groups");
        let default = groups
            .iter()
            .find(|g| g.name == "default")
            .expect("default group");
        let e = w
            .net
            .rename(&w.a, Resource::SecurityGroup, &default.id, "mine")
            .await
            .expect_err("default renamed");
        assert_eq!(e.kind(), ErrorKind::Invalid, "{engine}: {e}");
        let names: BTreeSet<String> = w
            .net
            .list_security_groups(&w.a, false)
            .await
            .expect("groups")
            .into_iter()
            .map(|g| g.name)
            .collect();
        assert_eq!(
            names,
            ["db", "default", "renamed"].map(String::from).into(),
            "{engine}"
        );
        let e = w
            .net
            .rename(&w.a, Resource::Network, &n.id, "bad\nname")
            .await
            .expect_err("control characters");
        assert_eq!(e.kind(), ErrorKind::Invalid, "{engine}: {e}");
    }
}
