//! The node's network agent: rows in a real store (SQLite and PostgreSQL)
//! driving the recording fake at scale, a failing driver that must change
//! no row, and the Linux driver inside namespaces the test creates.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nuage_driver::{Nic, NicPlugger};
use nuage_identity::{Identity, IdentityConfig};
use nuage_model::identity::Principal;
use nuage_netdriver::fake::FakeNetDriver;
use nuage_netdriver::plug::NetPlugger;
use nuage_netdriver::{
    Ipv4Cidr, Member, NetDriver, NetError, NetResult, NetworkSpec, Observed, PortSpec, RouterSpec,
    SecurityPlan,
};
use nuage_network::agent::{AgentConfig, NetworkAgent};
use nuage_network::types::{
    device_owner, Direction, NewNetwork, NewPort, NewRule, NewSubnet, Port,
};
use nuage_network::{NetworkConfig, NetworkService};
use nuage_store::sqlx;
use nuage_store::testing::{fresh, TestDb, ENGINES};
use tokio::sync::watch;

fn member(project: &str) -> Principal {
    Principal {
        user_id: format!("u-{project}"),
        user_name: format!("u-{project}"),
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

async fn service(engine: &str) -> (TestDb, NetworkService) {
    let t = fresh(engine).await.expect("db");
    let identity = Identity::open(t.db.clone(), IdentityConfig::default())
        .await
        .expect("identity");
    let net = NetworkService::new(t.db.clone(), identity, NetworkConfig::default())
        .expect("network service");
    (t, net)
}

/// A network with one /24 subnet (gateway .1) and `ports` instance ports
/// on it, as compute's launch makes them.
async fn network_with_ports(
    net: &NetworkService,
    who: &Principal,
    cidr: &str,
    ports: usize,
    device: &str,
) -> Vec<Port> {
    let n = net
        .create_network(
            who,
            NewNetwork {
                name: "n".into(),
                ..Default::default()
            },
        )
        .await
        .expect("network");
    net.create_subnet(
        who,
        NewSubnet {
            network_id: n.id.clone(),
            cidr: cidr.into(),
            ..Default::default()
        },
    )
    .await
    .expect("subnet");
    let mut out = Vec::new();
    for i in 0..ports {
        out.push(
            net.create_port(
                who,
                NewPort {
                    network_id: n.id.clone(),
                    device_owner: device_owner::INSTANCE.into(),
                    device_id: format!("{device}-{i}"),
                    ..Default::default()
                },
            )
            .await
            .expect("port"),
        );
    }
    out
}

/// The NIC compute's launch would put in the instance's spec.
fn nic(p: &Port, prefix: u8, gateway: &str) -> Nic {
    Nic {
        port_id: p.id.clone(),
        network_id: p.network_id.clone(),
        vlan: None,
        mac: p.mac_address.clone(),
        address: format!("{}/{prefix}", p.fixed_ips[0].ip_address),
        gateway: Some(gateway.into()),
        host_ifname: nuage_driver::nic_host_ifname(&p.id),
    }
}

fn config() -> AgentConfig {
    AgentConfig {
        resync_every: Duration::from_secs(600),
        revision_poll: Duration::from_millis(20),
        concurrency: 8,
        backoff: (Duration::from_millis(20), Duration::from_millis(200)),
    }
}

/// Rows of `table` whose node has not applied their generation.
async fn behind(t: &TestDb, table: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(&format!(
        "SELECT COUNT(*) FROM {table} WHERE observed_generation <> generation"
    ))
    .fetch_one(t.db.reader())
    .await
    .expect("count");
    n
}

async fn observed_sum(t: &TestDb) -> i64 {
    let mut sum = 0;
    for table in ["networks", "subnets", "ports", "security_groups"] {
        let (n,): (i64,) = sqlx::query_as(&format!(
            "SELECT CAST(COALESCE(SUM(observed_generation), 0) AS BIGINT) FROM {table}"
        ))
        .fetch_one(t.db.reader())
        .await
        .expect("sum");
        sum += n;
    }
    sum
}

/// Polls `check` until it holds or 60 s pass.
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn start(agent: &NetworkAgent) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(false);
    let a = agent.clone();
    (tx, tokio::spawn(async move { a.run(rx).await }))
}

#[tokio::test(flavor = "multi_thread")]
async fn hundred_networks_converge_and_orphans_go() {
    for engine in ENGINES {
        let (t, net) = service(engine).await;
        let fake = Arc::new(FakeNetDriver::new());
        let plugger = NetPlugger::new(fake.clone());
        let who = member("proj-a");
        let mut ports = Vec::new();
        for i in 0..100 {
            let p = network_with_ports(&net, &who, "10.0.0.0/24", 1, &format!("i-{i}")).await;
            ports.extend(p);
        }
        // A network without instance ports gets no bridge.
        let idle = network_with_ports(&net, &who, "10.9.0.0/24", 0, "none").await;
        assert!(idle.is_empty());
        // The compute driver plugs each instance's NIC.
        for p in &ports {
            plugger
                .plug(
                    &p.device_id,
                    std::path::Path::new("/x"),
                    &[nic(p, 24, "10.0.0.1")],
                )
                .await
                .expect("plug");
        }
        // Leftovers of a crash: a port and a bridge no row owns, and a stray
        // address on a wanted bridge.
        let orphan = NetworkSpec {
            id: "vpc-orphan".into(),
            vlan: None,
        };
        fake.ensure_network(&orphan).await.expect("orphan bridge");
        fake.ensure_port(&PortSpec {
            id: "eni-orphan".into(),
            network_id: "vpc-orphan".into(),
            netns: "/x".into(),
            device: "eth0".into(),
            mac: "fa:16:3e:99:99:99".parse().expect("mac"),
            address: "10.0.0.99/24".parse().expect("cidr"),
            gateway: None,
        })
        .await
        .expect("orphan port");
        // A routing domain nothing owns (its network has no row).
        fake.ensure_router(&RouterSpec {
            key: "rtr-orphan".into(),
            links: vec![nuage_netdriver::RouterLink {
                network_id: "vpc-orphan".into(),
                gateways: vec!["10.0.0.1/24".parse().expect("cidr")],
            }],
            external: None,
        })
        .await
        .expect("orphan router");
        let stray: Ipv4Cidr = "192.168.9.1/24".parse().expect("cidr");
        fake.ensure_gateway(&ports[0].network_id, stray)
            .await
            .expect("stray address");

        let agent = NetworkAgent::new(t.db.clone(), fake.clone(), plugger.gate(), config());
        let began = Instant::now();
        let (stop, run) = start(&agent);
        let gw: Ipv4Cidr = "10.0.0.1/24".parse().expect("cidr");
        let want_nets: BTreeSet<String> = ports.iter().map(|p| p.network_id.clone()).collect();
        until("100 networks converge", || async {
            let Ok(o) = fake.observe().await else {
                return false;
            };
            let nets: BTreeSet<String> = o.networks.iter().map(|n| n.id.clone()).collect();
            nets == want_nets
                && o.networks.iter().all(|n| n.addresses.is_empty())
                && o.routers.len() == 100
                && o
                    .routers
                    .iter()
                    .all(|r| r.links.len() == 1 && r.links[0].addresses == [gw])
                && o.ports.len() == 100
                && fake.plan().is_some_and(|p| p.ports.len() == 100)
                && behind(&t, "networks").await == 1 // the idle one
                && behind(&t, "subnets").await == 1
                && behind(&t, "ports").await == 0
                && behind(&t, "security_groups").await == 0
        })
        .await;
        eprintln!(
            "{engine}: 100 networks and ports converged in {:?}",
            began.elapsed()
        );
        assert!(
            fake.router("rtr-orphan").is_none(),
            "the orphan domain is gone"
        );
        // Every network's implicit domain is published to the services.
        let domains = agent.router_domains().borrow().clone();
        assert_eq!(domains.len(), 100);
        assert!(domains
            .iter()
            .all(|d| d.key.starts_with("net:") && d.links.len() == 1));
        let plan = fake.plan().expect("plan");
        assert_eq!(plan.groups.len(), 1, "the project's default group");
        assert!(plan
            .ports
            .iter()
            .all(|p| p.groups == [plan.groups[0].id.clone()]));
        assert_eq!(
            fake.members(&plan.groups[0].id).len(),
            100,
            "every port is a member"
        );

        // A rule change is applied, and its group marked observed.
        let group = plan.groups[0].id.clone();
        net.add_security_group_rule(
            &who,
            &group,
            NewRule {
                direction: Direction::Ingress,
                protocol: "tcp".into(),
                port_range_min: Some(22),
                port_range_max: Some(22),
                remote_cidr: Some("192.168.0.0/16".into()),
                remote_group_id: None,
                description: String::new(),
            },
        )
        .await
        .expect("rule");
        until("the new rule is in force", || async {
            fake.plan().is_some_and(|p| {
                p.groups[0].rules.iter().any(|r| {
                    r.protocol
                        == nuage_netdriver::Protocol::Tcp(nuage_netdriver::PortRange::single(22))
                })
            }) && behind(&t, "security_groups").await == 0
        })
        .await;

        // Instances terminated while their node's driver could not unplug:
        // the rows go, the orphan pass removes ports and bridges.
        let mut tx = t.db.begin().await.expect("tx");
        for p in &ports[..50] {
            net.delete_device_ports_in(&mut tx, &p.device_id)
                .await
                .expect("delete ports");
        }
        tx.commit().await.expect("commit");
        let kept: BTreeSet<String> = ports[50..].iter().map(|p| p.network_id.clone()).collect();
        until("the 50 orphans are removed", || async {
            let Ok(o) = fake.observe().await else {
                return false;
            };
            let nets: BTreeSet<String> = o.networks.iter().map(|n| n.id.clone()).collect();
            nets == kept
                && o.ports.len() == 50
                && o.routers.len() == 50
                && agent.router_domains().borrow().len() == 50
        })
        .await;
        until("the plan drops them", || async {
            fake.plan().is_some_and(|p| p.ports.len() == 50)
        })
        .await;
        let stats = agent.stats().expect("stats");
        assert_eq!(stats.errors, 0, "{stats:?}");
        // Recording what it observed is no change to act on: the agent is
        // quiet until something changes.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = agent.stats().expect("stats").reconciles;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            agent.stats().expect("stats").reconciles,
            before,
            "no busy loop"
        );
        stop.send(true).expect("stop");
        run.await.expect("agent ran");
    }
}

/// The fake, failing every change while `fail` is set.
struct Flaky {
    fake: FakeNetDriver,
    fail: AtomicBool,
}

impl Flaky {
    fn check(&self) -> NetResult<()> {
        if self.fail.load(Ordering::SeqCst) {
            Err(NetError::Failed("flaky: EBUSY".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait::async_trait]
impl NetDriver for Flaky {
    fn name(&self) -> &'static str {
        "flaky"
    }
    async fn ensure_network(&self, n: &NetworkSpec) -> NetResult<()> {
        self.check()?;
        self.fake.ensure_network(n).await
    }
    async fn remove_network(&self, id: &str) -> NetResult<()> {
        self.check()?;
        self.fake.remove_network(id).await
    }
    async fn ensure_gateway(&self, id: &str, a: Ipv4Cidr) -> NetResult<()> {
        self.check()?;
        self.fake.ensure_gateway(id, a).await
    }
    async fn remove_gateway(&self, id: &str, a: Ipv4Cidr) -> NetResult<()> {
        self.check()?;
        self.fake.remove_gateway(id, a).await
    }
    async fn ensure_port(&self, p: &PortSpec) -> NetResult<()> {
        self.check()?;
        self.fake.ensure_port(p).await
    }
    async fn remove_port(&self, id: &str) -> NetResult<()> {
        self.check()?;
        self.fake.remove_port(id).await
    }
    async fn apply_security(&self, plan: &SecurityPlan) -> NetResult<()> {
        self.check()?;
        self.fake.apply_security(plan).await
    }
    async fn set_group_members(&self, g: &str, m: &[Member]) -> NetResult<()> {
        self.check()?;
        self.fake.set_group_members(g, m).await
    }
    async fn ensure_router(&self, r: &RouterSpec) -> NetResult<()> {
        self.check()?;
        self.fake.ensure_router(r).await
    }
    async fn remove_router(&self, key: &str) -> NetResult<()> {
        self.check()?;
        self.fake.remove_router(key).await
    }
    async fn observe(&self) -> NetResult<Observed> {
        self.fake.observe().await
    }
}

/// The fake, counting whole observations of the node.
#[derive(Default)]
struct Counting {
    fake: FakeNetDriver,
    observes: AtomicUsize,
}

#[async_trait::async_trait]
impl NetDriver for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }
    async fn ensure_network(&self, n: &NetworkSpec) -> NetResult<()> {
        self.fake.ensure_network(n).await
    }
    async fn remove_network(&self, id: &str) -> NetResult<()> {
        self.fake.remove_network(id).await
    }
    async fn ensure_gateway(&self, id: &str, a: Ipv4Cidr) -> NetResult<()> {
        self.fake.ensure_gateway(id, a).await
    }
    async fn remove_gateway(&self, id: &str, a: Ipv4Cidr) -> NetResult<()> {
        self.fake.remove_gateway(id, a).await
    }
    async fn ensure_port(&self, p: &PortSpec) -> NetResult<()> {
        self.fake.ensure_port(p).await
    }
    async fn remove_port(&self, id: &str) -> NetResult<()> {
        self.fake.remove_port(id).await
    }
    async fn apply_security(&self, plan: &SecurityPlan) -> NetResult<()> {
        self.fake.apply_security(plan).await
    }
    async fn set_group_members(&self, g: &str, m: &[Member]) -> NetResult<()> {
        self.fake.set_group_members(g, m).await
    }
    async fn ensure_router(&self, r: &RouterSpec) -> NetResult<()> {
        self.fake.ensure_router(r).await
    }
    async fn remove_router(&self, key: &str) -> NetResult<()> {
        self.fake.remove_router(key).await
    }
    async fn observe(&self) -> NetResult<Observed> {
        self.observes.fetch_add(1, Ordering::SeqCst);
        self.fake.observe().await
    }
}

/// Launches wake the agent often: looking at a clean node for orphans
/// neither waits for nor holds up a plug in flight, and happens at most
/// once a second however many wake-ups come; leftovers still go.
#[tokio::test(flavor = "multi_thread")]
async fn the_orphan_look_holds_no_plug_and_runs_at_most_once_a_second() {
    for engine in ENGINES {
        let (t, net) = service(engine).await;
        let driver = Arc::new(Counting::default());
        let plugger = NetPlugger::new(driver.clone());
        let who = member("proj-a");
        let ports = network_with_ports(&net, &who, "10.0.0.0/24", 2, "i-1").await;
        for p in &ports {
            plugger
                .plug(
                    &p.device_id,
                    std::path::Path::new("/x"),
                    &[nic(p, 24, "10.0.0.1")],
                )
                .await
                .expect("plug");
        }
        let agent = NetworkAgent::new(t.db.clone(), driver.clone(), plugger.gate(), config());
        let (stop, run) = start(&agent);
        until("the first pass is done", || async {
            driver.observes.load(Ordering::SeqCst) >= 1
                && driver.fake.plan().is_some_and(|p| p.ports.len() == 2)
        })
        .await;

        // A plug in flight holds the gate shared; twenty wake-ups in 1.5 s.
        let held = plugger.gate().shared().await;
        let before = driver.observes.load(Ordering::SeqCst);
        for _ in 0..20 {
            agent.resync();
            tokio::time::sleep(Duration::from_millis(75)).await;
        }
        let looks = driver.observes.load(Ordering::SeqCst) - before;
        assert!(
            (1..=3).contains(&looks),
            "{engine}: {looks} looks at the node in 1.5 s while a plug held the gate"
        );
        drop(held);

        // The instance goes from the store while its unplug never ran:
        // the look finds the orphans and the pass under the gate removes them.
        let mut tx = t.db.begin().await.expect("tx");
        net.delete_device_ports_in(&mut tx, &ports[1].device_id)
            .await
            .expect("delete");
        tx.commit().await.expect("commit");
        until("the orphaned port goes", || async {
            driver.fake.port(&ports[1].id).is_none() && driver.fake.port(&ports[0].id).is_some()
        })
        .await;
        stop.send(true).expect("stop");
        run.await.expect("agent ran");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn driver_errors_are_retried_and_change_no_row() {
    for engine in ENGINES {
        let (t, net) = service(engine).await;
        let flaky = Arc::new(Flaky {
            fake: FakeNetDriver::new(),
            fail: AtomicBool::new(true),
        });
        let who = member("proj-b");
        let ports = network_with_ports(&net, &who, "10.0.0.0/24", 3, "i").await;
        // An orphan the failing observation must not remove.
        flaky
            .fake
            .ensure_network(&NetworkSpec {
                id: "vpc-orphan".into(),
                vlan: None,
            })
            .await
            .expect("orphan");
        flaky.fake.fail_observe(true);
        let before = observed_sum(&t).await;
        let plugger = NetPlugger::new(flaky.clone());
        let agent = NetworkAgent::new(t.db.clone(), flaky.clone(), plugger.gate(), config());
        let (stop, run) = start(&agent);
        until("failures were retried", || async {
            agent.stats().is_some_and(|s| s.errors >= 9)
        })
        .await;
        assert_eq!(observed_sum(&t).await, before, "an error recorded nothing");
        assert!(flaky.fake.plan().is_none());
        let o = {
            flaky.fake.fail_observe(false);
            let o = flaky.fake.observe().await.expect("observe");
            flaky.fake.fail_observe(true);
            o
        };
        assert_eq!(o.networks.len(), 1, "a failed observation removed nothing");

        flaky.fail.store(false, Ordering::SeqCst);
        flaky.fake.fail_observe(false);
        until("the node converges once the driver recovers", || async {
            let Ok(o) = flaky.fake.observe().await else {
                return false;
            };
            o.networks.len() == 1
                && o.networks[0].id == ports[0].network_id
                && flaky.fake.plan().is_some_and(|p| p.ports.len() == 3)
                && behind(&t, "ports").await == 0
                && behind(&t, "networks").await == 0
        })
        .await;
        stop.send(true).expect("stop");
        run.await.expect("agent ran");
    }
}

mod linux {
    use super::*;
    use nuage_netdriver::bridge_name;
    use nuage_netdriver::linux::{LinuxConfig, LinuxNetDriver};
    use nuage_netdriver::testing::NetNs;

    #[tokio::test(flavor = "multi_thread")]
    async fn rows_drive_bridge_gateway_and_rules_in_a_namespace() {
        // Fails, never skips, without root (namespaces) or busybox (ping).
        assert!(
            std::path::Path::new("/bin/busybox").is_file(),
            "this test needs /bin/busybox (apt-get install busybox-static)"
        );
        let (t, net) = service("sqlite").await;
        let tmp = tempfile::tempdir().expect("tempdir");
        let node = NetNs::create(tmp.path(), "node").expect("node namespace (run as root)");
        let inst = NetNs::create(tmp.path(), "i-1").expect("instance namespace");
        let driver = Arc::new(LinuxNetDriver::new(LinuxConfig {
            host_netns: Some(node.path().to_path_buf()),
            routers_dir: Some(tmp.path().join("routers")),
            // Tables listed at every observation, not every 30 s.
            security_check_every: Some(Duration::ZERO),
            ..Default::default()
        }));
        let plugger = NetPlugger::new(driver.clone());
        let who = member("proj-c");
        let ports = network_with_ports(&net, &who, "10.0.0.0/24", 1, "i-1").await;
        let p = &ports[0];
        plugger
            .plug("i-1", inst.path(), &[nic(p, 24, "10.0.0.1")])
            .await
            .expect("plug");
        let ping_gateway = || {
            inst.exec("/bin/busybox", &["ping", "-c", "1", "-W", "1", "10.0.0.1"])
                .expect("busybox ping")
                .status
                .success()
        };
        assert!(!ping_gateway(), "no gateway before the agent runs");

        let agent = NetworkAgent::new(t.db.clone(), driver.clone(), plugger.gate(), config());
        let (stop, run) = start(&agent);
        until("bridge, gateway and rules are in place", || async {
            let Ok(o) = driver.observe().await else {
                return false;
            };
            o.security_table
                && o.networks.len() == 1
                && o.networks[0].addresses.is_empty()
                && o.routers.len() == 1
                && o.routers[0].links[0].addresses == ["10.0.0.1/24".parse().expect("cidr")]
                && behind(&t, "ports").await == 0
        })
        .await;
        let listed = node
            .exec("nft", &["-j", "list", "table", "inet", "nuage"])
            .expect("nft");
        assert!(listed.status.success(), "{listed:?}");
        let text = String::from_utf8_lossy(&listed.stdout);
        for chain in [format!("in-{}", p.id), format!("spoof-{}", p.id)] {
            assert!(
                text.contains(&chain),
                "{chain} is not in the ruleset: {text}"
            );
        }
        assert!(ping_gateway(), "the instance's gateway answers");

        // A bridge deleted by hand is put back, with its gateway, by the
        // next pass (the periodic resync; asked for at once here).
        node.delete_link(&bridge_name(&p.network_id))
            .expect("delete the bridge");
        agent.resync();
        until("the bridge and its router link are back", || async {
            driver.observe().await.is_ok_and(|o| {
                o.networks.len() == 1 && o.routers.len() == 1 && o.routers[0].links[0].attached
            })
        })
        .await;
        // The instance's own veth is the plugger's to re-attach (ADR 20).
        plugger
            .plug("i-1", inst.path(), &[nic(p, 24, "10.0.0.1")])
            .await
            .expect("plug again");
        assert!(ping_gateway(), "the gateway answers again");
        let domains = agent.router_domains().borrow().clone();
        assert_eq!(domains.len(), 1);
        assert_eq!(domains[0].key, format!("net:{}", p.network_id));
        assert_eq!(
            domains[0].links[0].gateway,
            "10.0.0.1".parse::<std::net::Ipv4Addr>().expect("ip")
        );
        assert!(nuage_netdriver::node::is_netns(&domains[0].netns).expect("statfs"));

        // The security table deleted by hand is put back whole by the next
        // pass, although the plan did not change.
        let deleted = node
            .exec("nft", &["delete", "table", "inet", "nuage"])
            .expect("nft");
        assert!(deleted.status.success(), "{deleted:?}");
        agent.resync();
        until("the security table is back", || async {
            driver.observe().await.is_ok_and(|o| o.security_table)
        })
        .await;
        let listed = node
            .exec("nft", &["-j", "list", "table", "inet", "nuage"])
            .expect("nft");
        assert!(String::from_utf8_lossy(&listed.stdout).contains(&format!("in-{}", p.id)));

        // The router's table deleted by hand: the orphan pass sees it
        // missing and the routers pass puts it back, long before the
        // resync (600 s here) would ensure the domain again.
        let router_nft = |args: &[&str]| {
            nuage_netdriver::testing::run_in(&domains[0].netns, || {
                std::process::Command::new("nft").args(args).output()
            })
            .expect("thread")
            .expect("nft")
        };
        let deleted = router_nft(&["delete", "table", "ip", "nuage-router"]);
        assert!(deleted.status.success(), "{deleted:?}");
        agent.resync();
        until("the router's table is back", || async {
            router_nft(&["list", "table", "ip", "nuage-router"])
                .status
                .success()
        })
        .await;

        // The instance goes from the store (its unplug never ran): the
        // orphan pass removes its port and the bridge.
        let mut tx = t.db.begin().await.expect("tx");
        net.delete_device_ports_in(&mut tx, "i-1-0")
            .await
            .expect("delete");
        tx.commit().await.expect("commit");
        until("port, bridge and routing domain are gone", || async {
            node.link_names().is_ok_and(|l| l == ["lo"])
                && driver.observe().await.is_ok_and(|o| o.routers.is_empty())
        })
        .await;
        assert!(!domains[0].netns.exists(), "the router namespace is gone");
        assert_eq!(inst.link_names().expect("links"), ["lo"]);
        assert!(!node
            .link_names()
            .expect("links")
            .contains(&bridge_name(&p.network_id)));
        stop.send(true).expect("stop");
        run.await.expect("agent ran");
    }
}

/// A Neutron router through the agent: its interface takes the network
/// from its implicit domain, its gateway gives it an external leg, a
/// floating address appears on it and goes with disassociation, and
/// removing the interface gives the network back its implicit domain; the
/// router's and the address's observed generations are recorded.
#[tokio::test(flavor = "multi_thread")]
async fn routers_and_floating_addresses_follow_the_store() {
    for engine in ENGINES {
        let (t, net) = service(engine).await;
        let fake = Arc::new(FakeNetDriver::new());
        let plugger = NetPlugger::new(fake.clone());
        let who = member("proj-r");
        let ports = network_with_ports(&net, &who, "10.5.0.0/24", 1, "i-r").await;
        let p = &ports[0];
        let ext = net
            .ensure_external_network(
                "proj-admin",
                &nuage_network::ExternalNetworkConfig {
                    name: "external".into(),
                    cidr: "192.168.100.0/24".into(),
                    gateway_ip: None,
                    allocation_pool: None,
                },
            )
            .await
            .expect("external network");
        let agent = NetworkAgent::new(t.db.clone(), fake.clone(), plugger.gate(), config());
        let (stop, run) = start(&agent);
        let implicit = format!("net:{}", p.network_id);
        until("the implicit domain", || async {
            fake.router(&implicit).is_some()
        })
        .await;

        let r = net
            .create_router(
                &who,
                nuage_network::types::NewRouter {
                    name: "r".into(),
                    external_network_id: Some(ext.id.clone()),
                },
            )
            .await
            .expect("router");
        net.add_router_interface(&who, &r.id, &p.fixed_ips[0].subnet_id)
            .await
            .expect("interface");
        let f = net.allocate_floating_ip(&who, None).await.expect("fip");
        net.associate_floating_ip(&who, &f.id, &p.id, None)
            .await
            .expect("associate");
        let public: std::net::Ipv4Addr = f.floating_ip_address.parse().expect("ip");
        let fixed: std::net::Ipv4Addr = p.fixed_ips[0].ip_address.parse().expect("ip");
        until(
            "the router holds the network and the floating address",
            || async {
                let Some(spec) = fake.router(&r.id) else {
                    return false;
                };
                fake.router(&implicit).is_none()
                    && spec.links.len() == 1
                    && spec.links[0].gateways == ["10.5.0.1/24".parse().expect("cidr")]
                    && spec.external.as_ref().is_some_and(|e| {
                        e.address.prefix == 24
                            && e.gateway == Some("192.168.100.1".parse().expect("ip"))
                            && e.floating == [nuage_netdriver::FloatingAddress { public, fixed }]
                    })
                    && behind(&t, "routers").await == 0
                    && behind(&t, "floating_ips").await == 0
            },
        )
        .await;
        let published = agent.router_domains().borrow().clone();
        assert_eq!(published.len(), 1, "{engine}");
        assert_eq!(published[0].key, r.id);

        net.disassociate_floating_ip(&who, &f.id)
            .await
            .expect("disassociate");
        until("the floating address is gone", || async {
            fake.router(&r.id)
                .and_then(|s| s.external)
                .is_some_and(|e| e.floating.is_empty())
        })
        .await;
        net.remove_router_interface(&who, &r.id, &p.fixed_ips[0].subnet_id)
            .await
            .expect("remove interface");
        until("the network is back in its implicit domain", || async {
            fake.router(&implicit).is_some() && fake.router(&r.id).is_none()
        })
        .await;
        stop.send(true).expect("stop");
        run.await.expect("agent ran");
    }
}
