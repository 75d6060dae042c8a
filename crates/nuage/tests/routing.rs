//! Routers end to end (ADR 22): a real `nuage serve` whose external
//! network is a bridge in a namespace this test creates. Each project's
//! default network gets a default router; its instances reach the
//! external host by SNAT, and the external host reaches an instance by the
//! floating address `nuage allocate-address` / `associate-address` gave
//! it, until `disassociate-address`. Two projects' default networks (the
//! same 10.0.0.0/16) both reach their own gateway. Nothing is forwarded or
//! NATed in the machine's own namespace. Needs root, runc, busybox-static
//! and nftables, as CI has.

mod common;

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{call, nuage_bin, Options, Server};
use nuage_netdriver::testing::NetNs;
use serde_json::{json, Value};

const EXT_HOST: &str = "192.168.100.1";

async fn run_one(s: &Server, t: &str, user_data: &str) -> Value {
    let v = common::launch_busybox(s, t, user_data).await;
    let id = v["id"].as_str().expect("id").to_string();
    common::wait_state(s, t, &id, "running").await
}

/// `nuage ARGS -o json` as the holder of `env` (admin.env, or a member's).
fn nuage(s: &Server, env: &[(&str, &str)], args: &[&str]) -> Value {
    let mut c = s.client(nuage_bin());
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.args(args).args(["-o", "json"]).output().expect("nuage");
    assert!(
        out.status.success(),
        "nuage {}: {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// Runs busybox inside the instance's network namespace.
fn in_instance(s: &Server, id: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", common::instance_netns(s, id).display()))
        .arg("/bin/busybox")
        .args(args)
        .output()
        .expect("nsenter");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

/// Retries `f` until it gives `Some` or 20 s pass (the agent applies
/// changes within a pass or two).
async fn eventually<T>(what: &str, s: &Server, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}\n{}", s.logs());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A TCP server in the external namespace answering each connection with
/// the address it came from.
fn whoami_server(ext: &NetNs) -> SocketAddr {
    let l = ext
        .run(|| TcpListener::bind((EXT_HOST, 7100)))
        .expect("thread")
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { return };
            let peer = c
                .peer_addr()
                .map(|p| p.ip().to_string())
                .unwrap_or_default();
            let _ = std::io::Write::write_all(&mut c, peer.as_bytes());
        }
    });
    addr
}

/// What the external host reads from `to` (a connected socket: the
/// handshake completes only if replies come from `to` itself).
fn read_from_external(ext: &NetNs, to: SocketAddr) -> Option<String> {
    ext.run(|| {
        let mut c = TcpStream::connect_timeout(&to, Duration::from_secs(1)).ok()?;
        assert_eq!(c.peer_addr().ok()?, to);
        c.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut buf = [0u8; 64];
        let n = c.read(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).trim().to_string())
    })
    .expect("thread")
}

fn sysctl_forward() -> String {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("ip_forward")
}

#[tokio::test]
async fn default_routers_snat_out_and_floating_addresses_in() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ext = NetNs::create(tmp.path(), "ext").expect("external namespace (run as root)");
    ext.add_bridge("ext0").expect("bridge");
    ext.add_address("ext0", format!("{EXT_HOST}/24").parse().expect("cidr"))
        .expect("address");
    let config = tmp.path().join("nuage.toml");
    std::fs::write(
        &config,
        format!(
            "[network.external]\nbridge = \"ext0\"\nnetns = \"{}\"\ncidr = \"192.168.100.0/24\"\n\
             gateway = \"{EXT_HOST}\"\npool_start = \"192.168.100.10\"\npool_end = \"192.168.100.50\"\n",
            ext.path().display()
        ),
    )
    .expect("config");
    let forward_before = sysctl_forward();
    let mut s = Server::start_with(Options {
        env: vec![("NUAGE_CONFIG".into(), config.display().to_string())],
        ..Options::default()
    });
    common::build_busybox(&s);
    let t = s.admin_token().await;
    let who = whoami_server(&ext);

    // Project 1's instance serves TCP 7000 and is open to it and to ICMP.
    let a = run_one(
        &s,
        &t,
        "#!/bin/sh\nwhile true; do echo hello-from-a | nc -l -p 7000; done\n",
    )
    .await;
    let a_id = a["id"].as_str().expect("id").to_string();
    for args in [
        ["--protocol", "tcp", "--port", "7000"],
        ["--protocol", "icmp", "--port", "-1"],
    ] {
        let mut v = vec![
            "authorize-security-group-ingress",
            "--group-name",
            "default",
        ];
        v.extend(args);
        v.extend(["--cidr", "0.0.0.0/0"]);
        nuage(&s, &[], &v);
    }
    // Its default router, made with its default network.
    let routers = nuage(&s, &[], &["router", "list"]);
    let r = &routers["items"][0];
    assert_eq!(r["name"], "default", "{routers}");
    let r_ext = r["external_ip"].as_str().expect("external ip").to_string();

    // Out by SNAT: the external host answers a's ping and sees the
    // router's address.
    assert!(in_instance(&s, &a_id, &["ping", "-c", "1", "-W", "2", "10.0.0.1"]).0);
    eventually("a never pinged the external host", &s, || {
        in_instance(&s, &a_id, &["ping", "-c", "1", "-W", "1", EXT_HOST])
            .0
            .then_some(())
    })
    .await;
    let seen = eventually("a never reached the external host", &s, || {
        let (ok, out) = in_instance(&s, &a_id, &["nc", "-w", "2", EXT_HOST, "7100"]);
        (ok && !out.is_empty()).then_some(out)
    })
    .await;
    assert_eq!(seen, r_ext, "a did not leave by its router's address");
    let _ = who;

    // In by a floating address.
    let f = nuage(&s, &[], &["allocate-address"]);
    let fip = f["floating_ip_address"]
        .as_str()
        .expect("address")
        .to_string();
    let alloc = f["id"].as_str().expect("allocation id").to_string();
    nuage(
        &s,
        &[],
        &[
            "associate-address",
            "--allocation-id",
            &alloc,
            "--instance-id",
            &a_id,
        ],
    );
    let to: SocketAddr = format!("{fip}:7000").parse().expect("addr");
    let got = eventually(
        "the external host never reached a by its floating address",
        &s,
        || read_from_external(&ext, to),
    )
    .await;
    assert_eq!(got, "hello-from-a");
    let ping_fip = || {
        ext.exec("/bin/busybox", &["ping", "-c", "1", "-W", "1", &fip])
            .expect("ping")
            .status
            .success()
    };
    assert!(ping_fip());
    let seen = eventually(
        "a's outbound never left by its floating address",
        &s,
        || {
            let (ok, out) = in_instance(&s, &a_id, &["nc", "-w", "2", EXT_HOST, "7100"]);
            (ok && out == fip).then_some(out)
        },
    )
    .await;
    assert_eq!(seen, fip);

    // Project 2: the same default CIDR, its own default router and
    // gateway; both projects reach 10.0.0.1 and the outside.
    let (other, _) = common::project_with_member(&s, "routed", "routed-pass-1").await;
    let ot = s
        .token_for("routed-user", "routed-pass-1", Some(&other))
        .await;
    let b = run_one(&s, &ot, "#!/bin/sh\necho b\n").await;
    let b_id = b["id"].as_str().expect("id").to_string();
    assert_eq!(
        b["private_ip_address"], a["private_ip_address"],
        "the projects' default subnets are alike"
    );
    for id in [&a_id, &b_id] {
        eventually("an instance does not reach its own gateway", &s, || {
            in_instance(&s, id, &["ping", "-c", "1", "-W", "1", "10.0.0.1"])
                .0
                .then_some(())
        })
        .await;
    }
    let seen_b = eventually("b never reached the external host", &s, || {
        let (ok, out) = in_instance(&s, &b_id, &["nc", "-w", "2", EXT_HOST, "7100"]);
        (ok && !out.is_empty()).then_some(out)
    })
    .await;
    assert_ne!(seen_b, r_ext, "two projects share a router address");
    assert_ne!(seen_b, fip);

    // Disassociated: the floating address no longer answers.
    nuage(
        &s,
        &[],
        &["disassociate-address", "--allocation-id", &alloc],
    );
    eventually("the floating address still answers", &s, || {
        (!ping_fip() && read_from_external(&ext, to).is_none()).then_some(())
    })
    .await;

    // The router namespaces live under the data directory; the machine's
    // own forwarding is as it was.
    let routers_dir = s.data_dir().join("network/routers");
    let domains = || {
        std::fs::read_dir(&routers_dir)
            .expect("routers dir")
            .count()
    };
    assert_eq!(domains(), 2, "one namespace per project's router");
    assert_eq!(sysctl_forward(), forward_before);

    // kill -9 and a restart: the domains were kept (bind mounts), a still
    // goes out; project 2's last instance goes, and with it its domain.
    s.kill9();
    s.spawn();
    eventually("a lost the outside after a restart", &s, || {
        let (ok, out) = in_instance(&s, &a_id, &["nc", "-w", "2", EXT_HOST, "7100"]);
        (ok && out == r_ext).then_some(())
    })
    .await;
    let (st, v) = call(
        &s,
        &ot,
        "POST",
        "/nuage/v1/instances/terminate",
        Some(json!({"instance_ids": [b_id]})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    eventually(
        "project 2's routing domain outlived its instances",
        &s,
        || (domains() == 1).then_some(()),
    )
    .await;
    assert_eq!(sysctl_forward(), forward_before);
}
