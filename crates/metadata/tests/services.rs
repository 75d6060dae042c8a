//! The metadata service and the resolver as an instance sees them: real
//! sockets in a router namespace the test makes, clients inside instance
//! namespaces at the other end of veths (plain blocking sockets on a thread
//! that entered the namespace), a real store behind real services. Root
//! only; nothing touches the machine's own network.

mod common;

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use nuage_compute::HttpTokens;
use serde_json::Value;

/// Two projects, each with its default network 10.0.0.0/16: alpha's
/// instance `a1` (key, user data) and its peer `a2`, beta's `b1` (IMDSv2
/// required), which has the same address as `a1` on its own network.
struct Scene {
    cloud: Cloud,
    ns: Namespaces,
    running: Running,
    a1: nuage_compute::types::Instance,
    a2: nuage_compute::types::Instance,
    b1: nuage_compute::types::Instance,
    key: String,
}

const A: usize = 0;
const B: usize = 1;

async fn scene(engine: &str) -> Scene {
    require_host();
    let cloud = Cloud::new(engine).await;
    let key = cloud.key(&cloud.alpha, "alice-key").await;
    let a1 = cloud
        .launch(
            &cloud.alpha,
            Some("alice-key"),
            Some(b"#!/bin/sh\necho hello\n"),
            HttpTokens::Optional,
        )
        .await;
    let a2 = cloud
        .launch(&cloud.alpha, None, None, HttpTokens::Optional)
        .await;
    let b1 = cloud
        .launch(&cloud.beta, None, None, HttpTokens::Required)
        .await;
    assert_eq!(
        address(&a1),
        address(&b1),
        "the same address on two networks"
    );
    assert_ne!(network_of(&a1), network_of(&b1));
    let mut ns = Namespaces::new();
    assert_eq!(ns.add(&network_of(&a1), "r-alpha", address(&a1)), A);
    assert_eq!(ns.add(&network_of(&b1), "r-beta", address(&b1)), B);
    let running = start(&cloud, ns.domains());
    let n = &ns.instances;
    tokio::task::block_in_place(|| {
        wait_for_service(&n[A]);
        wait_for_service(&n[B]);
    });
    Scene {
        cloud,
        ns,
        running,
        a1,
        a2,
        b1,
        key,
    }
}

fn get(s: &Scene, inst: usize, path: &str) -> Answer {
    tokio::task::block_in_place(|| http(&s.ns.instances[inst], None, "GET", path, &[]))
        .expect("request")
}

fn get_with(s: &Scene, inst: usize, method: &str, path: &str, h: &[(&str, &str)]) -> Answer {
    tokio::task::block_in_place(|| http(&s.ns.instances[inst], None, method, path, h))
        .expect("request")
}

async fn metadata_from_inside(engine: &str) {
    let s = scene(engine).await;
    let a1 = &s.a1;
    let ok = |path: &str| {
        let r = get(&s, A, path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        r.text()
    };
    assert_eq!(ok("/latest/meta-data/instance-id"), a1.id);
    assert_eq!(ok("/latest/meta-data/ami-id"), a1.image_id);
    assert_eq!(ok("/latest/meta-data/instance-type"), "t2.micro");
    assert_eq!(ok("/latest/meta-data/local-ipv4"), address(a1).to_string());
    let o = address(a1).octets();
    let name = format!(
        "ip-{}-{}-{}-{}.nuage-1.compute.internal",
        o[0], o[1], o[2], o[3]
    );
    assert_eq!(ok("/latest/meta-data/local-hostname"), name);
    assert_eq!(ok("/latest/meta-data/hostname"), name);
    assert_eq!(
        ok("/latest/meta-data/mac"),
        a1.network_interfaces[0].mac_address
    );
    assert_eq!(
        ok("/latest/meta-data/placement/availability-zone"),
        a1.availability_zone
    );
    assert_eq!(ok("/latest/meta-data/security-groups"), "default");
    assert_eq!(ok("/latest/meta-data/public-keys/"), "0=alice-key");
    assert_eq!(ok("/latest/meta-data/public-keys/0/openssh-key"), s.key);
    let listing = ok("/latest/meta-data/");
    for k in [
        "ami-id",
        "instance-id",
        "local-ipv4",
        "placement/",
        "public-keys/",
    ] {
        assert!(listing.lines().any(|l| l == k), "{k} in {listing}");
    }
    assert!(
        !listing.lines().any(|l| l == "public-ipv4"),
        "no public address, no entry: {listing}"
    );
    let mac = &a1.network_interfaces[0].mac_address;
    assert_eq!(
        ok(&format!(
            "/latest/meta-data/network/interfaces/macs/{mac}/vpc-id"
        )),
        network_of(a1)
    );
    assert_eq!(
        ok(&format!(
            "/latest/meta-data/network/interfaces/macs/{mac}/subnet-ipv4-cidr-block"
        )),
        "10.0.0.0/16"
    );
    assert_eq!(ok("/latest/user-data"), "#!/bin/sh\necho hello\n");
    assert_eq!(
        ok("/2009-04-04/meta-data/instance-id"),
        a1.id,
        "dated versions"
    );
    assert_eq!(get(&s, A, "/latest/meta-data/no-such-key").status, 404);
    assert_eq!(get(&s, A, "/latest/dynamic/x").status, 404);
    let doc: Value =
        serde_json::from_str(&ok("/latest/dynamic/instance-identity/document")).expect("json");
    assert_eq!(doc["instanceId"], a1.id);
    assert_eq!(doc["region"], "nuage-1");
    assert_eq!(doc["privateIp"], address(a1).to_string());
    assert_eq!(doc["accountId"], s.cloud.alpha.project_id);
    assert_eq!(
        get_with(&s, A, "POST", "/latest/meta-data/instance-id", &[]).status,
        405
    );

    // OpenStack's dialect.
    let md: Value = serde_json::from_str(&ok("/openstack/latest/meta_data.json")).expect("json");
    assert_eq!(md["uuid"], a1.id);
    assert_eq!(md["hostname"], name);
    assert_eq!(md["availability_zone"], a1.availability_zone);
    assert_eq!(md["public_keys"]["alice-key"], s.key);
    assert_eq!(md["launch_index"], 0);
    assert_eq!(md["project_id"], s.cloud.alpha.project_id);
    assert_eq!(ok("/openstack/latest/user_data"), "#!/bin/sh\necho hello\n");
    let nd: Value = serde_json::from_str(&ok("/openstack/latest/network_data.json")).expect("json");
    assert_eq!(nd["links"][0]["ethernet_mac_address"], *mac);
    assert_eq!(nd["networks"][0]["ip_address"], address(a1).to_string());
    assert_eq!(nd["networks"][0]["netmask"], "255.255.0.0");
    assert_eq!(nd["networks"][0]["routes"][0]["gateway"], "10.0.0.1");
    assert_eq!(nd["services"][0]["address"], "10.0.0.1");
    assert_eq!(ok("/openstack"), "latest");

    // An instance without user data gets EC2's 404.
    let r = get_with(
        &s,
        B,
        "GET",
        "/latest/user-data",
        &[("X-aws-ec2-metadata-token", &token(&s, B, "60"))],
    );
    assert_eq!(r.status, 404);

    // The same address on the other network is the other instance: the
    // link decides, not the address.
    let t = token(&s, B, "60");
    let r = get_with(
        &s,
        B,
        "GET",
        "/latest/meta-data/instance-id",
        &[("X-aws-ec2-metadata-token", &t)],
    );
    assert_eq!((r.status, r.text()), (200, s.b1.id.clone()));

    // An address that is no port on the network gets nothing at all.
    let stranger: std::net::Ipv4Addr = "10.0.9.9".parse().expect("ip");
    let inst = &s.ns.instances[A];
    ip(inst, &["addr", "add", "10.0.9.9/16", "dev", "eth0"]);
    for path in [
        "/latest/meta-data/instance-id",
        "/latest/user-data",
        "/",
        "/openstack/latest/meta_data.json",
    ] {
        let r = tokio::task::block_in_place(|| http(inst, Some(stranger), "GET", path, &[]))
            .expect("request");
        assert_eq!(r.status, 404, "{path}");
        assert!(!r.text().contains(&a1.id));
    }
    let r = tokio::task::block_in_place(|| {
        http(
            inst,
            Some(stranger),
            "PUT",
            "/latest/api/token",
            &[("X-aws-ec2-metadata-token-ttl-seconds", "60")],
        )
    })
    .expect("request");
    assert_eq!(r.status, 404, "no token for a stranger");
    s.running.shutdown.send(true).expect("shutdown");
}

fn token(s: &Scene, inst: usize, ttl: &str) -> String {
    let r = get_with(
        s,
        inst,
        "PUT",
        "/latest/api/token",
        &[("X-aws-ec2-metadata-token-ttl-seconds", ttl)],
    );
    assert_eq!(r.status, 200, "token: {}", r.text());
    assert!(
        r.head
            .to_ascii_lowercase()
            .contains(&format!("x-aws-ec2-metadata-token-ttl-seconds: {ttl}")),
        "{}",
        r.head
    );
    r.text()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_from_inside_an_instance_sqlite() {
    metadata_from_inside("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_from_inside_an_instance_postgres() {
    metadata_from_inside("postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imdsv2_tokens() {
    let s = scene("sqlite").await;
    let path = "/latest/meta-data/instance-id";
    let hdr = "X-aws-ec2-metadata-token";
    let ttl = "X-aws-ec2-metadata-token-ttl-seconds";
    for bad in [None, Some("0"), Some("21601"), Some("ten"), Some("-1")] {
        let h: Vec<(&str, &str)> = bad.map(|b| (ttl, b)).into_iter().collect();
        let r = get_with(&s, A, "PUT", "/latest/api/token", &h);
        assert_eq!(r.status, 400, "ttl {bad:?}");
    }
    let r = get_with(
        &s,
        A,
        "PUT",
        "/latest/api/token",
        &[(ttl, "60"), ("X-Forwarded-For", "10.0.0.7")],
    );
    assert_eq!(r.status, 403, "a relayed PUT is refused");
    assert_eq!(get_with(&s, A, "GET", "/latest/api/token", &[]).status, 405);

    // Optional: v1 and v2 both answered; a bad token never is.
    let t = token(&s, A, "21600");
    let r = get_with(&s, A, "GET", path, &[(hdr, &t)]);
    assert_eq!((r.status, r.text()), (200, s.a1.id.clone()));
    assert_eq!(get(&s, A, path).status, 200);
    assert_eq!(get_with(&s, A, "GET", path, &[(hdr, "bogus")]).status, 401);

    // Required: nothing without a token, not even listings.
    assert_eq!(get(&s, B, path).status, 401);
    assert_eq!(get(&s, B, "/latest/meta-data/").status, 401);
    assert_eq!(get(&s, B, "/openstack/latest/meta_data.json").status, 401);
    let tb = token(&s, B, "60");
    let r = get_with(&s, B, "GET", path, &[(hdr, &tb)]);
    assert_eq!((r.status, r.text()), (200, s.b1.id.clone()));

    // A token is bound to the instance that asked: a1's token is refused
    // for b1 (same address, other network) and b1's for a1.
    assert_eq!(get_with(&s, B, "GET", path, &[(hdr, &t)]).status, 401);
    assert_eq!(get_with(&s, A, "GET", path, &[(hdr, &tb)]).status, 401);

    // And it expires.
    let short = token(&s, B, "1");
    assert_eq!(get_with(&s, B, "GET", path, &[(hdr, &short)]).status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(get_with(&s, B, "GET", path, &[(hdr, &short)]).status, 401);
    s.running.shutdown.send(true).expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_from_inside_an_instance_sqlite() {
    dns_from_inside("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_from_inside_an_instance_postgres() {
    dns_from_inside("postgres").await;
}

async fn dns_from_inside(engine: &str) {
    let s = scene(engine).await;
    let inst = &s.ns.instances[A];
    let q = |name: &str, t: RecordType, tcp: bool| {
        tokio::task::block_in_place(|| dns(inst, name, t, tcp))
    };
    let peer = address(&s.a2);
    let o = peer.octets();
    let peer_name = format!(
        "ip-{}-{}-{}-{}.nuage-1.compute.internal.",
        o[0], o[1], o[2], o[3]
    );
    for tcp in [false, true] {
        let m = q(&peer_name, RecordType::A, tcp);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.metadata.authoritative);
        assert_eq!(a_records(&m), vec![peer], "tcp {tcp}");
    }
    // The peer's instance name, as the search domain makes it.
    let m = q(
        &format!("{}.nuage-1.compute.internal.", s.a2.id),
        RecordType::A,
        false,
    );
    assert_eq!(a_records(&m), vec![peer]);
    let m = q(&format!("{}.", s.a2.id), RecordType::A, false);
    assert_eq!(a_records(&m), vec![peer], "a bare instance name");
    // PTR.
    let m = q(
        &format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0]),
        RecordType::PTR,
        false,
    );
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].data.to_string(), peer_name);
    // No AAAA for a name that exists: an empty answer, not an error.
    let m = q(&peer_name, RecordType::AAAA, false);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());

    // Nothing beyond the machine.
    for name in ["example.com.", "localhost.", "compute.internal."] {
        let m = q(name, RecordType::A, false);
        assert_eq!(m.metadata.response_code, ResponseCode::Refused, "{name}");
        assert!(m.answers.is_empty());
    }
    // Inside our domain, a name that does not exist.
    let m = q(
        "ip-10-0-200-200.nuage-1.compute.internal.",
        RecordType::A,
        false,
    );
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    // Beta's instance is not on alpha's network: it does not exist here.
    let m = q(
        &format!("{}.nuage-1.compute.internal.", s.b1.id),
        RecordType::A,
        false,
    );
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    // From beta's network, its own instance answers at the same address.
    let m = tokio::task::block_in_place(|| {
        dns(
            &s.ns.instances[B],
            &format!("{}.nuage-1.compute.internal.", s.b1.id),
            RecordType::A,
            false,
        )
    });
    assert_eq!(a_records(&m), vec![address(&s.b1)]);
    s.running.shutdown.send(true).expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_follow_the_published_domains() {
    let s = scene("sqlite").await;
    let a_only: Vec<_> = {
        let mut d = s.ns.domains();
        d[0].links.retain(|l| l.ifname == "r-alpha");
        d
    };
    s.running.domains.send(a_only).expect("publish");
    let b = &s.ns.instances[B];
    let mut closed = false;
    for _ in 0..200 {
        if tokio::task::block_in_place(|| http(b, None, "GET", "/", &[])).is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(
        closed,
        "a link gone from the watch has its listeners closed"
    );
    assert_eq!(get(&s, A, "/latest/meta-data/instance-id").status, 200);
    s.running.domains.send(s.ns.domains()).expect("publish");
    tokio::task::block_in_place(|| wait_for_service(b));
    s.running.shutdown.send(true).expect("shutdown");
    tokio::time::timeout(std::time::Duration::from_secs(5), s.running.task)
        .await
        .expect("the host stops on shutdown")
        .expect("task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_address_answers_for_its_new_instance_at_once() {
    let s = scene("sqlite").await;
    let path = "/latest/meta-data/instance-id";
    assert_eq!(get(&s, A, path).text(), s.a1.id, "cached now");
    // a1's port goes (as its termination deletes it) ...
    let mut tx = s.cloud.t.db.begin().await.expect("tx");
    let gone = s
        .cloud
        .network
        .delete_device_ports_in(&mut tx, &s.a1.id)
        .await
        .expect("delete ports");
    assert_eq!(gone.len(), 1);
    tx.commit().await.expect("commit");
    // ... and the address is nobody's: nothing answers it, cache or not.
    assert_eq!(get(&s, A, path).status, 404);
    // The next launch takes the lowest free address, a1's: the same
    // caller is the new instance on its first request.
    let a3 = s
        .cloud
        .launch(&s.cloud.alpha, None, None, HttpTokens::Optional)
        .await;
    assert_eq!(address(&a3), address(&s.a1));
    let r = get(&s, A, path);
    assert_eq!((r.status, r.text()), (200, a3.id.clone()));
    s.running.shutdown.send(true).expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_and_idle_time_are_bounded() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    require_host();
    let cloud = Cloud::new("sqlite").await;
    let a1 = cloud
        .launch(&cloud.alpha, None, None, HttpTokens::Optional)
        .await;
    let mut ns = Namespaces::new();
    ns.add(&network_of(&a1), "r-alpha", address(&a1));
    let limits = nuage_metadata::Limits {
        http_connections: 2,
        header_timeout: Duration::from_millis(500),
        ..Default::default()
    };
    let running = start_with(&cloud, ns.domains(), limits);
    let inst = &ns.instances[0];
    tokio::task::block_in_place(|| wait_for_service(inst));
    let dst = std::net::SocketAddrV4::new(nuage_netdriver::services::METADATA_ADDR, 80);
    let (served_late, idle_closed_after) = tokio::task::block_in_place(|| {
        inst.run(|| {
            // Two silent connections take both slots.
            let mut idle: Vec<_> = (0..2).map(|_| connect(None, dst).expect("idle")).collect();
            std::thread::sleep(Duration::from_millis(50));
            // A third is accepted by the kernel but not served while they hold them.
            let mut third = connect(None, dst).expect("third");
            third
                .write_all(b"GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .expect("write");
            let t = Instant::now();
            // The silent ones are closed at the header timeout ...
            let mut b = [0u8; 16];
            let n = idle[0].read(&mut b).expect("read idle");
            assert_eq!(n, 0, "an idle connection is closed, not answered");
            let idle_closed_after = t.elapsed();
            // ... and the third is served once a slot is free.
            let mut raw = Vec::new();
            third.read_to_end(&mut raw).expect("read third");
            let a = parse(&raw).expect("parse");
            assert_eq!(a.status, 200);
            idle.clear();
            (t.elapsed(), idle_closed_after)
        })
        .expect("ns")
    });
    assert!(
        idle_closed_after >= Duration::from_millis(300)
            && idle_closed_after < Duration::from_secs(3),
        "closed after {idle_closed_after:?}"
    );
    assert!(
        served_late >= Duration::from_millis(300),
        "the third connection waited for a slot ({served_late:?})"
    );
    running.shutdown.send(true).expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_does_not_reach_a_container_behind_the_instance() {
    use std::io::{Read, Write};
    use std::time::Duration;
    let s = scene("sqlite").await;
    let inst = &s.ns.instances[A];
    // A container inside the instance, behind its NAT (as Docker does).
    let c = nuage_netdriver::testing::NetNs::create(s.ns.dir.path(), "container")
        .expect("container namespace");
    let cpath = c.path().display().to_string();
    ip(
        inst,
        &[
            "link", "add", "c0", "type", "veth", "peer", "name", "eth0", "netns", &cpath,
        ],
    );
    ip(inst, &["addr", "add", "192.168.7.1/24", "dev", "c0"]);
    ip(inst, &["link", "set", "c0", "up"]);
    inst.sysctl("net/ipv4/ip_forward", "1").expect("forwarding");
    for args in [
        vec!["add", "table", "ip", "nat"],
        vec![
            "add",
            "chain",
            "ip",
            "nat",
            "post",
            "{ type nat hook postrouting priority 100 ; }",
        ],
        vec![
            "add",
            "rule",
            "ip",
            "nat",
            "post",
            "oifname",
            "eth0",
            "masquerade",
        ],
    ] {
        let out = inst
            .exec("nft", &args)
            .expect("nft (apt-get install nftables)");
        assert!(out.status.success(), "nft {args:?}: {out:?}");
    }
    ip(&c, &["addr", "add", "192.168.7.2/24", "dev", "eth0"]);
    ip(&c, &["link", "set", "eth0", "up"]);
    ip(&c, &["route", "add", "default", "via", "192.168.7.1"]);

    // Through the NAT the container is the instance: reads work ...
    let r =
        tokio::task::block_in_place(|| http(&c, None, "GET", "/latest/meta-data/instance-id", &[]))
            .expect("GET from the container");
    assert_eq!((r.status, r.text()), (200, s.a1.id.clone()));
    // ... but a token's answer dies at the instance's forwarding (TTL 1).
    let put = tokio::task::block_in_place(|| {
        c.run(|| -> std::io::Result<Vec<u8>> {
            let dst = std::net::SocketAddrV4::new(nuage_netdriver::services::METADATA_ADDR, 80);
            let mut st = connect(None, dst)?;
            st.set_read_timeout(Some(Duration::from_millis(1500)))?;
            st.write_all(
                b"PUT /latest/api/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
                  X-aws-ec2-metadata-token-ttl-seconds: 60\r\n\r\n",
            )?;
            let mut raw = Vec::new();
            st.read_to_end(&mut raw)?;
            Ok(raw)
        })
        .expect("ns")
    });
    assert!(put.is_err(), "the container got a token answer: {put:?}");
    // The instance itself still gets one, and its next reads on the same
    // connection come back with the ordinary TTL.
    let r = tokio::task::block_in_place(|| {
        inst.run(|| -> std::io::Result<Vec<u8>> {
            let dst = std::net::SocketAddrV4::new(nuage_netdriver::services::METADATA_ADDR, 80);
            let mut st = connect(None, dst)?;
            st.write_all(
                b"PUT /latest/api/token HTTP/1.1\r\nHost: x\r\n\
                  X-aws-ec2-metadata-token-ttl-seconds: 60\r\n\r\n\
                  GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            )?;
            let mut raw = Vec::new();
            st.read_to_end(&mut raw)?;
            Ok(raw)
        })
        .expect("ns")
    })
    .expect("PUT then GET from the instance");
    let text = String::from_utf8_lossy(&r);
    assert_eq!(text.matches("HTTP/1.1 200").count(), 2, "{text}");
    assert!(text.ends_with(&s.a1.id), "{text}");
    s.running.shutdown.send(true).expect("shutdown");
}
