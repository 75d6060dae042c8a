//! A process killed with SIGKILL in the middle of allocating (its
//! transaction open, rows written, nothing committed) leaks no port and no
//! address, and what it committed before stays, with no duplicate: on
//! SQLite (the WAL's uncommitted frames are ignored) and on PostgreSQL (the
//! server rolls back the dropped connection's transaction).
//!
//! The child is this test binary run again on one ignored test, which does
//! its work only when the parent starts it with the database in its
//! environment.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use nuage_identity::{Identity, IdentityConfig};
use nuage_model::identity::Principal;
use nuage_network::types::{NewNetwork, NewPort, NewSubnet};
use nuage_network::{NetworkConfig, NetworkService};
use nuage_store::testing::{fresh, ENGINES};
use nuage_store::{sqlx, Db};

const URL: &str = "NUAGE_NET_KILL9_URL";
const NETWORK: &str = "NUAGE_NET_KILL9_NETWORK";

fn member() -> Principal {
    Principal {
        user_id: "u".into(),
        user_name: "u".into(),
        domain_id: "default".into(),
        project_id: "p-kill9".into(),
        project_name: "p".into(),
        project_domain_id: "default".into(),
        roles: vec!["member".into(), "reader".into()],
        method: "token".into(),
        audit_id: String::new(),
        expires_at: i64::MAX,
    }
}

async fn service(db: &Db) -> NetworkService {
    let identity = Identity::open(db.clone(), IdentityConfig::default())
        .await
        .expect("identity");
    NetworkService::new(db.clone(), identity, NetworkConfig::default()).expect("service")
}

fn port(network: &str) -> NewPort {
    NewPort {
        network_id: network.into(),
        device_owner: "compute:instance".into(),
        device_id: "i-00000000000000009".into(),
        ..Default::default()
    }
}

#[tokio::test]
#[ignore = "the child half of allocations_are_atomic_across_kill_9, which runs it"]
async fn kill9_child() {
    let (Ok(url), Ok(network)) = (std::env::var(URL), std::env::var(NETWORK)) else {
        panic!("run by allocations_are_atomic_across_kill_9 only, with {URL} and {NETWORK} set");
    };
    let db = Db::open(&url).await.expect("open");
    let net = service(&db).await;
    let who = member();
    // Five ports committed, as a finished launch would.
    let mut tx = db.begin().await.expect("begin");
    for _ in 0..5 {
        net.create_port_in(&mut tx, &who, port(&network))
            .await
            .expect("port");
    }
    tx.commit().await.expect("commit");
    // Five more in a launch that is killed before its commit.
    let mut tx = db.begin().await.expect("begin");
    for _ in 0..5 {
        net.create_port_in(&mut tx, &who, port(&network))
            .await
            .expect("port");
    }
    println!("READY");
    std::thread::sleep(std::time::Duration::from_secs(600));
    drop(tx);
}

#[tokio::test]
async fn allocations_are_atomic_across_kill_9() {
    for engine in ENGINES {
        let t = fresh(engine).await.expect("db");
        let net = service(&t.db).await;
        let who = member();
        let n = net
            .create_network(
                &who,
                NewNetwork {
                    name: "n".into(),
                    ..Default::default()
                },
            )
            .await
            .expect("network");
        net.create_subnet(
            &who,
            NewSubnet {
                network_id: n.id.clone(),
                cidr: "10.60.0.0/24".into(),
                ..Default::default()
            },
        )
        .await
        .expect("subnet");

        let exe = std::env::current_exe().expect("test binary");
        let mut child = Command::new(exe)
            .args(["kill9_child", "--exact", "--include-ignored", "--nocapture"])
            .env(URL, &t.url)
            .env(NETWORK, &n.id)
            .stdout(Stdio::piped())
            .spawn()
            .expect("child");
        let stdout = child.stdout.take().expect("stdout");
        let mut ready = false;
        for line in BufReader::new(stdout).lines() {
            if line.expect("child output").trim() == "READY" {
                ready = true;
                break;
            }
        }
        assert!(ready, "{engine}: the child ended before its second launch");
        child.kill().expect("SIGKILL"); // Child::kill sends SIGKILL on Unix
        let status = child.wait().expect("reaped");
        assert!(!status.success(), "{engine}: {status:?}");

        // Once the database has noticed, the five committed ports remain,
        // the five uncommitted ones left nothing.
        let rows = |sql: &'static str| {
            let db = t.db.clone();
            async move {
                let (n,): (i64,) = sqlx::query_as(sql)
                    .fetch_one(db.reader())
                    .await
                    .expect("count");
                n
            }
        };
        let mut ports = 0;
        for _ in 0..100 {
            ports = rows("SELECT COUNT(*) FROM ports").await;
            if ports == 5 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(ports, 5, "{engine}: uncommitted ports survived the kill");
        assert_eq!(rows("SELECT COUNT(*) FROM port_ips").await, 5, "{engine}");
        // The next allocations continue right after the committed ones
        // (the killed launch's hint moved with it) and never repeat one.
        let mut seen = BTreeSet::new();
        for p in net
            .list_ports(&who, None, false)
            .await
            .expect("list")
            .into_iter()
        {
            seen.insert(p.fixed_ips[0].ip_address.clone());
        }
        for i in 0..5 {
            let p = net.create_port(&who, port(&n.id)).await.expect("port");
            let ip = p.fixed_ips[0].ip_address.clone();
            assert_eq!(ip, format!("10.60.0.{}", 7 + i), "{engine}");
            assert!(seen.insert(ip), "{engine}: an address was given twice");
        }
        assert_eq!(seen.len(), 10, "{engine}");
    }
}
