//! Security in force before an instance's init (ADR 24): the agent wakes on
//! this process's committed writes rather than its poll, and a plug returns
//! only once the plan in force names the port it plugged, with the
//! recording fake (both engines) and with the Linux driver and real
//! nftables inside namespaces the test creates.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nuage_driver::{DriverError, Nic, NicPlugger};
use nuage_identity::{Identity, IdentityConfig};
use nuage_model::identity::Principal;
use nuage_netdriver::fake::FakeNetDriver;
use nuage_netdriver::linux::{LinuxConfig, LinuxNetDriver};
use nuage_netdriver::plug::NetPlugger;
use nuage_netdriver::testing::NetNs;
use nuage_network::agent::{AgentConfig, NetworkAgent};
use nuage_network::types::{
    device_owner, Direction, NewNetwork, NewPort, NewRule, NewSecurityGroup, NewSubnet, Port,
};
use nuage_network::{NetworkConfig, NetworkService};
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

/// The revision poll and the resync are a minute apart: whatever the
/// agent does within a second here came from the wake-up or the plugger.
fn slow_poll() -> AgentConfig {
    AgentConfig {
        resync_every: Duration::from_secs(600),
        revision_poll: Duration::from_secs(60),
        concurrency: 8,
        backoff: (Duration::from_millis(20), Duration::from_millis(200)),
    }
}

/// A network with a /24 (gateway .1), as the tests' project's.
async fn network(net: &NetworkService, who: &Principal) -> String {
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
            cidr: "10.0.0.0/24".into(),
            ..Default::default()
        },
    )
    .await
    .expect("subnet");
    n.id
}

/// An instance port made as compute's launch makes it: in the caller's
/// transaction, which then commits and tells the service.
async fn launch_port(net: &NetworkService, who: &Principal, network: &str, device: &str) -> Port {
    let mut tx = net.db().begin().await.expect("begin");
    let p = net
        .create_port_in(
            &mut tx,
            who,
            NewPort {
                network_id: network.into(),
                device_owner: device_owner::INSTANCE.into(),
                device_id: device.into(),
                ..Default::default()
            },
        )
        .await
        .expect("port");
    tx.commit().await.expect("commit");
    net.notify_changed();
    p
}

fn nic(p: &Port) -> Nic {
    Nic {
        port_id: p.id.clone(),
        network_id: p.network_id.clone(),
        vlan: None,
        mac: p.mac_address.clone(),
        address: format!("{}/24", p.fixed_ips[0].ip_address),
        gateway: Some("10.0.0.1".into()),
        host_ifname: nuage_driver::nic_host_ifname(&p.id),
    }
}

fn start(
    agent: &NetworkAgent,
    net: &NetworkService,
) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    agent.wake_on(net.changes());
    let (tx, rx) = watch::channel(false);
    let a = agent.clone();
    (tx, tokio::spawn(async move { a.run(rx).await }))
}

async fn within<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn plan_names(fake: &FakeNetDriver, port: &str, group: &str) -> bool {
    fake.plan().is_some_and(|plan| {
        plan.ports
            .iter()
            .any(|p| p.id == port && p.groups.iter().any(|g| g == group))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_committed_write_wakes_the_agent_at_once() {
    for engine in ENGINES {
        let (t, net) = service(engine).await;
        let fake = Arc::new(FakeNetDriver::new());
        let plugger = NetPlugger::new(fake.clone());
        let agent = NetworkAgent::new(t.db.clone(), fake.clone(), plugger.gate(), slow_poll());
        let who = member("proj-w");
        let (stop, run) = start(&agent, &net);
        let n = network(&net, &who).await;
        // A launch's transaction, committed by its caller.
        let p = launch_port(&net, &who, &n, "i-1").await;
        within(
            "the launched port is in the plan",
            Duration::from_secs(2),
            || async {
                fake.plan()
                    .is_some_and(|plan| plan.ports.iter().any(|q| q.id == p.id))
            },
        )
        .await;
        // A service write (a rule) is applied and observed as quickly.
        let g = &p.security_groups[0];
        let began = Instant::now();
        let rule = net
            .add_security_group_rule(
                &who,
                g,
                NewRule {
                    direction: Direction::Ingress,
                    protocol: "tcp".into(),
                    port_range_min: Some(5201),
                    port_range_max: Some(5201),
                    remote_cidr: Some("10.0.0.0/24".into()),
                    remote_group_id: None,
                    description: String::new(),
                },
            )
            .await
            .expect("rule");
        within("the rule is observed", Duration::from_secs(2), || async {
            let sg = net.get_security_group(&who, g).await.expect("group");
            sg.observed_generation == sg.generation
        })
        .await;
        eprintln!("{engine}: rule → observed in {:?}", began.elapsed());
        let has_5201 = |fake: &FakeNetDriver| {
            fake.plan().is_some_and(|plan| {
                plan.groups.iter().any(|sg| {
                    &sg.id == g
                        && sg.rules.iter().any(|r| {
                            r.protocol
                                == nuage_netdriver::Protocol::Tcp(
                                    nuage_netdriver::PortRange::single(5201),
                                )
                        })
                })
            })
        };
        assert!(has_5201(&fake), "the new rule is in the plan");
        // The agent reads only changed groups again: a removal is seen too.
        net.remove_security_group_rule(&who, &rule.id)
            .await
            .expect("remove");
        within("the removal is applied", Duration::from_secs(2), || async {
            !has_5201(&fake)
        })
        .await;
        stop.send(true).expect("stop");
        run.await.expect("agent");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plug_returns_with_its_port_in_the_plan_in_force() {
    for engine in ENGINES {
        let (t, net) = service(engine).await;
        let fake = Arc::new(FakeNetDriver::new());
        let plugger = NetPlugger::new(fake.clone());
        let agent = NetworkAgent::new(t.db.clone(), fake.clone(), plugger.gate(), slow_poll());
        let plugger = plugger.with_security_in_force(
            agent.security_in_force(),
            nuage_netdriver::plug::SECURITY_WAIT,
        );
        // Not woken by writes here: only the plugger's own ask can bring
        // the port in before the minute-long poll.
        let (stop, rx) = watch::channel(false);
        let run = tokio::spawn({
            let a = agent.clone();
            async move { a.run(rx).await }
        });
        let who = member("proj-p");
        let n = network(&net, &who).await;
        for i in 0..5 {
            let p = launch_port(&net, &who, &n, &format!("i-{i}")).await;
            plugger
                .plug(&p.device_id, Path::new("/x"), &[nic(&p)])
                .await
                .expect("plug");
            assert!(
                plan_names(&fake, &p.id, &p.security_groups[0]),
                "{engine}: port {} is in the plan when plug returns",
                p.id
            );
        }
        // A running instance's port changes groups; the driver plugs again
        // (its `apply`), which returns once the new membership is in force.
        let p = launch_port(&net, &who, &n, "i-moved").await;
        plugger
            .plug(&p.device_id, Path::new("/x"), &[nic(&p)])
            .await
            .expect("plug");
        let web = net
            .create_security_group(
                &who,
                NewSecurityGroup {
                    name: "web".into(),
                    description: String::new(),
                },
            )
            .await
            .expect("group");
        net.set_port_security_groups(&who, &p.id, std::slice::from_ref(&web.id))
            .await
            .expect("groups");
        plugger
            .plug(&p.device_id, Path::new("/x"), &[nic(&p)])
            .await
            .expect("plug again");
        assert!(
            plan_names(&fake, &p.id, &web.id),
            "{engine}: new group in force"
        );
        stop.send(true).expect("stop");
        run.await.expect("agent");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plug_whose_security_never_comes_fails_within_its_bound() {
    let (t, net) = service("sqlite").await;
    let fake = Arc::new(FakeNetDriver::new());
    let plugger = NetPlugger::new(fake.clone());
    // The agent is never run.
    let agent = NetworkAgent::new(t.db.clone(), fake.clone(), plugger.gate(), slow_poll());
    let plugger =
        plugger.with_security_in_force(agent.security_in_force(), Duration::from_millis(300));
    let who = member("proj-b");
    let n = network(&net, &who).await;
    let p = launch_port(&net, &who, &n, "i-1").await;
    let began = Instant::now();
    let err = plugger
        .plug("i-1", Path::new("/x"), &[nic(&p)])
        .await
        .expect_err("no agent, no security");
    assert!(began.elapsed() < Duration::from_secs(2), "bounded");
    let DriverError::Failed(m) = &err else {
        panic!("not Failed (retried by compute): {err}");
    };
    assert!(m.contains(&p.id) && m.contains("300 ms"), "{m}");
    // The gate was let go: a removal pass can take it.
    tokio::time::timeout(Duration::from_secs(1), plugger.gate().exclusive())
        .await
        .expect("the gate is free");
    // A port whose row is gone (the instance terminated meanwhile) fails
    // at once rather than waiting.
    let mut tx = net.db().begin().await.expect("begin");
    net.delete_device_ports_in(&mut tx, "i-1")
        .await
        .expect("delete");
    tx.commit().await.expect("commit");
    let err = plugger
        .plug("i-1", Path::new("/x"), &[nic(&p)])
        .await
        .expect_err("gone");
    assert!(err.to_string().contains("no longer exists"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_plug_returns_with_its_rules_in_nftables() {
    let (t, net) = service("sqlite").await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let node = NetNs::create(tmp.path(), "node").expect("node namespace (run as root)");
    let inst = NetNs::create(tmp.path(), "i-1").expect("instance namespace");
    let driver = Arc::new(LinuxNetDriver::new(LinuxConfig {
        host_netns: Some(node.path().to_path_buf()),
        ..Default::default()
    }));
    let plugger = NetPlugger::new(driver.clone());
    let agent = NetworkAgent::new(t.db.clone(), driver.clone(), plugger.gate(), slow_poll());
    let plugger = plugger.with_security_in_force(
        agent.security_in_force(),
        nuage_netdriver::plug::SECURITY_WAIT,
    );
    let (stop, run) = start(&agent, &net);
    let who = member("proj-r");
    let n = network(&net, &who).await;
    let p = launch_port(&net, &who, &n, "i-1").await;
    let began = Instant::now();
    plugger
        .plug("i-1", inst.path(), &[nic(&p)])
        .await
        .expect("plug");
    eprintln!("plug with security in force: {:?}", began.elapsed());
    let listed = node
        .exec("nft", &["-j", "list", "table", "inet", "nuage"])
        .expect("nft");
    assert!(listed.status.success(), "{listed:?}");
    let text = String::from_utf8_lossy(&listed.stdout);
    for chain in [
        format!("in-{}", p.id),
        format!("spoof-{}", p.id),
        format!("g-{}-in", p.security_groups[0]),
    ] {
        assert!(text.contains(&chain), "{chain} is not in force: {text}");
    }
    stop.send(true).expect("stop");
    run.await.expect("agent");
}
